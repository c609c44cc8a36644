package migrate

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"mailferry/source"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	Folders FolderRules
	// Deep compares the SHA-256 of every body; otherwise messages are
	// matched by Message-ID and size.
	Deep bool
	// CRLF: the target stores CRLF only (IMAP), so bare LF in source bytes
	// is counted as CRLF when comparing.
	CRLF   bool
	Logger *slog.Logger
	Stats  *Stats
}

// FolderCheck is the comparison of one source folder with its target folder.
type FolderCheck struct {
	Source      string `json:"source"`
	Target      string `json:"target"`
	SourceCount int    `json:"source_count"`
	TargetCount int    `json:"target_count"`
	Missing     int    `json:"missing"`
	Extra       int    `json:"extra"`
	Duplicated  int    `json:"duplicated"`
}

// VerifyReport is the result of Verify.
type VerifyReport struct {
	Folders    []FolderCheck `json:"folders"`
	Missing    int           `json:"missing"`
	Extra      int           `json:"extra"`
	Duplicated int           `json:"duplicated"`
}

// OK reports whether every source message is in the target (extra target
// messages do not count against it; duplicates do).
func (r *VerifyReport) OK() bool { return r.Missing == 0 && r.Duplicated == 0 }

// Verify compares the source with the target, folder by folder, by
// fingerprint. The target is read through a source.Source of its own
// (tgt opens the target endpoint for reading).
func Verify(ctx context.Context, src, tgt source.Opener, o VerifyOptions) (*VerifyReport, error) {
	if o.Stats == nil {
		o.Stats = new(Stats)
	}
	s, err := src(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to the source: %w", err)
	}
	defer s.Close()
	t, err := tgt(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to the target: %w", err)
	}
	defer t.Close()
	sf, err := s.Folders(ctx)
	if err != nil {
		return nil, fmt.Errorf("list source folders: %w", err)
	}
	tf, err := t.Folders(ctx)
	if err != nil {
		return nil, fmt.Errorf("list target folders: %w", err)
	}
	tByName := map[string]int{}
	for i, f := range tf {
		tByName[f.Name] = i
	}
	rep := &VerifyReport{}
	for _, p := range planFolders(o.Folders, sf, tf) {
		if p.skip != "" {
			continue
		}
		o.Stats.setFolder(p.src.Name)
		fc := FolderCheck{Source: p.src.Name, Target: p.target}
		want, n, err := fingerprintFolder(ctx, s, p.src, o)
		if err != nil {
			return nil, fmt.Errorf("read source folder %q: %w", p.src.Name, err)
		}
		fc.SourceCount = n
		got := map[string]int{}
		if i, ok := tByName[p.target]; ok {
			got, fc.TargetCount, err = fingerprintFolder(ctx, t, tf[i], VerifyOptions{Deep: o.Deep, Stats: o.Stats})
			if err != nil {
				return nil, fmt.Errorf("read target folder %q: %w", p.target, err)
			}
		}
		for fp, w := range want {
			g := got[fp]
			switch {
			case g < w:
				fc.Missing += w - g
			case g > w:
				fc.Duplicated += g - w
			}
		}
		for fp, g := range got {
			if want[fp] == 0 {
				fc.Extra += g
			}
		}
		rep.Missing += fc.Missing
		rep.Extra += fc.Extra
		rep.Duplicated += fc.Duplicated
		rep.Folders = append(rep.Folders, fc)
	}
	return rep, nil
}

func fingerprintFolder(ctx context.Context, s source.Source, f source.Folder, o VerifyOptions) (map[string]int, int, error) {
	metas, err := s.List(ctx, f)
	var vc *source.ValidityChangedError
	if errors.As(err, &vc) {
		f.Validity = vc.New
		metas, err = s.List(ctx, f)
	}
	if err != nil {
		return nil, 0, err
	}
	ids := make([]string, len(metas))
	for i, m := range metas {
		ids[i] = m.ID
	}
	out := map[string]int{}
	sp := spool{threshold: defaultSpoolThreshold}
	defer sp.close()
	n := 0
	err = s.Fetch(ctx, f, ids, func(m source.Meta, r io.Reader) error {
		if err := sp.fill(r, o.CRLF, false); err != nil {
			return err
		}
		fp := strings.TrimSpace(sp.scan.MessageID()) + "\x00" + fmt.Sprint(sp.size)
		if o.Deep || sp.scan.MessageID() == "" {
			fp += "\x00" + hex.EncodeToString(sp.sum[:])
		}
		out[fp]++
		n++
		o.Stats.DoneMsgs.Add(1)
		o.Stats.DoneBytes.Add(sp.size)
		return nil
	})
	return out, n, err
}

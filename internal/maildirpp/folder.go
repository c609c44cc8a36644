// Package maildirpp maps mailferry's folder names, flags and file names onto
// Dovecot's Maildir++ layout (mail_location = maildir:~/Maildir), for both the
// Maildir target and the Maildir source.
//
// # Layout
//
// INBOX is the root itself (root/cur, root/new, root/tmp). A folder "A/B" is
// the directory root/.A.B with cur/, new/, tmp/ and an empty maildirfolder
// file. Each name component is written in IMAP modified UTF-7 (RFC 3501
// §5.1.3), so "أرشيف" is "&BicGRAY5BkUGRAYnBiE-" and "R&D" is "R&-D".
//
// # The "." escape
//
// "." separates levels on disk, so a "." inside a component (legal on
// "/"-delimited IMAP servers) is written as `\2e`, and "\" itself as `\5c`:
// "v1.2" is stored as `v1\2e2`, and "a.b/c" as `.a\2eb.c`. This is the
// escape of Dovecot's listescape plugin (mail_plugins = listescape), so a
// Dovecot with that plugin shows the original names; without it Dovecot
// shows `v1\2e2`. Dovecot's modified UTF-7 decoder refuses the alternative
// "&AC4-" (it lists such a folder under its raw name and cannot open it).
// When reading, `\XX` for any printable ASCII character is decoded, and a
// "\" not followed by two hex digits is kept literally (a tree written by a
// Dovecot without listescape).
//
// Dovecot keeps one dovecot-keywords file per folder directory (the root's
// for INBOX); ReadKeywords and WriteKeywords take that directory.
//
// # Safety
//
// Because every "." is escaped and "/" is the separator, an encoded name is
// a single directory name starting with "." that contains neither "/" nor
// ".." and cannot leave the root. EncodeFolder still refuses names that are
// not clean (empty components, "." or "..", control characters, invalid
// UTF-8, more than 255 bytes on disk); SafeFolder turns any name into a clean
// one and says whether it had to change it.
package maildirpp

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// Inbox is the canonical name of the inbox.
const Inbox = "INBOX"

// MaxDirName is the longest directory name written (bytes, as on ext4, xfs, btrfs).
const MaxDirName = 255

// ErrUnsafeName is wrapped by EncodeFolder for a name it refuses; SafeFolder
// gives a usable replacement.
var ErrUnsafeName = errors.New("folder name is not safe for a Maildir")

// EncodeFolder returns the directory of folder name relative to the root:
// "" for INBOX, ".A.B" for "A/B". It refuses names that SafeFolder would
// change.
func EncodeFolder(name string) (string, error) {
	if safe, changed := SafeFolder(name); changed {
		return "", fmt.Errorf("folder %q: %w (it could be stored as %q)", name, ErrUnsafeName, safe)
	}
	return encodeClean(name), nil
}

func encodeClean(name string) string {
	if name == Inbox {
		return ""
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = encodeComponent(p)
	}
	return "." + strings.Join(parts, ".")
}

// SafeFolder returns a clean version of name and whether it differs:
// invalid UTF-8 and control characters become "_", empty components are
// dropped, "." and ".." become "_" and "__", a case variant of "INBOX" as
// first component becomes "INBOX", an empty name becomes "_", and a name
// whose directory would exceed MaxDirName bytes is shortened (last
// components first) to a prefix + "~" + 8 hex digits of a SHA-256 of the
// original name, so distinct long names stay distinct.
func SafeFolder(name string) (safe string, changed bool) {
	var parts []string
	for _, p := range strings.Split(name, "/") {
		if p == "" {
			continue
		}
		p = strings.ToValidUTF8(p, "_")
		p = strings.Map(func(r rune) rune {
			if isControl(r) {
				return '_'
			}
			return r
		}, p)
		switch p {
		case ".":
			p = "_"
		case "..":
			p = "__"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		parts = []string{"_"}
	}
	if strings.EqualFold(parts[0], Inbox) {
		parts[0] = Inbox
	}
	parts = shorten(parts, name)
	safe = strings.Join(parts, "/")
	return safe, safe != name
}

// dirLen is the length of the directory name of parts.
func dirLen(parts []string) int {
	if len(parts) == 1 && parts[0] == Inbox {
		return 0
	}
	n := 0
	for _, p := range parts {
		n += 1 + len(encodeComponent(p))
	}
	return n
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

// shorten cuts components (last first) until the directory name fits.
func shorten(parts []string, orig string) []string {
	if dirLen(parts) <= MaxDirName {
		return parts
	}
	suffix := "~" + shortHash(orig)
	for i := len(parts) - 1; i >= 0; i-- {
		rest := dirLen(parts) - (1 + len(encodeComponent(parts[i])))
		budget := MaxDirName - rest - 1 // bytes left for this component, encoded
		if budget < len(suffix)+1 {
			// Not even a short component fits here: shrink it to the
			// minimum and go on with its parent.
			if short := cut(parts[i], 1) + suffix; len(encodeComponent(short)) < len(encodeComponent(parts[i])) {
				parts[i] = short
			}
			continue
		}
		// Largest rune prefix whose encoding with the suffix fits.
		r := []rune(parts[i])
		lo, hi := 0, len(r)
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if len(encodeComponent(string(r[:mid])+suffix)) <= budget {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		parts[i] = string(r[:lo]) + suffix
		if dirLen(parts) <= MaxDirName {
			return parts
		}
	}
	// Very deep: keep the leading components that fit, then one hashed leaf.
	var out []string
	for _, p := range parts {
		if dirLen(append(out, p, suffix)) > MaxDirName {
			break
		}
		out = append(out, p)
	}
	return append(out, suffix)
}

func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError
}

func cut(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}

// DecodeFolder is the inverse of EncodeFolder: "" or "." is INBOX, ".A.B" is
// "A/B". It refuses directory names that are not Maildir++ folders or that
// decode to an unsafe name (with "/" or control characters in a component).
func DecodeFolder(dir string) (string, error) {
	if dir == "" || dir == "." {
		return Inbox, nil
	}
	if !strings.HasPrefix(dir, ".") || dir == ".." || strings.ContainsRune(dir, '/') {
		return "", fmt.Errorf("directory %q is not a Maildir++ folder", dir)
	}
	parts := strings.Split(dir[1:], ".")
	for i, p := range parts {
		if p == "" {
			return "", fmt.Errorf("directory %q has an empty name component", dir)
		}
		d, err := decodeComponent(p)
		if err != nil {
			return "", fmt.Errorf("directory %q: %w", dir, err)
		}
		if strings.ContainsRune(d, '/') || d == "." || d == ".." || strings.IndexFunc(d, isControl) >= 0 {
			return "", fmt.Errorf("directory %q decodes to an unsafe name component %q", dir, d)
		}
		parts[i] = d
	}
	if strings.EqualFold(parts[0], Inbox) {
		// ".INBOX.x" is a child of the inbox; keep the canonical spelling.
		parts[0] = Inbox
	}
	name := strings.Join(parts, "/")
	return name, nil
}

// Entry is one folder found on disk.
type Entry struct {
	Name string // canonical UTF-8 name, "/"-separated
	Dir  string // directory relative to the root ("" for INBOX)
}

// List walks the root and returns INBOX (when root/cur exists) and every
// ".X.Y" directory that has a cur/ subdirectory and a decodable name, sorted
// by name. Undecodable directories are returned in skipped.
func List(root string) (folders []Entry, skipped []string, err error) {
	des, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, fmt.Errorf("read Maildir %s: %w", root, err)
	}
	if isDir(filepath.Join(root, "cur")) {
		folders = append(folders, Entry{Name: Inbox})
	}
	for _, de := range des {
		n := de.Name()
		if !strings.HasPrefix(n, ".") || n == "." || n == ".." {
			continue
		}
		if !isDir(filepath.Join(root, n, "cur")) {
			continue
		}
		name, err := DecodeFolder(n)
		if err != nil || name == Inbox {
			skipped = append(skipped, n)
			continue
		}
		folders = append(folders, Entry{Name: name, Dir: n})
	}
	sort.Slice(folders, func(i, j int) bool { return folders[i].Name < folders[j].Name })
	return folders, skipped, nil
}

// Folders returns the names of the folders under root (see List).
func Folders(root string) ([]string, error) {
	es, _, err := List(root)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.Name
	}
	return names, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

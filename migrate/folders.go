package migrate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/mailferry/mailferry/source"
)

// FolderRules say which source folders are copied and under which name.
type FolderRules struct {
	// Include, when not empty, keeps only source folders matching one of
	// the expressions; Exclude drops the ones matching any.
	Include, Exclude []*regexp.Regexp
	// Map renames a source folder (and its sub-folders) OLD to NEW.
	Map map[string]string
	// ToFolder puts the source INBOX (the only folder of a POP3 source)
	// into this target folder.
	ToFolder string
	// KeepAllMail copies Gmail's "[Gmail]/All Mail" and "Important" folders,
	// skipped by default because every message there is also in a label.
	KeepAllMail bool
}

// ParseMap turns OLD=NEW arguments into a map.
func ParseMap(args []string) (map[string]string, error) {
	m := make(map[string]string, len(args))
	for _, a := range args {
		old, nw, ok := strings.Cut(a, "=")
		if !ok || old == "" || nw == "" {
			return nil, fmt.Errorf("--map %q: want OLD=NEW", a)
		}
		m[old] = nw
	}
	return m, nil
}

// wellKnown maps folder names that clients use for special-use folders when
// a server does not announce SPECIAL-USE (lower case).
var wellKnown = map[string]string{
	"sent": `\Sent`, "sent items": `\Sent`, "sent messages": `\Sent`, "sent mail": `\Sent`,
	"[gmail]/sent mail": `\Sent`, "inbox/sent": `\Sent`, "gesendet": `\Sent`, "envoyés": `\Sent`,
	"drafts": `\Drafts`, "draft": `\Drafts`, "[gmail]/drafts": `\Drafts`, "entwürfe": `\Drafts`,
	"trash": `\Trash`, "deleted items": `\Trash`, "deleted messages": `\Trash`, "bin": `\Trash`,
	"[gmail]/trash": `\Trash`, "[gmail]/bin": `\Trash`, "papierkorb": `\Trash`,
	"junk": `\Junk`, "spam": `\Junk`, "junk e-mail": `\Junk`, "junk email": `\Junk`, "[gmail]/spam": `\Junk`,
	"bulk mail": `\Junk`,
	"archive":   `\Archive`, "archives": `\Archive`,
	"[gmail]/all mail": `\All`, "[gmail]/important": `\Important`,
}

// specialUse returns the folder's special use, announced or guessed from a
// well-known name.
func specialUse(f source.Folder) string {
	if f.SpecialUse != "" {
		return f.SpecialUse
	}
	return wellKnown[strings.ToLower(f.Name)]
}

// plannedFolder is one source folder with the target name it goes to.
type plannedFolder struct {
	src    source.Folder
	target string // canonical target name before the target's own safety mapping
	skip   string // reason it is not copied, or ""
}

// planFolders applies the rules to the source folders. targetFolders are the
// target's existing folders (nil if the target cannot list them).
//
// A folder's target name is, first match wins: INBOX's (INBOX, or
// --to-folder; the inbox's children keep their names); --map of the folder
// or of its closest mapped ancestor ("Old/Child" follows "Old", listed on
// the source or not); the target's folder of the same special use; the name
// of its closest listed ancestor moved by special use with the rest of the
// path kept (with Archive mapped onto the target's \Archive "Archives",
// "Archive/2023/Q4" goes to "Archives/2023/Q4", not to a new "Archive");
// else its own name. Skipping a folder does not change where its children
// go.
func planFolders(rules FolderRules, srcFolders, targetFolders []source.Folder) []plannedFolder {
	byUse := map[string]string{}
	for _, tf := range targetFolders {
		if tf.SpecialUse != "" {
			if _, dup := byUse[tf.SpecialUse]; !dup {
				byUse[tf.SpecialUse] = tf.Name
			}
		}
	}
	// Well-known names count only where the target announces nothing.
	for _, tf := range targetFolders {
		if u := wellKnown[strings.ToLower(tf.Name)]; u != "" {
			if _, dup := byUse[u]; !dup {
				byUse[u] = tf.Name
			}
		}
	}
	// moved holds the source folders renamed by their special use.
	moved := map[string]string{}
	for _, f := range srcFolders {
		if strings.EqualFold(f.Name, "INBOX") {
			continue
		}
		if _, ok := mapName(rules.Map, f.Name); ok {
			continue
		}
		if name, ok := byUse[specialUse(f)]; ok && name != f.Name {
			moved[f.Name] = name
		}
	}
	out := make([]plannedFolder, 0, len(srcFolders))
	for _, f := range srcFolders {
		p := plannedFolder{src: f, target: f.Name}
		use := specialUse(f)
		switch {
		case !rules.KeepAllMail && (use == `\All` || use == `\Important`):
			p.skip = "Gmail " + use + " folder (every message is also in a label; --keep-all-mail copies it)"
		case len(rules.Include) > 0 && !matchAny(rules.Include, f.Name):
			p.skip = "not matched by --include"
		case matchAny(rules.Exclude, f.Name):
			p.skip = "matched by --exclude"
		}
		if strings.EqualFold(f.Name, "INBOX") {
			p.target = "INBOX"
			if rules.ToFolder != "" {
				p.target = rules.ToFolder
			}
		} else if mapped, ok := mapName(rules.Map, f.Name); ok {
			p.target = mapped
		} else if name, ok := byUse[use]; ok && use != "" {
			p.target = name
		} else if mapped, ok := mapName(moved, f.Name); ok {
			p.target = mapped
		}
		out = append(out, p)
	}
	return out
}

func matchAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// mapName applies --map: an exact match, or the longest OLD that is a parent
// of name ("Old/Child" follows "Old").
func mapName(m map[string]string, name string) (string, bool) {
	if nw, ok := m[name]; ok {
		return nw, true
	}
	best := ""
	for old := range m {
		if strings.HasPrefix(name, old+"/") && len(old) > len(best) {
			best = old
		}
	}
	if best == "" {
		return "", false
	}
	return m[best] + name[len(best):], true
}

// SpecialUse is the special use the engine asks the target to give the
// folder it creates for f: the announced one, else one guessed from a
// well-known name ("Sent Items").
func SpecialUse(f source.Folder) string { return specialUse(f) }

// unmatchedRules lists the --include, --exclude and --map rules that match
// no source folder: almost always a typo, which would otherwise pass in
// silence (a whole folder not copied, or copied under its own name).
func unmatchedRules(r FolderRules, folders []source.Folder) []string {
	var out []string
	matches := func(re *regexp.Regexp) bool {
		for _, f := range folders {
			if re.MatchString(f.Name) {
				return true
			}
		}
		return false
	}
	for _, re := range r.Include {
		if !matches(re) {
			out = append(out, fmt.Sprintf("--include %q matches no source folder", re.String()))
		}
	}
	for _, re := range r.Exclude {
		if !matches(re) {
			out = append(out, fmt.Sprintf("--exclude %q matches no source folder", re.String()))
		}
	}
	for old := range r.Map {
		found := false
		for _, f := range folders {
			if f.Name == old || strings.HasPrefix(f.Name, old+"/") {
				found = true
				break
			}
		}
		if !found {
			out = append(out, fmt.Sprintf("--map %q matches no source folder", old))
		}
	}
	slices.Sort(out)
	return out
}

package maildirpp

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/emersion/go-maildir"
)

// KeywordsFile is Dovecot's keyword table, one per folder directory.
const KeywordsFile = "dovecot-keywords"

// MaxKeywords is the number of keyword letters (a..z).
const MaxKeywords = 26

// Flag letters for the IMAP system flags (the letters are go-maildir's
// constants). 'P' (passed) has no IMAP system flag: it reads as the keyword
// "$Forwarded"; when writing, "$Forwarded" is a Dovecot keyword letter like
// any other keyword (that is what Dovecot does).
var systemLetters = map[string]byte{
	`\draft`:    byte(maildir.FlagDraft),
	`\flagged`:  byte(maildir.FlagFlagged),
	`\answered`: byte(maildir.FlagReplied),
	`\seen`:     byte(maildir.FlagSeen),
	`\deleted`:  byte(maildir.FlagTrashed),
}

var letterFlags = map[byte]string{
	byte(maildir.FlagDraft):   `\Draft`,
	byte(maildir.FlagFlagged): `\Flagged`,
	byte(maildir.FlagPassed):  `$Forwarded`,
	byte(maildir.FlagReplied): `\Answered`,
	byte(maildir.FlagSeen):    `\Seen`,
	byte(maildir.FlagTrashed): `\Deleted`,
}

// Keywords is Dovecot's keyword table: letter 'a'+i is Names[i] ("" = free).
type Keywords struct {
	Names [MaxKeywords]string
}

// Letter returns the letter of keyword name (case-insensitive, as IMAP).
func (k *Keywords) Letter(name string) (byte, bool) {
	if k == nil {
		return 0, false
	}
	for i, n := range k.Names {
		if n != "" && strings.EqualFold(n, name) {
			return byte('a' + i), true
		}
	}
	return 0, false
}

// Name returns the keyword of letter c ('a'..'z').
func (k *Keywords) Name(c byte) (string, bool) {
	if k == nil || c < 'a' || c > 'z' || k.Names[c-'a'] == "" {
		return "", false
	}
	return k.Names[c-'a'], true
}

// Add gives keyword name a letter if it has none; it reports whether the
// table changed and false ok when the table is full (26 keywords).
func (k *Keywords) Add(name string) (changed, ok bool) {
	if _, found := k.Letter(name); found {
		return false, true
	}
	for i, n := range k.Names {
		if n == "" {
			k.Names[i] = name
			return true, true
		}
	}
	return false, false
}

// ReadKeywords reads dir/dovecot-keywords (dir is a folder's directory). A missing file is an empty table;
// malformed lines are ignored (as Dovecot does).
func ReadKeywords(root string) (*Keywords, error) {
	k := &Keywords{}
	f, err := os.Open(filepath.Join(root, KeywordsFile))
	if errors.Is(err, os.ErrNotExist) {
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read Maildir keywords: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		num, name, ok := strings.Cut(strings.TrimRight(sc.Text(), "\r"), " ")
		i, err := strconv.Atoi(num)
		if !ok || err != nil || i < 0 || i >= MaxKeywords || name == "" || strings.ContainsAny(name, " \t") {
			continue
		}
		k.Names[i] = name
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read Maildir keywords: %w", err)
	}
	return k, nil
}

// WriteKeywords replaces dir/dovecot-keywords atomically (temporary file,
// fsync, rename, fsync of dir), mode 0600.
func WriteKeywords(root string, k *Keywords) error {
	var b strings.Builder
	for i, n := range k.Names {
		if n != "" {
			fmt.Fprintf(&b, "%d %s\n", i, n)
		}
	}
	dst := filepath.Join(root, KeywordsFile)
	tmp, err := os.CreateTemp(root, "."+KeywordsFile+".tmp*")
	if err != nil {
		return fmt.Errorf("write Maildir keywords: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write Maildir keywords: %w", err)
	}
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return fmt.Errorf("write Maildir keywords: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write Maildir keywords: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write Maildir keywords: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("write Maildir keywords: %w", err)
	}
	return SyncDir(root)
}

// SyncDir fsyncs a directory so that a rename or create in it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// FlagsToLetters returns the Maildir info letters for IMAP flags, sorted in
// ASCII order without duplicates. Keywords without a letter in k and flags
// with no Maildir form (\Recent) are left out.
func FlagsToLetters(flags []string, k *Keywords) string {
	var out []byte
	for _, f := range flags {
		if c, ok := systemLetters[strings.ToLower(f)]; ok {
			out = append(out, c)
			continue
		}
		if strings.HasPrefix(f, `\`) {
			continue
		}
		if c, ok := k.Letter(f); ok {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	res := out[:0]
	for i, c := range out {
		if i == 0 || c != out[i-1] {
			res = append(res, c)
		}
	}
	return string(res)
}

// LettersToFlags returns the IMAP flags of Maildir info letters. Unknown
// letters (a keyword letter missing from k) are left out.
func LettersToFlags(letters string, k *Keywords) []string {
	var out []string
	seen := map[string]bool{}
	add := func(f string) {
		if !seen[strings.ToLower(f)] {
			seen[strings.ToLower(f)] = true
			out = append(out, f)
		}
	}
	for i := 0; i < len(letters); i++ {
		c := letters[i]
		if f, ok := letterFlags[c]; ok {
			add(f)
		} else if n, ok := k.Name(c); ok {
			add(n)
		}
	}
	return out
}

// ParseFileName splits a Maildir file name "<unique>[,S=<size>][,...][:2,<flags>]".
// size is -1 when the name has no ",S=".
func ParseFileName(base string) (unique string, size int64, flags string) {
	size = -1
	head := base
	if i := strings.Index(base, ":2,"); i >= 0 {
		head, flags = base[:i], base[i+3:]
	} else if i := strings.IndexByte(base, ':'); i >= 0 {
		head = base[:i]
	}
	parts := strings.Split(head, ",")
	unique = parts[0]
	for _, p := range parts[1:] {
		if v, ok := strings.CutPrefix(p, "S="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				size = n
			}
		}
	}
	return unique, size, flags
}

// FileName builds "<unique>,S=<size>:2,<letters>".
func FileName(unique string, size int64, letters string) string {
	return unique + ",S=" + strconv.FormatInt(size, 10) + ":2," + letters
}

// ValidUnique reports whether s can be the unique part of a file name: not
// empty, at most 200 bytes, printable ASCII without "/", ",", ":", and not
// starting with ".".
func ValidUnique(s string) bool {
	if s == "" || len(s) > 200 || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || c == '/' || c == ',' || c == ':' || c == '\\' {
			return false
		}
	}
	return true
}

// ValidKeyword reports whether name can be stored as a Dovecot keyword: an
// IMAP atom (no space, controls, `(){%*"\]`) that does not start with "\".
func ValidKeyword(name string) bool {
	if name == "" || len(name) > 200 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

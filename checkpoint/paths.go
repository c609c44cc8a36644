package checkpoint

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// JobID names the state directory of a job: the first 16 hex digits of the
// SHA-256 of the endpoint strings. The parts must be free of secrets (no
// passwords or tokens); they are length-prefixed so that ("ab","c") and
// ("a","bc") differ.
func JobID(parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// DefaultDir is where state directories live by default:
// $XDG_STATE_HOME/mailferry, else ~/.local/state/mailferry (else a
// directory under the system's temporary directory when there is no home).
func DefaultDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "mailferry")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".local", "state", "mailferry")
	}
	return filepath.Join(os.TempDir(), "mailferry-state")
}

// Remove deletes the journal at path (with its lock and temporary files)
// under its lock, refusing, with the holder's PID, while a run holds it. A
// journal that does not exist is not an error.
func Remove(path string) error {
	lf, err := lockFile(path)
	if err != nil {
		return err
	}
	defer lf.Close()
	for _, p := range []string{path, path + compactSuffix, path + ".lock"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the journal: %w", err)
		}
	}
	return nil
}

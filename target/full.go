package target

import (
	"errors"
	"fmt"
)

// ErrAccountFull is wrapped by Put (instead of ErrFolderFull, which it
// wraps in turn) when the quota that refused a store covers the whole
// account: every folder is then full, not only the one stored into.
var ErrAccountFull = fmt.Errorf("account %w", ErrFolderFull)

// ErrNotStored is wrapped by a store error when the target refused the
// message together with others in one command and, by the protocol, stored
// none of them (IMAP MULTIAPPEND, RFC 3502): the outcome is known, so the
// message may be sent again as it is, without asking Find first. The
// target sends it alone next time.
var ErrNotStored = errors.New("refused with others in one command; not stored")

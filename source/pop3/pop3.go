// Package pop3 is the POP3 source: it presents a POP3 mailbox (through the
// client in internal/pop3conn) as a source.Source of one folder.
package pop3

import "github.com/mailferry/mailferry/internal/pop3conn"

// The client's types, so that callers configure a source without importing
// the client package.
type (
	// Config describes one POP3 account.
	Config = pop3conn.Config
	// Client is one POP3 session.
	Client = pop3conn.Client
	// Security selects how the connection is protected.
	Security = pop3conn.Security
	// Error is a -ERR reply.
	Error = pop3conn.Error
	// MsgSize is one line of a LIST listing.
	MsgSize = pop3conn.MsgSize
)

// The Security modes.
const (
	Implicit = pop3conn.Implicit
	STARTTLS = pop3conn.STARTTLS
	None     = pop3conn.None
)

// Dial opens a POP3 session (pop3conn.Dial).
var Dial = pop3conn.Dial

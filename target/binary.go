package target

// BinaryAppender is implemented by targets that can store a message holding
// NUL bytes exactly, when its Delivery says Binary (IMAP: APPEND with a
// literal8, RFC 3516, where the server announces BINARY). Without it the
// engine refuses such messages (or strips the bytes with --strip-nul):
// servers refuse NUL in a normal literal (Cyrus) or serve it altered.
type BinaryAppender interface {
	AppendsBinary() bool
}

package checkpoint

// SetWriteHook is for tests that enumerate crash points (see
// migrate/crashpoints_test.go). fn is called by the writer goroutine with
// each chunk of whole records just before it is written to the file; when
// it returns an error the chunk is not written and the journal fails as
// after a failed write (nothing further is accepted). While a hook is set
// the journal writes only when a caller waits for durability (Intent(s),
// Sync, Close) or its buffer is full, never on the 50 ms timer, so that a
// run makes the same writes every time. fn must not call the journal.
func (j *Journal) SetWriteHook(fn func(p []byte) error) {
	j.mu.Lock()
	j.hook = fn
	j.mu.Unlock()
}

func (j *Journal) hooked() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.hook != nil
}

// Package servertest holds what the harnesses that start real mail servers
// for the tests (internal/dovecottest, internal/cyrustest) share: free
// loopback ports, a greeting check, an executable check and a log buffer.
package servertest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LockedBuffer is a bytes.Buffer safe for a process's stdout and stderr
// writers and a test reading it at once.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// IsExec reports whether p is an executable file.
func IsExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Addr is 127.0.0.1:port.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// FreePorts returns n distinct loopback ports that were free a moment ago.
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Greet connects to addr and checks that the server's first line starts
// with prefix and contains every one of contains (so that another program
// that took the port meanwhile does not pass for the server). An empty
// prefix only checks that the port accepts connections.
func Greet(addr, prefix string, contains ...string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if prefix == "" {
		return nil
	}
	c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	ok := strings.HasPrefix(line, prefix)
	for _, s := range contains {
		ok = ok && strings.Contains(line, s)
	}
	if !ok {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	return nil
}

// Package redistest gives a test a throwaway redis-server of its own,
// listening on a Unix socket in a temporary directory, which the test may
// stop and start again to show what happens when Redis goes away. It needs
// the redis-server binary on the PATH. Without it, tests that need Redis
// skip with a one-line how-to, or fail under AUTHD_TEST_REQUIRE_ALL=1 (see
// internal/testenv), as with internal/pgtest and Postgres.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authd/authd/internal/testenv"
)

// startTimeout bounds how long Start waits for a new server to answer PING.
const startTimeout = 10 * time.Second

// Server is a redis-server process of one test. It keeps nothing on disk
// (no RDB snapshots, no append-only file), so a Stop loses every key, as a
// crash of a cache would.
type Server struct {
	tb   testing.TB
	bin  string // the redis-server binary
	dir  string // the server's working directory, holding its socket
	sock string

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil while stopped
	exited chan struct{} // closed when cmd has been waited for
}

// New starts a redis-server for this test and returns once it answers PING.
// The server is killed and its directory removed when the test ends.
func New(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(tb, "no redis-server on the PATH for this test: install it (Debian: apt-get install redis-server)")
	}
	dir, err := tempDir()
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	s := &Server{tb: tb, bin: bin, dir: dir, sock: filepath.Join(dir, "redis.sock")}
	tb.Cleanup(func() {
		s.stop()
		os.RemoveAll(dir)
	})
	s.Start()
	return s
}

// tempDir makes the server's directory. Not testing.TB.TempDir: its path
// holds the test's name, and a Unix socket's path may not be longer than
// about 100 bytes.
func tempDir() (string, error) {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return "", err
	}
	if len(dir) > 80 { // a long TMPDIR
		os.Remove(dir)
		dir, err = os.MkdirTemp("/tmp", "redistest-")
	}
	return dir, err
}

// URL is the server's address as go-redis's ParseURL reads it.
func (s *Server) URL() string { return "unix://" + s.sock }

// Start starts the server, on the same socket as before, and returns once it
// answers PING. It is a no-op while the server runs.
func (s *Server) Start() {
	s.tb.Helper()
	if err := s.start(); err != nil {
		s.tb.Fatalf("redistest: %v", err)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	// A killed server leaves its socket file behind.
	if err := os.Remove(s.sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	cmd := exec.Command(s.bin,
		"--port", "0", // no TCP: tests running in parallel cannot collide
		"--unixsocket", s.sock,
		"--unixsocketperm", "700",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
	)
	cmd.Dir = s.dir
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	if err := waitReady(s.sock, exited); err != nil {
		cmd.Process.Kill()
		<-exited
		s.cmd = nil
		return fmt.Errorf("%w\n%s", err, out.String())
	}
	return nil
}

// waitReady polls the socket until the server answers PING, it exits, or
// startTimeout passes. The backoff starts short: a server is usually up in
// a few milliseconds.
func waitReady(sock string, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	backoff := time.Millisecond
	for {
		err := ping(sock)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server did not answer PING within %v: %w", startTimeout, err)
		}
		select {
		case <-exited:
			return errors.New("redis-server exited at start")
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

// ping sends PING over a new connection and reads the reply, with no client
// library: the package stays usable by tests of any client.
func ping(sock string) error {
	conn, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	// A server still loading answers -LOADING; anything else is not ready.
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Stop kills the server (SIGKILL, as a crash or an OOM kill would) and
// waits for it to exit: every connection drops and every key is lost. It is
// a no-op while the server is stopped.
func (s *Server) Stop() {
	s.tb.Helper()
	s.stop()
}

func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	// SIGKILL ends a frozen process too.
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Freeze stops the server process (SIGSTOP) without closing a connection:
// it then accepts connections and commands and answers none, as a hung
// server or a network partition would. Thaw resumes it; Stop and the end of
// the test end it.
func (s *Server) Freeze() {
	s.tb.Helper()
	s.signal(syscall.SIGSTOP)
}

// Thaw resumes a server that Freeze stopped.
func (s *Server) Thaw() {
	s.tb.Helper()
	s.signal(syscall.SIGCONT)
}

func (s *Server) signal(sig syscall.Signal) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.tb.Fatalf("redistest: %v: the server is stopped", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("redistest: %v: %v", sig, err)
	}
}

// lockedBuffer is the server's output: written by exec's copying goroutine,
// read by the test when the server fails to start.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

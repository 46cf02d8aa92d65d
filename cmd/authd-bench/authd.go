package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// authd is one authd binary with the environment of one run: the CLI
// commands the setup needs, and the server the scenarios drive.
type authd struct {
	bin     string
	env     []string
	addr    string // host:port serve listens on
	metrics string // host:port /metrics is served on: addr, unless AUTHD_METRICS_LISTEN is set
	pprof   string // host:port of Go's profiler (-pprof), or empty
	store   string // the store's name (postgres, sqlite)
	log     string // file receiving serve's stderr
	cmd     *exec.Cmd
	done    chan error
}

// newAuthd returns an authd on databaseURL listening on a free loopback
// port, with the bench's settings and then extra (KEY=VALUE) on top. The
// environment is built from nothing, so that AUTHD_* variables of the
// caller's shell do not change what is measured.
func newAuthd(bin, databaseURL, dir string, o options) (*authd, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"AUTHD_DATABASE_URL=" + databaseURL,
		"AUTHD_LISTEN=" + addr,
		"AUTHD_SERVER_NAME=" + serverName,
		"AUTHD_MIGRATE=true",
		"AUTHD_RATELIMIT=off",
		fmt.Sprintf("AUTHD_BCRYPT_COST=%d", o.cost),
		"AUTHD_HASH_QUEUE_TIMEOUT=" + o.queueTimeout.String(),
		"AUTHD_LOG_FORMAT=json",
	}
	env = append(env, o.authdEnv...)
	a := &authd{bin: bin, env: env, addr: addr, metrics: addr, log: filepath.Join(dir, "authd.log")}
	if o.pprofDir != "" {
		if a.pprof, err = freePort(); err != nil {
			return nil, err
		}
		a.env = append(a.env, "AUTHD_PPROF_LISTEN="+a.pprof)
	}
	for _, kv := range o.authdEnv {
		if v, ok := strings.CutPrefix(kv, "AUTHD_METRICS_LISTEN="); ok && v != "" {
			a.metrics = dialable(v)
		}
	}
	return a, nil
}

// freePort returns a loopback host:port that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// dialable is a listen address as a client reaches it: an empty or
// unspecified host is loopback.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// replica returns a second authd like a, on the same database with the
// same settings, listening (and serving /metrics, when a serves them
// apart) on free loopback ports of its own, logging to log.
func (a *authd) replica(log string) (*authd, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	b := &authd{bin: a.bin, addr: addr, metrics: addr, log: log}
	metricsListen := ""
	if a.metrics != a.addr {
		if metricsListen, err = freePort(); err != nil {
			return nil, err
		}
		b.metrics = metricsListen
	}
	for _, kv := range a.env {
		switch {
		case strings.HasPrefix(kv, "AUTHD_LISTEN="):
			kv = "AUTHD_LISTEN=" + addr
		case metricsListen != "" && strings.HasPrefix(kv, "AUTHD_METRICS_LISTEN="):
			kv = "AUTHD_METRICS_LISTEN=" + metricsListen
		case strings.HasPrefix(kv, "AUTHD_PPROF_LISTEN="):
			continue // one profiled process is enough, and the port is a's
		}
		b.env = append(b.env, kv)
	}
	return b, nil
}

// run runs an authd CLI command with stdin, and returns its error with
// its output.
func (a *authd) run(ctx context.Context, stdin string, args ...string) error {
	cmd := exec.CommandContext(ctx, a.bin, args...)
	cmd.Env = a.env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("authd %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// start starts authd serve and waits until /readyz answers 200.
func (a *authd) start(ctx context.Context) error {
	logf, err := os.Create(a.log)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	a.cmd = exec.Command(a.bin, "serve")
	a.cmd.Env = a.env
	a.cmd.Stdout = logf
	a.cmd.Stderr = logf
	a.cmd.SysProcAttr = childAttr()
	if err := a.cmd.Start(); err != nil {
		return err
	}
	a.done = make(chan error, 1)
	go func() { a.done <- a.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-a.done:
			return fmt.Errorf("authd serve exited: %v\n%s", err, a.logTail())
		case <-ctx.Done():
			a.stop()
			return ctx.Err()
		default:
		}
		resp, err := http.Get("http://" + a.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			a.stop()
			return fmt.Errorf("authd serve not ready after 60s\n%s", a.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pid is the server's process ID.
func (a *authd) pid() int { return a.cmd.Process.Pid }

// stop sends SIGTERM and waits for the exit (SIGKILL after 15s).
func (a *authd) stop() error {
	if a.cmd == nil || a.cmd.Process == nil {
		return nil
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("authd serve: %w\n%s", err, a.logTail())
		}
		return err
	case <-time.After(15 * time.Second):
		a.cmd.Process.Kill()
		<-a.done
		return errors.New("authd serve did not stop within 15s of SIGTERM")
	}
}

// logTail is the end of the server's log, for an error message.
func (a *authd) logTail() string {
	b, _ := os.ReadFile(a.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Package pgtest gives tests a throwaway Postgres database on the server
// named by AUTHD_TEST_DATABASE_URL. `make test` sets that variable, starting a
// cluster with pg_virtualenv when none is given. Without it, tests that need
// Postgres skip with a one-line how-to, or fail under AUTHD_TEST_REQUIRE_ALL=1
// (see internal/testenv). A test that must stop and start its database gets
// a private server with NewCluster.
package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/testenv"
)

// EnvVar names the variable holding the URL of a Postgres server on which the
// tests may create and drop databases.
const EnvVar = "AUTHD_TEST_DATABASE_URL"

// NewDatabase creates an empty database for this test and returns its URL.
// The database is dropped when the test ends.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv(EnvVar)
	if admin == "" {
		testenv.Missing(tb, "no Postgres for this test: run `make test` (starts one with pg_virtualenv) or set "+EnvVar+"=postgres://user:pass@host:port/db")
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("%s must be a postgres:// URL", EnvVar)
	}
	name := "authd_test_" + strings.ToLower(rand.Text()[:16])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("pgtest: connect to %s: %v", EnvVar, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("pgtest: connect for cleanup: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			tb.Errorf("pgtest: drop database: %v", err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// Cluster is a PostgreSQL server of a test's own, on a loopback port, which
// the test may stop and start again: for what a shared server cannot show,
// such as authd losing its database. It needs the server binaries (initdb,
// pg_ctl), which `make test` needs anyway; when run as root it runs them as
// the postgres user, since PostgreSQL refuses to run as root.
type Cluster struct {
	tb   testing.TB
	bin  string // the directory of initdb and pg_ctl
	dir  string // the server's: data/, its log and its socket
	port int
	cred *syscall.Credential // the postgres user's, when run as root

	frozen []int // the processes Freeze stopped
}

// NewCluster initialises a cluster in a temporary directory and starts it.
// It is stopped and removed when the test ends. The superuser is postgres,
// trusted on loopback without a password.
func NewCluster(tb testing.TB) *Cluster {
	tb.Helper()
	bin, err := serverBin()
	if err != nil {
		testenv.Missing(tb, "no PostgreSQL server binaries for this test: "+err.Error()+": install them (Debian: apt-get install postgresql)")
	}
	dir, err := os.MkdirTemp("", "authd-pgtest-")
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	c := &Cluster{tb: tb, bin: bin, dir: dir}
	tb.Cleanup(func() {
		c.Thaw()
		// Stopped already, or never started: pg_ctl says so and fails.
		c.pgCtl("stop", "-m", "immediate", "-w")
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Fatalf("pgtest: running as root, and there is no postgres user to run the server as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
	}
	if out, err := c.command(filepath.Join(bin, "initdb"), "-D", c.dataDir(), "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		tb.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	// A port that was free a moment ago may be taken by the time the
	// server binds it: then try another.
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("pgtest: find a free port: %v", err)
		}
		c.port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		err = c.start()
		if err == nil {
			return c
		}
		if attempt == 3 {
			tb.Fatalf("pgtest: %v", err)
		}
	}
}

// serverBin finds the directory of initdb and pg_ctl: Debian's newest
// /usr/lib/postgresql/VERSION/bin, else the PATH.
func serverBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	p, err := exec.LookPath("pg_ctl")
	if err != nil {
		return "", errors.New("no initdb and pg_ctl in /usr/lib/postgresql/*/bin or on the PATH")
	}
	return filepath.Dir(p), nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }

// command is name with args, run as the server's user.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

// pgCtl runs pg_ctl on the cluster and returns its output and error.
func (c *Cluster) pgCtl(args ...string) ([]byte, error) {
	args = append([]string{"-D", c.dataDir()}, args...)
	return c.command(filepath.Join(c.bin, "pg_ctl"), args...).CombinedOutput()
}

// URL is the superuser's URL of the cluster's postgres database.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Start starts the server, on the same port as before, and returns once it
// accepts connections.
func (c *Cluster) Start() {
	c.tb.Helper()
	if err := c.start(); err != nil {
		c.tb.Fatalf("pgtest: %v", err)
	}
}

func (c *Cluster) start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off", c.port, c.dir)
	if out, err := c.pgCtl("start", "-w", "-t", "60", "-l", filepath.Join(c.dir, "log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return nil
}

// Stop stops the server at once, as a crash or a pulled cable would: every
// connection drops, and nothing is shut down cleanly.
func (c *Cluster) Stop() {
	c.tb.Helper()
	if out, err := c.pgCtl("stop", "-m", "immediate", "-w"); err != nil {
		c.tb.Fatalf("pgtest: pg_ctl stop: %v\n%s", err, out)
	}
}

// Freeze stops every process of the server (SIGSTOP) without closing a
// connection: the server then accepts connections and queries and answers
// none, as across a network partition. Thaw resumes it; the test's end
// does too. Linux only (it reads /proc).
func (c *Cluster) Freeze() {
	c.tb.Helper()
	b, err := os.ReadFile(filepath.Join(c.dataDir(), "postmaster.pid"))
	if err != nil {
		c.tb.Fatalf("pgtest: freeze: %v", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		c.tb.Fatalf("pgtest: freeze: postmaster.pid: %v", err)
	}
	// The postmaster first, so that it forks no backend while its children
	// are listed.
	c.signal(pm, syscall.SIGSTOP)
	c.frozen = []int{pm}
	c.tb.Cleanup(c.Thaw)
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		stat, err := os.ReadFile(p)
		if err != nil {
			continue // exited
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(pm) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		c.signal(pid, syscall.SIGSTOP)
		c.frozen = append(c.frozen, pid)
	}
}

// Thaw resumes the processes Freeze stopped.
func (c *Cluster) Thaw() {
	for _, pid := range c.frozen {
		syscall.Kill(pid, syscall.SIGCONT)
	}
	c.frozen = nil
}

func (c *Cluster) signal(pid int, sig syscall.Signal) {
	c.tb.Helper()
	if err := syscall.Kill(pid, sig); err != nil {
		c.tb.Fatalf("pgtest: signal %d: %v", pid, err)
	}
}

package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/postgres"
	"github.com/authd/authd/internal/store/sqlite"
	"github.com/authd/authd/internal/token"
)

const (
	serverName = "localhost"
	// benchPassword is every bench user's password.
	benchPassword = "correct horse battery staple"
)

// userName is the localpart of bench user i.
func userName(i int) string { return fmt.Sprintf("bench%d", i) }

// database is a fresh, empty database of one store kind.
type database struct {
	kind string
	url  string // AUTHD_DATABASE_URL
	drop func() error
}

// newDatabase creates the run's database: a new database on the Postgres
// server at adminURL, or a SQLite file in dir.
func newDatabase(ctx context.Context, kind, adminURL, dir string) (*database, error) {
	if kind == "sqlite" {
		return &database{kind: kind, url: "sqlite:" + filepath.Join(dir, "authd.db"), drop: func() error { return nil }}, nil
	}
	if adminURL == "" {
		return nil, fmt.Errorf("postgres: no server: set %s=postgres://… (make bench starts one with pg_virtualenv), or run with -stores sqlite", databaseEnv)
	}
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("%s must be a postgres:// URL", databaseEnv)
	}
	name := "authd_bench_" + strings.ToLower(rand.Text()[:12])
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("postgres: create database: %w", err)
	}
	u.Path = "/" + name
	return &database{kind: kind, url: u.String(), drop: func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	}}, nil
}

// createUsers creates n users with the CLI, as an operator would, a few at
// a time (each hashes its password at the configured cost).
func createUsers(ctx context.Context, a *authd, n int) error {
	return parallel(n, 4, func(i int) error {
		return a.run(ctx, benchPassword+"\n", "user", "create", userName(i), "--password-stdin")
	})
}

// parallel runs fn(0) to fn(n-1), at most limit at once, and returns the
// errors.
func parallel(n, limit int, fn func(i int) error) error {
	sem := make(chan struct{}, limit)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = fn(i)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// minted are the sessions written before authd starts.
type minted struct {
	// access are live access tokens (whoami, verify), one per connection.
	access []string
	// logout are access tokens of their own devices, each spent by one
	// logout.
	logout []string
	// refresh are refresh tokens of their own devices, one per connection,
	// each the start of a chain of refreshes.
	refresh []string
}

// mint writes sessions straight into the store, the low-cost path: the
// same CreateSession a login makes, without the bcrypt comparison that
// would make a login-minted token cost 60 ms. On Postgres the minting
// connections do not wait for the WAL flush (synchronous_commit=off), which
// changes nothing for authd's own connections.
func mint(ctx context.Context, db *database, users, nAccess, nLogout, nRefresh int) (minted, error) {
	var st store.SessionStore
	workers := 1 // SQLite has one writer
	switch db.kind {
	case "postgres":
		sep := "?"
		if strings.Contains(db.url, "?") {
			sep = "&"
		}
		pg, err := postgres.Open(ctx, db.url+sep+"synchronous_commit=off&pool_max_conns=8")
		if err != nil {
			return minted{}, err
		}
		defer pg.Close()
		st, workers = pg, 8
	default:
		path, _ := strings.CutPrefix(db.url, "sqlite:")
		sl, err := sqlite.Open(ctx, path)
		if err != nil {
			return minted{}, err
		}
		defer sl.Close()
		st = sl
	}
	now := time.Now().UTC()
	var m minted
	type job struct {
		dst     *string
		device  string
		refresh bool
	}
	var jobs []job
	add := func(dst []string, prefix string, refresh bool) {
		for i := range dst {
			jobs = append(jobs, job{&dst[i], fmt.Sprintf("%s%d", prefix, i), refresh})
		}
	}
	m.access, m.logout, m.refresh = make([]string, nAccess), make([]string, nLogout), make([]string, nRefresh)
	add(m.access, "ACCESS", false)
	add(m.logout, "LOGOUT", false)
	add(m.refresh, "REFRESH", true)
	return m, parallel(len(jobs), workers, func(i int) error {
		j := jobs[i]
		userID := "@" + userName(i%users) + ":" + serverName
		access := token.New(token.Access)
		s := store.NewSession{
			Device:      store.Device{UserID: userID, ID: j.device, CreatedAt: now, LastSeenAt: now},
			AccessToken: store.AccessToken{Hash: token.Hash(access), UserID: userID, DeviceID: j.device, CreatedAt: now},
		}
		tok := access
		if j.refresh {
			// As a refreshable login issues them: the access token expires
			// (AUTHD_ACCESS_TOKEN_TTL's default), the refresh token not.
			s.AccessToken.ExpiresAt = now.Add(5 * time.Minute)
			tok = token.New(token.Refresh)
			s.RefreshToken = &store.RefreshToken{Hash: token.Hash(tok), UserID: userID, DeviceID: j.device, CreatedAt: now}
		}
		if err := st.CreateSession(ctx, s); err != nil {
			return fmt.Errorf("mint session: %w", err)
		}
		*j.dst = tok // each job its own slot
		return nil
	})
}

package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/sqlite"
	"github.com/authd/authd/internal/token"
)

func TestSweepOnce(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "authd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.MigrateUp(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	if err := st.CreateUser(ctx, store.User{ID: "@a:example.org", PasswordHash: "x", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	add := func(device string, expires time.Time) store.TokenHash {
		h := token.Hash(token.New(token.Access))
		err := st.CreateSession(ctx, store.NewSession{
			Device:      store.Device{UserID: "@a:example.org", ID: device, CreatedAt: now, LastSeenAt: now},
			AccessToken: store.AccessToken{Hash: h, UserID: "@a:example.org", DeviceID: device, CreatedAt: now.Add(-30 * 24 * time.Hour), ExpiresAt: expires},
		})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	old := add("OLD", now.Add(-tokenRetention-time.Minute))
	recent := add("RECENT", now.Add(-time.Hour))
	forever := add("FOREVER", time.Time{})

	var logs bytes.Buffer
	sweepOnce(ctx, st, slog.New(slog.NewTextHandler(&logs, nil)), tokenRetention, func() time.Time { return now })

	if _, err := st.FindSessionByAccessToken(ctx, old); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a token expired past the retention survived the sweep: %v", err)
	}
	for _, h := range []store.TokenHash{recent, forever} {
		if _, err := st.FindSessionByAccessToken(ctx, h); err != nil {
			t.Fatalf("the sweep deleted a token it must keep: %v", err)
		}
	}
	if !bytes.Contains(logs.Bytes(), []byte("deleted=1")) {
		t.Fatalf("sweep log = %q", logs.String())
	}
}

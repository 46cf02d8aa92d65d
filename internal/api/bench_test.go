package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/metrics"
	"github.com/authd/authd/internal/password"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/sqlite"
	"github.com/authd/authd/internal/token"
	"github.com/authd/authd/internal/tokencache"
)

// benchWriter is a ResponseWriter that keeps nothing, so that a benchmark
// counts the handler's allocations and not a recorder's.
type benchWriter struct {
	h      http.Header
	status int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(status int)      { w.status = status }

// benchHandler is the real router on a fresh SQLite store, configured as
// serve configures it (JSON request log at info, Prometheus metrics), with
// one user and one live token.
func benchHandler(b *testing.B, cacheTTL time.Duration) (http.Handler, string) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "authd.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.MigrateUp(ctx); err != nil {
		b.Fatal(err)
	}
	hasher, err := password.NewHasher(bcrypt.MinCost, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	if err := st.CreateUser(ctx, store.User{ID: "@alice:example.org", PasswordHash: "$authd-v1$x", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	tok := token.New(token.Access)
	if err := st.CreateSession(ctx, store.NewSession{
		Device:      store.Device{UserID: "@alice:example.org", ID: "PHONE", CreatedAt: now, LastSeenAt: now},
		AccessToken: store.AccessToken{Hash: token.Hash(tok), UserID: "@alice:example.org", DeviceID: "PHONE", CreatedAt: now},
	}); err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	return api.New(api.Deps{
		Store: st, Hasher: hasher, ServerName: serverName, TokenCache: tokencache.New(cacheTTL, 0),
		Logger: log, Observer: metrics.New(metrics.Options{Logger: log}),
	}), tok
}

// benchRequest serves req repeatedly and fails unless each answer is 200.
func benchRequest(b *testing.B, h http.Handler, req *http.Request) {
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkWhoami is GET /account/whoami through the real router on
// SQLite, with the token cache on (production default) and off.
func BenchmarkWhoami(b *testing.B) {
	for _, bc := range []struct {
		name string
		ttl  time.Duration
	}{{"CacheOn", 5 * time.Second}, {"CacheOff", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			h, tok := benchHandler(b, bc.ttl)
			req := httptest.NewRequest("GET", "/_matrix/client/v3/account/whoami", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			benchRequest(b, h, req)
		})
	}
}

// BenchmarkVerify is the forward-auth check with the token cache on.
func BenchmarkVerify(b *testing.B) {
	h, tok := benchHandler(b, 5*time.Second)
	req := httptest.NewRequest("GET", "/_authd/verify", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-Original-URI", "/_matrix/client/v3/sync?since=s1")
	benchRequest(b, h, req)
}

// BenchmarkHealthz is the router's own cost, the floor of the two above.
func BenchmarkHealthz(b *testing.B) {
	h, _ := benchHandler(b, 0)
	benchRequest(b, h, httptest.NewRequest("GET", "/healthz", nil))
}

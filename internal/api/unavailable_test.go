package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/password"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

// fakeStore is a store whose methods the test sets; any other method
// panics (the embedded interface is nil), which the router turns into a 500
// that fails the test.
type fakeStore struct {
	api.Store
	findUserByLogin          func(ctx context.Context, id string) (store.User, error)
	findDevice               func(ctx context.Context, userID, deviceID string) (store.Device, error)
	createSession            func(ctx context.Context, s store.NewSession) error
	findSessionByAccessToken func(ctx context.Context, h store.TokenHash) (store.Session, error)
}

func (f *fakeStore) FindUserByLogin(ctx context.Context, id string) (store.User, error) {
	return f.findUserByLogin(ctx, id)
}

func (f *fakeStore) FindDevice(ctx context.Context, userID, deviceID string) (store.Device, error) {
	return f.findDevice(ctx, userID, deviceID)
}

func (f *fakeStore) CreateSession(ctx context.Context, s store.NewSession) error {
	return f.createSession(ctx, s)
}

func (f *fakeStore) FindSessionByAccessToken(ctx context.Context, h store.TokenHash) (store.Session, error) {
	return f.findSessionByAccessToken(ctx, h)
}

// handlerHarness is a harness around any handler, for the routes that need
// no store.
func handlerHarness(t *testing.T, h http.Handler) *harness {
	return &harness{t: t, h: h}
}

func wantUnavailable(t *testing.T, r response) {
	t.Helper()
	wantError(t, r, http.StatusServiceUnavailable, "M_UNKNOWN")
	if r.str("error") != "Service temporarily unavailable" {
		t.Fatalf("503 message %q reveals more than it should", r.str("error"))
	}
	if _, ok := r.body["access_token"]; ok {
		t.Fatalf("a 503 issued a token: %s", r.raw)
	}
}

// Until serve has its store, the process is alive, not ready, and every
// Matrix request is a 503 the client retries.
func TestNewUnavailable(t *testing.T) {
	metricsServed := false
	h := handlerHarness(t, api.NewUnavailable(api.Deps{
		Ready: func(context.Context) error { return errors.New("database unreachable") },
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			metricsServed = true
			w.Header().Set("Content-Type", "application/json") // the do helper wants JSON
			w.Write([]byte("{}"))
		}),
	}))
	if r := h.do("GET", "/healthz", ""); r.status != 200 || r.str("status") != "ok" {
		t.Fatalf("healthz = %d %s", r.status, r.raw)
	}
	if r := h.do("GET", "/readyz", ""); r.status != 503 || r.str("status") != "unavailable" || r.str("reason") != "database unreachable" {
		t.Fatalf("readyz = %d %s", r.status, r.raw)
	}
	if r := h.do("GET", "/metrics", ""); r.status != 200 || !metricsServed {
		t.Fatalf("metrics = %d %s", r.status, r.raw)
	}
	tok := token.New(token.Access)
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/_matrix/client/v3/login", ""},
		{"POST", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"alice","password":"pw"}`},
		{"POST", "/_matrix/client/r0/logout", ""},
		{"GET", "/_matrix/client/v3/account/whoami?access_token=" + tok, ""},
		{"POST", "/_matrix/client/v3/refresh", `{"refresh_token":"x"}`},
		{"GET", verifyPath, ""},
		{"GET", "/anything", ""},
	} {
		wantUnavailable(t, h.do(req.method, req.path, req.body))
	}
	if r := h.do("OPTIONS", "/_matrix/client/v3/login", ""); r.status != 204 {
		t.Fatalf("OPTIONS = %d %s", r.status, r.raw)
	}

	// Without a Ready, the reason is that it is starting.
	bare := handlerHarness(t, api.NewUnavailable(api.Deps{}))
	if r := bare.do("GET", "/readyz", ""); r.status != 503 || r.str("reason") != "starting" {
		t.Fatalf("readyz = %d %s", r.status, r.raw)
	}
	wantError(t, bare.do("GET", "/metrics", ""), 503, "M_UNKNOWN")
}

// A database that hangs costs a request StoreTimeout, then 503 M_UNKNOWN.
func TestStoreTimeout(t *testing.T) {
	hang := func(ctx context.Context) error {
		<-ctx.Done()
		return fmt.Errorf("postgres: find: %w", ctx.Err())
	}
	var timedOut []string
	fake := &fakeStore{
		findUserByLogin: func(ctx context.Context, id string) (store.User, error) {
			timedOut = append(timedOut, "FindUserByLogin")
			return store.User{}, hang(ctx)
		},
		findSessionByAccessToken: func(ctx context.Context, h store.TokenHash) (store.Session, error) {
			timedOut = append(timedOut, "FindSessionByAccessToken")
			return store.Session{}, hang(ctx)
		},
	}
	h := newFakeHarness(t, fake, func(d *api.Deps) { d.StoreTimeout = 10 * time.Millisecond })
	tok := token.New(token.Access)
	wantUnavailable(t, h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(tok)))
	wantUnavailable(t, h.do("GET", verifyPath, "", bearer(tok)))
	wantUnavailable(t, h.do("POST", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"alice","password":"pw"}`))
	if got := strings.Join(timedOut, ","); got != "FindSessionByAccessToken,FindSessionByAccessToken,FindUserByLogin" {
		t.Fatalf("store calls %s", got)
	}
}

// A database the driver cannot reach (store.ErrUnavailable) is 503 at
// once, and a login whose session could not be stored issues no token.
func TestStoreUnavailable(t *testing.T) {
	hasher, err := password.NewHasher(bcrypt.MinCost, nil)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := hasher.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	down := fmt.Errorf("postgres: create session: %w: dial tcp 127.0.0.1:5432: connect: connection refused", store.ErrUnavailable)
	created := 0
	fake := &fakeStore{
		findUserByLogin: func(ctx context.Context, id string) (store.User, error) {
			return store.User{ID: "@alice:example.org", PasswordHash: hash}, nil
		},
		findDevice: func(ctx context.Context, userID, deviceID string) (store.Device, error) {
			return store.Device{}, store.ErrNotFound
		},
		createSession: func(ctx context.Context, s store.NewSession) error {
			created++
			return down
		},
		findSessionByAccessToken: func(ctx context.Context, h store.TokenHash) (store.Session, error) {
			return store.Session{}, down
		},
	}
	h := newFakeHarness(t, fake)
	wantUnavailable(t, h.do("POST", "/_matrix/client/v3/login", `{"type":"m.login.password","user":"alice","password":"pw"}`))
	if created != 1 {
		t.Fatalf("CreateSession called %d times", created)
	}
	wantUnavailable(t, h.do("GET", "/_matrix/client/v3/account/whoami", "", bearer(token.New(token.Access))))
	wantUnavailable(t, h.do("POST", "/_matrix/client/v3/logout", "", bearer(token.New(token.Access))))
}

// newFakeHarness is newHarness on a fake store.
func newFakeHarness(t *testing.T, fake *fakeStore, mutate ...func(*api.Deps)) *harness {
	t.Helper()
	hasher, err := password.NewHasher(bcrypt.MinCost, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	d := api.Deps{Store: fake, Hasher: hasher, ServerName: serverName, Now: c.now}
	for _, m := range mutate {
		m(&d)
	}
	return &harness{t: t, hasher: hasher, clock: c, h: api.New(d)}
}

func TestRequestID(t *testing.T) {
	// httptest's requests come from 192.0.2.1, the trusted proxy here.
	h := handlerHarness(t, api.NewUnavailable(api.Deps{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}))
	seen := map[string]bool{}
	for range 3 {
		id := h.do("GET", "/healthz", "").header.Get("X-Request-Id")
		if id == "" || seen[id] || !isPlain(id) {
			t.Fatalf("X-Request-Id %q (seen %v)", id, seen)
		}
		seen[id] = true
	}
	// A proxy's ID is kept, so that its log and authd's meet.
	const nginxID = "7f3c2a9d0e1b4c5d6e7f8091a2b3c4d5"
	if got := h.do("GET", "/healthz", "", "X-Request-Id: "+nginxID).header.Get("X-Request-Id"); got != nginxID {
		t.Fatalf("X-Request-Id = %q, want the proxy's %q", got, nginxID)
	}
	// A client's own ID, from a peer that is no trusted proxy, is replaced:
	// it could pin its log lines to another request's.
	if got := h.do("GET", "/healthz", "", "X-Request-Id: "+nginxID, "Remote-Addr: 203.0.113.5:4000").header.Get("X-Request-Id"); got == nginxID || !isPlain(got) {
		t.Fatalf("an untrusted peer's X-Request-Id %q came back as %q", nginxID, got)
	}
	// Anything else a peer sends is replaced.
	for _, bad := range []string{strings.Repeat("a", 65), "a b", `x"y`, "id\u00e9", "../../etc"} {
		if got := h.do("GET", "/healthz", "", "X-Request-Id: "+bad).header.Get("X-Request-Id"); got == bad || !isPlain(got) {
			t.Fatalf("X-Request-Id %q came back as %q", bad, got)
		}
	}
}

func isPlain(id string) bool {
	return id != "" && len(id) <= 64 && strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == ""
}

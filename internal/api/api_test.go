package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authd/authd/internal/api"
	"github.com/authd/authd/internal/password"
	"github.com/authd/authd/internal/pgtest"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/store/postgres"
	"github.com/authd/authd/internal/store/sqlite"
	"github.com/authd/authd/internal/tokencache"
)

const serverName = "example.org"

// testStore is a real, migrated, empty store.
type testStore interface {
	store.Store
	store.Migrator
}

// forEachStore runs fn as a subtest on a fresh SQLite store and a fresh
// Postgres store: the HTTP behaviour must not depend on the database. With
// no Postgres configured the Postgres subtest skips (see pgtest) and the
// SQLite one still runs.
func forEachStore(t *testing.T, fn func(t *testing.T, st testStore)) {
	t.Helper()
	open := map[string]func(t *testing.T) testStore{
		"sqlite": func(t *testing.T) testStore {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "authd.db"))
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		"postgres": func(t *testing.T) testStore {
			st, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			st := open[name](t)
			t.Cleanup(func() { st.Close() })
			if err := st.MigrateUp(context.Background()); err != nil {
				t.Fatal(err)
			}
			fn(t, st)
		})
	}
}

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type harness struct {
	t      *testing.T
	st     testStore
	hasher *password.Hasher
	clock  *clock
	h      http.Handler
}

func newHarness(t *testing.T, st testStore, mutate ...func(*api.Deps)) *harness {
	t.Helper()
	hasher, err := password.NewHasher(bcrypt.MinCost, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	// The token cache is on, as in production: every revocation test
	// runs against it (tokencache_test.go has the rest).
	d := api.Deps{Store: st, Hasher: hasher, ServerName: serverName, Now: c.now, TokenCache: tokencache.New(testTokenCacheTTL, 0)}
	for _, m := range mutate {
		m(&d)
	}
	return &harness{t: t, st: st, hasher: hasher, clock: c, h: api.New(d)}
}

// addUser creates a user with a password and optional email addresses.
func (h *harness) addUser(id, pw string, emails ...string) {
	h.t.Helper()
	hash, err := h.hasher.Hash(pw)
	if err != nil {
		h.t.Fatal(err)
	}
	var tps []store.ThreePID
	for _, e := range emails {
		tps = append(tps, store.ThreePID{Medium: store.MediumEmail, Address: e, UserID: id, AddedAt: h.clock.t})
	}
	if err := h.st.CreateUser(context.Background(), store.User{ID: id, PasswordHash: hash, CreatedAt: h.clock.t}, tps...); err != nil {
		h.t.Fatal(err)
	}
}

type response struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (r response) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// do sends a request through the real router and checks the response
// against the vendored Matrix v1.19 schemas (checkSpec). body "" sends no
// body; headers are "Name: value" strings.
func (h *harness) do(method, path, body string, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ": ")
		if k == "Remote-Addr" {
			req.RemoteAddr = v
			continue
		}
		req.Header.Add(k, v)
	}
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, req)
	res := response{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		h.t.Fatalf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	// Every response must also match the Matrix spec's own schema.
	checkSpec(h.t, req, rec.Result())
	if res.raw != "" {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.body); err != nil {
			h.t.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, res.raw, err)
		}
	}
	return res
}

// wantError asserts a Matrix error response.
func wantError(t *testing.T, r response, status int, errcode string) {
	t.Helper()
	if r.status != status || r.str("errcode") != errcode {
		t.Fatalf("got %d %s, want %d %s (body %s)", r.status, r.str("errcode"), status, errcode, r.raw)
	}
	if r.str("error") == "" {
		t.Fatalf("error response without an error message: %s", r.raw)
	}
	if r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("error response without CORS headers: %v", r.header)
	}
}

// login logs in with a JSON body and returns the response, which must be 200.
func (h *harness) login(body string) response {
	h.t.Helper()
	r := h.do("POST", "/_matrix/client/v3/login", body)
	if r.status != http.StatusOK {
		h.t.Fatalf("login %s: %d %s", body, r.status, r.raw)
	}
	return r
}

func bearer(tok string) string { return "Authorization: Bearer " + tok }

func TestAPI_NotFoundAndMethod(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		wantError(t, h.do("GET", "/_matrix/client/v3/nope", ""), 404, "M_UNRECOGNIZED")
		wantError(t, h.do("GET", "/_matrix/client/v1/auth_metadata", ""), 404, "M_UNRECOGNIZED")
		wantError(t, h.do("GET", "/", ""), 404, "M_UNRECOGNIZED")
		// 405 names the methods the path takes (RFC 9110, 15.5.6).
		for _, tt := range []struct{ method, path, allow string }{
			{"GET", "/_matrix/client/v3/logout", "POST, OPTIONS"},
			{"PUT", "/_matrix/client/r0/login", "GET, POST, OPTIONS"},
			{"POST", "/_matrix/client/v3/account/whoami", "GET, OPTIONS"},
			{"DELETE", "/_matrix/client/v1/refresh", "POST, OPTIONS"},
		} {
			r := h.do(tt.method, tt.path, "{}")
			wantError(t, r, 405, "M_UNRECOGNIZED")
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("%s %s: Allow %q, want %q", tt.method, tt.path, got, tt.allow)
			}
		}
	})
}

func TestAPI_Options(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		h := newHarness(t, st)
		for _, path := range []string{"/_matrix/client/v3/logout", "/_matrix/client/v3/account/whoami", "/_matrix/client/v3/login", "/anything/at/all"} {
			r := h.do("OPTIONS", path, "", "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization")
			if r.status != http.StatusNoContent || r.raw != "" {
				t.Fatalf("OPTIONS %s = %d %q, want 204 with no body", path, r.status, r.raw)
			}
			for k, want := range map[string]string{
				"Access-Control-Allow-Origin":  "*",
				"Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
				"Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization",
			} {
				if got := r.header.Get(k); got != want {
					t.Fatalf("OPTIONS %s: %s = %q, want %q", path, k, got, want)
				}
			}
		}
	})
}

func TestAPI_Health(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		ready := error(nil)
		h := newHarness(t, st, func(d *api.Deps) {
			d.Ready = func(context.Context) error { return ready }
		})
		if r := h.do("GET", "/healthz", ""); r.status != 200 || r.str("status") != "ok" {
			t.Fatalf("healthz = %d %s", r.status, r.raw)
		}
		if r := h.do("GET", "/readyz", ""); r.status != 200 || r.str("status") != "ok" {
			t.Fatalf("readyz = %d %s", r.status, r.raw)
		}
		ready = io.ErrUnexpectedEOF
		if r := h.do("GET", "/readyz", ""); r.status != 503 || r.str("status") != "unavailable" {
			t.Fatalf("readyz when not ready = %d %s, want 503", r.status, r.raw)
		}
	})
}

func TestAPI_Versions(t *testing.T) {
	forEachStore(t, func(t *testing.T, st testStore) {
		off := newHarness(t, st)
		wantError(t, off.do("GET", "/_matrix/client/versions", ""), 404, "M_UNRECOGNIZED")
		on := newHarness(t, st, func(d *api.Deps) { d.ServeVersions = true })
		r := on.do("GET", "/_matrix/client/versions", "")
		versions, _ := r.body["versions"].([]any)
		if r.status != 200 || len(versions) == 0 {
			t.Fatalf("versions = %d %s", r.status, r.raw)
		}
		// matrix-js-sdk refuses a server that lists none of v1.1 to v1.13.
		has := map[any]bool{}
		for _, v := range versions {
			has[v] = true
		}
		if !has["v1.1"] || !has["r0.6.1"] || has["v1.0"] {
			t.Fatalf("versions %v", versions)
		}
	})
}

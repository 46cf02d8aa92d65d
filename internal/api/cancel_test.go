package api_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

// hangUntilCancelled is a session lookup that returns only when its
// request is cancelled.
func hangUntilCancelled(ctx context.Context, h store.TokenHash) (store.Session, error) {
	<-ctx.Done()
	return store.Session{}, fmt.Errorf("find session: %w", ctx.Err())
}

// A request cancelled during its token lookup is refused with an explicit
// status on every authenticated route: never the implicit 200 a handler
// that writes nothing gets, which a forward-auth proxy reads as "allow".
func TestCancelledRequest_NeverOK(t *testing.T) {
	h := newFakeHarness(t, &fakeStore{findSessionByAccessToken: hangUntilCancelled})
	for _, path := range []string{verifyPath, "/_matrix/client/v3/account/whoami", "/_matrix/client/v3/logout"} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		method := "GET"
		if path == "/_matrix/client/v3/logout" {
			method = "POST"
		}
		req := httptest.NewRequestWithContext(ctx, method, path, nil)
		req.Header.Set("Authorization", "Bearer "+token.New(token.Access))
		rec := httptest.NewRecorder()
		h.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"errcode":"M_UNKNOWN"`) {
			t.Fatalf("%s cancelled: %d %q, want 503 M_UNKNOWN", path, rec.Code, rec.Body.String())
		}
	}
}

// The same over a real connection: a client that sends a verify request
// and half-closes its side cancels the lookup, and reads a 503, not 200.
func TestCancelledVerify_RealServer(t *testing.T) {
	h := newFakeHarness(t, &fakeStore{findSessionByAccessToken: hangUntilCancelled})
	srv := httptest.NewServer(h.h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: authd\r\nAuthorization: Bearer %s\r\n\r\n", verifyPath, token.New(token.Access))
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("cancelled verify answered %s, want 503", res.Status)
	}
}

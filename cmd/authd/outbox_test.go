package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/internal/outbox"
)

// TestServe_OutboxAcrossRestart runs serve twice on one SQLite file: the
// first logs a device out while the homeserver's receiver answers 503 and
// stops; the second, with the receiver back, delivers the event, signed.
func TestServe_OutboxAcrossRestart(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-outbox"
	const refusal = "maintenance page the log must not hold"
	secretsSeen = append(secretsSeen, secret)
	var up atomic.Bool
	var mu sync.Mutex
	var answered []string // "503 ID" or "204 ID"
	news := make(chan struct{}, 1)
	type eventBody struct {
		EventID string `json:"event_id"`
		Type    string `json:"type"`
		UserID  string `json:"user_id"`
		Content struct {
			DeviceIDs []string `json:"device_ids"`
			Reason    string   `json:"reason"`
		} `json:"content"`
	}
	var accepted []eventBody
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if outbox.Sign([]byte(secret), r.Header.Get(outbox.HeaderTimestamp), body) != r.Header.Get(outbox.HeaderSignature) {
			t.Errorf("receiver: bad signature")
		}
		var e eventBody
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("receiver: %q: %v", body, err)
		}
		mu.Lock()
		if up.Load() {
			accepted = append(accepted, e)
			answered = append(answered, "204 "+e.EventID)
			w.WriteHeader(http.StatusNoContent)
		} else {
			answered = append(answered, "503 "+e.EventID)
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, refusal)
		}
		mu.Unlock()
		select {
		case news <- struct{}{}:
		default:
		}
	}))
	defer recv.Close()
	waitFor := func(what string, done func() bool) {
		t.Helper()
		for {
			mu.Lock()
			ok := done()
			mu.Unlock()
			if ok {
				return
			}
			select {
			case <-news:
			case <-time.After(time.Minute): // a hang guard, not a timing
				t.Fatalf("receiver: no %s; answered %v", what, answered)
			}
		}
	}

	path := filepath.Join(t.TempDir(), "authd.db")
	getenv := env("AUTHD_DATABASE_URL=sqlite:"+path, "AUTHD_LISTEN=127.0.0.1:0", "AUTHD_MIGRATE=true",
		"AUTHD_OUTBOX_URL="+recv.URL+"/events", "AUTHD_OUTBOX_SECRET="+secret, "AUTHD_OUTBOX_MAX_BACKOFF=1s")
	const pw = "outbox test password"
	secretsSeen = append(secretsSeen, pw)
	mustCLI(t, getenv, "", "migrate", "up")
	mustCLI(t, getenv, pw+"\n", "user", "create", "alice", "--password-stdin")

	first := startServe(t, getenv, "ready")
	login := call(t, "POST", first.base+"/_matrix/client/v3/login",
		`{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"`+pw+`","device_id":"PHONE"}`, "")
	if login.status != 200 {
		t.Fatalf("login = %d %s", login.status, login.raw)
	}
	secretsSeen = append(secretsSeen, login.str("access_token"))
	if out := call(t, "POST", first.base+"/_matrix/client/v3/logout", "", login.str("access_token")); out.status != 200 {
		t.Fatalf("logout = %d %s", out.status, out.raw)
	}
	waitFor("refused attempt", func() bool { return len(answered) >= 1 })
	if err := first.stop(); err != nil {
		t.Fatalf("first serve: %v", err)
	}
	if logs := first.log(); strings.Contains(logs, refusal) || strings.Contains(logs, recv.URL) {
		t.Fatalf("the log holds the receiver's body or URL:\n%s", logs)
	}

	up.Store(true)
	startServe(t, getenv, "ready")
	waitFor("accepted event", func() bool { return len(accepted) >= 1 })
	mu.Lock()
	defer mu.Unlock()
	e := accepted[0]
	if e.Type != "devices.deleted" || e.UserID != "@alice:example.org" || e.Content.Reason != "logout" ||
		len(e.Content.DeviceIDs) != 1 || e.Content.DeviceIDs[0] != "PHONE" || answered[0] != "503 "+e.EventID {
		t.Fatalf("accepted %+v after %v", e, answered)
	}
}

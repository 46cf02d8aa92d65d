package api

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/store"
	"github.com/authd/authd/internal/token"
)

// loginTokenStore keeps the login tokens it is given; the rest of Store is
// not called.
type loginTokenStore struct {
	Store
	created []store.LoginToken
}

func (s *loginTokenStore) CreateLoginToken(_ context.Context, t store.LoginToken, _ store.UIAGrant) error {
	s.created = append(s.created, t)
	return nil
}

func TestIssueLoginToken(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	st := &loginTokenStore{}
	for _, tt := range []struct {
		name    string
		wantTTL time.Duration
	}{
		{"TwoMinutes", defaultLoginTokenTTL},
		{"FiveMinutes", 5 * time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st.created = nil
			a := &api{Deps: Deps{Store: st, LoginTokenTTL: tt.wantTTL, Now: func() time.Time { return now }}}
			r := httptest.NewRequest("POST", "/_matrix/client/v1/login/get_token", nil)
			tok, ttl, err := a.issueLoginToken(r, "@alice:example.org", "PHONE", store.UIAGrant{})
			if err != nil {
				t.Fatal(err)
			}
			if err := token.Check(token.Login, tok); err != nil {
				t.Fatalf("issued %q, not a login token: %v", tok, err)
			}
			if ttl != tt.wantTTL {
				t.Fatalf("expires in %v, want %v", ttl, tt.wantTTL)
			}
			want := store.LoginToken{Hash: token.Hash(tok), UserID: "@alice:example.org", DeviceID: "PHONE", CreatedAt: now, ExpiresAt: now.Add(tt.wantTTL)}
			if len(st.created) != 1 || st.created[0] != want {
				t.Fatalf("stored %+v, want %+v", st.created, want)
			}
		})
	}
}

func TestLimitLoginTokens(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a := &api{Deps: Deps{
		LoginTokenLimiter: ratelimit.NewMemory(ratelimit.Rule{Burst: 1, Every: time.Minute}, 0, clock),
		Observer:          nopObserver{},
	}}
	r := httptest.NewRequest("POST", "/_matrix/client/v1/login/get_token", nil)
	if err := a.limitLoginTokens(r, "@alice:example.org"); err != nil {
		t.Fatalf("first token: %v", err)
	}
	err := a.limitLoginTokens(r, "@ALICE:example.org")
	e, ok := err.(*matrixError)
	if !ok || e.Status != 429 || e.Errcode != "M_LIMIT_EXCEEDED" || e.RetryAfter != time.Minute {
		t.Fatalf("second token for another spelling of the user: %v, want 429 M_LIMIT_EXCEEDED retrying after 1m", err)
	}
	if err := a.limitLoginTokens(r, "@bob:example.org"); err != nil {
		t.Fatalf("another user's first token: %v", err)
	}
}

package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
)

func mustRecordLoginNetwork(tb testing.TB, s store.Store, userID, network string, at time.Time) {
	tb.Helper()
	if err := s.RecordLoginNetwork(tb.Context(), userID, network, at); err != nil {
		tb.Fatalf("RecordLoginNetwork(%q, %q): %v", userID, network, err)
	}
}

// wantLoginNetwork checks FindLoginNetwork's answer: nil or store.ErrNotFound.
func wantLoginNetwork(tb testing.TB, s store.Store, userID, network string, since time.Time, known bool) {
	tb.Helper()
	err := s.FindLoginNetwork(tb.Context(), userID, network, since)
	var want error
	if !known {
		want = store.ErrNotFound
	}
	wantErr(tb, fmt.Sprintf("FindLoginNetwork(%q, %q, %v)", userID, network, since), err, want)
}

var loginNetworkCases = []testCase{
	{"Since", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		wantLoginNetwork(t, s, alice, "ip:203.0.113.7", t0, false)
		mustRecordLoginNetwork(t, s, alice, "ip:203.0.113.7", t1)
		wantLoginNetwork(t, s, alice, "ip:203.0.113.7", t0, true)
		wantLoginNetwork(t, s, alice, "ip:203.0.113.7", t1, true) // at since counts
		wantLoginNetwork(t, s, alice, "ip:203.0.113.7", t1.Add(time.Microsecond), false)
		// Another network, another user: unknown.
		wantLoginNetwork(t, s, alice, "ip:203.0.113.8", t0, false)
		wantLoginNetwork(t, s, bob, "ip:203.0.113.7", t0, false)
		// A later success moves the time on; an earlier one does not move it back.
		mustRecordLoginNetwork(t, s, alice, "ip:203.0.113.7", t2)
		wantLoginNetwork(t, s, alice, "ip:203.0.113.7", t2, true)
		mustRecordLoginNetwork(t, s, alice, "ip:203.0.113.7", t0)
		wantLoginNetwork(t, s, alice, "ip:203.0.113.7", t2, true)
	}},
	{"Bound", func(t *testing.T, s store.Store) {
		// At most 16 networks per user: recording a 17th deletes the least
		// recently successful one. Other users keep theirs.
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		mustRecordLoginNetwork(t, s, bob, "ip:198.51.100.1", t0)
		net := func(i int) string { return fmt.Sprintf("ip6:2001:db8:%x::/64", i) }
		for i := range store.MaxLoginNetworks {
			mustRecordLoginNetwork(t, s, alice, net(i), t0.Add(time.Duration(i)*time.Minute))
		}
		// A success from the oldest makes it the newest.
		mustRecordLoginNetwork(t, s, alice, net(0), t1)
		mustRecordLoginNetwork(t, s, alice, net(99), t1)
		wantLoginNetwork(t, s, alice, net(1), t0, false)
		for _, i := range []int{0, 2, store.MaxLoginNetworks - 1, 99} {
			wantLoginNetwork(t, s, alice, net(i), t0, true)
		}
		mustRecordLoginNetwork(t, s, alice, net(100), t2)
		wantLoginNetwork(t, s, alice, net(2), t0, false)
		wantLoginNetwork(t, s, alice, net(3), t0, true)
		wantLoginNetwork(t, s, bob, "ip:198.51.100.1", t0, true)
	}},
	{"Long", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		long := "ip6:" + strings.Repeat("f", store.MaxLoginNetworkLen-4)
		mustRecordLoginNetwork(t, s, alice, long, t1)
		wantLoginNetwork(t, s, alice, long, t0, true)
		err := s.RecordLoginNetwork(t.Context(), alice, long+"f", t1)
		wantErr(t, "RecordLoginNetwork of 65 bytes", err, store.ErrLoginNetworkTooLong)
		wantLoginNetwork(t, s, alice, long+"f", t0, false)
	}},
	{"UnknownUser", func(t *testing.T, s store.Store) {
		err := s.RecordLoginNetwork(t.Context(), alice, "ip:203.0.113.7", t1)
		wantErr(t, "RecordLoginNetwork of an unknown user", err, store.ErrNotFound)
	}},
	{"Deactivated", func(t *testing.T, s store.Store) {
		// Deactivation keeps the user row, and its networks.
		mustCreateUser(t, s, newUser(alice))
		mustRecordLoginNetwork(t, s, alice, "ip:203.0.113.7", t1)
		if err := s.DeactivateUser(t.Context(), alice, t2, false, store.UIAGrant{}); err != nil {
			t.Fatal(err)
		}
		wantLoginNetwork(t, s, alice, "ip:203.0.113.7", t1, true)
	}},
}

var passwordHashPrefixCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		got, err := s.FindPasswordHashPrefixes(t.Context())
		if err != nil || len(got) != 0 {
			t.Fatalf("FindPasswordHashPrefixes of no users = %q, %v; want none", got, err)
		}
		for i, h := range []string{
			"$authd-v1$$2a$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
			"$authd-v1$$2a$12$zzzzzzzzzzzzzzzzzzzzzuZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
			"$authd-v1$$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
			"$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
			"$2y$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
			"$2b$10$zzzzzzzzzzzzzzzzzzzzzuZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
			"$2a$14$deactivatedxxxxxxxxxxuZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
			"",
		} {
			u := newUser(fmt.Sprintf("@u%d:example.org", i))
			u.PasswordHash = h
			if i == 6 {
				u.DeactivatedAt = t1
			}
			mustCreateUser(t, s, u)
		}
		got, err = s.FindPasswordHashPrefixes(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"$2a$14$", "$2b$10$", "$2y$04$", "$authd-v1$$2a$10$", "$authd-v1$$2a$12$"}
		if !slices.Equal(got, want) {
			t.Fatalf("FindPasswordHashPrefixes = %q, want %q", got, want)
		}
	}},
}

package storetest

import (
	"encoding/json"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
)

// OpenOutbox opens a fresh, migrated, empty store for the test, with its
// outbox on or off; on, the store calls written after each commit that
// wrote events.
type OpenOutbox func(t *testing.T, on bool, written func()) store.Store

// RunOutbox runs the outbox cases: events are written in the transaction of
// the change they report, and only then; none with the outbox off; they
// come back in the order they were written; the deliverer's claim and
// bookkeeping.
func RunOutbox(t *testing.T, open OpenOutbox) {
	t.Helper()
	for _, c := range outboxCases {
		t.Run("Outbox/"+c.name, func(t *testing.T) {
			c.run(t, open)
		})
	}
}

type outboxCase struct {
	name string
	run  func(t *testing.T, open OpenOutbox)
}

// deviceEvent is the content of a devices.deleted event, as a receiver
// reads it.
type deviceEvent struct {
	UserID    string   `json:"user_id"`
	DeviceIDs []string `json:"device_ids"`
	Reason    string   `json:"reason"`
}

// outboxEvents returns every event in the outbox.
func outboxEvents(tb testing.TB, s store.Store) []store.OutboxEvent {
	tb.Helper()
	events, err := s.FindOutboxEvents(tb.Context(), 1000)
	if err != nil {
		tb.Fatalf("FindOutboxEvents: %v", err)
	}
	n, err := s.CountOutboxEvents(tb.Context())
	if err != nil {
		tb.Fatalf("CountOutboxEvents: %v", err)
	}
	if n != len(events) {
		tb.Fatalf("CountOutboxEvents = %d, FindOutboxEvents found %d", n, len(events))
	}
	return events
}

// wantDeviceEvents fails unless the outbox holds exactly these
// devices.deleted events, in this order, with distinct event IDs and
// increasing IDs.
func wantDeviceEvents(tb testing.TB, s store.Store, want ...deviceEvent) []store.OutboxEvent {
	tb.Helper()
	events := outboxEvents(tb, s)
	if len(events) != len(want) {
		tb.Fatalf("outbox holds %d events %+v, want %d %+v", len(events), events, len(want), want)
	}
	seen := map[string]bool{}
	for i, e := range events {
		var got deviceEvent
		if err := json.Unmarshal(e.Payload, &got); err != nil {
			tb.Fatalf("event %d payload %q: %v", i, e.Payload, err)
		}
		if e.Type != store.EventDevicesDeleted || e.UserID != want[i].UserID || got.UserID != want[i].UserID ||
			!slices.Equal(got.DeviceIDs, want[i].DeviceIDs) || got.Reason != want[i].Reason {
			tb.Fatalf("event %d: type %s user %s payload %+v, want %s %+v", i, e.Type, e.UserID, got, store.EventDevicesDeleted, want[i])
		}
		if e.EventID == "" || seen[e.EventID] {
			tb.Fatalf("event %d: event ID %q empty or repeated", i, e.EventID)
		}
		seen[e.EventID] = true
		if i > 0 && e.ID <= events[i-1].ID {
			tb.Fatalf("event %d: ID %d not after %d", i, e.ID, events[i-1].ID)
		}
		if e.Attempts != 0 || !e.NextAttemptAt.IsZero() || e.LastError != "" || e.CreatedAt.Location() != time.UTC {
			tb.Fatalf("event %d: fresh event %+v", i, e)
		}
	}
	return events
}

var outboxCases = []outboxCase{
	{"WrittenWithTheChange", func(t *testing.T, open OpenOutbox) {
		var written atomic.Int32
		s := open(t, true, func() { written.Add(1) })
		mustCreateUser(t, s, newUser(alice))
		mustCreateSession(t, s, newSession(alice, "PHONE", "", "a0", t0))
		mustCreateSession(t, s, newSession(alice, "LAPTOP", "", "a1", t0))
		mustCreateSession(t, s, newSession(alice, "TABLET", "", "a2", t0))

		if err := s.DeleteDevice(t.Context(), alice, "PHONE"); err != nil {
			t.Fatalf("DeleteDevice: %v", err)
		}
		if n, err := s.DeleteAllDevices(t.Context(), alice); err != nil || n != 2 {
			t.Fatalf("DeleteAllDevices = %d, %v; want 2", n, err)
		}
		wantDeviceEvents(t, s,
			deviceEvent{alice, []string{"PHONE"}, "logout"},
			deviceEvent{alice, []string{"LAPTOP", "TABLET"}, "logout_all"})
		if got := written.Load(); got != 2 {
			t.Fatalf("written called %d times, want 2", got)
		}
	}},
	{"RefreshReplay", func(t *testing.T, open OpenOutbox) {
		s := open(t, true, nil)
		mustCreateUser(t, s, newUser(alice))
		mustCreateSession(t, s, newRefreshSession(alice, "PHONE", "a0", "r0", t0))
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		mustConfirm(t, s, "a1", t1)
		wantDeviceEvents(t, s) // a refresh deletes no device
		wantRefreshErr(t, s, "a superseded token", exchange("r0", "x", "y", t2), store.ErrTokenReplayed)
		events := wantDeviceEvents(t, s, deviceEvent{alice, []string{"PHONE"}, "refresh_replay"})
		if !sameTime(events[0].CreatedAt, t2) {
			t.Fatalf("event created at %v, want the exchange's time %v", events[0].CreatedAt, t2)
		}
	}},
	{"NotWithoutTheChange", func(t *testing.T, open OpenOutbox) {
		var written atomic.Int32
		s := open(t, true, func() { written.Add(1) })
		mustCreateUser(t, s, newUser(alice))
		mustCreateSession(t, s, newRefreshSession(alice, "PHONE", "a0", "r0", t0))
		// Nothing deleted, nothing reported: an unknown device, a user with
		// none, a refresh that fails without deleting.
		wantErr(t, "DeleteDevice of an unknown device", s.DeleteDevice(t.Context(), alice, "NOPE"), store.ErrNotFound)
		if n, err := s.DeleteAllDevices(t.Context(), bob); err != nil || n != 0 {
			t.Fatalf("DeleteAllDevices of a user without devices = %d, %v", n, err)
		}
		wantRefreshErr(t, s, "an unknown token", exchange("nope", "x", "y", t1), store.ErrNotFound)
		wantDeviceEvents(t, s)
		if got := written.Load(); got != 0 {
			t.Fatalf("written called %d times, want 0", got)
		}
	}},
	{"AccountChanges", func(t *testing.T, open OpenOutbox) {
		var written atomic.Int32
		s := open(t, true, func() { written.Add(1) })
		mustCreateUser(t, s, newUser(alice))
		for _, d := range []string{"PHONE", "LAPTOP", "TABLET", "WATCH"} {
			mustCreateSession(t, s, newSession(alice, d, "", "tok-"+d, t0))
		}
		if _, err := s.DeleteDevices(t.Context(), alice, []string{"WATCH", "NOPE"}, store.UIAGrant{}); err != nil {
			t.Fatalf("DeleteDevices: %v", err)
		}
		// Nothing deleted, nothing reported.
		if _, err := s.DeleteDevices(t.Context(), alice, []string{"NOPE"}, store.UIAGrant{}); err != nil {
			t.Fatalf("DeleteDevices: %v", err)
		}
		if _, err := s.ChangePassword(t.Context(), store.PasswordChange{UserID: alice, Hash: "$new$", LogoutDevices: true, KeepDeviceID: "PHONE", KeepAccessToken: hash("tok-PHONE")}); err != nil {
			t.Fatalf("ChangePassword: %v", err)
		}
		wantDeviceEvents(t, s,
			deviceEvent{alice, []string{"WATCH"}, "deleted"},
			deviceEvent{alice, []string{"LAPTOP", "TABLET"}, "password_change"})
		if got := written.Load(); got != 2 {
			t.Fatalf("written called %d times, want 2", got)
		}
	}},
	{"Deactivation", func(t *testing.T, open OpenOutbox) {
		s := open(t, true, nil)
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		mustCreateSession(t, s, newSession(alice, "PHONE", "", "a0", t0))
		mustCreateSession(t, s, newSession(alice, "LAPTOP", "", "a1", t0))
		// A refused grant writes nothing.
		sess := hash("gone")
		refused := store.UIAGrant{Session: &sess, Binding: store.UIABinding{UserID: bob}, Now: t0}
		wantErr(t, "DeactivateUser with a gone session", s.DeactivateUser(t.Context(), bob, t1, false, refused), store.ErrUIASessionGone)
		if err := s.DeactivateUser(t.Context(), alice, t1, true, store.UIAGrant{}); err != nil {
			t.Fatalf("DeactivateUser: %v", err)
		}
		events := outboxEvents(t, s)
		if len(events) != 2 {
			t.Fatalf("outbox holds %+v, want devices.deleted and user.deactivated", events)
		}
		var devices deviceEvent
		if err := json.Unmarshal(events[0].Payload, &devices); err != nil || events[0].Type != store.EventDevicesDeleted ||
			devices.Reason != "deactivated" || !slices.Equal(devices.DeviceIDs, []string{"LAPTOP", "PHONE"}) {
			t.Fatalf("first event %s %s, want the devices deleted by deactivation", events[0].Type, events[0].Payload)
		}
		var user struct {
			UserID string `json:"user_id"`
			Erase  bool   `json:"erase"`
		}
		if err := json.Unmarshal(events[1].Payload, &user); err != nil || events[1].Type != store.EventUserDeactivated ||
			user.UserID != alice || !user.Erase || events[1].UserID != alice {
			t.Fatalf("second event %s %s, want user.deactivated with erase", events[1].Type, events[1].Payload)
		}
	}},
	{"Off", func(t *testing.T, open OpenOutbox) {
		s := open(t, false, nil)
		mustCreateUser(t, s, newUser(alice))
		mustCreateSession(t, s, newRefreshSession(alice, "PHONE", "a0", "r0", t0))
		mustCreateSession(t, s, newSession(alice, "LAPTOP", "", "l0", t0))
		mustCreateSession(t, s, newSession(alice, "TABLET", "", "t0", t0))
		mustRefresh(t, s, exchange("r0", "a1", "r1", t1))
		mustConfirm(t, s, "a1", t1)
		wantRefreshErr(t, s, "a superseded token", exchange("r0", "x", "y", t2), store.ErrTokenReplayed)
		if err := s.DeleteDevice(t.Context(), alice, "LAPTOP"); err != nil {
			t.Fatalf("DeleteDevice: %v", err)
		}
		if n, err := s.DeleteAllDevices(t.Context(), alice); err != nil || n != 1 {
			t.Fatalf("DeleteAllDevices = %d, %v; want 1", n, err)
		}
		wantDeviceEvents(t, s)
	}},
	{"Order", func(t *testing.T, open OpenOutbox) {
		s := open(t, true, nil)
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		var want []deviceEvent
		for i, d := range []string{"D1", "D2", "D3", "D4", "D5", "D6"} {
			user := []string{alice, bob}[i%2]
			mustCreateSession(t, s, newSession(user, d, "", "tok"+d, t0))
			if err := s.DeleteDevice(t.Context(), user, d); err != nil {
				t.Fatalf("DeleteDevice(%s): %v", d, err)
			}
			want = append(want, deviceEvent{user, []string{d}, "logout"})
		}
		wantDeviceEvents(t, s, want...)
		// A batch is the oldest events.
		batch, err := s.FindOutboxEvents(t.Context(), 2)
		if err != nil || len(batch) != 2 {
			t.Fatalf("FindOutboxEvents(2) = %d events, %v", len(batch), err)
		}
		all := outboxEvents(t, s)
		if batch[0].EventID != all[0].EventID || batch[1].EventID != all[1].EventID {
			t.Fatalf("FindOutboxEvents(2) = %+v, want the first two of %+v", batch, all)
		}
	}},
	{"Delivery", func(t *testing.T, open OpenOutbox) {
		s := open(t, true, nil)
		mustCreateUser(t, s, newUser(alice))
		for _, d := range []string{"D1", "D2"} {
			mustCreateSession(t, s, newSession(alice, d, "", "tok"+d, t0))
			if err := s.DeleteDevice(t.Context(), alice, d); err != nil {
				t.Fatalf("DeleteDevice(%s): %v", d, err)
			}
		}
		events := outboxEvents(t, s)
		if err := s.RecordOutboxFailure(t.Context(), events[0].ID, "status_503", t1); err != nil {
			t.Fatalf("RecordOutboxFailure: %v", err)
		}
		if err := s.RecordOutboxFailure(t.Context(), events[0].ID, "timeout", t2); err != nil {
			t.Fatalf("RecordOutboxFailure: %v", err)
		}
		got := outboxEvents(t, s)[0]
		if got.EventID != events[0].EventID || got.Attempts != 2 || got.LastError != "timeout" || !sameTime(got.NextAttemptAt, t2) {
			t.Fatalf("after two failures: %+v", got)
		}
		if err := s.DeleteOutboxEvent(t.Context(), events[0].ID); err != nil {
			t.Fatalf("DeleteOutboxEvent: %v", err)
		}
		// Another deliverer got there first: not an error.
		if err := s.DeleteOutboxEvent(t.Context(), events[0].ID); err != nil {
			t.Fatalf("DeleteOutboxEvent of a deleted event: %v", err)
		}
		if err := s.RecordOutboxFailure(t.Context(), events[0].ID, "timeout", t2); err != nil {
			t.Fatalf("RecordOutboxFailure of a deleted event: %v", err)
		}
		left := outboxEvents(t, s)
		if len(left) != 1 || left[0].EventID != events[1].EventID {
			t.Fatalf("left %+v, want the second event alone", left)
		}
	}},
	{"Claim", func(t *testing.T, open OpenOutbox) {
		s := open(t, true, nil)
		claim := func(holder string, now time.Time, want bool) {
			t.Helper()
			got, err := s.ClaimOutbox(t.Context(), holder, now, time.Minute)
			if err != nil || got != want {
				t.Fatalf("ClaimOutbox(%s, %v) = %t, %v; want %t", holder, now, got, err, want)
			}
		}
		claim("A", t0, true)
		claim("B", t0.Add(59*time.Second), false)
		claim("A", t0.Add(30*time.Second), true) // renewed to t0+90s
		claim("B", t0.Add(80*time.Second), false)
		claim("B", t0.Add(90*time.Second), true) // A's lease ran out
		claim("A", t0.Add(100*time.Second), false)
		if err := s.ReleaseOutbox(t.Context(), "A"); err != nil { // not A's: nothing
			t.Fatalf("ReleaseOutbox(A): %v", err)
		}
		claim("A", t0.Add(100*time.Second), false)
		if err := s.ReleaseOutbox(t.Context(), "B"); err != nil {
			t.Fatalf("ReleaseOutbox(B): %v", err)
		}
		claim("A", t0.Add(100*time.Second), true)
	}},
}

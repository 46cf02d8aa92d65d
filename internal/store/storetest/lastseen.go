package storetest

import (
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
)

var recordLastSeenCases = []testCase{
	{"OK", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		phone := newSession(alice, "PHONE", "Phone", "a-phone", t0)
		laptop := newSession(alice, "LAPTOP", "", "a-laptop", t0)
		mustCreateSession(t, s, phone)
		mustCreateSession(t, s, laptop)
		mustRecordLastSeen(t, s,
			store.DeviceSeen{UserID: alice, DeviceID: "PHONE", IP: "203.0.113.7", At: t1},
			store.DeviceSeen{UserID: alice, DeviceID: "LAPTOP", IP: "2001:db8::1", At: t2},
		)
		wantPhone, wantLaptop := phone.Device, laptop.Device
		wantPhone.LastSeenAt, wantPhone.LastSeenIP = t1, "203.0.113.7"
		wantLaptop.LastSeenAt, wantLaptop.LastSeenIP = t2, "2001:db8::1"
		wantDevice(t, "FindDevice(PHONE)", findDevice(t, s, alice, "PHONE"), wantPhone)
		wantDevices(t, "ListDevices", listDevices(t, s, alice), []store.Device{wantLaptop, wantPhone})
	}},
	{"OnlyForward", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		phone := newSession(alice, "PHONE", "Phone", "a-phone", t0)
		mustCreateSession(t, s, phone)
		mustRecordLastSeen(t, s, store.DeviceSeen{UserID: alice, DeviceID: "PHONE", IP: "203.0.113.2", At: t2})
		// Earlier, and at the same time: the address of an older sighting
		// never replaces the newer one's.
		mustRecordLastSeen(t, s, store.DeviceSeen{UserID: alice, DeviceID: "PHONE", IP: "203.0.113.1", At: t1})
		mustRecordLastSeen(t, s, store.DeviceSeen{UserID: alice, DeviceID: "PHONE", IP: "203.0.113.3", At: t2})
		want := phone.Device
		want.LastSeenAt, want.LastSeenIP = t2, "203.0.113.2"
		wantDevice(t, "FindDevice", findDevice(t, s, alice, "PHONE"), want)
	}},
	{"LatestOfBatch", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		phone := newSession(alice, "PHONE", "Phone", "a-phone", t0)
		mustCreateSession(t, s, phone)
		mustRecordLastSeen(t, s,
			store.DeviceSeen{UserID: alice, DeviceID: "PHONE", IP: "203.0.113.2", At: t2},
			store.DeviceSeen{UserID: alice, DeviceID: "PHONE", IP: "203.0.113.1", At: t1},
		)
		want := phone.Device
		want.LastSeenAt, want.LastSeenIP = t2, "203.0.113.2"
		wantDevice(t, "FindDevice", findDevice(t, s, alice, "PHONE"), want)
	}},
	{"UnknownDevicesIgnored", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		mustCreateUser(t, s, newUser(bob))
		bobs := newSession(bob, "PHONE", "Bob's phone", "b-phone", t0)
		mustCreateSession(t, s, bobs)
		mustCreateSession(t, s, newSession(alice, "GONE", "", "a-gone", t0))
		if err := s.DeleteDevice(t.Context(), alice, "GONE"); err != nil {
			t.Fatalf("DeleteDevice: %v", err)
		}
		alicesPhone := newSession(alice, "PHONE", "", "a-phone", t0)
		mustCreateSession(t, s, alicesPhone)
		// A deleted device, a device ID only bob has, an unknown user: none
		// is created or touched, and the rest of the batch is written.
		mustRecordLastSeen(t, s,
			store.DeviceSeen{UserID: alice, DeviceID: "GONE", IP: "203.0.113.1", At: t1},
			store.DeviceSeen{UserID: alice, DeviceID: "LAPTOP", IP: "203.0.113.1", At: t1},
			store.DeviceSeen{UserID: "@carol:example.org", DeviceID: "PHONE", IP: "203.0.113.1", At: t1},
			store.DeviceSeen{UserID: alice, DeviceID: "PHONE", IP: "203.0.113.9", At: t1},
		)
		want := alicesPhone.Device
		want.LastSeenAt, want.LastSeenIP = t1, "203.0.113.9"
		wantDevices(t, "ListDevices(alice)", listDevices(t, s, alice), []store.Device{want})
		wantDevices(t, "ListDevices(bob)", listDevices(t, s, bob), []store.Device{bobs.Device})
	}},
	{"Empty", func(t *testing.T, s store.Store) {
		mustRecordLastSeen(t, s)
	}},
	{"Login", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		// A login is a sighting: it sets the address, and a login on the
		// same device replaces it, even with none.
		first := newSession(alice, "PHONE", "Phone", "a1", t0)
		first.Device.LastSeenIP = "203.0.113.1"
		mustCreateSession(t, s, first)
		wantDevice(t, "after the first login", findDevice(t, s, alice, "PHONE"), first.Device)
		again := newSession(alice, "PHONE", "Phone", "a2", t1)
		mustCreateSession(t, s, again)
		want := first.Device
		want.LastSeenAt, want.LastSeenIP = t1, ""
		wantDevice(t, "after the second login", findDevice(t, s, alice, "PHONE"), want)
	}},
	{"ManyDevices", func(t *testing.T, s store.Store) {
		mustCreateUser(t, s, newUser(alice))
		var seen []store.DeviceSeen
		for i := range 300 {
			id := "D" + string(rune('A'+i%26)) + string(rune('A'+i/26))
			mustCreateSession(t, s, newSession(alice, id, "", "a-"+id, t0))
			seen = append(seen, store.DeviceSeen{UserID: alice, DeviceID: id, IP: "203.0.113.5", At: t1.Add(time.Duration(i) * time.Second)})
		}
		mustRecordLastSeen(t, s, seen...)
		for _, d := range listDevices(t, s, alice) {
			if d.LastSeenAt.Before(t1) || d.LastSeenIP != "203.0.113.5" {
				t.Fatalf("device %s not recorded: %+v", d.ID, d)
			}
		}
	}},
}

func mustRecordLastSeen(tb testing.TB, s store.Store, seen ...store.DeviceSeen) {
	tb.Helper()
	if err := s.RecordLastSeen(tb.Context(), seen); err != nil {
		tb.Fatalf("RecordLastSeen(%d sightings): %v", len(seen), err)
	}
}

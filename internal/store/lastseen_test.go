package store

import (
	"slices"
	"testing"
	"time"
)

func TestLatestSightings(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(time.Second)
	got := LatestSightings([]DeviceSeen{
		{UserID: "@b:x", DeviceID: "D", IP: "late", At: t1},
		{UserID: "@a:x", DeviceID: "D", IP: "first", At: t0},
		{UserID: "@b:x", DeviceID: "D", IP: "early", At: t0},
		{UserID: "@a:x", DeviceID: "D", IP: "second, same time", At: t0},
		{UserID: "@a:x", DeviceID: "C", IP: "c", At: t0},
	})
	want := []DeviceSeen{
		{UserID: "@a:x", DeviceID: "C", IP: "c", At: t0},
		{UserID: "@a:x", DeviceID: "D", IP: "second, same time", At: t0},
		{UserID: "@b:x", DeviceID: "D", IP: "late", At: t1},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("LatestSightings:\n got %+v\nwant %+v", got, want)
	}
	if got := LatestSightings(nil); len(got) != 0 {
		t.Fatalf("LatestSightings(nil) = %+v", got)
	}
}

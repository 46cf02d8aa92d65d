package lastseen

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/internal/store"
)

// fakeStore records every batch; fail, when set, answers a call instead.
type fakeStore struct {
	mu      sync.Mutex
	batches [][]store.DeviceSeen
	fail    func(batch []store.DeviceSeen) error
	written chan struct{}
}

func (f *fakeStore) RecordLastSeen(_ context.Context, seen []store.DeviceSeen) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(seen); err != nil {
			return err
		}
	}
	f.batches = append(f.batches, slices.Clone(seen))
	if f.written != nil {
		select {
		case f.written <- struct{}{}:
		default:
		}
	}
	return nil
}

// all returns every sighting written, sorted by device.
func (f *fakeStore) all() []store.DeviceSeen {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.DeviceSeen
	for _, b := range f.batches {
		out = append(out, b...)
	}
	slices.SortFunc(out, func(a, b store.DeviceSeen) int {
		return strings.Compare(a.UserID+"|"+a.DeviceID, b.UserID+"|"+b.DeviceID)
	})
	return out
}

var (
	t0 = time.Date(2026, 12, 5, 17, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Second)
	t2 = t1.Add(time.Second)

	ipA = netip.MustParseAddr("203.0.113.1")
	ipB = netip.MustParseAddr("2001:db8::2")
)

const alice, bob = "@alice:example.org", "@bob:example.org"

func wantWritten(tb testing.TB, f *fakeStore, want ...store.DeviceSeen) {
	tb.Helper()
	if got := f.all(); !slices.Equal(got, want) {
		tb.Fatalf("written:\n got %+v\nwant %+v", got, want)
	}
}

func TestRecorder_Flush(t *testing.T) {
	t.Run("LatestPerDevice", func(t *testing.T) {
		f := &fakeStore{}
		r := New(f, Options{})
		r.Seen(alice, "PHONE", ipA, t1)
		r.Seen(alice, "PHONE", ipB, t2)
		r.Seen(alice, "PHONE", ipA, t0) // late, from a slower request: ignored
		r.Seen(bob, "PHONE", netip.Addr{}, t1)
		if err := r.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		wantWritten(t, f,
			store.DeviceSeen{UserID: alice, DeviceID: "PHONE", IP: "2001:db8::2", At: t2},
			store.DeviceSeen{UserID: bob, DeviceID: "PHONE", IP: "", At: t1},
		)
		if n := r.Pending(); n != 0 {
			t.Fatalf("Pending after a flush = %d, want 0", n)
		}
	})
	t.Run("NothingPending", func(t *testing.T) {
		f := &fakeStore{fail: func([]store.DeviceSeen) error {
			t.Fatal("store called with nothing to write")
			return nil
		}}
		if err := New(f, Options{}).Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Batches", func(t *testing.T) {
		f := &fakeStore{}
		r := New(f, Options{BatchSize: 2})
		for i := range 5 {
			r.Seen(alice, fmt.Sprint("D", i), ipA, t1)
		}
		if err := r.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if len(f.batches) != 3 {
			t.Fatalf("%d batches, want 3", len(f.batches))
		}
		if n := len(f.all()); n != 5 {
			t.Fatalf("%d sightings written, want 5", n)
		}
	})
	t.Run("FailedWriteRetried", func(t *testing.T) {
		down := errors.New("database down")
		f := &fakeStore{fail: func([]store.DeviceSeen) error { return down }}
		r := New(f, Options{})
		r.Seen(alice, "PHONE", ipA, t1)
		r.Seen(alice, "LAPTOP", ipA, t1)
		if err := r.Flush(t.Context()); !errors.Is(err, down) {
			t.Fatalf("Flush = %v, want %v", err, down)
		}
		// Seen in the meantime: the newer sighting wins over the kept one.
		r.Seen(alice, "LAPTOP", ipB, t2)
		f.fail = nil
		if err := r.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		wantWritten(t, f,
			store.DeviceSeen{UserID: alice, DeviceID: "LAPTOP", IP: "2001:db8::2", At: t2},
			store.DeviceSeen{UserID: alice, DeviceID: "PHONE", IP: "203.0.113.1", At: t1},
		)
	})
	t.Run("FailedLaterBatchKeepsOnlyUnwritten", func(t *testing.T) {
		calls := 0
		f := &fakeStore{}
		f.fail = func([]store.DeviceSeen) error {
			calls++
			if calls == 2 {
				return errors.New("database down")
			}
			return nil
		}
		r := New(f, Options{BatchSize: 1})
		r.Seen(alice, "A", ipA, t1)
		r.Seen(alice, "B", ipA, t1)
		r.Seen(alice, "C", ipA, t1)
		if err := r.Flush(t.Context()); err == nil {
			t.Fatal("Flush with a failed batch succeeded")
		}
		if n := r.Pending(); n != 2 {
			t.Fatalf("Pending after the second of three batches failed = %d, want 2", n)
		}
	})
}

func TestRecorder_Seen_MaxPending(t *testing.T) {
	f := &fakeStore{}
	r := New(f, Options{MaxPending: 2})
	r.Seen(alice, "A", ipA, t0)
	r.Seen(alice, "B", ipA, t0)
	r.Seen(alice, "C", ipA, t0) // a third device: dropped
	r.Seen(alice, "A", ipB, t1) // a device already waiting: kept
	if got := r.Dropped(); got != 1 {
		t.Fatalf("Dropped = %d, want 1", got)
	}
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantWritten(t, f,
		store.DeviceSeen{UserID: alice, DeviceID: "A", IP: "2001:db8::2", At: t1},
		store.DeviceSeen{UserID: alice, DeviceID: "B", IP: "203.0.113.1", At: t0},
	)
	// The write made room again.
	r.Seen(alice, "C", ipA, t1)
	if n := r.Pending(); n != 1 {
		t.Fatalf("Pending after the write = %d, want 1", n)
	}
}

func TestRecorder_Run(t *testing.T) {
	t.Run("EveryInterval", func(t *testing.T) {
		f := &fakeStore{written: make(chan struct{}, 1)}
		r := New(f, Options{Interval: time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { r.Run(ctx); close(done) }()
		r.Seen(alice, "PHONE", ipA, t1)
		<-f.written
		cancel()
		<-done
		wantWritten(t, f, store.DeviceSeen{UserID: alice, DeviceID: "PHONE", IP: "203.0.113.1", At: t1})
	})
	t.Run("FinalWriteAtShutdown", func(t *testing.T) {
		f := &fakeStore{}
		r := New(f, Options{Interval: time.Hour})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { r.Run(ctx); close(done) }()
		r.Seen(alice, "PHONE", ipA, t1)
		cancel()
		<-done
		wantWritten(t, f, store.DeviceSeen{UserID: alice, DeviceID: "PHONE", IP: "203.0.113.1", At: t1})
	})
}

// BenchmarkRecorder_Seen is the cost Seen adds to every authenticated
// request, from every core at once, on the devices of a busy process.
func BenchmarkRecorder_Seen(b *testing.B) {
	for _, devices := range []int{32, 10_000} {
		b.Run(fmt.Sprint(devices, "devices"), func(b *testing.B) {
			r := New(&fakeStore{}, Options{})
			ids := make([]string, devices)
			for i := range ids {
				ids[i] = fmt.Sprint("DEVICE", i)
			}
			at := t0
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					r.Seen(alice, ids[i%devices], ipA, at)
					i++
				}
			})
		})
	}
}

// Package lastseen records when, and from which address, each device was
// last seen, without a database write per request: Seen keeps the latest
// sighting of each device in memory, and Run writes them to the store in
// batches, once an interval.
package lastseen

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authd/authd/internal/store"
)

// Defaults of Options.
const (
	DefaultInterval     = time.Minute
	DefaultMaxPending   = 50_000
	DefaultBatchSize    = 500
	DefaultWriteTimeout = 10 * time.Second
)

// Options tune a Recorder. Zero values take the defaults.
type Options struct {
	// Interval is how often the sightings are written.
	Interval time.Duration
	// MaxPending bounds the devices remembered between two writes: a
	// sighting of one more device is dropped (and counted) until the next
	// write, so that memory stays bounded whatever the traffic.
	MaxPending int
	// BatchSize is the most sightings one store call writes, so that one
	// transaction never holds a database (SQLite's only writer) for long.
	BatchSize int
	// WriteTimeout bounds each store call.
	WriteTimeout time.Duration
	// Logger receives failed writes and drop counts; nil discards.
	Logger *slog.Logger
}

// deviceKey names a device.
type deviceKey struct{ userID, deviceID string }

// sighting is the latest time a device was seen, and its address then.
type sighting struct {
	ip netip.Addr
	at time.Time
}

// Recorder remembers the latest sighting of each device and writes them in
// batches. Seen is safe for concurrent use, and never waits on the store.
type Recorder struct {
	st   store.LastSeenStore
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	pending map[deviceKey]sighting

	dropped atomic.Uint64
	// droppedLogged is the value of dropped the last log line reported.
	droppedLogged uint64
	// writing serialises Flush: a write in progress and the final one at
	// shutdown never interleave.
	writing sync.Mutex
}

// New returns a Recorder writing to st.
func New(st store.LastSeenStore, o Options) *Recorder {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recorder{st: st, opts: o, log: log, pending: make(map[deviceKey]sighting)}
}

// Seen records that the device was seen at at, from ip (the zero Addr when
// unknown or not to be kept). It only touches memory: a lock and a map
// entry. A sighting earlier than the one remembered is ignored.
func (r *Recorder) Seen(userID, deviceID string, ip netip.Addr, at time.Time) {
	k := deviceKey{userID, deviceID}
	r.mu.Lock()
	old, ok := r.pending[k]
	switch {
	case ok && old.at.After(at):
	case !ok && len(r.pending) >= r.opts.MaxPending:
		r.mu.Unlock()
		r.dropped.Add(1)
		return
	default:
		r.pending[k] = sighting{ip, at}
	}
	r.mu.Unlock()
}

// Dropped returns how many sightings were dropped because MaxPending
// devices were already waiting to be written.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Pending returns how many devices wait to be written.
func (r *Recorder) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Run writes the sightings every interval until ctx ends, then once more
// (with a fresh deadline of WriteTimeout), so that a clean shutdown loses
// nothing. Call it after the last request has been served for that. A
// failed write is logged, and its sightings kept for the next one.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.WriteTimeout)
			defer cancel()
			r.flushAndLog(final)
			return
		case <-t.C:
			r.flushAndLog(ctx)
		}
	}
}

// flushAndLog runs Flush and logs what went wrong.
func (r *Recorder) flushAndLog(ctx context.Context) {
	err := r.Flush(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		r.log.LogAttrs(ctx, slog.LevelWarn, "last-seen write failed; retrying at the next interval", slog.Any("err", err))
	}
	if d := r.dropped.Load(); d != r.droppedLogged {
		r.log.LogAttrs(ctx, slog.LevelWarn, "last-seen sightings dropped: too many devices seen in one interval",
			slog.Uint64("dropped", d-r.droppedLogged), slog.Int("max_pending", r.opts.MaxPending))
		r.droppedLogged = d
	}
}

// Flush writes every remembered sighting now, in batches of BatchSize. If
// a batch fails, it and the ones not yet written are remembered again
// (unless a later sighting of the device came in meanwhile) and the error
// is returned.
func (r *Recorder) Flush(ctx context.Context) error {
	r.writing.Lock()
	defer r.writing.Unlock()
	// Swap the map, so that Seen goes on without waiting for the store.
	r.mu.Lock()
	batch := r.pending
	if len(batch) == 0 {
		r.mu.Unlock()
		return nil
	}
	r.pending = make(map[deviceKey]sighting, len(batch))
	r.mu.Unlock()

	seen := make([]store.DeviceSeen, 0, len(batch))
	for k, s := range batch {
		var ip string
		if s.ip.IsValid() {
			ip = s.ip.String()
		}
		seen = append(seen, store.DeviceSeen{UserID: k.userID, DeviceID: k.deviceID, IP: ip, At: s.at})
	}
	for start := 0; start < len(seen); start += r.opts.BatchSize {
		end := min(start+r.opts.BatchSize, len(seen))
		wctx, cancel := context.WithTimeout(ctx, r.opts.WriteTimeout)
		err := r.st.RecordLastSeen(wctx, seen[start:end])
		cancel()
		if err != nil {
			r.keep(seen[start:], batch)
			return err
		}
	}
	return nil
}

// keep remembers again the sightings of a failed write, those of batch
// named in seen, unless a later one of the device came in meanwhile.
// Devices that no longer fit under MaxPending are dropped and counted.
func (r *Recorder) keep(seen []store.DeviceSeen, batch map[deviceKey]sighting) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range seen {
		k := deviceKey{s.UserID, s.DeviceID}
		old, ok := r.pending[k]
		switch {
		case ok && !old.at.Before(s.At):
		case !ok && len(r.pending) >= r.opts.MaxPending:
			r.dropped.Add(1)
		default:
			r.pending[k] = batch[k]
		}
	}
}

// Package outbox delivers the store's outbox: the events authd writes for
// the homeserver when devices are deleted or accounts deactivated, POSTed
// one at a time, in the order they were written, to a configured URL, each
// signed with HMAC-SHA256, until the receiver answers 2xx. It imports only
// the store's interface; cmd/authd starts one Deliverer per serve process,
// and the store's claim makes one of them, across replicas, the one that
// sends. The receiver's side is described in docs/homeserver-events.md.
package outbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/authd/authd/internal/store"
)

// The headers of a delivery.
const (
	// HeaderEventID is the event's ID, as in the body: what a receiver
	// deduplicates on.
	HeaderEventID = "X-Authd-Event-Id"
	// HeaderTimestamp is when this attempt was signed, in seconds since
	// the Unix epoch: a receiver refuses an old one, so that a captured
	// request cannot be replayed much later.
	HeaderTimestamp = "X-Authd-Timestamp"
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256, keyed with the
	// shared secret, of the timestamp, a '.', and the body.
	HeaderSignature = "X-Authd-Signature"
)

// Defaults for the zero fields of Config.
const (
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = 5 * time.Minute
	DefaultTimeout      = 10 * time.Second
	DefaultPollInterval = 5 * time.Second
	DefaultLeaseTTL     = 30 * time.Second
)

// batchSize is how many events one read of the outbox returns.
const batchSize = 100

// Clock is the time a Deliverer lives by; tests drive it.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// Config is what a Deliverer needs. URL and Secret are required; the other
// zero fields take the defaults.
type Config struct {
	// URL receives every event, POSTed as JSON.
	URL string
	// Secret keys the HMAC-SHA256 signature of each delivery.
	Secret []byte
	// MinBackoff is the wait after a first failure; it doubles with each
	// further failure of the same event, up to MaxBackoff, and is jittered.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one HTTP attempt, connection to response headers and
	// the little of the body that is read.
	Timeout time.Duration
	// PollInterval is how often an idle deliverer looks for events written
	// by other processes (the CLI, other replicas); its own store wakes it
	// at once (Kick).
	PollInterval time.Duration
	// LeaseTTL is how long the claim on the outbox lasts unless renewed;
	// renewed at every step, it passes to another process that long after
	// this one stopped without releasing it.
	LeaseTTL time.Duration
	// Holder names this deliverer in the claim; "" draws a random one.
	Holder string
	// Client sends the requests (its own timeout applies too); nil is a
	// client with Timeout.
	Client *http.Client
	Logger *slog.Logger
	// Clock is nil for the real one.
	Clock Clock
}

// Deliverer sends the outbox's events. Run it in one goroutine; Kick it
// from any.
type Deliverer struct {
	st   store.OutboxStore
	cfg  Config
	kick chan struct{}
	// lastFailure is the kind of the last failure logged, so that a
	// receiver that stays down is logged when it goes down and when it
	// recovers, not at every attempt.
	lastFailure       string
	delivered, failed atomic.Uint64
}

// New returns a Deliverer of st's outbox.
func New(st store.OutboxStore, cfg Config) *Deliverer {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Holder == "" {
		cfg.Holder = rand.Text()
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout: cfg.Timeout,
			// A redirect is the receiver's misconfiguration, and following
			// it would send the event where the operator did not say:
			// it counts as a failure (status_3xx).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	return &Deliverer{st: st, cfg: cfg, kick: make(chan struct{}, 1)}
}

// Kick wakes the deliverer: events were committed. It never blocks.
func (d *Deliverer) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Delivered counts the events this deliverer has delivered.
func (d *Deliverer) Delivered() uint64 { return d.delivered.Load() }

// Failed counts this deliverer's failed attempts.
func (d *Deliverer) Failed() uint64 { return d.failed.Load() }

// Run delivers events until ctx ends, then releases its claim on the
// outbox. It returns nil then; it never stops by itself: a database or a
// receiver that fails is retried.
func (d *Deliverer) Run(ctx context.Context) error {
	defer func() {
		// ctx has ended; the release gets a moment of its own.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := d.st.ReleaseOutbox(rctx, d.cfg.Holder); err != nil {
			d.cfg.Logger.LogAttrs(rctx, slog.LevelWarn, "outbox: release claim failed", slog.Any("err", err))
		}
	}()
	for {
		wait := d.step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.kick:
		case <-d.cfg.Clock.After(wait):
		}
	}
}

// step delivers what it can, strictly in ID order, and returns how long to
// wait before the next step (unless kicked). One event that cannot be
// delivered yet holds back every later one: head-of-line blocking is what
// keeps each user's events in order, and the simplest way to.
func (d *Deliverer) step(ctx context.Context) time.Duration {
	held, err := d.st.ClaimOutbox(ctx, d.cfg.Holder, d.cfg.Clock.Now(), d.cfg.LeaseTTL)
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "outbox: claim failed", slog.Any("err", err))
		}
		return d.cfg.PollInterval
	}
	if !held {
		return d.cfg.PollInterval // another process delivers
	}
	claimedAt := d.cfg.Clock.Now()
	for {
		events, err := d.st.FindOutboxEvents(ctx, batchSize)
		if err != nil {
			if ctx.Err() == nil {
				d.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "outbox: read failed", slog.Any("err", err))
			}
			return d.cfg.PollInterval
		}
		if len(events) == 0 {
			return d.cfg.PollInterval
		}
		for _, e := range events {
			now := d.cfg.Clock.Now()
			if e.NextAttemptAt.After(now) {
				return e.NextAttemptAt.Sub(now)
			}
			if now.Sub(claimedAt) >= d.cfg.LeaseTTL/3 {
				// A long batch renews the claim before it could lapse.
				held, err := d.st.ClaimOutbox(ctx, d.cfg.Holder, now, d.cfg.LeaseTTL)
				if err != nil || !held {
					return d.cfg.PollInterval
				}
				claimedAt = now
			}
			kind := d.send(ctx, e)
			if ctx.Err() != nil {
				return 0 // stopping: the attempt is not the receiver's failure
			}
			if kind == "" {
				if err := d.st.DeleteOutboxEvent(ctx, e.ID); err != nil {
					// Delivered, and delivered again next time: at least once.
					if ctx.Err() == nil {
						d.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "outbox: delete delivered event failed", slog.Any("err", err))
					}
					return d.cfg.PollInterval
				}
				d.delivered.Add(1)
				if d.lastFailure != "" {
					d.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "outbox: receiver accepts events again")
					d.lastFailure = ""
				}
				continue
			}
			return d.fail(ctx, e, kind)
		}
	}
}

// fail records a failed attempt at e and returns the backoff before the
// next.
func (d *Deliverer) fail(ctx context.Context, e store.OutboxEvent, kind string) time.Duration {
	d.failed.Add(1)
	if kind != d.lastFailure {
		d.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "outbox: delivery failed, retrying with backoff",
			slog.String("kind", kind), slog.String("event_id", e.EventID), slog.Int("attempts", e.Attempts+1))
		d.lastFailure = kind
	}
	wait := d.backoff(e.Attempts + 1)
	if err := d.st.RecordOutboxFailure(ctx, e.ID, kind, d.cfg.Clock.Now().Add(wait)); err != nil {
		d.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "outbox: record failure failed", slog.Any("err", err))
	}
	return wait
}

// backoff is the wait after the given number of failed attempts: MinBackoff
// doubled for each attempt after the first, capped at MaxBackoff, then
// between half and all of that at random, so that replicas and receivers
// recovering together do not retry in step.
func (d *Deliverer) backoff(attempts int) time.Duration {
	wait := d.cfg.MaxBackoff
	if attempts < 40 {
		wait = min(d.cfg.MinBackoff<<(attempts-1), d.cfg.MaxBackoff)
		if wait <= 0 { // overflowed
			wait = d.cfg.MaxBackoff
		}
	}
	half := wait / 2
	j, err := rand.Int(rand.Reader, big.NewInt(int64(half)+1))
	if err != nil {
		return wait
	}
	return half + time.Duration(j.Int64())
}

// envelope is the body of a delivery.
type envelope struct {
	EventID   string          `json:"event_id"`
	Type      string          `json:"type"`
	UserID    string          `json:"user_id"`
	CreatedAt string          `json:"created_at"`
	Content   json.RawMessage `json:"content"`
}

// Body returns the JSON body that delivers e.
func Body(e store.OutboxEvent) ([]byte, error) {
	return json.Marshal(envelope{
		EventID:   e.EventID,
		Type:      e.Type,
		UserID:    e.UserID,
		CreatedAt: e.CreatedAt.UTC().Format(time.RFC3339Nano),
		Content:   json.RawMessage(e.Payload),
	})
}

// Sign returns the value of HeaderSignature for a body signed at the
// timestamp ts (HeaderTimestamp's value).
func Sign(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// send POSTs e once and returns "" if the receiver accepted it (2xx), or
// the kind of failure: "status_NNN", "timeout", "connection" or "request".
// The kind is all that is kept: never the receiver's body, nor the URL
// (which may hold a credential).
func (d *Deliverer) send(ctx context.Context, e store.OutboxEvent) string {
	body, err := Body(e)
	if err != nil {
		return "request"
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return "request"
	}
	ts := strconv.FormatInt(d.cfg.Clock.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderEventID, e.EventID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(d.cfg.Secret, ts, body))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return failureKind(err)
	}
	// Read a little, so that the connection can be reused; what it says is
	// not ours to keep.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Sprintf("status_%d", resp.StatusCode)
	}
	return ""
}

// failureKind names a transport error without its text, which holds the URL.
func failureKind(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	default:
		return "connection"
	}
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

package store

import (
	"context"
	"time"
)

// Revocation names tokens revoked by another process: every access token of
// DeviceID, or of every device of UserID when DeviceID is empty. A
// Revocation with an empty UserID names every token (a notice the listener
// could not read, or one that revoked everything): drop all of them.
type Revocation struct{ UserID, DeviceID string }

// RevocationListener is implemented by stores that broadcast revocations
// (Postgres through NOTIFY, SQLite through a polled table): every
// revocation of an access token, committed by any process on the database,
// is announced to every listener.
type RevocationListener interface {
	// ListenRevocations calls revoked for each revocation committed by any
	// process, until ctx ends. subscribed is called with true once the
	// subscription is live (every revocation committed after it is
	// delivered), and with false and the error whenever it is lost or an
	// attempt to subscribe fails; it then reconnects with backoff (capped at
	// a few seconds) and calls subscribed(true, nil) again. Revocations
	// committed while it is not subscribed are never delivered, so a
	// consumer must stop trusting what it cached from subscribed(false) to
	// the next subscribed(true). When ctx ends while it is subscribed, it
	// calls subscribed(false, ctx.Err()); then it returns. revoked and
	// subscribed are called from one goroutine, one at a time.
	ListenRevocations(ctx context.Context, revoked func(Revocation), subscribed func(ok bool, err error))
}

// KeepSubscribed is the loop of a ListenRevocations: it calls subscribe
// until ctx ends, waiting between two calls from backoffMin, doubling up to
// backoffMax (back to backoffMin after a success). subscribe connects,
// calls live once every later revocation will be delivered, delivers them
// until it fails, and returns why. KeepSubscribed reports each live and
// each failure to subscribed, and a ctx ending while live as
// subscribed(false, ctx.Err()), as RevocationListener promises.
func KeepSubscribed(ctx context.Context, backoffMin, backoffMax time.Duration,
	subscribe func(ctx context.Context, live func()) error, subscribed func(ok bool, err error)) {
	backoff := backoffMin
	for {
		live := false
		err := subscribe(ctx, func() {
			live = true
			backoff = backoffMin
			subscribed(true, nil)
		})
		if ctx.Err() != nil {
			if live {
				subscribed(false, ctx.Err())
			}
			return
		}
		subscribed(false, err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, backoffMax)
	}
}

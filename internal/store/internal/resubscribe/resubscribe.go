// Package resubscribe holds the reconnect loop both stores' revocation
// listeners share. It sits under internal/store/internal so that only the
// stores can import it: it is how they keep store.RevocationListener's
// promise, not part of the domain.
package resubscribe

import (
	"context"
	"time"
)

// Loop calls subscribe until ctx ends, waiting between two calls from
// backoffMin, doubling up to backoffMax (back to backoffMin after a
// success). subscribe connects, calls live once every later revocation will
// be delivered, delivers them until it fails, and returns why. Loop reports
// each live as subscribed(nil), each failure as subscribed(err), and a ctx
// ending while live as subscribed(ctx.Err()), as store.RevocationListener
// promises. A failure while not live that ctx's end caused is not reported.
func Loop(ctx context.Context, backoffMin, backoffMax time.Duration,
	subscribe func(ctx context.Context, live func()) error, subscribed func(err error)) {
	backoff := backoffMin
	for {
		live := false
		err := subscribe(ctx, func() {
			live = true
			backoff = backoffMin
			subscribed(nil)
		})
		if ctx.Err() != nil {
			if live {
				subscribed(ctx.Err())
			}
			return
		}
		subscribed(err)
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

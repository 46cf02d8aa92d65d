package store

import "context"

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
	// process, until ctx ends. subscribed is called with nil once the
	// subscription is live (every revocation committed after it is
	// delivered), and with the error whenever it is lost or an attempt to
	// subscribe fails; it then reconnects with backoff (capped at a few
	// seconds) and calls subscribed(nil) again. Revocations committed while
	// it is not subscribed are never delivered, so a consumer must stop
	// trusting what it cached from a subscribed(err) to the next
	// subscribed(nil). When ctx ends while it is subscribed, it calls
	// subscribed(ctx.Err()); then it returns. revoked and subscribed are
	// called from one goroutine, one at a time.
	ListenRevocations(ctx context.Context, revoked func(Revocation), subscribed func(err error))
}

package resubscribe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// Loop reports each attempt's outcome in order, retries after a
// failure and after a lost subscription, and ends with the context: with
// subscribed(ctx.Err()) only when it was live.
func TestLoop(t *testing.T) {
	errDial := errors.New("dial failed")
	errLost := errors.New("connection lost")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls []string
	attempt := 0
	subscribe := func(ctx context.Context, live func()) error {
		attempt++
		switch attempt {
		case 1, 2:
			return errDial
		case 3:
			live()
			return errLost
		default:
			live()
			cancel() // the process shuts down while subscribed
			<-ctx.Done()
			return ctx.Err()
		}
	}
	Loop(ctx, time.Millisecond, 2*time.Millisecond, subscribe, func(err error) {
		calls = append(calls, fmt.Sprint(err))
	})
	want := []string{
		"dial failed", "dial failed",
		"<nil>", "connection lost",
		"<nil>", "context canceled",
	}
	if !slices.Equal(calls, want) {
		t.Fatalf("subscribed calls:\n%q\nwant\n%q", calls, want)
	}
}

// A context that ends while no subscription is live ends the loop with no
// further report, during the wait between attempts too.
func TestLoop_StopWhileDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls []string
	attempts := 0
	Loop(ctx, time.Hour, time.Hour, func(context.Context, func()) error {
		attempts++
		return errors.New("refused")
	}, func(err error) {
		calls = append(calls, fmt.Sprint(err))
		cancel() // the wait that follows is an hour: only ctx can end it
	})
	if want := []string{"refused"}; !slices.Equal(calls, want) || attempts != 1 {
		t.Fatalf("subscribed calls %q after %d attempts, want %q after 1", calls, attempts, want)
	}
	// A failure that ctx's end caused is not reported.
	calls = nil
	Loop(ctx, time.Hour, time.Hour, func(context.Context, func()) error {
		return context.Canceled
	}, func(err error) { calls = append(calls, fmt.Sprint(err)) })
	if len(calls) != 0 {
		t.Fatalf("subscribed calls %q after ctx ended, want none", calls)
	}
}

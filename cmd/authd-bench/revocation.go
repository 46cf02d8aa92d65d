package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/authd/authd/internal/bench"
)

// revocationScenario times how long a token revoked on one authd is still
// honoured by another on the same database that had it cached: Postgres
// carries the notice by NOTIFY, SQLite by the revocations table the other
// serve polls (every 50 ms).
const revocationScenario = "revocation-across-replicas"

// revocationResult is what the revocation scenario measured, in the rounds
// it ran: the time from replica A's 200 to the logout to replica B's first
// 401 for the token.
type revocationResult struct {
	Rounds int     `json:"rounds"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
	// Polls is how many whoami requests B answered 200 after the logout,
	// over every round: each one honoured a revoked token.
	Polls int `json:"polls_honoured"`
}

// acrossReplicas starts a second authd like a on the same database, and
// for each round logs in on a, has b cache the token (two whoami), logs out
// on a, and polls b's whoami until it refuses the token. The second
// replica is stopped before it returns, whatever happens.
func acrossReplicas(ctx context.Context, a *authd, kind, dir string, rounds int, logw io.Writer) (r revocationResult, err error) {
	wrap := func(what string, err error) error { return fmt.Errorf("%s: %s: %w", revocationScenario, what, err) }
	b, err := a.replica(filepath.Join(dir, "authd-revocation.log"))
	if err != nil {
		return r, wrap("second replica", err)
	}
	progress(logw, "%s: %s: starting a second authd on the same database, %d rounds", kind, revocationScenario, rounds)
	if err := b.start(ctx); err != nil {
		return r, wrap("second replica", err)
	}
	defer func() {
		if serr := b.stop(); serr != nil && err == nil {
			err = wrap("second replica", serr)
		}
	}()
	onA, err := bench.Dial(a.addr)
	if err != nil {
		return r, wrap("dial", err)
	}
	defer onA.Close()
	onB, err := bench.Dial(b.addr)
	if err != nil {
		return r, wrap("dial", err)
	}
	defer onB.Close()

	took := make([]time.Duration, 0, rounds)
	for round := range rounds {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		status, body, err := onA.Do(bench.NewRequest("POST", a.addr, loginPath, loginBody(userName(0), benchPassword)))
		var login struct {
			AccessToken string `json:"access_token"`
		}
		if err != nil || status != http.StatusOK || json.Unmarshal(body, &login) != nil || login.AccessToken == "" {
			return r, wrap(fmt.Sprintf("round %d: login on A", round), fmt.Errorf("%d %s %v", status, body, err))
		}
		whoami := bench.NewRequest("GET", b.addr, whoamiPath, "", bearer(login.AccessToken))
		for range 2 { // the second answer comes from B's cache
			if status, body, err := onB.Do(whoami); err != nil || status != http.StatusOK {
				return r, wrap(fmt.Sprintf("round %d: whoami on B", round), fmt.Errorf("%d %s %v", status, body, err))
			}
		}
		status, body, err = onA.Do(bench.NewRequest("POST", a.addr, "/_matrix/client/v3/logout", "{}", bearer(login.AccessToken)))
		if err != nil || status != http.StatusOK {
			return r, wrap(fmt.Sprintf("round %d: logout on A", round), fmt.Errorf("%d %s %v", status, body, err))
		}
		// From A's answer: the revocation is committed, and B is told.
		start := time.Now()
		for {
			status, body, err := onB.Do(whoami)
			if err != nil || (status != http.StatusOK && status != http.StatusUnauthorized) {
				return r, wrap(fmt.Sprintf("round %d: whoami on B after the logout", round), fmt.Errorf("%d %s %v", status, body, err))
			}
			if status == http.StatusUnauthorized {
				break
			}
			r.Polls++
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	r.Rounds = len(took)
	if len(took) > 0 {
		r.P50MS = ms(took[len(took)/2])
		r.P99MS = ms(took[min(len(took)-1, int(0.99*float64(len(took))))])
		r.MaxMS = ms(took[len(took)-1])
	}
	return r, nil
}

package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// keyPrefix begins every key the Redis limiter writes; the rule's name and
// the limited key follow it: authd:rl:login_ip:203.0.113.7.
const keyPrefix = "authd:rl:"

// gcra is the one script behind Allow, Peek and Undo: the generic cell rate
// algorithm, which keeps a bucket as one number, its theoretical arrival
// time (TAT): the time at which the bucket is full again. With one refill
// every T and a burst of B, the bucket holds (now + B*T - TAT) / T tokens,
// at most B; a TAT at or before now is a full bucket, which is no key at
// all. One script keeps each decision atomic across replicas.
//
// KEYS[1] is the bucket; ARGV is the operation (allow, peek or undo), T in
// microseconds, B, and now in microseconds since the epoch, or "" for the
// server's clock. Times are microseconds because Lua's numbers are doubles:
// microseconds since the epoch stay exact (below 2^53) for centuries, and
// the script writes them with %d, never in a double's exponent notation.
// The reply is {1, 0} when allowed (or undone), {0, wait} with the wait in
// microseconds when denied.
var gcra = redis.NewScript(`
local key = KEYS[1]
local op = ARGV[1]
local every = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local now
if ARGV[4] == '' then
	-- The server's clock, not each replica's, so replicas with skewed
	-- clocks agree. Effects replication (the default since Redis 5) makes
	-- TIME before a write safe.
	local t = redis.call('TIME')
	now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
	now = tonumber(ARGV[4])
end

local stored = redis.call('GET', key)
if not stored then
	-- A full bucket: Peek allows, Undo has nothing to give back.
	if op ~= 'allow' then
		return {1, 0}
	end
	stored = now
end
local tat = math.max(tonumber(stored), now)

-- store sets the TAT and expires the key when it passes, rounding up to the
-- millisecond of PX so that the key outlives its debt.
local function store(t)
	redis.call('SET', key, string.format('%d', t), 'PX', string.format('%d', math.ceil((t - now) / 1000)))
end

if op == 'undo' then
	-- Back one refill, but never below now: a bucket is never above its
	-- burst.
	tat = tat - every
	if tat <= now then
		redis.call('DEL', key)
	else
		store(tat)
	end
	return {1, 0}
end

-- One more action moves the TAT on by T; that is allowed while the TAT
-- stays within B*T of now.
local wait = tat + every - burst * every - now
if wait > 0 then
	return {0, wait}
end
if op == 'allow' then
	store(tat + every)
end
return {1, 0}
`)

// The operations of the script.
const (
	opAllow = "allow"
	opPeek  = "peek"
	opUndo  = "undo"
)

// Redis is a Limiter shared by every replica that talks to one Redis: each
// decision is one atomic script on one key, so replicas split one budget.
// It keeps no state in the process. A bucket that has refilled completely
// holds no key, so Redis holds only the keys in debt, each expiring when it
// has refilled.
//
// Every call is one round trip; how long a Redis that hangs can hold a call
// is bounded by the client's ReadTimeout and WriteTimeout (see NewClient),
// not by the caller's context, unless the client sets
// ContextTimeoutEnabled.
type Redis struct {
	client redis.UniversalClient
	name   string
	rule   Rule
	now    func() time.Time

	// The script's fixed arguments, formatted once.
	every, burst string
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a limiter for rule, named name (such as "login_ip"), on
// client. now is the clock; nil means Redis's own clock (TIME), so that
// replicas whose clocks disagree still agree on every bucket; a fake clock
// is for tests. Its keys are authd:rl:NAME:KEY. The rule's Every is used in
// whole microseconds, rounded up. A rule that is not Enabled allows everything without touching Redis.
func NewRedis(client redis.UniversalClient, name string, rule Rule, now func() time.Time) *Redis {
	every := (rule.Every + time.Microsecond - 1) / time.Microsecond
	return &Redis{
		client: client,
		name:   name,
		rule:   rule,
		now:    now,
		every:  strconv.FormatInt(int64(every), 10),
		burst:  strconv.Itoa(rule.Burst),
	}
}

// Allow implements Limiter.
func (r *Redis) Allow(ctx context.Context, key string) (Decision, error) {
	return r.decide(ctx, opAllow, key)
}

// Peek implements Limiter. It never writes.
func (r *Redis) Peek(ctx context.Context, key string) (Decision, error) {
	return r.decide(ctx, opPeek, key)
}

// Undo implements Limiter.
func (r *Redis) Undo(ctx context.Context, key string) error {
	if !r.rule.Enabled() {
		return nil
	}
	_, err := r.run(ctx, opUndo, key)
	return err
}

// bucketKey is the Redis key of key's bucket.
func (r *Redis) bucketKey(key string) string {
	return keyPrefix + r.name + ":" + key
}

func (r *Redis) decide(ctx context.Context, op, key string) (Decision, error) {
	if !r.rule.Enabled() {
		return Decision{Allowed: true}, nil
	}
	reply, err := r.run(ctx, op, key)
	if err != nil {
		return Decision{}, err
	}
	if reply[0] == 1 {
		return Decision{Allowed: true}, nil
	}
	return Decision{RetryAfter: roundUp(time.Duration(reply[1]) * time.Microsecond)}, nil
}

// run runs the script for op on key's bucket and returns its reply.
func (r *Redis) run(ctx context.Context, op, key string) ([]int64, error) {
	now := ""
	if r.now != nil {
		now = strconv.FormatInt(r.now().UnixMicro(), 10)
	}
	// Run sends EVALSHA, and the whole script only when Redis does not have
	// it cached (first use, a restart, SCRIPT FLUSH).
	reply, err := gcra.Run(ctx, r.client, []string{r.bucketKey(key)}, op, r.every, r.burst, now).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(reply) != 2 {
		return nil, fmt.Errorf("ratelimit: redis: the script answered %v", reply)
	}
	return reply, nil
}

// Scale-out: three authd replicas on one Postgres with their rate limits in
// one Redis, as behind a load balancer that spreads requests round-robin.
// Shows that the replicas share one budget of password guesses, that a
// logout on one replica is refused by the others within 100 ms although
// each caches token lookups, that the CLI's passwd and deactivate end
// sessions on every replica, that Debian's nginx with the shipped
// deploy/nginx/authd.conf balances one client over all three within one
// budget, and that losing Redis leaves every replica serving with local
// limits (saying so in /readyz) until it is back.
//
// The replicas trust 127.0.0.1 as their proxy, so the client IP of each
// request is the X-Forwarded-For the test sends, as nginx would report it
// (and, through nginx, the one nginx reports: the loopback address the test
// sends from).
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { after, before, describe, test } from "node:test";

import { mxid } from "../lib/env.mjs";
import { rejectsWith } from "../lib/expect.mjs";
import { users } from "../lib/fixtures.mjs";
import { fetchFrom, request } from "../lib/http.mjs";
import { Nginx, Redis, Replica, bcryptChecks, runAuthd, stopAll, waitFor } from "../lib/replicas.mjs";
import { createClient } from "../lib/sdk.mjs";

const { heidi, ivan, judy } = users;

// Rules long enough that nothing refills during a test, so that every count
// below is exact: 10 logins per client IP, 5 failed logins per account.
const settings = (redisUrl) => ({
    AUTHD_RATELIMIT: "on",
    AUTHD_RATELIMIT_BACKEND: "redis",
    AUTHD_REDIS_URL: redisUrl,
    AUTHD_TRUSTED_PROXIES: "127.0.0.1/32",
    AUTHD_RATELIMIT_LOGIN_IP: "10/1h",
    AUTHD_RATELIMIT_LOGIN_FAILED: "5/1h",
    AUTHD_RATELIMIT_LOGIN_SUCCESS: "200/1h",
    // The revocation tests poll revoked tokens from one address as fast as
    // they can; the per-IP budget for unknown tokens has its own tests
    // (hardening.test.mjs) and would refuse them here.
    AUTHD_RATELIMIT_TOKEN_FAILURES: "off",
});

// Revocation must reach every replica within this many milliseconds.
const revocationBudgetMs = 100;

let redis;
let replicas;

// login posts an m.login.password request to a replica as client ip and
// resolves to { status, json }.
function login(replica, user, password, ip) {
    return request(`${replica.url}/_matrix/client/v3/login`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-forwarded-for": ip },
        body: JSON.stringify({ type: "m.login.password", identifier: { type: "m.id.user", user }, password }),
    });
}

// One matrix-js-sdk client per replica, made once: a client per login
// leaves the garbage collector work that stalls Node for tens of
// milliseconds now and then, inside the revocation timings.
const clients = new Map();
let clientIp = "";

// sdkLogin logs user in on a replica with matrix-js-sdk, as client ip, and
// returns the session's access token.
async function sdkLogin(replica, user, ip) {
    if (!clients.has(replica)) {
        clients.set(replica, createClient({ baseUrl: replica.url, fetchFn: fetchFrom(undefined, () => ({ "x-forwarded-for": clientIp })) }));
    }
    clientIp = ip;
    const res = await clients.get(replica).login("m.login.password", {
        identifier: { type: "m.id.user", user: user.localpart },
        password: user.password,
    });
    assert.equal(res.user_id, mxid(user.localpart));
    return res.access_token;
}

// whoami asks a replica who token belongs to, resolving to { status, json }.
function whoami(replica, token) {
    return request(`${replica.url}/_matrix/client/v3/account/whoami`, {
        headers: { authorization: `Bearer ${token}` },
    });
}

// refusedWithin polls whoami on a replica every 2 ms or so until it
// answers 401 M_UNKNOWN_TOKEN, and returns the milliseconds since start; it
// fails if anything but 200 or that 401 comes back, or after budgetMs.
async function refusedWithin(replica, token, start, budgetMs) {
    for (;;) {
        const res = await whoami(replica, token);
        const elapsed = performance.now() - start;
        if (res.status === 401) {
            assert.equal(res.json?.errcode, "M_UNKNOWN_TOKEN", res.text);
            assert.ok(elapsed <= budgetMs, `${replica.name} refused the token only ${elapsed.toFixed(1)} ms after its revocation`);
            return elapsed;
        }
        assert.equal(res.status, 200, `whoami on ${replica.name}: ${res.status} ${res.text}`);
        assert.ok(elapsed <= budgetMs, `${replica.name} still accepts the token ${elapsed.toFixed(1)} ms after its revocation`);
        // A breath between polls: polling flat out keeps both CPUs of a
        // small machine busy, and the replicas' listeners then wait for
        // one (measured here: worst 30-80 ms flat out, 5-35 ms with this).
        await delay(2);
    }
}

// sum adds the differences of two arrays of counters.
const delta = (before, after) => after.map((v, i) => v - before[i]);
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

describe("three replicas sharing Redis", () => {
    before(async () => {
        redis = await Redis.start();
        replicas = await Promise.all(["a", "b", "c"].map((n) => Replica.start(`replica-${n}`, settings(redis.url))));
        // Ready (database and schema) comes a moment before the revocation
        // feed's LISTEN is live: wait for each replica to say both.
        for (const r of replicas) {
            const checks = await waitFor(`${r.name} subscribed to revocations`, async () => {
                const { body } = await r.readyz();
                return body.checks?.revocations === "subscribed" && body.checks;
            });
            assert.deepEqual(checks, { ratelimit: "redis", revocations: "subscribed" }, `${r.name} /readyz`);
        }
    });
    after(stopAll);

    test("100 logins from one client IP, round-robin: the per-IP burst reaches bcrypt, not three times it", async () => {
        const ip = "198.51.100.1";
        const before = await bcryptChecks(replicas);
        const statuses = {};
        for (let i = 0; i < 100; i++) {
            // Unknown accounts, so that only the per-IP rule applies: each
            // still costs a (dummy) bcrypt comparison when it gets through.
            const res = await login(replicas[i % 3], `nobody-${i}`, "wrong password", ip);
            statuses[res.status] = (statuses[res.status] ?? 0) + 1;
            if (res.status === 429) {
                assert.equal(res.json.errcode, "M_LIMIT_EXCEEDED");
                assert.ok(res.json.retry_after_ms > 0, res.text);
            } else {
                assert.equal(res.status, 403, res.text);
                assert.equal(res.json.errcode, "M_FORBIDDEN");
            }
        }
        const checks = delta(before, await bcryptChecks(replicas));
        assert.equal(sum(checks), 10, `bcrypt comparisons per replica: ${checks}`);
        assert.deepEqual(statuses, { 403: 10, 429: 90 });
    });

    test("100 wrong passwords for one account from 100 IPs, round-robin: the per-account burst reaches bcrypt", async () => {
        const before = await bcryptChecks(replicas);
        let limited = 0;
        for (let i = 0; i < 100; i++) {
            const res = await login(replicas[i % 3], heidi.localpart, "not heidi's password", `198.51.101.${i}`);
            assert.ok(res.status === 403 || res.status === 429, `${res.status} ${res.text}`);
            if (res.status === 429) limited++;
        }
        const checks = delta(before, await bcryptChecks(replicas));
        assert.equal(sum(checks), 5, `bcrypt comparisons per replica: ${checks}`);
        assert.equal(limited, 95);
    });

    test(`a logout on replica A is refused on replica B within ${revocationBudgetMs} ms, 50 tokens in a row`, async () => {
        const latencies = [];
        for (let i = 0; i < 50; i++) {
            const a = replicas[i % 3];
            const b = replicas[(i + 1) % 3];
            const token = await sdkLogin(b, ivan, `203.0.113.${i}`);
            // Used on B: B now holds it in its token cache.
            for (let j = 0; j < 2; j++) {
                const res = await whoami(b, token);
                assert.equal(res.status, 200, res.text);
                assert.equal(res.json.user_id, mxid(ivan.localpart));
            }
            // The logout as the SDK sends it (POST, bearer token, empty
            // object), timed from the moment its answer is in.
            const out = await request(`${a.url}/_matrix/client/v3/logout`, {
                method: "POST",
                headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
                body: "{}",
            });
            const start = performance.now();
            assert.equal(out.status, 200, out.text);
            assert.deepEqual(out.json, {});
            latencies.push(await refusedWithin(b, token, start, revocationBudgetMs));
            await rejectsWith(createClient({ baseUrl: a.url, accessToken: token }).whoami(), 401, "M_UNKNOWN_TOKEN");
        }
        const sorted = latencies.toSorted((a, b) => a - b);
        console.log(
            `revocation seen by the other replica: median ${sorted[25].toFixed(1)} ms, worst ${sorted.at(-1).toFixed(1)} ms of 50` +
                ` (slowest: ${latencies.map((l, i) => [l, i]).toSorted((a, b) => b[0] - a[0]).slice(0, 3).map(([l, i]) => `#${i} ${l.toFixed(1)}`).join(", ")})`,
        );
    });

    test("authd user passwd and deactivate end the user's sessions on every replica", async () => {
        for (const [user, args, input] of [
            [ivan, ["user", "passwd", ivan.localpart, "--password-stdin"], `${ivan.password}\n`],
            [judy, ["user", "deactivate", judy.localpart], ""],
        ]) {
            const tokens = [];
            for (const [i, r] of replicas.entries()) {
                const token = await sdkLogin(r, user, `203.0.114.${i}`);
                assert.equal((await whoami(r, token)).status, 200);
                tokens.push(token);
            }
            await runAuthd(args, input);
            const start = performance.now();
            for (const [i, r] of replicas.entries()) {
                await refusedWithin(r, tokens[i], start, revocationBudgetMs);
            }
        }
    });

    test("through nginx with the shipped config, round-robin over the three: one client's burst, not three", async () => {
        const nginx = await Nginx.start(replicas);
        const attempts = () => Promise.all(replicas.map((r) => r.metricSum("authd_login_attempts_total")));
        const before = await bcryptChecks(replicas);
        const seen = await attempts();
        const statuses = {};
        for (let i = 0; i < 60; i++) {
            // From 127.0.0.2: nginx puts it in X-Forwarded-For, and the
            // replicas trust nginx (127.0.0.1) to say so.
            const res = await request(`${nginx.url}/_matrix/client/v3/login`, {
                method: "POST",
                headers: { "content-type": "application/json" },
                body: JSON.stringify({ type: "m.login.password", identifier: { type: "m.id.user", user: `nobody-${i}` }, password: "wrong" }),
                localAddress: "127.0.0.2",
            });
            statuses[res.status] = (statuses[res.status] ?? 0) + 1;
            assert.ok(res.status === 403 || res.status === 429, `${res.status} ${res.text}`);
        }
        assert.deepEqual(statuses, { 403: 10, 429: 50 });
        const checks = delta(before, await bcryptChecks(replicas));
        assert.equal(sum(checks), 10, `bcrypt comparisons per replica: ${checks}`);
        // nginx spread the logins over all three.
        const spread = delta(seen, await attempts());
        assert.equal(sum(spread), 60);
        for (const [i, n] of spread.entries()) {
            assert.ok(n >= 10, `${replicas[i].name} got ${n} of 60 logins through nginx: ${spread}`);
        }
        // Another client behind the same nginx has its own budget.
        const other = await request(`${nginx.url}/_matrix/client/v3/login`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ type: "m.login.password", identifier: { type: "m.id.user", user: "nobody" }, password: "wrong" }),
            localAddress: "127.0.0.3",
        });
        assert.equal(other.status, 403, other.text);
        assert.equal(other.json.errcode, "M_FORBIDDEN");
    });

    test("Redis stopped: every replica serves logins with local limits and says so; Redis back: shared limits resume", async () => {
        await redis.stop();
        const ip = "198.51.100.2";
        const before = await bcryptChecks(replicas);
        for (let i = 0; i < 99; i++) {
            const res = await login(replicas[i % 3], `nobody-${i}`, "wrong password", ip);
            assert.ok(res.status === 403 || res.status === 429, `${res.status} ${res.text}`);
        }
        // Each replica now limits on its own: ten per replica.
        assert.deepEqual(delta(before, await bcryptChecks(replicas)), [10, 10, 10]);
        for (const [i, r] of replicas.entries()) {
            const { status, body } = await r.readyz();
            assert.equal(status, 200, `${r.name} stopped being ready without Redis`);
            assert.equal(body.checks.ratelimit, "local (redis unreachable)", `${r.name} /readyz`);
            assert.equal(await r.metric("authd_ratelimit_shared"), 0);
            assert.ok((await r.metric("authd_ratelimit_fallbacks_total")) >= 1);
            // A right password still logs in.
            await sdkLogin(r, ivan, `203.0.115.${i}`);
        }

        await redis.start();
        for (const r of replicas) {
            await waitFor(`${r.name} back on Redis`, async () => (await r.readyz()).body?.checks?.ratelimit === "redis");
            assert.equal(await r.metric("authd_ratelimit_shared"), 1);
        }
        const ip2 = "198.51.100.3";
        const again = await bcryptChecks(replicas);
        for (let i = 0; i < 100; i++) {
            await login(replicas[i % 3], `nobody-${i}`, "wrong password", ip2);
        }
        const checks = delta(again, await bcryptChecks(replicas));
        assert.equal(sum(checks), 10, `bcrypt comparisons per replica after Redis came back: ${checks}`);
    });
});

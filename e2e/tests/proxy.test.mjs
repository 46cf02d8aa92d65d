// authd behind real nginx with the shipped deploy/nginx/authd.conf (run.sh
// renders only its listen and access_log lines and supplies the upstreams):
// the session endpoints reach authd through the proxy, every other Matrix
// request is admitted to the homeserver by authd's forward auth or refused
// with authd's Matrix 401, and authd sees the real client's address.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";

import { homeserverPort, mxid, nginxAccessLog, proxyBaseUrl, trustedProxies } from "../lib/env.mjs";
import { assertMatrixError, rejectsWith } from "../lib/expect.mjs";
import { users } from "../lib/fixtures.mjs";
import { startHomeserver } from "../lib/homeserver.mjs";
import { fetchFrom, request } from "../lib/http.mjs";
import { AutoDiscovery, MatrixError, Method, createClient } from "../lib/sdk.mjs";

const { frank, grace } = users;
const client = (opts = {}) => createClient({ baseUrl: proxyBaseUrl, ...opts });
const nonce = () => randomBytes(6).toString("hex");

describe("through nginx (deploy/nginx/authd.conf)", () => {
    let hs;
    // The requests the stand-in homeserver received whose URL contains s.
    const reached = (s) => hs.requests.filter((r) => r.url.includes(s));

    before(async () => {
        hs = await startHomeserver(homeserverPort);
    });
    after(async () => {
        await hs?.close();
    });

    async function loginGrace(deviceId) {
        const c = client();
        const res = await c.login("m.login.password", {
            identifier: { type: "m.id.user", user: grace.localpart },
            password: grace.password,
            device_id: deviceId,
        });
        return { c, res };
    }

    test("login, whoami and logout with matrix-js-sdk go to authd", async () => {
        const c = client();
        assert.deepEqual(await c.loginFlows(), { flows: [{ type: "m.login.password" }] });
        const res = await c.login("m.login.password", {
            identifier: { type: "m.id.user", user: frank.localpart },
            password: frank.password,
        });
        assert.equal(res.user_id, mxid(frank.localpart));
        // authd's AUTHD_PUBLIC_BASEURL is the proxy, and Element's check of
        // it (GET /versions there) passes: /versions is public and reaches
        // the homeserver without a token.
        assert.deepEqual(res.well_known, { "m.homeserver": { base_url: proxyBaseUrl } });
        const config = await AutoDiscovery.fromDiscoveryConfig(res.well_known);
        assert.equal(config["m.homeserver"].state, AutoDiscovery.SUCCESS, JSON.stringify(config));

        assert.deepEqual(await c.whoami(), { user_id: res.user_id, device_id: res.device_id, is_guest: false });
        assert.deepEqual(await c.logout(), {});
        const err = await rejectsWith(c.whoami(), 401, "M_UNKNOWN_TOKEN");
        assert.notEqual(err.data.soft_logout, true);

        // authd answered all of it; the homeserver only the /versions check.
        for (const r of hs.requests) {
            assert.doesNotMatch(r.url, /\/(login|logout|whoami)/, `the homeserver got ${r.method} ${r.url}`);
        }
        const check = reached("/_matrix/client/versions");
        assert.ok(check.length > 0, "AutoDiscovery's /versions never reached the homeserver");
        for (const r of check) assert.equal(r.headers["x-matrix-user-id"], undefined);
    });

    test("forward auth admits a valid token with the verified user and device", async () => {
        const { c, res } = await loginGrace("GRACEPROXY");
        const n = nonce();

        const got = await c.http.authedRequest(Method.Get, `/rooms/!${n}:authd.test/messages`, {});
        assert.equal(got.stand_in, "homeserver");
        assert.equal(got.user_id, mxid(grace.localpart));
        assert.equal(got.device_id, "GRACEPROXY");

        // A client cannot claim another identity: nginx replaces the headers.
        const forged = await c.http.authedRequest(Method.Get, `/rooms/!${n}:authd.test/state`, {}, undefined, {
            headers: { "X-Matrix-User-Id": "@admin:authd.test", "X-Matrix-Device-Id": "FORGED" },
        });
        assert.equal(forged.user_id, mxid(grace.localpart));
        assert.equal(forged.device_id, "GRACEPROXY");

        // A request body goes to the homeserver untouched (verify never gets it).
        const message = { msgtype: "m.text", body: `hello ${n}` };
        const sent = await c.http.authedRequest(Method.Put, `/rooms/!${n}:authd.test/send/m.room.message/${n}`, {}, message);
        assert.equal(sent.method, "PUT");
        assert.deepEqual(JSON.parse(sent.body), message);
        assert.equal(sent.user_id, mxid(grace.localpart));

        // The deprecated access_token query parameter works as well, and
        // nginx's access log (authd_redacted) does not keep it.
        const q = client({ accessToken: res.access_token, userId: res.user_id, useAuthorizationHeader: false });
        const viaQuery = await q.http.authedRequest(Method.Get, `/rooms/!${n}:authd.test/members`, {});
        assert.equal(viaQuery.user_id, mxid(grace.localpart));
        assert.match(viaQuery.url, /[?&]access_token=/);
        const log = await readFile(nginxAccessLog, "utf8");
        assert.match(log, new RegExp(`/rooms/!${n}:authd.test/members\\?access_token=REDACTED`));
        assert.ok(!log.includes(res.access_token), "nginx's access log holds an access token");

        assert.equal(reached(n).length, 4);
        await c.logout();
    });

    test("forward auth refuses missing, unknown and revoked tokens with authd's Matrix 401", async () => {
        const n = nonce();
        const path = `/rooms/!${n}:authd.test/messages`;

        const missing = await rejectsWith(client().http.authedRequest(Method.Get, path, {}), 401, "M_MISSING_TOKEN");
        assert.match(missing.httpHeaders.get("content-type"), /^application\/json/);
        assert.equal(missing.httpHeaders.get("access-control-allow-origin"), "*");

        const unknown = client({ accessToken: "ada_NotARealTokenNotARealToken12345_000000" });
        await rejectsWith(unknown.http.authedRequest(Method.Get, path, {}), 401, "M_UNKNOWN_TOKEN");

        const { c } = await loginGrace("GRACEREVOKED");
        assert.equal((await c.http.authedRequest(Method.Get, `/e2e/${n}/before-logout`, {})).device_id, "GRACEREVOKED");
        await c.logout();
        const revoked = await rejectsWith(c.http.authedRequest(Method.Get, path, {}), 401, "M_UNKNOWN_TOKEN");
        assert.notEqual(revoked.data.soft_logout, true);
        // A write with a body is refused the same way.
        await rejectsWith(
            c.http.authedRequest(Method.Put, `/rooms/!${n}:authd.test/send/m.room.message/${n}`, {}, { body: "x" }),
            401,
            "M_UNKNOWN_TOKEN",
        );

        // The homeserver saw the one request made with a valid token.
        assert.deepEqual(
            reached(n).map((r) => r.url),
            [`/_matrix/client/v3/e2e/${n}/before-logout`],
        );
    });

    test("the homeserver sees no request without a valid token, however the path is spelled", async () => {
        const n = nonce();
        // Dot segments are refused outright: nginx would route by the
        // normalised path and pass the raw one on.
        for (const p of [
            "/_matrix/client/v3/./sync",
            "/_matrix/client/versions/../v3/sync",
            "/_matrix/client/v3/login/../sync",
            "/_matrix/client/v3/login%2F..%2Fsync",
            "/_matrix/federation/../client/v3/sync",
        ]) {
            const res = await request(`${proxyBaseUrl}${p}?e2e=${n}`);
            assert.equal(res.status, 400, `${p}: ${res.status} ${res.text}`);
            assert.equal(res.json?.errcode, "M_UNRECOGNIZED", `${p}: ${res.text}`);
        }
        const paths = [
            "/_matrix/client/v3/sync",
            "/_matrix//client/v3/sync",
            "/_matrix/client/v3/account/whoami/extra",
            "/_matrix/client/v3/logout/all/extra",
            "/_matrix/client/unstable/org.example/thing",
            "/_matrix/media/v3/download/authd.test/abc",
            "/_matrix/client/v1/media/config",
        ];
        for (const p of paths) {
            const res = await request(`${proxyBaseUrl}${p}?e2e=${n}`);
            assert.equal(res.status, 401, `${p}: ${res.status} ${res.text}`);
            assert.equal(res.json?.errcode, "M_MISSING_TOKEN", `${p}: ${res.text}`);
        }
        const upload = await request(`${proxyBaseUrl}/_matrix/media/v3/upload?e2e=${n}`, {
            method: "POST",
            headers: { "Content-Type": "application/octet-stream", Authorization: "Bearer not-a-token" },
            body: Buffer.alloc(4096),
        });
        assert.equal(upload.status, 401, upload.text);
        assert.equal(upload.json?.errcode, "M_UNKNOWN_TOKEN");
        // Header and query token at once is authd's M_MISSING_TOKEN, as on its own routes.
        const both = await request(`${proxyBaseUrl}/_matrix/client/v3/sync?e2e=${n}&access_token=x`, {
            headers: { Authorization: "Bearer y" },
        });
        assert.equal(both.status, 401, both.text);
        assert.equal(both.json?.errcode, "M_MISSING_TOKEN");
        // The forward-auth endpoint itself is internal to nginx.
        assert.equal((await request(`${proxyBaseUrl}/_authd/verify?e2e=${n}`)).status, 404);

        assert.deepEqual(reached(n), []);
    });

    test("public routes reach the homeserver without a token, never with a client-set identity", async () => {
        const n = nonce();
        const forged = { "X-Matrix-User-Id": "@admin:authd.test", "X-Matrix-Device-Id": "FORGED" };
        for (const p of [
            "/_matrix/client/versions",
            "/_matrix/federation/v1/version",
            "/_matrix/key/v2/server",
            "/.well-known/matrix/client",
        ]) {
            const res = await request(`${proxyBaseUrl}${p}?e2e=${n}`, { headers: forged });
            assert.equal(res.status, 200, `${p}: ${res.text}`);
            assert.equal(res.headers["x-stand-in"], "homeserver", p);
        }
        // A CORS preflight carries no token: the homeserver answers it.
        const preflight = await request(`${proxyBaseUrl}/_matrix/client/v3/sync?e2e=${n}`, {
            method: "OPTIONS",
            headers: { ...forged, Origin: "https://app.example", "Access-Control-Request-Method": "GET" },
        });
        assert.equal(preflight.status, 204);
        assert.equal(preflight.headers["x-stand-in"], "homeserver");

        const seen = reached(n);
        assert.equal(seen.length, 5);
        for (const r of seen) {
            assert.equal(r.headers["x-matrix-user-id"], undefined, r.url);
            assert.equal(r.headers["x-matrix-device-id"], undefined, r.url);
        }

        // authd answers the preflight of its own routes.
        const own = await request(`${proxyBaseUrl}/_matrix/client/v3/login`, {
            method: "OPTIONS",
            headers: { Origin: "https://app.example", "Access-Control-Request-Method": "POST" },
        });
        assert.equal(own.status, 204);
        assert.equal(own.headers["x-stand-in"], undefined);
        assert.equal(own.headers["access-control-allow-origin"], "*");
        assert.match(own.headers["access-control-allow-headers"], /Authorization/);
    });

    test("a body over 64 KiB to authd is refused by nginx with Matrix JSON", async () => {
        const res = await request(`${proxyBaseUrl}/_matrix/client/v3/login`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ type: "m.login.password", user: "x", password: "p".repeat(70 * 1024) }),
        });
        assert.equal(res.status, 413);
        assert.equal(res.json?.errcode, "M_TOO_LARGE", res.text);
        assert.equal(res.headers["access-control-allow-origin"], "*");
    });

    test("the homeserver gets the real client address after any forged X-Forwarded-For", async () => {
        const { c, res } = await loginGrace("GRACEADDR");
        const n = nonce();
        const got = await request(`${proxyBaseUrl}/_matrix/client/v3/e2e/${n}`, {
            headers: { Authorization: `Bearer ${res.access_token}`, "X-Forwarded-For": "203.0.113.9" },
            localAddress: "127.0.0.2",
        });
        assert.equal(got.status, 200, got.text);
        assert.equal(got.json.user_id, mxid(grace.localpart));
        assert.equal(got.json.x_forwarded_for, "203.0.113.9, 127.0.0.2");
        assert.equal(got.json.x_real_ip, "127.0.0.2");
        await c.logout();
    });

    // With AUTHD_TRUSTED_PROXIES=127.0.0.1/32 authd believes nginx's
    // X-Forwarded-For only up to the address nginx itself saw: each client
    // behind the proxy has its own login bucket, and whatever a client puts
    // in X-Forwarded-For does not buy it a new one.
    (trustedProxies ? test : test.todo)(
        "authd limits logins per real client behind nginx; a forged X-Forwarded-For does not escape the limit",
        async () => {
            assert.ok(trustedProxies, "the authd under test has no AUTHD_TRUSTED_PROXIES (see `authd serve --help`)");
            // Client A on 127.0.0.2 forges a new X-Forwarded-For on every attempt.
            let forged = 0;
            const a = client({
                fetchFn: fetchFrom("127.0.0.2", () => ({ "X-Forwarded-For": `198.51.100.${++forged % 250}` })),
            });
            let limited;
            let attempts = 0;
            for (; attempts < 30 && !limited; attempts++) {
                const err = await a.loginWithPassword(`nobody-proxied-${attempts}`, "not the password").then(
                    (r) => assert.fail(`an unknown user logged in: ${JSON.stringify(r)}`),
                    (e) => e,
                );
                if (err instanceof MatrixError && err.httpStatus === 429) {
                    limited = assertMatrixError(err, 429, "M_LIMIT_EXCEEDED");
                    break;
                }
                assertMatrixError(err, 403, "M_FORBIDDEN");
            }
            assert.ok(limited, `30 logins from 127.0.0.2 with forged X-Forwarded-For were never rate-limited`);
            assert.ok(attempts >= 10, `limited after only ${attempts} attempts; the burst is 10`);
            // Still limited, whatever it forges next.
            await rejectsWith(a.loginWithPassword("nobody-proxied-again", "not the password"), 429, "M_LIMIT_EXCEEDED");

            // Client B on 127.0.0.3, through the same nginx, is a different
            // client to authd: not limited.
            const b = client({ fetchFn: fetchFrom("127.0.0.3") });
            await rejectsWith(b.loginWithPassword("nobody-proxied-b", "not the password"), 403, "M_FORBIDDEN");
        },
    );
});

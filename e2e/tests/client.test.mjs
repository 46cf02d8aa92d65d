// matrix-js-sdk in Node against authd: the calls a client built on it makes
// to log in, find out who it is and log out, and the errors it must be able
// to tell apart.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { baseUrl, limitedBaseUrl, mxid, serverName } from "../lib/env.mjs";
import { assertMatrixError, rejectsWith } from "../lib/expect.mjs";
import { users } from "../lib/fixtures.mjs";
import { AutoDiscovery, MatrixError, Method, createClient } from "../lib/sdk.mjs";

const { alice, bob, carol } = users;

// assertLoginResponse checks the fields of a successful login response.
function assertLoginResponse(res, localpart) {
    assert.equal(res.user_id, mxid(localpart));
    assert.equal(res.home_server, serverName);
    assert.equal(typeof res.access_token, "string");
    assert.ok(res.access_token.length >= 32, `access_token too short: ${res.access_token.length}`);
    assert.equal(typeof res.device_id, "string");
    assert.notEqual(res.device_id, "");
    // run.sh sets AUTHD_PUBLIC_BASEURL to authd's own base URL.
    assert.deepEqual(res.well_known, { "m.homeserver": { base_url: baseUrl } });
}

// loggedIn returns a client holding a fresh session of the user.
async function loggedIn(user, url = baseUrl) {
    const client = createClient({ baseUrl: url });
    const res = await client.login("m.login.password", {
        identifier: { type: "m.id.user", user: user.localpart },
        password: user.password,
    });
    return { client, res };
}

describe("discovery", () => {
    test("GET /login lists m.login.password", async () => {
        const flows = await createClient({ baseUrl }).loginFlows();
        assert.deepEqual(flows, { flows: [{ type: "m.login.password" }] });
    });

    test("GET /versions (AUTHD_SERVE_VERSIONS) lists versions the SDK supports", async () => {
        const client = createClient({ baseUrl });
        const res = await client.getVersions();
        assert.ok(Array.isArray(res.versions));
        assert.ok(res.versions.includes("r0.6.1"), JSON.stringify(res.versions));
        assert.ok(res.versions.includes("v1.9"), JSON.stringify(res.versions));
        assert.equal(await client.isVersionSupported("v1.3"), true);
    });

    test("the login response's well_known passes the SDK's AutoDiscovery", async () => {
        const { res } = await loggedIn(alice);
        // What Element does with well_known from a login response: validate
        // the base URL, which fetches its /versions.
        const config = await AutoDiscovery.fromDiscoveryConfig(res.well_known);
        assert.equal(config["m.homeserver"].state, AutoDiscovery.SUCCESS, JSON.stringify(config));
        assert.equal(config["m.homeserver"].base_url, baseUrl);
        assert.equal(config["m.homeserver"].error, null);
    });
});

describe("login", () => {
    test("loginWithPassword sends the deprecated top-level user", async () => {
        const client = createClient({ baseUrl });
        const res = await client.loginWithPassword(alice.localpart, alice.password);
        assertLoginResponse(res, alice.localpart);
        // The SDK keeps the token and the user ID, and uses them.
        assert.equal(client.getAccessToken(), res.access_token);
        assert.equal(client.getUserId(), mxid(alice.localpart));
        const me = await client.whoami();
        assert.deepEqual(me, { user_id: mxid(alice.localpart), device_id: res.device_id, is_guest: false });
    });

    test("login with an m.id.user identifier, device_id and display name echoes the device", async () => {
        const client = createClient({ baseUrl });
        const res = await client.login("m.login.password", {
            identifier: { type: "m.id.user", user: alice.localpart },
            password: alice.password,
            device_id: "E2EDEVICE",
            initial_device_display_name: "authd e2e (Node)",
        });
        assertLoginResponse(res, alice.localpart);
        assert.equal(res.device_id, "E2EDEVICE");
        const me = await client.whoami();
        assert.equal(me.user_id, mxid(alice.localpart));
        assert.equal(me.device_id, "E2EDEVICE");
        assert.equal(me.is_guest, false);
    });

    test("login with a full user ID in upper case returns the canonical user ID", async () => {
        const client = createClient({ baseUrl });
        const res = await client.login("m.login.password", {
            identifier: { type: "m.id.user", user: `@${alice.localpart.toUpperCase()}:${serverName.toUpperCase()}` },
            password: alice.password,
        });
        assertLoginResponse(res, alice.localpart);
        assert.equal((await client.whoami()).user_id, mxid(alice.localpart));

        const legacy = await createClient({ baseUrl }).loginWithPassword(alice.localpart.toUpperCase(), alice.password);
        assertLoginResponse(legacy, alice.localpart);
    });

    test("login with an email identifier (m.id.thirdparty)", async () => {
        const client = createClient({ baseUrl });
        const res = await client.login("m.login.password", {
            identifier: { type: "m.id.thirdparty", medium: "email", address: carol.email },
            password: carol.password,
        });
        assertLoginResponse(res, carol.localpart);
        assert.equal((await client.whoami()).user_id, mxid(carol.localpart));

        // Addresses are stored case-folded; Element sends them as typed.
        const typed = await createClient({ baseUrl }).login("m.login.password", {
            identifier: { type: "m.id.thirdparty", medium: "email", address: carol.email.toUpperCase() },
            password: carol.password,
        });
        assertLoginResponse(typed, carol.localpart);
    });

    test("wrong password and unknown user are the same 403 M_FORBIDDEN", async () => {
        const client = createClient({ baseUrl });
        const wrong = await rejectsWith(client.loginWithPassword(alice.localpart, "not the password"), 403, "M_FORBIDDEN");
        const unknown = await rejectsWith(
            client.login("m.login.password", {
                identifier: { type: "m.id.user", user: "nobody-here" },
                password: "not the password",
            }),
            403,
            "M_FORBIDDEN",
        );
        assert.deepEqual(unknown.data, wrong.data);
        assert.equal(client.getAccessToken(), null);
    });

    test("wrong password for an email identifier is 403 M_FORBIDDEN", async () => {
        await rejectsWith(
            createClient({ baseUrl }).login("m.login.password", {
                identifier: { type: "m.id.thirdparty", medium: "email", address: carol.email },
                password: "not the password",
            }),
            403,
            "M_FORBIDDEN",
        );
    });
});

describe("whoami and logout", () => {
    test("whoami without a token is 401 M_MISSING_TOKEN", async () => {
        const err = await rejectsWith(createClient({ baseUrl }).whoami(), 401, "M_MISSING_TOKEN");
        assert.notEqual(err.data.soft_logout, true);
    });

    test("logout (no body) revokes the token: whoami is 401 M_UNKNOWN_TOKEN, not soft", async () => {
        const { client, res } = await loggedIn(alice);
        assert.equal((await client.whoami()).device_id, res.device_id);

        assert.deepEqual(await client.logout(), {});

        const err = await rejectsWith(client.whoami(), 401, "M_UNKNOWN_TOKEN");
        assert.ok(err.data.soft_logout === false || err.data.soft_logout === undefined, JSON.stringify(err.data));
        // A second logout with the revoked token is refused the same way.
        await rejectsWith(client.logout(), 401, "M_UNKNOWN_TOKEN");
    });

    test("logout of one device leaves the user's other sessions alone", async () => {
        const a = await loggedIn(alice);
        const b = await loggedIn(alice);
        assert.notEqual(a.res.device_id, b.res.device_id);
        await a.client.logout();
        await rejectsWith(a.client.whoami(), 401, "M_UNKNOWN_TOKEN");
        assert.equal((await b.client.whoami()).device_id, b.res.device_id);
    });

    test("logout/all revokes every session of the user and no one else's", async () => {
        const sessions = [await loggedIn(bob), await loggedIn(bob), await loggedIn(bob)];
        const other = await loggedIn(alice);
        for (const { client, res } of sessions) {
            assert.equal((await client.whoami()).device_id, res.device_id);
        }

        // The SDK has no logoutAll(); this is the request it would make.
        assert.deepEqual(await sessions[0].client.http.authedRequest(Method.Post, "/logout/all"), {});

        for (const { client } of sessions) {
            const err = await rejectsWith(client.whoami(), 401, "M_UNKNOWN_TOKEN");
            assert.notEqual(err.data.soft_logout, true);
        }
        assert.equal((await other.client.whoami()).user_id, mxid(alice.localpart));
        // The user can log in again afterwards.
        const again = await loggedIn(bob);
        assert.equal((await again.client.whoami()).user_id, mxid(bob.localpart));
    });

});

describe("rate limit", () => {
    test("login past the per-IP burst is 429 M_LIMIT_EXCEEDED with retry_after_ms", async () => {
        // The second instance runs with AUTHD_RATELIMIT=on: a burst of 10
        // logins per client IP, then one every 5 s. Nothing else logs in there.
        const client = createClient({ baseUrl: limitedBaseUrl });
        let limited;
        let attempts = 0;
        for (; attempts < 30 && !limited; attempts++) {
            // A new unknown user each time, so that only the per-IP limit
            // counts (not a per-account one).
            const err = await client.loginWithPassword(`nobody-${attempts}`, "not the password").then(
                (res) => assert.fail(`an unknown user logged in: ${JSON.stringify(res)}`),
                (e) => e,
            );
            if (err instanceof MatrixError && err.httpStatus === 429) {
                limited = assertMatrixError(err, 429, "M_LIMIT_EXCEEDED");
                break;
            }
            assertMatrixError(err, 403, "M_FORBIDDEN");
        }
        assert.ok(limited, "30 logins from one IP were never rate-limited");
        assert.ok(attempts >= 10, `limited after only ${attempts} attempts; the burst is 10`);

        assert.equal(typeof limited.data.retry_after_ms, "number");
        assert.ok(Number.isInteger(limited.data.retry_after_ms), String(limited.data.retry_after_ms));
        assert.ok(limited.data.retry_after_ms > 0 && limited.data.retry_after_ms <= 5000, String(limited.data.retry_after_ms));
        // Retry-After in whole seconds, rounded up from retry_after_ms.
        const header = limited.httpHeaders?.get("Retry-After");
        assert.equal(header, String(Math.ceil(limited.data.retry_after_ms / 1000)));
        assert.equal(limited.isRateLimitError(), true);
        // The SDK prefers the header and falls back to retry_after_ms.
        const retryAfter = limited.getRetryAfterMs();
        assert.equal(typeof retryAfter, "number");
        assert.equal(retryAfter, Number(header) * 1000);

        // Even the right password is refused while limited.
        await rejectsWith(
            createClient({ baseUrl: limitedBaseUrl }).loginWithPassword(alice.localpart, alice.password),
            429,
            "M_LIMIT_EXCEEDED",
        );
        // The limit is on logins only: a session from the other instance
        // (same database) still works here.
        const { res } = await loggedIn(alice);
        const there = createClient({ baseUrl: limitedBaseUrl, accessToken: res.access_token });
        assert.equal((await there.whoami()).device_id, res.device_id);
        await there.logout();
    });
});

// Access tokens that expire: what matrix-js-sdk sees when the access token
// of a refreshable session runs out (soft logout), and its refresh of one.
// run.sh gives these tokens 1 s (AUTHD_ACCESS_TOKEN_TTL=1s).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";

import { baseUrl, mxid } from "../lib/env.mjs";
import { assertMatrixError, rejectsWith } from "../lib/expect.mjs";
import { users } from "../lib/fixtures.mjs";
import { createClient } from "../lib/sdk.mjs";

const { erin } = users;
const ttlMs = 1000;

// loginRefreshable logs erin in with "refresh_token": true and checks the
// token fields of the response.
async function loginRefreshable(deviceId) {
    const client = createClient({ baseUrl });
    const res = await client.login("m.login.password", {
        identifier: { type: "m.id.user", user: erin.localpart },
        password: erin.password,
        device_id: deviceId,
        refresh_token: true,
    });
    const body = JSON.stringify({ ...res, access_token: "…", refresh_token: res.refresh_token && "…" });
    assert.equal(res.user_id, mxid(erin.localpart), body);
    assert.equal(res.device_id, deviceId, body);
    assert.equal(typeof res.access_token, "string", body);
    assert.equal(typeof res.refresh_token, "string", `no refresh_token in ${body}`);
    assert.notEqual(res.refresh_token, res.access_token);
    assert.ok(Number.isInteger(res.expires_in_ms), `expires_in_ms in ${body}`);
    assert.ok(res.expires_in_ms > 0 && res.expires_in_ms <= ttlMs, `expires_in_ms in ${body}`);
    return { client, res };
}

// untilExpired polls whoami with the client's token until authd refuses it,
// for at most 10 TTLs, and returns the error.
async function untilExpired(client) {
    const deadline = Date.now() + 10 * ttlMs;
    for (;;) {
        const err = await client.whoami().then(
            () => null,
            (e) => e,
        );
        if (err) return err;
        assert.ok(Date.now() < deadline, `the access token was still valid after ${10 * ttlMs} ms`);
        await delay(50);
    }
}

describe("expiring access tokens", () => {
    test("an expired access token is 401 M_UNKNOWN_TOKEN with soft_logout: true; logout still works", async () => {
        const { client, res } = await loginRefreshable("E2EEXPIRE");
        assert.equal((await client.whoami()).device_id, "E2EEXPIRE");

        const expired = assertMatrixError(await untilExpired(client), 401, "M_UNKNOWN_TOKEN");
        assert.equal(expired.data.soft_logout, true, JSON.stringify(expired.data));

        // Logging out with the expired token ends the session: the token is
        // then unknown (no longer soft), and so is the refresh token.
        assert.deepEqual(await client.logout(), {});
        const revoked = await rejectsWith(client.whoami(), 401, "M_UNKNOWN_TOKEN");
        assert.notEqual(revoked.data.soft_logout, true);
        await rejectsWith(createClient({ baseUrl }).refreshToken(res.refresh_token), 401, "M_UNKNOWN_TOKEN");
    });

    test("the SDK's tokenRefreshFunction refreshes an expired token and retries", async () => {
        const { res } = await loginRefreshable("E2EREFRESH");
        // The refresh request carries the expired access token, as
        // matrix-js-sdk's refreshToken() sends it; authd must ignore it.
        const refresher = createClient({ baseUrl, accessToken: res.access_token });
        const refreshed = [];
        const client = createClient({
            baseUrl,
            accessToken: res.access_token,
            refreshToken: res.refresh_token,
            tokenRefreshFunction: async (refreshToken) => {
                const r = await refresher.refreshToken(refreshToken);
                refreshed.push({ used: refreshToken, got: r });
                return {
                    accessToken: r.access_token,
                    refreshToken: r.refresh_token,
                    expiry: new Date(Date.now() + r.expires_in_ms),
                };
            },
        });
        assert.equal((await client.whoami()).device_id, "E2EREFRESH");

        // Wait, on a client without the refresh function, until the first
        // access token is expired.
        const bare = createClient({ baseUrl, accessToken: res.access_token });
        const expired = assertMatrixError(await untilExpired(bare), 401, "M_UNKNOWN_TOKEN");
        assert.equal(expired.data.soft_logout, true, JSON.stringify(expired.data));

        // whoami gets 401 soft_logout, refreshes and retries, transparently.
        const me = await client.whoami();
        assert.deepEqual(me, { user_id: mxid(erin.localpart), device_id: "E2EREFRESH", is_guest: false });
        assert.equal(refreshed.length, 1);
        assert.equal(refreshed[0].used, res.refresh_token);
        const pair = refreshed[0].got;
        assert.equal(typeof pair.access_token, "string");
        assert.equal(typeof pair.refresh_token, "string");
        assert.notEqual(pair.access_token, res.access_token);
        assert.notEqual(pair.refresh_token, res.refresh_token);
        assert.ok(pair.expires_in_ms > 0 && pair.expires_in_ms <= ttlMs, String(pair.expires_in_ms));
        assert.equal(client.getAccessToken(), pair.access_token);
        assert.equal(client.getRefreshToken(), pair.refresh_token);

        assert.deepEqual(await client.logout(), {});
        await rejectsWith(createClient({ baseUrl, accessToken: pair.access_token }).whoami(), 401, "M_UNKNOWN_TOKEN");
    });
});

// Account self-service with matrix-js-sdk the way Element drives it: the
// sessions list (devices), signing out other sessions through
// User-Interactive Authentication, changing the password, deactivating the
// account, the email list and signing in a new device with a login token;
// raw HTTP for what the SDK does not send (a replayed session, mautrix's
// `null` body); and the same paths through nginx and Caddy with the shipped
// configs, where their neighbours must go to the homeserver instead.
// Everything runs against the authd run.sh starts for this file (login
// tokens on; no rate limit but the one login token per user a minute).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { accountBaseUrl as baseUrl, accountProxies, mxid, serverName, trustedProxies } from "../lib/env.mjs";
import { rejectsWith } from "../lib/expect.mjs";
import { users } from "../lib/fixtures.mjs";
import { startHomeserver } from "../lib/homeserver.mjs";
import { fetchFrom, request } from "../lib/http.mjs";
import { InteractiveAuth, MatrixError, createClient } from "../lib/sdk.mjs";

const { peggy, quinn, rupert, sybil, trent, ursula, victor, walter, xena } = users;
const nonce = () => randomBytes(6).toString("hex");

// loggedIn returns a client holding a fresh session of the user, logged in
// with password (the given one, else the fixture's) and extra login fields.
// fetchFn, when given, is the client's fetch (e.g. one from another
// loopback address).
async function loggedIn(user, { url = baseUrl, password = user.password, fetchFn, ...extra } = {}) {
    const client = createClient({ baseUrl: url, ...(fetchFn ? { fetchFn } : {}) });
    const res = await client.login("m.login.password", {
        identifier: { type: "m.id.user", user: user.localpart },
        password,
        ...extra,
    });
    assert.equal(res.user_id, mxid(user.localpart));
    return { client, res, deviceId: res.device_id };
}

// passwordAuth is the auth dict Element builds from a challenge: the
// m.login.password stage with the user ID and, when given, the session.
function passwordAuth(user, session, password = user.password) {
    const auth = { type: "m.login.password", identifier: { type: "m.id.user", user: mxid(user.localpart) }, password };
    if (session !== undefined) auth.session = session;
    return auth;
}

// assertChallenge checks a UIA 401 body: the password flow, params, a
// session, and (unless errcode is given) no errcode, so that no client
// takes it for a dead access token. Returns the session.
function assertChallenge(body, errcode) {
    assert.deepEqual(body.flows, [{ stages: ["m.login.password"] }], JSON.stringify(body));
    assert.equal(typeof body.params, "object");
    assert.notEqual(body.params, null);
    assert.equal(typeof body.session, "string");
    assert.ok(body.session.length >= 20, `session too short: ${body.session}`);
    if (errcode === undefined) {
        assert.equal(body.errcode, undefined, JSON.stringify(body));
    } else {
        assert.equal(body.errcode, errcode, JSON.stringify(body));
        assert.equal(typeof body.error, "string");
    }
    assert.notEqual(body.errcode, "M_UNKNOWN_TOKEN");
    return body.session;
}

// challenged awaits a call made without auth, which must fail with the UIA
// 401, and returns the session read from the error the way Element reads
// it (err.data.session, err.data.flows).
async function challenged(promise) {
    const err = await promise.then(
        (res) => assert.fail(`expected the UIA 401, got success: ${JSON.stringify(res)}`),
        (e) => e,
    );
    assert.ok(err instanceof MatrixError, `expected a MatrixError, got ${err?.name}: ${err?.message}`);
    assert.equal(err.httpStatus, 401, err.message);
    return assertChallenge(err.data);
}

// withUIA runs call(auth) as Element does: first without auth, then, on the
// challenge, with the password and the challenge's session.
async function withUIA(user, call) {
    const session = await challenged(call(undefined));
    return call(passwordAuth(user, session));
}

// interactiveAuth runs doRequest through the SDK's InteractiveAuth, the
// driver behind Element's UIA dialogs, answering the password stage.
function interactiveAuth(client, user, doRequest) {
    const stages = [];
    const ia = new InteractiveAuth({
        matrixClient: client,
        doRequest: (auth) => doRequest(auth ?? undefined),
        stateUpdated: (stage, status) => {
            stages.push(stage);
            assert.equal(stage, "m.login.password");
            assert.equal(status.errcode, undefined, JSON.stringify(status));
            void ia.submitAuthDict(passwordAuth(user));
        },
        requestEmailToken: () => Promise.reject(new Error("authd offers no email stage")),
    });
    return ia.attemptAuth().then((res) => ({ res, stages }));
}

// assertRefused checks that a client's access token no longer works.
async function assertRefused(client) {
    const err = await rejectsWith(client.whoami(), 401, "M_UNKNOWN_TOKEN");
    assert.notEqual(err.data.soft_logout, true);
}

// post sends JSON (a string is sent as it is) with an access token.
function post(path, token, body, method = "POST", url = baseUrl) {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    return request(`${url}/_matrix/client/v3${path}`, {
        method,
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: text,
    });
}

describe("devices", () => {
    test("getDevices, getDevice and setDeviceDetails: names from login, renames, last seen", async () => {
        const laptop = await loggedIn(peggy, { device_id: "PEGGYLAPTOP", initial_device_display_name: "Peggy's laptop" });
        const phone = await loggedIn(peggy);

        const { devices } = await laptop.client.getDevices();
        const byId = Object.fromEntries(devices.map((d) => [d.device_id, d]));
        assert.ok(byId.PEGGYLAPTOP, JSON.stringify(devices));
        assert.ok(byId[phone.deviceId], JSON.stringify(devices));
        assert.equal(byId.PEGGYLAPTOP.display_name, "Peggy's laptop");
        // No name given at login: absent, not "".
        assert.equal("display_name" in byId[phone.deviceId], false, JSON.stringify(byId[phone.deviceId]));
        for (const d of [byId.PEGGYLAPTOP, byId[phone.deviceId]]) {
            assert.ok(Number.isInteger(d.last_seen_ts) && d.last_seen_ts > 0, JSON.stringify(d));
            assert.equal(d.last_seen_ip, "127.0.0.1", JSON.stringify(d));
        }

        assert.deepEqual(await phone.client.getDevice("PEGGYLAPTOP"), byId.PEGGYLAPTOP);

        assert.deepEqual(await phone.client.setDeviceDetails("PEGGYLAPTOP", { display_name: "Peggy's old laptop" }), {});
        assert.equal((await laptop.client.getDevice("PEGGYLAPTOP")).display_name, "Peggy's old laptop");
        assert.deepEqual(await laptop.client.setDeviceDetails(phone.deviceId, { display_name: "Peggy's phone" }), {});
        const renamed = Object.fromEntries((await phone.client.getDevices()).devices.map((d) => [d.device_id, d.display_name]));
        assert.equal(renamed.PEGGYLAPTOP, "Peggy's old laptop");
        assert.equal(renamed[phone.deviceId], "Peggy's phone");
        // "" removes the name.
        assert.deepEqual(await laptop.client.setDeviceDetails(phone.deviceId, { display_name: "" }), {});
        assert.equal("display_name" in (await laptop.client.getDevice(phone.deviceId)), false);
    });

    test("another user's device and an unknown one are 404 M_NOT_FOUND", async () => {
        const mine = await loggedIn(peggy);
        const theirs = await loggedIn(victor);
        await rejectsWith(mine.client.getDevice(theirs.deviceId), 404, "M_NOT_FOUND");
        await rejectsWith(mine.client.getDevice(`NOSUCH${nonce()}`), 404, "M_NOT_FOUND");
        await rejectsWith(mine.client.setDeviceDetails(theirs.deviceId, { display_name: "mine now" }), 404, "M_NOT_FOUND");
        assert.equal("display_name" in (await theirs.client.getDevice(theirs.deviceId)), false);
        assert.ok(!(await mine.client.getDevices()).devices.some((d) => d.device_id === theirs.deviceId));
        await theirs.client.logout();
    });
});

describe("deleting devices", () => {
    test("deleteDevice: the 401's session, then the password; the device's token is refused", async () => {
        const me = await loggedIn(quinn);
        const other = await loggedIn(quinn, { initial_device_display_name: "Quinn's old phone" });
        assert.equal((await other.client.whoami()).device_id, other.deviceId);

        // Element's "Sign out" of one session: the request without auth,
        // then again with the auth dict built from the MatrixError's data.
        const err = await me.client.deleteDevice(other.deviceId).then(
            (res) => assert.fail(`deleted without UIA: ${JSON.stringify(res)}`),
            (e) => e,
        );
        assert.ok(err instanceof MatrixError);
        assert.equal(err.httpStatus, 401);
        assert.deepEqual(err.data.flows, [{ stages: ["m.login.password"] }]);
        const session = assertChallenge(err.data);
        // The challenge did not delete anything.
        assert.equal((await other.client.whoami()).device_id, other.deviceId);

        assert.deepEqual(await me.client.deleteDevice(other.deviceId, passwordAuth(quinn, session)), {});

        await assertRefused(other.client);
        const left = (await me.client.getDevices()).devices.map((d) => d.device_id);
        assert.ok(!left.includes(other.deviceId), JSON.stringify(left));
        assert.ok(left.includes(me.deviceId), JSON.stringify(left));
        assert.equal((await me.client.whoami()).device_id, me.deviceId);
    });

    test("deleteMultipleDevices through the SDK's InteractiveAuth", async () => {
        const me = await loggedIn(quinn);
        const a = await loggedIn(quinn);
        const b = await loggedIn(quinn);
        const { res, stages } = await interactiveAuth(me.client, quinn, (auth) =>
            me.client.deleteMultipleDevices([a.deviceId, b.deviceId], auth),
        );
        assert.deepEqual(res, {});
        assert.deepEqual(stages, ["m.login.password"]);

        await assertRefused(a.client);
        await assertRefused(b.client);
        const left = (await me.client.getDevices()).devices.map((d) => d.device_id);
        assert.ok(!left.includes(a.deviceId) && !left.includes(b.deviceId), JSON.stringify(left));
        assert.equal((await me.client.whoami()).device_id, me.deviceId);

        // An empty list deletes nothing (still behind UIA).
        assert.deepEqual(await withUIA(quinn, (auth) => me.client.deleteMultipleDevices([], auth)), {});
        assert.equal((await me.client.whoami()).device_id, me.deviceId);
    });
});

describe("password change", () => {
    test("setPassword with logout_devices false keeps every session; the old password stops working", async () => {
        const me = await loggedIn(rupert);
        const other = await loggedIn(rupert);
        const next = "rupert's second password";

        assert.deepEqual(await withUIA(rupert, (auth) => me.client.setPassword(auth, next, false)), {});

        assert.equal((await me.client.whoami()).device_id, me.deviceId);
        assert.equal((await other.client.whoami()).device_id, other.deviceId);
        await rejectsWith(
            createClient({ baseUrl }).loginWithPassword(rupert.localpart, rupert.password),
            403,
            "M_FORBIDDEN",
        );
        const again = await loggedIn(rupert, { password: next });
        await again.client.logout();
    });

    test("setPassword with logout_devices true signs out the other sessions and keeps the caller's", async () => {
        const current = "rupert's second password";
        const next = "rupert's third password";
        const me = await loggedIn(rupert, { password: current });
        const other = await loggedIn(rupert, { password: current });

        // Element's old change-password dialog: one request, no session,
        // both the identifier and the legacy top-level user.
        const oneShot = { ...passwordAuth(rupert, undefined, current), user: rupert.localpart };
        assert.deepEqual(await me.client.setPassword(oneShot, next, true), {});

        await assertRefused(other.client);
        assert.equal((await me.client.whoami()).device_id, me.deviceId);
        const left = (await me.client.getDevices()).devices.map((d) => d.device_id);
        assert.deepEqual(left, [me.deviceId]);
        await rejectsWith(createClient({ baseUrl }).loginWithPassword(rupert.localpart, current), 403, "M_FORBIDDEN");
        await (await loggedIn(rupert, { password: next })).client.logout();
    });
});

describe("deactivation", () => {
    test("deactivateAccount: id_server_unbind_result, every token refused, login 403", async () => {
        const me = await loggedIn(sybil);
        const other = await loggedIn(sybil);

        const res = await withUIA(sybil, (auth) => me.client.deactivateAccount(auth, true));
        assert.deepEqual(res, { id_server_unbind_result: "no-support" });

        await assertRefused(me.client);
        await assertRefused(other.client);
        await rejectsWith(createClient({ baseUrl }).loginWithPassword(sybil.localpart, sybil.password), 403, "M_FORBIDDEN");
    });
});

describe("third-party IDs", () => {
    test("getThreePids lists the email; deleteThreePid removes it and email login stops", async () => {
        const me = await loggedIn(trent);
        const byEmail = {
            identifier: { type: "m.id.thirdparty", medium: "email", address: trent.email },
            password: trent.password,
        };
        assert.equal((await createClient({ baseUrl }).login("m.login.password", byEmail)).user_id, mxid(trent.localpart));

        const { threepids } = await me.client.getThreePids();
        assert.equal(threepids.length, 1, JSON.stringify(threepids));
        assert.equal(threepids[0].medium, "email");
        assert.equal(threepids[0].address, trent.email);
        assert.ok(Number.isInteger(threepids[0].added_at), JSON.stringify(threepids[0]));
        assert.ok(Number.isInteger(threepids[0].validated_at), JSON.stringify(threepids[0]));

        assert.deepEqual(await me.client.deleteThreePid("email", trent.email), { id_server_unbind_result: "no-support" });

        assert.deepEqual(await me.client.getThreePids(), { threepids: [] });
        await rejectsWith(createClient({ baseUrl }).login("m.login.password", byEmail), 403, "M_FORBIDDEN");
        // The account itself is untouched.
        assert.equal((await me.client.whoami()).user_id, mxid(trent.localpart));
        await (await loggedIn(trent)).client.logout();
    });
});

describe("login tokens (AUTHD_LOGIN_TOKENS=on)", () => {
    test("GET /login lists m.login.token with get_login_token", async () => {
        const { flows } = await createClient({ baseUrl }).loginFlows();
        assert.deepEqual(flows, [{ type: "m.login.password" }, { type: "m.login.token", get_login_token: true }]);
    });

    test("requestLoginToken through InteractiveAuth, then a token login on a new client; the token works once", async () => {
        const me = await loggedIn(ursula);
        const { res: issued } = await interactiveAuth(me.client, ursula, (auth) => me.client.requestLoginToken(auth));
        assert.equal(typeof issued.login_token, "string");
        assert.ok(issued.login_token.length >= 32, `login_token too short: ${issued.login_token.length}`);
        assert.equal(issued.expires_in_ms, 120000);

        // The new device (Element's "Sign in with QR code" target) logs in.
        const fresh = createClient({ baseUrl });
        const res = await fresh.loginRequest({
            type: "m.login.token",
            token: issued.login_token,
            initial_device_display_name: "Ursula's new device",
        });
        assert.equal(res.user_id, mxid(ursula.localpart));
        assert.equal(res.home_server, serverName);
        assert.notEqual(res.device_id, me.deviceId);
        const signedIn = createClient({ baseUrl, accessToken: res.access_token, userId: res.user_id });
        assert.deepEqual(await signedIn.whoami(), { user_id: res.user_id, device_id: res.device_id, is_guest: false });
        assert.equal((await me.client.getDevice(res.device_id)).display_name, "Ursula's new device");

        // The same token again, by the deprecated helper: 403 M_FORBIDDEN.
        const used = await rejectsWith(createClient({ baseUrl }).loginWithToken(issued.login_token), 403, "M_FORBIDDEN");
        // A made-up token is refused the same way.
        const made = await rejectsWith(createClient({ baseUrl }).loginWithToken(`x${issued.login_token}`), 403, "M_FORBIDDEN");
        assert.equal(made.data.error, used.data.error);

        // One token per user a minute: the next, password and all, is 429.
        const limited = await rejectsWith(me.client.requestLoginToken(passwordAuth(ursula)), 429, "M_LIMIT_EXCEEDED");
        assert.ok(Number.isInteger(limited.data.retry_after_ms), JSON.stringify(limited.data));
        assert.ok(limited.data.retry_after_ms > 0 && limited.data.retry_after_ms <= 60000, JSON.stringify(limited.data));
        assert.match(limited.httpHeaders.get("Retry-After") ?? "", /^\d+$/);
    });
});

describe("User-Interactive Authentication over raw HTTP", () => {
    test("a session used once is 400 M_UNKNOWN when replayed", async () => {
        const me = await loggedIn(victor);
        const other = await loggedIn(victor);
        const body = { devices: [other.deviceId] };
        const first = await post("/delete_devices", me.res.access_token, body);
        assert.equal(first.status, 401, first.text);
        const session = assertChallenge(first.json);

        const ok = await post("/delete_devices", me.res.access_token, { ...body, auth: passwordAuth(victor, session) });
        assert.equal(ok.status, 200, ok.text);
        assert.deepEqual(ok.json, {});
        await assertRefused(other.client);

        const replay = await post("/delete_devices", me.res.access_token, { ...body, auth: passwordAuth(victor, session) });
        assert.equal(replay.status, 400, replay.text);
        assert.equal(replay.json.errcode, "M_UNKNOWN");
        assert.equal(typeof replay.json.error, "string");
    });

    test("a wrong password gets the challenge again with the same session and M_FORBIDDEN", async () => {
        const me = await loggedIn(victor);
        const other = await loggedIn(victor);
        const path = `/devices/${encodeURIComponent(other.deviceId)}`;
        const first = await post(path, me.res.access_token, {}, "DELETE");
        assert.equal(first.status, 401, first.text);
        const session = assertChallenge(first.json);

        const wrongAuth = passwordAuth(victor, session, "not the password");
        const wrong = await post(path, me.res.access_token, { auth: wrongAuth }, "DELETE");
        assert.equal(wrong.status, 401, wrong.text);
        assert.equal(assertChallenge(wrong.json, "M_FORBIDDEN"), session);
        assert.equal((await other.client.whoami()).device_id, other.deviceId);

        // The same session still completes with the right password.
        const ok = await post(path, me.res.access_token, { auth: passwordAuth(victor, session) }, "DELETE");
        assert.equal(ok.status, 200, ok.text);
        assert.deepEqual(ok.json, {});
        await assertRefused(other.client);
    });

    test("DELETE /devices/{id} with the body null (mautrix-go) gets the challenge; one-shot legacy user works", async () => {
        const me = await loggedIn(victor);
        const other = await loggedIn(victor);
        const path = `/devices/${encodeURIComponent(other.deviceId)}`;
        const res = await post(path, me.res.access_token, "null", "DELETE");
        assert.equal(res.status, 401, res.text);
        assertChallenge(res.json);
        assert.equal((await other.client.whoami()).device_id, other.deviceId);

        // mautrix's auth dict: the legacy top-level user, no session.
        const oneShot = { type: "m.login.password", user: mxid(victor.localpart), password: victor.password };
        const ok = await post(path, me.res.access_token, { auth: oneShot }, "DELETE");
        assert.equal(ok.status, 200, ok.text);
        assert.deepEqual(ok.json, {});
        await assertRefused(other.client);
    });

    test("a revoked access token is 401 M_UNKNOWN_TOKEN before any challenge", async () => {
        const gone = await loggedIn(victor);
        await gone.client.logout();
        const res = await post("/delete_devices", gone.res.access_token, { devices: [] });
        assert.equal(res.status, 401, res.text);
        assert.equal(res.json.errcode, "M_UNKNOWN_TOKEN");
        assert.equal(res.json.flows, undefined);
        assert.equal(res.json.session, undefined);
    });
});

const proxyUsers = { nginx: walter, caddy: xena };

for (const [i, proxy] of accountProxies.entries()) {
    describe(`through ${proxy.name} (shipped config)`, () => {
        const user = proxyUsers[proxy.name];
        // A loopback source address per session, distinct per proxy.
        const from = (n) => `127.0.${30 + i}.${n}`;
        let hs;
        // The requests the stand-in homeserver received whose URL contains s.
        const reached = (s) => hs.requests.filter((r) => r.url.includes(s));

        before(async () => {
            hs = await startHomeserver(proxy.homeserverPort);
        });
        after(async () => {
            await hs?.close();
        });

        test("devices, a device deletion with UIA, the password, login tokens and the email list reach authd", async () => {
            const me = await loggedIn(user, { url: proxy.url, fetchFn: fetchFrom(from(1)) });
            const other = await loggedIn(user, { url: proxy.url, fetchFn: fetchFrom(from(2)) });

            const { devices } = await me.client.getDevices();
            const byId = Object.fromEntries(devices.map((d) => [d.device_id, d]));
            assert.ok(byId[other.deviceId], JSON.stringify(devices));
            // authd trusts the proxy's word for the client address (when it
            // has AUTHD_TRUSTED_PROXIES): each device was seen from its own.
            if (trustedProxies) {
                assert.equal(byId[me.deviceId].last_seen_ip, from(1), JSON.stringify(devices));
                assert.equal(byId[other.deviceId].last_seen_ip, from(2), JSON.stringify(devices));
            }
            assert.deepEqual(await me.client.setDeviceDetails(other.deviceId, { display_name: `via ${proxy.name}` }), {});
            assert.equal((await me.client.getDevice(other.deviceId)).display_name, `via ${proxy.name}`);
            assert.deepEqual(await me.client.getThreePids(), { threepids: [] });

            assert.deepEqual(await withUIA(user, (auth) => me.client.deleteDevice(other.deviceId, auth)), {});
            await assertRefused(other.client);

            // The challenges for a password change and a login token come
            // from authd too.
            await challenged(me.client.setPassword(undefined, "never set", false));
            await challenged(me.client.requestLoginToken(undefined));

            for (const p of ["/devices", "/delete_devices", "/account/password", "/account/3pid", "/login"]) {
                assert.deepEqual(reached(p), [], `the homeserver got ${p}`);
            }
            assert.equal((await me.client.whoami()).device_id, me.deviceId);
        });

        test("the admin API: authd's routes to authd and the rest to the homeserver, for loopback clients only", async () => {
            const n = nonce();
            // This authd runs without AUTHD_ADMIN_API: it answers its admin
            // routes 404 M_UNRECOGNIZED itself, so an answer without the
            // stand-in's header came from authd.
            const toAuthd = [
                `/_synapse/admin/v2/users?e2e=${n}`,
                `/_synapse/admin/v2/users/%40someone%3A${serverName}/devices?e2e=${n}`,
                `/_synapse/admin/v1/reset_password/@someone:${serverName}?e2e=${n}`,
                `/_matrix/client/v1/admin/lock/@someone:${serverName}?e2e=${n}`,
                `/_matrix/client/v3/admin/whois/@someone:${serverName}?e2e=${n}`,
            ];
            for (const p of toAuthd) {
                const res = await request(`${proxy.url}${p}`, { method: p.includes("reset_password") ? "POST" : "GET", body: p.includes("reset_password") ? "{}" : undefined });
                assert.equal(res.status, 404, `${p}: ${res.status} ${res.text}`);
                assert.equal(res.json?.errcode, "M_UNRECOGNIZED", `${p}: ${res.text}`);
                assert.equal(res.headers["x-stand-in"], undefined, p);
            }
            // The homeserver's own admin routes (rooms, media) reach it.
            const rooms = await request(`${proxy.url}/_synapse/admin/v1/rooms?e2e=${n}`);
            assert.equal(rooms.status, 200, rooms.text);
            assert.equal(rooms.headers["x-stand-in"], "homeserver");
            // From any other address, nothing under /_synapse/admin is served.
            for (const p of [toAuthd[0], toAuthd[1], `/_synapse/admin/v1/rooms?e2e=${n}`]) {
                const res = await request(`${proxy.url}${p}`, { localAddress: from(9) });
                assert.equal(res.status, 403, `${p}: ${res.status} ${res.text}`);
                assert.equal(res.json?.errcode, "M_FORBIDDEN", `${p}: ${res.text}`);
                assert.equal(res.headers["x-stand-in"], undefined, p);
            }
            assert.deepEqual(
                hs.requests.filter((r) => r.url.includes(n)).map((r) => r.url),
                [`/_synapse/admin/v1/rooms?e2e=${n}`],
            );
        });

        test("account/3pid/add and account/password/email/requestToken go to the homeserver after forward auth", async () => {
            const me = await loggedIn(user, { url: proxy.url });
            const n = nonce();
            for (const p of ["/account/3pid/add", "/account/password/email/requestToken"]) {
                const body = { e2e: n };
                const res = await post(p, me.res.access_token, body, "POST", proxy.url);
                assert.equal(res.status, 200, `${p}: ${res.status} ${res.text}`);
                assert.equal(res.headers["x-stand-in"], "homeserver", p);
                assert.equal(res.json.url, `/_matrix/client/v3${p}`);
                assert.equal(res.json.user_id, mxid(user.localpart), p);
                assert.equal(res.json.device_id, me.deviceId, p);
                assert.deepEqual(JSON.parse(res.json.body), body);

                // Without a token forward auth refuses it with authd's 401.
                const anon = await request(`${proxy.url}/_matrix/client/v3${p}?e2e=${n}`, {
                    method: "POST",
                    headers: { "Content-Type": "application/json" },
                    body: "{}",
                });
                assert.equal(anon.status, 401, `${p}: ${anon.text}`);
                assert.equal(anon.json?.errcode, "M_MISSING_TOKEN", `${p}: ${anon.text}`);
                assert.equal(anon.headers["x-stand-in"], undefined);
            }
            assert.deepEqual(
                hs.requests.filter((r) => r.body.includes(n) || r.url.includes(n)).map((r) => r.url),
                ["/_matrix/client/v3/account/3pid/add", "/_matrix/client/v3/account/password/email/requestToken"],
            );
            await me.client.logout();
        });
    });
}

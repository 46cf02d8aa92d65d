// Known attacks on the proxy split, reproduced through real nginx and real Caddy with
// the shipped configs (run.sh renders only listen lines, log paths and
// Caddy's admin line), in front of an authd with a budget of 3 failed token
// checks a minute per client address and of a WSGI stand-in homeserver
// (lib/wsgi_homeserver.py) that records what it receives:
//   §1 identity headers in any spelling a WSGI server reads as the real one
//      never reach the homeserver;
//   §2 dot segments, literal or percent-encoded, are refused with 400, while
//      %2F inside an event ID still reaches the homeserver;
//   §6 no access token in any log line of the proxy, under an encoded key or
//      with the homeserver down;
//   §9 made-up tokens over half-closed sockets never get a 200;
//   authd's 429 for too many bad tokens reaches the client as it is.
// Each client request comes from a loopback address of its own test, so that
// the per-address budgets of one test do not spend another's.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, readdir } from "node:fs/promises";
import { connect } from "node:net";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { crc32 } from "node:zlib";

import { baseUrl, mxid } from "../lib/env.mjs";
import { users } from "../lib/fixtures.mjs";
import { request } from "../lib/http.mjs";

const python3 = process.env.AUTHD_E2E_PYTHON3 || "/usr/bin/python3";
const hardenedBaseUrl = process.env.AUTHD_E2E_HARDENED_BASEURL;
// "name url homeserverPort logDir" per proxy, separated by ";".
const proxies = (process.env.AUTHD_E2E_HARDENED_PROXIES ?? "")
    .split(";")
    .filter(Boolean)
    .map((s) => {
        const [name, url, hsPort, logDir] = s.split(" ");
        return { name, url, hsPort: Number(hsPort), logDir };
    });
assert.ok(hardenedBaseUrl && proxies.length === 2, "run the suite with e2e/run.sh (make e2e)");

const nonce = () => randomBytes(6).toString("hex");

// A made-up access token in authd's format with a valid checksum (ada_, 32
// base62 characters, _, the CRC-32 of the rest in 6 base62 digits).
const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
function madeUpToken() {
    const body = "ada_" + Array.from(randomBytes(32), (b) => alphabet[b % 62]).join("");
    let v = crc32(Buffer.from(body));
    const sum = [];
    for (let i = 0; i < 6; i++) {
        sum.unshift(alphabet[v % 62]);
        v = Math.floor(v / 62);
    }
    return `${body}_${sum.join("")}`;
}

// rawHalfClosed sends one request over a fresh TCP socket, half-closes it
// right after sending (as a client that gives up would) and resolves to the
// status line it got back ("" for none).
function rawHalfClosed(url, path, headers, localAddress) {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
        const chunks = [];
        const s = connect({ host: u.hostname, port: Number(u.port), localAddress }, () => {
            const lines = [`GET ${path} HTTP/1.1`, `Host: ${u.host}`, "Connection: close"];
            for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
            s.end(lines.join("\r\n") + "\r\n\r\n");
        });
        s.on("data", (c) => chunks.push(c));
        s.on("error", (err) => (err.code === "ECONNRESET" ? null : reject(err)));
        s.on("close", () => resolve(Buffer.concat(chunks).toString("latin1").split("\r\n")[0]));
    });
}

// The WSGI stand-in on port: started by the test, stopped by stop().
async function startWsgi(name, port) {
    const child = spawn(python3, [new URL("../lib/wsgi_homeserver.py", import.meta.url).pathname, String(port)], {
        stdio: ["ignore", "pipe", "inherit"],
    });
    const [line] = await Promise.race([
        once(createInterface({ input: child.stdout }), "line"),
        once(child, "exit").then(([code]) => assert.fail(`${name}'s WSGI homeserver exited (${code}): port ${port} taken?`)),
    ]);
    assert.equal(line, "ready");
    const base = `http://127.0.0.1:${port}`;
    return {
        requests: async () => (await request(`${base}/__e2e/requests`)).json,
        stop: async () => {
            if (child.exitCode !== null) return;
            const exited = once(child, "exit");
            await request(`${base}/__e2e/stop`).catch(() => {});
            await exited;
        },
        kill: () => child.exitCode === null && child.kill(),
    };
}

// Every line of every log file the proxy wrote.
async function proxyLogs(dir) {
    let all = "";
    for (const f of await readdir(dir)) {
        if (f.endsWith(".log")) all += await readFile(join(dir, f), "utf8");
    }
    return all;
}

// The identity header spellings a WSGI, CGI or Rack server reads as
// X-Matrix-User-Id / X-Matrix-Device-Id.
const userIdSpellings = ["X-Matrix-User_Id", "X_Matrix_User_Id", "x-matrix_user-id", "X-MATRIX-USER-ID", "x_matrix-user_id"];
const deviceIdSpellings = ["X-Matrix-Device_Id", "X_MATRIX_DEVICE_ID", "x-matrix-device-id"];
const isIdentityName = (n) => /^x[-_]matrix[-_](user|device)[-_]id$/i.test(n);

const who = [users.nina, users.oscar];

for (const [i, proxy] of proxies.entries()) {
    describe(`attack reproductions through ${proxy.name} (shipped config)`, () => {
        const user = who[i];
        // A loopback source address per test, distinct per proxy.
        const from = (n) => `127.0.${10 + i}.${n}`;
        let hs;
        let token;
        let deviceId;
        // What the stand-in received whose URL contains s.
        const reached = async (s) => (await hs.requests()).filter((r) => r.url.includes(s));

        before(async () => {
            hs = await startWsgi(proxy.name, proxy.hsPort);
            const res = await request(`${proxy.url}/_matrix/client/v3/login`, {
                method: "POST",
                headers: { "Content-Type": "application/json" },
                body: JSON.stringify({
                    type: "m.login.password",
                    identifier: { type: "m.id.user", user: user.localpart },
                    password: user.password,
                    device_id: `HARDENED${proxy.name.toUpperCase()}`,
                }),
                localAddress: from(1),
            });
            assert.equal(res.status, 200, res.text);
            token = res.json.access_token;
            deviceId = res.json.device_id;
        });
        after(() => hs?.kill());

        test("§1: no spelling of an identity header reaches the homeserver but forward auth's", async () => {
            const n = nonce();
            const spoofed = {};
            for (const h of userIdSpellings) spoofed[h] = "@admin:authd.test";
            // Node sends each name once; one per request keeps them apart.
            const routes = [
                ["public", `/_matrix/client/versions?e2e=${n}`],
                ["public", `/_matrix/federation/v1/version?e2e=${n}`],
                ["catch-all", `/.well-known/matrix/client?e2e=${n}`],
                ["protected", `/_matrix/client/v3/rooms/!${n}:authd.test/state?e2e=${n}`],
            ];
            for (const [kind, path] of routes) {
                for (const name of [...userIdSpellings, ...deviceIdSpellings]) {
                    const headers = { [name]: name.toLowerCase().includes("device") ? "ADMINDEVICE" : "@admin:authd.test" };
                    if (kind === "protected") headers.Authorization = `Bearer ${token}`;
                    const res = await request(`${proxy.url}${path}&h=${name}`, { headers, localAddress: from(2) });
                    assert.equal(res.status, 200, `${kind} ${path} with ${name}: ${res.text}`);
                    assert.equal(res.json.stand_in, "wsgi", `${kind} ${path} with ${name}: ${res.text}`);
                    const want = kind === "protected" ? [mxid(user.localpart), deviceId] : [null, null];
                    assert.deepEqual([res.json.user_id, res.json.device_id], want, `${kind} ${path} with ${name}`);
                    const names = res.json.header_names.filter(isIdentityName);
                    assert.deepEqual(
                        names.map((h) => h.toLowerCase()).sort(),
                        kind === "protected" ? ["x-matrix-device-id", "x-matrix-user-id"] : [],
                        `${kind} ${path} with ${name}: the homeserver got ${names}`,
                    );
                }
            }
            // Without a token the protected route never reaches the homeserver.
            const anon = await request(`${proxy.url}/_matrix/client/v3/rooms/!${n}:authd.test/members?anon=1`, {
                headers: spoofed,
                localAddress: from(3),
            });
            assert.ok([401, 429].includes(anon.status), `anonymous: ${anon.status} ${anon.text}`);
            assert.deepEqual(await reached("anon=1"), []);
        });

        test("§2: dot segments are refused with 400, %2F in an event ID passes", async () => {
            const n = nonce();
            const refused = [
                // The three first reported.
                `/_matrix/client/v1/media/download/example.org/MEDIAID/x%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Ffederation%2Fx${n}`,
                `/_matrix/client/v3/rooms/!r:example.org/members/..%2F..%2F..%2F..%2F..%2F..%2Fclient%2Fversions?e2e=${n}`,
                `/_matrix/client/v3/sync/../../../federation/v1/x${n}`,
                // Encoded dots, mixed case, single dots, trailing ones.
                `/_matrix/client/v3/sync/%2e%2e/%2E%2e/%2E./federation/v1/x${n}`,
                `/_matrix/federation/v1/%2e%2E/%2e%2e/client/v3/rooms/!r:example.org/members?e2e=${n}`,
                `/_matrix/key/v2/..%2f..%2f..%2fclient/v3/sync?e2e=${n}`,
                `/_matrix/client/versions/./x${n}`,
                `/_matrix/client/versions/%2e/x${n}`,
                `/_matrix/client/versions/x${n}/..`,
                `/_matrix/client/versions/x${n}/%2E?x=1`,
            ];
            for (const path of refused) {
                const res = await request(`${proxy.url}${path}`, { localAddress: from(4) });
                assert.equal(res.status, 400, `${path}: ${res.status} ${res.text}`);
                assert.equal(res.json?.errcode, "M_UNRECOGNIZED", `${path}: ${res.text}`);
                assert.equal(res.headers["access-control-allow-origin"], "*", path);
            }
            assert.deepEqual(await reached(n), [], "a dot-segment request reached the homeserver");

            // Not dot segments: dots inside names, %2F inside an event ID, a
            // query that holds "../". All reach the homeserver as sent, with
            // the verified identity.
            const passed = [
                `/_matrix/client/v3/rooms/!${n}:authd.test/event/$abc%2Fdef`,
                `/_matrix/client/v3/rooms/!${n}:authd.test/event/$abc%2F..def`,
                `/_matrix/client/v3/rooms/!${n}:authd.test/foo.bar/...`,
                `/_matrix/client/v3/rooms/!${n}:authd.test/messages?next=../x&dir=b`,
            ];
            for (const path of passed) {
                const res = await request(`${proxy.url}${path}`, {
                    headers: { Authorization: `Bearer ${token}` },
                    localAddress: from(5),
                });
                assert.equal(res.status, 200, `${path}: ${res.status} ${res.text}`);
                assert.equal(res.json.url, path);
                assert.equal(res.json.user_id, mxid(user.localpart), path);
            }
        });

        test("§9: made-up tokens over half-closed sockets never get a 200", async () => {
            const n = nonce();
            const statuses = {};
            for (let k = 0; k < 30; k++) {
                const tok = madeUpToken();
                // Through the proxy, from an address of its own each time
                // (the per-address budget would answer 429 early).
                const line = await rawHalfClosed(
                    proxy.url,
                    `/_matrix/client/v3/rooms/!${n}:authd.test/messages`,
                    { Authorization: `Bearer ${tok}` },
                    from(100 + k),
                );
                statuses[line] = (statuses[line] ?? 0) + 1;
                if (proxy.name !== "caddy") {
                    assert.doesNotMatch(line, /^HTTP\/1\.[01] 2/, `a made-up token got ${line}`);
                }
            }
            // What matters is that no such request reaches the homeserver.
            // authd answers every cancelled check 503 (the direct test
            // below); Caddy 2.6 itself sends an empty 200 to a client that
            // has already hung up when its forward_auth was cancelled, and
            // passes nothing on.
            assert.deepEqual(await reached(n), [], `the homeserver got a made-up token's request (${JSON.stringify(statuses)})`);
        });

        test("§6: no access token in any log line, under an encoded key or with the homeserver down", async () => {
            const n = nonce();
            const secrets = [];
            for (const key of ["access%5Ftoken", "access%5ftoken", "%61ccess_token", "ACCESS_TOKEN", "access_token"]) {
                const tok = madeUpToken();
                secrets.push(tok);
                await request(`${proxy.url}/_matrix/client/v3/rooms/!${n}:authd.test/members?x=1&${key}=${tok}`, {
                    localAddress: from(6),
                });
            }
            // A valid token in the query while the homeserver is down: the
            // proxy's Matrix 503, and its error lines hold no token.
            await hs.stop();
            for (const path of [`/_matrix/client/v3/rooms/!${n}:authd.test/members`, `/_matrix/client/versions`]) {
                const res = await request(`${proxy.url}${path}?access_token=${token}`, { localAddress: from(7) });
                assert.equal(res.status, 503, `${path} with the homeserver down: ${res.text}`);
                assert.equal(res.json?.errcode, "M_UNKNOWN");
            }
            secrets.push(token);
            const logs = await proxyLogs(proxy.logDir);
            assert.match(logs, new RegExp(`!${n}:authd.test/members\\?x=1&access_token=REDACTED`));
            for (const s of secrets) assert.ok(!logs.includes(s), `${proxy.name}'s logs hold a token: ${s}`);
        });
    });

    test(`authd's 429 for too many bad tokens reaches the client through ${proxy.name}`, async () => {
        const n = nonce();
        let res;
        const seen = [];
        for (let k = 0; k < 8; k++) {
            res = await request(`${proxy.url}/_matrix/client/v3/rooms/!${n}:authd.test/messages`, {
                headers: { Authorization: `Bearer ${madeUpToken()}`, Origin: "https://app.example" },
                localAddress: `127.0.${20 + i}.1`,
            });
            seen.push(res.status);
            if (res.status !== 401) break;
        }
        assert.equal(res.status, 429, `statuses ${seen}: ${res.text}`);
        assert.equal(res.json?.errcode, "M_LIMIT_EXCEEDED", res.text);
        assert.equal(typeof res.json.retry_after_ms, "number", res.text);
        assert.match(res.headers["retry-after"] ?? "", /^\d+$/);
        assert.ok(res.headers["access-control-allow-origin"], "no CORS header on the 429");
    });
}

test("§9: made-up tokens over half-closed sockets never get a 200 from /_authd/verify", async () => {
    const statuses = {};
    for (let k = 0; k < 30; k++) {
        const line = await rawHalfClosed(baseUrl, "/_authd/verify", { Authorization: `Bearer ${madeUpToken()}` });
        statuses[line] = (statuses[line] ?? 0) + 1;
    }
    for (const line of Object.keys(statuses)) {
        assert.doesNotMatch(line, /^HTTP\/1\.[01] 2/, `30 tries: ${JSON.stringify(statuses)}`);
    }
});

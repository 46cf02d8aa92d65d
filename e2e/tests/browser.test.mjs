// matrix-js-sdk in headless Chromium, on a page from another origin than
// authd's: the browser only sends the SDK's requests after a CORS preflight
// succeeds, and only lets the page read a response (an error's errcode
// included) that carries authd's CORS headers.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";
import { chromium } from "playwright-core";

import { baseUrl, mxid } from "../lib/env.mjs";
import { users } from "../lib/fixtures.mjs";

const { dave } = users;
const e2eDir = fileURLToPath(new URL("..", import.meta.url));

// The page only loads the SDK; the tests drive it with page.evaluate.
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>authd e2e</title>
<script src="/matrix-js-sdk.js"></script></head>
<body>authd e2e</body></html>`;

// bundleSDK builds matrix-js-sdk for the browser (its "browser" entry) into
// one script that sets window.matrixsdk.
async function bundleSDK() {
    const out = await build({
        stdin: {
            contents: `export { createClient, MatrixError } from "matrix-js-sdk";`,
            resolveDir: e2eDir,
        },
        bundle: true,
        format: "iife",
        globalName: "matrixsdk",
        platform: "browser",
        target: "chrome120",
        write: false,
        logLevel: "warning",
    });
    return out.outputFiles[0].contents;
}

// servePage serves the page and the bundle on a loopback port of its own,
// a different origin from authd's.
async function servePage(bundle) {
    const server = createServer((req, res) => {
        if (req.method === "GET" && req.url === "/") {
            res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(page);
        } else if (req.method === "GET" && req.url === "/matrix-js-sdk.js") {
            res.writeHead(200, { "Content-Type": "text/javascript; charset=utf-8" }).end(bundle);
        } else {
            res.writeHead(404, { "Content-Type": "text/plain" }).end("not found");
        }
    });
    await new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", resolve);
    });
    return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

// Recorder collects events and lets a test wait, with a bound, for one that
// matches: browser events reach Node on their own schedule, not in step with
// page.evaluate's result.
class Recorder {
    constructor(name) {
        this.name = name;
        this.items = [];
        this.waiters = [];
    }

    add(item) {
        this.items.push(item);
        const waiting = [];
        for (const w of this.waiters) {
            if (w.match(item)) w.resolve(item);
            else waiting.push(w);
        }
        this.waiters = waiting;
    }

    waitFor(what, match, timeoutMs = 5000) {
        const found = this.items.find(match);
        if (found) return Promise.resolve(found);
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                reject(new Error(`no ${this.name} ${what} within ${timeoutMs} ms; saw ${JSON.stringify(this.items, null, 1)}`));
            }, timeoutMs);
            const done = (item) => {
                clearTimeout(timer);
                resolve(item);
            };
            this.waiters.push({ match, resolve: done });
        });
    }
}

const path = (url) => new URL(url).pathname;

describe("browser (Chromium, cross-origin)", () => {
    let site;
    let profile;
    let context;
    let tab;
    // Requests to authd as the browser's network stack sent them, preflights
    // included (CDP reports those; Playwright's page events do not), and the
    // responses the page got, with their headers.
    const sent = new Recorder("request");
    const responses = new Recorder("response");
    const pageErrors = [];

    before(async () => {
        site = await servePage(await bundleSDK());
        profile = await mkdtemp(join(tmpdir(), "authd-e2e-chromium-"));
        context = await chromium.launchPersistentContext(profile, {
            executablePath: "/usr/bin/chromium",
            headless: true,
            args: [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        });
        tab = context.pages()[0] ?? (await context.newPage());
        tab.on("pageerror", (err) => pageErrors.push(String(err)));
        tab.on("response", (res) => {
            if (!res.url().startsWith(baseUrl)) return;
            const method = res.request().method();
            res.allHeaders().then(
                (headers) => responses.add({ method, path: path(res.url()), status: res.status(), headers }),
                () => {}, // the page went away; nothing to record
            );
        });
        const cdp = await context.newCDPSession(tab);
        cdp.on("Network.requestWillBeSent", (e) => {
            if (e.request.url.startsWith(baseUrl)) {
                sent.add({ method: e.request.method, path: path(e.request.url), type: e.type });
            }
        });
        await cdp.send("Network.enable");
        await tab.goto(`${site.origin}/`);
        assert.equal(await tab.evaluate(() => typeof window.matrixsdk?.createClient), "function");
    });

    after(async () => {
        await context?.close();
        if (profile) await rm(profile, { recursive: true, force: true });
        await new Promise((resolve) => (site ? site.server.close(resolve) : resolve()));
    });

    test("login, whoami and logout with matrix-js-sdk from another origin", async () => {
        const origin = await tab.evaluate(() => location.origin);
        assert.equal(origin, site.origin);
        assert.notEqual(origin, new URL(baseUrl).origin);

        const got = await tab.evaluate(
            async ({ baseUrl, user, password }) => {
                const sdk = window.matrixsdk;
                const describe = (e) => ({
                    isMatrixError: e instanceof sdk.MatrixError,
                    name: e.name,
                    message: e.message,
                    httpStatus: e.httpStatus,
                    errcode: e.errcode,
                    data: e.data,
                });
                const client = sdk.createClient({ baseUrl });
                const login = await client.login("m.login.password", {
                    identifier: { type: "m.id.user", user },
                    password,
                    initial_device_display_name: "authd e2e (Chromium)",
                });
                const whoami = await client.whoami();
                const logout = await client.logout();
                const afterLogout = await client.whoami().then((r) => ({ unexpected: r }), describe);
                return { login, whoami, logout, afterLogout };
            },
            { baseUrl, user: dave.localpart, password: dave.password },
        );

        assert.equal(got.login.user_id, mxid(dave.localpart));
        assert.equal(typeof got.login.access_token, "string");
        assert.equal(typeof got.login.device_id, "string");
        assert.deepEqual(got.login.well_known, { "m.homeserver": { base_url: baseUrl } });
        assert.deepEqual(got.whoami, { user_id: mxid(dave.localpart), device_id: got.login.device_id, is_guest: false });
        assert.deepEqual(got.logout, {});
        assert.equal(got.afterLogout.isMatrixError, true, JSON.stringify(got.afterLogout));
        assert.equal(got.afterLogout.httpStatus, 401);
        assert.equal(got.afterLogout.errcode, "M_UNKNOWN_TOKEN");
        assert.notEqual(got.afterLogout.data.soft_logout, true);

        // The browser preflighted the JSON POST and the Bearer calls.
        for (const p of ["/_matrix/client/v3/login", "/_matrix/client/v3/account/whoami", "/_matrix/client/v3/logout"]) {
            await sent.waitFor(`OPTIONS ${p}`, (r) => r.method === "OPTIONS" && r.path === p);
        }

        // Every response the page read carried the CORS headers, the 401 too.
        for (const [method, p, status] of [
            ["POST", "/_matrix/client/v3/login", 200],
            ["GET", "/_matrix/client/v3/account/whoami", 200],
            ["POST", "/_matrix/client/v3/logout", 200],
            ["GET", "/_matrix/client/v3/account/whoami", 401],
        ]) {
            const r = await responses.waitFor(`${method} ${p} ${status}`, (r) => r.method === method && r.path === p && r.status === status);
            assert.equal(r.headers["access-control-allow-origin"], "*", `${method} ${p} ${status}`);
            assert.match(r.headers["content-type"] ?? "", /^application\/json/, `${method} ${p} ${status}`);
        }
        assert.deepEqual(pageErrors, []);
    });

    test("a wrong password's 403 M_FORBIDDEN is readable in the browser", async () => {
        const got = await tab.evaluate(
            async ({ baseUrl, user }) => {
                const sdk = window.matrixsdk;
                const client = sdk.createClient({ baseUrl });
                return client.loginWithPassword(user, "not the password").then(
                    (r) => ({ unexpected: r }),
                    (e) => ({
                        isMatrixError: e instanceof sdk.MatrixError,
                        name: e.name,
                        message: e.message,
                        httpStatus: e.httpStatus,
                        errcode: e.errcode,
                        data: e.data,
                    }),
                );
            },
            { baseUrl, user: dave.localpart },
        );
        assert.equal(got.isMatrixError, true, JSON.stringify(got));
        assert.equal(got.httpStatus, 403);
        assert.equal(got.errcode, "M_FORBIDDEN");
        assert.equal(got.data.errcode, "M_FORBIDDEN");
        assert.equal(typeof got.data.error, "string");

        const res = await responses.waitFor(
            "POST /login 403",
            (r) => r.method === "POST" && r.path === "/_matrix/client/v3/login" && r.status === 403,
        );
        assert.equal(res.headers["access-control-allow-origin"], "*");
        assert.deepEqual(pageErrors, []);
    });
});

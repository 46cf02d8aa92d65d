// What run.sh tells the tests about the authd instances it started.
import assert from "node:assert/strict";

function need(name) {
    const v = process.env[name];
    assert.ok(v, `${name} is not set: run the suite with e2e/run.sh (make e2e)`);
    return v;
}

// authd with rate limiting off, /versions served and well_known configured.
export const baseUrl = need("AUTHD_E2E_BASEURL");
// A second authd on the same database with the default per-IP login limit.
export const limitedBaseUrl = need("AUTHD_E2E_LIMITED_BASEURL");
export const serverName = need("AUTHD_E2E_SERVER_NAME");

export const mxid = (localpart) => `@${localpart}:${serverName}`;

// nginx with deploy/nginx/authd.conf, in front of a third authd (per-IP
// login limit on, trusting 127.0.0.1 as its proxy when it can) and of the
// stand-in homeserver that tests/proxy.test.mjs serves on homeserverPort.
export const proxyBaseUrl = need("AUTHD_E2E_PROXY_BASEURL");
export const homeserverPort = Number(need("AUTHD_E2E_HOMESERVER_PORT"));
// nginx's access log, in deploy/nginx/authd.conf's authd_redacted format.
export const nginxAccessLog = need("AUTHD_E2E_NGINX_ACCESS_LOG");
// Whether the authd behind nginx runs with AUTHD_TRUSTED_PROXIES (run.sh
// asks `authd serve --help`).
export const trustedProxies = need("AUTHD_E2E_TRUSTED_PROXIES") === "1";

// The authd of tests/account.test.mjs: login tokens on (AUTHD_LOGIN_TOKENS),
// every rate limit off but the fixed one login token per user a minute,
// trusting 127.0.0.1 as its proxy when it can.
export const accountBaseUrl = need("AUTHD_E2E_ACCOUNT_BASEURL");
// nginx and Caddy with the shipped configs in front of that authd and of a
// stand-in homeserver each, which the test serves on the given port: "name
// url homeserverPort" per proxy, separated by ";".
export const accountProxies = need("AUTHD_E2E_ACCOUNT_PROXIES")
    .split(";")
    .filter(Boolean)
    .map((s) => {
        const [name, url, hsPort] = s.split(" ");
        return { name, url, homeserverPort: Number(hsPort) };
    });

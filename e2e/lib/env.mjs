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

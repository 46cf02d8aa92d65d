// The users the e2e suite logs in as. run.sh creates them with
// `authd user create` before any test starts, by running this file, which
// then prints one tab-separated line per user: localpart, password, email
// (empty for none). Each test file owns the users it logs out everywhere,
// so that the files can run in parallel.
import { pathToFileURL } from "node:url";

export const users = {
    // Node: login, whoami, logout; outlives bob's logout/all.
    alice: { localpart: "alice", password: "correct horse battery staple", email: "" },
    // Node: logout/all.
    bob: { localpart: "bob", password: "bob's password, 2 words+", email: "" },
    // Node: email login (m.id.thirdparty).
    carol: { localpart: "carol", password: "carol-pw-3", email: "carol@example.org" },
    // Node: refresh tokens, expiry and soft logout.
    erin: { localpart: "erin", password: "erin expires", email: "" },
    // Browser: cross-origin login, whoami, logout.
    dave: { localpart: "dave", password: "dave's browser password", email: "" },
    // Through nginx: login, whoami, logout.
    frank: { localpart: "frank", password: "frank behind the proxy", email: "" },
    // Through nginx: forward auth to the stand-in homeserver.
    grace: { localpart: "grace", password: "grace's forward-auth pw", email: "" },
    // Three replicas: wrong passwords until the shared per-account limit.
    heidi: { localpart: "heidi", password: "heidi on every replica", email: "" },
    // Three replicas: logins, cross-replica logout, authd user passwd.
    ivan: { localpart: "ivan", password: "ivan's replicated pw", email: "" },
    // Three replicas: authd user deactivate.
    judy: { localpart: "judy", password: "judy deactivated", email: "" },
    // The attack reproductions through nginx and through Caddy.
    nina: { localpart: "nina", password: "nina behind hardened nginx", email: "" },
    oscar: { localpart: "oscar", password: "oscar behind hardened caddy", email: "" },
    // Account self-service (tests/account.test.mjs), one user per concern.
    // Devices: list, get, rename.
    peggy: { localpart: "peggy", password: "peggy's many devices", email: "" },
    // Device deletion through User-Interactive Authentication.
    quinn: { localpart: "quinn", password: "quinn deletes devices", email: "" },
    // Password change, with and without logout_devices.
    rupert: { localpart: "rupert", password: "rupert's first password", email: "" },
    // Account deactivation.
    sybil: { localpart: "sybil", password: "sybil deactivates", email: "" },
    // Third-party IDs: list and delete.
    trent: { localpart: "trent", password: "trent's email goes", email: "trent@example.org" },
    // Login tokens (m.login.token, login/get_token).
    ursula: { localpart: "ursula", password: "ursula signs in twice", email: "" },
    // User-Interactive Authentication over raw HTTP.
    victor: { localpart: "victor", password: "victor speaks raw http", email: "" },
    // Device deletion and neighbouring paths through nginx and through Caddy.
    walter: { localpart: "walter", password: "walter behind nginx", email: "" },
    xena: { localpart: "xena", password: "xena behind caddy", email: "" },
};

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
    for (const u of Object.values(users)) {
        process.stdout.write(`${u.localpart}\t${u.password}\t${u.email}\n`);
    }
}

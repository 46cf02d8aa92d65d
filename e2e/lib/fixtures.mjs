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
};

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
    for (const u of Object.values(users)) {
        process.stdout.write(`${u.localpart}\t${u.password}\t${u.email}\n`);
    }
}

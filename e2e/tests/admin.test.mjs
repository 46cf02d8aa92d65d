// The admin API driven by the real synadm, Debian's package of the command
// line tool operators use against Synapse's admin API, against an authd of
// its own (AUTHD_ADMIN_API=on) on run.sh's database: log in as an admin,
// then every user command authd can answer, each result read from synadm's
// JSON output and checked again from authd's side (the token that should be
// dead is refused, the login that should fail fails).
//
// synadm exits 0 on HTTP errors (it prints the error body), so every check
// reads its output. run.sh finds synadm on PATH or unpacks Debian's package
// (AUTHD_E2E_SYNADM names the command, AUTHD_E2E_SYNADM_PYTHONPATH the
// unpacked modules).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { serverName } from "../lib/env.mjs";
import { request } from "../lib/http.mjs";
import { Replica, runAuthd, stopAll } from "../lib/replicas.mjs";

// The command, with the interpreter first when run.sh unpacked the package.
const [synadmCmd, ...synadmPre] = (process.env.AUTHD_E2E_SYNADM || "synadm").split(" ");

// Users of this file alone, so that the other tests' fixtures are untouched.
const admin = { localpart: "sa-admin", password: "sa-admin password" };
const bob = { localpart: "sa-bob", email: "sa-bob@example.org" };
const carol = { localpart: "sa-carol", password: "sa-carol password" };
const id = (localpart) => `@${localpart}:${serverName}`;

let authd;
let home;

// configure writes synadm's configuration for authd with the given access
// token (synadm insists on a non-empty one even to log in).
async function configure(token) {
    const yaml = [
        "user: admin",
        `token: ${token}`,
        `base_url: ${authd.url}`,
        "admin_path: /_synapse/admin",
        "matrix_path: /_matrix",
        "timeout: 10",
        "server_discovery: well-known",
        `homeserver: ${serverName}`,
        "format: json",
        "",
    ].join("\n");
    await writeFile(join(home, "synadm.yaml"), yaml, { mode: 0o600 });
}

// synadm runs one synadm command in batch mode with JSON output and
// resolves to every JSON document it printed, in order (its other lines
// are prose: "Current user account settings:" and the like).
async function synadm(...args) {
    const env = { ...process.env, HOME: home };
    if (process.env.AUTHD_E2E_SYNADM_PYTHONPATH) env.PYTHONPATH = process.env.AUTHD_E2E_SYNADM_PYTHONPATH;
    const child = spawn(synadmCmd, [...synadmPre, "-c", join(home, "synadm.yaml"), "--batch", "-o", "json", ...args], {
        env,
        stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const [code] = await once(child, "exit");
    const docs = out
        .split("\n")
        .filter((l) => l.startsWith("{") || l.startsWith("["))
        .map((l) => JSON.parse(l));
    assert.equal(code, 0, `synadm ${args.join(" ")} exited ${code}: ${out}\n${err}`);
    assert.ok(docs.length > 0, `synadm ${args.join(" ")} printed no JSON: ${out}\n${err}`);
    return docs;
}

// last is the final JSON document synadm printed: the command's answer.
const last = (docs) => docs[docs.length - 1];

// login logs a user in over the client API and resolves to { status, json }.
function login(localpart, password) {
    return request(`${authd.url}/_matrix/client/v3/login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ type: "m.login.password", identifier: { type: "m.id.user", user: localpart }, password }),
    });
}

function whoami(token) {
    return request(`${authd.url}/_matrix/client/v3/account/whoami`, { headers: { authorization: `Bearer ${token}` } });
}

async function wantLive(token, userID) {
    const res = await whoami(token);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.user_id, userID);
}

async function wantRevoked(token) {
    const res = await whoami(token);
    assert.equal(res.status, 401, res.text);
    assert.equal(res.json.errcode, "M_UNKNOWN_TOKEN");
}

describe("synadm against the admin API", () => {
    let adminToken;

    before(async () => {
        home = await mkdtemp(join(tmpdir(), "authd-synadm-"));
        await runAuthd(["user", "create", admin.localpart, "--admin", "--password-stdin"], admin.password + "\n");
        await runAuthd(["user", "create", carol.localpart, "--password-stdin"], carol.password + "\n");
        authd = await Replica.start("admin-api", { AUTHD_ADMIN_API: "on", AUTHD_RATELIMIT: "off" });
        await configure("placeholder");
    });
    after(stopAll);

    test("matrix login gives the admin an access token", async () => {
        const res = last(await synadm("matrix", "login", id(admin.localpart), "-p", admin.password));
        assert.equal(res.user_id, id(admin.localpart));
        assert.match(res.access_token, /^ada_/);
        adminToken = res.access_token;
        await configure(adminToken);
    });

    test("version names authd", async () => {
        const res = last(await synadm("version"));
        assert.match(res.server_version, /^authd /);
    });

    let bobPassword = "sa-bob first";
    test("user modify creates a user with a password and an email", async () => {
        const res = last(await synadm("user", "modify", bob.localpart, "-P", bobPassword, "-t", "email", bob.email));
        assert.equal(res.name, id(bob.localpart));
        assert.equal(res.admin, false);
        assert.equal(res.deactivated, false);
        assert.deepEqual(
            res.threepids.map((t) => [t.medium, t.address]),
            [["email", bob.email]],
        );
        // authd's side: the password logs in, and so does the email.
        assert.equal((await login(bob.localpart, bobPassword)).status, 200);
        const byEmail = await request(`${authd.url}/_matrix/client/v3/login`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
                type: "m.login.password",
                identifier: { type: "m.id.thirdparty", medium: "email", address: bob.email },
                password: bobPassword,
            }),
        });
        assert.equal(byEmail.status, 200, byEmail.text);
        assert.equal(byEmail.json.user_id, id(bob.localpart));
    });

    test("user list finds the user, by name in any case and by ID", async () => {
        const all = last(await synadm("user", "list"));
        assert.ok(all.total >= 3, `total ${all.total}`);
        const names = all.users.map((u) => u.name);
        for (const who of [admin, bob, carol]) assert.ok(names.includes(id(who.localpart)), `${who.localpart} in ${names}`);
        const byName = last(await synadm("user", "list", "-n", "SA-BO"));
        assert.deepEqual(
            byName.users.map((u) => u.name),
            [id(bob.localpart)],
        );
        assert.equal(byName.total, 1);
        const byID = last(await synadm("user", "list", "-i", id(bob.localpart)));
        assert.deepEqual(
            byID.users.map((u) => u.name),
            [id(bob.localpart)],
        );
        const admins = all.users.filter((u) => u.admin).map((u) => u.name);
        assert.ok(admins.includes(id(admin.localpart)), `admins ${admins}`);
        assert.ok(!admins.includes(id(bob.localpart)));
    });

    test("user details: creation_ts in seconds, admin false", async () => {
        const res = last(await synadm("user", "details", bob.localpart));
        assert.equal(res.name, id(bob.localpart));
        assert.equal(res.admin, false);
        assert.equal(res.locked, false);
        const nowSeconds = Date.now() / 1000;
        assert.ok(Math.abs(res.creation_ts - nowSeconds) < 3600, `creation_ts ${res.creation_ts} is not seconds near ${nowSeconds}`);
        // The same user through a percent-encoded path, as synapse-admin and
        // newer synadm send it.
        const encoded = await request(`${authd.url}/_synapse/admin/v2/users/${encodeURIComponent(id(bob.localpart))}`, {
            headers: { authorization: `Bearer ${adminToken}` },
        });
        assert.equal(encoded.status, 200, encoded.text);
        assert.equal(encoded.json.name, id(bob.localpart));
    });

    let bobTokens;
    test("user whois lists the devices, prune-devices keeps one", async () => {
        const logins = [];
        for (let i = 0; i < 2; i++) {
            const res = await login(bob.localpart, bobPassword);
            assert.equal(res.status, 200, res.text);
            logins.push(res.json);
        }
        const whois = last(await synadm("user", "whois", bob.localpart));
        assert.equal(whois.user_id, id(bob.localpart));
        for (const l of logins) {
            const conns = whois.devices[l.device_id]?.sessions?.[0]?.connections;
            assert.ok(Array.isArray(conns), `whois has no sessions for ${l.device_id}: ${JSON.stringify(whois)}`);
        }
        // prune-devices deletes only devices unseen for days, or the one
        // named with -i: name the first of the two logins. It prints the
        // devices it deletes, and exits 1 unless authd answered {}.
        const [gone, kept] = logins;
        const docs = await synadm("user", "prune-devices", id(bob.localpart), "-i", gone.device_id, "-s", "1");
        assert.deepEqual(
            last(docs).map((d) => d.device_id),
            [gone.device_id],
        );
        await wantRevoked(gone.access_token);
        await wantLive(kept.access_token, id(bob.localpart));
        const devices = await request(`${authd.url}/_synapse/admin/v2/users/${id(bob.localpart)}/devices`, {
            headers: { authorization: `Bearer ${adminToken}` },
        });
        assert.equal(devices.status, 200, devices.text);
        const left = devices.json.devices.map((d) => d.device_id);
        assert.ok(left.includes(kept.device_id) && !left.includes(gone.device_id), devices.text);
        assert.equal(devices.json.total, left.length);
        bobTokens = { kept: kept.access_token };
    });

    test("user password without logout keeps the session, with logout ends it", async () => {
        assert.deepEqual(last(await synadm("user", "password", bob.localpart, "-p", "sa-bob second", "-n")), {});
        await wantLive(bobTokens.kept, id(bob.localpart));
        assert.equal((await login(bob.localpart, bobPassword)).status, 403);
        bobPassword = "sa-bob second";
        assert.equal((await login(bob.localpart, bobPassword)).status, 200);

        assert.deepEqual(last(await synadm("user", "password", bob.localpart, "-p", "sa-bob third")), {});
        await wantRevoked(bobTokens.kept);
        bobPassword = "sa-bob third";
        const res = await login(bob.localpart, bobPassword);
        assert.equal(res.status, 200, res.text);
        bobTokens.last = res.json.access_token;
    });

    test("user 3pid finds the owner of an email", async () => {
        const res = last(await synadm("user", "3pid", "-m", "email", bob.email));
        assert.equal(res.user_id, id(bob.localpart));
        const none = last(await synadm("user", "3pid", "-m", "email", "nobody-sa@example.org"));
        assert.equal(none.errcode, "M_NOT_FOUND");
    });

    test("user deactivate ends every session and the login", async () => {
        const docs = await synadm("user", "deactivate", bob.localpart);
        assert.equal(last(docs).id_server_unbind_result, "success", JSON.stringify(docs));
        await wantRevoked(bobTokens.last);
        const res = await login(bob.localpart, bobPassword);
        assert.equal(res.status, 403, res.text);
        assert.equal(res.json.errcode, "M_FORBIDDEN");
        const listed = last(await synadm("user", "list", "-d", "-n", "sa-bob"));
        assert.deepEqual(
            listed.users.map((u) => [u.name, u.deactivated]),
            [[id(bob.localpart), true]],
        );
        // Deactivation frees the address.
        const none = last(await synadm("user", "3pid", "-m", "email", bob.email));
        assert.equal(none.errcode, "M_NOT_FOUND");
    });

    test("an unknown user is M_NOT_FOUND", async () => {
        const res = last(await synadm("user", "details", "sa-nobody"));
        assert.equal(res.errcode, "M_NOT_FOUND");
    });

    test("a non-admin's token is refused, whatever the target", async () => {
        const res = await login(carol.localpart, carol.password);
        assert.equal(res.status, 200, res.text);
        await configure(res.json.access_token);
        try {
            const list = last(await synadm("user", "list"));
            assert.equal(list.errcode, "M_FORBIDDEN");
            const known = last(await synadm("user", "details", admin.localpart));
            const unknown = last(await synadm("user", "details", "sa-nobody"));
            assert.equal(known.errcode, "M_FORBIDDEN");
            assert.deepEqual(unknown, known);
        } finally {
            await configure(adminToken);
        }
    });
});

// Processes for the scale-out tests: a Redis server and several `authd
// serve` replicas on the Postgres database run.sh made, each on a loopback
// port of its own. Every process started here is stopped by stopAll, which
// tests/replicas.test.mjs calls from its after hook; each one's output goes
// to a log file in AUTHD_E2E_LOGS, which run.sh prints when anything fails.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";

import { request } from "./http.mjs";

function need(name) {
    const v = process.env[name];
    assert.ok(v, `${name} is not set: run the suite with e2e/run.sh (make e2e)`);
    return v;
}

const authdBin = () => need("AUTHD_E2E_AUTHD");
const logDir = () => need("AUTHD_E2E_LOGS");
const redisBin = () => process.env.AUTHD_E2E_REDIS_SERVER || "/usr/bin/redis-server";
const nginxBin = () => process.env.AUTHD_E2E_NGINX || "/usr/sbin/nginx";

const running = new Set();

// freePort resolves to a TCP port that was free on 127.0.0.1 a moment ago.
export async function freePort() {
    const s = createServer().listen(0, "127.0.0.1");
    await once(s, "listening");
    const { port } = s.address();
    s.close();
    await once(s, "close");
    return port;
}

// start runs a command with its output appended to logs/NAME.log, and
// resolves to the child once it has spawned.
async function start(name, cmd, args, env) {
    const log = createWriteStream(join(logDir(), `${name}.log`), { flags: "a" });
    await once(log, "open");
    const child = spawn(cmd, args, { env, stdio: ["ignore", log, log] });
    child.exited = once(child, "exit");
    running.add(child);
    child.exited.then(() => running.delete(child));
    await once(child, "spawn");
    return child;
}

// stop sends SIGTERM and waits for the process to exit.
async function stop(child) {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    await child.exited;
}

// stopAll stops every process this module started.
export async function stopAll() {
    await Promise.all([...running].map(stop));
}

// waitFor polls check (an async function returning a truthy value when
// done) every 25 ms until it is done or timeoutMs passes, and returns its
// last value; on timeout it fails with what.
export async function waitFor(what, check, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
        try {
            last = await check();
            if (last) return last;
        } catch (err) {
            last = err;
        }
        if (Date.now() > deadline) {
            assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last}`);
        }
        await delay(25);
    }
}

// Redis is one redis-server on a loopback port, without persistence, that
// a test can stop and start again on the same port.
export class Redis {
    constructor(port) {
        this.port = port;
        this.url = `redis://127.0.0.1:${port}/0`;
        this.child = null;
    }

    static async start() {
        const r = new Redis(await freePort());
        await r.start();
        return r;
    }

    async start() {
        const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
        this.child = await start("redis", redisBin(), args, process.env);
        await waitFor(`redis on ${this.port}`, () => canConnect(this.port));
    }

    async stop() {
        await stop(this.child);
        // Nothing answers on the port any more.
        assert.equal(await canConnect(this.port), false, "redis still accepts connections after SIGTERM");
    }
}

// canConnect resolves to whether a TCP connection to 127.0.0.1:port opens.
async function canConnect(port) {
    return new Promise((resolve) => {
        const s = connect(port, "127.0.0.1");
        s.on("connect", () => {
            s.destroy();
            resolve(true);
        });
        s.on("error", () => resolve(false));
    });
}

// runAuthd runs the authd CLI with run.sh's environment, writing input to
// its standard input, and resolves to its standard output; it fails the
// test unless the command exits 0.
export async function runAuthd(args, input = "") {
    const child = spawn(authdBin(), args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.stdin.end(input);
    const [code] = await once(child, "exit");
    assert.equal(code, 0, `authd ${args.join(" ")}: ${err}`);
    return out;
}

// Replica is one `authd serve` process.
export class Replica {
    constructor(name, port, env) {
        this.name = name;
        this.port = port;
        this.url = `http://127.0.0.1:${port}`;
        this.env = env;
    }

    // start launches `authd serve` with the environment of run.sh (the
    // database, server name, bcrypt cost) plus settings, and resolves once
    // its /readyz answers 200.
    static async start(name, settings) {
        const port = await freePort();
        const env = {
            ...process.env,
            AUTHD_LISTEN: `127.0.0.1:${port}`,
            AUTHD_PUBLIC_BASEURL: `http://127.0.0.1:${port}`,
            AUTHD_LOG_FORMAT: "text",
            ...settings,
        };
        const r = new Replica(name, port, env);
        r.child = await start(`authd-${name}`, authdBin(), ["serve"], env);
        await waitFor(`${name} ready`, async () => {
            assert.equal(r.child.exitCode, null, `authd ${name} exited; see authd-${name}.log`);
            return (await r.readyz()).status === 200;
        });
        return r;
    }

    // readyz resolves to /readyz's status and JSON body.
    async readyz() {
        const res = await request(`${this.url}/readyz`);
        return { status: res.status, body: res.json };
    }

    // metricSum resolves to the sum of every sample of one metric family,
    // whatever its labels, such as authd_login_attempts_total.
    async metricSum(name) {
        const res = await request(`${this.url}/metrics`);
        assert.equal(res.status, 200);
        let sum = 0;
        for (const line of res.text.split("\n")) {
            if (line.startsWith(name + "{") || line.startsWith(name + " ")) {
                sum += Number(line.slice(line.lastIndexOf(" ") + 1));
            }
        }
        return sum;
    }

    // metric resolves to the value of one unlabelled sample of /metrics, such
    // as authd_hash_duration_seconds_count.
    async metric(name) {
        const res = await request(`${this.url}/metrics`);
        assert.equal(res.status, 200);
        const line = res.text.split("\n").find((l) => l.startsWith(name + " "));
        assert.ok(line, `${name} is not in ${this.name}'s /metrics`);
        return Number(line.slice(name.length + 1));
    }
}

// bcryptChecks resolves to the password comparisons each replica has made
// so far (its authd_hash_duration_seconds_count: real and dummy hashes).
export function bcryptChecks(replicas) {
    return Promise.all(replicas.map((r) => r.metric("authd_hash_duration_seconds_count")));
}

// Nginx is Debian's nginx running deploy/nginx/authd.conf as shipped (only
// its listen and access_log lines rewritten, as run.sh does for the proxy
// tests) in front of an upstream of several replicas, balanced round-robin.
export class Nginx {
    static async start(replicas) {
        const n = new Nginx();
        n.port = await freePort();
        n.url = `http://127.0.0.1:${n.port}`;
        const dir = join(logDir(), "nginx-replicas");
        await mkdir(join(dir, "tmp"), { recursive: true });
        // nginx's workers (nobody, when run as root) write temporary files here.
        for (const d of [dir, join(dir, "tmp")]) await chmod(d, 0o755);
        const shipped = await readFile(new URL("../../deploy/nginx/authd.conf", import.meta.url), "utf8");
        let listened = false;
        const conf = shipped
            .split("\n")
            .flatMap((line) => {
                if (/^\s*listen\s/.test(line)) {
                    if (listened) return [];
                    listened = true;
                    return [line.replace(/listen[^;]*;/, `listen 127.0.0.1:${n.port};`)];
                }
                if (/^\s*error_log\s/.test(line)) {
                    return [line.replace(/error_log\s+[^\s;]+/, `error_log ${dir}/error.log`)];
                }
                if (/^\s*access_log\s/.test(line)) {
                    return [line.replace(/access_log[^;]*;/, `access_log ${dir}/access.log authd_redacted;`)];
                }
                return [line];
            })
            .join("\n");
        assert.ok(listened, "deploy/nginx/authd.conf has no listen line");
        await writeFile(join(dir, "authd.conf"), conf);
        const servers = replicas.map((r) => `server 127.0.0.1:${r.port};`).join(" ");
        await writeFile(
            join(dir, "nginx.conf"),
            `# Written by e2e/lib/replicas.mjs: deploy/nginx/authd.conf in front of ${replicas.length} replicas.
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log notice;
events { worker_connections 512; }
http {
    client_body_temp_path ${dir}/tmp/client_body;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;
    access_log ${dir}/access.log;
    upstream authd { ${servers} keepalive 8; }
    upstream homeserver { server 127.0.0.1:9; }
    include ${dir}/authd.conf;
}
`,
        );
        const args = ["-p", `${dir}/`, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log"), "-g", "daemon off;"];
        n.child = await start("nginx-replicas", nginxBin(), args, process.env);
        await waitFor(`nginx on ${n.port}`, async () => {
            assert.equal(n.child.exitCode, null, "nginx exited; see nginx-replicas.log");
            return canConnect(n.port);
        });
        return n;
    }
}

// The stand-in for "the rest of the homeserver" behind nginx in
// tests/proxy.test.mjs: it records every request it receives and answers
// with what it saw (the identity headers nginx set after authd's forward
// auth, the client address headers, the body), so that a test can check
// what got through the proxy and what never did.
import { createServer } from "node:http";

// The versions a homeserver would list; matrix-js-sdk's AutoDiscovery
// fetches them to validate a base URL.
const versions = ["r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11"];

const cors = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization",
};

// startHomeserver listens on 127.0.0.1:port and returns { requests, close }.
// requests holds one entry per request received: method, url, headers
// (lower-case names) and body (a string).
export async function startHomeserver(port) {
    const requests = [];
    const server = createServer((req, res) => {
        const chunks = [];
        req.on("data", (c) => chunks.push(c));
        req.on("end", () => {
            const seen = {
                method: req.method,
                url: req.url,
                headers: req.headers,
                body: Buffer.concat(chunks).toString("utf8"),
            };
            requests.push(seen);
            const headers = { ...cors, "X-Stand-In": "homeserver" };
            if (req.method === "OPTIONS") {
                res.writeHead(204, headers).end();
                return;
            }
            const body =
                req.method === "GET" && req.url.split("?")[0] === "/_matrix/client/versions"
                    ? { versions, unstable_features: {} }
                    : {
                          stand_in: "homeserver",
                          method: seen.method,
                          url: seen.url,
                          user_id: req.headers["x-matrix-user-id"] ?? null,
                          device_id: req.headers["x-matrix-device-id"] ?? null,
                          x_forwarded_for: req.headers["x-forwarded-for"] ?? null,
                          x_real_ip: req.headers["x-real-ip"] ?? null,
                          body: seen.body,
                      };
            res.writeHead(200, { ...headers, "Content-Type": "application/json" }).end(JSON.stringify(body));
        });
    });
    await new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", resolve);
    });
    return {
        requests,
        close: () => new Promise((resolve) => server.close(resolve)),
    };
}

// Plain HTTP for the proxy tests: requests sent from a chosen loopback
// source address (127.0.0.2, 127.0.0.3 ...), so that nginx sees distinct
// clients on one machine, with paths sent byte for byte as given (fetch
// would normalise "..", "//" and percent-escapes before nginx sees them).
import { request as httpRequest } from "node:http";

// request sends one request and resolves to { status, headers, text, json }
// (json is undefined when the body is not JSON). Options: method, headers
// (an object), body (a string or Buffer), localAddress.
export function request(url, { method = "GET", headers = {}, body, localAddress } = {}) {
    const u = new URL(url);
    // Node frames the body of a DELETE (or GET) only with a Content-Length;
    // without one it would send the body unannounced and the server would
    // never read it.
    const framed = Object.keys(headers).some((h) => /^(content-length|transfer-encoding)$/i.test(h));
    if (body !== undefined && body !== null && !framed) {
        headers = { ...headers, "Content-Length": String(Buffer.byteLength(body)) };
    }
    // The path as given, not as URL parsed it.
    const path = url.slice(u.origin.length) || "/";
    return new Promise((resolve, reject) => {
        const req = httpRequest(
            { host: u.hostname, port: u.port, method, path, headers, localAddress, agent: false },
            (res) => {
                const chunks = [];
                res.on("data", (c) => chunks.push(c));
                res.on("error", reject);
                res.on("end", () => {
                    const text = Buffer.concat(chunks).toString("utf8");
                    let json;
                    try {
                        json = JSON.parse(text);
                    } catch {
                        json = undefined;
                    }
                    resolve({ status: res.statusCode, headers: res.headers, text, json });
                });
            },
        );
        req.on("error", reject);
        req.end(body);
    });
}

// fetchFrom returns a fetch for matrix-js-sdk's fetchFn that sends from
// localAddress, adding the headers extraHeaders() returns to each request.
export function fetchFrom(localAddress, extraHeaders = () => ({})) {
    return async (input, init = {}) => {
        const headers = Object.fromEntries(new Headers(init.headers ?? {}).entries());
        const res = await request(String(input), {
            method: init.method ?? "GET",
            headers: { ...headers, ...extraHeaders() },
            body: init.body ?? undefined,
            localAddress,
        });
        const noBody = res.status === 204 || res.status === 304;
        const out = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
            for (const v of [value].flat()) out.append(name, v);
        }
        return new Response(noBody ? null : res.text, { status: res.status, headers: out });
    };
}

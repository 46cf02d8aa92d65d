"""A WSGI stand-in homeserver for tests/hardening.test.mjs.

It runs on Python's wsgiref, which (like every WSGI, CGI and Rack server)
reads a header named X-Matrix-User_Id as HTTP_X_MATRIX_USER_ID, the same as
X-Matrix-User-Id, joining the values of both. It records every request it
receives and answers with what it saw: the identity as a WSGI application
reads it, the request target as it arrived, and the raw header names.
GET /__e2e/requests (sent to it directly, never through a proxy) returns the
record; GET /__e2e/stop stops it.

Usage: python3 wsgi_homeserver.py PORT
"""

import json
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

requests = []


class Handler(WSGIRequestHandler):
    def get_environ(self):
        env = super().get_environ()
        env["e2e.request_uri"] = self.path
        env["e2e.header_names"] = list(self.headers.keys())
        return env

    def log_message(self, format, *args):
        pass


def app(environ, start_response):
    if environ["e2e.request_uri"] == "/__e2e/requests":
        body = json.dumps(requests).encode()
    elif environ["e2e.request_uri"] == "/__e2e/stop":
        threading.Thread(target=server.shutdown).start()
        body = b"{}"
    else:
        seen = {
            "method": environ["REQUEST_METHOD"],
            "url": environ["e2e.request_uri"],
            "user_id": environ.get("HTTP_X_MATRIX_USER_ID"),
            "device_id": environ.get("HTTP_X_MATRIX_DEVICE_ID"),
            "header_names": environ["e2e.header_names"],
        }
        requests.append(seen)
        body = json.dumps({"stand_in": "wsgi", **seen}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


server = make_server("127.0.0.1", int(sys.argv[1]), app, server_class=WSGIServer, handler_class=Handler)
print("ready", flush=True)
server.serve_forever()

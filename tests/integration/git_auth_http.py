#!/usr/bin/env python3
"""A dumb-HTTP git server that wants BuildKit's GIT_AUTH_TOKEN header.

git_auth_http.py PORT DIR: serves DIR on 127.0.0.1:PORT; every request must
carry `Authorization: basic base64("x-access-token:" + $GIT_TEST_TOKEN)`,
else 401 with a Basic challenge (what a private repository host answers).
"""
import base64
import functools
import http.server
import os
import sys

TOKEN = os.environ["GIT_TEST_TOKEN"]
WANT = base64.b64encode(("x-access-token:" + TOKEN).encode()).decode()


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic" or value != WANT:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    handler = functools.partial(Handler, directory=directory)
    http.server.ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()


if __name__ == "__main__":
    main()

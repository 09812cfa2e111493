#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""GET /status on the exit server's control port and `inletsctl status --url`: with the token,
the remote view is the local one (the same JSON as `inletsctl --json status` over D-Bus, and
the same text); a wrong token gets 401 after the control port's back-off, and inletsctl exits 4;
the TLS checks are the tunnel client's (a wrong CA or pin refused before the token is sent, as
a TLS server of the test's own proves); the token never goes on inletsctl's command line."""

import json
import os
import socket
import ssl
import subprocess
import threading
import time

from inletstest import INLETSCTL, TOKEN, echo_roundtrip, free_port, main, port_open, wait_until
from peers import BusTunnelTest


def fingerprint(path):
    r = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-fingerprint", "-sha256"], capture_output=True,
                       text=True, check=True)
    return "sha256:" + r.stdout.strip().split("=", 1)[1].replace(":", "").lower()


class StatusUrl(BusTunnelTest):
    def ctl(self, *args, env=None):
        return subprocess.run([INLETSCTL, *args], capture_output=True, text=True, timeout=30, env=env or self.env)

    def remote(self, *extra, token_file=None):
        return self.ctl("status", "--url", f"wss://127.0.0.1:{self.control_port}",
                        "--token-file", token_file or self.token_file, *extra)

    def setUp(self):
        super().setUp()
        self.echo_srv = self.echo()
        self.pub = free_port()
        self.srv = self.server(name="exit", args=("--user",), env=self.env)
        self.cli = self.client(f"{self.pub}:{self.echo_srv.port}", args=("--user",), env=self.env)
        wait_until(lambda: port_open(self.pub), 10, "public port")
        self.ca = f"{self.tmp}/state/ca.crt"

    def test_remote_view_is_the_local_one(self):
        self.assertEqual(echo_roundtrip(self.pub, b"x" * 100000), b"x" * 100000)
        wait_until(lambda: self.status_json("exit")["bytes_in"] == 100000, 10, "the bytes counted")
        local = self.ctl("--user", "--json", "status", "exit")
        remote = self.remote("--json", "--tls-ca", self.ca)
        self.assertEqual(remote.returncode, 0, remote.stderr)
        self.assertEqual(json.loads(remote.stdout), json.loads(local.stdout), "the same JSON, member for member")
        doc = json.loads(remote.stdout)[0]
        self.assertEqual(doc["bytes_in"], 100000)
        self.assertEqual(len(doc["clients"]), 1)
        self.assertEqual(doc["ports"], [self.pub])
        # The text view too, but for the "… ago" ages (taken at different instants).
        local_text = self.ctl("--user", "status", "exit").stdout
        remote_text = self.remote("--fingerprint", fingerprint(f"{self.tmp}/state/server.crt")).stdout
        strip = lambda t: [l for l in t.splitlines() if "ago" not in l and " for " not in l]
        self.assertEqual(strip(remote_text), strip(local_text))
        self.assertIn("Clients: 1", remote_text)
        # Plain curl with the token gets the same document.
        r = subprocess.run(["curl", "-sS", "--cacert", self.ca, "-H", f"Authorization: Bearer {TOKEN}",
                            f"https://127.0.0.1:{self.control_port}/status"], capture_output=True, timeout=30)
        self.assertEqual(json.loads(r.stdout)[0]["bytes_in"], 100000)
        print("inletsctl status --url (CA file and pinned certificate) = the local D-Bus view; curl gets it too")

    def test_wrong_token_and_back_off(self):
        bad = os.path.join(self.tmp, "bad.token")
        with open(bad, "w") as f:
            f.write("wrong-token-0123456789abcdef\n")
        os.chmod(bad, 0o600)
        times = []
        for _ in range(4):
            t0 = time.monotonic()
            r = self.remote("--tls-ca", self.ca, token_file=bad)
            times.append(time.monotonic() - t0)
            self.assertEqual(r.returncode, 4, r.stderr)
            self.assertIn("refused the token (401)", r.stderr)
        self.assertGreater(times[3], times[0] + 0.4, f"the back-off grows: {times}")
        # The same back-off holds for the tunnel's own upgrade: the source is one.
        ctx = ssl.create_default_context(cafile=self.ca)
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                t0 = time.monotonic()
                t.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n\r\n")
                head = t.recv(200)
                took = time.monotonic() - t0
        self.assertTrue(head.startswith(b"HTTP/1.1 401"), head)
        self.assertGreater(took, 1.0)
        # No token at all, another path, a POST: no status.
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", self.ca,
                            f"https://127.0.0.1:{self.control_port}/status"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.stdout, "401")
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", self.ca, "-X", "POST",
                            "-H", f"Authorization: Bearer {TOKEN}", f"https://127.0.0.1:{self.control_port}/status"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.stdout, "404")
        self.assertTrue(self.cli.alive() and self.srv.alive())
        print(f"wrong token: exit 4 with 401 after {', '.join(f'{t:.2f}' for t in times)} s; no token 401, POST 404")

    def test_tls_checks_before_the_token(self):
        """A TLS server of the test's own with a certificate of another CA: inletsctl refuses it
        with --tls-ca (the exit server's CA) and with a pin of the real certificate, and no byte
        of the request (with the token) reaches it."""
        key, crt = f"{self.tmp}/evil.key", f"{self.tmp}/evil.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        port = free_port()
        got = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        ls = socket.create_server(("127.0.0.1", port))
        ls.settimeout(20)

        def serve():
            for _ in range(2):
                try:
                    c, _ = ls.accept()
                except OSError:
                    return
                try:
                    with ctx.wrap_socket(c, server_side=True) as t:
                        t.settimeout(5)
                        got.append(t.recv(1000))
                except (ssl.SSLError, OSError):
                    got.append(b"")
        th = threading.Thread(target=serve)
        th.start()
        try:
            for extra in (("--tls-ca", self.ca), ("--fingerprint", fingerprint(f"{self.tmp}/state/server.crt"))):
                r = self.ctl("status", "--url", f"wss://127.0.0.1:{port}", "--token-file", self.token_file, *extra)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn("TLS handshake failed", r.stderr)
        finally:
            th.join(30)
            ls.close()
        self.assertTrue(all(TOKEN.encode() not in g for g in got), got)
        self.assertEqual(b"".join(got), b"", "nothing was written after a refused handshake")
        # Usage errors: both checks, a bad pin, no token file.
        r = self.remote("--tls-ca", self.ca, "--fingerprint", "sha256:" + "0" * 64)
        self.assertEqual(r.returncode, 2)
        r = self.remote("--fingerprint", "md5:00")
        self.assertEqual(r.returncode, 2)
        r = self.ctl("status", "--url", f"wss://127.0.0.1:{self.control_port}")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--token-file", r.stderr)
        print("a foreign TLS server: refused by CA file and by pin, nothing written; usage errors exit 2")

    def test_hostile_server_answers(self):
        """A server that passes the TLS check (the test's own, its certificate given as --tls-ca)
        but answers badly: escape sequences in its strings reach the terminal as '?', an endless
        answer stops at 16 MiB, members of the wrong type and non-JSON are refused; inletsctl
        never crashes or hangs."""
        key, crt = f"{self.tmp}/own.key", f"{self.tmp}/own.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:TRUE"],
                       check=True, capture_output=True)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        esc = "\u001b[2J\u001b]0;pwned\u0007\u009b31m\u202eevil"
        good = json.dumps([{"name": "x" + esc, "role": "server", "mode": "tcp", "state": "listening",
                            "config_file": "/c", "clients": [{"id": esc, "address": "a"}], "last_error": esc}])
        bomb = b"[" + b"{}," * (5 << 20) + b"{}]"
        raw = b'[{"name":"a\x9b31m","role":"s","mode":"t","state":"x"}]'
        answers = [
            ("escapes", b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
             % len(good.encode()) + good.encode(), None),
            ("endless", b"HTTP/1.1 200 OK\r\n\r\n[" + b" " * (1 << 20), 64),
            ("wrong type", b'HTTP/1.1 200 OK\r\n\r\n[{"name":1,"role":"s","mode":"t","state":"x"}]', None),
            ("raw 8-bit", b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s' % (len(raw), raw), None),
            ("object bomb", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(bomb), bomb), None),
            ("dribble", b"HTTP/1.1 200 OK\r\n", "dribble"),
            ("not JSON", b"HTTP/1.1 200 OK\r\n\r\n<html>", None),
            ("not HTTP", b"SSH-2.0-OpenSSH\r\n", None),
        ]
        for what, answer, repeat in answers:
            port = free_port()
            ls = socket.create_server(("127.0.0.1", port))
            ls.settimeout(20)

            def serve():
                try:
                    c, _ = ls.accept()
                    with ctx.wrap_socket(c, server_side=True) as t:
                        t.settimeout(20)
                        t.recv(4096)
                        t.sendall(answer)
                        if repeat == "dribble":  # one byte a record, never a blank line
                            end = time.monotonic() + 25
                            while time.monotonic() < end:
                                t.sendall(b"x")
                        else:
                            for _ in range(repeat or 0):
                                t.sendall(b" " * (1 << 20))
                except (ssl.SSLError, OSError):
                    pass
            th = threading.Thread(target=serve)
            th.start()
            t0 = time.monotonic()
            r = self.ctl("status", "--url", f"wss://127.0.0.1:{port}", "--token-file", self.token_file,
                         "--tls-ca", crt)
            took = time.monotonic() - t0
            th.join(30)
            ls.close()
            out = r.stdout + r.stderr
            for bad in ("\x1b", "\x07", "\x9b", "\u009b", "\u202e"):
                self.assertNotIn(bad, out, what)
            self.assertLess(took, 16.5, what)
            if what in ("escapes", "raw 8-bit"):
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertNotIn("(null)", r.stdout)
                if what == "escapes":
                    self.assertIn("x?[2J?]0;pwned???31m???evil", r.stdout)
            else:
                self.assertEqual(r.returncode, 1, (what, r.stdout, r.stderr))
                if what == "endless":
                    self.assertIn("larger than 16 MiB", r.stderr)
                if what == "object bomb":
                    self.assertIn("more than 100000 objects", r.stderr)
                if what == "dribble":
                    self.assertIn("No answer within 15 s", r.stderr)
        print("a hostile server: C0, C1, bidi and non-UTF-8 bytes printed as '?', 16 MiB cap, an object bomb, a "
              "dribble past the deadline, wrong types, non-JSON and non-HTTP refused")


if __name__ == "__main__":
    main()

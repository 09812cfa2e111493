#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""ACME (issue #11) against Debian's pebble on loopback, with its own CA and pebble-challtestsrv
as the DNS server that sends the validation to our HTTP port: issuance over HTTP-01, the
certificate served on HTTPS (HTTP/1.1 and h2) and verified with pebble's root, plain HTTP
redirected except for challenges, D-Bus properties and inletsctl status, renewal on demand
without dropping an open connection, a restart that reuses the stored certificate without
contacting the CA, and a CA that refuses (rate limit, then unreachable) leaving the old
certificate in service with the CA's reason in LastError."""

import json
import os
import signal
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from acme_ca import Pebble, https_get, run
from http_upstream import HttpUpstream
from inletstest import INLETSCTL, Daemon, TunnelTest, free_port, main, port_open, wait_until

DOMAINS = ["app.inlets.test", "www.inlets.test"]


class RefusingCA:
    """A CA that says no: the directory, nonces and the account work; a new order is refused
    with a rateLimited problem and Retry-After, as Let's Encrypt does."""

    def __init__(self, cert, key):
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, status, body=b"", ctype="application/json", extra=()):
                self.send_response(status)
                self.send_header("Replay-Nonce", f"nonce{time.monotonic_ns()}")
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in extra:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self):
                self.reply(200)

            def do_GET(self):
                base = f"https://127.0.0.1:{outer.port}"
                self.reply(200, json.dumps({"newNonce": base + "/nonce", "newAccount": base + "/acct",
                                            "newOrder": base + "/order"}).encode())

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.posts.append(self.path)
                if self.path == "/acct":
                    self.reply(200, b'{"status":"valid"}', extra=[("Location", "https://127.0.0.1/acct/1")])
                else:
                    self.reply(429, json.dumps({
                        "type": "urn:ietf:params:acme:error:rateLimited",
                        "detail": "too many certificates already issued for inlets.test"}).encode(),
                        "application/problem+json", [("Retry-After", "120")])

        self.posts = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Acme(TunnelTest):
    @classmethod
    def setUpClass(cls):
        cls.ptmp = subprocess.check_output(["mktemp", "-d", "/tmp/inletsd-pebble.XXXXXX"], text=True).strip()
        cls.http_port = free_port()
        cls.pebble = Pebble(cls.ptmp, cls.http_port)
        # A private session bus: the daemon runs with --user, inletsctl --user talks to it.
        try:
            out = subprocess.check_output(["dbus-daemon", "--session", "--fork", "--print-address=1",
                                           "--print-pid=1", f"--address=unix:path={cls.ptmp}/bus"], text=True).split()
        except BaseException:   # tearDownClass does not run when setUpClass fails
            cls.pebble.close()
            raise
        cls.bus_addr, cls.bus_pid = out[0], int(out[1])
        cls.env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=cls.bus_addr)

    @classmethod
    def tearDownClass(cls):
        cls.pebble.close()
        os.kill(cls.bus_pid, signal.SIGTERM)
        subprocess.run(["rm", "-rf", cls.ptmp])

    def start_server(self, directory=None, extra=""):
        self.https_port = free_port()
        conf = (f"[Tunnel]\nRole=server\nMode=http\nTokenFile={self.token_file}\nKeepaliveSec=3\n\n"
                f"[Server]\nControlListen=127.0.0.1:{self.control_port}\nHTTPListen=127.0.0.1:{self.http_port}\n"
                f"HTTPSListen=127.0.0.1:{self.https_port}\nStateDirectory={self.tmp}/state\nAutoTLSSAN=127.0.0.1\n"
                f"ACMEDomain={' '.join(DOMAINS)}\nACMEEmail=admin@inlets.test\n"
                f"ACMEDirectory={directory or self.pebble.directory()}\nACMECAFile={self.pebble.cert}\n{extra}")
        d = Daemon(self.tmp, "server", conf, args=("--user",), env=self.env)
        self.daemons.append(d)
        d.start()
        wait_until(lambda: port_open(self.control_port) and port_open(self.https_port), 10, "server ports")
        return d

    def start_client(self):
        up = HttpUpstream("app")
        self.upstreams.append(up)
        conf = (f"[Tunnel]\nRole=client\nMode=http\nTokenFile={self.token_file}\n\n"
                f"[Client]\nURL=wss://127.0.0.1:{self.control_port}\nCAFile={self.tmp}/state/ca.crt\n"
                f"Upstream={up.url()}\nReconnectMaxDelaySec=2\n")
        d = Daemon(self.tmp, "client", conf)
        self.daemons.append(d)
        d.start()
        d.wait_log("Connection established")
        return d

    def ctl(self, *args):
        return run([INLETSCTL, "--user", *args], env=self.env)

    def prop(self, name, sig):
        r = run(["busctl", "--user", "--json=short", "get-property", "io.inletsd.Tunnel.server",
                 "/io/inletsd/Tunnel", "io.inletsd.Tunnel1", name], env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        v = json.loads(r.stdout)
        self.assertEqual(v["type"], sig)
        return v["data"]

    def issue(self):
        self.control_port = free_port()
        s = self.start_server()
        s.wait_log("ACME: new certificate", 90)
        return s

    def test_issue_serve_renew_restart(self):
        before = self.pebble.requests()
        s = self.issue()
        self.assertGreater(self.pebble.requests(), before)
        self.start_client()
        root = self.pebble.root

        # HTTPS: pebble's chain verifies for both names, HTTP/1.1 and h2
        for host in DOMAINS:
            status, body, fp1, sock = https_get(self.https_port, root, host)
            sock.close()
            self.assertEqual((status, body), (200, b"hello from app\n"))
        r = run(["curl", "-sS", "--http2", "--cacert", root, "--resolve", f"www.inlets.test:{self.https_port}:127.0.0.1",
                 "-w", "\n%{http_version}", f"https://www.inlets.test:{self.https_port}/hello"])
        self.assertEqual(r.stdout, "hello from app\n\n2", r.stderr)
        # plain HTTP: challenges answered, the rest redirected to HTTPS
        r = run(["curl", "-sS", "-D", "-", "-H", "Host: app.inlets.test",
                 f"http://127.0.0.1:{self.http_port}/a/b?c=1"])
        self.assertIn("HTTP/1.1 308", r.stdout)
        self.assertIn(f"Location: https://app.inlets.test:{self.https_port}/a/b?c=1\n", r.stdout)
        thumbs = set()
        for token in ("abc_DEF-123", "x" * 43):
            r = run(["curl", "-sS", "-f", "-H", "Host: app.inlets.test",
                     f"http://127.0.0.1:{self.http_port}/.well-known/acme-challenge/{token}"])
            self.assertEqual(r.returncode, 0, r.stderr)
            t, _, thumb = r.stdout.partition(".")
            self.assertEqual(t, token)
            thumbs.add(thumb)
        self.assertEqual(len(thumbs), 1)
        self.assertEqual(len(thumbs.pop()), 43)  # base64url of a SHA-256
        r = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: app.inlets.test",
                 f"http://127.0.0.1:{self.http_port}/.well-known/acme-challenge/bad%2Ftoken"])
        self.assertEqual(r.stdout, "404")
        # keys stay private
        for f in ("account.key", "key.pem"):
            self.assertEqual(os.stat(f"{self.tmp}/state/acme/{f}").st_mode & 0o777, 0o600, f)
        # the bus and inletsctl status show the certificate, and no secret
        self.assertEqual(sorted(self.prop("CertificateNames", "as")), DOMAINS)
        not_after = self.prop("CertificateNotAfter", "t")
        self.assertGreater(not_after, time.time() * 1e6 + 300 * 86400e6)  # pebble issues for years
        self.assertLess(self.prop("CertificateRenewAt", "t"), not_after)
        r = self.ctl("status", "server")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Cert: app.inlets.test www.inlets.test; expires ", r.stdout)
        r = self.ctl("--json", "status", "server")
        self.assertEqual(sorted(json.loads(r.stdout)[0]["certificate"]["names"]), DOMAINS)
        with open(f"{self.tmp}/state/acme/key.pem") as f:
            key = f.read().split("\n")[1]
        self.assertNotIn(key, r.stdout + s.output())

        # renewal on demand: new connections get the new certificate, an open one carries on
        status, _, fp_old, kept = https_get(self.https_port, root, "app.inlets.test")
        r = self.ctl("renew", "server")
        self.assertEqual(r.returncode, 0, r.stderr)
        r2 = self.ctl("renew", "server")  # while one runs
        self.assertNotEqual(r2.returncode, 0)
        self.assertIn("already in progress", r2.stderr)
        wait_until(lambda: s.output().count("ACME: new certificate") == 2, 90, "the renewed certificate")
        status, body, fp_new, sock = https_get(self.https_port, root, "app.inlets.test")
        sock.close()
        self.assertEqual(status, 200)
        self.assertNotEqual(fp_new, fp_old)
        status, body, fp_kept, _ = https_get(self.https_port, root, "app.inlets.test", sock=kept)
        kept.close()
        self.assertEqual((status, body, fp_kept), (200, b"hello from app\n", fp_old))
        print(f"renewed: {fp_old[:16]} -> {fp_new[:16]}; the open connection kept working")

        # a restart serves the stored certificate and does not contact the CA
        self.assertEqual(s.stop(), 0)
        n = self.pebble.requests()
        s2 = self.start_server()
        s2.wait_log("ACME: stored certificate")
        time.sleep(1)
        _, _, fp_restart, sock = https_get(self.https_port, root, "www.inlets.test")
        sock.close()
        self.assertEqual(fp_restart, fp_new)
        self.assertEqual(self.pebble.requests(), n)
        self.assertNotIn("asking", s2.output().split("ACME: stored certificate")[1])

    def test_refusing_ca_keeps_the_old_certificate(self):
        s = self.issue()
        _, _, fp, sock = https_get(self.https_port, self.pebble.root, "app.inlets.test", "/")
        sock.close()
        ca = RefusingCA(self.pebble.cert, f"{self.ptmp}/pebble-key.pem")
        try:
            # The same definition, now pointing at a CA that refuses: the stored certificate
            # (from another CA) is replaced at once, which fails; it stays in service.
            with open(s.path) as f:
                conf = f.read()
            conf = conf.replace(self.pebble.directory(), f"https://127.0.0.1:{ca.port}/dir")
            with open(s.path, "w") as f:
                f.write(conf)
            s.proc.send_signal(signal.SIGHUP)
            s.wait_log("ACME: no certificate", 60)
            self.assertIn("/order", ca.posts)
            err = self.prop("LastError", "s")
            self.assertIn("rateLimited: too many certificates already issued for inlets.test", err)
            self.assertIn("retry after 120 s", err)
            self.assertIn("The current certificate stays in service; next attempt in 120 s", s.output())
            r = self.ctl("status", "server")
            self.assertIn("LastError: ACME: ", r.stdout)
            self.assertIn("Cert: app.inlets.test", r.stdout)
            _, _, fp2, sock = https_get(self.https_port, self.pebble.root, "app.inlets.test", "/")
            sock.close()
            self.assertEqual(fp2, fp)
        finally:
            ca.close()
        # the CA unreachable: a clear error, the certificate still served
        r = self.ctl("renew", "server")
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_until(lambda: s.output().count("ACME: no certificate") == 2, 60, "the second failure")
        self.assertRegex(self.prop("LastError", "s"), r"ACME: GET https://127.0.0.1:\d+/dir: (Couldn't|Could not) connect")
        _, _, fp3, sock = https_get(self.https_port, self.pebble.root, "www.inlets.test", "/")
        sock.close()
        self.assertEqual(fp3, fp)
        self.assertTrue(s.alive())

    def test_definition_errors(self):
        cases = [
            ("Mode=http\n", "ACMEDomain=*.inlets.test\n", "conf:8: Invalid ACMEDomain= value '*.inlets.test': "
             "wildcard names need the DNS-01 challenge"),
            ("Mode=http\n", "ACMEDomain=localhost\n", "expected DNS names"),
            ("Mode=http\n", "ACMEDomain=a.test\nACMEEmail=nobody\n", "expected an e-mail address"),
            ("Mode=http\n", "ACMEDomain=a.test\nACMEDirectory=http://ca.test/dir\n", "expected production, staging or "
             "an https:// ACME directory URL"),
            ("Mode=tcp\n", "ACMEDomain=a.test\n", "ACMEDomain= needs Mode=http"),
            ("Mode=http\n", "ACMEDomain=a.test\nHTTPSCertificateFile=/x\nHTTPSKeyFile=/y\n",
             "ACMEDomain= and HTTPSCertificateFile= exclude each other"),
        ]
        for i, (mode, server, want) in enumerate(cases):
            path = f"{self.tmp}/bad{i}.conf"
            with open(path, "w") as f:
                f.write(f"[Tunnel]\nRole=server\n{mode}TokenFile={self.token_file}\n\n[Server]\n"
                        f"StateDirectory={self.tmp}/state\n{server}")
            r = run([INLETSCTL, "check", path])
            self.assertEqual(r.returncode, 1, path)
            self.assertIn(want, r.stdout + r.stderr)
        # defaults: HTTP on 80, HTTPS on 443, Let's Encrypt production; staging by name
        path = f"{self.tmp}/good.conf"
        with open(path, "w") as f:
            f.write(f"[Tunnel]\nRole=server\nMode=http\nTokenFile={self.token_file}\n\n[Server]\n"
                    f"StateDirectory={self.tmp}/state\nACMEDomain=a.test b.test\n")
        r = run([INLETSCTL, "check", path])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = run(["sh", "-c", f'"$0" http server --letsencrypt-domain a.test --letsencrypt-domain b.test '
                 f'--letsencrypt-issuer staging --letsencrypt-email me@a.test --token-file {self.token_file} '
                 f'--generate=config', os.environ["INLETSD"]])
        self.assertEqual(r.returncode, 0, r.stderr)
        for line in ("HTTPListen=0.0.0.0:80", "HTTPSListen=0.0.0.0:443", "ACMEDomain=a.test", "ACMEDomain=b.test",
                     "ACMEEmail=me@a.test",
                     "ACMEDirectory=https://acme-staging-v02.api.letsencrypt.org/directory"):
            self.assertIn(line + "\n", r.stdout)


if __name__ == "__main__":
    main()

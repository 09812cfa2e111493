#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The tunnel client through an HTTP proxy (Proxy=, https_proxy/no_proxy): HTTP CONNECT, then
TLS and the upgrade through it. A proxy of the test's own on loopback checks what the client
sends (the CONNECT line, Basic credentials from ProxyPasswordFile=) and plays every faulty or
hostile proxy (407, 403, an endless head, bytes after the answer, a silent one, one that
closes); squid (Debian's) is the only way out of a network namespace that has no other route
to the exit server, with and without proxy authentication, and the tunnel survives its
restart."""

import base64
import os
import socket
import subprocess
import threading
import time
import unittest

from inletstest import INLETSD, TunnelTest, echo_roundtrip, free_port, main, port_open, wait_until
from netns import ECHO, PY, NetnsPairTest, read, sh, usable

SECRET = "pr0xy-s3cret@pass"


class FakeProxy:
    """An HTTP proxy on loopback. mode: relay (CONNECT to where it asks, Basic auth if creds),
    407, 403, endless, close, trailing, escapes, silent."""

    def __init__(self, mode="relay", creds=None):
        self.mode, self.creds = mode, creds
        self.heads = []
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.stop = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stop:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    @staticmethod
    def pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def serve(self, c):
        head = b""
        c.settimeout(30)
        try:
            while b"\r\n\r\n" not in head:
                d = c.recv(4096)
                if not d:
                    return
                head += d
            self.heads.append(head.decode(errors="replace"))
            m = self.mode
            if m == "close":
                return c.close()
            if m == "silent":
                time.sleep(20)
                return c.close()
            if m == "403":
                c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return c.close()
            if m == "escapes":
                c.sendall(b"HTTP/1.1 502 \x1b[31mred\x07\r\n\r\n")
                return c.close()
            if m == "endless":
                c.sendall(b"HTTP/1.1 200 OK\r\n")
                while not self.stop:
                    c.sendall(b"X-Pad: " + b"a" * 1000 + b"\r\n")
                return c.close()
            auth = [ln for ln in head.decode().split("\r\n") if ln.lower().startswith("proxy-authorization:")]
            if self.creds and (not auth or auth[0].split(None, 2)[2] != base64.b64encode(self.creds.encode()).decode()):
                c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                          b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
                return c.close()
            target = head.split(b" ")[1].decode()
            host, port = target.rsplit(":", 1)
            up = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
            up.settimeout(None)
            c.settimeout(None)
            if m == "trailing":
                c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\nEXTRA")
                up.close()
                return c.close()
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            t = threading.Thread(target=self.pipe, args=(up, c), daemon=True)
            t.start()
            self.pipe(c, up)
            t.join(5)
            up.close()
        except OSError:
            pass
        c.close()

    def close(self):
        self.stop = True
        self.srv.close()


class ProxyTest(TunnelTest):
    def proxy(self, mode="relay", creds=None):
        p = FakeProxy(mode, creds)
        self.upstreams.append(p)
        return p

    def test_connect_with_credentials(self):
        """Proxy=http://USER@HOST:PORT with ProxyPasswordFile=: one CONNECT naming the exit
        server, Basic credentials from the file, bytes through; the password in no log. A wrong
        password: 407 named, retried with back-off; the right one again: connected."""
        px = self.proxy(creds=f"tunnel-user:{SECRET}")
        pw = os.path.join(self.tmp, "proxy-password")
        with open(pw, "w") as f:
            f.write(SECRET + "\n")
        echo = self.echo()
        pub = free_port()
        self.server()
        cli = self.client(f"{pub}:{echo.port}",
                          extra_client=f"Proxy=http://tunnel-user@127.0.0.1:{px.port}\nProxyPasswordFile={pw}\n"
                                       "ReconnectMaxDelaySec=1\n")
        wait_until(lambda: port_open(pub), 10, "public port")
        self.assertEqual(echo_roundtrip(pub, b"through the proxy"), b"through the proxy")
        self.assertEqual(px.heads[0].split("\r\n")[0], f"CONNECT 127.0.0.1:{self.control_port} HTTP/1.1")
        self.assertIn(f"Host: 127.0.0.1:{self.control_port}\r\n", px.heads[0])
        self.assertIn(f"through proxy 127.0.0.1:{px.port} (Proxy=)", cli.output())
        # A wrong password: the proxy's 407 named, tried again and again.
        with open(pw, "w") as f:
            f.write("wrong\n")
        cli.reload("ReconnectMaxDelaySec=1\n", "ReconnectMaxDelaySec=1\nClientID=again\n")
        wait_until(lambda: cli.output().count("refused the credentials of its user (407)") >= 2, 15, "407 twice")
        with open(pw, "w") as f:
            f.write(SECRET + "\n")
        cli.reload("ClientID=again\n", "ClientID=third\n")
        wait_until(lambda: cli.output().count("Connection established") >= 2, 15, "connected again")
        wait_until(lambda: port_open(pub), 10, "public port again")
        self.assertEqual(echo_roundtrip(pub, b"again"), b"again")
        self.assertNotIn(SECRET, cli.output())
        self.assertNotIn(base64.b64encode(f"tunnel-user:{SECRET}".encode()).decode(), cli.output())
        print(f"through the proxy: CONNECT with Basic credentials from the file; 407 named and retried; "
              f"{len(px.heads)} CONNECTs")

    def test_inline_credentials_percent_decoded(self):
        """Proxy=http://USER:PASS@HOST:PORT with %XX in the password."""
        px = self.proxy(creds="u:p@ss:w/rd")
        echo = self.echo()
        pub = free_port()
        self.server()
        self.client(f"{pub}:{echo.port}", extra_client=f"Proxy=http://u:p%40ss%3aw%2Frd@127.0.0.1:{px.port}/\n")
        wait_until(lambda: port_open(pub), 10, "public port")
        self.assertEqual(echo_roundtrip(pub, b"inline"), b"inline")

    def test_environment(self):
        """Without Proxy=: https_proxy for wss:// (named in the log); no_proxy naming the exit
        server (a prefix here) goes direct; Proxy=none ignores the environment."""
        px = self.proxy()
        echo = self.echo()
        self.server()
        env = {"https_proxy": f"http://127.0.0.1:{px.port}", "no_proxy": ""}
        p1 = free_port()
        c1 = self.client(f"{p1}:{echo.port}", name="c1", env=env)
        self.assertIn(f"through proxy 127.0.0.1:{px.port} (https_proxy)", c1.output())
        wait_until(lambda: port_open(p1), 10, "p1")
        self.assertEqual(echo_roundtrip(p1, b"env"), b"env")
        n = len(px.heads)
        p2, p3 = free_port(), free_port()
        c2 = self.client(f"{p2}:{echo.port}", name="c2", env=dict(env, no_proxy="example.com, 127.0.0.0/8"))
        c3 = self.client(f"{p3}:{echo.port}", name="c3", env=env, extra_client="Proxy=none\n")
        for c in (c2, c3):
            self.assertNotIn("through proxy", c.output())
        self.assertEqual(len(px.heads), n, "no_proxy and Proxy=none went direct")

    def test_hostile_proxies(self):
        """Each faulty proxy: a clear error naming it, the usual back-off, the daemon alive
        and its loop answering."""
        cases = {
            "407": "wants credentials",
            "403": "refused CONNECT to 127.0.0.1",
            "endless": "answered CONNECT with a head larger than 8192 bytes",
            "close": "closed the connection before answering CONNECT",
            "trailing": "sent bytes after its answer to CONNECT",
            "escapes": "HTTP/1.1 502 ?[31mred?",
            "silent": "Timed out waiting for proxy 127.0.0.1 to answer CONNECT",
        }
        self.server()
        for mode, text in cases.items():
            px = self.proxy("407" if mode == "407" else mode, creds="a:b" if mode == "407" else None)
            mport = free_port()
            cli = self.client(f"{free_port()}:{free_port()}", name=f"c-{mode}", wait=False,
                              extra_client=f"Proxy=http://127.0.0.1:{px.port}\nReconnectMaxDelaySec=1\n",
                              extra_tunnel=f"HandshakeTimeoutSec=1\nMetricsListen=127.0.0.1:{mport}\n")
            wait_until(lambda: cli.output().count(text) >= 2, 20, f"{mode}: {text!r} twice")
            t0 = time.monotonic()
            with socket.create_connection(("127.0.0.1", mport), timeout=5) as s:
                s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                self.assertIn(b"200", s.recv(100))
            self.assertLess(time.monotonic() - t0, 0.5)
            self.assertTrue(cli.alive())
            cli.stop()
            px.close()
        print(f"{len(cases)} faulty proxies: each named in the log, retried, the loop answering")

    def test_bad_configuration(self):
        """Bad proxy URLs: file:line and the reason, never the password; a bad https_proxy
        names the variable and Proxy=none."""
        cases = [
            ("Proxy=socks5://127.0.0.1:1080\n", {}, "only an http:// proxy is supported"),
            ("Proxy=https://127.0.0.1:3128\n", {}, "only an http:// proxy is supported"),
            ("Proxy=http://u:sec%ZZret@127.0.0.1:3128\n", {}, "user name or password of the proxy URL"),
            ("Proxy=http://u:x%0d%0aInjected: 1@127.0.0.1:3128\n", {}, "user name or password of the proxy URL"),
            ("Proxy=http://127.0.0.1:99999\n", {}, "expected [http://][USER[:PASSWORD]@]HOST[:PORT] or none"),
            ("Proxy=http://127.0.0.1:3128/path\n", {}, "expected [http://]"),
            ("ProxyPasswordFile=/nonexistent\nProxy=http://127.0.0.1:3128\n", {}, "needs a user name"),
            ("", {"https_proxy": "ftp://secretuser:secretpw@x"}, "the proxy from https_proxy is not valid"),
            ("Proxy=http://u@127.0.0.1:3128\nProxyPasswordFile=/nonexistent/pw\n", {},
             "cannot read the proxy password file /nonexistent/pw"),
        ]
        for extra, env, text in cases:
            conf = (f"[Tunnel]\nRole=client\nTokenFile={self.token_file}\n[Client]\nURL=wss://127.0.0.1:9\n"
                    f"Ports=1234\n{extra}")
            path = os.path.join(self.tmp, "bad.conf")
            with open(path, "w") as f:
                f.write(conf)
            r = subprocess.run([INLETSD, "--config", path, "--no-bus"], capture_output=True, text=True, timeout=10,
                               env=dict(os.environ, **env))
            out = r.stdout + r.stderr
            self.assertNotEqual(r.returncode, 0, extra)
            self.assertIn(text, out, extra)
            self.assertNotIn("sec%ZZret", out)
            self.assertNotIn("secretpw", out)
            if extra.startswith("Proxy=socks5"):
                self.assertIn("bad.conf:7: Invalid Proxy= value", out)


SKIP = usable("/usr/sbin/squid")


@unittest.skipIf(SKIP, SKIP or "")
class Squid(NetnsPairTest):
    """The client's namespace reaches only squid (on the veth); the exit server listens on its
    own namespace's loopback, which only squid can reach."""
    SRV_IP, CLI_IP = "10.231.9.1", "10.231.9.2"
    PREFIX = "px"

    def setUp(self):
        super().setUp()
        self.sq = os.path.join(self.tmp, "squid")
        os.mkdir(self.sq)
        os.chmod(self.tmp, 0o755)
        os.chmod(self.sq, 0o777)  # squid drops to its own user for its logs

    def squid(self, auth):
        conf = [f"http_port {self.SRV_IP}:3128", f"pid_filename {self.sq}/squid.pid", f"cache_log {self.sq}/cache.log",
                f"access_log stdio:{self.sq}/access.log", "cache deny all", f"coredump_dir {self.sq}",
                "shutdown_lifetime 0 seconds", "acl CONNECT method CONNECT"]
        if auth:
            sh("htpasswd", "-b", "-c", "-B", f"{self.sq}/users", "tunnel", SECRET)
            os.chmod(f"{self.sq}/users", 0o644)
            conf += [f"auth_param basic program /usr/lib/squid/basic_ncsa_auth {self.sq}/users",
                     "auth_param basic realm inletsd-test", "acl users proxy_auth REQUIRED",
                     "http_access allow CONNECT users"]
        else:
            conf += ["http_access allow CONNECT"]
        conf += ["http_access deny all"]
        with open(f"{self.sq}/squid.conf", "w") as f:
            f.write("\n".join(conf) + "\n")
        p = self.in_ns(self.ns_s, "/usr/sbin/squid", "-N", "-f", f"{self.sq}/squid.conf", log=f"{self.sq}/out")
        wait_until(lambda: self.listening(self.ns_s, 3128), 15, "squid")
        return p

    def run_through_squid(self, auth):
        sq = self.squid(auth)
        cred = f"tunnel@{self.SRV_IP}" if auth else self.SRV_IP
        with open(f"{self.tmp}/s.conf", "w") as f:
            f.write(f"[Tunnel]\nRole=server\nTokenFile={self.token_file}\nKeepaliveSec=3\n[Server]\n"
                    f"ControlListen=127.0.0.1:8123\nDataListen=127.0.0.1\nStateDirectory={self.tmp}/state\n")
        with open(f"{self.tmp}/pw", "w") as f:
            f.write(SECRET)
        with open(f"{self.tmp}/c.conf", "w") as f:
            f.write(f"[Tunnel]\nRole=client\nTokenFile={self.token_file}\nKeepaliveSec=3\n[Client]\n"
                    f"URL=wss://127.0.0.1:8123\nCAFile={self.tmp}/state/ca.crt\nUpstream=127.0.0.1\n"
                    f"Ports=9000:7007\nReconnectMaxDelaySec=1\nProxy=http://{cred}:3128\n"
                    + (f"ProxyPasswordFile={self.tmp}/pw\n" if auth else ""))
        clog = f"{self.tmp}/c.log"
        self.in_ns(self.ns_c, PY, "-c", ECHO)
        self.in_ns(self.ns_s, INLETSD, "--no-bus", "-v", "--config", f"{self.tmp}/s.conf", log=f"{self.tmp}/s.log")
        wait_until(lambda: os.path.exists(f"{self.tmp}/state/ca.crt"), 10, "server")
        # The client's namespace has no way to the exit server but squid.
        r = sh("ip", "netns", "exec", self.ns_c, PY, "-c",
               "import socket\ntry:\n socket.create_connection(('127.0.0.1', 8123), timeout=2); print('reached')\n"
               f"except OSError:\n print('no way')\ntry:\n socket.create_connection(('{self.SRV_IP}', 8123), timeout=2)"
               "; print('reached')\nexcept OSError:\n print('no way')")
        self.assertEqual(r.stdout.split(), ["no", "way", "no", "way"])
        self.in_ns(self.ns_c, INLETSD, "--no-bus", "-v", "--config", f"{self.tmp}/c.conf", log=clog)
        wait_until(lambda: "Connection established" in read(clog), 15, "client through squid")
        wait_until(lambda: self.listening(self.ns_s, 9000), 10, "public port")
        n, got, want = self.transfer(4 << 20, "127.0.0.1")
        self.assertEqual((n, got), (4 << 20, want))
        # squid restarts: the tunnel comes back through the new one.
        sq.terminate()
        sq.wait(10)
        wait_until(lambda: "lost" in read(clog) or "Connection to" in read(clog), 20, "the tunnel noticed")
        self.squid(auth)
        wait_until(lambda: read(clog).count("Connection established") >= 2, 30, "reconnected through squid")
        wait_until(lambda: self.listening(self.ns_s, 9000), 10, "public port again")
        n, got, want = self.transfer(4 << 20, "127.0.0.1")
        self.assertEqual((n, got), (4 << 20, want))
        access = read(f"{self.sq}/access.log")
        self.assertIn("CONNECT 127.0.0.1:8123", access)
        if auth:
            self.assertIn(" tunnel ", access)
        self.assertNotIn(SECRET, read(clog))
        return access.count("CONNECT")

    def test_squid_only_way_out(self):
        n = self.run_through_squid(auth=False)
        print(f"through squid (no auth): 4 MiB each way before and after squid's restart; squid logged {n} "
              "finished CONNECT tunnel(s)")

    def test_squid_with_auth(self):
        n = self.run_through_squid(auth=True)
        print(f"through squid (basic auth): 4 MiB each way before and after squid's restart; squid logged {n} "
              "finished CONNECT tunnel(s)")


if __name__ == "__main__":
    main()

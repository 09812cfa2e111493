#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Allow and deny lists on the exit server (AllowFrom=, DenyFrom=, ControlAllowFrom=), with
real peers on loopback: 127.0.0.2, 127.0.0.3 … are distinct sources. A refused TCP visitor sees
its connection closed with no byte and the upstream sees nothing; a refused HTTP request gets
403 on HTTP/1.1 and HTTP/2 and never reaches the upstream; the control port refuses before TLS;
a reload swaps the lists for new connections and leaves open ones alone; the Refused counters
(D-Bus, inletsctl status) have the exact numbers."""

import json
import ssl
import subprocess
import time

from http_upstream import HttpUpstream
from inletstest import INLETSCTL, Daemon, free_port, main, port_open, wait_until
from peers import BusTunnelTest
from visitors import curl, dial, h2_get, tcp_refused, tcp_roundtrip

BUS_NAME = "io.inletsd.Tunnel.srv"


def run(cmd, env, timeout=30):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


class Access(BusTunnelTest):

    def srv(self, extra_server, extra_tunnel=""):
        return self.server(extra_server=extra_server, extra_tunnel=extra_tunnel, name="srv", args=("--user",),
                           env=self.env)

    def refused(self):
        """The Refused property over D-Bus, checked against inletsctl status --json."""
        r = run(["busctl", "--user", "--json=short", "get-property", BUS_NAME, "/io/inletsd/Tunnel",
                 "io.inletsd.Tunnel1", "Refused"], self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        v = json.loads(r.stdout)
        self.assertEqual(v["type"], "a{st}")
        r = run([INLETSCTL, "--user", "--json", "status", "srv"], self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)[0]["refused"], v["data"])
        return v["data"]

    def status_text(self):
        r = run([INLETSCTL, "--user", "status", "srv"], self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def reload(self, d, old, new):
        """Rewrites one line of d's definition and reloads it with inletsctl."""
        with open(d.path) as f:
            conf = f.read()
        self.assertIn(old, conf)
        with open(d.path, "w") as f:
            f.write(conf.replace(old, new))
        n = d.output().count("Reloaded.")
        r = run([INLETSCTL, "--user", "reload", "srv"], self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        wait_until(lambda: d.output().count("Reloaded.") > n, 10, "the reload")

    def test_tcp_lists_and_port_scope(self):
        e1, e2 = self.echo(), self.echo()
        p1, p2 = free_port(), free_port()
        # 127.0.0.0/29 may come, but 127.0.0.3 (a more specific deny wins); port p2 only
        # 127.0.0.4 on top of that.
        d = self.srv(f"AllowFrom=127.0.0.0/29\nDenyFrom=127.0.0.3\nAllowFrom={p2}=127.0.0.4\n")
        # Listening once the client is in (no probe: one from 127.0.0.1 would be refused on p2).
        self.client(f"{p1}:{e1.port},{p2}:{e2.port}")
        base = e1.connections
        self.assertEqual(self.refused(), {"allow-list": 0, "control-allow-list": 0, "proxy-header": 0, "client-allow-list": 0})
        self.assertNotIn("Refused:", self.status_text())

        self.assertEqual(tcp_roundtrip("127.0.0.2", p1), b"hello through the tunnel")
        wait_until(lambda: e1.connections == base + 1, 5, "the upstream to see 127.0.0.2")
        self.assertEqual(tcp_refused("127.0.0.3", p1), b"", "127.0.0.3 is denied: no byte, closed")
        self.assertEqual(tcp_refused("127.0.0.9", p1), b"", "127.0.0.9 is outside the allow list")
        base2 = e2.connections
        self.assertEqual(tcp_refused("127.0.0.2", p2), b"", "port p2 takes only 127.0.0.4")
        self.assertEqual(tcp_roundtrip("127.0.0.4", p2), b"hello through the tunnel")
        self.assertEqual(tcp_roundtrip("127.0.0.4", p1), b"hello through the tunnel")
        time.sleep(0.5)
        self.assertEqual(e1.connections, base + 2, "no refused connection reached upstream 1")
        self.assertEqual(e2.connections, base2 + 1, "no refused connection reached upstream 2")
        self.assertEqual(self.refused(), {"allow-list": 3, "control-allow-list": 0, "proxy-header": 0, "client-allow-list": 0})
        self.assertIn("Refused: 3 (allow list)\n", self.status_text())
        wait_until(lambda: "refused 127.0.0.3:" in d.output(), 5, "the refusal in the log")
        self.assertIn(f"Port {p2}: refused 127.0.0.2:", d.output())
        print("TCP: 127.0.0.2 and .4 served, .3 (deny inside allow) and .9 closed with no byte, "
              "port scope refuses .2; upstreams saw only the allowed; Refused allow-list=3")

    def test_tcp_reload_swaps_lists(self):
        e = self.echo()
        p = free_port()
        d = self.srv("AllowFrom=127.0.0.1 127.0.0.2\n")
        self.client(f"{p}:{e.port}")
        wait_until(lambda: port_open(p), 10, "public port")
        held = dial("127.0.0.2", p)
        held.sendall(b"one")
        self.assertEqual(held.recv(3), b"one")
        self.assertEqual(tcp_refused("127.0.0.3", p), b"")

        self.reload(d, "AllowFrom=127.0.0.1 127.0.0.2\n", "AllowFrom=127.0.0.1 127.0.0.3\n")
        # The open connection from the now refused source carries on.
        held.sendall(b"two")
        self.assertEqual(held.recv(3), b"two")
        # New ones follow the new lists.
        n = e.connections
        self.assertEqual(tcp_refused("127.0.0.2", p), b"")
        self.assertEqual(tcp_roundtrip("127.0.0.3", p), b"hello through the tunnel")
        held.sendall(b"three")
        self.assertEqual(held.recv(5), b"three")
        held.close()
        time.sleep(0.3)
        self.assertEqual(e.connections, n + 1)
        self.assertEqual(self.refused(), {"allow-list": 2, "control-allow-list": 0, "proxy-header": 0, "client-allow-list": 0})
        print("reload: the open connection from 127.0.0.2 kept working, a new one was refused, "
              "127.0.0.3 now served; Refused allow-list=2")

    def test_http_lists_h1_and_h2(self):
        a, b = HttpUpstream("a"), HttpUpstream("b")
        self.upstreams += [a, b]
        http_port, https_port = free_port(), free_port()
        # Tunnel-wide: 127.0.0.9 denied; a.test only from 127.0.0.2.
        self.srv(f"HTTPListen=127.0.0.1:{http_port}\nHTTPSListen=127.0.0.1:{https_port}\n"
                 "DenyFrom=127.0.0.9\nAllowFrom=a.test=127.0.0.2\n", extra_tunnel="Mode=http\n")
        conf = (f"[Tunnel]\nRole=client\nMode=http\nTokenFile={self.token_file}\n[Client]\n"
                f"URL=wss://127.0.0.1:{self.control_port}\nCAFile={self.tmp}/state/ca.crt\n"
                f"Upstream=a.test={a.url()}\nUpstream=b.test={b.url()}\n")
        cli = Daemon(self.tmp, "client", conf)
        self.daemons.append(cli)
        cli.start()
        cli.wait_log("Connection established")
        wait_until(lambda: port_open(http_port) and port_open(https_port), 10, "HTTP ports")
        http, https = f"http://127.0.0.1:{http_port}/hello", f"https://127.0.0.1:{https_port}/hello"

        self.assertEqual(curl("127.0.0.2", http, "a.test"), (200, b"hello from a\n"))
        self.assertEqual(curl("127.0.0.2", https, "a.test"), (200, b"hello from a\n"))
        self.assertEqual(h2_get("127.0.0.2", https_port, "a.test"), (200, b"hello from a\n"))
        seen_a = len(a.requests)
        status, body = curl("127.0.0.3", http, "a.test")
        self.assertEqual(status, 403, body)
        self.assertIn(b"not allowed", body)
        self.assertEqual(curl("127.0.0.3", http, "A.Test:80")[0], 403, "the host is matched normalized")
        self.assertEqual(curl("127.0.0.3", http, "a.test.")[0], 403, "the trailing dot names the same host")
        self.assertEqual(curl("127.0.0.3", http, "a..test")[0], 400, "an empty label is no host name")
        self.assertEqual(curl("127.0.0.3", https, "a.test")[0], 403)
        status, body = h2_get("127.0.0.3", https_port, "a.test")
        self.assertEqual(status, 403, body)
        self.assertEqual(curl("127.0.0.3", http, "b.test"), (200, b"hello from b\n"))
        self.assertEqual(h2_get("127.0.0.3", https_port, "b.test"), (200, b"hello from b\n"))
        self.assertEqual(curl("127.0.0.9", http, "b.test")[0], 403, "tunnel-wide deny")
        self.assertEqual(h2_get("127.0.0.9", https_port, "b.test")[0], 403)
        # Refused before routing: a host nobody serves is 403 too, not 502.
        self.assertEqual(curl("127.0.0.9", http, "c.test")[0], 403)
        self.assertEqual(curl("127.0.0.3", http, "c.test")[0], 502)
        self.assertEqual(len(a.requests), seen_a, "no refused request reached upstream a")
        self.assertEqual(len(b.requests), 2)
        self.assertEqual(self.refused(), {"allow-list": 8, "control-allow-list": 0, "proxy-header": 0, "client-allow-list": 0})
        self.assertIn("Refused: 8 (allow list)\n", self.status_text())
        print("HTTP: a.test 200 from 127.0.0.2 (HTTP/1.1, HTTPS, h2), 403 from .3 on all three; b.test 200 "
              "from .3, 403 from .9 (tunnel-wide deny) on HTTP/1.1 and h2; a.test. 403, a..test 400; Refused allow-list=8")

    def test_control_allow_list(self):
        e = self.echo()
        p = free_port()
        d = self.srv("ControlAllowFrom=127.0.0.1\n")
        # A TLS client from 127.0.0.3 sees the connection closed before any handshake byte.
        s = dial("127.0.0.3", self.control_port)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with self.assertRaises(OSError):
            ctx.wrap_socket(s, server_hostname="127.0.0.1")
        s.close()
        self.assertEqual(tcp_refused("127.0.0.3", self.control_port), b"")
        # A tunnel client from 127.0.0.1 connects and serves.
        self.client(f"{p}:{e.port}")
        wait_until(lambda: port_open(p), 10, "public port")
        self.assertEqual(tcp_roundtrip("127.0.0.1", p), b"hello through the tunnel")
        self.assertEqual(self.refused(), {"allow-list": 0, "control-allow-list": 2, "proxy-header": 0, "client-allow-list": 0})
        wait_until(lambda: "Control port: refused 127.0.0.3:" in d.output(), 5, "the refusal in the log")

        # Reloaded to refuse 127.0.0.1 too: the running session is left alone, a second tunnel
        # client (which dials from 127.0.0.1) cannot get in.
        self.reload(d, "ControlAllowFrom=127.0.0.1\n", "ControlAllowFrom=127.0.0.2\n")
        self.assertEqual(tcp_roundtrip("127.0.0.1", p), b"hello through the tunnel")
        c2 = self.client(f"{free_port()}:{e.port}", name="client2", extra_client="ClientID=second", wait=False)
        c2.wait_log("Reconnecting in", timeout=15)
        self.assertNotIn("Connection established", c2.output())
        c2.stop()
        got = self.refused()
        self.assertEqual(got["allow-list"], 0)
        self.assertGreaterEqual(got["control-allow-list"], 3)
        self.assertIn(f"{got['control-allow-list']} (control port)", self.status_text())
        self.assertEqual(tcp_roundtrip("127.0.0.1", p), b"hello through the tunnel")
        print(f"control port: 127.0.0.3 closed before TLS, the client from 127.0.0.1 served; after a reload "
              f"a second client was refused ({got['control-allow-list'] - 2} tries) while the first kept serving")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""PROXY protocol from a trusted load balancer (AcceptProxyProtocol=), with real peers on
loopback: haproxy (source 127.0.0.2, send-proxy-v2 / send-proxy) in front of the exit server's
public port, HTTP port and control port; visitors from 127.0.0.3, .4, .5. The visitor named in
the header is what allow lists judge, what X-Forwarded-For carries and what the tunnel client's
own PROXY header to nginx says: nginx reports the visitor's own address and port through both
hops. A source outside the list never has a header parsed; a trusted one that sends a bad,
truncated, oversized or late header is closed, counted (Refused "proxy-header"), and never
blocks the loop; a forged X-Forwarded-For from an untrusted visitor is dropped."""

import socket
import struct
import threading
import time

from http_upstream import HttpUpstream
from inletstest import Daemon, free_port, main, port_open, wait_until
from peers import BusTunnelTest, Haproxy, Nginx
from visitors import curl, dial, h2_get, tcp_roundtrip

BUS_NAME = "io.inletsd.Tunnel.srv"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
LB = "127.0.0.2"


def v2(cmd_fam, payload, ver_cmd=0x21):
    return V2_SIG + bytes([ver_cmd, cmd_fam]) + struct.pack("!H", len(payload)) + payload


def v2_inet(src, sport, dst="127.0.0.1", dport=80, tlvs=b""):
    return v2(0x11, socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport) + tlvs)


def visit(src, port, request=b"GET / HTTP/1.0\r\nHost: test\r\n\r\n"):
    """From src: (the visitor's own address and port, everything that came back)."""
    s = dial(src, port, timeout=15)
    me = s.getsockname()
    try:
        s.sendall(request)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return me, out
            out += b
    finally:
        s.close()


class AcceptProxy(BusTunnelTest):
    def setUp(self):
        super().setUp()
        self.peers = []

    def tearDown(self):
        for p in self.peers:
            p.close()
        super().tearDown()

    def srv(self, extra_server, extra_tunnel=""):
        return self.server(extra_server=extra_server, extra_tunnel=extra_tunnel, name="srv", args=("--user",),
                           env=self.env)

    def refused(self):
        return self.status_json("srv")["refused"]

    def test_tcp_haproxy_v2_to_nginx_v1(self):
        """Visitor -> haproxy (PROXY v2) -> exit server -> tunnel client (PROXY v1) -> nginx: nginx
        names the visitor; allow lists judge the visitor, not the load balancer."""
        nginx = Nginx(self.tmp)
        self.peers.append(nginx)
        pub, lb_port = free_port(), free_port()
        srv = self.srv(f"AcceptProxyProtocol={LB}\nDenyFrom=127.0.0.4\n")
        self.client(f"{pub}:{nginx.pp_port}", extra_client="ProxyProtocol=v1\n")
        wait_until(lambda: port_open(pub), 10, "public port")
        self.peers.append(Haproxy(self.tmp, [(lb_port, pub, "v2")], source=LB))

        for src in ("127.0.0.3", "127.0.0.5"):
            me, out = visit(src, lb_port)
            body = out.partition(b"\r\n\r\n")[2].decode(errors="replace").strip()
            self.assertEqual(body, f"pp {me[0]}:{me[1]}", f"nginx should name the visitor {me}: {out!r}")
            print(f"through haproxy and the tunnel, nginx reports {body[3:]} = the visitor's own address")
        log_lines = srv.output()
        self.assertIn("127.0.0.3:", log_lines.replace("127.0.0.2:", ""), "the exit server logs the visitor")
        n = len(nginx.access_log().splitlines())
        me, out = visit("127.0.0.4", lb_port)
        self.assertEqual(out, b"", "DenyFrom= judges the visitor behind the load balancer")
        time.sleep(0.5)
        self.assertEqual(len(nginx.access_log().splitlines()), n, "nothing of a refused visitor reached nginx")
        # Straight to the public port from an untrusted source: no header is expected or read.
        me, out = visit("127.0.0.5", pub)
        self.assertIn(f"pp {me[0]}:{me[1]}".encode(), out)
        self.assertEqual(self.refused(), {"allow-list": 1, "control-allow-list": 0, "proxy-header": 0, "client-allow-list": 0})
        print("DenyFrom=127.0.0.4 refused .4 behind haproxy (nginx saw nothing); direct .5 needs no header")

    def test_hostile_headers_from_trusted_source(self):
        """What a trusted source sends is parsed strictly: bad headers close the connection and
        are counted; a slow drip neither blocks the loop nor outlives HandshakeTimeoutSec=."""
        echo = self.echo()
        pub = free_port()
        self.srv(f"AcceptProxyProtocol={LB} 127.0.0.6/32\n", extra_tunnel="HandshakeTimeoutSec=2\n")
        self.client(f"{pub}:{echo.port}")
        wait_until(lambda: port_open(pub), 10, "public port")

        good = {
            "v1": b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 80\r\n",
            "v1 UNKNOWN": b"PROXY UNKNOWN\r\n",
            "v2 with TLVs": v2_inet("198.51.100.7", 40000, tlvs=b"\x01\x00\x02h2\x04\x00\x00"),
            "v2 LOCAL": v2(0x00, b"", ver_cmd=0x20),
            "v2 UNIX": v2(0x31, b"/a".ljust(108, b"\0") + b"/b".ljust(108, b"\0")),
        }
        for what, header in good.items():
            self.assertEqual(tcp_roundtrip(LB, pub, header + b"payload"), b"payload", what)
        print(f"accepted and stripped: {', '.join(good)}; the data after each header arrived intact")

        bad = {
            "no header": b"GET / HTTP/1.0\r\n\r\n",
            "truncated v1": b"PROXY TCP4 198.51.100.7 127.0.0.1 40000",
            "v1 without CRLF": b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 80\n",
            "oversized v1": b"PROXY TCP4 " + b"1" * 200 + b"\r\n",
            "v1 port 65536": b"PROXY TCP4 198.51.100.7 127.0.0.1 65536 80\r\n",
            "wrong v2 signature": V2_SIG[:-1] + b"X" + b"\x21\x11\x00\x0c" + b"\0" * 12,
            "v2 version 1": v2(0x11, b"\0" * 12, ver_cmd=0x11),
            "v2 over 1024": V2_SIG + b"\x21\x11" + struct.pack("!H", 2000) + b"\0" * 2000,
            "v2 short address": v2(0x11, b"\0" * 8),
            "v2 TLV overrun": v2_inet("198.51.100.7", 1, tlvs=b"\x01\x00\x09ab"),
        }
        for what, header in bad.items():
            self.assertEqual(self.send_and_read(LB, pub, header), b"", what)
        wait_until(lambda: self.refused()["proxy-header"] == len(bad), 10, "the count of bad headers")
        print(f"closed without a byte: {', '.join(bad)}; Refused proxy-header={len(bad)}")

        # Slow drip: one byte every 50 ms, while others are served at once.
        header = good["v1"]
        result = {}

        def drip():
            s = dial(LB, pub)
            try:
                for i in range(len(header)):
                    s.sendall(header[i:i + 1])
                    time.sleep(0.03)
                s.sendall(b"dripped")
                s.shutdown(socket.SHUT_WR)
                out = b""
                while True:
                    b = s.recv(4096)
                    if not b:
                        break
                    out += b
                result["drip"] = out
            finally:
                s.close()

        t = threading.Thread(target=drip)
        t.start()
        t0 = time.monotonic()
        self.assertEqual(tcp_roundtrip("127.0.0.6", pub, good["v2 LOCAL"] + b"meanwhile"), b"meanwhile")
        self.assertLess(time.monotonic() - t0, 1.0, "a dripping header does not hold the loop")
        t.join(15)
        self.assertEqual(result.get("drip"), b"dripped")
        # A header that never completes is closed at HandshakeTimeoutSec=2.
        # (Closed with what it sent unread: the kernel answers with a reset.)
        t0 = time.monotonic()
        self.assertEqual(self.send_and_read(LB, pub, b"PROXY TCP4 198.51.100.7 "), b"")
        took = time.monotonic() - t0
        self.assertTrue(1.5 < took < 4, took)
        print(f"a dripped header ({len(header)} bytes over {len(header) * 0.03:.1f} s) worked while another "
              f"visitor was served at once; a stalled one closed after {took:.1f} s")

        # From a source outside the list a header is never parsed: it is the visitor's data.
        raw = good["v1"] + b"data"
        self.assertEqual(tcp_roundtrip("127.0.0.3", pub, raw), raw)
        self.assertEqual(self.refused()["proxy-header"], len(bad) + 1)
        print("from 127.0.0.3 (untrusted) the same header reached the upstream as data, unparsed")

    def send_and_read(self, src, port, data):
        s = dial(src, port, timeout=10)
        out = b""
        try:
            s.sendall(data)
            while True:
                b = s.recv(4096)
                if not b:
                    return out
                out += b
        except (ConnectionResetError, BrokenPipeError):
            return out
        except socket.timeout:
            return None
        finally:
            s.close()

    def test_http_forwarded_fields_and_h2(self):
        """HTTP mode behind haproxy: allow lists and X-Forwarded-For see the visitor, on HTTP/1.1
        and on HTTP/2; what an untrusted visitor claims in X-Forwarded-For is dropped."""
        a = HttpUpstream("a")
        self.upstreams.append(a)
        http_port, https_port, lb_http, lb_https = free_port(), free_port(), free_port(), free_port()
        self.srv(f"HTTPListen=127.0.0.1:{http_port}\nHTTPSListen=127.0.0.1:{https_port}\n"
                 f"AcceptProxyProtocol={LB}\nAllowFrom=a.test=127.0.0.3\n", extra_tunnel="Mode=http\n")
        conf = (f"[Tunnel]\nRole=client\nMode=http\nTokenFile={self.token_file}\n[Client]\n"
                f"URL=wss://127.0.0.1:{self.control_port}\nCAFile={self.tmp}/state/ca.crt\n"
                f"Upstream=a.test={a.url()}\n")
        cli = Daemon(self.tmp, "client", conf)
        self.daemons.append(cli)
        cli.start()
        cli.wait_log("Connection established")
        wait_until(lambda: port_open(http_port) and port_open(https_port), 10, "HTTP ports")
        self.peers.append(Haproxy(self.tmp, [(lb_http, http_port, "v2"), (lb_https, https_port, "v1")], source=LB))

        def xff():
            return a.requests[-1][2].get("x-forwarded-for")

        forged = ("X-Forwarded-For: 10.66.66.66", "X-Real-IP: 10.66.66.66", "True-Client-IP: 10.66.66.66",
                  "Client-IP: 10.66.66.66", "X_Real_IP: 10.66.66.66", "X_Forwarded_For: 10.66.66.66")
        self.assertEqual(curl("127.0.0.3", f"http://127.0.0.1:{lb_http}/hello", "a.test"), (200, b"hello from a\n"))
        self.assertEqual(xff(), "127.0.0.3")
        self.assertEqual(curl("127.0.0.3", f"https://127.0.0.1:{lb_https}/hello", "a.test", headers=forged),
                         (200, b"hello from a\n"))
        self.assertEqual(xff(), "10.66.66.66, 127.0.0.3", "behind a trusted balancer the chain is kept")
        self.assertEqual(a.requests[-1][2].get("x-real-ip"), "10.66.66.66", "and what the balancer passed on")
        self.assertEqual(h2_get("127.0.0.3", lb_https, "a.test"), (200, b"hello from a\n"))
        self.assertEqual(xff(), "127.0.0.3", "HTTP/2 behind the balancer")
        n = len(a.requests)
        self.assertEqual(curl("127.0.0.4", f"http://127.0.0.1:{lb_http}/hello", "a.test")[0], 403)
        self.assertEqual(h2_get("127.0.0.4", lb_https, "a.test")[0], 403)
        self.assertEqual(len(a.requests), n)
        print("behind haproxy: a.test served to .3 (X-Forwarded-For 127.0.0.3 on HTTP/1.1 and h2), "
              "403 to .4 on both")
        # Directly from an untrusted visitor (allowed: 127.0.0.3 reaches the port itself).
        self.assertEqual(curl("127.0.0.3", f"http://127.0.0.1:{http_port}/hello", "a.test", headers=forged),
                         (200, b"hello from a\n"))
        self.assertEqual(xff(), "127.0.0.3", "a forged X-Forwarded-For is dropped")
        self.assertNotIn("x-real-ip", a.requests[-1][2], "a forged X-Real-IP is dropped")
        self.assertNotIn("true-client-ip", a.requests[-1][2], "a forged True-Client-IP is dropped")
        for name in ("client-ip", "x_real_ip", "x_forwarded_for"):
            self.assertNotIn(name, a.requests[-1][2], f"a forged {name} is dropped (CGI reads _ as -)")
        self.assertEqual(h2_get("127.0.0.3", https_port, "a.test", headers=[("x-forwarded-for", "10.66.66.66"),
                                                                           ("forwarded", "for=10.66.66.66"),
                                                                           ("x-real-ip", "10.66.66.66"),
                                                                           ("cf-connecting-ip", "10.66.66.66")]),
                         (200, b"hello from a\n"))
        h = a.requests[-1][2]
        self.assertNotIn("x-real-ip", h)
        self.assertNotIn("cf-connecting-ip", h)
        self.assertEqual(h["x-forwarded-for"], "127.0.0.3")
        self.assertEqual(h["forwarded"], 'for=127.0.0.3;host="a.test";proto=https')
        print("direct: the visitor's own X-Forwarded-For, Forwarded, X-Real-IP, True-Client-IP and "
              "CF-Connecting-IP were dropped (HTTP/1.1 and h2); behind the balancer kept")

    def test_control_port_behind_balancer(self):
        """The tunnel client reaches the control port through haproxy (ControlAcceptProxyProtocol=):
        ControlAllowFrom= judges the client's address from the header (127.0.0.1), not the
        balancer's."""
        echo = self.echo()
        pub, lb_control = free_port(), free_port()
        # The data plane's list does not cover the control port: its own key does.
        self.srv(f"AcceptProxyProtocol=127.0.0.9\nControlAcceptProxyProtocol={LB}\nControlAllowFrom=127.0.0.1\n")
        self.peers.append(Haproxy(self.tmp, [(lb_control, self.control_port, "v2")], source=LB))
        self.client(str(pub) + f":{echo.port}", url=f"wss://127.0.0.1:{lb_control}")
        wait_until(lambda: port_open(pub), 10, "public port")
        self.assertEqual(tcp_roundtrip("127.0.0.3", pub, b"via the balancer"), b"via the balancer")
        self.assertEqual(self.refused(), {"allow-list": 0, "control-allow-list": 0, "proxy-header": 0, "client-allow-list": 0})
        print("the tunnel came up through haproxy with ControlAllowFrom=127.0.0.1 (the balancer is 127.0.0.2)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""PROXY protocol from the tunnel client to its upstream (ProxyProtocol=), with real peers on
loopback (127.0.0.2, 127.0.0.3 … are distinct visitors): nginx behind `listen … proxy_protocol`
reports the visitor's own address and port, for v1 and v2; without ProxyProtocol= no header is
sent (a plain nginx answers normally); per-port on and off; a raw upstream sees the exact header
bytes, with the visitor's early data after them; a foreign exit server that sends no visitor
address gets no header at all, and one warning."""

import http.client
import socket
import struct
import threading
import time

from fake_peers import FakeExitServer
from inletstest import Daemon, TunnelTest, free_port, main, port_open, wait_until
from peers import Nginx

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


class RawUpstream:
    """Records the bytes of each connection until its peer closes. With a full accept queue
    (listen(0) and one connection never accepted until release()), the tunnel client's connect
    waits for a SYN retransmit, so the visitor's first bytes reach the client before its
    upstream connection is up: they are early data."""

    def __init__(self, block=False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0 if block else 16)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.filler = None
        if block:  # connected means queued: the queue (one entry with listen(0)) is full now
            self.filler = socket.create_connection(("127.0.0.1", self.port))
        self.thread = None

    def release(self):
        """Takes the filler off the queue, then serves."""
        if self.filler:
            c, _ = self.sock.accept()
            c.close()
            self.filler.close()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(20)
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._record, args=(c,), daemon=True).start()

    def _record(self, c):
        data = b""
        c.settimeout(10)
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                data += b
                if data.endswith(b"END"):
                    break
            c.sendall(b"OK")
        except OSError:
            pass
        c.close()
        self.received.append(data)

    def close(self):
        self.sock.close()


def visit(src, port, request=b"GET / HTTP/1.0\r\nHost: test\r\n\r\n"):
    """Connects from src, sends request: (the visitor's own address and port, the response)."""
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(15)
    s.connect(("127.0.0.1", port))
    me = s.getsockname()
    try:
        s.sendall(request)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
        return me, out
    finally:
        s.close()


def body(response):
    return response.partition(b"\r\n\r\n")[2].decode(errors="replace").strip()


def v2_header(src, dst):
    return (V2_SIG + b"\x21\x11\x00\x0c" + socket.inet_aton(src[0]) + socket.inet_aton(dst[0]) +
            struct.pack("!HH", src[1], dst[1]))


class ProxyProtocolTest(TunnelTest):
    def setUp(self):
        super().setUp()
        self.nginx = None

    def tearDown(self):
        if self.nginx:
            self.nginx.close()
        super().tearDown()

    def start_nginx(self):
        self.nginx = Nginx(self.tmp)
        return self.nginx

    def expect_visitor_seen(self, public_port, what):
        for src in ("127.0.0.2", "127.0.0.3"):
            me, out = visit(src, public_port)
            got = body(out)
            self.assertEqual(got, f"pp {me[0]}:{me[1]}",
                             f"{what}: nginx should report the visitor {me[0]}:{me[1]}; response {out!r}")
            wait_until(lambda: f"{me[0]}:{me[1]} 127.0.0.1" in self.nginx.access_log(), 5,
                       f"nginx's access log to name {me[0]}:{me[1]}")
            print(f"{what}: nginx reports and logs {got[3:]} = the visitor's own address")

    def expect_plain(self, public_port, what):
        me, out = visit("127.0.0.2", public_port)
        self.assertEqual(body(out), "plain 127.0.0.1", f"{what}: the plain nginx should answer normally: {out!r}")
        print(f"{what}: no header; the plain nginx answered normally")

    def test_nginx_v1_and_v2(self):
        n = self.start_nginx()
        self.server()
        for version in ("v1", "v2"):
            pub = free_port()
            c = self.client(f"{pub}:{n.pp_port}", extra_client=f"ProxyProtocol={version}", name=f"client-{version}")
            wait_until(lambda: port_open(pub), 10, "public port")
            self.expect_visitor_seen(pub, f"ProxyProtocol={version}")
            self.assertNotIn("without a PROXY header", c.output())

    def test_no_header_by_default(self):
        n = self.start_nginx()
        pub = free_port()
        self.server()
        self.client(f"{pub}:{n.plain_port}")
        wait_until(lambda: port_open(pub), 10, "public port")
        self.expect_plain(pub, "ProxyProtocol= unset")
        # ...and the proxy_protocol server refuses what has no header: proof it expects one.
        pub2 = free_port()
        self.client(f"{pub2}:{n.pp_port}", name="client2", extra_client="ProxyProtocol=no")
        wait_until(lambda: port_open(pub2), 10, "public port")
        _, out = visit("127.0.0.2", pub2)
        self.assertNotIn(b"200 OK", out, "nginx with proxy_protocol must not answer a request without a header")
        print("ProxyProtocol=no: nginx behind proxy_protocol gets no header and refuses the request")

    def test_per_port(self):
        n = self.start_nginx()
        self.server()
        # tunnel-wide v2, one port off
        on, off = free_port(), free_port()
        c = self.client(f"{on}:{n.pp_port} {off}:{n.plain_port}",
                        extra_client=f"ProxyProtocol=v2\nProxyProtocol=no {off}")
        wait_until(lambda: port_open(on) and port_open(off), 10, "public ports")
        self.expect_visitor_seen(on, "ProxyProtocol=v2 with no for another port")
        self.expect_plain(off, f"ProxyProtocol=no {off}")
        c.stop()
        # only one port on, v1
        on, off = free_port(), free_port()
        self.client(f"{on}:{n.pp_port} {off}:{n.plain_port}", extra_client=f"ProxyProtocol=v1 {on}",
                    name="client-b")
        wait_until(lambda: port_open(on) and port_open(off), 10, "public ports")
        self.expect_visitor_seen(on, f"ProxyProtocol=v1 {on}")
        self.expect_plain(off, "a port not listed")

    def test_exact_bytes_and_early_data(self):
        self.server()
        for version in ("v1", "v2"):
            up = RawUpstream(block=True)
            self.upstreams.append(up)
            pub = free_port()
            # No probe of the public port: its connection would queue at the upstream too and
            # race the visitor's for the one place freed by release(). The exit server binds the
            # ports before it answers the upgrade, so "Connection established" means they listen.
            c = self.client(f"{pub}:{up.port}", extra_client=f"ProxyProtocol={version}", name=f"client-{version}")
            s = socket.socket()
            s.bind(("127.0.0.3", 0))
            s.settimeout(15)
            s.connect(("127.0.0.1", pub))
            me = s.getsockname()
            early = b"early bytes, sent before the upstream connection is up;"
            s.sendall(early)
            time.sleep(0.5)  # the client holds them: its connect waits for a SYN retransmit
            up.release()
            s.sendall(b"later END")
            self.assertEqual(s.recv(2), b"OK")
            s.close()
            got = wait_until(lambda: [r for r in up.received if r.endswith(b"END")], 10,
                             "the upstream to get the connection")
            want = (f"PROXY TCP4 {me[0]} 127.0.0.1 {me[1]} {pub}\r\n".encode() if version == "v1"
                    else v2_header(me, ("127.0.0.1", pub)))
            self.assertEqual(got, [want + early + b"later END"],
                             f"{version}: expected the header, then the early data")
            print(f"{version}: the upstream got exactly {want!r} and then the early data")
            c.stop()

    def test_http_mode(self):
        """HTTP mode: each public connection gets upstream connections of its own, each opened
        with a PROXY header naming that visitor; a visitor's own x-inlets-* fields change nothing."""
        n = self.start_nginx()
        http_port = free_port()
        self.server(extra_tunnel="Mode=http\n", extra_server=f"HTTPListen=127.0.0.1:{http_port}\n")
        conf = (f"[Tunnel]\nRole=client\nMode=http\nTokenFile={self.token_file}\n[Client]\n"
                f"URL=wss://127.0.0.1:{self.control_port}\nCAFile={self.tmp}/state/ca.crt\n"
                f"Upstream=a.test=http://127.0.0.1:{n.pp_port}\nProxyProtocol=v2\n")
        c = Daemon(self.tmp, "client", conf)
        self.daemons.append(c)
        c.start()
        c.wait_log("Connection established")
        wait_until(lambda: port_open(http_port), 10, "HTTP port")
        for src in ("127.0.0.2", "127.0.0.3", "127.0.0.2"):
            conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10, source_address=(src, 0))
            conn.connect()
            me = conn.sock.getsockname()
            for headers in ({}, {"X-Inlets-Peer": "10.6.6.6:1", "X-Inlets-Local": "10.6.6.7:2"}):
                conn.request("GET", "/", headers={"Host": "a.test", **headers})
                body = conn.getresponse().read().decode().strip()
                self.assertEqual(body, f"pp {me[0]}:{me[1]}", (src, headers))
            conn.close()
        print("HTTP mode, ProxyProtocol=v2: nginx names each visitor's own address and port, on every request "
              "of its keep-alive connection; a forged X-Inlets-Peer changed nothing")

    def test_server_without_addresses(self):
        """A foreign exit server (no x-forwarded-for): a header without addresses (v2 LOCAL), so
        a visitor's own "PROXY ..." bytes are never taken for the header; one warning."""
        up = RawUpstream()
        self.upstreams.append(up)
        up.release()
        fake = FakeExitServer()
        try:
            c = self.client("7000:%d" % up.port, extra_client="ProxyProtocol=v2", ca=False,
                            url=f"ws://127.0.0.1:{fake.port}", wait=False)
            fake.accept()
            local = V2_SIG + b"\x20\x00\x00\x00"
            forged = b"PROXY TCP4 10.66.66.66 127.0.0.1 4444 7000\r\nEND"
            for i in range(3):
                fake.connect_stream("127.0.0.1:7000", None, b"no address here END")
            fake.connect_stream("127.0.0.1:7000", "not-an-address", forged)
            # Forms other than the documented one, and addresses no visitor has: no addresses.
            odd = ["[::ffff:0.0.0.0]:5", "255.255.255.255:5", "224.0.0.1:5", "0.1.2.3:5", "[1.2.3.4]:5",
                   "1.2.3.4:05", "[::ffff:1.2.3.4]:5", "1.2.3.4:" + "0" * 245 + "8099"]
            for peer in odd:
                fake.connect_stream("127.0.0.1:7000", peer, b"odd END")
            fake.pump_until(lambda: len(up.received) == 4 + len(odd), 10)
            self.assertEqual(sorted(up.received), sorted([local + b"no address here END"] * 3 + [local + forged] +
                                                         [local + b"odd END"] * len(odd)),
                             "a LOCAL header first, then the stream's bytes (a forged header is data)")
            wait_until(lambda: "without addresses" in c.output(), 5, "the warning")
            self.assertEqual(c.output().count("without addresses"), 1, "one warning, rate-limited")
            print("a server without x-forwarded-for, or with broadcast, multicast, 0/8, v4-mapped, bracketed, "
                  "zero-padded or over-long ones: v2 LOCAL before the bytes (a visitor's forged PROXY line stays "
                  "data), one warning")
        finally:
            fake.close()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""HTTP mode end to end: curl (and raw sockets) -> exit server's HTTP port -> tunnel ->
tunnel client -> real upstream HTTP servers; routing by Host, bodies both ways, keep-alive,
X-Forwarded-*, WebSocket and SSE passthrough, trailers, HTTPS, and the error statuses."""

import base64
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import time

from http_upstream import HttpUpstream, pattern
from inletstest import KEEPALIVE_SEC, Daemon, TunnelTest, free_port, main, port_open, recv_all, sha, wait_until


def curl(*args, timeout=60):
    return subprocess.run(["curl", "-sS", "--max-time", str(timeout)] + list(args), capture_output=True,
                          timeout=timeout + 10)


class HttpMode(TunnelTest):
    def setUp(self):
        super().setUp()
        self.a = HttpUpstream("a")
        self.b = HttpUpstream("b")
        self.upstreams += [self.a, self.b]

    def start(self, upstreams=None, extra_server="", extra_client="", extra_tunnel=""):
        self.http_port = free_port()
        self.server(extra_tunnel="Mode=http\n" + extra_tunnel,
                    extra_server=f"HTTPListen=127.0.0.1:{self.http_port}\n{extra_server}")
        if upstreams is None:
            upstreams = [f"a.test={self.a.url()}", f"b.test={self.b.url()}"]
        conf = (f"[Tunnel]\nRole=client\nMode=http\nTokenFile={self.token_file}\nKeepaliveSec={KEEPALIVE_SEC}\n{extra_tunnel}\n"
                f"[Client]\nURL=wss://127.0.0.1:{self.control_port}\nCAFile={self.tmp}/state/ca.crt\n"
                + "".join(f"Upstream={u}\n" for u in upstreams) + f"ReconnectMaxDelaySec=2\n{extra_client}\n")
        d = Daemon(self.tmp, "client", conf)
        self.daemons.append(d)
        d.start()
        d.wait_log("Connection established")
        wait_until(lambda: port_open(self.http_port), 10, "HTTP port")
        return d

    def url(self, path):
        return f"http://127.0.0.1:{self.http_port}{path}"

    def get(self, host, path, *extra):
        r = curl("-H", f"Host: {host}", "-D", "-", self.url(path), *extra)
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        return head.decode(errors="replace"), body

    def test_routing_and_bodies(self):
        self.start()
        head, body = self.get("a.test", "/hello")
        self.assertIn("200", head.splitlines()[0])
        self.assertEqual(body, b"hello from a\n")
        head, body = self.get("B.TEST:80", "/hello")
        self.assertEqual(body, b"hello from b\n")
        # An unknown host: nobody serves it.
        head, body = self.get("c.test", "/hello")
        self.assertTrue(head.startswith("HTTP/1.1 502"), head)
        self.assertIn(b"No tunnel client serves c.test", body)

        for size in (0, 1 << 20, 64 << 20):
            data = os.urandom(size) if size < (64 << 20) else pattern(size)
            path = f"{self.tmp}/body"
            with open(path, "wb") as f:
                f.write(data)
            t = time.monotonic()
            r = curl("-H", "Host: a.test", "--data-binary", f"@{path}", self.url("/sha"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout), {"len": size, "sha256": sha(data)})
            # The same body chunked (no length known in advance).
            r = curl("-H", "Host: a.test", "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{path}",
                     self.url("/sha"))
            self.assertEqual(json.loads(r.stdout), {"len": size, "sha256": sha(data)})
            print(f"POST {size} B twice: {time.monotonic() - t:.2f} s")
        # 1 MiB echoed back, and 64 MiB downloaded.
        data = os.urandom(1 << 20)
        with open(f"{self.tmp}/body", "wb") as f:
            f.write(data)
        r = curl("-H", "Host: b.test", "--data-binary", f"@{self.tmp}/body", self.url("/echo"))
        self.assertEqual(sha(r.stdout), sha(data))
        for size in (0, 1 << 20, 64 << 20):
            r = curl("-H", "Host: a.test", self.url(f"/size/{size}"))
            self.assertEqual(sha(r.stdout), sha(pattern(size)), size)

    def test_keepalive_two_hosts_and_headers(self):
        self.start()
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        for host, name in (("a.test", "a"), ("b.test", "b"), ("a.test", "a")):
            c.request("GET", "/hello", headers={"Host": host})
            r = c.getresponse()
            self.assertEqual(r.read(), f"hello from {name}\n".encode())
            self.assertEqual(r.getheader("X-Upstream"), name)
        # One public connection carried all three; the upstream connection was reused.
        c.request("GET", "/headers?x=1", headers={"Host": "a.test", "X-Forwarded-For": "10.9.8.7",
                                                  "X-Forwarded-Proto": "gopher", "Connection": "X-Drop",
                                                  "X-Drop": "secret", "X-Keep": "kept"})
        seen = json.loads(c.getresponse().read())
        h = {k.lower(): v for k, v in seen["headers"]}
        self.assertEqual(seen["path"], "/headers?x=1")
        # What the visitor claimed is dropped: it reached us directly, not through a trusted
        # load balancer (AcceptProxyProtocol=), so only the address we saw goes on.
        self.assertEqual(h["x-forwarded-for"], "127.0.0.1")
        self.assertEqual(h["x-forwarded-proto"], "http")
        self.assertEqual(h["x-forwarded-host"], "a.test")
        self.assertEqual(h["forwarded"], 'for=127.0.0.1;host="a.test";proto=http')
        self.assertEqual(h["host"], f"127.0.0.1:{self.a.port}")
        self.assertEqual(h["x-keep"], "kept")
        self.assertNotIn("x-drop", h)
        self.assertEqual(self.a.connections, 1)
        c.close()

    def test_pipelining_and_read_ahead(self):
        self.start()
        # Three requests in one write: three answers, in order, on one connection.
        s = socket.create_connection(("127.0.0.1", self.http_port), timeout=10)
        s.sendall(b"".join(b"GET /hello HTTP/1.1\r\nHost: %s\r\n\r\n" % h for h in (b"a.test", b"b.test", b"a.test")))
        got = b""
        while got.count(b"hello from") < 3:
            chunk = s.recv(65536)
            self.assertTrue(chunk, got)
            got += chunk
        self.assertEqual(got.count(b"HTTP/1.1 200"), 3)
        self.assertEqual(re.findall(rb"hello from \w", got), [b"hello from a", b"hello from b", b"hello from a"])
        # The next request, and then the peer's close, arrive while a slow response is still
        # streaming: both wait their turn; the connection closes after the second answer.
        s.sendall(b"GET /sse HTTP/1.1\r\nHost: a.test\r\n\r\n")
        first = s.recv(65536)
        self.assertIn(b"HTTP/1.1 200", first)
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: b.test\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        got = first + recv_all(s)
        s.close()
        self.assertLess(got.index(b"event 2"), got.index(b"hello from b"), got)
        self.assertTrue(got.endswith(b"hello from b\n"), got[-200:])
        self.assertEqual(got.count(b"HTTP/1.1 200"), 2)
        # Half a request and a close during a streamed response: the response ends, then the
        # connection closes (nothing will complete that request), and the daemon does not spin.
        s = socket.create_connection(("127.0.0.1", self.http_port), timeout=10)
        s.sendall(b"GET /sse HTTP/1.1\r\nHost: a.test\r\n\r\n")
        got = s.recv(65536)
        s.sendall(b"GET /hel")
        s.shutdown(socket.SHUT_WR)
        got += recv_all(s)
        s.close()
        self.assertTrue(got.endswith(b"0\r\n\r\n"), got[-100:])
        cpu = lambda: sum(int(x) for x in open(f"/proc/{self.daemons[0].proc.pid}/stat").read().rsplit(")", 1)[1].split()[11:13])
        c0 = cpu()
        time.sleep(1)
        self.assertLess(cpu() - c0, 20, "the exit server kept busy after the connection closed (clock ticks)")
        head, body = self.get("a.test", "/hello")
        self.assertEqual(body, b"hello from a\n")
        print("3 pipelined requests answered in order; a request and a close sent during a streamed response waited")

    def test_websocket_passthrough(self):
        self.start()
        s = socket.create_connection(("127.0.0.1", self.http_port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(f"GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.assertIn(b"Sec-WebSocket-Accept: " + accept, head.replace(b"sec-websocket-accept", b"Sec-WebSocket-Accept"))
        for payload in (b"hello", os.urandom(70000)):
            mask = os.urandom(4)
            n = len(payload)
            hdr = bytes([0x82, 0x80 | n]) if n < 126 else bytes([0x82, 0xFF]) + n.to_bytes(8, "big")
            s.sendall(hdr + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))
            got = recv_all_exact(s, 2)
            m = got[1] & 0x7F
            if m == 126:
                m = int.from_bytes(recv_all_exact(s, 2), "big")
            elif m == 127:
                m = int.from_bytes(recv_all_exact(s, 8), "big")
            self.assertEqual(recv_all_exact(s, m), payload)
        s.close()

    def test_sse_streams_event_by_event(self):
        self.start()
        s = socket.create_connection(("127.0.0.1", self.http_port), timeout=10)
        s.sendall(b"GET /sse HTTP/1.1\r\nHost: b.test\r\n\r\n")
        t0 = time.monotonic()
        buf, times = b"", []
        while len(times) < 3:
            chunk = s.recv(4096)
            self.assertTrue(chunk, "connection closed early")
            buf += chunk
            while buf.count(b"data: event") > len(times):
                times.append(time.monotonic() - t0)
        s.close()
        self.assertIn(b"Transfer-Encoding: chunked", buf)
        # Each event arrived when it was sent, not all at the end.
        self.assertGreater(times[2] - times[0], 0.45, times)
        self.assertLess(times[0], 0.3, times)

    def test_trailers_head_204_and_prefix(self):
        self.start(upstreams=[f"a.test={self.a.url()}", f"p.test={self.a.url('/prefixed/')}"])
        s = socket.create_connection(("127.0.0.1", self.http_port), timeout=10)
        s.sendall(b"GET /trailers HTTP/1.1\r\nHost: a.test\r\nTE: trailers\r\n\r\n")
        buf = b""
        while not buf.endswith(b"0\r\nx-checksum: abc123\r\n\r\n"):
            chunk = s.recv(4096)
            self.assertTrue(chunk, buf)
            buf += chunk
        self.assertIn(b"5\r\nhello\r\n", buf)
        s.sendall(b"HEAD /size/1000 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        head = recv_head(s)
        self.assertIn(b"content-length: 1000", head.lower())
        s.sendall(b"GET /nocontent HTTP/1.1\r\nHost: a.test\r\n\r\n")
        head = recv_head(s)
        self.assertTrue(head.startswith(b"HTTP/1.1 204"), head)
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: a.test\r\n\r\n")  # still in step after HEAD and 204
        head = recv_head(s)
        self.assertEqual(recv_all_exact(s, 13), b"hello from a\n")
        s.close()
        head, body = self.get("p.test", "/x/y?z")
        self.assertEqual(json.loads(body)["path"], "/prefixed/x/y?z")

    def test_errors(self):
        refused = free_port()
        self.start(upstreams=[f"a.test={self.a.url()}", f"r.test=http://127.0.0.1:{refused}"],
                   extra_server="MaxBodyBytes=1K\nResponseTimeoutSec=1\n", extra_tunnel="MaxHeaderBytes=2K\n")
        head, body = self.get("r.test", "/")
        self.assertTrue(head.startswith("HTTP/1.1 502"), head)
        self.assertIn(b"refused", body.lower())
        head, body = self.get("a.test", "/slow")
        self.assertTrue(head.startswith("HTTP/1.1 504"), head)
        self.assertIn("connection: close", head.lower(), "the 504 says the connection ends")
        head, body = self.get("a.test", "/sha", "--data-binary", "x" * 2000)
        self.assertTrue(head.startswith("HTTP/1.1 413"), head)
        head, body = self.get("a.test", "/hello", "-H", "X-Big: " + "y" * 3000)
        self.assertTrue(head.startswith("HTTP/1.1 431"), head)
        for bad in (b"GET / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                    b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: bad host!\r\n\r\n"):
            s = socket.create_connection(("127.0.0.1", self.http_port), timeout=5)
            s.sendall(bad)
            got = recv_all(s)
            self.assertTrue(got.startswith(b"HTTP/1.1 400"), (bad, got))
            s.close()
        # Still serving.
        head, body = self.get("a.test", "/hello")
        self.assertEqual(body, b"hello from a\n")

    def test_https_front_and_upstream(self):
        # The exit server's HTTPS port shares the auto-TLS certificate; the https:// upstream
        # uses that same certificate, verified with UpstreamCAFile=.
        https_port = free_port()
        self.start(extra_server=f"HTTPSListen=127.0.0.1:{https_port}\nAutoTLSSAN=a.test\n")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{self.tmp}/state/server.crt", f"{self.tmp}/state/server.key")
        secure = HttpUpstream("secure", tls=ctx)
        self.upstreams.append(secure)
        r = curl("--cacert", f"{self.tmp}/state/ca.crt", "--resolve", f"a.test:{https_port}:127.0.0.1",
                 f"https://a.test:{https_port}/headers")
        self.assertEqual(r.returncode, 0, r.stderr)
        h = {k.lower(): v for k, v in json.loads(r.stdout)["headers"]}
        self.assertEqual(h["x-forwarded-proto"], "https")
        # HTTP/2 by ALPN: curl, nghttp (with a request body) and h2load.
        tls = ["--cacert", f"{self.tmp}/state/ca.crt", "--resolve", f"a.test:{https_port}:127.0.0.1"]
        r = curl(*tls, "--http2", "-w", "%{http_version}", "-o", "/dev/null", f"https://a.test:{https_port}/hello")
        self.assertEqual(r.stdout, b"2", r.stderr)
        data = os.urandom(3 << 20)
        with open(f"{self.tmp}/body", "wb") as f:
            f.write(data)
        r = curl(*tls, "--http2", "--data-binary", f"@{self.tmp}/body", f"https://a.test:{https_port}/sha")
        self.assertEqual(json.loads(r.stdout), {"len": len(data), "sha256": sha(data)})
        r = curl(*tls, "--http2", f"https://a.test:{https_port}/size/{16 << 20}")
        self.assertEqual(sha(r.stdout), sha(pattern(16 << 20)))
        r = curl(*tls, "--http2", "-D", "-", f"https://a.test:{https_port}/trailers")
        self.assertIn(b"x-checksum: abc123", r.stdout)
        r = curl(*tls, "--http2", "-o", "/dev/null", "-w", "%{http_code}", f"https://nobody.test:{https_port}/",
                 "--resolve", f"nobody.test:{https_port}:127.0.0.1", "-k")
        self.assertEqual(r.stdout, b"502")
        r = subprocess.run(["nghttp", "-v", "-H", ":authority: a.test", f"https://127.0.0.1:{https_port}/hello"],
                           capture_output=True, timeout=30)
        self.assertIn(b"hello from a", r.stdout)
        self.assertIn(b"h2", r.stdout)
        r = subprocess.run(["h2load", "-n", "400", "-c", "4", "-m", "10", "-H", ":authority: a.test",
                            f"https://127.0.0.1:{https_port}/hello"], capture_output=True, timeout=60)
        out = r.stdout.decode()
        print(out[out.find("finished in"):].splitlines()[0])
        self.assertIn("400 succeeded, 0 failed", out, out)
        self.assertIn("Application protocol: h2", out)
        # Now a client whose upstream is https://.
        for d in self.daemons[1:]:
            d.stop()
        conf = (f"[Tunnel]\nRole=client\nMode=http\nTokenFile={self.token_file}\n[Client]\n"
                f"URL=wss://127.0.0.1:{self.control_port}\nCAFile={self.tmp}/state/ca.crt\n"
                f"UpstreamCAFile={self.tmp}/state/ca.crt\nUpstream={secure.url()}\n")
        d = Daemon(self.tmp, "client2", conf)
        self.daemons.append(d)
        d.start()
        d.wait_log("Connection established")
        head, body = self.get("any.test", "/hello")
        self.assertEqual(body, b"hello from secure\n")


class HttpModeSystemd(TunnelTest):
    def test_http_socket_from_systemd(self):
        """systemd-socket-activate holds the HTTP port and passes it as "http" (what
        inletsd-http@NAME.socket does); HTTPListen= names another port, which stays unused."""
        up = HttpUpstream("a")
        self.upstreams.append(up)
        port, unused = free_port(), free_port()
        self.control_port = free_port()
        path = f"{self.tmp}/server.conf"
        with open(path, "w") as f:
            f.write(f"[Tunnel]\nRole=server\nMode=http\nTokenFile={self.token_file}\n[Server]\n"
                    f"ControlListen=127.0.0.1:{self.control_port}\nHTTPListen=127.0.0.1:{unused}\n"
                    f"StateDirectory={self.tmp}/state\nAutoTLSSAN=127.0.0.1\n")
        log = open(f"{self.tmp}/act.log", "ab")
        srv = subprocess.Popen(["systemd-socket-activate", "-l", f"127.0.0.1:{port}", "--fdname=http",
                                os.environ["INLETSD"], "--no-bus", "-v", "--config", path],
                               stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: port_open(port), 10, "systemd-socket-activate")
            # The first connection starts the daemon; nobody serves the host yet.
            r = curl("-H", "Host: x.test", f"http://127.0.0.1:{port}/hello", timeout=20)
            self.assertEqual(r.stdout, b"No tunnel client serves x.test.\n")
            wait_until(lambda: port_open(self.control_port), 10, "control port")
            conf = (f"[Tunnel]\nRole=client\nMode=http\nTokenFile={self.token_file}\n[Client]\n"
                    f"URL=wss://127.0.0.1:{self.control_port}\nCAFile={self.tmp}/state/ca.crt\nUpstream={up.url()}\n")
            d = Daemon(self.tmp, "client", conf)
            self.daemons.append(d)
            d.start()
            d.wait_log("Connection established")
            r = curl("-H", "Host: x.test", f"http://127.0.0.1:{port}/hello", timeout=20)
            self.assertEqual(r.stdout, b"hello from a\n")
            self.assertFalse(port_open(unused))
            with open(f"{self.tmp}/act.log") as f:
                self.assertIn("Using the HTTP socket passed by systemd", f.read())
        finally:
            srv.send_signal(15)
            srv.wait(10)
            log.close()


def recv_all_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"{len(buf)} of {n} bytes")
        buf += chunk
    return buf


def recv_head(s):
    buf = b""
    while not buf.endswith(b"\r\n\r\n"):
        c = s.recv(1)
        if not c:
            raise EOFError(buf)
        buf += c
    return buf


if __name__ == "__main__":
    main()

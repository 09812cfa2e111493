#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""HTTP mode, an upstream that fails mid-response: it declares a Content-Length, sends less
and closes (FIN, or RST as a crashed process with unread input does), while the public reader
is slow (so the tunnel client learns of the close only when its stream to the exit server
drains) or fast. The tunnel client must cut that one response, stay up and keep serving; a
sanitizer build must report nothing (tearDown checks the logs)."""

import socket
import struct
import threading
import time

from inletstest import Daemon, TunnelTest, free_port, main, port_open, wait_until

CHUNK = 64 * 1024
DECLARED = 1 << 30  # far more than is ever sent


class Origin:
    """An HTTP/1.1 origin on loopback: a thread per connection runs self._serve(sock)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def close(self):
        self.closed = True
        self.sock.close()


class CuttingUpstream(Origin):
    """HTTP/1.1 origin on its own thread. GET /ok: "ok\\n" (keep-alive). GET /cut: a head with
    Content-Length: DECLARED, then bytes until the tunnel client stops taking them for
    `stall` seconds (its stream towards the exit server is full) or `limit` bytes went, then
    close."""

    def __init__(self, stall=1.0, limit=None):
        self.stall = stall
        self.limit = limit
        self.reset = False  # close with RST (SO_LINGER 0) instead of FIN
        self.cut_done = threading.Event()
        self.cut_sent = 0
        self.cut_stalled = False
        super().__init__()

    def _serve(self, c):
        buf = b""
        try:
            c.settimeout(60)
            while True:
                while b"\r\n\r\n" not in buf:
                    b = c.recv(65536)
                    if not b:
                        return
                    buf += b
                head, _, buf = buf.partition(b"\r\n\r\n")  # GETs only: no body follows
                path = head.split(b" ")[1]
                if path == b"/cut":
                    self._cut(c)
                    return
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")
        except OSError:
            pass
        finally:
            c.close()

    def _cut(self, c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Length: %d\r\n\r\n" % DECLARED)
        c.setblocking(False)
        data = b"x" * CHUNK
        last = time.monotonic()
        end = last + 60
        while time.monotonic() < end and (self.limit is None or self.cut_sent < self.limit):
            try:
                self.cut_sent += c.send(data)
                last = time.monotonic()
            except BlockingIOError:
                if time.monotonic() - last >= self.stall:
                    self.cut_stalled = True
                    break
                time.sleep(0.01)
        if self.reset:
            # What a crashing process with unread input gives: RST, which (unlike a FIN) waits
            # for no window, so it always arrives while the tunnel client's stream is full;
            # the client hears of it only when the stream drains, in the writable callback,
            # after the bytes still in its receive queue.
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Otherwise the tail and a FIN queue behind what the tunnel client has not read.
        c.close()
        self.cut_done.set()


class RecordingUpstream(Origin):
    """HTTP/1.1 origin that records every request it parses. An upgrade to "echo" is answered
    101 and then echoes raw bytes; any other request (upgrade or not) gets 200 with a 4 MiB
    body, as a server that ignores Upgrade does."""

    def __init__(self):
        self.requests = []
        super().__init__()

    def _serve(self, c):
        buf = b""
        try:
            c.settimeout(30)
            while True:
                while b"\r\n\r\n" not in buf:
                    b = c.recv(65536)
                    if not b:
                        return
                    buf += b
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode(errors="replace").split("\r\n")
                fields = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
                self.requests.append((lines[0], fields.get("host")))
                n = int(fields.get("content-length", "0"))
                while len(buf) < n:
                    b = c.recv(65536)
                    if not b:
                        return
                    buf += b
                buf = buf[n:]
                if fields.get("upgrade") == "echo":
                    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
                    if buf:
                        c.sendall(buf)
                    while True:
                        b = c.recv(65536)
                        if not b:
                            return
                        c.sendall(b)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (4 << 20) + b"p" * (4 << 20))
        except OSError:
            pass
        finally:
            c.close()



def read_until_closed(s, slow=False, timeout=60):
    """Reads until EOF or reset; returns (head, number of body bytes)."""
    got, n = b"", 0
    end = time.monotonic() + timeout
    s.settimeout(timeout)
    try:
        while time.monotonic() < end:
            b = s.recv(16384 if slow else CHUNK)
            if not b:
                break
            if b"\r\n\r\n" not in got:
                got += b
                if b"\r\n\r\n" in got:
                    got, _, rest = got.partition(b"\r\n\r\n")
                    got += b"\r\n\r\n"
                    n += len(rest)
            else:
                n += len(b)
            if slow:
                time.sleep(0.002)
    except ConnectionResetError:
        pass
    return got, n


class UpstreamFaults(TunnelTest):
    def start(self, upstream):
        self.http_port = free_port()
        self.server(extra_tunnel="Mode=http\n", extra_server=f"HTTPListen=127.0.0.1:{self.http_port}\n")
        conf = (f"[Tunnel]\nRole=client\nMode=http\nTokenFile={self.token_file}\nKeepaliveSec=3\n"
                f"[Client]\nURL=wss://127.0.0.1:{self.control_port}\nCAFile={self.tmp}/state/ca.crt\n"
                f"Upstream={upstream.url()}\nReconnectMaxDelaySec=2\n")
        d = Daemon(self.tmp, "client", conf)
        self.daemons.append(d)
        d.start()
        d.wait_log("Connection established")
        wait_until(lambda: port_open(self.http_port), 10, "HTTP port")
        return d

    def public(self, path, rcvbuf=None):
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(30)
        s.connect(("127.0.0.1", self.http_port))
        s.sendall(b"GET %s HTTP/1.1\r\nHost: app.test\r\n\r\n" % path)
        return s

    def assert_serving(self, client, n=3):
        self.assertTrue(client.alive(), "the tunnel client died:\n" + client.output()[-4000:])
        for _ in range(n):
            s = self.public(b"/ok")
            head, body = b"", b""
            while b"\r\n\r\n" not in head:
                b = s.recv(4096)
                self.assertTrue(b, f"connection closed before a response: {head!r}")
                head += b
            head, _, body = head.partition(b"\r\n\r\n")
            while len(body) < 3:
                b = s.recv(4096)
                self.assertTrue(b, body)
                body += b
            s.close()
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
            self.assertEqual(body, b"ok\n")

    def cut(self, up, slow, reset=False):
        up.reset = reset
        up.cut_done.clear()
        up.cut_sent = 0
        up.cut_stalled = False
        # A small receive buffer: the public socket fills early, so the exit server stops
        # consuming, the stream window closes and the tunnel client's stream fills.
        s = self.public(b"/cut", rcvbuf=16384 if slow else None)
        if slow:
            # Nothing is read until the upstream has closed behind a stalled stream.
            self.assertTrue(up.cut_done.wait(90), "the upstream never stalled or closed")
            self.assertTrue(up.cut_stalled, "the tunnel client never stopped reading the upstream")
        head, n = read_until_closed(s, slow=slow)
        s.close()
        self.assertTrue(up.cut_done.wait(60))
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        self.assertIn(b"content-length: %d" % DECLARED, head.lower())
        # The response was cut, not completed or hung: at most what the upstream sent came.
        self.assertLessEqual(n, up.cut_sent)
        self.assertLess(n, DECLARED)
        return n

    def test_cut_response_slow_reader(self):
        up = CuttingUpstream()
        self.upstreams.append(up)
        client = self.start(up)
        for i, reset in enumerate((True, False, True, False)):
            t = time.monotonic()
            n = self.cut(up, slow=True, reset=reset)
            print(f"slow reader #{i + 1}: the upstream sent {up.cut_sent >> 20} MiB of {DECLARED >> 20} MiB "
                  f"and closed ({'RST' if reset else 'FIN'}); {n >> 20} MiB came before the cut "
                  f"({time.monotonic() - t:.1f} s)")
            self.assert_serving(client)
        client.wait_log("in the middle of the response")   # the FIN
        client.wait_log("Connection reset by peer")        # the RST
        print("the tunnel client cut the responses and kept serving")

    def test_refused_upgrade_smuggles_nothing(self):
        """An upstream that ignores Upgrade answers 200: that must not reach the public client
        as 101, and what the client sends after its upgrade request must never reach the
        upstream's HTTP connection as a second request (it would bypass routing,
        X-Forwarded-For and MaxBodyBytes=). A real upgrade still gets bytes sent early."""
        up = RecordingUpstream()
        self.upstreams.append(up)
        self.start(up)
        smuggled = (b"POST /admin HTTP/1.1\r\nHost: internal.admin\r\nX-Forwarded-For: 10.9.9.9\r\n"
                    b"Content-Length: 5\r\n\r\nAAAAA")
        s = socket.create_connection(("127.0.0.1", self.http_port), timeout=10)
        s.sendall(b"GET /page HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n" + smuggled)
        head = b""
        while b"\r\n\r\n" not in head:
            b = s.recv(1)
            self.assertTrue(b, head)
            head += b
        s.sendall(smuggled)
        time.sleep(1.5)
        s.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 502"), head)
        self.assertEqual([r[0] for r in up.requests], ["GET /page HTTP/1.1"])
        e = socket.create_connection(("127.0.0.1", self.http_port), timeout=10)
        e.sendall(b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly")
        got = b""
        while b"early" not in got:
            b = e.recv(4096)
            self.assertTrue(b, got)
            got += b
        self.assertTrue(got.startswith(b"HTTP/1.1 101"), got)
        e.sendall(b" later")
        while b"early later" not in got:
            b = e.recv(4096)
            self.assertTrue(b, got)
            got += b
        e.close()
        print(f"refused upgrade: {head.splitlines()[0].decode()}, upstream saw {len(up.requests) - 1} request "
              "before the real upgrade; bytes sent before a 101 arrive after it")

    def test_cut_response_fast_reader(self):
        up = CuttingUpstream(limit=8 << 20)
        self.upstreams.append(up)
        client = self.start(up)
        # The reader takes everything at once: the close is read from the socket's own event.
        n = self.cut(up, slow=False)
        print(f"fast reader: {n >> 20} MiB came before the cut")
        self.assert_serving(client)


if __name__ == "__main__":
    main()

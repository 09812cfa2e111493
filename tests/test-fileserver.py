#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The fileserver role: auth, files, HEAD, ranges, conditional requests, listings, every
way out of the webroot refused — directly and through a TCP tunnel — and the time bounds: a
head within HandshakeTimeoutSec= of its first byte however slowly it trickles, idle keep-alive
and stalled readers within IdleTimeoutSec=, and a slow but moving download never cut."""

import base64
import hashlib
import html.parser
import http.client
import os
import select
import shutil
import socket
import subprocess
import time

from inletstest import TOKEN, Daemon, TunnelTest, free_port, main, port_open, recv_all, wait_until

AUTH = "Basic " + base64.b64encode(f"admin:{TOKEN}".encode()).decode()


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.text = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.append(dict(attrs)["href"])

    def handle_data(self, data):
        self.text.append(data)


class FileServer(TunnelTest):
    def setUp(self):
        super().setUp()
        w = self.webroot = f"{self.tmp}/www"
        os.makedirs(f"{w}/sub dir")
        with open(f"{w}/hello.txt", "w") as f:
            f.write("hello, file\n")
        with open(f"{w}/<b>&\"x'.txt", "w") as f:
            f.write("odd name\n")
        with open(f"{w}/.secret", "w") as f:
            f.write("hidden\n")
        with open(f"{w}/sub dir/inner.html", "w") as f:
            f.write("<p>inner</p>\n")
        with open(f"{self.tmp}/outside.txt", "w") as f:
            f.write("OUTSIDE-SECRET\n")
        os.symlink(f"{self.tmp}/outside.txt", f"{w}/link-out")
        os.symlink("hello.txt", f"{w}/link-in")
        os.mkfifo(f"{w}/fifo")
        self.big = os.urandom(1 << 20) * 64
        with open(f"{w}/big.bin", "wb") as f:
            f.write(self.big)

    def fileserver(self, extra="", name="files", tunnel=""):
        self.fport = free_port()
        conf = (f"[Tunnel]\nRole=fileserver\nTokenFile={self.token_file}\n{tunnel}[FileServer]\n"
                f"Listen=127.0.0.1:{self.fport}\nWebroot={self.webroot}\nAllowBrowsing=yes\n{extra}")
        d = Daemon(self.tmp, name, conf)
        self.daemons.append(d)
        d.start()
        wait_until(lambda: port_open(self.fport), 10, "fileserver")
        return d

    def get(self, path, headers=None, method="GET", port=None, auth=True):
        c = http.client.HTTPConnection("127.0.0.1", port or self.fport, timeout=30)
        h = dict(headers or {})
        if auth:
            h.setdefault("Authorization", AUTH)
        c.request(method, path, headers=h)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r, body

    def test_auth(self):
        fs = self.fileserver()
        r, _ = self.get("/hello.txt", auth=False)
        self.assertEqual(r.status, 401)
        self.assertIn('Basic realm="inletsd"', r.getheader("WWW-Authenticate"))
        bad = "Basic " + base64.b64encode(b"admin:wrong-password").decode()
        r, _ = self.get("/hello.txt", {"Authorization": bad})
        self.assertEqual(r.status, 401)
        r, body = self.get("/hello.txt")
        self.assertEqual((r.status, body), (200, b"hello, file\n"))
        fs.wait_log("wrong credentials from 127.0.0.1")
        self.assertNotIn(TOKEN, fs.output())
        print("basic auth: none -> 401 with a challenge, wrong -> 401 (logged), right -> 200")

    def test_files_head_ranges_conditionals(self):
        self.fileserver()
        r, body = self.get("/hello.txt")
        self.assertEqual(r.getheader("Content-Type"), "text/plain; charset=utf-8")
        self.assertEqual(r.getheader("Content-Length"), "12")
        etag, lm = r.getheader("ETag"), r.getheader("Last-Modified")
        r, body = self.get("/hello.txt", method="HEAD")
        self.assertEqual((r.status, body, r.getheader("Content-Length")), (200, b"", "12"))
        r, body = self.get("/hello.txt", {"Range": "bytes=0-4"})
        self.assertEqual((r.status, body, r.getheader("Content-Range")), (206, b"hello", "bytes 0-4/12"))
        r, body = self.get("/hello.txt", {"Range": "bytes=-5"})
        self.assertEqual((r.status, body), (206, b"file\n"))
        r, body = self.get("/hello.txt", {"Range": "bytes=7-"})
        self.assertEqual((r.status, body), (206, b"file\n"))
        r, _ = self.get("/hello.txt", {"Range": "bytes=100-200"})
        self.assertEqual((r.status, r.getheader("Content-Range")), (416, "bytes */12"))
        r, body = self.get("/hello.txt", {"If-None-Match": etag})
        self.assertEqual((r.status, body), (304, b""))
        r, body = self.get("/hello.txt", {"If-Modified-Since": lm})
        self.assertEqual(r.status, 304)
        r, body = self.get("/link-in")
        self.assertEqual((r.status, body), (200, b"hello, file\n"))
        r, body = self.get("/big.bin")
        self.assertEqual(hashlib.sha256(body).digest(), hashlib.sha256(self.big).digest())
        r, _ = self.get("/hello.txt", method="POST")
        self.assertEqual((r.status, r.getheader("Allow")), (405, "GET, HEAD"))
        print("GET/HEAD, Content-Type/Length, ranges 206/416, ETag and Last-Modified 304, 64 MiB, 405")

    def test_nothing_leaves_the_webroot(self):
        self.fileserver()
        attempts = ["/../outside.txt", "/%2e%2e/outside.txt", "/sub%20dir/../../outside.txt", "/link-out",
                    "/hello.txt%00.png", "/sub%2f..%2f..%2foutside.txt", "/.secret", "/%2esecret",
                    "/sub dir/%2e%2e/%2e%2e/outside.txt", "//..//outside.txt", "/..%5coutside.txt", "/fifo"]
        for p in attempts:
            s = socket.create_connection(("127.0.0.1", self.fport), timeout=10)
            s.sendall(f"GET {p.replace(' ', '%20')} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n"
                      "Connection: close\r\n\r\n".encode())
            out = recv_all(s)
            s.close()
            status = int(out.split(b" ")[1])
            self.assertIn(status, (400, 403, 404), p)
            self.assertNotIn(b"OUTSIDE-SECRET", out, p)
            self.assertNotIn(b"hidden", out, p)
        print(f"{len(attempts)} ways out of the webroot (dot segments, encoded slashes, NUL, symlink out, "
              "hidden files) all refused")

    def test_listing(self):
        self.fileserver()
        r, body = self.get("/")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.getheader("Content-Type").startswith("text/html"))
        p = Links()
        p.feed(body.decode())
        self.assertIn("sub%20dir/", p.links)
        self.assertIn("%3Cb%3E%26%22x%27.txt", p.links)         # href percent-encoded
        self.assertIn("<b>&\"x'.txt", "".join(p.text))             # text escaped, parses back
        self.assertNotIn(b"<b>&", body)                           # never raw in the markup
        self.assertNotIn(".secret", "".join(p.links))
        self.assertNotIn("link-out", "".join(p.links))           # points outside: not shown
        self.assertIn("link-in", p.links)
        r, body = self.get("/%3Cb%3E%26%22x%27.txt")
        self.assertEqual(body, b"odd name\n")
        r, _ = self.get("/sub%20dir")
        self.assertEqual((r.status, r.getheader("Location")), (301, "/sub%20dir/"))
        r, body = self.get("/sub%20dir/")
        self.assertIn('href="../"', body.decode())
        self.assertIn('href="inner.html"', body.decode())
        print("listing: valid HTML, names escaped and hrefs encoded, hidden and escaping links left out, "
              "directory redirect")

    def test_keepalive_and_options(self):
        self.fileserver(extra="AllowBrowsing=no\n")
        c = http.client.HTTPConnection("127.0.0.1", self.fport, timeout=10)
        for _ in range(3):
            c.request("GET", "/hello.txt", headers={"Authorization": AUTH})
            r = c.getresponse()
            self.assertEqual(r.read(), b"hello, file\n")
        c.request("GET", "/", headers={"Authorization": AUTH})
        self.assertEqual(c.getresponse().status, 403)   # browsing off
        c.close()
        # Pipelined requests on one connection are answered in order.
        s = socket.create_connection(("127.0.0.1", self.fport), timeout=10)
        req = f"GET /hello.txt HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n\r\n"
        s.sendall((req * 2 + req.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")).encode())
        out = recv_all(s)
        s.close()
        self.assertEqual(out.count(b"hello, file\n"), 3)
        print("keep-alive and pipelining answered in order; AllowBrowsing=no gives 403 on directories")

    def test_open_mode_and_errors(self):
        fs = self.fileserver(extra="BasicAuth=no\n", name="open")
        r, body = self.get("/hello.txt", auth=False)
        self.assertEqual(body, b"hello, file\n")
        fs.wait_log("BasicAuth=no")
        bad = subprocess.run([os.environ.get("INLETSD", "build/daemon/inletsd"), "--no-bus", "--config",
                              self.write_conf("missing", f"Webroot={self.tmp}/nope\n")],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(bad.returncode, 1)
        self.assertIn(f"cannot open Webroot={self.tmp}/nope", bad.stderr)
        print("BasicAuth=no serves without credentials (with a warning); a missing Webroot= is a clear error")

    def test_head_limits(self):
        """MaxHeaderBytes= and MaxHeaders= hold here as on the HTTP fronts: 431 beyond them."""
        self.fileserver(tunnel="MaxHeaderBytes=1K\nMaxHeaders=8\n")
        r, body = self.get("/hello.txt")
        self.assertEqual((r.status, body), (200, b"hello, file\n"))
        r, _ = self.get("/hello.txt", headers={"X-Big": "y" * 1500})
        self.assertEqual(r.status, 431)
        r, _ = self.get("/hello.txt", headers={f"X-H{i}": "1" for i in range(12)})
        self.assertEqual(r.status, 431)
        print("MaxHeaderBytes=1K and MaxHeaders=8: a 1.5 KB field and 12 fields get 431; a plain GET 200")

    # ---- time bounds (HandshakeTimeoutSec=2, IdleTimeoutSec=3) ----

    HEAD_SEC, IDLE_SEC = 2, 3

    def bounded_fileserver(self):
        return self.fileserver(tunnel=f"HandshakeTimeoutSec={self.HEAD_SEC}\nIdleTimeoutSec={self.IDLE_SEC}\n")

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.fport), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def trickle(self, s, data, interval=1.0, limit=12.0):
        """Sends data a byte per interval until the server closes the connection; returns the
        seconds from the first byte to the close (None: still open after limit seconds)."""
        t0 = time.monotonic()
        for b in data:
            if time.monotonic() - t0 > limit:
                return None
            try:
                s.send(bytes([b]))
                readable, _, _ = select.select([s], [], [], interval)
                if readable:
                    got = s.recv(65536)
                    self.assertEqual(got, b"", "an answer to half a head")
                    return time.monotonic() - t0
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - t0
        self.fail("the whole head went out a byte at a time")

    def wait_closed(self, s, limit):
        """Seconds until the server closes s (reading and dropping what comes), None after limit."""
        t0 = time.monotonic()
        s.settimeout(limit)
        try:
            while s.recv(65536):
                pass
        except socket.timeout:
            return None
        except ConnectionResetError:
            pass
        return time.monotonic() - t0

    def request(self, s, path="/hello.txt"):
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n\r\n".encode())

    def test_slowloris_head_bound(self):
        self.bounded_fileserver()
        slow_head = f"GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Pad: {'a' * 100}\r\n\r\n".encode()
        # A fresh connection: one byte a second. Before, every byte re-armed the bound.
        s = self.connect()
        t = self.trickle(s, slow_head)
        s.close()
        self.assertIsNotNone(t, "a head trickled at 1 byte/s held the connection for 12 s")
        self.assertLess(t, self.HEAD_SEC + 1.5, t)
        print(f"fresh connection, 1 byte/s: closed {t:.1f} s after the first byte (bound {self.HEAD_SEC} s)")
        # The same on a kept-alive connection, after one answered request.
        s = self.connect()
        self.request(s)
        got = b""
        while not got.endswith(b"hello, file\n"):
            b = s.recv(65536)
            self.assertTrue(b, got)
            got += b
        time.sleep(0.5)
        t = self.trickle(s, slow_head)
        s.close()
        self.assertIsNotNone(t, "the second head, trickled at 1 byte/s, held the connection for 12 s")
        self.assertLess(t, self.HEAD_SEC + 1.5, t)
        self.assertGreater(t, self.HEAD_SEC - 0.5, t)
        print(f"kept-alive connection, next head at 1 byte/s: closed {t:.1f} s after its first byte")
        # A head in pieces that completes within the bound is served.
        s = self.connect()
        req = (f"GET /hello.txt HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n"
               "Connection: close\r\n\r\n").encode()
        for i in range(0, len(req), len(req) // 3 + 1):
            s.sendall(req[i:i + len(req) // 3 + 1])
            time.sleep(0.4)
        out = recv_all(s)
        s.close()
        self.assertTrue(out.startswith(b"HTTP/1.1 200") and out.endswith(b"hello, file\n"), out)
        print("a head in three pieces over 1.2 s: served")

    def test_idle_and_stalled_reader_bounds(self):
        fs = self.bounded_fileserver()
        # Kept alive and silent: closed after IdleTimeoutSec=.
        s = self.connect()
        self.request(s)
        got = b""
        while not got.endswith(b"hello, file\n"):
            b = s.recv(65536)
            self.assertTrue(b, got)
            got += b
        t = self.wait_closed(s, 15)
        s.close()
        self.assertIsNotNone(t, "an idle kept-alive connection stayed open for 15 s")
        self.assertLess(abs(t - self.IDLE_SEC), 1.5, t)
        print(f"idle kept-alive connection closed after {t:.1f} s (IdleTimeoutSec={self.IDLE_SEC})")
        # A reader that asks for 64 MiB and never reads: the connection (and the file) are let
        # go once nothing moved for IdleTimeoutSec=. (Counted now: the server has closed every
        # connection so far, the probe of port_open() too.)
        base = fs.fds()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.connect(("127.0.0.1", self.fport))
        self.request(s, "/big.bin")
        t0 = time.monotonic()
        wait_until(lambda: fs.fds() >= base + 2, 5, "the fileserver to open the file")
        wait_until(lambda: fs.fds() == base, 15, "the fileserver to drop a stalled reader")
        t = time.monotonic() - t0
        s.close()
        # One interval, or two when the kernel was still filling the reader's window during
        # the first (its queue shrank: that counts as progress).
        self.assertLess(t, 2 * self.IDLE_SEC + 2, t)
        self.assertGreater(t, self.IDLE_SEC - 0.5, t)
        print(f"a reader that never read: dropped after {t:.1f} s (IdleTimeoutSec={self.IDLE_SEC})")

    def test_slow_download_is_not_cut(self):
        self.bounded_fileserver()
        # 64 MiB taken in small steps over ~6 s: longer than both bounds, never silent for long.
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 262144)
        s.connect(("127.0.0.1", self.fport))
        s.settimeout(10)
        self.request(s, "/big.bin")
        t0 = time.monotonic()
        got = bytearray()
        head = None
        while head is None or len(got) < len(self.big):
            b = s.recv(1 << 20)
            self.assertTrue(b, f"cut after {time.monotonic() - t0:.1f} s, {len(got)} bytes of the body")
            got += b
            if head is None and b"\r\n\r\n" in got:
                head, _, rest = bytes(got).partition(b"\r\n\r\n")
                got = bytearray(rest)
            time.sleep(0.09 * len(b) / (1 << 20))
        t = time.monotonic() - t0
        s.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(self.big).digest())
        self.assertGreater(t, self.IDLE_SEC + self.HEAD_SEC)
        print(f"64 MiB read slowly over {t:.1f} s (bounds {self.HEAD_SEC} s and {self.IDLE_SEC} s): intact")

    def write_conf(self, name, extra):
        p = f"{self.tmp}/{name}.conf"
        with open(p, "w") as f:
            f.write(f"[Tunnel]\nRole=fileserver\nTokenFile={self.token_file}\n[FileServer]\n"
                    f"Listen=127.0.0.1:{free_port()}\n{extra}")
        return p

    def test_through_the_tunnel(self):
        self.fileserver()
        pub = free_port()
        self.server()
        self.client(f"{pub}:{self.fport}")
        wait_until(lambda: port_open(pub), 5, "public port")
        r, body = self.get("/big.bin", port=pub)
        self.assertEqual(hashlib.sha256(body).digest(), hashlib.sha256(self.big).digest())
        r, body = self.get("/big.bin", {"Range": "bytes=1048576-1048591"}, port=pub)
        self.assertEqual((r.status, body), (206, self.big[1 << 20:(1 << 20) + 16]))
        r, _ = self.get("/hello.txt", port=pub, auth=False)
        self.assertEqual(r.status, 401)
        # The same with curl: wrong password, 304, and every way out of the webroot refused.
        base = f"http://127.0.0.1:{pub}"

        def curl_code(*args):
            r = subprocess.run(["curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}"] + list(args),
                               capture_output=True, timeout=30)
            return int(r.stdout or b"0")

        self.assertEqual(curl_code("-u", "admin:wrong-password-123", f"{base}/hello.txt"), 401)
        self.assertEqual(curl_code("-u", f"admin:{TOKEN}", f"{base}/hello.txt"), 200)
        r = subprocess.run(["curl", "-sS", "-u", f"admin:{TOKEN}", "-D", "-", "-o", "/dev/null", f"{base}/hello.txt"],
                           capture_output=True, timeout=30)
        etag = [l.split(":", 1)[1].strip() for l in r.stdout.decode().splitlines() if l.lower().startswith("etag:")][0]
        self.assertEqual(curl_code("-u", f"admin:{TOKEN}", "-H", f"If-None-Match: {etag}", f"{base}/hello.txt"), 304)
        for evil in ("/../outside.txt", "/%2e%2e/outside.txt", "/sub%20dir/..%2f..%2foutside.txt", "/link-out",
                     "/hello.txt%00.png", "/.secret", "//etc/passwd", "/%2fetc%2fpasswd"):
            code = curl_code("--path-as-is", "-u", f"admin:{TOKEN}", base + evil)
            self.assertIn(code, (400, 403, 404), evil)
        print("through the tunnel: 64 MiB intact, ranges, 304, auth enforced, traversal refused (curl)")

        # A real browser renders the listing through the tunnel (basic auth in the URL).
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not chromium:
            self.skipTest("chromium not installed (tools/deps installs it)")
        prof = f"{self.tmp}/chromium-profile"
        r = subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                            f"--user-data-dir={prof}", "--dump-dom", f"http://admin:{TOKEN}@127.0.0.1:{pub}/"],
                           capture_output=True, timeout=90)
        dom = r.stdout.decode()
        self.assertIn("<title>Index of /</title>", dom, r.stderr.decode()[-2000:])
        links = Links()
        links.feed(dom)
        self.assertEqual(sorted(links.links), sorted(["sub%20dir/", "hello.txt", "%3Cb%3E%26%22x%27.txt", "big.bin", "fifo",
                                                      "link-in"]))
        # The odd name is text in the DOM, not markup.
        self.assertIn("&lt;b&gt;&amp;\"x'.txt", dom)
        self.assertNotIn("OUTSIDE", dom)
        print("chromium: the listing renders with the expected links; names escaped")


if __name__ == "__main__":
    main()

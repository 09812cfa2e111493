# SPDX-License-Identifier: LGPL-2.1-or-later
"""A small HTTP/1.1 origin server for the HTTP-mode tests, on its own thread: keep-alive,
Content-Length and chunked request bodies, and the endpoints the tests ask for.

  GET  /hello           "hello from NAME"
  GET  /headers         the request line and headers as JSON
  POST /sha             {"len": N, "sha256": ...} of the body
  POST /echo            the body back (Content-Length)
  GET  /size/N          N bytes of a fixed pattern
  GET  /sse             three server-sent events, 300 ms apart (chunked)
  GET  /slow            answers after 5 s
  GET  /trailers        a chunked body with a trailer
  GET  /ws              WebSocket echo (RFC 6455, text and binary)
"""

import asyncio
import base64
import hashlib
import json
import socket
import struct
import threading

PATTERN = bytes(range(256)) * 4096  # 1 MiB


def pattern(n):
    out = bytearray()
    while len(out) < n:
        out += PATTERN[: n - len(out)]
    return bytes(out)


class HttpUpstream:
    def __init__(self, name, host="127.0.0.1", tls=None):
        self.name = name
        self.host = host
        self.tls = tls
        self.requests = []  # (method, path, headers) of every request
        self.connections = 0
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self._sock = sock
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def url(self, path=""):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def start():
            self.server = await asyncio.start_server(self._serve, sock=self._sock, ssl=self.tls)
            self._ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def close(self):
        async def stop():
            self.server.close()
            tasks = [t for t in asyncio.all_tasks(self.loop) if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)

    async def _read_body(self, r, headers):
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                line = await r.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while (await r.readline()) not in (b"\r\n", b""):
                        pass  # trailers
                    return bytes(body)
                body += await r.readexactly(size)
                await r.readexactly(2)
        n = int(headers.get("content-length", "0"))
        return await r.readexactly(n) if n else b""

    async def _serve(self, r, w):
        self.connections += 1
        # A head and a body written apart would otherwise wait for the client's delayed ACK
        # (40 ms a response on a kept-alive connection: asyncio leaves a passed-in socket's
        # accepted connections without TCP_NODELAY).
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                line = await r.readline()
                if not line:
                    return
                method, path, version = line.decode().split()
                headers = {}
                raw = []
                while True:
                    h = await r.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, v = h.decode().split(":", 1)
                    headers[k.strip().lower()] = v.strip()
                    raw.append([k.strip(), v.strip()])
                self.requests.append((method, path, headers))
                if path == "/ws" and headers.get("upgrade", "").lower() == "websocket":
                    await self._websocket(r, w, headers)
                    return
                body = await self._read_body(r, headers)
                keep = headers.get("connection", "").lower() != "close"
                await self._answer(w, method, path, headers, raw, body, keep)
                if not keep:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            w.close()

    def _head(self, w, status, headers, length=None):
        lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers]
        lines.append(f"X-Upstream: {self.name}")
        if length is not None:
            lines.append(f"Content-Length: {length}")
        w.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def _answer(self, w, method, full_path, headers, raw, body, keep):
        no_body = method == "HEAD"
        path = full_path.split("?")[0]

        def simple(status, data, ctype="text/plain"):
            self._head(w, status, [("Content-Type", ctype)], len(data))
            if not no_body:
                w.write(data)

        if path == "/hello":
            simple("200 OK", f"hello from {self.name}\n".encode())
        elif path == "/headers" or path.startswith("/prefixed"):
            simple("200 OK", json.dumps({"method": method, "path": full_path, "headers": raw}).encode(),
                   "application/json")
        elif path == "/sha":
            simple("200 OK", json.dumps({"len": len(body), "sha256": hashlib.sha256(body).hexdigest()}).encode(),
                   "application/json")
        elif path == "/echo":
            simple("200 OK", body, "application/octet-stream")
        elif path.startswith("/size/"):
            n = int(path[6:])
            self._head(w, "200 OK", [("Content-Type", "application/octet-stream")], n)
            if not no_body:
                for off in range(0, n, len(PATTERN)):
                    w.write(PATTERN[: min(len(PATTERN), n - off)])
                    await w.drain()
        elif path == "/sse":
            self._head(w, "200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"),
                                     ("Transfer-Encoding", "chunked")])
            for i in range(3):
                ev = f"data: event {i}\n\n".encode()
                w.write(b"%x\r\n%s\r\n" % (len(ev), ev))
                await w.drain()
                await asyncio.sleep(0.3)
            w.write(b"0\r\n\r\n")
        elif path == "/trailers":
            self._head(w, "200 OK", [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked"),
                                     ("Trailer", "X-Checksum")])
            w.write(b"5\r\nhello\r\n0\r\nX-Checksum: abc123\r\n\r\n")
        elif path == "/slow":
            await asyncio.sleep(5)
            simple("200 OK", b"late\n")
        elif path == "/nocontent":
            self._head(w, "204 No Content", [])
        else:
            simple("404 Not Found", b"no such thing\n")
        await w.drain()

    async def _websocket(self, r, w, headers):
        key = headers["sec-websocket-key"]
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        w.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        await w.drain()
        while True:
            b0, b1 = await r.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await r.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await r.readexactly(8))[0]
            mask = await r.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
            data = bytes(c ^ mask[i % 4] for i, c in enumerate(await r.readexactly(n)))
            op = b0 & 0x0F
            if op == 8:
                w.write(b"\x88\x02\x03\xe8")
                await w.drain()
                return
            if n < 126:
                hdr = bytes([0x80 | op, n])
            elif n < 65536:
                hdr = bytes([0x80 | op, 126]) + struct.pack("!H", n)
            else:
                hdr = bytes([0x80 | op, 127]) + struct.pack("!Q", n)
            w.write(hdr + data)
            await w.drain()

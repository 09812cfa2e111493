#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Our WebSocket layer against an independent implementation, python3-websockets (with
OpenSSL for TLS): handshake, 401, ping/pong, fragmented and oversized messages, close —
against our server, and as a server against our client."""

import asyncio
import base64
import hashlib
import re
import socket
import ssl
import struct
import time

import websockets
import websockets.exceptions

from inletstest import TOKEN, TunnelTest, free_port, main, wait_until

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = struct.pack(">I", 0)[1:] + bytes([4, 0]) + struct.pack(">I", 0)         # empty SETTINGS
SETTINGS_ACK = struct.pack(">I", 0)[1:] + bytes([4, 1]) + struct.pack(">I", 0)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


class WsPeers(TunnelTest):
    def connect(self, token=TOKEN, ports=None, **kw):
        ctx = ssl.create_default_context(cafile=f"{self.tmp}/state/ca.crt")
        headers = {"Authorization": f"Bearer {token}", "X-Inlets-Ports": str(ports or free_port()),
                   "X-Inlets-Client-Id": "pyws"}
        return websockets.connect(f"wss://127.0.0.1:{self.control_port}/connect", ssl=ctx,
                                  extra_headers=headers, max_size=None, **kw)

    @staticmethod
    async def read_until(ws, needle):
        buf = b""
        while needle not in buf:
            buf += await ws.recv()
        return buf

    def test_handshake_ping_fragments_close(self):
        srv = self.server()

        async def go():
            async with self.connect() as ws:
                first = await ws.recv()
                self.assertTrue(first.startswith(PREFACE), first[:30])
                pong = await ws.ping(b"are-you-there")
                await asyncio.wait_for(pong, 5)
                # A SETTINGS frame split over three WebSocket fragments must be reassembled.
                await ws.send([SETTINGS[:2], SETTINGS[2:5], SETTINGS[5:]])
                await self.read_until(ws, SETTINGS_ACK)
                await ws.close(1000)
                self.assertEqual(ws.close_code, 1000)
        run(go())
        srv.wait_log("Client pyws (127.0.0.1")
        srv.wait_log("left")
        print("python-websockets: 101 + HTTP/2 preface, pong, fragmented SETTINGS acked, close 1000 echoed")

    def test_bad_token_401(self):
        self.server()

        async def go():
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                async with self.connect(token="not-the-right-token-at-all"):
                    pass
            self.assertEqual(cm.exception.status_code, 401)
        run(go())
        print("python-websockets: wrong token gets 401")

    def test_oversized_message(self):
        self.server(extra_server="MaxFrameSize=64K")

        async def go():
            async with self.connect() as ws:
                await ws.recv()
                await ws.send(b"\0" * (65 * 1024))
                with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                    while True:
                        await ws.recv()
                self.assertEqual(cm.exception.rcvd.code, 1009)
        run(go())
        print("python-websockets: a message over MaxFrameSize= is closed with 1009")

    def test_text_messages_are_control(self):
        """Text messages are the control channel: unknown commands get an error answer, an
        offer update an ok, an oversized one close 1009; binary traffic is unaffected."""
        self.server()

        async def go():
            async with self.connect(ports=free_port()) as ws:
                await ws.recv()
                await ws.send("frobnicate")
                self.assertEqual(await self.read_text(ws), "error unknown command")
                p = free_port()
                await ws.send(f"ports {p}")
                self.assertEqual(await self.read_text(ws), f"ok ports {p}")
                await ws.send("x" * 5000)
                with self.assertRaises(websockets.exceptions.ConnectionClosed) as cm:
                    while True:
                        await ws.recv()
                self.assertEqual(cm.exception.rcvd.code, 1009)
        run(go())
        print("python-websockets: text control messages answered; over 4096 bytes closed with 1009")

    @staticmethod
    async def read_text(ws):
        while True:
            m = await ws.recv()
            if isinstance(m, str):
                return m

    def test_our_client_against_websockets_server(self):
        """python-websockets as the server: it insists on masked client frames and answers
        our pong; our client must send the token and its offer."""
        port = free_port()
        seen = {}

        async def handler(ws, path=None):
            seen["auth"] = ws.request_headers.get("Authorization")
            seen["ports"] = ws.request_headers.get("X-Inlets-Ports")
            seen["path"] = ws.path
            await ws.send(PREFACE + SETTINGS)
            buf = await self.read_until(ws, SETTINGS_ACK)   # only readable if masking was right
            seen["settings"] = buf[:9]
            pong = await ws.ping(b"x")
            await asyncio.wait_for(pong, 5)
            seen["pong"] = True
            await ws.close(1000)

        async def go():
            async with websockets.serve(handler, "127.0.0.1", port):
                self.client("7001:7002", url=f"ws://127.0.0.1:{port}", ca=False, wait=False)
                for _ in range(200):
                    if "pong" in seen:
                        break
                    await asyncio.sleep(0.05)
        run(go())
        self.assertEqual(seen.get("auth"), f"Bearer {TOKEN}")
        self.assertEqual(seen.get("ports"), "7001")
        self.assertEqual(seen.get("path"), "/connect")
        self.assertEqual(seen.get("settings", b"")[3], 4, "our client's first frame is SETTINGS")
        self.assertTrue(seen.get("pong"))
        cli = self.daemons[-1]
        cli.wait_log("peer closed the WebSocket (1000")
        print("python-websockets server: our client masks, answers ping, sends token and offer, honours close")

    def test_client_masking_keys_are_fresh(self):
        """Our client's frames, read raw off a plain ws:// connection: each masked with its own
        non-zero key (keys come from a pool filled by the nonce generator)."""
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        ls.settimeout(10)
        self.client("7001:7002", url=f"ws://127.0.0.1:{ls.getsockname()[1]}", ca=False, wait=False)
        c, _ = ls.accept()
        c.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            head += c.recv(4096)
        key = re.search(rb"(?i)sec-websocket-key: *([^\r]+)", head).group(1)
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        data = PREFACE + SETTINGS
        c.sendall(bytes([0x82, len(data)]) + data)
        buf, keys = b"", []
        end = time.monotonic() + 5
        while len(keys) < 3 and time.monotonic() < end:
            if c.send(bytes([0x82, 17]) + struct.pack(">I", 8)[1:] + bytes([6, 0]) + bytes(4) + b"pingping") <= 0:
                break   # a PING each round: every answer is one more client frame
            buf += c.recv(65536)
            while len(buf) >= 2:
                n, off = buf[1] & 0x7F, 2
                if n == 126:
                    n, off = struct.unpack(">H", buf[2:4])[0], 4
                elif n == 127:
                    n, off = struct.unpack(">Q", buf[2:10])[0], 10
                if not buf[1] & 0x80 or len(buf) < off + 4 + n:
                    break
                keys.append(buf[off:off + 4])
                buf = buf[off + 4 + n:]
        c.close()
        ls.close()
        self.assertGreaterEqual(len(keys), 3, "client frames")
        self.assertNotIn(bytes(4), keys)
        self.assertEqual(len(set(keys)), len(keys), f"keys repeat: {keys}")
        print(f"{len(keys)} client frames, each with its own non-zero masking key")


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fake peers of the tunnel protocol, written with python3-h2 over our own WebSocket framing, for
tests that play the other end: FakeClient is a tunnel client that holds the token and does as it
pleases to the exit server; FakeExitServer is a foreign exit server on ws:// that opens CONNECT
streams as it pleases to a tunnel client, and answers every control message as a server that
does not know it ("error unknown command")."""

import base64
import hashlib
import os
import socket
import ssl
import struct
import time

import h2.config
import h2.connection
import h2.events

from inletstest import TOKEN, wait_until

# X-Inlets-Resume's version (lib/wire/resume.h)
RESUME_VERSION = "3"


def ws_take_frame(buf, masked):
    """The first complete WebSocket frame of buf: (opcode, payload unmasked, the rest of buf), or
    None while it is incomplete."""
    if len(buf) < 2:
        return None
    n, off = buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, off = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, off = struct.unpack("!Q", buf[2:10])[0], 10
    mlen = 4 if masked else 0
    if len(buf) < off + mlen + n:
        return None
    payload = buf[off + mlen:off + mlen + n]
    if masked:
        mask = buf[off:off + 4]
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return buf[0] & 0x0F, payload, buf[off + mlen + n:]


class FakeClient:
    def __init__(self, port, ca, ports, settings=None, hosts=None, resume=False):
        ctx = ssl.create_default_context(cafile=ca)
        ctx.check_hostname = False
        self.s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET /connect HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                        f"Authorization: Bearer {TOKEN}\r\n"
                        + (f"X-Inlets-Mode: http\r\nX-Inlets-Hosts: {hosts}\r\n" if hosts else
                           f"X-Inlets-Mode: tcp\r\nX-Inlets-Ports: {ports}\r\n")
                        + (f"X-Inlets-Resume: {RESUME_VERSION}\r\n" if resume else "") +
                        "X-Inlets-Client-Id: hostile\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.s.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.head = head.decode(errors="replace")
        self.buf = b""
        self.texts = []
        self.received = {}   # stream id -> bytes of DATA (with pump(consume=True))
        self.data = {}       # stream id -> the DATA itself (with pump(consume=True))
        self.ended = set()   # streams the server reset or ended
        self.requests = {}   # stream id -> request headers
        # (CONNECT without :path is valid HTTP/2 (RFC 9113 §8.5), but h2 insists on :path.)
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                      validate_inbound_headers=False))
        self.h2.initiate_connection()
        if settings:
            self.h2.update_settings(settings)
        self.flush()

    def send_ws(self, data):
        # A zero masking key is valid (RFC 6455 §5.3) and lets bulk data skip Python's XOR loop.
        mask = os.urandom(4) if len(data) < 65536 else bytes(4)
        n = len(data)
        hdr = bytes([0x82, 0x80 | n]) if n < 126 else (bytes([0x82, 0xFE]) + struct.pack("!H", n) if n < 65536
                                                       else bytes([0x82, 0xFF]) + struct.pack("!Q", n))
        masked = data if mask == bytes(4) else bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.s.sendall(hdr + mask + masked)

    def send_text(self, text):
        data = text.encode() if isinstance(text, str) else text
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0xFE]) + struct.pack("!H", n)
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def ask(self, text, timeout=5):
        """Sends a control message and returns the next text message that comes back."""
        n = len(self.texts)
        self.send_text(text)
        wait_until(lambda: self.pump(0.05) and len(self.texts) > n, timeout, f"an answer to {text[:40]!r}")
        return self.texts[n]

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.send_ws(data)

    def pump(self, seconds, on_request=None, consume=False):
        """Reads WebSocket frames into the HTTP/2 state machine; answers CONNECTs with 200 (or
        calls on_request(stream_id) instead). With consume, DATA is counted (received) and its
        window given back at once, as a reader that keeps up would."""
        self.s.settimeout(0.1)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                chunk = self.s.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            if not chunk:
                return False
            self.buf += chunk
            while (frame := ws_take_frame(self.buf, masked=False)):
                op, payload, self.buf = frame
                if op == 2:
                    for ev in self.h2.receive_data(payload):
                        if isinstance(ev, (h2.events.StreamReset, h2.events.StreamEnded)):
                            self.ended.add(ev.stream_id)
                        if isinstance(ev, h2.events.DataReceived) and consume:
                            self.received[ev.stream_id] = self.received.get(ev.stream_id, 0) + len(ev.data)
                            self.data[ev.stream_id] = self.data.get(ev.stream_id, b"") + ev.data
                            self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                        if isinstance(ev, h2.events.RequestReceived):
                            self.requests[ev.stream_id] = dict((k.decode() if isinstance(k, bytes) else k,
                                                                v.decode() if isinstance(v, bytes) else v)
                                                               for k, v in ev.headers)
                            if on_request:
                                on_request(ev.stream_id)
                            else:
                                self.h2.send_headers(ev.stream_id, [(":status", "200")])
                    self.flush()
                elif op == 1:
                    self.texts.append(payload.decode(errors="replace"))
                elif op == 8:
                    return False
        return True


class FakeExitServer:
    """A foreign exit server on ws:// that opens CONNECT streams as it pleases (python3-h2)."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        self.s = None
        self.buf = b""
        self.texts = []       # control messages from the client
        self.ended = set()    # streams the client reset or ended
        self.data = {}        # what each stream brought back
        self.responses = {}   # stream id -> response headers
        self.answer_unknown = True  # answer each control message as an older server would
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=False))

    def accept(self):
        self.ls.settimeout(15)
        self.s, _ = self.ls.accept()
        self.s.settimeout(15)
        head = b""
        while b"\r\n\r\n" not in head:
            b = self.s.recv(4096)
            if not b:
                raise AssertionError("the client closed during the upgrade")
            head += b
        key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key:")][0]
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        self.s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        self.buf = head.partition(b"\r\n\r\n")[2]
        self.h2.initiate_connection()
        self.flush()

    def flush(self):
        data = self.h2.data_to_send()
        if data:  # server to client: unmasked
            n = len(data)
            hdr = bytes([0x82, n]) if n < 126 else (bytes([0x82, 126]) + struct.pack("!H", n) if n < 65536
                                                      else bytes([0x82, 127]) + struct.pack("!Q", n))
            self.s.sendall(hdr + data)

    def send_text(self, text):
        """A control message to the client (server to client: unmasked)."""
        data = text.encode()
        n = len(data)
        self.s.sendall((bytes([0x81, n]) if n < 126 else bytes([0x81, 126]) + struct.pack("!H", n)) + data)

    def connect_forward(self, authority, forward_id, data):
        """A forward stream (x-inlets-forward) carrying data; its stream id."""
        sid = self.h2.get_next_available_stream_id()
        self.h2.send_headers(sid, [(":method", "CONNECT"), (":authority", authority),
                                   ("x-inlets-forward", str(forward_id))])
        self.h2.send_data(sid, data)
        self.flush()
        return sid

    def connect_stream(self, authority, peer, data):
        sid = self.h2.get_next_available_stream_id()
        headers = [(":method", "CONNECT"), (":authority", authority)]
        if peer is not None:
            headers.append(("x-forwarded-for", peer))
        self.h2.send_headers(sid, headers)
        self.h2.send_data(sid, data, end_stream=True)
        self.flush()

    def connect_udp(self, authority, peer, data=b""):
        """A CONNECT-UDP stream (RFC 9298 over extended CONNECT) for the flow of peer, its first
        capsules in data; its stream id."""
        sid = self.h2.get_next_available_stream_id()
        host, _, port = authority.rpartition(":")
        self.h2.send_headers(sid, [(":method", "CONNECT"), (":protocol", "connect-udp"), (":scheme", "https"),
                                   (":authority", authority),
                                   (":path", f"/.well-known/masque/udp/{host.strip('[]')}/{port}/"),
                                   ("capsule-protocol", "?1"), ("x-forwarded-for", peer)])
        if data:
            self.h2.send_data(sid, data)
        self.flush()
        return sid

    def pump_until(self, pred, timeout):
        end = time.monotonic() + timeout
        self.s.settimeout(0.1)
        while not pred():
            if time.monotonic() > end:
                raise AssertionError("timed out pumping the fake server's session")
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise AssertionError("the client closed the session")
            self.buf += chunk
            while (frame := ws_take_frame(self.buf, masked=True)):  # client to server: masked
                op, payload, self.buf = frame
                if op == 2:
                    for ev in self.h2.receive_data(payload):
                        if isinstance(ev, h2.events.DataReceived):
                            self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                            self.data[ev.stream_id] = self.data.get(ev.stream_id, b"") + ev.data
                        elif isinstance(ev, (h2.events.StreamReset, h2.events.StreamEnded)):
                            self.ended.add(ev.stream_id)
                        elif isinstance(ev, h2.events.ResponseReceived):
                            self.responses[ev.stream_id] = dict(ev.headers)
                    self.flush()
                elif op == 1:  # a control message: answered as a server of this version would not know it
                    self.texts.append(payload.decode(errors="replace"))
                    if self.answer_unknown:
                        answer = b"error unknown command"
                        self.s.sendall(bytes([0x81, len(answer)]) + answer)

    def close(self):
        if self.s:
            self.s.close()
        self.ls.close()

# SPDX-License-Identifier: LGPL-2.1-or-later
"""Public visitors for the integration tests, each from a chosen loopback source address
(127.0.0.2, 127.0.0.3 … are distinct peers): raw TCP, curl over HTTP/1.1 and HTTP/2 over TLS."""

import socket
import ssl
import subprocess
import time

import h2.config
import h2.connection
import h2.events


def dial(src, port, timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def tcp_roundtrip(src, port, data=b"hello through the tunnel"):
    """data sent from src, half-closed; what comes back before the close."""
    s = dial(src, port)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out
            out += b
    finally:
        s.close()


def tcp_refused(src, port):
    """Connects from src and says something: the bytes that came back before the connection
    ended (b"" when refused), or None when it stayed open for 5 s."""
    s = dial(src, port, timeout=5)
    out = b""
    try:
        s.sendall(b"anyone there?")
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


def curl_full(src, url, host, timeout=20, headers=(), args=()):
    """HTTP/1.1 from src, with extra headers ("Name: value") and curl arguments: (status, the
    response's fields as a dict of lower-case names, body)."""
    extra = [a for h in headers for a in ("-H", h)]
    r = subprocess.run(["curl", "-sS", "-k", "--http1.1", "--max-time", str(timeout), "--interface", src,
                        "-H", f"Host: {host}", *extra, *args, "-D", "-", url], capture_output=True,
                       timeout=timeout + 10)
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    fields = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        fields[k.strip().lower()] = v.strip()
    return (int(lines[0].split()[1]) if lines[0].startswith("HTTP/") else None), fields, body


def curl(src, url, host, timeout=20, headers=()):
    """HTTP/1.1 from src, with extra headers ("Name: value"): (status, body)."""
    status, _, body = curl_full(src, url, host, timeout, headers)
    return status, body


def h2_get(src, port, authority, path="/hello", timeout=10.0, headers=()):
    """One HTTP/2 request over TLS (ALPN h2) from src, with extra headers: (status, body)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(dial(src, port, timeout), server_hostname="x.test")
    try:
        assert s.selected_alpn_protocol() == "h2", s.selected_alpn_protocol()
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        c.initiate_connection()
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "https"),
                             (":authority", authority)] + list(headers), end_stream=True)
        s.sendall(c.data_to_send())
        status, body, end = None, b"", time.monotonic() + timeout
        while time.monotonic() < end:
            raw = s.recv(65536)
            if not raw:
                break
            for ev in c.receive_data(raw):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    status = int(dict(ev.headers)[":status"])
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    body += ev.data
                    c.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    return status, body
            s.sendall(c.data_to_send())
        return status, body
    finally:
        s.close()

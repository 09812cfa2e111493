# SPDX-License-Identifier: LGPL-2.1-or-later
"""Run inside the container's network namespace by e2e-nspawn.py: one echo round trip."""
import socket


def echo(port, payload, timeout=20):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.sendall(payload.encode())
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
        s.close()
        return out
    except OSError as e:
        return f"error: {e}".encode()

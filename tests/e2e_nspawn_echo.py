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


def stream(port, chunks, size, pause):
    """A long echo transfer: prints "flowing" once bytes came back, then "done SENT GOT equal|differ"
    (or "error ...")."""
    import hashlib
    import sys
    import threading
    import time
    sent, got, n_got, err = hashlib.sha256(), hashlib.sha256(), [0], []
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
    except OSError as e:
        print(f"error {e}", flush=True)
        return

    def reader():
        said = False
        try:
            while n_got[0] < chunks * size:
                b = s.recv(1 << 20)
                if not b:
                    err.append(f"closed after {n_got[0]}")
                    return
                got.update(b)
                n_got[0] += len(b)
                if not said and n_got[0] >= 4 * size:
                    print("flowing", flush=True)
                    said = True
        except OSError as e:
            err.append(f"recv: {e}")
    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(chunks):
            b = hashlib.sha256(i.to_bytes(8, "big")).digest() * (size // 32)
            sent.update(b)
            s.sendall(b)
            time.sleep(pause)
    except OSError as e:
        err.append(f"send: {e}")
    t.join(120)
    s.close()
    if err:
        print(f"error {err}", flush=True)
    else:
        print(f"done {chunks * size} {n_got[0]} {'equal' if sent.digest() == got.digest() else 'differ'}",
              flush=True)
    sys.stdout.flush()

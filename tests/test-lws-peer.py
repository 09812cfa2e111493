#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Our server against libwebsockets (an independent WebSocket and TLS implementation)."""

import os
import subprocess

from inletstest import TOKEN, TunnelTest, main

LWS_PEER = os.environ.get("LWS_PEER", "build/tests/lws-peer")


class LwsPeer(TunnelTest):
    def peer(self, mode, token=TOKEN):
        r = subprocess.run([LWS_PEER, str(self.control_port), f"{self.tmp}/state/ca.crt", token, mode],
                           capture_output=True, text=True, timeout=30)
        print(r.stdout.strip())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_handshake_ping_fragments_close(self):
        srv = self.server()
        self.peer("ok")
        srv.wait_log("Client lws (127.0.0.1")
        srv.wait_log("peer closed the WebSocket (1000")

    def test_bad_token(self):
        srv = self.server()
        self.peer("badtoken", token="this-is-not-the-token")
        srv.wait_log("Refused a client from 127.0.0.1")

    def test_oversize(self):
        self.server(extra_server="MaxFrameSize=1M")
        self.peer("oversize")


if __name__ == "__main__":
    main()

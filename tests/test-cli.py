#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""inletsd's command line: help, version, NAME lookup, and bad definitions refused before
anything is started."""

import os
import subprocess

from inletstest import INLETSD, TunnelTest, free_port, main, port_open, wait_until


def run(*args, timeout=10, env=None):
    return subprocess.run([INLETSD, *args], capture_output=True, text=True, timeout=timeout, env=env)


class Cli(TunnelTest):
    def test_help_and_version(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--config FILE", r.stdout)
        self.assertIn("--config-dir", r.stdout)
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"(?m)^inletsd \d+\.\d+\.\d+ \(git [0-9a-f]{7,}(-dirty)?\)$")
        print("--help and --version:", r.stdout.strip())

    def test_usage_errors(self):
        for args, msg in [((), "No tunnel given"), (("a", "b"), "Too many arguments"),
                          (("../etc/passwd",), "Invalid tunnel name"), (("--bogus",), "unrecognized option")]:
            r = run(*args)
            self.assertNotEqual(r.returncode, 0, args)
            self.assertIn(msg, r.stderr, args)
        print("usage errors exit non-zero with a message")

    def test_name_in_config_dir(self):
        cport, pub = free_port(), free_port()
        with open(f"{self.tmp}/rdp.conf", "w") as f:
            f.write(f"[Tunnel]\nRole=server\nTokenFile={self.token_file}\n[Server]\n"
                    f"ControlListen=127.0.0.1:{cport}\nStateDirectory={self.tmp}/st\nAutoTLSSAN=127.0.0.1\n")
        p = subprocess.Popen([INLETSD, "--no-bus", "--config-dir", self.tmp, "rdp"], stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: port_open(cport), 10, "control port")
        finally:
            p.terminate()
            _, err = p.communicate(10)
        self.assertEqual(p.returncode, 0, "SIGTERM exits 0")
        self.assertIn("Shutting down", err.replace("shutting down", "Shutting down"))
        r = run("--config-dir", self.tmp, "missing")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(f"{self.tmp}/missing.conf: No such file or directory", r.stderr)
        print("inletsd NAME reads --config-dir/NAME.conf; SIGTERM exits 0; a missing NAME is an error")

    def test_bad_definition_starts_nothing(self):
        cport = free_port()
        path = f"{self.tmp}/bad.conf"
        with open(path, "w") as f:
            f.write(f"[Tunnel]\nRole=server\nTokenFile={self.token_file}\n[Server]\n"
                    f"ControlListen=127.0.0.1:{cport}\nAutoTLS=perhaps\n")
        r = run("--config", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{path}:6: Invalid AutoTLS= value 'perhaps'", r.stderr)
        self.assertFalse(port_open(cport))
        with open(path, "w") as f:
            f.write("[Tunnel]\nRole=server\nToken=tooshort\n")
        r = run("--config", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("shorter than 16 bytes", r.stderr)
        self.assertNotIn("tooshort", r.stderr)
        print("bad definitions: exit 1, file:line in the message, no port bound, no secret echoed")

    def test_port_in_use(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        busy = s.getsockname()[1]
        with open(f"{self.tmp}/s.conf", "w") as f:
            f.write(f"[Tunnel]\nRole=server\nTokenFile={self.token_file}\n[Server]\nControlListen=127.0.0.1:{busy}\n"
                    f"StateDirectory={self.tmp}/st\n")
        r = run("--no-bus", "--config", f"{self.tmp}/s.conf")
        s.close()
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"Failed to listen on control address 127.0.0.1:{busy}: Address already in use", r.stderr)
        print("a busy control port is a clear error")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""inletsctl create --provider cloud-init: the user-data passes `cloud-init schema`; the files
it writes, laid out under a scratch root, run an exit server whose certificate the generated
client definition trusts by the CA pinned at creation (no trust on first use), and traffic
flows; the token never reaches a command line and the client's token file is 0600."""

import os
import shutil
import stat
import subprocess

import yaml

from inletstest import INLETSCTL, Daemon, TunnelTest, echo_roundtrip, free_port, main, port_open, wait_until


class Cloud(TunnelTest):
    def create(self, *args):
        out = f"{self.tmp}/client"
        os.makedirs(out, exist_ok=True)
        r = subprocess.run([INLETSCTL, "create", "--provider", "cloud-init", "--output-dir", out, *args],
                           capture_output=True, text=True, timeout=30)
        return r, out

    def test_cloud_init_exit_server(self):
        pub, cport = free_port(), free_port()
        r, out = self.create("--name", "rdp", "--ports", f"{pub}", "--control-port", str(cport), "--host", "127.0.0.1",
                             "--package-url", "https://example.org/inletsd_amd64.deb")
        self.assertEqual(r.returncode, 0, r.stderr)
        ud = r.stdout
        self.assertTrue(ud.startswith("#cloud-config\n"))
        with open(f"{self.tmp}/user-data", "w") as f:
            f.write(ud)
        if shutil.which("cloud-init"):
            v = subprocess.run(["cloud-init", "schema", "--config-file", f"{self.tmp}/user-data"], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
            self.assertIn("Valid cloud-config", v.stdout + v.stderr)
        doc = yaml.safe_load(ud)
        files = {f["path"]: f for f in doc["write_files"]}
        self.assertEqual(sorted(files), ["/etc/inlets.d/rdp.conf", "/etc/inlets.d/rdp.token",
                                         "/var/lib/inlets/rdp/ca.crt", "/var/lib/inlets/rdp/ca.key"])
        self.assertEqual(files["/etc/inlets.d/rdp.token"]["permissions"], "0600")
        self.assertEqual(files["/var/lib/inlets/rdp/ca.key"]["permissions"], "0600")
        self.assertIn(["systemctl", "enable", "--now", "inletsd@rdp.service"], doc["runcmd"])
        self.assertIn(["apt-get", "install", "-y", "/tmp/inletsd.deb"], doc["runcmd"])

        # The client side: 0600 token equal to the host's, the CA, a definition pinning it.
        self.assertEqual(stat.S_IMODE(os.stat(f"{out}/rdp.token").st_mode), 0o600)
        with open(f"{out}/rdp.token") as f:
            self.assertEqual(f.read(), files["/etc/inlets.d/rdp.token"]["content"])
        with open(f"{out}/rdp-ca.crt") as f:
            self.assertEqual(f.read(), files["/var/lib/inlets/rdp/ca.crt"]["content"])
        with open(f"{out}/rdp.conf") as f:
            client_conf = f.read()
        self.assertIn("ServerFingerprint=sha256:", client_conf)
        self.assertIn(f"URL=wss://127.0.0.1:{cport}", client_conf)

        # The host, played on loopback: the written files under a scratch root, the token as
        # the unit's credential, the state directory as systemd would give it.
        root = f"{self.tmp}/root"
        for path, f in files.items():
            os.makedirs(os.path.dirname(root + path), exist_ok=True)
            with open(root + path, "w") as fh:
                fh.write(f["content"])
            os.chmod(root + path, int(f["permissions"], 8))
        os.makedirs(f"{root}/etc/inlets.d/rdp.conf.d")
        with open(f"{root}/etc/inlets.d/rdp.conf.d/loopback.conf", "w") as fh:   # the test stays on loopback
            fh.write(f"[Server]\nControlListen=127.0.0.1:{cport}\nDataListen=127.0.0.1\n")
        creds = f"{self.tmp}/creds"
        os.makedirs(creds)
        shutil.copy(root + "/etc/inlets.d/rdp.token", f"{creds}/token")
        srv = Daemon(self.tmp, "server-host", "")
        srv.path = f"{root}/etc/inlets.d/rdp.conf"
        srv.env = {"CREDENTIALS_DIRECTORY": creds, "STATE_DIRECTORY": f"{root}/var/lib/inlets/rdp"}
        self.daemons.append(srv)
        srv.start()
        wait_until(lambda: port_open(cport), 10, "exit server")
        self.assertIn("Auto-TLS CA", srv.output())
        self.assertNotIn("Generated a new auto-TLS CA", srv.output())   # it used the CA from the user-data

        up = self.echo()
        os.makedirs(f"{out}/rdp.conf.d")
        with open(f"{out}/rdp.conf.d/upstream.conf", "w") as fh:
            fh.write(f"[Client]\nPorts=\nPorts={pub}:{up.port}\n")
        cli = Daemon(self.tmp, "client-side", "")
        cli.path = f"{out}/rdp.conf"
        self.daemons.append(cli)
        cli.start()
        cli.wait_log("Connection established")
        wait_until(lambda: port_open(pub), 10, "public port")
        self.assertEqual(echo_roundtrip(pub, b"through a created exit server"), b"through a created exit server")
        for d in (srv, cli):
            self.assertNotIn(files["/etc/inlets.d/rdp.token"]["content"].strip(), d.output())

    def test_refusals(self):
        r, out = self.create("--name", "x")
        self.assertEqual(r.returncode, 0, r.stderr)
        r, out = self.create("--name", "x")
        self.assertEqual(r.returncode, 1)
        self.assertIn("exists", r.stderr)
        r, _ = self.create("--name", "../evil")
        self.assertEqual(r.returncode, 2)
        r, _ = self.create("--name", "y", "--package-url", "http://insecure.example/x.deb")
        self.assertEqual(r.returncode, 2)
        r = subprocess.run([INLETSCTL, "create", "--provider", "digitalocean"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cloud-init", r.stderr)


if __name__ == "__main__":
    main()

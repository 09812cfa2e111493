#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""inlets-style command lines: a tunnel from flags alone, --generate=config|systemd, and
inletsctl define writing /etc/inlets.d-style files."""

import os
import re
import stat
import subprocess

from inletstest import (INLETSD, TOKEN, Daemon, TunnelTest, echo_roundtrip, free_port, main, port_open,
                        wait_until)

INLETSCTL = os.environ.get("INLETSCTL", "build/ctl/inletsctl")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20, **kw)


class InletsCli(TunnelTest):
    def flags_daemon(self, name, args, env=None):
        d = Daemon(self.tmp, name, "", args=(), env={"STATE_DIRECTORY": f"{self.tmp}/state"})
        d.path = None
        self.daemons.append(d)
        d.logf = open(d.log, "ab")
        d.proc = subprocess.Popen([INLETSD, "-v", *args], stdout=d.logf, stderr=subprocess.STDOUT,
                                  env=dict(os.environ, STATE_DIRECTORY=f"{self.tmp}/state", **(env or {})))
        return d

    def test_token_env_token_from_and_fileserver(self):
        """inlets 0.9's --token-env (the token from the environment, never on the command line or in
        a generated file), --token-from (the old name of --token-file) and "fileserver" alone."""
        up = self.echo()
        cport, pub = free_port(), free_port()
        self.flags_daemon("srv", ["tcp", "server", "--auto-tls-san", "127.0.0.1", "--control-addr", "127.0.0.1",
                                  "--control-port", str(cport), "--data-addr", "127.0.0.1", "--token-env", "MY_TOKEN"],
                          env={"MY_TOKEN": TOKEN})
        wait_until(lambda: port_open(cport), 10, "control port")
        cli = self.flags_daemon("cli", ["tcp", "client", "--url", f"wss://127.0.0.1:{cport}", "--upstream", "127.0.0.1",
                                        "--ports", f"{pub}:{up.port}", "--tls-ca", f"{self.tmp}/state/ca.crt",
                                        "--token-from", self.token_file])
        cli.wait_log("Connection established")
        wait_until(lambda: port_open(pub), 5, "public port")
        self.assertEqual(echo_roundtrip(pub, b"token from env"), b"token from env")
        self.assertNotIn("visible to every user", cli.output())
        r = run([INLETSD, "tcp", "client", "--url", "wss://h", "--upstream", "h", "--ports", "22", "--token-env", "NOPE"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--token-env: the environment variable 'NOPE' is not set", r.stderr)
        r = run([INLETSD, "tcp", "server", "--token-env", "MY_TOKEN", "--generate=config"],
                env=dict(os.environ, MY_TOKEN=TOKEN))
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn(TOKEN, r.stdout + r.stderr)
        self.assertIn("use --token-file", r.stderr)
        a = run([INLETSD, "fileserver", "--webroot", "/srv", "--allow-browsing", "--generate=config"])
        b = run([INLETSD, "http", "fileserver", "--webroot", "/srv", "--allow-browsing", "--generate=config"])
        self.assertEqual((a.returncode, a.stdout), (0, b.stdout))
        self.assertIn("Role=fileserver", a.stdout)
        print("--token-env and --token-from carry a tunnel; an unset variable and --generate with --token-env "
              "refused without the token; 'fileserver' = 'http fileserver'")

    def test_tunnel_from_flags(self):
        up = self.echo()
        cport, pub = free_port(), free_port()
        srv = self.flags_daemon("srv", ["tcp", "server", "--auto-tls-san", "127.0.0.1", "--control-addr", "127.0.0.1",
                                        "--control-port", str(cport), "--data-addr", "127.0.0.1",
                                        "--token-file", self.token_file])
        wait_until(lambda: port_open(cport), 10, "control port")
        cli = self.flags_daemon("cli", ["tcp", "client", "--url", f"wss://127.0.0.1:{cport}", "--upstream", "127.0.0.1",
                                        "--ports", f"{pub}:{up.port}", "--tls-ca", f"{self.tmp}/state/ca.crt",
                                        "--token", TOKEN])
        cli.wait_log("Connection established")
        wait_until(lambda: port_open(pub), 5, "public port")
        self.assertEqual(echo_roundtrip(pub, b"from flags"), b"from flags")
        self.assertIn("--token is visible to every user", cli.output())
        self.assertIn("Auto-TLS CA", srv.output())
        self.assertNotIn(TOKEN, srv.output() + cli.output())
        print("inletsd tcp server / tcp client from flags alone carry traffic; --token warns")

    def test_generate_k8s_yaml_and_inlets_flags(self):
        """--generate=k8s_yaml with -p, --upstream HOST:PORT and --license-file (accepted, not read):
        the YAML parses to a ConfigMap and a Deployment with the token from a Secret, and the
        definition in the ConfigMap carries a tunnel."""
        import yaml
        up = self.echo()
        cport, pub = free_port(), free_port()
        self.flags_daemon("srv", ["tcp", "server", "--auto-tls-san", "127.0.0.1", "--control-addr", "127.0.0.1",
                                  "--control-port", str(cport), "--data-addr", "127.0.0.1", "--token-file", self.token_file])
        wait_until(lambda: port_open(cport), 10, "control port")
        r = run([INLETSD, "--name", "office", "tcp", "client", "--url", f"wss://127.0.0.1:{cport}", "-p", str(pub),
                 "--upstream", f"127.0.0.1:{up.port}", "--tls-ca", f"{self.tmp}/state/ca.crt",
                 "--token-file", self.token_file, "--license-file", "/nonexistent/license", "--generate=k8s_yaml"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("inletsd needs no licence", r.stderr)
        docs = [x for x in yaml.safe_load_all(r.stdout) if x]
        self.assertEqual([x["kind"] for x in docs], ["ConfigMap", "Deployment"])
        conf = docs[0]["data"]["office.conf"]
        self.assertIn(f"Ports={pub}:127.0.0.1:{up.port}\n", conf)
        pod = docs[1]["spec"]["template"]["spec"]
        self.assertEqual(pod["volumes"][1]["secret"]["secretName"], "office-token")
        self.assertEqual(pod["containers"][0]["args"], ["--no-bus", "--config", "/etc/inlets.d/office.conf"])
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertNotIn(TOKEN, r.stdout)
        r = run([INLETSD, "tcp", "client", "--url", "wss://h", "-p", "22", "--license", "LICENSE-JWT",
                 "--token-file", self.token_file, "--generate=systemd"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("LICENSE-JWT", r.stdout)
        # The definition as the pod would read it (the token at this machine's path).
        cli = Daemon(self.tmp, "office", conf.replace("/var/run/secrets/inlets/token", self.token_file))
        self.daemons.append(cli)
        cli.start()
        cli.wait_log("Connection established")
        wait_until(lambda: port_open(pub), 5, "public port")
        self.assertEqual(echo_roundtrip(pub, b"from the ConfigMap"), b"from the ConfigMap")
        print("--generate=k8s_yaml: ConfigMap + Deployment + Secret reference; the ConfigMap's definition carries "
              "a tunnel (with -p and --upstream HOST:PORT)")

    def test_generate_config_round_trip(self):
        r = run([INLETSD, "--name", "rdp", "tcp", "server", "--auto-tls-san", "203.0.113.10", "--allow-ports",
                 "3389 5000-5010", "--token", TOKEN, "--generate=config"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(TOKEN, r.stdout)                 # never inline
        self.assertIn("AllowPorts=3389 5000-5010", r.stdout)
        self.assertIn("ControlListen=0.0.0.0:8123", r.stdout)   # inlets' default
        d = f"{self.tmp}/defs"
        os.makedirs(d)
        with open(f"{d}/rdp.conf", "w") as f:
            f.write(r.stdout)
        with open(f"{d}/rdp.token", "w") as f:
            f.write(TOKEN)
        c = run([INLETSCTL, "check", "--config-dir", d, "rdp"])
        self.assertEqual(c.returncode, 0, c.stderr)
        r = run([INLETSD, "http", "fileserver", "--webroot", "/srv", "--allow-browsing", "--generate=config"])
        self.assertIn("Listen=127.0.0.1:8080", r.stdout)
        self.assertIn("AllowBrowsing=yes", r.stdout)
        print("--generate=config: the token never inline, inlets defaults explicit, the file passes check")

    def test_generate_systemd(self):
        r = run([INLETSD, "--name", "rdp", "tcp", "server", "--auto-tls-san", "203.0.113.10", "--token", TOKEN,
                 "--generate=systemd"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(TOKEN, r.stdout)
        self.assertIn("Type=notify", r.stdout)
        self.assertIn("LoadCredential=token:", r.stdout)
        exec_line = re.search(r"^ExecStart=(.*)$", r.stdout, re.M).group(1)
        self.assertIn("tcp server --auto-tls-san 203.0.113.10", exec_line)
        self.assertNotIn("--token", exec_line)
        self.assertNotIn("--generate", exec_line)
        self.assertIn("\nCapabilityBoundingSet=\n", r.stdout)
        self.assertNotIn("CAP_NET_BIND_SERVICE", r.stdout)
        r = run([INLETSD, "--name", "web", "http", "server", "--port", "80", "--token", TOKEN, "--generate=systemd"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("AmbientCapabilities=CAP_NET_BIND_SERVICE", r.stdout)
        print("--generate=systemd: a standalone notify unit, token as a credential, not on the command line; "
              "CAP_NET_BIND_SERVICE only for a server that binds port 80 itself")

    def test_define(self):
        d = f"{self.tmp}/etc"
        r = run([INLETSCTL, "--config-dir", d, "define", "office", "tcp", "client", "--url", "wss://203.0.113.10:8123",
                 "--upstream", "192.168.1.20", "--ports", "3389"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("systemctl enable --now inletsd@office", r.stdout)
        self.assertEqual(stat.S_IMODE(os.stat(f"{d}/office.token").st_mode), 0o600)
        with open(f"{d}/office.token") as f:
            self.assertRegex(f.read(), r"^[0-9a-f]{64}$")
        self.assertEqual(run([INLETSCTL, "--config-dir", d, "check", "office"]).returncode, 0)
        again = run([INLETSCTL, "--config-dir", d, "define", "office", "tcp", "client", "--url", "wss://x",
                     "--ports", "22"])
        self.assertEqual(again.returncode, 1)
        self.assertIn("exists; use --force", again.stderr)
        forced = run([INLETSCTL, "--config-dir", d, "--force", "define", "office", "tcp", "client", "--url", "wss://x",
                      "--ports", "22", "--token-file", self.token_file])
        self.assertEqual(forced.returncode, 0, forced.stderr)
        with open(f"{d}/office.token") as f:
            self.assertEqual(f.read(), TOKEN)
        print("inletsctl define: NAME.conf + NAME.token (0600, generated or from --token-file), "
              "no silent overwrite, the result passes check")

    def test_errors_and_version(self):
        for args, msg in [(["tcp", "server", "--control-port", "99999"], "--control-port: expected a port"),
                          (["tcp", "server", "--bogus"], "unknown or incomplete option '--bogus'"),
                          (["tcp", "client", "--url", "https://x", "--token", TOKEN], "--url: Invalid URL="),
                          (["tcp", "router"], "unknown command 'tcp router'")]:
            r = run([INLETSD, *args])
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(msg, r.stderr, args)
        v = run([INLETSD, "--version"])
        self.assertIn("inletsd", v.stdout)
        self.assertRegex(v.stdout, r"inletsd \d+\.\d+\.\d+ \(git ")
        print("bad flags exit 1 naming the flag; --version prints the banner, version and revision")


if __name__ == "__main__":
    main()

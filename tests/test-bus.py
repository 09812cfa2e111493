#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The D-Bus API and inletsctl on a private system bus with real polkitd: properties while
traffic flows, PropertiesChanged, Reload (good and bad files), DisconnectClient, polkit
decisions for root, for an unprivileged caller, and for one granted by a rules file."""

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

from inletstest import (TOKEN, TunnelTest, echo_roundtrip, free_port, main, port_open, wait_until)

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INLETSCTL = os.environ.get("INLETSCTL", "build/ctl/inletsctl")
POLKITD = "/usr/lib/polkit-1/polkitd"
ACTIONS = "/usr/share/polkit-1/actions/io.inletsd.policy"
RULES = "/etc/polkit-1/rules.d/49-inletsd-test.rules"

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination="org.freedesktop.PolicyKit1"/>
  </policy>
  <policy user="root">
    <allow eavesdrop="true"/>
    <allow eavesdrop="true" send_type="method_call"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <policy user="polkitd">
    <allow own="org.freedesktop.PolicyKit1"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"""


def nobody(*cmd):
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]


class Bus(TunnelTest):
    @classmethod
    def setUpClass(cls):
        cls.bdir = subprocess.check_output(["mktemp", "-d", "/tmp/inletsd-bus.XXXXXX"], text=True).strip()
        os.chmod(cls.bdir, 0o755)
        sock = f"{cls.bdir}/system_bus_socket"
        with open(f"{cls.bdir}/bus.conf", "w") as f:
            f.write(BUS_CONF.format(sock=sock, policy=f"{SRC}/dbus/io.inletsd.conf"))
        out = subprocess.check_output(["dbus-daemon", f"--config-file={cls.bdir}/bus.conf", "--fork",
                                       "--print-address=1", "--print-pid=1"], text=True).split()
        cls.bus_pid = int(out[-1])
        cls.addr = f"unix:path={sock}"
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = cls.addr
        # Our actions, where polkitd looks; removed afterwards unless a package put them there.
        cls.installed_actions = not os.path.exists(ACTIONS)
        if cls.installed_actions:
            shutil.copy(f"{SRC}/polkit/io.inletsd.policy", ACTIONS)
        cls.polkitd = subprocess.Popen([POLKITD, "--no-debug"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        wait_until(lambda: "org.freedesktop.PolicyKit1" in subprocess.run(
            ["busctl", f"--address={cls.addr}", "list", "--no-pager"], capture_output=True, text=True).stdout,
            15, "polkitd on the bus")

    @classmethod
    def tearDownClass(cls):
        cls.polkitd.terminate()
        cls.polkitd.wait(10)
        os.kill(cls.bus_pid, signal.SIGTERM)
        if cls.installed_actions and os.path.exists(ACTIONS):
            os.unlink(ACTIONS)
        if os.path.exists(RULES):
            os.unlink(RULES)
        shutil.rmtree(cls.bdir, ignore_errors=True)

    def ctl(self, *args, user=None, check=None):
        cmd = [INLETSCTL, *args]
        r = subprocess.run(nobody(*cmd) if user == "nobody" else cmd, capture_output=True, text=True, timeout=30)
        if check is not None:
            self.assertEqual(r.returncode, check, f"{args}: {r.stdout}{r.stderr}")
        return r

    def busctl(self, *args, user=None):
        cmd = ["busctl", f"--address={self.addr}", *args]
        return subprocess.run(nobody(*cmd) if user == "nobody" else cmd, capture_output=True, text=True, timeout=30)

    def start_pair(self, ports=None):
        self.up = self.echo()
        self.pub = free_port()
        self.srv = self.server(args=(), name="rdp")
        self.cli = self.client(ports or f"{self.pub}:{self.up.port}", args=(), name="rdp-client",
                               extra_client="ClientID=office")
        wait_until(lambda: port_open(self.pub), 5, "public port")

    def status(self, name, user=None):
        r = self.ctl("--json", "status", name, user=user, check=0)
        return json.loads(r.stdout)[0]

    def test_introspection_matches_xml(self):
        self.start_pair()
        r = self.busctl("--xml-interface", "introspect", "io.inletsd.Tunnel.rdp", "/io/inletsd/Tunnel")

        def members(root):
            iface = [i for i in root.iter("interface") if i.get("name") == "io.inletsd.Tunnel1"][0]
            return sorted((e.tag, e.get("name"), e.get("type"),
                           tuple((a.get("type"), a.get("direction")) for a in e.findall("arg")))
                          for e in iface)
        live = members(ET.fromstring(r.stdout))
        ref = members(ET.parse(f"{SRC}/dbus/io.inletsd.Tunnel1.xml").getroot())
        self.assertEqual(live, ref)
        print(f"live introspection matches dbus/io.inletsd.Tunnel1.xml ({len(ref)} members)")

    def test_status_counters_and_signals(self):
        self.start_pair()
        mon = subprocess.Popen(["busctl", f"--address={self.addr}", "monitor", "io.inletsd.Tunnel.rdp",
                                "--json=short"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(iter(mon.stdout.readline, "")), daemon=True)
        reader.start()
        try:
            s1 = self.status("rdp")
            self.assertEqual(s1["role"], "server")
            self.assertEqual(s1["state"], "listening")
            self.assertEqual([c["id"] for c in s1["clients"]], ["office"])
            self.assertIn(self.pub, s1["ports"])
            for key in ("name", "mode", "config_file", "control_address", "active_streams", "total_streams",
                        "bytes_in", "bytes_out", "started_at_usec", "last_error"):
                self.assertIn(key, s1)
            c1 = self.status("rdp-client")
            self.assertEqual(c1["state"], "connected")
            self.assertEqual(c1["upstreams"], [f"{self.pub}=127.0.0.1:{self.up.port}"])
            data = os.urandom(8 << 20)
            self.assertEqual(echo_roundtrip(self.pub, data), data)
            s2 = self.status("rdp")
            self.assertGreaterEqual(s2["bytes_out"], s1["bytes_out"] + len(data))
            self.assertGreaterEqual(s2["total_streams"], 1)
            # Counters are announced at most once a second: wait for the announcement.
            wait_until(lambda: any('"PropertiesChanged"' in l and "BytesOut" in l for l in list(lines)), 10,
                       "PropertiesChanged with BytesOut")
        finally:
            mon.terminate()
            mon.wait(10)
        out = "".join(lines)
        changed = [json.loads(l) for l in out.splitlines() if '"PropertiesChanged"' in l]
        self.assertTrue(any("BytesOut" in json.dumps(m.get("payload", {})) for m in changed), out[-2000:])
        text = self.ctl("status", "rdp", check=0).stdout
        self.assertIn("● rdp - inletsd exit server (tcp)", text)
        self.assertIn("office from 127.0.0.1:", text)
        self.assertNotIn(TOKEN, out + text + json.dumps(s2))
        print(f"status while traffic flows: bytes_out {s1['bytes_out']} -> {s2['bytes_out']}; "
              f"{len(changed)} PropertiesChanged seen; no token anywhere")

    def test_reload_good_and_bad(self):
        keep, drop, add = free_port(), free_port(), free_port()
        up = self.echo()
        self.srv = self.server(args=(), name="rdp")
        cli = self.client(f"{keep}:{up.port} {drop}:{up.port}", args=(), name="rdp-client")
        wait_until(lambda: port_open(keep) and port_open(drop), 5, "ports")
        # A bad file changes nothing and names file:line.
        with open(cli.path) as f:
            good = f.read()
        with open(cli.path, "a") as f:
            f.write("Ports=99999\n")
        r = self.ctl("reload", "rdp-client", check=1)
        self.assertRegex(r.stderr, rf"{cli.path}:\d+: Invalid Ports= value '99999'")
        self.assertTrue(port_open(keep) and port_open(drop))
        self.assertEqual(echo_roundtrip(keep, b"still"), b"still")
        # A good one: one port removed, one added; a connection open on the untouched port
        # lives through it, one on the removed port is reset.
        import socket
        live = socket.create_connection(("127.0.0.1", keep), timeout=5)
        live.sendall(b"before")
        self.assertEqual(live.recv(6), b"before")
        doomed = socket.create_connection(("127.0.0.1", drop), timeout=5)
        doomed.sendall(b"x")
        self.assertEqual(doomed.recv(1), b"x")
        with open(cli.path, "w") as f:
            f.write(good.replace(f"Ports={keep}:{up.port} {drop}:{up.port}", f"Ports={keep}:{up.port} {add}:{up.port}"))
        self.ctl("reload", "rdp-client", check=0)
        wait_until(lambda: port_open(add) and not port_open(drop), 10, "new port set")
        cli.wait_log("The server accepted the new offer")
        live.sendall(b"after")
        self.assertEqual(live.recv(5), b"after")
        live.close()
        try:
            gone = doomed.recv(1) == b""
        except ConnectionResetError:
            gone = True
        doomed.close()
        self.assertTrue(gone, "the connection on the removed port ends")
        self.assertEqual(echo_roundtrip(keep, b"kept"), b"kept")
        self.assertEqual(echo_roundtrip(add, b"added"), b"added")
        self.assertEqual(sorted(self.status("rdp-client")["ports"]), sorted([keep, add]))
        # SIGHUP does the same.
        cli.proc.send_signal(signal.SIGHUP)
        cli.wait_log("Reloaded.")
        self.assertEqual(cli.output().count("Connection established"), 1, "no reconnect was needed")
        print("reload: bad file refused with file:line, nothing changed; good file moved the ports in the "
              "running session: the open connection on the kept port survived, the removed port's was reset")

    def test_disconnect_client(self):
        self.start_pair()
        self.ctl("disconnect", "rdp", "office", check=0)
        self.srv.wait_log("Disconnecting client office")
        wait_until(lambda: self.cli.output().count("Connection established") >= 2, 10, "reconnect")
        r = self.ctl("disconnect", "rdp", "nobody-here", check=1)
        self.assertIn("No client with id 'nobody-here'", r.stderr)
        r = self.ctl("status", "not-running", check=3)
        self.assertIn("Tunnel 'not-running' is not running.", r.stderr)
        print("DisconnectClient drops the client (it reconnects); unknown client: exit 1; no tunnel: exit 3")

    def test_polkit(self):
        self.start_pair()
        self.ctl("reload", "rdp", check=0)                       # root passes
        s = self.status("rdp", user="nobody")                    # reading needs nothing
        self.assertEqual(s["state"], "listening")
        r = self.ctl("reload", "rdp", user="nobody", check=4)
        self.assertIn("io.inletsd.reload", r.stderr)
        r = self.ctl("disconnect", "rdp", "office", user="nobody", check=4)
        self.assertIn("io.inletsd.manage", r.stderr)
        with open(RULES, "w") as f:
            f.write('polkit.addRule(function(a, s) {\n'
                    '  if (a.id == "io.inletsd.reload" && s.user == "nobody") return polkit.Result.YES;\n});\n')
        try:
            wait_until(lambda: self.ctl("reload", "rdp", user="nobody").returncode == 0, 10, "rule to apply")
            self.ctl("disconnect", "rdp", "office", user="nobody", check=4)   # only reload was granted
        finally:
            os.unlink(RULES)
        r = self.busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                        "RequestName", "su", "io.inletsd.Tunnel.evil", "0", user="nobody")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Access denied", r.stderr)
        print("polkit: root reloads; nobody reads but is refused (exit 4, action named); "
              "a rules file grants reload only; nobody cannot own a tunnel name")

    def test_streams_and_offline_verbs(self):
        import socket
        self.start_pair()
        c = socket.create_connection(("127.0.0.1", self.pub), timeout=5)
        c.sendall(b"hello")
        self.assertEqual(c.recv(5), b"hello")
        time.sleep(0.1)
        rows = json.loads(self.ctl("--json", "streams", "rdp", check=0).stdout)
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0]["client"], "office")
        self.assertEqual(rows[0]["port"], self.pub)
        self.assertEqual(rows[0]["peer"], "127.0.0.1:%d" % c.getsockname()[1])
        self.assertGreaterEqual(rows[0]["bytes_out"], 5)
        text = self.ctl("streams", "rdp-client", check=0).stdout
        self.assertIn("1 stream.", text)
        c.close()
        wait_until(lambda: json.loads(self.ctl("--json", "streams", "rdp").stdout) == [], 5, "stream to end")
        # Offline verbs need no bus at all.
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS="unix:path=/nonexistent")
        tok = subprocess.run([INLETSCTL, "token"], capture_output=True, text=True, env=env)
        self.assertRegex(tok.stdout, r"^[0-9a-f]{64}\n$")
        ok = subprocess.run([INLETSCTL, "check", self.srv.path], capture_output=True, text=True, env=env)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn("OK (server, tcp mode)", ok.stdout)
        with open(f"{self.tmp}/bad.conf", "w") as f:
            f.write("[Tunnel]\nRole=server\nMode=udp\n")
        bad = subprocess.run([INLETSCTL, "check", f"{self.tmp}/bad.conf"], capture_output=True, text=True, env=env)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("bad.conf:3: Invalid Mode= value 'udp'", bad.stderr)
        v = subprocess.run([INLETSCTL, "--version"], capture_output=True, text=True, env=env)
        self.assertRegex(v.stdout, r"^inletsctl \d+\.\d+\.\d+ \(git ")
        h = subprocess.run([INLETSCTL, "--help"], capture_output=True, text=True, env=env)
        self.assertIn("Exit status: 0 ok, 1 error, 2 usage, 3 tunnel not running, 4 permission denied.", h.stdout)
        u = subprocess.run([INLETSCTL, "frobnicate"], capture_output=True, text=True, env=env)
        self.assertEqual(u.returncode, 2)
        print("streams lists the live connection on both ends; token, check, --version, --help work offline")


if __name__ == "__main__":
    main()

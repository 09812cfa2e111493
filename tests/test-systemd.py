#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The systemd side without a booted systemd: the generator, systemd-analyze verify and
security on the units, socket activation (named fds; a restart while connections keep
coming), and the sd_notify protocol recorded on a test NOTIFY_SOCKET."""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from inletstest import (INLETSD, TOKEN, TunnelTest, echo_roundtrip, free_port, main, port_open, wait_until)

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.dirname(os.path.dirname(os.path.abspath(INLETSD)))
GENERATOR = os.environ.get("INLETSD_GENERATOR", f"{BUILD}/daemon/inletsd-generator")
UNIT = os.environ.get("INLETSD_UNIT", f"{BUILD}/units/inletsd@.service")
SECURITY_BOUND = 2.0


def readf(path):
    with open(path) as f:
        return f.read()


class Systemd(TunnelTest):
    def write_defs(self, d):
        os.makedirs(d, exist_ok=True)
        with open(f"{d}/rdp.conf", "w") as f:
            f.write("[Tunnel]\nRole=server\n[Server]\nControlListen=0.0.0.0:8123\nAllowPorts=3389 2222 5000-5010\n"
                    "AllowUDPPorts=53 6000-6010\n")
        with open(f"{d}/web.conf", "w") as f:
            f.write("[Tunnel]\nRole=server\nMode=http\nMetricsListen=127.0.0.1:9124\n[Server]\nControlListen=[::]:9123\n"
                    "HTTPListen=0.0.0.0:80\nHTTPSListen=0.0.0.0:443\n")
        with open(f"{d}/office.conf", "w") as f:
            f.write("[Tunnel]\nRole=client\n[Client]\nURL=wss://x\nPorts=3389\n")
        with open(f"{d}/db.conf", "w") as f:
            f.write("[Tunnel]\nRole=client\n[Client]\nURL=wss://x\nPorts=3389\n"
                    "LocalForward=5432:db.internal:5432 [::1]:5432:db.internal:5432 0.0.0.0:6000:10.0.0.5:22\n")
        with open(f"{d}/broken.conf", "w") as f:
            f.write("[Tunnel]\nRole=server\n[Server]\nAllowPorts=lots\n")

    def generate(self):
        defs, out = f"{self.tmp}/defs", f"{self.tmp}/gen"
        self.write_defs(defs)
        os.makedirs(out)
        r = subprocess.run([GENERATOR, out, out, out], capture_output=True, text=True,
                           env=dict(os.environ, INLETSD_GENERATOR_CONFIG_DIR=defs), timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        return out, r.stderr

    def test_generator(self):
        out, err = self.generate()
        files = sorted(os.path.relpath(os.path.join(dp, f), out) for dp, _, fs in os.walk(out) for f in fs)
        self.assertEqual(files, ["inletsd-data-2222@rdp.socket", "inletsd-data-3389@rdp.socket",
                                 "inletsd-forward-5432@db.socket", "inletsd-forward-6000@db.socket",
                                 "inletsd-http@web.socket", "inletsd-https@web.socket", "inletsd-metrics@web.socket",
                                 "inletsd-udp-53@rdp.socket",
                                 "inletsd@db.service.d/50-sockets.conf", "inletsd@rdp.service.d/50-sockets.conf",
                                 "inletsd@rdp.socket", "inletsd@web.service.d/50-sockets.conf",
                                 "inletsd@web.socket"])
        ctl = readf(f"{out}/inletsd@rdp.socket")
        self.assertIn("ListenStream=0.0.0.0:8123\n", ctl)
        self.assertIn("FileDescriptorName=control\n", ctl)
        self.assertIn("Service=inletsd@rdp.service\n", ctl)
        data = readf(f"{out}/inletsd-data-3389@rdp.socket")
        self.assertIn("ListenStream=0.0.0.0:3389\n", data)
        self.assertIn("FileDescriptorName=data-3389\n", data)
        udp = readf(f"{out}/inletsd-udp-53@rdp.socket")
        self.assertIn("ListenDatagram=0.0.0.0:53\n", udp)
        self.assertIn("FileDescriptorName=udp-53\n", udp)
        self.assertNotIn("ListenStream=", udp)
        self.assertIn("inletsd-udp-53@rdp.socket", readf(f"{out}/inletsd@rdp.service.d/50-sockets.conf"))
        self.assertIn("ListenStream=[::]:9123\n", readf(f"{out}/inletsd@web.socket"))
        self.assertIn("FileDescriptorName=http\n", readf(f"{out}/inletsd-http@web.socket"))
        self.assertIn("ListenStream=0.0.0.0:443\n", readf(f"{out}/inletsd-https@web.socket"))
        self.assertIn("FileDescriptorName=https\n", readf(f"{out}/inletsd-https@web.socket"))
        self.assertIn("ListenStream=127.0.0.1:9124\n", readf(f"{out}/inletsd-metrics@web.socket"))
        self.assertIn("FileDescriptorName=metrics\n", readf(f"{out}/inletsd-metrics@web.socket"))
        self.assertIn("inletsd-metrics@web.socket", readf(f"{out}/inletsd@web.service.d/50-sockets.conf"))
        dropin = readf(f"{out}/inletsd@rdp.service.d/50-sockets.conf")
        self.assertIn("Sockets=inletsd@rdp.socket inletsd-data-3389@rdp.socket inletsd-data-2222@rdp.socket",
                      dropin.replace("inletsd-data-2222@rdp.socket inletsd-data-3389@rdp.socket",
                                     "inletsd-data-3389@rdp.socket inletsd-data-2222@rdp.socket"))
        fwd = readf(f"{out}/inletsd-forward-5432@db.socket")
        self.assertIn("ListenStream=127.0.0.1:5432\n", fwd)
        self.assertIn("FileDescriptorName=forward-5432\n", fwd)
        self.assertIn("ListenStream=0.0.0.0:6000\n", readf(f"{out}/inletsd-forward-6000@db.socket"))
        self.assertIn("Sockets=inletsd-forward-5432@db.socket inletsd-forward-6000@db.socket\n",
                      readf(f"{out}/inletsd@db.service.d/50-sockets.conf"))
        self.assertIn("broken.conf", err)   # skipped with a reason, the others still generated
        print("generator: control/data/udp/http sockets for server definitions, LocalForward= ports for clients "
              "(none for plain ones), a broken definition skipped with a warning")

    def test_examples_pass_check(self):
        """docs/examples are what an admin copies: inletsctl check must accept each."""
        inletsctl = os.environ.get("INLETSCTL", f"{BUILD}/ctl/inletsctl")
        d = f"{self.tmp}/examples"
        shutil.copytree(f"{SRC}/docs/examples", d)
        names = sorted(n[:-5] for n in os.listdir(d) if n.endswith(".conf"))
        self.assertEqual(names, ["files", "rdp", "rdp-client", "web", "web-client"])
        for n in names:   # as installed: NAME.token beside NAME.conf
            with open(f"{d}/{n}.token", "w") as f:
                f.write(TOKEN + "\n")
        r = subprocess.run([inletsctl, "check", "--config-dir", d, *names], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.count(": OK ("), len(names))
        self.assertEqual(r.stderr, "", "no warnings either")
        print(f"docs/examples: {', '.join(names)} all pass inletsctl check")

    def test_units_verify_and_security(self):
        out, _ = self.generate()
        udir = f"{self.tmp}/units"
        os.makedirs(udir)
        # verify checks ExecStart= binaries on this host: point them at the build.
        unit = readf(UNIT)
        # systemd's sockets bind the privileged ports: the daemon holds no capability.
        self.assertRegex(unit, r"(?m)^CapabilityBoundingSet=$")
        self.assertNotRegex(unit, r"(?m)^AmbientCapabilities=")
        bindir = re.search(r"ExecStart=(\S+)/inletsd ", unit).group(1)
        unit = unit.replace(f"{bindir}/inletsd ", f"{BUILD}/daemon/inletsd ").replace(
            f"{bindir}/inletsctl ", f"{BUILD}/ctl/inletsctl ")
        with open(f"{udir}/inletsd@rdp.service", "w") as f:
            f.write(unit)
        for n in ("inletsd@rdp.socket", "inletsd-data-3389@rdp.socket", "inletsd-data-2222@rdp.socket",
                  "inletsd-udp-53@rdp.socket"):
            shutil.copy(f"{out}/{n}", udir)
        shutil.copytree(f"{out}/inletsd@rdp.service.d", f"{udir}/inletsd@rdp.service.d")
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(f"{udir}/{n}" for n in os.listdir(udir)
                                                                 if not n.endswith(".d"))],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, SYSTEMD_UNIT_PATH=f"{udir}:"))
        problems = [l for l in r.stderr.splitlines() if "inletsd" in l and "network-online" not in l]
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(problems, [], r.stderr)
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--threshold={int(SECURITY_BOUND * 10)}",
                            "--no-pager", f"{udir}/inletsd@rdp.service"], capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
        self.assertIsNotNone(m, r.stdout[-500:])
        self.assertEqual(r.returncode, 0, r.stdout[-800:])
        self.assertLessEqual(float(m.group(1)), SECURITY_BOUND)
        print(f"systemd-analyze verify: clean; security exposure {m.group(1)} (bound {SECURITY_BOUND})")

    def activated_server(self, control_port, data_port, extra=""):
        conf = (f"[Tunnel]\nRole=server\nTokenFile={self.token_file}\nKeepaliveSec=3\n[Server]\n"
                f"ControlListen=127.0.0.1:{control_port}\nDataListen=127.0.0.1\nStateDirectory={self.tmp}/state\n"
                f"AutoTLSSAN=127.0.0.1\nAllowPorts={data_port}\n{extra}")
        path = f"{self.tmp}/srv.conf"
        with open(path, "w") as f:
            f.write(conf)
        return path

    def test_systemd_socket_activate_named_fds(self):
        cport, dport, mport = free_port(), free_port(), free_port()
        path = self.activated_server(cport, dport)
        with open(path) as f:
            conf = f.read()
        with open(path, "w") as f:
            f.write(conf.replace("[Server]\n", f"MetricsListen=127.0.0.1:{mport}\n[Server]\n"))
        log = open(f"{self.tmp}/sa.log", "wb")
        sa = subprocess.Popen(["systemd-socket-activate", "-l", f"127.0.0.1:{cport}", "--fdname=control",
                               "-l", f"127.0.0.1:{dport}", "--fdname=data-" + str(dport),
                               "-l", f"127.0.0.1:{mport}", "--fdname=metrics",
                               INLETSD, "--no-bus", "-v", "--config", path], stdout=log, stderr=subprocess.STDOUT)
        try:
            # systemd-socket-activate starts the daemon at the first connection: poke it.
            wait_until(lambda: port_open(cport), 10, "systemd-socket-activate to listen")
            up = self.echo()
            self.control_port = cport
            cli = self.client(f"{dport}:{up.port}", start=False)
            wait_until(lambda: os.path.exists(f"{self.tmp}/state/ca.crt"), 10, "server to start")
            cli.start()
            cli.wait_log("Connection established")
            self.assertEqual(echo_roundtrip(dport, b"activated"), b"activated")
            out = readf(f"{self.tmp}/sa.log")
            self.assertIn("Using the control socket passed by systemd.", out)
            self.assertIn(f"Using the socket passed by systemd for port {dport}.", out)
            self.assertNotIn(f"Listening on 127.0.0.1:{dport} for tunneled", out)   # not bound by the daemon itself
            self.assertIn(f"Metrics on http://127.0.0.1:{mport}/metrics (the socket passed by systemd).", out)
            with socket.create_connection(("127.0.0.1", mport), timeout=10) as c:
                c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                got = b""
                while (b := c.recv(65536)):
                    got += b
            self.assertIn(b"inletsd_clients{", got)
        finally:
            sa.terminate()
            sa.wait(10)
            log.close()
        print("systemd-socket-activate: control, data-PORT and metrics sockets taken by name and served")

    def test_socket_activated_local_forward(self):
        """A tunnel client's LocalForward= port bound by systemd (forward-PORT) and served."""
        up = self.echo()
        self.server(extra_server=f"AllowForwardTo=127.0.0.1:{up.port}\n")
        lport = free_port()
        cli = self.client(f"{free_port()}:{free_port()}", start=False,
                          extra_client=f"LocalForward={lport}:127.0.0.1:{up.port}\n")
        log = open(f"{self.tmp}/sa-client.log", "wb")
        sa = subprocess.Popen(["systemd-socket-activate", "-l", f"127.0.0.1:{lport}", f"--fdname=forward-{lport}",
                               INLETSD, "--no-bus", "-v", "--config", cli.path], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: port_open(lport), 10, "systemd-socket-activate to listen")  # starts the client
            wait_until(lambda: "Connection established" in readf(f"{self.tmp}/sa-client.log"), 15, "the client")
            self.assertEqual(echo_roundtrip(lport, b"activated forward"), b"activated forward")
            out = readf(f"{self.tmp}/sa-client.log")
            self.assertIn(f"LocalForward 127.0.0.1:{lport}: using the socket passed by systemd.", out)
        finally:
            sa.terminate()
            sa.wait(10)
            log.close()

    def test_restart_refuses_no_connection(self):
        """We hold the listening sockets as systemd would, and restart inletsd under a client
        that keeps connecting: every connection must be served."""
        cport, dport = free_port(), free_port()
        path = self.activated_server(cport, dport)
        ctl_s = socket.create_server(("127.0.0.1", cport), backlog=512)
        data_s = socket.create_server(("127.0.0.1", dport), backlog=512)
        fds = [ctl_s.fileno(), data_s.fileno()]
        log = open(f"{self.tmp}/act.log", "ab")

        def start():
            # LISTEN_PID must be the daemon's own pid: the shell sets it and execs.
            return subprocess.Popen(
                ["sh", "-c", f'LISTEN_PID=$$ exec {INLETSD} --no-bus -v --config {path}'],
                pass_fds=fds, stdout=log, stderr=subprocess.STDOUT,
                env=dict(os.environ, LISTEN_FDS="2", LISTEN_FDNAMES=f"control:data-{dport}"),
                preexec_fn=lambda: [os.dup2(fd, 3 + i) for i, fd in enumerate(fds)] and None)

        srv = start()
        try:
            wait_until(lambda: os.path.exists(f"{self.tmp}/state/ca.crt"), 10, "server")
            up = self.echo()
            self.control_port = cport
            cli = self.client(f"{dport}:{up.port}")
            ok, failed, stop = [0], [], threading.Event()

            def hammer():
                i = 0
                while not stop.is_set():
                    payload = b"conn-%d" % i
                    try:
                        if echo_roundtrip(dport, payload, timeout=20) == payload:
                            ok[0] += 1
                        else:
                            failed.append(i)
                    except OSError as e:
                        failed.append((i, str(e)))
                    i += 1
                    time.sleep(0.02)
            t = threading.Thread(target=hammer)
            t.start()
            time.sleep(1)
            before = ok[0]
            srv.send_signal(signal.SIGTERM)
            srv.wait(10)
            srv = start()
            wait_until(lambda: cli.output().count("Connection established") >= 2, 15, "client to come back")
            time.sleep(1)
            stop.set()
            t.join(30)
            self.assertEqual(failed, [])
            self.assertGreater(ok[0], before)
        finally:
            srv.send_signal(signal.SIGTERM)
            srv.wait(10)
            ctl_s.close()
            data_s.close()
            log.close()
        print(f"restart under load: {ok[0]} connections, none refused or lost "
              f"({ok[0] - before} of them during/after the restart)")

    def test_notify_protocol(self):
        nsock = f"{self.tmp}/notify"
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        rx.bind(nsock)
        rx.settimeout(0.2)
        msgs = []

        def drain(until=None, timeout=10):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                try:
                    msgs.extend(rx.recv(4096).decode().splitlines())
                except socket.timeout:
                    pass
                if until and any(until in m for m in msgs):
                    return
            if until:
                self.fail(f"no {until} in {msgs}")

        env = {"NOTIFY_SOCKET": nsock, "WATCHDOG_USEC": "1000000"}
        srv = self.server(start=False, env=env)
        srv.start()
        env["WATCHDOG_PID"] = str(srv.proc.pid)   # set after fork in real life; inletsd ignores it if absent
        drain("READY=1")
        drain("WATCHDOG=1", 3)
        status = [m for m in msgs if m.startswith("STATUS=")]
        self.assertTrue(status and "listening" in status[-1], status)
        srv.proc.send_signal(signal.SIGHUP)
        drain("RELOADING=1")
        n = len(msgs)
        drain("READY=1")
        srv.stop()
        drain("STOPPING=1")
        rx.close()
        kinds = [m.split("=")[0] + ("=1" if m.endswith("=1") else "") for m in msgs if not m.startswith("MONOTONIC")]
        first = {k: kinds.index(k) for k in ("READY=1", "RELOADING=1", "STOPPING=1")}
        self.assertLess(first["READY=1"], first["RELOADING=1"])
        self.assertLess(first["RELOADING=1"], first["STOPPING=1"])
        self.assertIn("READY=1", kinds[first["RELOADING=1"]:first["STOPPING=1"]])
        self.assertIn("WATCHDOG=1", kinds)
        print("notify: READY, STATUS (" + status[-1][7:] + "), WATCHDOG, RELOADING…READY, STOPPING in order")


if __name__ == "__main__":
    main()

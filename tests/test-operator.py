#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""inlets-operator against a real kube-apiserver, controller manager (garbage collection) and
etcd on loopback (tests/kube_cluster.py), with the DigitalOcean API stand-in as the cloud, and
the operator limited to deploy/rbac.yaml: an annotated LoadBalancer Service gets a Tunnel with
its columns, one host, a client Deployment with the right args, owners and Secret, and an
external IP; the Deployment follows port changes; the client command it would run carries bytes
through an exit server made from the host's user-data; a Service that stops being managed, or
is deleted (also while the operator is down), loses its host and everything else; killing the
operator mid-provisioning never makes a second host; an unannotated Service is left alone."""

import base64
import hashlib
import os
import ssl
import shutil
import signal
import subprocess
import time
import unittest

import kube_cluster
from cloud_standin import CloudStandIn, host_daemon
from inletstest import TOKEN, Daemon, EchoServer, TunnelTest, echo_roundtrip, free_port, main, port_open, wait_until

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPERATOR = os.environ.get("INLETS_OPERATOR")
API_TOKEN = "dop_v1_operator_secret_0123456789"
TUNNELS = "/apis/inlets.inlets.dev/v1alpha1/namespaces/default/tunnels"


@unittest.skipUnless(kube_cluster.available() or os.environ.get("CI"), "no kube-apiserver: run tools/kube")
class Operator(TunnelTest):
    @classmethod
    def setUpClass(cls):
        cls.ktmp = subprocess.check_output(["mktemp", "-d", "/tmp/inletsd-kube.XXXXXX"], text=True).strip()
        cls.kube = kube_cluster.KubeCluster(cls.ktmp)
        try:
            cls.kube.apply_file(f"{SRC}/deploy/crd.yaml")
            cls.kube.apply_file(f"{SRC}/deploy/rbac.yaml")
            cls.kubeconfig = cls.kube.kubeconfig("operator", kube_cluster.OPERATOR_TOKEN)
        except BaseException:   # tearDownClass does not run when setUpClass fails
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.kube.close()
        subprocess.run(["rm", "-rf", cls.ktmp])

    def setUp(self):
        super().setUp()
        self.api = CloudStandIn(API_TOKEN, "do", active_after=2)
        self.upstreams.append(self.api)
        self.api_token = f"{self.tmp}/do-token"
        with open(self.api_token, "w") as f:
            f.write(API_TOKEN + "\n")
        self.control_port = free_port()
        self.op = None

    def start_operator(self, *extra, kubeconfig=True, env=None, cloud=True):
        d = Daemon(self.tmp, "operator", "")
        d.logf = open(d.log, "ab")
        d.proc = subprocess.Popen(
            [OPERATOR, *(["--provider", "digitalocean", "--access-token-file", self.api_token, "--api-url", self.api.url]
                         if cloud else []),
             *(["--kubeconfig", self.kubeconfig] if kubeconfig else []), "--client-image", "registry.test/inletsd:1",
             "--poll-interval", "500ms", "--control-port", str(self.control_port), "-v", *extra],
            stdout=d.logf, stderr=subprocess.STDOUT, env=dict(os.environ, **(env or {})))
        self.daemons.append(d)
        self.op = d
        return d

    def service(self, name, ports, annotated=True, annotations=None):
        ann = annotations if annotations is not None else {"dev.inlets.manage": "true"} if annotated else {}
        body = {"metadata": {"name": name, "annotations": ann},
                "spec": {"type": "LoadBalancer", "ports": [{"name": f"p{p}", "port": p, "protocol": "TCP"}
                                                            for p in ports], "selector": {"app": name}}}
        st, obj = self.kube.call("POST", "/api/v1/namespaces/default/services", body)
        self.assertEqual(st, 201, obj)
        return obj

    def run(self, result=None):
        # on a failure, the operator's log explains it
        n = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > n and self.op_log:
            print(f"--- operator log:\n{self.op_log}")
        return out

    def tearDown(self):
        self.op_log = self.op.output() if self.op else ""
        super().tearDown()

    def tunnel(self, name):
        return self.kube.get(f"{TUNNELS}/{name}")

    def wait_active(self, name, timeout=60):
        wait_until(lambda: ((self.tunnel(name) or {}).get("status") or {}).get("hostStatus") == "active", timeout,
                   f"tunnel {name} active")
        return self.tunnel(name)

    def hosts_tagged(self, tun):
        return [d for d in self.api.droplets.values() if f"inletsd-tunnel-{tun['metadata']['uid']}" in d["tags"]]

    def creates(self):
        return sum(1 for m, p, _ in self.api.requests if m == "POST" and p == "/v2/droplets")

    def test_lifecycle(self):
        self.start_operator("--annotated-only", "--client-resources", '{"requests":{"cpu":"10m","memory":"16Mi"}}',
                            "--max-client-memory", "64Mi")
        pub1, pub2 = free_port(), free_port()
        svc = self.service("web", [pub1, pub2])
        plain = self.service("plain", [free_port()], annotated=False)

        tun = self.wait_active("web-tunnel")
        self.assertEqual(tun["spec"]["serviceName"], "web")
        self.assertNotIn("token", str(tun["spec"]).lower())
        self.assertIn("inlets.inlets.dev/host-cleanup", tun["metadata"]["finalizers"])
        own = tun["metadata"]["ownerReferences"][0]
        self.assertEqual((own["kind"], own["name"], own["uid"], own["controller"]),
                         ("Service", "web", svc["metadata"]["uid"], True))
        self.assertEqual(self.creates(), 1)
        host = self.hosts_tagged(tun)
        self.assertEqual(len(host), 1)
        self.assertEqual(tun["status"]["hostId"], str(host[0]["id"]))
        # named by namespace and name, and the start of the Tunnel's uid (two Tunnels, two names)
        uid8 = "".join(ch for ch in tun["metadata"]["uid"] if ch.isalnum())[:8]
        self.assertEqual(host[0]["name"], f"inlets-{tun['metadata']['namespace']}-{tun['metadata']['name']}-{uid8}")
        self.assertEqual(tun["status"]["hostIP"], "127.0.0.1")

        # kubectl's columns, from the CRD's printer columns
        st, table = self.kube.call("GET", f"{TUNNELS}/web-tunnel",
                                   accept="application/json;as=Table;v=v1;g=meta.k8s.io")
        self.assertEqual(st, 200)
        cols = [c["name"] for c in table["columnDefinitions"]]
        self.assertEqual(cols[:6], ["Name", "Service", "Tunnel", "HostStatus", "HostIP", "HostID"])
        self.assertEqual(table["rows"][0]["cells"][:6], ["web-tunnel", "web", "web-tunnel-client", "active",
                                                         "127.0.0.1", str(host[0]["id"])])

        # the client Deployment: args, owner, the Secret mounted
        dep = None

        def deployment():
            nonlocal dep
            dep = self.kube.get("/apis/apps/v1/namespaces/default/deployments/web-tunnel-client")
            return dep is not None
        wait_until(deployment, 30, "client deployment")
        c = dep["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(c["image"], "registry.test/inletsd:1")
        self.assertEqual(c["command"], ["inletsd"])
        fp = c["args"][c["args"].index("--fingerprint") + 1]
        self.assertEqual(c["args"], ["tcp", "client", "--url", f"wss://127.0.0.1:{self.control_port}",
                                     "--upstream", "web.default.svc", "--ports", f"{pub1},{pub2}",
                                     "--token-file", "/var/lib/inlets/auth/token", "--fingerprint", fp])
        self.assertTrue(fp.startswith("sha256:"))
        self.assertEqual(dep["metadata"]["ownerReferences"][0]["kind"], "Tunnel")
        self.assertEqual(dep["metadata"]["ownerReferences"][0]["uid"], tun["metadata"]["uid"])
        vol = dep["spec"]["template"]["spec"]["volumes"][0]
        self.assertEqual(vol["secret"]["secretName"], "web-tunnel-auth")
        # the image's non-root user reads the token through fsGroup (0400 would be root's alone)
        self.assertEqual(vol["secret"]["defaultMode"], 0o440)
        self.assertEqual(dep["spec"]["template"]["spec"]["securityContext"],
                         {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532})
        self.assertEqual(c["securityContext"], {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                "capabilities": {"drop": ["ALL"]}})
        self.assertEqual(c["resources"], {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}})
        self.assertEqual(c["volumeMounts"][0]["mountPath"], "/var/lib/inlets/auth")
        secret = self.kube.get("/api/v1/namespaces/default/secrets/web-tunnel-auth")
        self.assertEqual(secret["metadata"]["ownerReferences"][0]["uid"], tun["metadata"]["uid"])
        wait_until(lambda: "tls.key" not in self.kube.get("/api/v1/namespaces/default/secrets/web-tunnel-auth")["data"],
                   20, "the host's key to leave the Secret")
        self.assertNotIn("ca.key", secret["data"])   # no CA key is ever made to keep
        token = base64.b64decode(secret["data"]["token"]).decode()

        # the Service's external IP, as kubectl get svc -w shows it
        wait_until(lambda: (self.kube.get("/api/v1/namespaces/default/services/web")["status"].get("loadBalancer", {})
                            .get("ingress") or [{}])[0].get("ip") == "127.0.0.1", 20, "external IP")

        # the unannotated Service: untouched
        self.assertIsNone(self.tunnel("plain-tunnel"))
        self.assertEqual(self.kube.get("/api/v1/namespaces/default/services/plain")["status"].get("loadBalancer"), {})

        # the client the Deployment runs, as a local process, against the exit server the host runs
        self.run_client_against_host(host[0]["user_data"], c["args"], token, [pub1, pub2])

        # ports change: the Deployment follows
        pub3 = free_port()
        st, _ = self.kube.call("PATCH", "/api/v1/namespaces/default/services/web",
                               {"spec": {"ports": [{"name": "p1", "port": pub1}, {"name": "p3", "port": pub3}]}},
                               ctype="application/merge-patch+json")
        self.assertEqual(st, 200)
        wait_until(lambda: f"{pub1},{pub3}" in self.kube.get(
            "/apis/apps/v1/namespaces/default/deployments/web-tunnel-client")["spec"]["template"]["spec"]
            ["containers"][0]["args"], 30, "the Deployment to follow the ports")
        self.assertEqual(self.creates(), 1)

        # no longer managed (annotation removed): host deleted, Tunnel, Deployment, Secret collected
        st, _ = self.kube.call("PATCH", "/api/v1/namespaces/default/services/web",
                               {"metadata": {"annotations": {"dev.inlets.manage": None}}},
                               ctype="application/merge-patch+json")
        self.assertEqual(st, 200)
        self.wait_gone("web", host[0]["id"])
        svc = self.kube.get("/api/v1/namespaces/default/services/web")
        self.assertEqual(svc["status"].get("loadBalancer"), {})   # no stale address
        self.assertNotIn(API_TOKEN, self.op.output())
        self.assertNotIn(token, self.op.output())
        self.assertEqual(self.op.output().count("updated Deployment"), 1)  # only for the port change
        for name in ("web", "plain"):
            self.assertEqual(self.kube.call("DELETE", f"/api/v1/namespaces/default/services/{name}")[0], 200)

    def wait_gone(self, svc, host_id, timeout=60):
        wait_until(lambda: str(host_id) not in self.api.droplets, timeout, "the host to be deleted")
        for path in (f"{TUNNELS}/{svc}-tunnel", f"/apis/apps/v1/namespaces/default/deployments/{svc}-tunnel-client",
                     f"/api/v1/namespaces/default/secrets/{svc}-tunnel-auth"):
            wait_until(lambda: self.kube.get(path) is None, timeout, f"{path} to be collected")

    def run_client_against_host(self, user_data, args, token, ports):
        # loopback: the public ports on 127.0.0.2, the "Service" (echo servers) on 127.0.0.1
        srv, _ = host_daemon(self.tmp, user_data, "tunnel",
                             f"[Server]\nControlListen=127.0.0.1:{self.control_port}\nDataListen=127.0.0.2\n")
        self.daemons.append(srv)
        srv.start()
        wait_until(lambda: port_open(self.control_port), 10, "exit server")
        # echo servers on the Service's ports, as the Service would be
        for p in ports:
            self.upstreams.append(EchoServer("127.0.0.1", p))
        tok = f"{self.tmp}/auth-token"
        with open(tok, "w") as f:
            f.write(token)
        a = list(args)
        a[a.index("--upstream") + 1] = "127.0.0.1"
        a[a.index("--token-file") + 1] = tok
        cli = Daemon(self.tmp, "deployment-client", "", args=a)
        cli.logf = open(cli.log, "ab")
        cli.proc = subprocess.Popen([os.environ["INLETSD"], *a], stdout=cli.logf, stderr=subprocess.STDOUT)
        self.daemons.append(cli)
        cli.wait_log("Connection established", 15)
        for p in ports:
            wait_until(lambda: port_open(p, "127.0.0.2"), 10, f"public port {p}")
            self.assertEqual(echo_roundtrip(p, b"through the operator's tunnel", host="127.0.0.2"),
                             b"through the operator's tunnel")
        cli.stop()
        srv.stop()

    def test_status_host_id_is_not_trusted(self):
        """status.hostId is writable by whoever may write a Tunnel's status: the operator only
        ever deletes a host that carries the Tunnel's tag, and ignores a hostId that is not a host
        id at all (it goes into the cloud API's request paths)."""
        self.start_operator()
        self.service("web", [free_port()])
        tun = self.wait_active("web-tunnel")
        mine = str(self.hosts_tagged(tun)[0]["id"])
        # someone else's droplet in the same account
        self.api.droplets["7777"] = {"id": 7777, "name": "database", "status": "active", "tags": ["prod"],
                                     "polls": 0, "user_data": "", "ip": "127.0.0.9"}
        status = f"{TUNNELS}/web-tunnel/status"
        st, _ = self.kube.call("PATCH", status, {"status": {"hostId": "../../v2/account"}},
                               ctype="application/merge-patch+json")
        self.assertEqual(st, 200)
        self.op.wait_log("status.hostId is not a host id; ignored.", 30)
        wait_until(lambda: self.tunnel("web-tunnel")["status"].get("hostId") == mine, 30, "the tagged host again")
        self.assertFalse(any("account" in p for _, p, _ in self.api.requests))
        st, _ = self.kube.call("PATCH", status, {"status": {"hostId": "7777"}}, ctype="application/merge-patch+json")
        self.assertEqual(st, 200)
        self.assertEqual(self.kube.call("DELETE", "/api/v1/namespaces/default/services/web")[0], 200)
        wait_until(lambda: mine not in self.api.droplets, 60, "the Tunnel's own host to be deleted")
        wait_until(lambda: self.tunnel("web-tunnel") is None, 60, "the Tunnel to go")
        self.assertIn("7777", self.api.droplets)
        self.assertNotIn(("DELETE", "/v2/droplets/7777", None), self.api.requests)
        self.assertIn("host 7777 (status.hostId) does not carry this Tunnel's tag; not deleted.", self.op.output())

    def test_annotations_and_opt_out(self):
        """Without --annotated-only every LoadBalancer Service is managed, except one that opts out
        (operator.inlets.dev/manage: "0", inlets-operator's newer name); with it, the newer name
        opts in as dev.inlets.manage does."""
        self.start_operator()
        self.service("optout", [free_port()], annotations={"operator.inlets.dev/manage": "0"})
        self.service("plain", [free_port()], annotations={})
        tun = self.wait_active("plain-tunnel")
        self.assertIsNone(self.tunnel("optout-tunnel"))
        host = self.hosts_tagged(tun)
        self.assertEqual(self.creates(), 1)
        # Opting out later: the host, Tunnel, Deployment and Secret go.
        st, _ = self.kube.call("PATCH", "/api/v1/namespaces/default/services/plain",
                               {"metadata": {"annotations": {"dev.inlets.manage": "false"}}},
                               ctype="application/merge-patch+json")
        self.assertEqual(st, 200)
        self.wait_gone("plain", host[0]["id"])
        self.op.stop()
        # --annotated-only: the new name opts in.
        self.start_operator("--annotated-only")
        self.service("newname", [free_port()], annotations={"operator.inlets.dev/manage": "1"})
        tun = self.wait_active("newname-tunnel")
        self.assertIsNone(self.tunnel("optout-tunnel"))
        self.assertIsNone(self.tunnel("plain-tunnel"))
        host = self.hosts_tagged(tun)
        for name in ("optout", "plain", "newname"):
            self.assertEqual(self.kube.call("DELETE", f"/api/v1/namespaces/default/services/{name}")[0], 200)
        self.wait_gone("newname", host[0]["id"])
        print("annotations: an explicit opt-out honoured without --annotated-only, operator.inlets.dev/manage "
              "opts in with it")

    def test_handwritten_tunnels(self):
        """Hand-written Tunnels (inlets-operator#95, #101, #104): one for a Service MetalLB serves
        (opted out, its status owned by MetalLB) with updateServiceIP: false gets a host, Secret
        and Deployment of its own names and leaves the Service's status alone; one for a managed
        Service replaces the Tunnel the operator made (whose host goes); deleting a hand-written
        Tunnel removes its host, and the operator's own Tunnel comes back."""
        self.start_operator()
        svc = self.service("metal", [free_port()], annotations={"operator.inlets.dev/manage": "0"})
        st, _ = self.kube.call("PATCH", "/api/v1/namespaces/default/services/metal/status",
                               {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}]}}},
                               ctype="application/merge-patch+json")
        self.assertEqual(st, 200)
        st, obj = self.kube.call("POST", TUNNELS, {
            "apiVersion": "inlets.inlets.dev/v1alpha1", "kind": "Tunnel", "metadata": {"name": "metal-edge"},
            "spec": {"serviceName": "metal", "updateServiceIP": False, "client_deployment": {"name": "edge-client"}}})
        self.assertEqual(st, 201, obj)
        tun = self.wait_active("metal-edge")
        self.assertIs(tun["spec"]["updateServiceIP"], False, "the field survives the CRD's schema")
        self.assertIn("inlets.inlets.dev/host-cleanup", tun["metadata"]["finalizers"])
        self.assertEqual(len(self.hosts_tagged(tun)), 1)
        wait_until(lambda: self.kube.get("/apis/apps/v1/namespaces/default/deployments/edge-client"), 30,
                   "the Deployment named in client_deployment")
        self.assertIsNotNone(self.kube.get("/api/v1/namespaces/default/secrets/metal-edge-auth"))
        time.sleep(1)  # a reconcile or two later: still MetalLB's address
        metal = self.kube.get("/api/v1/namespaces/default/services/metal")
        self.assertEqual(metal["status"]["loadBalancer"]["ingress"], [{"ip": "192.0.2.7"}])
        self.assertIsNone(self.tunnel("metal-tunnel"), "an opted-out Service gets no Tunnel of ours")

        # A managed Service: the operator's Tunnel first, then a hand-written one takes over.
        self.service("web", [free_port()], annotations={})
        gen = self.wait_active("web-tunnel")
        gen_host = self.hosts_tagged(gen)[0]["id"]
        st, obj = self.kube.call("POST", TUNNELS, {
            "apiVersion": "inlets.inlets.dev/v1alpha1", "kind": "Tunnel", "metadata": {"name": "mine"},
            "spec": {"serviceName": "web"}})
        self.assertEqual(st, 201, obj)
        self.wait_gone("web", gen_host)
        mine = self.wait_active("mine")
        wait_until(lambda: (self.kube.get("/api/v1/namespaces/default/services/web")["status"].get("loadBalancer")
                            or {}).get("ingress") == [{"ip": mine["status"]["hostIP"]}], 30, "web's external IP")
        self.assertIsNotNone(self.kube.get("/apis/apps/v1/namespaces/default/deployments/mine-client"))
        time.sleep(1)
        self.assertIsNone(self.tunnel("web-tunnel"), "the operator does not make its own beside it")
        self.assertEqual(len(self.hosts_tagged(mine)), 1)

        # Deleting the hand-written Tunnels: their hosts go; web is managed again by the operator.
        mine_host = self.hosts_tagged(mine)[0]["id"]
        metal_host = self.hosts_tagged(tun)[0]["id"]
        for name in ("mine", "metal-edge"):
            self.assertEqual(self.kube.call("DELETE", f"{TUNNELS}/{name}")[0], 200)
        wait_until(lambda: str(mine_host) not in self.api.droplets and str(metal_host) not in self.api.droplets, 60,
                   "the hand-written Tunnels' hosts deleted")
        wait_until(lambda: self.tunnel("mine") is None and self.tunnel("metal-edge") is None, 30,
                   "the Tunnels gone once their hosts are")
        back = self.wait_active("web-tunnel")
        metal = self.kube.get("/api/v1/namespaces/default/services/metal")
        self.assertEqual(metal["status"]["loadBalancer"]["ingress"], [{"ip": "192.0.2.7"}])
        for name in ("metal", "web"):
            self.assertEqual(self.kube.call("DELETE", f"/api/v1/namespaces/default/services/{name}")[0], 200)
        self.wait_gone("web", self.hosts_tagged(back)[0]["id"])
        print("hand-written Tunnels: one with updateServiceIP: false for an opted-out Service got its host, Secret "
              "and Deployment and left MetalLB's address alone; one for a managed Service replaced the operator's "
              "(whose host went); deleting them removed their hosts and the operator's own came back")

    def test_shared_exit_server(self):
        """Shared exit servers (inlets-operator#27, #28), with no cloud provider at all: three
        Services name one ExitServer (an inletsd exit server on loopback); the two whose ports do
        not clash get Tunnels, Deployments dialling it with its pin and its token Secret, and its
        address; the third, wanting a port the first has, is "conflict" with no Deployment and
        no address until the first goes; the clients the Deployments run carry bytes through the
        one exit server; a Service naming no ExitServer that exists waits, and one asking for a
        cloud host is told there is no provider."""
        srv = self.server()
        with open(f"{self.tmp}/state/ca.crt") as f:
            pin = "sha256:" + hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()
        url = f"wss://127.0.0.1:{self.control_port}"
        st, obj = self.kube.call("POST", "/api/v1/namespaces/default/secrets", {
            "metadata": {"name": "office-token"}, "stringData": {"token": TOKEN}})
        self.assertEqual(st, 201, obj)
        st, obj = self.kube.call("POST", "/apis/inlets.inlets.dev/v1alpha1/namespaces/default/exitservers", {
            "apiVersion": "inlets.inlets.dev/v1alpha1", "kind": "ExitServer", "metadata": {"name": "office"},
            "spec": {"url": url, "fingerprint": pin, "tokenSecret": "office-token"}})
        self.assertEqual(st, 201, obj)
        self.start_operator(cloud=False)
        shared = {"operator.inlets.dev/exit-server": "office"}
        p1, p2, p3 = free_port(), free_port(), free_port()
        self.service("alpha", [p1, p2], annotations=shared)
        alpha = self.wait_active("alpha-tunnel")
        self.service("beta", [p3], annotations=shared)
        self.service("gamma", [p2], annotations=shared)
        beta = self.wait_active("beta-tunnel")
        for tun in (alpha, beta):
            self.assertEqual(tun["spec"]["exitServer"], "office")
            self.assertEqual(tun["status"]["hostIP"], "127.0.0.1")
            self.assertNotIn("hostId", tun["status"])
            self.assertFalse(tun["metadata"].get("finalizers"), "no host to clean up")
        wait_until(lambda: ((self.tunnel("gamma-tunnel") or {}).get("status") or {}).get("hostStatus") == "conflict",
                   30, "gamma in conflict")
        msg = self.tunnel("gamma-tunnel")["status"]["message"]
        self.assertEqual(msg, f"port {p2} is taken on {url} by Tunnel default/alpha-tunnel")
        self.assertIsNone(self.kube.get("/apis/apps/v1/namespaces/default/deployments/gamma-tunnel-client"))
        self.assertEqual(self.kube.get("/api/v1/namespaces/default/services/gamma")["status"].get("loadBalancer"), {})
        args = {}
        for name, ports in (("alpha", f"{p1},{p2}"), ("beta", str(p3))):
            dep = None

            def deployment():
                nonlocal dep
                dep = self.kube.get(f"/apis/apps/v1/namespaces/default/deployments/{name}-tunnel-client")
                return dep is not None
            wait_until(deployment, 30, f"{name}'s client deployment")
            c = dep["spec"]["template"]["spec"]["containers"][0]
            self.assertEqual(c["args"], ["tcp", "client", "--url", url, "--upstream", f"{name}.default.svc",
                                         "--ports", ports, "--token-file", "/var/lib/inlets/auth/token",
                                         "--fingerprint", pin])
            self.assertEqual(dep["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"], "office-token")
            args[name] = c["args"]
            wait_until(lambda: (self.kube.get(f"/api/v1/namespaces/default/services/{name}")["status"]
                                .get("loadBalancer", {}).get("ingress")) == [{"ip": "127.0.0.1"}], 20,
                       f"{name}'s external IP")
        self.assertIsNone(self.kube.get("/api/v1/namespaces/default/secrets/alpha-tunnel-auth"),
                          "no Secret of its own")

        # The clients the Deployments run, as local processes: both on the one exit server, each
        # with its ports (public on 127.0.0.1, the "Services" echoing on 127.0.0.3).
        tok = f"{self.tmp}/mounted-token"
        with open(tok, "w") as f:
            f.write(TOKEN)
        for p in (p1, p2, p3):
            self.upstreams.append(EchoServer("127.0.0.3", p))
        for name, a in args.items():
            a = list(a)
            a[a.index("--upstream") + 1] = "127.0.0.3"
            a[a.index("--token-file") + 1] = tok
            cli = Daemon(self.tmp, f"{name}-client", "", args=a)
            cli.logf = open(cli.log, "ab")
            cli.proc = subprocess.Popen([os.environ["INLETSD"], *a], stdout=cli.logf, stderr=subprocess.STDOUT)
            self.daemons.append(cli)
            cli.wait_log("Connection established", 15)
        for p in (p1, p2, p3):
            wait_until(lambda: port_open(p), 10, f"public port {p}")
            self.assertEqual(echo_roundtrip(p, b"one exit server, many Services"), b"one exit server, many Services")

        # alpha goes: gamma gets its port
        self.assertEqual(self.kube.call("DELETE", "/api/v1/namespaces/default/services/alpha")[0], 200)
        gamma = self.wait_active("gamma-tunnel", 30)
        self.assertNotIn("message", gamma["status"])
        wait_until(lambda: self.kube.get("/apis/apps/v1/namespaces/default/deployments/gamma-tunnel-client"), 30,
                   "gamma's Deployment")

        # no such ExitServer; a cloud host without a provider
        self.service("delta", [free_port()], annotations={"operator.inlets.dev/exit-server": "nowhere"})
        self.service("epsilon", [free_port()])
        for name, status, text in (("delta", "waiting", "ExitServer default/nowhere does not exist"),
                                   ("epsilon", "waiting", "no cloud provider (--provider)")):
            wait_until(lambda: ((self.tunnel(f"{name}-tunnel") or {}).get("status") or {}).get("hostStatus") == status,
                       30, f"{name}: {status}")
            self.assertIn(text, self.tunnel(f"{name}-tunnel")["status"]["message"])
        self.assertNotIn(TOKEN, self.op.output())
        # level-triggered, not looping: each state said once (a second at most, from a stale cache)
        self.assertLessEqual(self.op.output().count("gamma-tunnel: conflict"), 2, self.op.output())
        self.assertLessEqual(self.op.output().count("delta-tunnel: waiting"), 2, self.op.output())
        for name in ("beta", "gamma", "delta", "epsilon"):
            self.assertEqual(self.kube.call("DELETE", f"/api/v1/namespaces/default/services/{name}")[0], 200)
        for name in ("beta", "gamma", "delta", "epsilon"):
            wait_until(lambda: self.tunnel(f"{name}-tunnel") is None, 30, f"{name}'s Tunnel collected")
        self.kube.call("DELETE", "/apis/inlets.inlets.dev/v1alpha1/namespaces/default/exitservers/office")
        self.kube.call("DELETE", "/api/v1/namespaces/default/secrets/office-token")
        print(f"shared exit server, no cloud provider: alpha ({p1},{p2}) and beta ({p3}) active on {url}, both "
              f"clients carried bytes through it; gamma ({p2}) in conflict until alpha went; a missing ExitServer "
              "and a cloud Service without a provider wait, saying why")

    def test_shared_exit_server_changes(self):
        """Moving to a shared exit server: a Service annotated later has its Tunnel replaced (its
        cloud host deleted first); a hand-written Tunnel given spec.exitServer has its host
        deleted and its finalizer removed, and its Deployment mounts the ExitServer's Secret; an
        ExitServer whose address becomes a name gives the Services a hostname; a broken
        ExitServer makes its Tunnels invalid, without a Deployment."""
        self.start_operator()
        es_path = "/apis/inlets.inlets.dev/v1alpha1/namespaces/default/exitservers"
        url = f"wss://127.0.0.1:{free_port()}"
        st, obj = self.kube.call("POST", es_path, {
            "apiVersion": "inlets.inlets.dev/v1alpha1", "kind": "ExitServer", "metadata": {"name": "office"},
            "spec": {"url": url, "fingerprint": "sha256:" + "ab" * 32, "tokenSecret": "office-token"}})
        self.assertEqual(st, 201, obj)
        self.service("web", [free_port()], annotations={})
        self.service("api", [free_port()], annotations={"dev.inlets.manage": "false"})
        st, obj = self.kube.call("POST", TUNNELS, {
            "apiVersion": "inlets.inlets.dev/v1alpha1", "kind": "Tunnel", "metadata": {"name": "hand"},
            "spec": {"serviceName": "api"}})
        self.assertEqual(st, 201, obj)
        web, hand = self.wait_active("web-tunnel"), self.wait_active("hand")
        web_host, hand_host = self.hosts_tagged(web)[0]["id"], self.hosts_tagged(hand)[0]["id"]

        st, _ = self.kube.call("PATCH", "/api/v1/namespaces/default/services/web",
                               {"metadata": {"annotations": {"operator.inlets.dev/exit-server": "office"}}},
                               ctype="application/merge-patch+json")
        self.assertEqual(st, 200)
        st, _ = self.kube.call("PATCH", f"{TUNNELS}/hand", {"spec": {"exitServer": "office"}},
                               ctype="application/merge-patch+json")
        self.assertEqual(st, 200)
        wait_until(lambda: str(web_host) not in self.api.droplets and str(hand_host) not in self.api.droplets, 60,
                   "both cloud hosts deleted")
        wait_until(lambda: ((self.tunnel("web-tunnel") or {}).get("spec") or {}).get("exitServer") == "office", 30,
                   "web's Tunnel made anew on the exit server")
        for name, dep in (("web-tunnel", "web-tunnel-client"), ("hand", "hand-client")):
            wait_until(lambda: ((self.tunnel(name) or {}).get("status") or {}).get("hostStatus") == "active" and
                       "hostId" not in self.tunnel(name)["status"], 30, f"{name} active on the exit server")
            tun = self.tunnel(name)
            self.assertEqual(tun["status"].get("hostIP"), "127.0.0.1")
            self.assertNotIn("hostId", tun["status"])
            self.assertFalse(tun["metadata"].get("finalizers"))
            wait_until(lambda: ((self.kube.get(f"/apis/apps/v1/namespaces/default/deployments/{dep}") or {})
                                .get("spec", {}).get("template", {}).get("spec", {}).get("volumes") or [{}])[0]
                       .get("secret", {}).get("secretName") == "office-token", 30, f"{dep} mounting the shared token")
            c = self.kube.get(f"/apis/apps/v1/namespaces/default/deployments/{dep}")["spec"]["template"]["spec"]
            self.assertEqual(c["containers"][0]["args"][3], url)
            self.assertEqual(len(c["volumes"]), 1)
        wait_until(lambda: (self.kube.get("/api/v1/namespaces/default/services/web")["status"]
                            .get("loadBalancer", {}).get("ingress")) == [{"ip": "127.0.0.1"}], 20, "web's address")

        st, _ = self.kube.call("PATCH", f"{es_path}/office", {"spec": {"address": "tunnel.example.com"}},
                               ctype="application/merge-patch+json")
        self.assertEqual(st, 200)
        wait_until(lambda: (self.kube.get("/api/v1/namespaces/default/services/web")["status"]
                            .get("loadBalancer", {}).get("ingress")) == [{"hostname": "tunnel.example.com"}], 20,
                   "a hostname once the address is a name")
        wait_until(lambda: (self.kube.get("/api/v1/namespaces/default/services/api")["status"]
                            .get("loadBalancer", {}).get("ingress")) == [{"hostname": "tunnel.example.com"}], 20,
                   "the hand-written Tunnel's Service too")

        st, _ = self.kube.call("PATCH", f"{es_path}/office", {"spec": {"url": "https://127.0.0.1/"}},
                               ctype="application/merge-patch+json")
        self.assertEqual(st, 200)
        wait_until(lambda: ((self.tunnel("web-tunnel") or {}).get("status") or {}).get("hostStatus") == "invalid", 30,
                   "invalid")
        self.assertIn("spec.url", self.tunnel("web-tunnel")["status"]["message"])
        wait_until(lambda: self.kube.get("/apis/apps/v1/namespaces/default/deployments/web-tunnel-client") is None, 30,
                   "no client while the ExitServer is wrong")
        for name in ("web", "api"):
            self.assertEqual(self.kube.call("DELETE", f"/api/v1/namespaces/default/services/{name}")[0], 200)
        self.assertEqual(self.kube.call("DELETE", f"{TUNNELS}/hand")[0], 200)
        wait_until(lambda: self.tunnel("web-tunnel") is None and self.tunnel("hand") is None, 30, "Tunnels gone")
        self.kube.call("DELETE", f"{es_path}/office")
        self.assertEqual(self.creates(), 2)
        print("moved to a shared exit server: the generated Tunnel made anew and the hand-written one changed in "
              "place, both cloud hosts deleted first; an address that is a name became the Service's hostname; a "
              "broken URL made the Tunnel invalid and removed its client")

    def test_restarts_and_deletion_while_down(self):
        # provisioning takes a while: kill the operator in the middle, twice
        self.api.active_after = 6
        self.start_operator("--watch-timeout", "2s")
        self.service("api", [free_port()])
        wait_until(lambda: ((self.tunnel("api-tunnel") or {}).get("status") or {}).get("hostStatus") == "provisioning",
                   30, "provisioning")
        self.op.stop(signal.SIGKILL)
        self.start_operator()
        time.sleep(1)
        self.op.stop(signal.SIGKILL)
        # the worst moment: the host exists but the Tunnel does not say so (crash before the
        # status write); the tag finds it again
        st, _ = self.kube.call("PATCH", f"{TUNNELS}/api-tunnel/status", {"status": {"hostId": None}},
                               ctype="application/merge-patch+json")
        self.assertEqual(st, 200)
        self.start_operator("--watch-timeout", "1s")
        tun = self.wait_active("api-tunnel")
        self.assertEqual(self.creates(), 1)
        self.assertEqual(len(self.hosts_tagged(tun)), 1)
        self.assertIn("found its host", self.op.output())
        # watches the server ended were resumed where they stopped (and the work still got done)
        self.assertRegex(self.op.output(), r"Watch /api/v1/services ended; resuming from resourceVersion \d+")
        # SIGTERM: a clean exit
        self.assertEqual(self.op.stop(), 0)

        # the Service deleted while the operator is down: the finalizer holds the Tunnel until
        # the operator is back and has deleted the host
        host_id = tun["status"]["hostId"]
        st, _ = self.kube.call("DELETE", "/api/v1/namespaces/default/services/api")
        self.assertEqual(st, 200)
        wait_until(lambda: (self.tunnel("api-tunnel") or {}).get("metadata", {}).get("deletionTimestamp"), 30,
                   "the garbage collector to delete the Tunnel")
        time.sleep(1)
        self.assertIsNotNone(self.tunnel("api-tunnel"))
        self.assertIn(str(host_id), self.api.droplets)
        self.start_operator()
        self.wait_gone("api", host_id)
        self.assertEqual(self.op.stop(), 0)

    @unittest.skipUnless(os.getuid() == 0 and not os.path.exists("/var/run/secrets/kubernetes.io"),
                         "needs root and no real service account here")
    def test_in_cluster_credentials(self):
        # The pod's view, on this machine: the service account's token and CA where the kubelet
        # puts them, KUBERNETES_SERVICE_HOST/PORT in the environment, no --kubeconfig.
        sa = "/var/run/secrets/kubernetes.io/serviceaccount"
        made_parent = not os.path.exists("/var/run/secrets")
        os.makedirs(sa)
        try:
            with open(f"{sa}/token", "w") as f:
                f.write(kube_cluster.OPERATOR_TOKEN)
            shutil.copy(self.kube.ca, f"{sa}/ca.crt")
            self.start_operator("--annotated-only", kubeconfig=False,
                                env={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.kube.port)})
            self.op.wait_log("Listed /apis/inlets.inlets.dev/v1alpha1/tunnels", 20)
            self.assertIn(f"https://127.0.0.1:{self.kube.port}", self.op.output())
            self.assertEqual(self.op.stop(), 0)
        finally:
            shutil.rmtree("/var/run/secrets" if made_parent else "/var/run/secrets/kubernetes.io")


if __name__ == "__main__":
    main()

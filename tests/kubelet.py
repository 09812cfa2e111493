#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The seed's whole operator flow with pods that really run (#25): a node made here -- etcd,
kube-apiserver, kube-controller-manager, kube-scheduler and kubelet built by tools/kube from
Debian's kubernetes source, containerd and runc from Debian -- in network namespaces this test
creates:

  node (this process's own namespace)             exit (an "internet" host)
    control plane on 127.0.0.1                      inletsd exit server 10.23.0.2
    kubelet + containerd, node IP 10.23.0.1  ---- veth ----
    pods on the bridge cni0 10.22.0.0/24 (Debian's CNI plugins)

An nginx Deployment (host network; its image made here from Debian's nginx-light) and a
LoadBalancer Service for it that names a shared ExitServer; inlets-operator writes the
Deployment nginx-1-tunnel-client, which the scheduler places and the kubelet runs from the image
tools/image made (a pod on the bridge, the token Secret mounted by the kubelet); `kubectl get
svc` shows the EXTERNAL-IP and curl to it reaches nginx.

Two stand-ins, because Debian has neither CoreDNS nor (here) a kube-proxy with iptables: the
cluster's DNS is dnsmasq answering the Service's name with its Endpoints' address, as CoreDNS
does for a headless Service. Images come from `podman save` into containerd, never a registry;
the pod sandbox's image is tests/pause.c.

Needs root, podman, mmdebstrap, containerd, runc, containernetworking-plugins, dnsmasq, gcc.
One line per check: kubelet:<check> PASS|FAIL.

  tests/kubelet.py IMAGE        (IMAGE: the inletsd image in podman's store, from tools/image)
"""

import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, HERE)

NODE_IP, EXIT_IP, POD_NET = "10.23.0.1", "10.23.0.2", "10.22.0.0/24"
CONTROL_PORT = 8123
PAGE = b"nginx, reached through inletsd from a pod the kubelet runs\n"
PAUSE, NGINX = "localhost/pause:kubelet-test", "localhost/nginx:kubelet-test"
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"kubelet:{name} {'PASS' if ok else 'FAIL'}{'  ' + detail if detail and not ok else ''}", flush=True)
    return ok


def run(*cmd, timeout=120, check_rc=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.returncode}: {r.stderr[-1500:]}")
    return r


class Node:
    def __init__(self, tmp, image):
        import kube_cluster
        self.tmp, self.image = tmp, image
        self.netns = f"inletsd-kubelet-exit-{os.getpid()}"
        self.cgroup = f"inletsd-kubelet-{os.getpid()}"
        self.procs, self.logs, self.kube = [], [], None
        self.sock = f"{tmp}/containerd.sock"
        self.kube_cluster = kube_cluster

    def start(self, name, cmd, **kw):
        log = open(f"{self.tmp}/{name}.log", "wb")
        self.logs.append(log)
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, **kw)
        self.procs.append(p)
        return p

    def log(self, name, tail=3000):
        try:
            with open(f"{self.tmp}/{name}.log", errors="replace") as f:
                return f.read()[-tail:]
        except OSError:
            return ""

    # -- the networks ---------------------------------------------------------------------------
    def networks(self):
        run("ip", "link", "set", "lo", "up")
        run("ip", "netns", "add", self.netns)
        run("ip", "-n", self.netns, "link", "set", "lo", "up")
        run("ip", "link", "add", "kx-node", "type", "veth", "peer", "name", "kx-exit", "netns", self.netns)
        run("ip", "addr", "add", f"{NODE_IP}/24", "dev", "kx-node")
        run("ip", "link", "set", "kx-node", "up")
        run("ip", "-n", self.netns, "addr", "add", f"{EXIT_IP}/24", "dev", "kx-exit")
        run("ip", "-n", self.netns, "link", "set", "kx-exit", "up")
        run("ip", "-n", self.netns, "route", "add", POD_NET, "via", NODE_IP)
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:  # this namespace's own
            f.write("1")
        os.makedirs(f"{self.tmp}/cni")
        with open(f"{self.tmp}/cni/10-kx.conflist", "w") as f:
            json.dump({"cniVersion": "0.4.0", "name": "kx", "plugins": [{
                "type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_NET}]], "routes": [{"dst": "0.0.0.0/0"}],
                         "dataDir": f"{self.tmp}/cni-ipam"}}]}, f)

    # -- containerd and the images --------------------------------------------------------------
    def containerd(self):
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        with open(f"{self.tmp}/containerd.toml", "w") as f:
            f.write(f"""version = 2
root = "{self.tmp}/containerd/root"
state = "{self.tmp}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[{cri}]
  sandbox_image = "{PAUSE}"
  restrict_oom_score_adj = true  # the kubelet asks for -998; this machine refuses going below its own
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{self.tmp}/runc"
  [{cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{self.tmp}/cni"
""")
        self.start("containerd", ["containerd", "--config", f"{self.tmp}/containerd.toml"])
        from inletstest import wait_until
        wait_until(lambda: os.path.exists(self.sock), 30, "containerd")

    def images(self):
        """Each image from podman's store (build_images() and tools/image) into containerd's
        k8s.io namespace by `podman save`."""
        for ref in (PAUSE, NGINX, self.image):
            run("podman", "save", "--format", "oci-archive", "-o", f"{self.tmp}/img.tar", ref, timeout=300)
            run("ctr", "-a", self.sock, "-n", "k8s.io", "images", "import", f"{self.tmp}/img.tar", timeout=300)
            os.unlink(f"{self.tmp}/img.tar")

    # -- the control plane, the scheduler and the kubelet ---------------------------------------
    def cluster(self):
        from inletstest import wait_until
        self.kube = self.kube_cluster.KubeCluster(
            f"{self.tmp}/kube",
            controllers="garbagecollector,deployment,replicaset,namespace,serviceaccount-token,endpoint,nodelifecycle")
        bin_ = self.kube_cluster.KUBE_BIN
        admin = self.kube.admin_kubeconfig
        self.start("scheduler", [f"{bin_}/kube-scheduler", f"--kubeconfig={admin}", "--leader-elect=false",
                                 "--port=0", "--bind-address=127.0.0.1"])
        # the pods' cgroups go under a cgroup of the test's own, in every v1 hierarchy (removed
        # at the end); on the unified hierarchy it is one directory
        for d in self.cgroup_dirs():
            os.makedirs(d, exist_ok=True)
            for knob in ("cpuset.cpus", "cpuset.mems"):  # v1 starts a new cpuset empty: no task could join
                if os.path.exists(f"{d}/{knob}"):
                    with open(f"{os.path.dirname(d)}/{knob}") as src, open(f"{d}/{knob}", "w") as dst:
                        dst.write(src.read())
        with open(f"{self.tmp}/resolv.conf", "w") as f:
            f.write(f"nameserver {NODE_IP}\n")
        with open(f"{self.tmp}/kubelet.yaml", "w") as f:
            json.dump({
                "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                "address": "127.0.0.1", "readOnlyPort": 0, "healthzPort": 0,
                "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False}},
                "authorization": {"mode": "AlwaysAllow"},
                "cgroupDriver": "cgroupfs", "cgroupRoot": f"/{self.cgroup}", "cgroupsPerQOS": True,
                "enforceNodeAllocatable": [], "failSwapOn": False,
                "clusterDNS": [NODE_IP], "clusterDomain": "cluster.local", "resolvConf": f"{self.tmp}/resolv.conf",
                "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
                "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
                "syncFrequency": "2s", "fileCheckFrequency": "2s", "nodeStatusUpdateFrequency": "2s"}, f)
        self.start("kubelet", [
            f"{bin_}/kubelet", f"--kubeconfig={admin}", f"--config={self.tmp}/kubelet.yaml",
            "--container-runtime=remote", f"--container-runtime-endpoint=unix://{self.sock}",
            f"--root-dir={self.tmp}/kubelet", "--hostname-override=node-1", f"--node-ip={NODE_IP}",
            "--v=1"])

        def ready():
            node = self.kube.get("/api/v1/nodes/node-1")
            return node and any(c["type"] == "Ready" and c["status"] == "True"
                                for c in node.get("status", {}).get("conditions", []))
        wait_until(ready, 90, "node-1 Ready")

    def cgroup_dirs(self):
        root = "/sys/fs/cgroup"
        if os.path.exists(f"{root}/cgroup.controllers"):
            return [f"{root}/{self.cgroup}"]
        return [f"{root}/{c}/{self.cgroup}" for c in sorted(os.listdir(root))
                if os.path.isdir(f"{root}/{c}") and not os.path.islink(f"{root}/{c}")]

    # -- the end: nothing left running, mounted or in a cgroup ----------------------------------
    def close(self):
        if self.kube:
            for name in ("nginx-1-tunnel-client", "nginx-1"):  # the pods' graceful end
                self.kube.call("DELETE", f"/apis/apps/v1/namespaces/default/deployments/{name}")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (self.kube.get("/api/v1/namespaces/default/pods") or {}).get(
                    "items"):
                time.sleep(0.5)
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.kube:
            self.kube.close()
        # anything left: the shims (this mount namespace) and the containers (the cgroups)
        me = os.getpid()
        mnt = os.readlink("/proc/self/ns/mnt")
        for _ in range(3):
            pids = set()
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    if int(pid) != me and os.readlink(f"/proc/{pid}/ns/mnt") == mnt:
                        pids.add(int(pid))
                except OSError:
                    pass
            for d in self.cgroup_dirs():
                for dirpath, _, files in os.walk(d):
                    if "cgroup.procs" in files:
                        with open(f"{dirpath}/cgroup.procs") as f:
                            pids.update(int(x) for x in f.read().split())
            pids.discard(me)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(1)
        for d in self.cgroup_dirs():
            for dirpath, _, _ in sorted(os.walk(d), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
        # the overlay and secret mounts are this mount namespace's own; unmount them to delete
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for m in reversed(mounts):
            if m.startswith(self.tmp):
                subprocess.run(["umount", "-l", m], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        for f in self.logs:
            f.close()


def build_images(tmp):
    """Into podman's store, before the test leaves the machine's network: pause from
    tests/pause.c, nginx from Debian's nginx-light (mmdebstrap) with a page of the test's."""
    os.makedirs(f"{tmp}/pause-root")
    run("gcc", "-O2", "-static", "-o", f"{tmp}/pause-root/pause", f"{HERE}/pause.c")
    run("tar", "-C", f"{tmp}/pause-root", "-cf", f"{tmp}/pause.tar", ".")
    run("podman", "import", "--quiet", "--change", 'ENTRYPOINT ["/pause"]', f"{tmp}/pause.tar", PAUSE)
    with open(f"{tmp}/index.html", "wb") as f:
        f.write(PAGE)
    mirrors = ["/etc/apt/sources.list.d/debian.sources"] if os.path.exists(
        "/etc/apt/sources.list.d/debian.sources") else ["deb http://deb.debian.org/debian bookworm main"]
    run("mmdebstrap", "--variant=minbase", "--include=nginx-light",
        f"--customize-hook=copy-in {tmp}/index.html /var/www/html", "bookworm", f"{tmp}/nginx.tar", *mirrors,
        timeout=600)
    run("podman", "import", "--quiet", "--change", 'CMD ["nginx", "-g", "daemon off;"]', f"{tmp}/nginx.tar", NGINX)


def flow(tmp, image):
    from inletstest import INLETSD, TOKEN, wait_until
    operator = os.environ.get("INLETS_OPERATOR", "build/operator/inlets-operator")
    node = Node(tmp, image)
    exit_server = None
    try:
        node.networks()
        node.containerd()
        node.images()
        imgs = run("ctr", "-a", node.sock, "-n", "k8s.io", "images", "ls", "-q").stdout.split()
        check("images-in-containerd", all(i in imgs for i in (PAUSE, NGINX, image)), str(imgs))
        try:
            node.cluster()
            ok = True
        except AssertionError:
            ok = False
        if not check("node-ready", ok, node.log("kubelet")):
            return
        kube = node.kube
        kube.apply_file(f"{SRC}/deploy/crd.yaml")

        # the exit server, on the other host
        with open(f"{tmp}/token", "w") as f:
            f.write(TOKEN)
        with open(f"{tmp}/server.conf", "w") as f:
            f.write(f"[Tunnel]\nRole=server\nTokenFile={tmp}/token\n[Server]\n"
                    f"ControlListen={EXIT_IP}:{CONTROL_PORT}\nDataListen={EXIT_IP}\n"
                    f"StateDirectory={tmp}/exit-state\nAutoTLSSAN={EXIT_IP}\nAllowPorts=80\n")
        exit_server = node.start("exit-server", ["ip", "netns", "exec", node.netns, INLETSD, "--config",
                                                 f"{tmp}/server.conf", "--no-bus"])
        wait_until(lambda: os.path.exists(f"{tmp}/exit-state/ca.crt"), 20, "the exit server's CA")
        with open(f"{tmp}/exit-state/ca.crt") as f:
            pin = "sha256:" + hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()

        # nginx, its Service, the shared ExitServer, then the operator
        for path, body in (
                ("/apis/apps/v1/namespaces/default/deployments", {
                    "metadata": {"name": "nginx-1"},
                    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "nginx-1"}},
                             "template": {"metadata": {"labels": {"app": "nginx-1"}}, "spec": {
                                 "hostNetwork": True,
                                 "containers": [{"name": "nginx", "image": NGINX,
                                                 "imagePullPolicy": "Never",
                                                 "ports": [{"containerPort": 80}]}]}}}}),
                ("/api/v1/namespaces/default/secrets", {"metadata": {"name": "exit-token"},
                                                        "stringData": {"token": TOKEN}}),
                ("/apis/inlets.inlets.dev/v1alpha1/namespaces/default/exitservers", {
                    "apiVersion": "inlets.inlets.dev/v1alpha1", "kind": "ExitServer", "metadata": {"name": "exit"},
                    "spec": {"url": f"wss://{EXIT_IP}:{CONTROL_PORT}", "fingerprint": pin,
                             "tokenSecret": "exit-token", "address": EXIT_IP}}),
                ("/api/v1/namespaces/default/services", {
                    "metadata": {"name": "nginx-1", "annotations": {"operator.inlets.dev/exit-server": "exit"}},
                    "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}],
                             "selector": {"app": "nginx-1"}}})):
            st, obj = kube.call("POST", path, body)
            assert st == 201, (path, st, obj)

        def endpoint():
            ep = kube.get("/api/v1/namespaces/default/endpoints/nginx-1") or {}
            addrs = [a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []]
            return addrs[0] if addrs else None
        try:
            wait_until(endpoint, 90, "nginx-1 running, in its Service's Endpoints")
            ep = endpoint()
        except AssertionError:
            ep = None
        pods = [(p["metadata"]["name"], p.get("spec", {}).get("nodeName"), p.get("status"))
                for p in (kube.get("/api/v1/namespaces/default/pods") or {}).get("items", [])]
        if not check("nginx-running", ep == NODE_IP, f"{ep} {pods}\n{node.log('scheduler', 1500)}\n"
                     f"{node.log('kubelet')}"):
            return
        # cluster DNS: the Service's name answers its Endpoints' address (see the docstring)
        node.start("dnsmasq", ["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces",
                               f"--listen-address={NODE_IP}", "--local=/cluster.local/", "--local=/svc/",
                               f"--address=/nginx-1.default.svc/{ep}",
                               f"--address=/nginx-1.default.svc.cluster.local/{ep}", f"--pid-file={tmp}/dnsmasq.pid"])

        node.start("operator", [operator, "--kubeconfig", kube.kubeconfig("operator", node.kube_cluster.OPERATOR_TOKEN),
                                "--client-image", image, "--poll-interval", "500ms", "-v"])
        kube.apply_file(f"{SRC}/deploy/rbac.yaml")

        def client_running():
            d = kube.get("/apis/apps/v1/namespaces/default/deployments/nginx-1-tunnel-client") or {}
            return (d.get("status") or {}).get("availableReplicas") == 1
        try:
            wait_until(client_running, 120, "nginx-1-tunnel-client available")
            ok = True
        except AssertionError:
            ok = False
        pods = kube.get("/api/v1/namespaces/default/pods") or {}
        phases = [(p["metadata"]["name"], p["status"].get("phase"), p["status"].get("podIP"))
                  for p in pods.get("items", []) if p["metadata"]["name"].startswith("nginx-1-tunnel-client-")]
        # a pod on the bridge (not the host's network), Running
        check("tunnel-client-running", ok and len(phases) == 1 and phases[0][1] == "Running" and
              phases[0][2].startswith("10.22.0."),
              f"{phases}\n{node.log('operator', 1500)}\n{node.log('kubelet')}")

        def external_ip():
            r = run("kubectl", f"--kubeconfig={kube.admin_kubeconfig}", "get", "svc", "nginx-1", check_rc=False)
            lines = r.stdout.splitlines()
            if len(lines) < 2:
                return None
            cols = dict(zip(lines[0].split(), lines[1].split()))
            return cols.get("EXTERNAL-IP")
        try:
            wait_until(lambda: external_ip() == EXIT_IP, 60, "EXTERNAL-IP")
        except AssertionError:
            pass
        check("external-ip", external_ip() == EXIT_IP, str(external_ip()))

        body = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = subprocess.run(["curl", "-s", "--max-time", "5", f"http://{EXIT_IP}/"], capture_output=True, timeout=10)
            body = r.stdout
            if body == PAGE:
                break
            time.sleep(1)
        check("curl-reaches-nginx", body == PAGE, f"{body[:200]!r}\n{node.log('exit-server', 1500)}")
    finally:
        node.close()


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    if os.environ.get("INLETSD_KUBELET_NS") == "1":
        tmp = tempfile.mkdtemp(prefix="inletsd-kubelet.", dir="/var/tmp")
        try:
            flow(tmp, sys.argv[1])
        except Exception as e:  # noqa: BLE001 -- reported as a failed check, the cleanup has run
            check("run", False, repr(e))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            print(f"kubelet: {sum(results)} of {len(results)} checks passed", flush=True)
        return 0 if results and all(results) else 1
    tmp = tempfile.mkdtemp(prefix="inletsd-kubelet-images.", dir="/var/tmp")
    try:
        try:
            build_images(tmp)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            check("images", False, str(e))
            print("kubelet: 0 of 1 checks passed", flush=True)
            return 1
        # the rest in a network and a mount namespace of its own: everything it starts, mounts
        # and configures goes with it
        return subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", "--",
                               sys.executable, *sys.argv], env=dict(os.environ, INLETSD_KUBELET_NS="1"),
                              timeout=1200).returncode
    finally:
        subprocess.run(["podman", "rmi", "-f", PAUSE, NGINX], capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

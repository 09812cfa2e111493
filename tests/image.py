#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The container image, for real (#25): tools/image builds it from the .debs given (a Debian 12
base made here with mmdebstrap, imported with podman; nothing comes from a registry). Then, on
loopback, with a real kube-apiserver (tests/kube_cluster.py) and an inletsd exit server:

* the operator container starts as deploy/operator.yaml runs it (its user, a read-only root,
  no capabilities) with in-cluster credentials -- the service account's token and CA mounted
  where the kubelet puts them, KUBERNETES_SERVICE_HOST/PORT -- and reconciles a Service that
  names a shared ExitServer: it writes the tunnel client Deployment;
* the tunnel client container starts exactly as that Deployment says -- its command, args and
  environment, the pod's user and fsGroup, the token Secret's file mounted read-only with the
  owner and mode the kubelet gives it, a read-only root, no capabilities, the Service's name
  resolving as cluster DNS would -- and carries bytes through the exit server to the Service;
* then the same image in pods a real kubelet runs (tests/kubelet.py): image:kubelet-* checks.

Needs root, podman, runc and mmdebstrap (and what tests/kubelet.py needs). One line per check: image:<check> PASS|FAIL.

  tests/image.py inletsd_*.deb inlets-operator_*.deb
"""

import base64
import hashlib
import os
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kube_cluster  # noqa: E402
from inletstest import INLETSD, TOKEN, EchoServer, echo_roundtrip, free_port, port_open, wait_until  # noqa: E402

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = "localhost/inletsd:image-test"
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"image:{name} {'PASS' if ok else 'FAIL'}{'  ' + detail if detail and not ok else ''}", flush=True)
    return ok


def podman_run(name, args, image_args, timeout=60):
    """podman run -d, as a kubelet would start the container: the host's network (the test's
    loopback), limits within this process's own (the runtime may not raise them)."""
    def limit(which):
        hard = resource.getrlimit(which)[1]
        return 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    nofile, nproc = limit(resource.RLIMIT_NOFILE), min(limit(resource.RLIMIT_NPROC), 1024)
    cmd = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs", "run", "-d", "--name", name,
           "--network=host", "--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}",
           "--cap-drop=ALL", "--security-opt=no-new-privileges", "--read-only",
           *args, TAG, *image_args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def logs(name):
    return subprocess.run(["podman", "logs", name], capture_output=True, text=True, timeout=30).stdout + \
        subprocess.run(["podman", "logs", name], capture_output=True, text=True, timeout=30).stderr


def main():
    debs = sys.argv[1:]
    tmp = tempfile.mkdtemp(prefix="inletsd-image-test.")
    procs, kube, echo = [], None, None
    try:
        r = subprocess.run([f"{SRC}/tools/image", "--tag", TAG, *debs], capture_output=True, text=True, timeout=900)
        if not check("builds", r.returncode == 0, r.stderr[-2000:]):
            return
        cfg = subprocess.run(["podman", "image", "inspect", TAG, "--format", "{{.Config.User}} {{.Config.Entrypoint}}"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
        check("non-root-user", cfg == "65532:65532 [inletsd]", cfg)

        # the cluster, and an exit server on loopback for the shared ExitServer
        kube = kube_cluster.KubeCluster(f"{tmp}/kube")
        kube.apply_file(f"{SRC}/deploy/crd.yaml")
        kube.apply_file(f"{SRC}/deploy/rbac.yaml")
        cport = free_port()
        with open(f"{tmp}/token", "w") as f:
            f.write(TOKEN)
        with open(f"{tmp}/server.conf", "w") as f:
            f.write(f"[Tunnel]\nRole=server\nTokenFile={tmp}/token\n[Server]\nControlListen=127.0.0.1:{cport}\n"
                    f"DataListen=127.0.0.1\nStateDirectory={tmp}/state\nAutoTLSSAN=127.0.0.1\n")
        srv = subprocess.Popen([INLETSD, "--config", f"{tmp}/server.conf", "--no-bus"], stdout=subprocess.DEVNULL,
                               stderr=open(f"{tmp}/server.log", "w"))
        procs.append(srv)
        wait_until(lambda: port_open(cport), 10, "the exit server")
        with open(f"{tmp}/state/ca.crt") as f:
            pin = "sha256:" + hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()
        pub = free_port()
        echo = EchoServer("127.0.0.3", pub)  # the Service's pods
        for path, body in (
                ("/api/v1/namespaces/default/secrets", {"metadata": {"name": "office-token"},
                                                        "stringData": {"token": TOKEN}}),
                ("/apis/inlets.inlets.dev/v1alpha1/namespaces/default/exitservers", {
                    "apiVersion": "inlets.inlets.dev/v1alpha1", "kind": "ExitServer", "metadata": {"name": "office"},
                    "spec": {"url": f"wss://127.0.0.1:{cport}", "fingerprint": pin, "tokenSecret": "office-token"}}),
                ("/api/v1/namespaces/default/services", {
                    "metadata": {"name": "web", "annotations": {"operator.inlets.dev/exit-server": "office"}},
                    "spec": {"type": "LoadBalancer", "ports": [{"port": pub, "protocol": "TCP"}],
                             "selector": {"app": "web"}}})):
            st, obj = kube.call("POST", path, body)
            assert st == 201, (st, obj)

        # the operator's container, with the service account as the kubelet mounts it
        sa = f"{tmp}/serviceaccount"
        os.makedirs(sa)
        with open(f"{sa}/token", "w") as f:
            f.write(kube_cluster.OPERATOR_TOKEN)
        shutil.copy(kube.ca, f"{sa}/ca.crt")
        os.chmod(sa, 0o755)
        for n in ("token", "ca.crt"):
            os.chmod(f"{sa}/{n}", 0o644)
        r = podman_run("inletsd-image-operator", [
            "--user", "65532", "-v", f"{sa}:/var/run/secrets/kubernetes.io/serviceaccount:ro",
            "-e", "KUBERNETES_SERVICE_HOST=127.0.0.1", "-e", f"KUBERNETES_SERVICE_PORT={kube.port}",
            "--tmpfs", "/tmp", "--entrypoint", "inlets-operator"], ["--client-image", TAG, "-v"])
        check("operator-starts", r.returncode == 0, r.stderr[-1000:])
        dep = None

        def deployment():
            nonlocal dep
            dep = kube.get("/apis/apps/v1/namespaces/default/deployments/web-tunnel-client")
            return dep is not None
        try:
            wait_until(deployment, 60, "the client Deployment")
        except AssertionError:
            pass
        check("operator-reconciles-in-cluster", dep is not None, logs("inletsd-image-operator")[-2000:])
        if dep is None:
            return

        # the tunnel client's container, as the Deployment says
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        sc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
        vol = pod["volumes"][0]["secret"]
        secret = kube.get(f"/api/v1/namespaces/default/secrets/{vol['secretName']}")
        mnt = f"{tmp}/secret-volume"
        os.makedirs(mnt)
        for item in vol.get("items", []):
            p = f"{mnt}/{item['path']}"
            with open(p, "wb") as f:
                f.write(base64.b64decode(secret["data"][item["key"]]))
            # the kubelet: owner root, group fsGroup, the volume's defaultMode
            os.chown(p, 0, psc.get("fsGroup", 0))
            os.chmod(p, vol.get("defaultMode", 0o644))
        args = ["--user", f"{psc.get('runAsUser', 0)}:{psc.get('runAsGroup', 0)}",
                "--add-host", f"web.default.svc:127.0.0.3", "--entrypoint", c["command"][0]]
        if psc.get("fsGroup") is not None:
            args += ["--group-add", str(psc["fsGroup"])]
        for m in c.get("volumeMounts", []):
            args += ["-v", f"{mnt}:{m['mountPath']}:ro"]
        for e in c.get("env", []):
            args += ["-e", f"{e['name']}={e['value']}"]
        check("client-pod-spec", psc.get("runAsNonRoot") and sc.get("readOnlyRootFilesystem") and
              sc.get("capabilities", {}).get("drop") == ["ALL"], str((psc, sc)))
        r = podman_run("inletsd-image-client", args, c["command"][1:] + c["args"])
        check("client-starts", r.returncode == 0, r.stderr[-1000:])
        try:
            wait_until(lambda: port_open(pub), 30, "the Service's port on the exit server")
            got = echo_roundtrip(pub, b"from a container built here", timeout=10)
        except (AssertionError, OSError) as e:
            got = repr(e)
        check("client-carries-bytes", got == b"from a container built here",
              f"{got!r}\n{logs('inletsd-image-client')[-2000:]}")
    finally:
        for name in ("inletsd-image-client", "inletsd-image-operator"):
            subprocess.run(["podman", "rm", "-f", "-t", "2", name], capture_output=True, timeout=60)
        for p in procs:
            p.terminate()
            p.wait(10)
        if echo:
            echo.close()
        if kube:
            kube.close()
        shutil.rmtree(tmp, ignore_errors=True)
        if results and results[0]:
            kubelet()
        subprocess.run(["podman", "rmi", "-f", TAG], capture_output=True, timeout=60)
        print(f"image: {sum(results)} of {len(results)} checks passed", flush=True)


def kubelet():
    """The same image in pods a real kubelet runs (tests/kubelet.py): its checks, as image:kubelet-*."""
    if not os.access(f"{kube_cluster.KUBE_BIN}/kubelet", os.X_OK) or not shutil.which("containerd"):
        check("kubelet-run", False, "needs kubelet (tools/kube) and containerd")
        return
    p = subprocess.Popen([sys.executable, f"{SRC}/tests/kubelet.py", TAG], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    done = False
    for line in p.stdout:
        if line.startswith("kubelet:") and line.split()[1:2] in (["PASS"], ["FAIL"]):
            name, verdict = line.split()[0][len("kubelet:"):], line.split()[1]
            check(f"kubelet-{name}", verdict == "PASS", line.split("  ", 1)[1] if "  " in line else "")
        elif line.startswith("kubelet: "):
            done = True
        elif not line.startswith("kubelet"):
            sys.stdout.write("    " + line)
    check("kubelet-run", p.wait() == 0 and done)


if __name__ == "__main__":
    main()
    sys.exit(0 if results and all(results) else 1)

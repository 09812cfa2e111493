# SPDX-License-Identifier: LGPL-2.1-or-later
"""A real Kubernetes control plane on loopback for the operator's tests: etcd, kube-apiserver
and kube-controller-manager (garbage collector, deployments), built by tools/kube from Debian's
source package (no scheduler, no kubelet: pods stay Pending; tests/kubelet.py adds them). Static tokens: "admin"
(system:masters) and one for the operator's ServiceAccount user, so RBAC from deploy/rbac.yaml
is what the operator gets."""

import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import yaml

from inletstest import free_port, wait_until

KUBE_BIN = os.environ.get("INLETS_KUBE_BIN", "/var/tmp/inletsd-kube/bin")
ADMIN_TOKEN = "admin-token-0123456789abcdef"
OPERATOR_TOKEN = "operator-token-0123456789abcdef"
OPERATOR_USER = "system:serviceaccount:inlets:inlets-operator"


def available():
    return all(os.access(f"{KUBE_BIN}/{b}", os.X_OK) for b in ("kube-apiserver", "kube-controller-manager")) \
        and shutil.which("etcd")


class KubeCluster:
    def __init__(self, tmp, controllers="garbagecollector,deployment,replicaset,namespace,serviceaccount-token"):
        self.tmp = tmp
        self.procs = []
        self.logs = []
        pki = f"{tmp}/pki"
        os.makedirs(pki)
        subprocess.run(["openssl", "genrsa", "-out", f"{tmp}/sa.key", "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", f"{tmp}/sa.key", "-pubout", "-out", f"{tmp}/sa.pub"], check=True,
                       capture_output=True)
        with open(f"{tmp}/tokens.csv", "w") as f:
            f.write(f'{ADMIN_TOKEN},admin,admin,"system:masters"\n')
            f.write(f'{OPERATOR_TOKEN},{OPERATOR_USER},operator-uid,"system:serviceaccounts"\n')
        etcd_port, etcd_peer, self.port = free_port(), free_port(), free_port()
        self.start("etcd", ["etcd", "--data-dir", f"{tmp}/etcd",
                            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
                            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
                            "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                            "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                            "--initial-cluster", f"default=http://127.0.0.1:{etcd_peer}"])
        self.start("apiserver", [
            f"{KUBE_BIN}/kube-apiserver", f"--etcd-servers=http://127.0.0.1:{etcd_port}", "--bind-address=127.0.0.1",
            f"--secure-port={self.port}", "--advertise-address=127.0.0.1", f"--cert-dir={pki}",
            f"--token-auth-file={tmp}/tokens.csv", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={tmp}/sa.pub", f"--service-account-signing-key-file={tmp}/sa.key",
            "--service-cluster-ip-range=10.96.0.0/16", "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true", "--endpoint-reconciler-type=none"])
        self.server = f"https://127.0.0.1:{self.port}"
        self.ca = f"{pki}/apiserver.crt"
        try:
            wait_until(lambda: os.path.exists(self.ca) and self.ready(), 90, "kube-apiserver")
        except BaseException:
            self.close()
            raise
        self.admin_kubeconfig = self.kubeconfig("admin", ADMIN_TOKEN)
        self.start("controller-manager", [
            f"{KUBE_BIN}/kube-controller-manager", f"--kubeconfig={self.admin_kubeconfig}", "--leader-elect=false",
            "--port=0", "--secure-port=0",
            f"--controllers={controllers}",
            f"--service-account-private-key-file={tmp}/sa.key", f"--root-ca-file={self.ca}"])

    def start(self, name, cmd):
        log = open(f"{self.tmp}/{name}.log", "wb")
        self.logs.append(log)
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))

    def ready(self):
        try:
            return self.call("GET", "/readyz")[0] == 200
        except (OSError, urllib.error.URLError):
            return False

    def kubeconfig(self, user, token):
        path = f"{self.tmp}/kubeconfig-{user}"
        with open(path, "w") as f:
            yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "test",
                            "clusters": [{"name": "local", "cluster": {"server": self.server,
                                                                       "certificate-authority": self.ca}}],
                            "contexts": [{"name": "test", "context": {"cluster": "local", "user": user}}],
                            "users": [{"name": user, "user": {"token": token}}]}, f)
        return path

    def call(self, method, path, body=None, ctype="application/json", token=ADMIN_TOKEN, accept="application/json"):
        ctx = ssl.create_default_context(cafile=self.ca) if os.path.exists(self.ca) else ssl._create_unverified_context()
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": ctype,
                                              "Accept": accept})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=20) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw[:1] in (b"{", b"[") else raw)
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw[:1] == b"{" else raw)

    def get(self, path):
        st, obj = self.call("GET", path)
        return obj if st == 200 else None

    def apply_file(self, path):
        """Creates every object of a YAML file (CRDs, namespaces, RBAC, ...)."""
        paths = {"CustomResourceDefinition": "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                 "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
                 "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                 "Namespace": "/api/v1/namespaces"}
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc:
                    continue
                kind = doc["kind"]
                if kind in paths:
                    p = paths[kind]
                else:
                    ns = doc["metadata"].get("namespace", "default")
                    self.call("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
                    p = {"ServiceAccount": f"/api/v1/namespaces/{ns}/serviceaccounts",
                         "Deployment": f"/apis/apps/v1/namespaces/{ns}/deployments"}[kind]
                st, obj = self.call("POST", p, doc)
                assert st in (201, 409), (st, obj)
                if kind == "CustomResourceDefinition":
                    name = doc["metadata"]["name"]
                    wait_until(lambda: any(c["type"] == "Established" and c["status"] == "True" for c in (
                        ((self.get(f"{p}/{name}") or {}).get("status") or {}).get("conditions") or [])), 30,
                        "CRD established")

    def close(self):
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in self.logs:
            f.close()

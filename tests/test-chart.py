#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Helm chart (deploy/chart/inlets-operator), rendered by tests/chart-render.go (Go's
text/template, the engine helm uses; helm is not in Debian) with its defaults and with every
value set: every object is Kubernetes the real kube-apiserver accepts (a server-side dry run
with strict field validation); the ClusterRole is exactly deploy/rbac.yaml's, the one the
operator test runs the operator under; the operator accepts the arguments the chart gives it;
each value lands where inlets-operator's users expect it."""

import os
import shutil
import subprocess
import tempfile
import unittest

import yaml

import kube_cluster
from inletstest import main

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART = f"{SRC}/deploy/chart/inlets-operator"
OPERATOR = os.environ.get("INLETS_OPERATOR")
EVERY_VALUE = {
    "provider": "scaleway", "region": "nl-ams-1", "plan": "DEV1-S", "projectID": "6a0c2ca8-917a-418a-90a3-05949b55a7ae",
    "annotatedOnly": True,
    "accessKeySecret": "hcloud-token", "accessKeyKey": "token", "image": "registry.example.com/inletsd:0.1.0",
    "clientImage": "registry.example.com/inletsd-client:0.1.0", "packageUrl": "https://example.com/inletsd.deb",
    "resources": {"requests": {"cpu": "20m", "memory": "24Mi"}, "limits": {"memory": "96Mi"}},
    "nodeSelector": {"kubernetes.io/os": "linux", "node-role.example.com/edge": "true"},
    "tolerations": [{"key": "edge", "operator": "Exists", "effect": "NoSchedule"}],
    "clientResources": {"requests": {"cpu": "5m", "memory": "8Mi"}},
    "maxClientMemory": "48Mi",
}


def have_go():
    return shutil.which("go") and os.path.isdir("/usr/share/gocode/src/gopkg.in/yaml.v3")


@unittest.skipUnless((kube_cluster.available() and have_go()) or os.environ.get("CI"),
                     "needs kube-apiserver (tools/kube), go and golang-gopkg-yaml.v3-dev")
class Chart(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="inletsd-chart.")
        cls.kube = kube_cluster.KubeCluster(f"{cls.tmp}/kube")
        try:
            cls.kube.apply_file(f"{SRC}/deploy/crd.yaml")
            cls.kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": "inlets"}})
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.kube.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def render(self, values=None):
        args = ["go", "run", f"{SRC}/tests/chart-render.go", CHART]
        if values is not None:
            with open(f"{self.tmp}/values.yaml", "w") as f:
                yaml.safe_dump(values, f)
            args.append(f"{self.tmp}/values.yaml")
        r = subprocess.run(args, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode",
                                    GOCACHE=f"{self.tmp}/gocache", HOME=self.tmp))
        self.assertEqual(r.returncode, 0, r.stderr)
        docs = [d for d in yaml.safe_load_all(r.stdout) if d]
        self.assertTrue(docs)
        return {(d["kind"], d["metadata"]["name"]): d for d in docs}

    def dry_run(self, obj):
        """The API server's own check of obj: created for a dry run, unknown fields refused."""
        kind, ns = obj["kind"], obj["metadata"].get("namespace")
        coll = {"ServiceAccount": f"/api/v1/namespaces/{ns}/serviceaccounts",
                "Deployment": f"/apis/apps/v1/namespaces/{ns}/deployments",
                "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
                "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"}[kind]
        st, answer = self.kube.call("POST", f"{coll}?dryRun=All&fieldValidation=Strict", obj)
        self.assertEqual(st, 201, f"{kind} {obj['metadata']['name']}: {answer}")

    def check_common(self, objs):
        for obj in objs.values():
            self.dry_run(obj)
        with open(f"{SRC}/deploy/rbac.yaml") as f:
            rbac = {d["kind"]: d for d in yaml.safe_load_all(f) if d}
        self.assertEqual(objs[("ClusterRole", "inlets-operator")]["rules"], rbac["ClusterRole"]["rules"],
                         "the chart's ClusterRole is the one the operator is tested under")
        binding = objs[("ClusterRoleBinding", "inlets-operator")]
        self.assertEqual(binding["subjects"], [{"kind": "ServiceAccount", "name": "inlets-operator",
                                                "namespace": "inlets"}])
        dep = objs[("Deployment", "inlets-operator")]
        pod = dep["spec"]["template"]["spec"]
        self.assertEqual(pod["serviceAccountName"], "inlets-operator")
        c = pod["containers"][0]
        # the operator takes these arguments (a wrong one exits 2; 1 is the missing token or cluster)
        r = subprocess.run([OPERATOR, *c["args"], "--kubeconfig", "/nonexistent"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        return pod, c

    def test_defaults(self):
        objs = self.render()
        pod, c = self.check_common(objs)
        self.assertEqual(c["image"], "localhost/inletsd:0.1.0")
        self.assertEqual(c["args"], ["--provider=digitalocean", "--access-token-file=/var/secrets/inlets/inlets-access-key",
                                     "--region=lon1", "--client-image=localhost/inletsd:0.1.0"])
        self.assertNotIn("nodeSelector", pod)
        self.assertNotIn("tolerations", pod)
        print(f"defaults: {len(objs)} objects, accepted by the API server; the ClusterRole is deploy/rbac.yaml's")

    def test_every_value(self):
        objs = self.render(EVERY_VALUE)
        pod, c = self.check_common(objs)
        self.assertEqual(c["image"], EVERY_VALUE["image"])
        self.assertEqual(c["args"], [
            "--provider=scaleway", "--access-token-file=/var/secrets/inlets/token", "--region=nl-ams-1",
            "--size=DEV1-S", "--project=6a0c2ca8-917a-418a-90a3-05949b55a7ae",
            "--client-image=registry.example.com/inletsd-client:0.1.0", "--annotated-only",
            "--package-url=https://example.com/inletsd.deb",
            '--client-resources={"requests":{"cpu":"5m","memory":"8Mi"}}', "--max-client-memory=48Mi"])
        self.assertEqual(c["resources"], EVERY_VALUE["resources"])
        self.assertEqual(pod["nodeSelector"], EVERY_VALUE["nodeSelector"])
        self.assertEqual(pod["tolerations"], EVERY_VALUE["tolerations"])
        self.assertEqual(pod["volumes"][0]["secret"]["secretName"], "hcloud-token")
        print(f"every value set: {len(objs)} objects accepted; each value where it belongs")

    def test_shared_exit_servers_only(self):
        """provider empty: no cloud arguments and no access key Secret to mount."""
        objs = self.render({"provider": ""})
        pod, c = self.check_common(objs)
        self.assertEqual(c["args"], ["--client-image=localhost/inletsd:0.1.0"])
        self.assertEqual([v["name"] for v in pod["volumes"]], ["tmp"])
        print("provider empty: the operator for shared exit servers only, no Secret needed")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# deploy/grafana/inletsd.json stays true to the metrics: every metric its queries name is one
# docs/metrics.md documents, and every query is valid PromQL (promtool check rules, with the
# dashboard's variables filled in). The same for the PromQL table of docs/metrics.md.
#
# Usage: test-dashboard.py SOURCE-ROOT

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

root = sys.argv[1]
NAME = re.compile(r"\b((?:inletsd|process)_[a-z_]+)")
SUFFIXES = ("_bucket", "_sum", "_count")

with open(os.path.join(root, "docs/metrics.md"), encoding="utf-8") as f:
    doc = f.read()
documented = set()
for line in doc.splitlines():
    if line.startswith("| `"):
        documented.update(re.findall(r"`((?:inletsd|process)_[a-z_]+)`", line.split("|")[1]))
if len(documented) < 15:
    sys.exit(f"docs/metrics.md: found only {sorted(documented)} in its table")

with open(os.path.join(root, "deploy/grafana/inletsd.json"), encoding="utf-8") as f:
    dash = json.load(f)
exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
doc_queries = [m for m in re.findall(r"\| `([^`]*\(.*?)` \|", doc)]
bad = []
for e in exprs + doc_queries:
    for n in NAME.findall(e):
        base = next((n[: -len(s)] for s in SUFFIXES if n.endswith(s)), n)
        if n not in documented and base not in documented:
            bad.append(f"{n} (in {e!r}) is not in docs/metrics.md")
if bad:
    sys.exit("\n".join(bad))

promtool = shutil.which("promtool")
if promtool:
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write("groups:\n  - name: dashboard\n    rules:\n")
        for i, e in enumerate(exprs + doc_queries):
            e = e.replace("$tunnel", ".*").replace("$job", ".*")
            f.write(f"      - record: q{i}\n        expr: {json.dumps(e)}\n")
        path = f.name
    r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
    os.unlink(path)
    if r.returncode != 0:
        sys.exit(f"promtool check rules:\n{r.stdout}{r.stderr}")
print(f"{len(exprs)} dashboard queries and {len(doc_queries)} documented ones name only documented metrics"
      + (" and are valid PromQL" if promtool else " (promtool not installed: syntax not checked)"))

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every key of the definition key table (lib/definition/conf-keys.c, listed by conf-keys-list)
# must be documented in its section of man/inlets.d.5 and of docs/configuration.md.
#
# Usage: test-doc-keys.py CONF-KEYS-LIST SOURCE-ROOT

import re
import subprocess
import sys

KEY = re.compile(r"(?<![A-Za-z])([A-Z][A-Za-z0-9]*)=")


def table_keys(listing):
    """[(section, key)] from conf-keys-list's "Section Key" lines."""
    out = subprocess.run([listing], check=True, capture_output=True, text=True).stdout
    keys = [tuple(line.split()) for line in out.splitlines() if line.strip()]
    if len(keys) < 10 or any(len(k) != 2 for k in keys):
        sys.exit(f"conf-keys-list printed no usable table:\n{out}")
    return keys


def documented_keys(path, heading, other_heading, entry_keys):
    """{section: keys} of the entries under each heading that names a [Section]; another
    heading of the same level ends the section."""
    found, section = {}, None
    for line in open(path, encoding="utf-8"):
        m = re.match(heading, line)
        if m:
            section = m.group(1)
            found.setdefault(section, set())
        elif line.startswith(other_heading):
            section = None
        elif section:
            found[section].update(entry_keys(line))
    return found


def man_entry(line):
    """The keys a .B / .BR line introduces."""
    return KEY.findall(line) if re.match(r"\.BR? ", line) else []


def markdown_entry(line):
    """The keys in the first cell of a table row."""
    cells = line.split("|") if line.startswith("|") else []
    return re.findall(r"`([A-Za-z0-9]+)=`", cells[1]) if len(cells) > 2 else []


def main():
    listing, root = sys.argv[1], sys.argv[2]
    keys = table_keys(listing)
    docs = {
        "man/inlets.d.5": documented_keys(f"{root}/man/inlets.d.5", r"\.SH \[(\w+)\] SECTION", ".SH", man_entry),
        "docs/configuration.md": documented_keys(f"{root}/docs/configuration.md", r"## \[(\w+)\]", "## ",
                                                 markdown_entry),
    }
    missing = []
    for name, found in docs.items():
        for section, key in keys:
            if key not in found.get(section, set()):
                missing.append(f"{name}: [{section}] {key}= is not documented")
        print(f"{name}: {len(keys)} keys of the definition table checked in their sections")
    for m in missing:
        print(m, file=sys.stderr)
    if missing:
        sys.exit(f"{len(missing)} undocumented keys: expected every key of lib/definition/conf-keys.c in both")
    print(f"every one of the {len(keys)} definition keys is documented in both")


if __name__ == "__main__":
    main()

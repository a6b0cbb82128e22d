#!/usr/bin/python3
"""The settings reference of docs/configuration.md, generated from the
services' own tables (ob_cfg_spec_t: name, type, default, bounds, help).

Each block between `<!-- config:NAME:begin ... -->` and
`<!-- config:NAME:end -->` is the Markdown table that a built service prints
with --config-reference (or --config-reference-common for the settings every
service shares), filtered by variable prefix where one service's table is
split over two sections. The tables are the one source: change a setting's
help, default or bounds in the C table, then run
`tools/config_reference.py --write`.

Usage: tools/config_reference.py [--write] [BUILD]   (BUILD: default build)
Without --write, fails (exit 1) naming each block that differs from what
the binaries print, or that is missing. Prints 'config-reference: N passed,
M failed'.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "configuration.md")
HEADER = "| variable | default | values | meaning |\n|---|---|---|---|\n"

# block name: (binary, flag, keep(name) -> bool)
BLOCKS = {
    "common": ("outbound-ingest", "--config-reference-common", lambda n: True),
    "ingest": ("outbound-ingest", "--config-reference", lambda n: True),
    "scheduler": ("outbound-scheduler", "--config-reference", lambda n: True),
    "dialer": ("outbound-dialer", "--config-reference", lambda n: not n.startswith("OB_SIP_")),
    "sip": ("outbound-dialer", "--config-reference", lambda n: n.startswith("OB_SIP_")),
}
BLOCK_RE = re.compile(r"(<!-- config:(\w+):begin[^>]*-->\n)(.*?)(<!-- config:\2:end -->)", re.S)


def generated(build, name):
    binary, flag, keep = BLOCKS[name]
    out = subprocess.run([os.path.join(build, "bin", binary), flag], capture_output=True,
                         text=True, check=True).stdout
    rows = [r for r in out.splitlines(keepends=True)
            if keep(re.match(r"\| `([A-Z0-9_]+)`", r).group(1))]
    return HEADER + "".join(rows)


def main():
    args = [a for a in sys.argv[1:] if a != "--write"]
    write = "--write" in sys.argv[1:]
    build = os.path.join(ROOT, args[0] if args else "build")
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    passed, failed = 0, []
    found = set()

    def replace(m):
        nonlocal passed
        name = m.group(2)
        found.add(name)
        if name not in BLOCKS:
            failed.append(f"{DOC}: block config:{name} names no service table")
            return m.group(0)
        want = generated(build, name)
        if m.group(3) == want:
            passed += 1
        elif not write:
            failed.append(f"docs/configuration.md: block config:{name} differs from what"
                          f" {BLOCKS[name][0]} {BLOCKS[name][1]} prints: run"
                          " tools/config_reference.py --write")
        return m.group(1) + want + m.group(4)

    new = BLOCK_RE.sub(replace, text)
    for name in sorted(set(BLOCKS) - found):
        failed.append(f"docs/configuration.md: no block config:{name}")
    if write and new != text:
        with open(DOC, "w", encoding="utf-8") as f:
            f.write(new)
        print(f"config-reference: rewrote {DOC}")
    for line in failed:
        print(line)
    print(f"config-reference: {passed} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""The layers of the C code include only downwards, so that no two of them
form a cycle:

    common/infra    Kafka, Postgres, HTTP, settings, logs, metrics, JSON
    proto           the topics' messages           (may use infra)
    common/domain   calls, vocabulary, phones, windows, detection
                                                   (may use infra, proto)
    services/X      one binary                     (may use all of the above
                                                    and its own folder only)

Reads every #include "..." of the tracked C and C++ files and fails naming
each one that reaches up or sideways (a service's header from another
service, a domain header from infra or proto, ...). Prints
'layers: N passed, M failed'.
"""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ["common/infra", "proto", "common/domain"]


def layer_of(path):
    """(rank, name) of the folder holding path; services rank above all."""
    folder = os.path.dirname(path)
    if folder in LAYERS:
        return LAYERS.index(folder), folder
    if folder.startswith("services/"):
        return len(LAYERS), folder
    return None


def main():
    headers = {}
    for folder in LAYERS + [d for d in glob.glob("services/*", root_dir=ROOT)]:
        for h in glob.glob(os.path.join(ROOT, folder, "*.h")):
            headers.setdefault(os.path.basename(h), []).append(folder)
    passed, failed = 0, []
    for folder in LAYERS + sorted(glob.glob("services/*", root_dir=ROOT)):
        for src in sorted(glob.glob(os.path.join(ROOT, folder, "*.[ch]")) +
                          glob.glob(os.path.join(ROOT, folder, "*.cc"))):
            rel = os.path.relpath(src, ROOT)
            rank, name = layer_of(rel)
            with open(src, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                    if not m or m.group(1) not in headers:
                        continue  # generated headers (build/gen) and system ones
                    for where in headers[m.group(1)]:
                        target = layer_of(os.path.join(where, m.group(1)))
                        ok = target[1] == name or (target[0] < rank and target[0] < len(LAYERS))
                        if ok:
                            passed += 1
                        else:
                            below = LAYERS[:min(rank, len(LAYERS))]
                            failed.append(f"{rel}:{n}: includes {where}/{m.group(1)}:"
                                          f" {name} may use only "
                                          + (f"{', '.join(below)} and itself" if below
                                             else "itself"))
    for line in failed:
        print(line)
    print(f"layers: {passed} passed, {len(failed)} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())

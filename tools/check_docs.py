#!/usr/bin/env python3
"""Checks that the docs have not rotted (make test runs it).

- Every relative link and image in README.md and docs/*.md points to a file
  of the tree, and a link's #anchor to a heading of its target.
- Every OB_* setting of the services' configuration tables ({"OB_...",
  OB_CFG_..., default, ...} in services/ and common/) has a row in
  docs/configuration.md, and a row's default is the table's.
- Every OB_* variable in the first column of docs/configuration.md is read
  somewhere: a setting of those tables, or a name in a script or test.
- README.md fits on a screen: at most README_MAX_LINES lines.

Prints each problem and "docs: P passed, F failed"; exits 1 on any problem.
Usage: tools/check_docs.py [-v]
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README_MAX_LINES = 250
CONFIG_DOC = "docs/configuration.md"

# {"OB_NAME", OB_CFG_TYPE, "default" or MACRO, ...} in a ob_cfg_spec_t table.
SPEC_RE = re.compile(
    r'\{\s*"(OB_[A-Z0-9_]+)"\s*,\s*OB_CFG_([A-Z]+)\s*,\s*("(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*)'
)
LINK_RE = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE_RE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN_RE = re.compile(r"`[^`]*`")


def markdown_files():
    return ["README.md"] + sorted(
        os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))
    )


def prose_lines(text):
    """(line number, line) outside fenced code blocks, code spans removed."""
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if FENCE_RE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, CODE_SPAN_RE.sub("", line)


def anchors(path):
    """GitHub's heading anchors of a Markdown file."""
    seen = {}
    out = set()
    with open(path, encoding="utf-8") as f:
        text = f.read()
    fenced = False
    for line in text.splitlines():
        if FENCE_RE.match(line):
            fenced = not fenced
            continue
        m = None if fenced else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = m.group(1).strip().lower()
        slug = re.sub(r"[^\w\- ]", "", slug).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def check_links(problems, verbose):
    checked = 0
    for doc in markdown_files():
        with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
            text = f.read()
        for n, line in prose_lines(text):
            for target in LINK_RE.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, mailto:, ...
                    continue
                checked += 1
                path, _, anchor = target.partition("#")
                here = os.path.dirname(os.path.join(ROOT, doc))
                full = os.path.normpath(os.path.join(here, path)) if path else os.path.join(ROOT, doc)
                if not os.path.exists(full):
                    problems.append(f"{doc}:{n}: link to {target}: no such file")
                    continue
                if anchor and full.endswith(".md") and anchor not in anchors(full):
                    problems.append(
                        f"{doc}:{n}: link to {target}: no heading #{anchor} in {os.path.relpath(full, ROOT)}"
                    )
                elif verbose:
                    print(f"  {doc}:{n}: {target} ok")
    return checked


def spec_settings():
    """{name: (type, default or None when a macro, file)} from the tables."""
    settings = {}
    files = glob.glob(os.path.join(ROOT, "services", "*", "*.c")) + glob.glob(
        os.path.join(ROOT, "common", "*", "*.c")
    )
    for path in sorted(files):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for name, kind, default in SPEC_RE.findall(text):
            value = default[1:-1] if default.startswith('"') else None
            settings[name] = (kind, value, os.path.relpath(path, ROOT))
    return settings


def config_rows():
    """{name: default cell} of the variable tables of docs/configuration.md."""
    rows = {}
    with open(os.path.join(ROOT, CONFIG_DOC), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
            if len(cells) < 2:
                continue
            names = re.findall(r"`(OB_[A-Z0-9_]+)`", cells[0])
            # "`A` / `B` | x / y": each name its own default.
            defaults = cells[1].split(" / ") if len(names) > 1 and " / " in cells[1] else None
            if len(names) > 1 and not defaults and ", " in cells[1]:
                defaults = cells[1].split(", ")
            for i, name in enumerate(names):
                d = defaults[i] if defaults and i < len(defaults) else cells[1]
                rows[name] = (d.strip(), n)
    return rows


def number_in(cell):
    m = re.search(r"-?\d[\d,]*(?:\.\d+)?", cell)
    return float(m.group(0).replace(",", "")) if m else None


def check_config(problems, verbose):
    settings = spec_settings()
    rows = config_rows()
    checked = 0
    for name, (kind, default, src) in sorted(settings.items()):
        checked += 1
        if name not in rows:
            problems.append(f"{CONFIG_DOC}: {name} ({src}) is not documented")
            continue
        cell, n = rows[name]
        if default is None or default == "":
            ok = True  # a macro, or empty: the docs say what it means
        elif kind in ("INT", "DOUBLE"):
            ok = number_in(cell) == float(default)
        else:
            ok = f"`{default}`" in cell or cell == default
        if not ok:
            problems.append(f"{CONFIG_DOC}:{n}: {name} default is {default!r} in {src}, the docs say {cell!r}")
        elif verbose:
            print(f"  {name}: {default!r} ok")
    # Documented variables that nothing reads any more.
    tracked = subprocess.run(
        ["git", "-C", ROOT, "ls-files"], capture_output=True, text=True, check=False
    ).stdout.split()
    sources = [
        p for p in tracked
        if not p.endswith(".md") and not p.startswith("tests/fuzz/corpus/") and os.path.isfile(os.path.join(ROOT, p))
    ]
    unknown = set(rows) - set(settings)
    for path in sources:
        if not unknown:
            break
        try:
            with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        unknown -= {name for name in unknown if name in text}
    for name in sorted(unknown):
        checked += 1
        problems.append(f"{CONFIG_DOC}:{rows[name][1]}: {name} is documented but no table, script or test reads it")
    checked += len(set(rows) - set(settings)) - len(unknown)
    return checked


def check_readme(problems):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        lines = sum(1 for _ in f)
    if lines > README_MAX_LINES:
        problems.append(f"README.md: {lines} lines, more than {README_MAX_LINES}: move the detail to docs/")
    return 1


def main():
    verbose = "-v" in sys.argv[1:]
    problems = []
    checked = check_links(problems, verbose)
    checked += check_config(problems, verbose)
    checked += check_readme(problems)
    for p in problems:
        print(p)
    print(f"docs: {checked - len(problems)} passed, {len(problems)} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

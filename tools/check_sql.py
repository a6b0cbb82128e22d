#!/usr/bin/env python3
"""Each SQL function has one source: common/sql.

The migrations (common/migrations) change the schema once each and are never
edited; the functions are defined in common/sql/*.sql, each exactly once, with
CREATE OR REPLACE, and run again whenever their file changes (ob_pg_migrate).
Migrations before FIRST_WITHOUT_FUNCTIONS defined functions themselves (their
text is history, kept as applied); every function they defined must have its
source in common/sql, and later migrations define none. Run by the build
before it embeds the SQL; exits 1 naming each violation.
"""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRST_WITHOUT_FUNCTIONS = 29  # 029 was the first written after common/sql
DEFINE = re.compile(r"^\s*CREATE\s+(OR\s+REPLACE\s+)?FUNCTION\s+([a-z_][a-z0-9_]*)\s*\(",
                    re.IGNORECASE | re.MULTILINE)


def main():
    problems = []
    sources = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "common/sql/*.sql"))):
        text = open(path, encoding="utf-8").read()
        for m in DEFINE.finditer(text):
            name = m.group(2).lower()
            where = os.path.relpath(path, ROOT)
            if not m.group(1):
                problems.append(f"{where}: {name} must be CREATE OR REPLACE (the file runs again"
                                " whenever it changes)")
            if name in sources:
                problems.append(f"{name} is defined twice: in {sources[name]} and {where}")
            sources.setdefault(name, where)
    for path in sorted(glob.glob(os.path.join(ROOT, "common/migrations/*.sql"))):
        base = os.path.basename(path)
        version = int(base.split("_", 1)[0])
        for m in DEFINE.finditer(open(path, encoding="utf-8").read()):
            name = m.group(2).lower()
            if version >= FIRST_WITHOUT_FUNCTIONS:
                problems.append(f"common/migrations/{base} defines {name}: functions are defined"
                                " in common/sql (migrations change the schema)")
            elif name not in sources:
                problems.append(f"{name} (common/migrations/{base}) has no source in common/sql:"
                                " its definition there is the one the database runs")
    for p in problems:
        print(f"check_sql: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

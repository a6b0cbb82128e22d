#!/usr/bin/env python3
"""The vocabulary is typed once: common/domain/ob_vocab.h.

A call's states, final statuses, attempt results, reasons and wait reasons
are X-macro lists in common/domain/ob_vocab.h, from which the C code takes every
name. SQL and the JSON documents cannot include a header, so this checks
them against it:

- the calls table's CHECK constraints (common/migrations) name exactly the
  states and the statuses;
- every reason the SQL functions (common/sql) write is a reason, and every
  reason they compare with is one (or reserved, below);
- every result the SQL functions compare or write is a result;
- wait_reason() and the statements that set calls.waiting_for produce
  exactly the wait reasons;
- the JSON Schemas (proto/schemas) and the OpenAPI document
  (services/ingest/openapi.json) enumerate exactly the states, statuses,
  results, wait reasons and retried results;
- the web console's filter lists (services/ingest/console/app.js) name
  exactly the results and the statuses.

Run by make test (tools/test.sh); exits 1 naming each violation.
"""
import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = "common/domain/ob_vocab.h"

# Reasons SQL compares with that nothing writes yet: plum_status() maps
# do-not-call refusals to Plum's "rejected" (DESIGN section 9).
RESERVED_REASONS = {"dnc", "suppressed"}

# What the API adds to wait_reason(): an accepted call not recorded yet
# (ingest_calls.c, unrecorded_view).
API_ONLY_WAITS = {"recording"}


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def vocab_lists():
    """{list macro: [(constant, name), ...]} and the header's other #defines."""
    text = read(HEADER)
    bodies = {}
    for m in re.finditer(r"^#define\s+(OB_\w+_LIST)\(X\)((?:[^\n]*\\\n)*[^\n]*)$", text,
                         re.MULTILINE):
        bodies[m.group(1)] = m.group(2)

    def expand(name):
        out = []
        for item in re.finditer(r"(OB_\w+_LIST)\(X\)|X\((\w+),\s*\"([^\"]*)\"\)", bodies[name]):
            out += expand(item.group(1)) if item.group(1) else [(item.group(2), item.group(3))]
        return out

    lists = {name: expand(name) for name in bodies}
    defines = dict(re.findall(r"^#define\s+(OB_\w+)\s+(OB_\w+)\s*$", text, re.MULTILINE))
    return lists, defines


def names(entries):
    return [n for _, n in entries]


def quoted(text):
    return re.findall(r"'([a-z_]+)'", text)


class Checker:
    def __init__(self):
        self.problems = []

    def same(self, where, found, expected):
        found, expected = set(found), set(expected)
        if found != expected:
            extra = ", ".join(sorted(found - expected)) or "-"
            missing = ", ".join(sorted(expected - found)) or "-"
            self.problems.append(f"{where}: names not in {HEADER}: {extra}; names of it missing"
                                 f" here: {missing}")

    def within(self, where, found, allowed):
        for name in sorted(set(found) - set(allowed)):
            self.problems.append(f"{where}: '{name}' is not in {HEADER}")


def check_constraints(c, states, statuses):
    text = read("common/migrations/001_core.sql")
    table = re.search(r"CREATE TABLE calls \((.*?)\n\);", text, re.DOTALL)
    if not table:
        c.problems.append("common/migrations/001_core.sql: no CREATE TABLE calls")
        return
    for column, expected in (("state", states), ("status", statuses)):
        m = re.search(r"CHECK \(%s IN \(([^)]*)\)\)" % column, table.group(1))
        if not m:
            c.problems.append(f"calls.{column}: no CHECK constraint found")
            continue
        c.same(f"calls.{column} CHECK (001_core.sql)", quoted(m.group(1)), expected)
    for path in sorted(glob.glob(os.path.join(ROOT, "common/migrations/*.sql"))):
        for m in re.finditer(r"ALTER TABLE calls\b[^;]*CHECK \((state|status)\b[^;]*;",
                             open(path).read()):
            c.problems.append(f"{os.path.relpath(path, ROOT)}: a later CHECK on calls.{m.group(1)};"
                              " teach tools/check_vocab.py to read it")


def last_argument(text, start):
    """The quoted literal that ends the call whose arguments start at
    text[start] (after its opening parenthesis), or None (a parameter)."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            m = re.search(r",\s*'([a-z_]+)'\s*$", text[start:i])
            return m.group(1) if m else None
    return None


def check_sql_functions(c, results, reasons, waits):
    text = "\n".join(read(os.path.relpath(p, ROOT))
                     for p in sorted(glob.glob(os.path.join(ROOT, "common/sql/*.sql"))))
    # Reasons written: end_pending_calls(..., 'reason') and conclude_attempts()'s
    # failed_reason; reasons compared with: p_reason = / IN.
    written = [last_argument(text, m.end()) for m in re.finditer(r"end_pending_calls\(", text)]
    written = [w for w in written if w]
    for m in re.finditer(r"CASE((?:(?!CASE).)*?)END AS failed_reason", text, re.DOTALL):
        written += re.findall(r"(?:THEN|ELSE)\s+'([a-z_]+)'", m.group(1))
    if not written:
        c.problems.append("common/sql: found no reason written; the patterns need updating")
    c.within("reason written by common/sql", written, reasons)
    compared = []
    for m in re.finditer(r"p_reason\s*(?:=\s*'([a-z_]+)'|IN\s*\(([^)]*)\))", text):
        compared += [m.group(1)] if m.group(1) else quoted(m.group(2))
    c.within("reason compared in common/sql", compared, set(reasons) | RESERVED_REASONS)
    # Results compared with or assigned.
    used = re.findall(r"\b(?:\w+\.)?(?:e_)?result\s*(?:=|<>)\s*'([a-z_]+)'", text)
    used += re.findall(r"THEN c\.result ELSE '([a-z_]+)'", text)
    c.within("result in common/sql", used, results)
    # wait_reason()'s answers and the waiting_for the scheduler stores.
    m = re.search(r"FUNCTION wait_reason\(.*?\$\$(.*?)\$\$", text, re.DOTALL)
    produced = re.findall(r"(?:THEN|ELSE)\s+'([a-z_]+)'", m.group(1)) if m else []
    for path in glob.glob(os.path.join(ROOT, "services/*/*.c")) + glob.glob(
            os.path.join(ROOT, "common/*/*.c")) + glob.glob(os.path.join(ROOT, "common/sql/*.sql")):
        produced += re.findall(r"waiting_for\s*=\s*'([a-z_]+)'", open(path).read())
    c.same("wait_reason() and waiting_for = '...'", produced, waits)


def enum_of(schema, *path):
    for key in path:
        schema = schema.get(key, {}) if isinstance(schema, dict) else {}
    return [v for v in schema.get("enum", []) if v is not None] if isinstance(schema, dict) else []


def check_json(c, states, statuses, results, waits, retried):
    event = json.loads(read("proto/schemas/call-event.schema.json"))
    data = ("properties", "data", "properties")
    for field, expected in (("state", states), ("status", statuses), ("result", results)):
        c.same(f"call-event.schema.json data.{field}", enum_of(event, *data, field, ), expected)
    request = json.loads(read("proto/schemas/call-request.schema.json"))
    c.same("call-request.schema.json retry_rules",
           enum_of(request, "properties", "retry_rules", "propertyNames"), retried)

    api = json.loads(read("services/ingest/openapi.json"))["components"]["schemas"]
    expect = {
        ("Call", "state"): states, ("CallSummary", "state"): states,
        ("CallEventData", "state"): states, ("PlumCallDetails", "state"): states,
        ("Call", "status"): statuses, ("CallSummary", "status"): statuses,
        ("CallEventData", "status"): statuses,
        ("Call", "result"): results, ("CallSummary", "result"): results,
        ("CallEventData", "result"): results, ("Attempt", "result"): results,
        ("Call", "waiting_for"): list(waits) + sorted(API_ONLY_WAITS),
        ("CallRequest", "retry_rules"): retried, ("DeploymentCreate", "retry_rules"): retried,
        ("DeploymentUpdate", "retry_rules"): retried,
    }
    for (schema, field), expected in expect.items():
        prop = ("properties", field, "propertyNames") if field == "retry_rules" else (
            "properties", field)
        found = enum_of(api.get(schema, {}), *prop)
        if not found:
            c.problems.append(f"openapi.json {schema}.{field}: no enum found")
        c.same(f"openapi.json {schema}.{field}", found, expected)


def check_console(c, statuses, results):
    text = read("services/ingest/console/app.js")
    for const, expected in (("RESULTS", results), ("STATUSES", statuses)):
        m = re.search(r"const %s = \[([^\]]*)\]" % const, text)
        if not m:
            c.problems.append(f"services/ingest/console/app.js: no {const} list")
            continue
        c.same(f"services/ingest/console/app.js {const}", quoted(m.group(1)), expected)


def main():
    lists, defines = vocab_lists()
    c = Checker()
    for required in ("OB_STATE_LIST", "OB_STATUS_LIST", "OB_RESULT_LIST", "OB_REASON_LIST",
                     "OB_WAIT_LIST"):
        if not lists.get(required):
            c.problems.append(f"{HEADER}: no {required}")
    if c.problems:
        print("\n".join(c.problems), file=sys.stderr)
        return 1
    states, statuses = names(lists["OB_STATE_LIST"]), names(lists["OB_STATUS_LIST"])
    results, reasons = names(lists["OB_RESULT_LIST"]), names(lists["OB_REASON_LIST"])
    waits = names(lists["OB_WAIT_LIST"])
    consts = [k for k, _ in lists["OB_RESULT_LIST"]]
    first = consts.index(defines["OB_RESULT_RETRIED_FIRST"])
    last = consts.index(defines["OB_RESULT_RETRIED_LAST"])
    retried = results[first:last + 1]
    for kind, values in (("state", states), ("status", statuses), ("result", results),
                         ("reason", reasons), ("wait", waits)):
        if len(set(values)) != len(values):
            c.problems.append(f"{HEADER}: a {kind} name is listed twice")
    c.within("unanswered results as reasons", retried, reasons)

    check_constraints(c, states, statuses)
    check_sql_functions(c, results, reasons, waits)
    check_json(c, states, statuses, results, waits, retried)
    check_console(c, statuses, results)
    if c.problems:
        print("\n".join(c.problems), file=sys.stderr)
        return 1
    print(f"vocabulary: {len(states)} states, {len(statuses)} statuses, {len(results)} results,"
          f" {len(reasons)} reasons, {len(waits)} wait reasons agree with the SQL and the schemas")
    return 0


if __name__ == "__main__":
    sys.exit(main())

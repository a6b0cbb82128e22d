#!/usr/bin/python3
"""Keeps services/ingest/openapi.json true.

1. The document itself: it parses, `openapi` is 3.1.x, every $ref resolves,
   every schema is a valid JSON Schema 2020-12, and each operation declares
   exactly the path parameters its path template names.
2. The routes: every route of the routes[] table in
   services/ingest/ingest_api.c (and the built-in /healthz, /readyz, /metrics
   of common/infra/ob_http.c) is documented with its method, and every documented
   operation is a real route.
3. Real answers: every response the integration tests recorded
   (build*/**/test-logs/http.jsonl, one JSON object per line with method,
   path, status, content_type and body) must have its status documented for
   its operation, and a JSON body must validate against the documented schema
   of its media type. An unknown path must be the 404 NoRoute problem and a
   known path with another method the 405 MethodNotAllowed problem.

Prints one line per failure and a final 'openapi: N passed, M failed'; exits
1 when anything failed or no recorded response was found.
Usage: tools/check_openapi.py [--coverage] (also lists undocumented-by-test
operations: documented operations and statuses no recorded response used).
"""
import datetime
import glob
import json
import os
import re
import sys

from jsonschema import Draft202012Validator, FormatChecker, RefResolver
from jsonschema.exceptions import RefResolutionError, SchemaError, best_match

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC_PATH = os.path.join(root, "services/ingest/openapi.json")
ROUTES_C = os.path.join(root, "services/ingest/ingest_api.c")
HTTP_C = os.path.join(root, "common/infra/ob_http.c")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_TYPES = ("application/json", "application/problem+json")

passed = failed = 0


def ok():
    global passed
    passed += 1


def fail(msg):
    global failed
    failed += 1
    print(msg)


# ---- formats ------------------------------------------------------------------
# jsonschema 4.10 checks date-time only with the optional rfc3339-validator
# package, which Debian's python3-jsonschema does not pull in: check it here.
formats = FormatChecker()
RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@formats.checks("date-time", raises=ValueError)
def is_date_time(value):
    if not isinstance(value, str):
        return True
    m = RFC3339.match(value)
    if not m:
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    datetime.datetime(y, mo, d, h, mi, min(s, 59))  # raises on a bad date
    if s > 60:
        raise ValueError(f"{value!r} has a bad second")
    return True


# ---- 1. the document ------------------------------------------------------------
def load_document():
    try:
        with open(DOC_PATH, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"document: {DOC_PATH}: {e}")
        return None
    if not isinstance(doc, dict) or not re.fullmatch(r"3\.1\.\d+", str(doc.get("openapi"))):
        fail(f"document: openapi must be 3.1.x (is {doc.get('openapi')!r})")
        return None
    if not isinstance(doc.get("paths"), dict):
        fail("document: paths is missing")
        return None
    ok()
    return doc


def pointer(doc, ref):
    """The value a local $ref points at; KeyError when it does not resolve."""
    if not ref.startswith("#"):
        raise KeyError(f"{ref} is not a local reference")
    node = doc
    for part in ref[1:].split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(f"{ref} does not resolve")
    return node


def check_refs(doc):
    def walk(node, where):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    pointer(doc, ref)
                    ok()
                except (KeyError, ValueError, IndexError) as e:
                    fail(f"document: {where}: $ref {ref}: {str(e).strip(chr(39))}")
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")

    walk(doc, "#")


def deref(doc, node):
    """Follows $ref chains of non-schema objects (responses, parameters, ...)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 20:
        try:
            node = pointer(doc, node["$ref"])
        except (KeyError, ValueError, IndexError):
            return {}
        seen += 1
    return node


def schemas_of(doc):
    """Every Schema Object of the document, as (where, schema)."""
    out = []
    comps = doc.get("components", {})
    for name, s in comps.get("schemas", {}).items():
        out.append((f"#/components/schemas/{name}", s))

    def media(content, where):
        for mt, m in (content or {}).items():
            if isinstance(m, dict) and "schema" in m:
                out.append((f"{where}/content/{mt}", m["schema"]))

    def param(p, where):
        if isinstance(p, dict) and "$ref" not in p:
            if "schema" in p:
                out.append((where, p["schema"]))
            media(p.get("content"), where)

    def response(r, where):
        if isinstance(r, dict) and "$ref" not in r:
            media(r.get("content"), where)
            for h, hv in (r.get("headers") or {}).items():
                param(hv, f"{where}/headers/{h}")

    for name, p in comps.get("parameters", {}).items():
        param(p, f"#/components/parameters/{name}")
    for name, h in comps.get("headers", {}).items():
        param(h, f"#/components/headers/{name}")
    for name, r in comps.get("responses", {}).items():
        response(r, f"#/components/responses/{name}")
    for name, b in comps.get("requestBodies", {}).items():
        if isinstance(b, dict) and "$ref" not in b:
            media(b.get("content"), f"#/components/requestBodies/{name}")
    for path, item in doc["paths"].items():
        for i, p in enumerate(item.get("parameters", [])):
            param(p, f"{path} parameters/{i}")
        for method in METHODS:
            o = item.get(method)
            if not isinstance(o, dict):
                continue
            where = f"{method.upper()} {path}"
            for i, p in enumerate(o.get("parameters", [])):
                param(p, f"{where} parameters/{i}")
            b = o.get("requestBody")
            if isinstance(b, dict) and "$ref" not in b:
                media(b.get("content"), f"{where} requestBody")
            for status, r in (o.get("responses") or {}).items():
                response(r, f"{where} {status}")
    return out


def check_schemas(doc):
    for where, schema in schemas_of(doc):
        try:
            Draft202012Validator.check_schema(schema)
            ok()
        except SchemaError as e:
            fail(f"document: {where}: not a valid JSON Schema 2020-12: {e.message}")


def check_path_parameters(doc):
    for path, item in doc["paths"].items():
        named = re.findall(r"\{([^}]+)\}", path)
        for method in METHODS:
            o = item.get(method)
            if not isinstance(o, dict):
                continue
            declared = {}
            for p in list(item.get("parameters", [])) + list(o.get("parameters", [])):
                p = deref(doc, p)
                if p.get("in") == "path":
                    declared[p.get("name")] = p
            problems = []
            for n in named:
                if n not in declared:
                    problems.append(f"{{{n}}} has no path parameter")
                elif declared[n].get("required") is not True:
                    problems.append(f"path parameter {n} must be required")
            problems += [f"path parameter {n} is not in the path"
                         for n in declared if n not in named]
            if problems:
                fail(f"document: {method.upper()} {path}: " + "; ".join(problems))
            else:
                ok()


# ---- 2. the routes ------------------------------------------------------------------
def routes_table():
    """The text of the routes[] table of ingest_api.c, or None."""
    with open(ROUTES_C, encoding="utf-8") as f:
        m = re.search(r"routes\[\]\s*=\s*\{(.*?)\n\};", f.read(), re.S)
    return m.group(1) if m else None


def read_routes(table):
    """(METHOD, pattern with {}) from the routes[] table and the built-ins."""
    routes = []
    if table is None:
        fail(f"routes: no routes[] table in {ROUTES_C}")
        return routes
    routes += re.findall(r'\{\s*"([A-Z]+)",\s*"([^"]+)"', table)
    if not routes:
        fail(f"routes: the routes[] table of {ROUTES_C} has no routes")
    with open(HTTP_C, encoding="utf-8") as f:
        routes += [("GET", p) for p in re.findall(r'strcmp\(req->path, "(/[^"]*)"\)', f.read())]
    return routes


def read_keyed(table):
    """(METHOD, pattern) of the routes the router runs under an Idempotency-Key
    (KEYED in the routes[] table)."""
    return set(re.findall(r'\{\s*"([A-Z]+)",\s*"([^"]+)"[^{}]*\bKEYED\}', table or ""))


def check_keyed(doc, keyed):
    """A route that honours Idempotency-Key says so: the parameter, and its 409."""
    for path, item in doc["paths"].items():
        for method in METHODS:
            op = item.get(method)
            route = (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
            if not isinstance(op, dict) or route not in keyed:
                continue
            refs = [x.get("$ref", "") for x in op.get("parameters", [])]
            if "#/components/parameters/IdempotencyKey" in refs and "409" in op["responses"]:
                ok()
            else:
                fail(f"idempotency: {method.upper()} {path} is KEYED in ingest_api.c but does not"
                     " document the Idempotency-Key parameter and a 409")


def check_routes(doc, routes):
    documented = {}
    for path, item in doc["paths"].items():
        for method in METHODS:
            if isinstance(item.get(method), dict):
                documented[(method.upper(), re.sub(r"\{[^}]+\}", "{}", path))] = path
    table = set(routes)
    for method, pattern in routes:
        if (method, pattern) in documented:
            ok()
        else:
            fail(f"routes: {method} {pattern} (ingest_api.c) is not in the document")
    for (method, pattern), path in documented.items():
        if (method, pattern) in table:
            ok()
        else:
            fail(f"routes: {method} {path} is documented but is no route of the service")


# ---- 3. recorded answers ------------------------------------------------------------
def template_regex(path):
    """The server's matching (ingest_api.c match()): a {} takes a segment, or
    the part of it before a :verb suffix, and never holds a ':'."""
    out = ""
    for part in re.split(r"(\{[^}]+\})", path):
        out += "([^/:]+)" if part.startswith("{") and part.endswith("}") else re.escape(part)
    return re.compile(f"^{out}/?$")


def find_response(responses, status):
    s = str(status)
    if s in responses:
        return responses[s]
    if f"{s[0]}XX" in responses:
        return responses[f"{s[0]}XX"]
    return responses.get("default")


def media_type(content, ctype):
    """The documented media type object for the answer's Content-Type."""
    base = (ctype or "").split(";")[0].strip().lower()
    for name in (base, base.split("/")[0] + "/*", "*/*"):
        if name in content:
            return name, content[name]
    return base, None


class Recorded:
    def __init__(self, doc):
        self.doc = doc
        self.resolver = RefResolver.from_schema(doc)
        self.templates = [(template_regex(p), p) for p in doc["paths"]]
        self.validators = {}
        self.used = set()
        self.count = 0

    def validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        if key not in self.validators:
            self.validators[key] = Draft202012Validator(schema, resolver=self.resolver,
                                                        format_checker=formats)
        return self.validators[key]

    def validate_body(self, where, response, rec):
        body = rec.get("body") or ""
        content = response.get("content") or {}
        if not body.strip():
            if content and rec["status"] != 204 and rec.get("method") != "HEAD":
                return f"{where}: empty body, but the document promises content"
            return None
        name, m = media_type(content, rec.get("content_type"))
        if m is None:
            return (f"{where}: Content-Type {rec.get('content_type')!r} is not documented "
                    f"(documented: {', '.join(content) or 'no content'})")
        if name not in JSON_TYPES and not name.endswith("+json"):
            return None  # text/csv, text/plain: not validated
        try:
            value = json.loads(body)
        except ValueError as e:
            return f"{where}: the body is not JSON: {e}"
        if "schema" not in m:
            return None
        try:
            errors = list(self.validator(m["schema"]).iter_errors(value))
        except (RefResolutionError, SchemaError, TypeError, ValueError) as e:
            return f"{where}: the documented schema cannot be used: {e}"
        if not errors:
            return None
        first = best_match(errors)
        errors = [first] + sorted((e for e in errors if e is not first),
                                  key=lambda e: list(map(str, e.absolute_path)))
        text = "; ".join(f"/{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
                         for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return f"{where}: {text}{more}"

    def check(self, rec, origin):
        try:
            method = str(rec["method"]).upper()
            path = str(rec["path"]).split("?")[0]
            status = int(rec["status"])
        except (KeyError, TypeError, ValueError):
            fail(f"{origin}: not a recorded answer: {json.dumps(rec)[:200]}")
            return
        self.count += 1
        where = f"{method} {path} {status}"
        match = next((p for rx, p in self.templates if rx.match(path)), None)
        comps = self.doc.get("components", {}).get("responses", {})
        if match is None:
            response, why = comps.get("NoRoute"), "the path is not documented"
            if status != 404 or response is None:
                fail(f"{where}: {why} (and the answer is not the 404 NoRoute problem)")
                return
        elif not isinstance(self.doc["paths"][match].get(method.lower()), dict):
            response, why = comps.get("MethodNotAllowed"), f"{method} {match} is not documented"
            if status != 405 or response is None:
                fail(f"{where}: {why} (and the answer is not the 405 MethodNotAllowed problem)")
                return
        else:
            o = self.doc["paths"][match][method.lower()]
            response = find_response(o.get("responses") or {}, status)
            if response is None:
                fail(f"{where}: status {status} is not documented for {method} {match} "
                     f"(documented: {', '.join(o.get('responses') or {})}): "
                     f"{str(rec.get('body'))[:300]}")
                return
            self.used.add((method, match, str(status)))
        error = self.validate_body(where, deref(self.doc, response), rec)
        if error:
            fail(error)
        else:
            ok()

    def run(self):
        files = sorted(glob.glob(os.path.join(root, "build*/**/test-logs/http.jsonl"),
                                 recursive=True))
        for path in files:
            with open(path, encoding="utf-8", errors="replace") as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    origin = f"{os.path.relpath(path, root)}:{n}"
                    try:
                        rec = json.loads(line)
                    except ValueError as e:
                        fail(f"{origin}: not JSON: {e}")
                        continue
                    self.check(rec, origin)
        if not self.count:
            fail("recorded: no answers in build*/**/test-logs/http.jsonl; run the "
                 "integration tests first")

    def coverage(self):
        for path, item in self.doc["paths"].items():
            for method in METHODS:
                o = item.get(method)
                if not isinstance(o, dict):
                    continue
                missing = [s for s in (o.get("responses") or {})
                           if (method.upper(), path, s) not in self.used]
                if missing:
                    print(f"coverage: {method.upper()} {path}: no recorded {', '.join(missing)}")


def main():
    doc = load_document()
    if doc is not None:
        check_refs(doc)
        check_schemas(doc)
        check_path_parameters(doc)
        table = routes_table()
        check_routes(doc, read_routes(table))
        check_keyed(doc, read_keyed(table))
        rec = Recorded(doc)
        rec.run()
        if "--coverage" in sys.argv[1:]:
            rec.coverage()
    print(f"openapi: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Validates the message examples in proto/examples and every message the
integration tests captured from the topics (build*/test-logs/*-messages.jsonl, one
"<schema-name> <json>" per line) against the JSON Schemas in proto/schemas.
An example file is checked against the schema of its name, or of its name up
to its last "-" (proto/examples/app-gather.json against app.schema.json), and
each schema's own "examples" against it; the "app" of a call request or a
dial job against app.schema.json.
Prints one line per file and a final 'schemas: N passed, N failed'."""
import glob
import json
import os
import sys

from jsonschema import Draft202012Validator, FormatChecker

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
schemas = {}
for path in glob.glob(os.path.join(root, "proto/schemas/*.schema.json")):
    with open(path) as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    name = os.path.basename(path).removesuffix(".schema.json")
    schemas[name] = Draft202012Validator(schema, format_checker=FormatChecker())

passed = failed = 0


def check(name, doc, where):
    global passed, failed
    errors = sorted(schemas[name].iter_errors(doc), key=str)
    if errors:
        failed += 1
        for e in errors:
            print(f"{where}: {name}: {'/'.join(map(str, e.path))}: {e.message}")
    else:
        passed += 1
    # A message's call-control document is checked against its own schema.
    if name in ("call-request", "dial-job") and isinstance(doc, dict) and "app" in doc:
        check("app", doc["app"], f"{where}: app")


def schema_of(name):
    while name not in schemas and "-" in name:
        name = name.rsplit("-", 1)[0]
    return name


for path in sorted(glob.glob(os.path.join(root, "proto/schemas/*.schema.json"))):
    name = os.path.basename(path).removesuffix(".schema.json")
    for n, example in enumerate(schemas[name].schema.get("examples", [])):
        check(name, example, f"{path}: examples[{n}]")

for path in sorted(glob.glob(os.path.join(root, "proto/examples/*.json"))):
    with open(path) as f:
        check(schema_of(os.path.basename(path).removesuffix(".json")), json.load(f), path)

for path in sorted(glob.glob(os.path.join(root, "build*/**/test-logs/*-messages.jsonl"), recursive=True)):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            name, _, text = line.partition(" ")
            check(name, json.loads(text), f"{path}:{n}")

print(f"schemas: {passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)

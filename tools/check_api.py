#!/usr/bin/python3
"""Property-based test of the HTTP API against its own OpenAPI document:
schemathesis (PyPI, in .cache/venv) generates valid and invalid requests for
every operation of the served /api/v1/openapi.json and checks that none is
answered 5xx and that every answer's status, content type and body are the
documented ones. Runs a scheduler and ingest from build/bin on the local
stack (deploy/local/stacklib.py) with an account of its own. Prints
"api: N passed, M failed" (operations); exits 1 on any failure.
Settings: OB_API_CHECK_EXAMPLES (per operation, default 15),
OB_API_CHECK_SEED (default 1)."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "deploy/local"))
import stacklib  # noqa: E402

ROOT = stacklib.ROOT
ST = os.path.join(ROOT, ".cache/venv/bin/schemathesis")
ADMIN_KEY = "admin-key-for-the-api-check-0123456789"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")


def tenant(base):
    """An account with an application, a deployment and a queued call, so
    that lists and the account's own resources are not all empty."""
    t = stacklib.create_tenant(base, ADMIN_KEY, "api-check@example.com", "api check",
                               [{"name": "api check", "capacity": 1}])
    key, dep = t["key"], t["deployments"][0]["deployment_id"]
    stacklib.api_post(base, f"/api/v1/deployments/{dep}/calls", key,
                      {"phone_number": "+12125550100"})
    return key


def main():
    if not os.path.exists(ST):
        print(f"api: 0 passed, 1 failed ({ST} missing: run deploy/local/deps.sh)")
        return 1
    report = os.path.join(ROOT, "build/test-logs/obapi-junit.xml")
    env = {"OB_INGEST_ADMIN_KEY": ADMIN_KEY}
    with stacklib.isolated(("scheduler", "ingest"), "obapi", env) as (urls, errors):
        if errors:
            for e in errors:
                print(f"FAIL {e}")
            print("api: 0 passed, 1 failed")
            return 1
        base = urls["ingest"]
        key = tenant(base)
        run = subprocess.run(
            [ST, "run", base + "/api/v1/openapi.json", "-H", f"Authorization: Bearer {key}",
             "--checks", CHECKS, "--exclude-path", "/api/v1/accounts",
             "--phases", "examples,coverage,fuzzing", "--workers", "1",
             "-n", os.environ.get("OB_API_CHECK_EXAMPLES", "15"),
             "--seed", os.environ.get("OB_API_CHECK_SEED", "1"),
             "--report", "junit", "--report-junit-path", report],
            capture_output=True, text=True, cwd=os.path.join(ROOT, "build"))
    out = run.stdout + run.stderr
    cases = ET.parse(report).getroot().iter("testcase") if os.path.exists(report) else []
    passed = failed = 0
    for case in cases:
        bad = case.find("failure") is not None or case.find("error") is not None
        failed += bad
        passed += not bad
        if bad:
            print(f"FAIL {case.get('name')}")
    if failed or run.returncode != 0 or passed == 0:
        print(out[-6000:])
        failed = max(failed, 1)
    print(f"api: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

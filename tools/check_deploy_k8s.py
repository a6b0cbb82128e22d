#!/usr/bin/env python3
"""Static checks of the Kubernetes manifests in deploy/k8s (no cluster needed).

Renders the example overlay and the Strimzi topics (a small pure-Python
kustomize for what they use; when kubectl or kustomize is on PATH its output
must be the same), validates every resource against the Kubernetes schemas
with kubernetes-validate (installed by deploy/local/deps.sh into .cache/venv),
and checks what the services need: every OB_* name is one the service reads
(the config spec tables in common/infra/ob_config.c and services/*/*.c), the
required settings are present, probes, drain deadlines, security context,
resources, PDBs, HPAs, and replicas against partitions. Prints
"k8s: N passed, M failed" (-v: every check); exits 1 on any failure.
"""
import copy
import glob
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PY = os.path.join(ROOT, ".cache", "venv", "bin", "python3")

try:
    import yaml
    import kubernetes_validate.utils as kv
except ImportError:
    # The venv's python3 is a link to the same interpreter: tell them apart by prefix.
    if os.path.exists(VENV_PY) and os.path.realpath(sys.prefix) != os.path.dirname(os.path.dirname(VENV_PY)) \
            and not os.environ.get("OB_CHECK_K8S_REEXEC"):
        os.environ["OB_CHECK_K8S_REEXEC"] = "1"
        os.execv(VENV_PY, [VENV_PY] + sys.argv)
    print("k8s: kubernetes-validate is missing; run deploy/local/deps.sh", file=sys.stderr)
    print("k8s: 0 passed, 1 failed")
    sys.exit(1)

K8S = os.path.join(ROOT, "deploy", "k8s")
OVERLAY = os.path.join(K8S, "overlays", "example")
STRIMZI = os.path.join(K8S, "strimzi")
SECRET_EXAMPLE = os.path.join(OVERLAY, "secret.example.yaml")
KUBE_VERSION = "1.30"  # the oldest Kubernetes the manifests are checked against
SERVICES = ("ingest", "scheduler", "dialer")
TOPICS = ("call-requests", "dial-jobs", "call-events")

VERBOSE = "-v" in sys.argv[1:]
passed = 0
failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        if VERBOSE:
            print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what}" + (f": {detail}" if detail else ""))
    return ok


# --- the settings the services read ------------------------------------------

# {"OB_NAME", OB_CFG_TYPE, "default" or NULL, min, max, "a|b" or NULL, ...
SPEC_RE = re.compile(r'\{"(OB_[A-Z0-9_]+)",\s*OB_CFG_([A-Z]+),\s*(NULL|"[^"]*"),\s*'
                     r'([-0-9.e]+),\s*([-0-9.e]+),\s*(NULL|"[^"]*")')
SPECS = {}  # name -> (type, min, max, choices), for value checks


def read_specs(path):
    """{name: default or None (required)} of one C spec table."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = {}
    for m in SPEC_RE.finditer(text):
        name, typ, dflt, lo, hi, choices = m.groups()
        out[name] = None if dflt == "NULL" else dflt[1:-1]
        SPECS[name] = (typ, float(lo), float(hi), None if choices == "NULL" else choices[1:-1].split("|"))
    return out


def value_error(name, value):
    """Why the service would refuse this value (exit 78), or None; as load_one in common/infra/ob_config.c."""
    typ, lo, hi, choices = SPECS[name]
    v = str(value)
    if typ == "ENUM" and v not in choices:
        return f"not one of {'|'.join(choices)}"
    if typ == "BOOL" and v.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return "not a boolean"
    if typ == "INT":
        if not re.fullmatch(r"[-+]?[0-9]+", v.strip(" ")) or not lo <= int(v) <= hi:
            return f"not a whole number from {lo:.0f} to {hi:.0f}"
    if typ == "DOUBLE":
        try:
            ok = lo <= float(v) <= hi
        except ValueError:
            ok = False
        if not ok:
            return f"not a number from {lo:g} to {hi:g}"
    return None


def service_settings():
    base = read_specs(os.path.join(ROOT, "common", "infra", "ob_config.c"))
    out = {}
    for svc in SERVICES:
        specs = dict(base)
        for src in sorted(glob.glob(os.path.join(ROOT, "services", svc, "*.c"))):
            specs.update(read_specs(src))
        out[svc] = specs
    return base, out


# --- rendering -----------------------------------------------------------------

def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def merge(base, patch):
    """Strategic merge as the overlays use it: maps merge, lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(patch)


KNOWN_KUSTOMIZE_KEYS = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}


def render(directory):
    """The resources of a kustomization directory (the subset the repo uses)."""
    kust = load_yaml_docs(os.path.join(directory, "kustomization.yaml"))[0]
    unknown = set(kust) - KNOWN_KUSTOMIZE_KEYS
    if unknown:
        raise ValueError(f"{directory}: kustomization fields this checker cannot render: {sorted(unknown)}")
    res = []
    for r in kust.get("resources", []):
        p = os.path.normpath(os.path.join(directory, r))
        res.extend(render(p) if os.path.isdir(p) else load_yaml_docs(p))
    for p in kust.get("patches", []):
        if set(p) != {"path"}:
            raise ValueError(f"{directory}: only patches with a path are rendered here: {p}")
        for doc in load_yaml_docs(os.path.join(directory, p["path"])):
            hits = [i for i, r in enumerate(res)
                    if r["kind"] == doc["kind"] and r["metadata"]["name"] == doc["metadata"]["name"]]
            if len(hits) != 1:
                raise ValueError(f"patch {p['path']}: {doc['kind']}/{doc['metadata']['name']} matches {len(hits)} resources")
            res[hits[0]] = merge(res[hits[0]], doc)
    for rep in kust.get("replicas", []):
        hits = [r for r in res if r["kind"] == "Deployment" and r["metadata"]["name"] == rep["name"]]
        if len(hits) != 1:
            raise ValueError(f"replicas: {rep['name']} matches {len(hits)} Deployments")
        hits[0]["spec"]["replicas"] = rep["count"]
    images = {i["name"]: i for i in kust.get("images", [])}
    for r in res:
        for c in pod_containers(r):
            name = c["image"].split(":")[0]
            if name in images:
                i = images[name]
                tag = i.get("newTag", c["image"].partition(":")[2])
                c["image"] = i.get("newName", name) + (":" + tag if tag else "")
    if "namespace" in kust:
        for r in res:
            if r["kind"] != "Namespace":
                r["metadata"]["namespace"] = kust["namespace"]
    return res


def pod_containers(r):
    if r.get("kind") != "Deployment":
        return []
    spec = r["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec.get("containers", [])


def kubectl_render(directory):
    """(tool, resources) from a real kustomize, or (None, None) without one."""
    for tool, cmd in (("kubectl", ["kubectl", "kustomize"]), ("kustomize", ["kustomize", "build"])):
        if shutil.which(tool):
            out = subprocess.run(cmd + [directory], capture_output=True, text=True, check=False)
            if out.returncode != 0:
                return tool, out.stderr.strip()
            return tool, [d for d in yaml.safe_load_all(out.stdout) if d is not None]
    return None, None


def key(r):
    return (r["kind"], r["metadata"].get("namespace", ""), r["metadata"]["name"])


# --- checks ---------------------------------------------------------------------

def check_render(name, directory, ours):
    tool, theirs = kubectl_render(directory)
    if tool is None:
        print(f"note: neither kubectl nor kustomize on PATH; {name} rendered by this script only")
        return
    if isinstance(theirs, str):
        check(False, f"{tool} renders {name}", theirs)
        return
    a = {key(r): r for r in ours}
    b = {key(r): r for r in theirs}
    check(set(a) == set(b), f"{name}: {tool} renders the same resources",
          f"only here {sorted(set(a) - set(b))}, only {tool} {sorted(set(b) - set(a))}")
    for k in sorted(set(a) & set(b)):
        check(a[k] == b[k], f"{name}: {'/'.join(k)} as {tool} renders it")


def check_schemas(resources, origin):
    for r in resources:
        what = f"{origin}: {r.get('kind')}/{r.get('metadata', {}).get('name')}"
        if r.get("apiVersion", "").startswith("kafka.strimzi.io/"):
            # The Strimzi CRD schema is not available offline: its KafkaTopic
            # spec fields (v1beta2) are partitions (>= 1), replicas (1-32767),
            # config (object) and topicName (string), and nothing else.
            spec = r.get("spec") or {}
            check(r.get("apiVersion") == "kafka.strimzi.io/v1beta2" and r.get("kind") == "KafkaTopic",
                  f"{what} is a kafka.strimzi.io/v1beta2 KafkaTopic")
            check(set(spec) <= {"partitions", "replicas", "config", "topicName"},
                  f"{what}: spec has only KafkaTopic fields", str(sorted(spec)))
            p, n = spec.get("partitions"), spec.get("replicas")
            check(isinstance(p, int) and p >= 1 and isinstance(n, int) and 1 <= n <= 32767,
                  f"{what}: partitions and replicas are set and in range", f"{p}, {n}")
            check(isinstance(spec.get("config", {}), dict)
                  and all(isinstance(v, (str, int, bool)) for v in spec.get("config", {}).values()),
                  f"{what}: config is a map of scalars")
            check("strimzi.io/cluster" in r["metadata"].get("labels", {}),
                  f"{what} names its Kafka cluster (label strimzi.io/cluster)")
            continue
        try:
            kv.validate(r, KUBE_VERSION, strict=True)
            check(True, what)
        except kv.ValidationError as e:
            check(False, f"{what} against the Kubernetes {KUBE_VERSION} schema",
                  f"{'.'.join(str(p) for p in e.path)}: {e.message}")
        except (kv.SchemaNotFoundError, kv.InvalidSchemaError) as e:
            check(False, what, e.message)


def effective_env(container, by_key, origin):
    """{name: (value, source)} as the kubelet builds it: envFrom in order, then env."""
    env = {}
    for src in container.get("envFrom", []):
        for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if ref not in src:
                continue
            name = src[ref]["name"]
            obj = by_key.get((kind, name))
            if not check(obj is not None, f"{origin}: {kind} {name} exists (envFrom)"):
                continue
            data = dict(obj.get("data") or {})
            data.update(obj.get("stringData") or {})
            for k, v in data.items():
                env[k] = (v, f"{kind} {name}")
    for e in container.get("env", []):
        ref = e.get("valueFrom") or {}
        if "secretKeyRef" in ref:
            env[e["name"]] = ("(secret)", f"Secret {ref['secretKeyRef']['name']} (env)")
        elif "configMapKeyRef" in ref:
            env[e["name"]] = ("(configmap)", f"ConfigMap {ref['configMapKeyRef']['name']} (env)")
        else:
            env[e["name"]] = (e.get("value"), "env")
    return env


def int_setting(env, known, name):
    """The integer a service would use for name; None if invalid (reported by the value checks)."""
    v = str(env.get(name, (known.get(name), ""))[0])
    return int(v) if re.fullmatch(r"[-+]?[0-9]+", v.strip(" ")) else None


def check_deployment(svc, d, by_key, settings, partitions_of):
    origin = f"Deployment {d['metadata']['name']}"
    pod = d["spec"]["template"]["spec"]
    containers = pod.get("containers", [])
    if not check(len(containers) == 1, f"{origin} has one container"):
        return
    c = containers[0]
    env = effective_env(c, by_key, origin)
    known = settings[svc]

    for name, (_, source) in sorted(env.items()):
        if name.startswith("OB_KAFKA_"):
            continue  # passed through to librdkafka, checked by it at start-up
        if name.startswith("OB_"):
            check(name in known, f"{origin}: {name} (from {source}) is a setting {svc} reads",
                  "not in common/infra/ob_config.c nor services/%s/*.c" % svc)
    required = {n for n, dflt in known.items() if dflt is None}
    # Required by the services' own rules, and by running in a cluster: the
    # defaults of these point at loopback.
    required |= {"OB_KAFKA_BOOTSTRAP_SERVERS", "OB_PG_DSN", "OB_HTTP_ADDR"}
    for name in sorted(required):
        check(name in env and env[name][0], f"{origin}: required {name} is set")
    check("OB_PG_DSN" not in env or env["OB_PG_DSN"][1].startswith("Secret"),
          f"{origin}: OB_PG_DSN comes from a Secret", f"from {env.get('OB_PG_DSN', (0, ''))[1]}")
    addr = env.get("OB_HTTP_ADDR", (known.get("OB_HTTP_ADDR"), ""))[0]
    check(addr not in ("127.0.0.1", "localhost", "::1"), f"{origin}: OB_HTTP_ADDR listens beyond loopback", addr)

    # Probes on OB_HTTP_PORT.
    port = int_setting(env, known, "OB_HTTP_PORT")
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    check(port in ports.values(), f"{origin}: containerPort {port} (OB_HTTP_PORT) is declared")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        p = get.get("port")
        p = ports.get(p, p) if isinstance(p, str) else p
        check(get.get("path") == path and p == port, f"{origin}: {probe} is GET {path} on port {port}",
              f"GET {get.get('path')} on {get.get('port')}")

    # Drain: the grace period outlasts the drain deadline plus any preStop pause.
    drain_s = (int_setting(env, known, "OB_DRAIN_TIMEOUT_MS") or 0) / 1000.0
    pre = (((c.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command") or []
    pre_s = int(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else 0
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(grace > drain_s + pre_s, f"{origin}: terminationGracePeriodSeconds {grace} > "
          f"OB_DRAIN_TIMEOUT_MS {drain_s:g} s + preStop {pre_s} s")

    # Security.
    psc = pod.get("securityContext") or {}
    csc = c.get("securityContext") or {}
    check(psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True, f"{origin}: runAsNonRoot")
    seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
    check(seccomp == "RuntimeDefault", f"{origin}: seccomp RuntimeDefault", str(seccomp))
    check(csc.get("readOnlyRootFilesystem") is True, f"{origin}: readOnlyRootFilesystem")
    check(csc.get("allowPrivilegeEscalation") is False, f"{origin}: allowPrivilegeEscalation false")
    check((csc.get("capabilities") or {}).get("drop") == ["ALL"], f"{origin}: capabilities drop ALL")

    res = c.get("resources") or {}
    for kind in ("requests", "limits"):
        check(all(k in (res.get(kind) or {}) for k in ("cpu", "memory")), f"{origin}: {kind} of cpu and memory")

    img = c.get("image", "")
    check("/" in img and ":" in img.rsplit("/", 1)[-1], f"{origin}: the overlay names a registry image with a tag", img)

    # Topics as the service would name them; partitions as configured.
    prefix = env.get("OB_TOPIC_PREFIX", (known["OB_TOPIC_PREFIX"], ""))[0]
    parts = int_setting(env, known, "OB_TOPIC_PARTITIONS")
    for t in TOPICS:
        have = partitions_of.get(prefix + t)
        check(have == parts, f"{origin}: KafkaTopic {prefix}{t} has OB_TOPIC_PARTITIONS={parts} partitions",
              f"has {have}")
    return env


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_around(svc, d, rendered, partitions_of, env, prefix):
    name = d["metadata"]["name"]
    labels = d["spec"]["template"]["metadata"].get("labels", {})
    ns = d["metadata"].get("namespace")
    same_ns = [r for r in rendered if r["metadata"].get("namespace") == ns]
    svcs = [r for r in same_ns if r["kind"] == "Service" and selects(r["spec"].get("selector"), labels)]
    check(len(svcs) == 1, f"Deployment {name}: one Service selects its pods", f"{len(svcs)}")
    pdbs = [r for r in same_ns if r["kind"] == "PodDisruptionBudget"
            and selects(r["spec"]["selector"].get("matchLabels"), labels)]
    check(len(pdbs) == 1, f"Deployment {name}: one PodDisruptionBudget covers its pods", f"{len(pdbs)}")
    hpas = [r for r in same_ns if r["kind"] == "HorizontalPodAutoscaler"
            and r["spec"]["scaleTargetRef"]["name"] == name]
    replicas = d["spec"].get("replicas", 1)
    if svc == "scheduler":
        parts = partitions_of.get(prefix + "call-requests")
        check(not hpas, f"Deployment {name}: no HPA (the scheduler scales by partitions)")
        check(parts is not None and replicas <= parts,
              f"Deployment {name}: replicas {replicas} <= call-requests partitions {parts}")
    elif svc == "ingest":
        types = [(m["type"], (m.get("resource") or {}).get("name")) for h in hpas for m in h["spec"]["metrics"]]
        check(("Resource", "cpu") in types, f"Deployment {name}: an HPA scales it on CPU", str(types))
    elif svc == "dialer":
        metrics = [m for h in hpas for m in h["spec"]["metrics"]]
        check(any(m["type"] in ("Pods", "External", "Object") for m in metrics),
              f"Deployment {name}: an HPA scales it on a custom or external metric")
        parts = partitions_of.get(prefix + "dial-jobs")
        for h in hpas:
            check(parts is not None and h["spec"]["maxReplicas"] <= parts,
                  f"HPA {h['metadata']['name']}: maxReplicas {h['spec']['maxReplicas']} <= dial-jobs partitions {parts}")
        rules = os.path.join(K8S, "prometheus-adapter", "values.yaml")
        names = [m.get("pods", m.get("external", m.get("object", {})))["metric"]["name"] for m in metrics]
        text = open(rules, encoding="utf-8").read() if os.path.exists(rules) else ""
        for n in names:
            check(f'as: "{n}"' in text, f"HPA metric {n} has its Prometheus adapter rule in {os.path.relpath(rules, ROOT)}")


def main():
    base, settings = service_settings()
    check(len(base) >= 8 and all(len(s) > len(base) for s in settings.values())
          and all(n in SPECS for s in settings.values() for n in s),
          "the settings tables were found in common/infra/ob_config.c and services/*/*.c")

    try:
        rendered = render(OVERLAY)
        topics = render(STRIMZI)
    except (ValueError, KeyError, OSError, yaml.YAMLError) as e:
        check(False, "render deploy/k8s", str(e))
        return
    check_render("overlays/example", OVERLAY, rendered)
    check_render("strimzi", STRIMZI, topics)
    secrets = load_yaml_docs(SECRET_EXAMPLE)

    check_schemas(rendered, "overlays/example")
    print("note: KafkaTopic resources are checked against the fields of Strimzi's v1beta2 KafkaTopic, not its CRD schema (not available offline)")
    check_schemas(topics, "strimzi")
    check_schemas(secrets, "secret.example.yaml")

    by_key = {(r["kind"], r["metadata"]["name"]): r for r in rendered + secrets}
    partitions_of = {t["spec"].get("topicName", t["metadata"]["name"]): t["spec"].get("partitions")
                     for t in topics if t["kind"] == "KafkaTopic"}
    for svc in SERVICES:
        d = by_key.get(("Deployment", f"outbound-{svc}"))
        if not check(d is not None, f"Deployment outbound-{svc} is rendered"):
            continue
        env = check_deployment(svc, d, by_key, settings, partitions_of) or {}
        prefix = env.get("OB_TOPIC_PREFIX", (base["OB_TOPIC_PREFIX"], ""))[0]
        check_around(svc, d, rendered, partitions_of, env, prefix)

    # Every OB_* key of every ConfigMap and Secret is read by some service.
    every = set().union(*settings.values())
    for r in rendered + secrets:
        if r["kind"] in ("ConfigMap", "Secret"):
            for k in list((r.get("data") or {})) + list((r.get("stringData") or {})):
                if k.startswith("OB_") and not k.startswith("OB_KAFKA_"):
                    if check(k in every, f"{r['kind']} {r['metadata']['name']}: {k} is a setting a service reads"):
                        v = {**(r.get("data") or {}), **(r.get("stringData") or {})}[k]
                        why = value_error(k, v)
                        check(why is None, f"{r['kind']} {r['metadata']['name']}: {k}={v!r} is valid", why)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a manifest shaped unlike any check expects
        check(False, "the checks ran to the end", f"{type(e).__name__}: {e}")
    print(f"k8s: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)

#!/usr/bin/python3
"""A fresh-machine check: does deploy/local/deps.sh install every Debian package
that `make test` uses? It collects what the builds and tests use (the system
headers of every compile, the linker's inputs, the programs and Python modules
the scripts run, the shared libraries of the built binaries), maps each file to
its package with dpkg -S, and fails naming each package that deps.sh neither
names nor pulls in through Depends/Pre-Depends, nor is essential/required.

Usage: tools/deps_check.py [--deps-script FILE] [--self-test]
Exit 0 when every package is accounted for, 1 otherwise (and when anything it
should check cannot be checked). See docs/development.md."""
import argparse
import ast
import concurrent.futures
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPS_SCRIPT = os.path.join(ROOT, "deploy", "local", "deps.sh")
# The Makefile target whose builds are checked: `make -n -B test` prints every
# compile and link of every build it starts (its sub-makes run under -n too).
MAKE_TARGET = "test"

# Programs the scripts and tests run, with where (shown when one is missing).
# Keep it in step with tools/, deploy/local/, tests/ and bench/.
PROGRAMS = [
    ("make", "Makefile"),
    ("cc", "Makefile: the normal and sanitizer builds"),
    ("g++", "Makefile: common/domain/*.cc"),
    ("clang", "Makefile: the fuzz build"),
    ("clang++", "Makefile: the fuzz build"),
    ("ar", "Makefile"),
    ("ld", "the linker of every build"),
    ("as", "gcc's assembler"),
    ("pkg-config", "Makefile"),
    ("clang-format", "Makefile: format-check"),
    ("git", "Makefile: format-check's file list; bench/*.sh"),
    ("xxd", "tools/embed_console.sh"),
    ("sha256sum", "tools/embed_console.sh, deploy/local/deps.sh"),
    ("/usr/bin/python3", "Makefile, tools/*.py, tests/soak, bench"),
    ("bash", "every script"),
    ("flock", "deploy/local/kafka.sh, deps.sh"),
    ("setsid", "deploy/local/kafka.sh, bench/run.sh"),
    ("runuser", "deploy/local/postgres.sh"),
    ("useradd", "deploy/local/postgres.sh"),
    ("nice", "tools/test.sh, tools/fuzz.sh"),
    ("pkill", "tools/test.sh"),
    ("awk", "tools/test.sh, bench"),
    ("curl", "bench"),
    ("psql", "deploy/local/stacklib.py, tests/soak, bench"),
    ("postgres", "deploy/local/postgres.sh"),
    ("pg_ctl", "deploy/local/postgres.sh"),
    ("initdb", "deploy/local/postgres.sh"),
    ("java", "deploy/local/kafka.sh"),
    ("mvn", "deploy/local/deps.sh: the Kafka classpath"),
    ("kcat", "deploy/local/kafka.sh, tests/soak, bench"),
    ("sipp", "tests/integration/test_sip.c"),
    ("espeak-ng", "tools/detect_corpus_speech.py"),
    ("flite", "tools/detect_corpus_speech.py"),
    ("text2wave", "tools/detect_corpus_speech.py (festival)"),
    ("sox", "tools/detect_corpus*.py"),
    ("chromium", "tools/run_browser.sh"),
    ("node", "tools/run_browser.sh"),
    ("npm", "deploy/local/deps.sh: tests/browser, tests/deploy"),
    ("wrk", "bench/run.sh"),
    ("readelf", "tools/check_deploy.py"),
    ("ldd", "tools/check_deploy.py"),
    ("dpkg", "tools/check_deploy.py"),
]
# The server programs are looked up where deploy/local/postgres.sh does.
PG_PROGRAMS = {"postgres", "pg_ctl", "initdb"}
# deps.sh installs these only when none is on PATH, so any install will do.
ANY_INSTALL_PROGRAMS = {"java", "node", "npm"}
# Modules of deps.sh's venv (.cache/venv, from PyPI), not of Debian.
VENV_MODULES = {"kubernetes_validate", "schemathesis"}
# The kinds of use, the most telling first (a package's first use is shown).
KINDS = ["header", "link input", "program", "python module", "shared library", "compiler part"]
SKIP_DIRS = {".git", "build", ".cache", "node_modules", "__pycache__"}
COMPILER_RE = re.compile(r"^(cc|c\+\+|gcc|g\+\+|clang|clang\+\+)(-[0-9.]+)?$")
SOURCE_RE = re.compile(r"\.(c|cc|cpp|cxx|C)$")
LINKERS = {"collect2", "ld", "ld.bfd", "ld.gold", "ld.lld", "lld"}
# Compiler options whose value is the next argument.
VALUE_OPTS = {"-o", "-I", "-D", "-U", "-include", "-imacros", "-isystem", "-iquote",
              "-idirafter", "-MF", "-MT", "-MQ", "-x", "-L", "-l", "-Xlinker", "--param"}
# Dropped when a compile becomes `-M`: outputs, dependency files, link-only flags.
DROP_OPTS = {"-c", "-MMD", "-MD", "-MP", "-Werror", "-no-pie", "-pie", "-static",
             "-shared", "-rdynamic", "-fsanitize-link-c++-runtime"}
DROP_VALUE_OPTS = {"-o", "-MF", "-MT", "-MQ", "-L", "-l", "-Xlinker"}
# Run from `make test`, make's own flags (its jobserver) stay with it; the
# variables given on its command line (CC=..., CI=1) are passed on.
ENV = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
ENV["LC_ALL"] = "C"
MAKE_VARS = [v for v in shlex.split(os.environ.get("MAKEFLAGS", "").partition("-- ")[2]) if "=" in v]
TMP = tempfile.gettempdir() + "/"


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, env=ENV, cwd=ROOT, **kw)


def rel(path):
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + "/") else path


class Check:
    """What was used (path -> first reason), what could not be checked."""

    def __init__(self):
        self.uses = {}           # kind -> {absolute path: reason}
        self.problems = []       # lines that fail the check whatever the packages
        self.counts = {}         # what was looked at, for the summary line

    def use(self, kind, path, reason):
        self.uses.setdefault(kind, {}).setdefault(path, reason)

    def problem(self, text):
        self.problems.append(text)


# ---- the builds: compile and link commands from make -n -B ----

def make_commands(check):
    """Every compiler command `make -n -B test` prints, as (build, argv), and
    the generated files (*/gen/*) each build mentions, by build."""
    r = run(["make", "--no-print-directory", "-n", "-B", MAKE_TARGET] + MAKE_VARS)
    if r.returncode != 0:
        check.problem(f"make -n -B {MAKE_TARGET} failed: {r.stderr.strip()[-500:]}")
        return [], {}
    text = r.stdout.replace("\\\n", " ")
    build, commands, generated = "(top)", [], {}
    for line in text.splitlines():
        try:
            argv = shlex.split(line)
        except ValueError:
            continue
        if not argv:
            continue
        if os.path.basename(argv[0]) == "make":
            build = " ".join(a for a in argv[1:] if not a.startswith("-"))
            continue
        for word in argv:
            if re.search(r"/gen/[^/]+\.(c|h)$", word):
                generated.setdefault(build, set()).add(word)
        if COMPILER_RE.match(os.path.basename(argv[0])):
            commands.append((build, argv))
    check.counts["builds"] = sorted({b for b, _ in commands})
    return commands, generated


def generate_sources(check, generated):
    """The compiles read generated sources (build*/gen); make them with the
    build's own rules, as the build is about to."""
    for build, files in generated.items():
        missing = sorted(f for f in files if not os.path.exists(os.path.join(ROOT, f)))
        if not missing:
            continue
        variables = [w for w in build.split() if "=" in w]
        r = run(["make", "--no-print-directory", "-s"] + MAKE_VARS + variables + missing)
        if r.returncode != 0:
            check.problem(f"cannot generate {' '.join(missing)} ({build}): "
                          f"{(r.stderr or r.stdout).strip()[-500:]}")


def split_command(argv):
    """A compiler command as (options, sources, is_link): options are tuples,
    ("-Wall",) or ("-o", "out"); objects and archives are link inputs."""
    options, sources, is_link = [], [], True
    i = 1
    while i < len(argv):
        a = argv[i]
        if a in VALUE_OPTS and i + 1 < len(argv):
            options.append((a, argv[i + 1]))
            i += 2
            continue
        if a in ("-c", "-E", "-S", "-M", "-MM"):
            is_link = False
        if SOURCE_RE.search(a) and not a.startswith("-"):
            sources.append(a)
        else:
            options.append((a,))
        i += 1
    return options, sources, is_link


def preprocess_argv(compiler, options, source):
    """The compile as a dependency listing: -M (system headers included), -MG
    so that every missing header is listed rather than only the first."""
    out = [compiler]
    for opt in options:
        a = opt[0]
        if a in DROP_OPTS or a in DROP_VALUE_OPTS or not a.startswith("-") \
                or a.startswith(("-l", "-L", "-Wl,")):
            continue
        out.extend(opt)
    return out + ["-M", "-MG", "-MT", "deps", source]


def preprocess(build, argv):
    """Runs one -M: (uses, not-found headers, error) of the compile of argv[-1]."""
    where = f"{build}: {argv[0]} {argv[-1]}"
    r = run(argv)
    if r.returncode != 0:
        lines = [l for l in r.stderr.splitlines() if "error" in l] or r.stderr.splitlines()
        return [], [], (where, lines[0] if lines else f"exit {r.returncode}")
    deps = r.stdout.replace("\\\n", " ").split(":", 1)[-1].split()
    uses, missing = [], []
    for d in deps[1:]:
        path = d if os.path.isabs(d) else os.path.join(ROOT, d)
        if not os.path.exists(path):
            missing.append((d, where))
        elif not path.startswith(ROOT + "/"):
            uses.append(("header", os.path.normpath(path), where))
    return uses, missing, None


def preprocess_all(check, pool, jobs):
    """Preprocesses each (build, argv), in parallel; a compile that cannot be
    preprocessed, or reads a header this machine lacks, is a problem."""
    not_found, errors = {}, {}
    for uses, missing, error in pool.map(lambda job: preprocess(*job), jobs):
        if error:
            where, text = error
            errors.setdefault(text.replace(where.split()[-1], "<source>"), []).append(error)
        for kind, path, where in uses:
            check.use(kind, path, where)
        for header, where in missing:
            not_found.setdefault(header, []).append(where)
    for (where, text), *more in errors.values():
        check.problem(f"cannot preprocess {where}: {text}"
                      + (f" (and {len(more)} more compiles alike)" if more else ""))
    for header, where in sorted(not_found.items()):
        check.problem(f"header {header} is not on this machine ({len(where)} compiles, e.g. "
                      f"{where[0]}): a package deps.sh does not install ships it "
                      f"(apt-file search {header})")


def driver_files(build, argv, is_link):
    """`cc -###`: the programs the driver runs (cc1, as, ld) and, for a link,
    its inputs (crt files, sanitizer runtimes, -l libraries). Returns uses
    and problems, each (text, where)."""
    target = dict(o for o in split_command(argv)[0] if len(o) == 2).get("-o", "")
    where = f"{build}: {argv[0]} {target or argv[-1]}"
    uses, problems = [], []
    r = run(argv + ["-###"])
    if r.returncode != 0:
        lines = [l for l in r.stderr.splitlines() if "error" in l] or [f"exit {r.returncode}"]
        return [], [(f"{argv[0]} -### failed: {lines[0]}", where)]
    for line in r.stderr.splitlines():
        try:
            tokens = shlex.split(line) if line.startswith(" ") else []
        except ValueError:
            tokens = []
        if not tokens:
            continue
        prog = tokens[0] if os.path.isabs(tokens[0]) else shutil.which(tokens[0])
        if prog:
            uses.append(("compiler part", os.path.normpath(prog), where))
        linker = os.path.basename(tokens[0]) in LINKERS
        if os.path.basename(tokens[0]) == "collect2" and shutil.which("ld"):
            uses.append(("compiler part", shutil.which("ld"), where))
        search, libs, i = [], [], 1
        while i < len(tokens):
            t = tokens[i]
            value = t.split("=", 1)[1] if t.startswith("-") and "=" in t else ""
            if t == "-o":
                i += 1
            elif linker and t.startswith("-L"):
                search.append(t[2:])
            elif linker and t.startswith("-l"):
                if t == "-l" and i + 1 < len(tokens):
                    i += 1
                libs.append(t[2:] or tokens[i])
            elif t.startswith("/") and os.path.isfile(t):
                uses.append(("link input" if linker else "compiler part", os.path.normpath(t), where))
            elif t.startswith("/") and linker and re.search(r"\.(o|a|so(\.[0-9]+)*)$", t) \
                    and not t.startswith(TMP):      # the object of a compile-and-link
                problems.append((f"the linker's input {t} is not on this machine: a package"
                                 " deps.sh does not install ships it", where))
            elif value.startswith("/") and os.path.isfile(value):
                uses.append(("compiler part", os.path.normpath(value), where))
            i += 1
        for lib in libs:
            path = find_library(lib, search)
            if path:
                uses.append(("link input", path, f"{where}: -l{lib}"))
            else:
                problems.append((f"-l{lib} is not in the linker's search path: a -dev package"
                                 " deps.sh does not install ships it", where))
    return uses, problems


_ld_dirs = None


def find_library(lib, search):
    """Where ld finds -l<lib>: the -L directories, then its own SEARCH_DIRs."""
    global _ld_dirs
    if _ld_dirs is None:
        out = run(["ld", "--verbose"]).stdout
        _ld_dirs = [d.lstrip("=") for d in re.findall(r'SEARCH_DIR\("([^"]+)"\)', out)]
    names = [lib[1:]] if lib.startswith(":") else [f"lib{lib}.so", f"lib{lib}.a"]
    for d in search + _ld_dirs:
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p):
                return os.path.normpath(p)
    return None


def check_builds(check, pool):
    commands, generated = make_commands(check)
    if not commands:
        check.problem(f"make -n -B {MAKE_TARGET} printed no compile commands: nothing was checked")
        return
    generate_sources(check, generated)
    jobs, drivers, links = {}, {}, 0
    for build, argv in commands:
        options, sources, is_link = split_command(argv)
        for source in sources:
            jobs.setdefault(tuple(preprocess_argv(argv[0], options, source)), build)
        links += is_link
        # One -### per distinct driver run: compiles with the same flags (but
        # for -I, -D, outputs and source) run the same programs.
        shape = tuple(argv) if is_link else tuple(
            o for o in options if o[0].startswith("-")
            and not o[0].startswith(("-I", "-D", "-o", "-MF", "-MT")))
        drivers.setdefault((argv[0], shape), (build, argv, is_link))
    preprocess_all(check, pool, [(b, list(a)) for a, b in jobs.items()])
    grouped = {}
    for uses, problems in pool.map(lambda d: driver_files(*d), drivers.values()):
        for u in uses:
            check.use(*u)
        for text, where in problems:
            grouped.setdefault(text, []).append(where)
    for text, where in grouped.items():
        check.problem(f"{text} ({len(where)} commands, e.g. {where[0]})")
    check.counts["compiles"] = len(jobs)
    check.counts["links"] = links


# ---- programs, Python modules, shared libraries ----

def check_programs(check, dpkg):
    path_dirs = os.environ.get("PATH", "").split(":") + ["/usr/local/bin", "/usr/bin", "/bin",
                                                        "/usr/sbin", "/sbin"]
    found = {}
    for name, where in PROGRAMS:
        if os.path.isabs(name):
            candidates = [name] if os.access(name, os.X_OK) else []
        else:
            dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True) \
                if name in PG_PROGRAMS else []
            candidates = [os.path.join(d, name) for d in dirs + path_dirs if d]
            candidates = list(dict.fromkeys(c for c in candidates
                                            if os.path.isfile(c) and os.access(c, os.X_OK)))
        found[name] = candidates
    dpkg.lookup([c for cs in found.values() for c in cs])
    for name, where in PROGRAMS:
        owned = [c for c in found[name] if dpkg.owners(c)]
        if owned:
            check.use("program", owned[0], where)
        elif found[name] and name in ANY_INSTALL_PROGRAMS:
            check.counts.setdefault("outside dpkg", []).append(f"{name} ({found[name][0]})")
        elif found[name]:
            check.problem(f"program {name} ({where}) is {found[name][0]}, from no Debian package:"
                          " a fresh machine will not have it")
        else:
            check.problem(f"program {name} ({where}) is not installed: add its package to deps.sh")
    check.counts["programs"] = len(PROGRAMS)


def python_files():
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".local")]
        for f in files:
            if f.endswith(".py"):
                yield os.path.join(top, f)


def check_python(check):
    """Every module the project's Python imports, found as /usr/bin/python3 on a
    fresh machine would (isolated: no user site, no PYTHONPATH)."""
    files = sorted(python_files())
    local = {os.path.basename(f)[:-3] for f in files}
    imports = {}
    for f in files:
        try:
            tree = ast.parse(open(f).read(), f)
        except SyntaxError as e:
            check.problem(f"cannot parse {rel(f)}: {e}")
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for n in names:
                top = n.split(".")[0]
                if top not in local:
                    imports.setdefault(top, rel(f))
    code = ("import importlib.util, json, sys\n"
            "out = {}\n"
            "for m in sys.argv[1:]:\n"
            "    try:\n"
            "        s = importlib.util.find_spec(m)\n"
            "    except Exception:\n"
            "        s = None\n"
            "    out[m] = None if s is None else (s.origin if s.origin else\n"
            "        next(iter(s.submodule_search_locations or []), 'namespace'))\n"
            "print(json.dumps(out))\n")
    r = run(["/usr/bin/python3", "-I", "-c", code] + sorted(imports))
    if r.returncode != 0:
        check.problem(f"/usr/bin/python3 could not look up modules: {r.stderr.strip()[-300:]}")
        return
    for module, origin in sorted(json.loads(r.stdout).items()):
        if origin is None:
            if module not in VENV_MODULES:
                check.problem(f"python module {module} (imported by {imports[module]}) is not"
                              " installed: add its python3-* package to deps.sh")
        elif origin.startswith("/"):
            check.use("python module", origin, f"imported by {imports[module]}")
    check.counts["python modules"] = len(imports)


def check_binaries(check, pool):
    """ldd on what the builds already made: a runtime library is a package too."""
    patterns = ["build/bin/*", "build/san/bin/*", "build/fuzz/fuzz_*", "build/bench/*"]
    bins = []
    for p in patterns:
        for b in sorted(glob.glob(os.path.join(ROOT, p))):
            if os.path.isfile(b):
                with open(b, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        bins.append(b)

    def ldd(b):
        return b, run(["ldd", b])

    for b, r in pool.map(ldd, bins):
        for line in r.stdout.splitlines():
            m = re.match(r"\s*(\S+) => (.+?) \(0x", line)
            if "=> not found" in line:
                check.problem(f"{rel(b)}: {line.strip()}")
            elif m and m.group(2).startswith("/"):
                check.use("shared library", os.path.normpath(m.group(2)), rel(b))
            elif re.match(r"\s*/\S+ \(0x", line):
                check.use("shared library", line.split()[0], rel(b))
    check.counts["binaries"] = len(bins)


# ---- Debian: owners of files, and what deps.sh installs ----

class Dpkg:
    """dpkg -S in batches, over the path as used and its real path, with the
    merged-/usr aliases (/lib/x is /usr/lib/x on Debian 12, but dpkg lists
    each file under the name its package shipped it)."""

    MERGED = ("/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/")

    def __init__(self):
        self.table = {}

    @classmethod
    def aliases(cls, path):
        out = [path]
        if path.startswith("/usr") and path[4:].startswith(cls.MERGED):
            out.append(path[4:])
        elif path.startswith(cls.MERGED):
            out.append("/usr" + path)
        return out

    @staticmethod
    def used_and_real(path):
        """The path with its directories resolved, and its target if a link."""
        used = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        return list(dict.fromkeys([used, os.path.realpath(path)]))

    def lookup(self, paths):
        names = {n for p in paths for q in [p] + self.used_and_real(p) for n in self.aliases(q)}
        todo = sorted(n for n in names if n not in self.table)
        for i in range(0, len(todo), 2000):
            chunk = todo[i:i + 2000]
            for n in chunk:
                self.table[n] = set()
            for line in run(["dpkg", "-S"] + chunk).stdout.splitlines():
                if line.startswith("diversion ") or ": " not in line:
                    continue
                pkgs, path = line.split(": ", 1)
                if path in self.table:
                    self.table[path] |= {p.strip().split(":")[0] for p in pkgs.split(",")}

    def owners(self, path):
        """The owners of the file as used and, if it is a link, of its target:
        both must be installed. A link no package owns (an alternative, the
        /usr/local/bin links of this machine) defers to its target; [] when
        no package owns either."""
        sets = []
        for i, p in enumerate(self.used_and_real(path)):
            names = self.aliases(p) + (self.aliases(path) if i == 0 else [])
            owned = set().union(*(self.table.get(n, set()) for n in names))
            if owned:
                sets.append(owned)
        return sets


def installed_packages():
    """Installed packages: {name: (essential_or_required, [[alternatives], ...])}
    and {virtual: {providers}}."""
    fmt = "${Package}\t${db:Status-Abbrev}\t${Essential}\t${Priority}\t${Provides}\t" \
          "${Pre-Depends}\t${Depends}\n"
    r = run(["dpkg-query", "-W", "-f", fmt])
    pkgs, provides = {}, {}
    for line in r.stdout.splitlines():
        name, status, essential, priority, prov, pre, dep = (line.split("\t") + [""] * 7)[:7]
        if not status.startswith("ii"):
            continue
        groups = [[bare(a) for a in g.split("|")] for g in (pre + "," + dep).split(",") if g.strip()]
        old = pkgs.get(name, (False, []))
        pkgs[name] = (old[0] or essential == "yes" or priority == "required", old[1] + groups)
        for v in prov.split(","):
            if v.strip():
                provides.setdefault(bare(v), set()).add(name)
    return pkgs, provides


def bare(dep):
    """'libc6:any (>= 2.34)' -> 'libc6'."""
    return dep.strip().split(" ")[0].split(":")[0]


def closure(start, pkgs, provides):
    """start, the essential/required packages, and all they depend on. Of
    alternatives ('a | b') the first one installed here counts, as apt chose it."""
    todo = list(start) + [p for p, (base, _) in pkgs.items() if base]
    seen = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for group in pkgs.get(p, (False, []))[1]:
            for alt in group:
                if alt in pkgs:
                    todo.append(alt)
                    break
                if provides.get(alt):
                    todo.extend(provides[alt])
                    break
    return seen


def named_packages(script):
    r = subprocess.run(["bash", script, "--list"], capture_output=True, text=True, env=ENV)
    if r.returncode != 0 or not r.stdout.strip():
        raise RuntimeError(f"{script} --list failed: {r.stderr.strip()[-300:]}")
    return r.stdout.split()


def evaluate(check, dpkg, script, pkgs, provides):
    """({owners: [(kind, path, reason), ...]} of the uses deps.sh does not
    cover, the packages used, the packages deps.sh names)."""
    named = named_packages(script)
    covered = closure([p for p in named if p in pkgs], pkgs, provides)
    missing, used = {}, set()
    for kind in sorted(check.uses, key=KINDS.index):
        for path, reason in sorted(check.uses[kind].items()):
            for owners in dpkg.owners(path):
                used |= owners
                if not owners & covered:
                    missing.setdefault(tuple(sorted(owners)), []).append((kind, path, reason))
    return missing, used, named


def find_unowned(check, dpkg):
    for kind, uses in sorted(check.uses.items()):
        for path, reason in sorted(uses.items()):
            if not dpkg.owners(path):
                check.problem(f"{kind} {path} ({reason}) is from no Debian package:"
                              " a fresh machine will not have it")


def explain(check, dpkg, named, pkgs, provides):
    """Each package used: named by deps.sh, pulled in, or base; its files."""
    covered = closure([p for p in named if p in pkgs], pkgs, provides)
    base = closure([], pkgs, provides)
    files = {}
    for kind in sorted(check.uses, key=KINDS.index):
        for path, reason in sorted(check.uses[kind].items()):
            for owners in dpkg.owners(path):
                for p in owners:
                    files.setdefault(p, []).append((kind, path, reason))
    for p, uses in sorted(files.items()):
        how = ("named" if p in named else "base" if p in base
               else "pulled in" if p in covered else "MISSING")
        kind, path, reason = uses[0]
        print(f"  {p:32} {how:9} {len(uses):4} files, e.g. {kind} {path} ({reason})")


def report_missing(missing, script):
    print(f"deps-check: a fresh machine would lack {len(missing)} package(s): used, but not named by"
          f" {rel(script)} nor pulled in by what it names (Depends/Pre-Depends; installs skip"
          " Recommends) nor essential/required:")
    for owners, uses in sorted(missing.items()):
        kind, path, reason = uses[0]
        more = f" and {len(uses) - 1} more files" if len(uses) > 1 else ""
        print(f"  {' or '.join(owners)}: {kind} {path} ({reason}){more}")


# ---- self-test: the check must fail when deps.sh lacks a package ----

def without_package(script, package, tmp):
    """A copy of deps.sh (with the files it sources) lacking `package`."""
    dest = os.path.join(tmp, "deploy", "local")
    os.makedirs(dest, exist_ok=True)
    for f in glob.glob(os.path.join(os.path.dirname(script), "*.sh")):
        shutil.copy(f, dest)
    copy = os.path.join(dest, os.path.basename(script))
    text = open(copy).read()
    text, n = re.subn(r"(?<=[\s(])" + re.escape(package) + r"(?=[\s)])", "", text, count=1)
    with open(copy, "w") as f:
        f.write(text)
    return copy if n else None


def self_test(check, dpkg, script, pkgs, provides):
    """For each kind of use, a package deps.sh names that nothing else it names
    pulls in: deps.sh without it must fail naming it. And a compile that cannot
    be preprocessed must be a problem, not a silence."""
    failures = []
    named = named_packages(script)

    def alone(p):
        """p is named and nothing else deps.sh names pulls it in."""
        return p in named and p not in closure([q for q in named if q != p and q in pkgs],
                                               pkgs, provides)

    chosen = {}
    if alone("libclang-rt-14-dev"):
        chosen["header"] = "libclang-rt-14-dev"     # the one issue 18 was about
    for kind in sorted(check.uses, key=KINDS.index):
        for path in sorted(check.uses[kind]):
            if kind in chosen:
                break
            for owners in dpkg.owners(path):
                for p in sorted(owners - set(chosen.values())):
                    if kind not in chosen and alone(p):
                        chosen[kind] = p
    if not chosen:
        failures.append("no package of deps.sh could be removed to test the check")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, package in sorted(chosen.items()):
            copy = without_package(script, package, os.path.join(tmp, package))
            if copy is None or package in named_packages(copy):
                failures.append(f"could not remove {package} from a copy of {rel(script)}")
                continue
            missing, _, _ = evaluate(check, dpkg, copy, pkgs, provides)
            uses = [u for o, us in missing.items() if package in o for u in us]
            if uses:
                _, path, reason = next((u for u in uses if u[0] == kind), uses[0])
                print(f"deps-check self-test: ok: deps.sh without {package} fails, naming it"
                      f" for {len(uses)} files, e.g. {kind} {path} ({reason})")
            else:
                failures.append(f"deps.sh without {package} ({kind}) passed the check")
        # Compiles the check cannot read must fail it, not pass unread.
        bad = Check()
        for name, body in (("no_header.c", "#include <ob_deps_check_no_such_header.h>\n"),
                           ("error.c", "#error this compile cannot be preprocessed\n")):
            with open(os.path.join(tmp, name), "w") as f:
                f.write(body)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            preprocess_all(bad, pool, [("self-test", preprocess_argv("cc", [], os.path.join(tmp, n)))
                                       for n in ("no_header.c", "error.c")])
        if len(bad.problems) == 2:
            for p in bad.problems:
                print(f"deps-check self-test: ok: reported: {p.replace(tmp + '/', '')[:160]}")
        else:
            failures.append(f"2 unreadable compiles gave {len(bad.problems)} problems")
    for f in failures:
        print(f"deps-check self-test: FAILED: {f}")
    return not failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deps-script", default=DEPS_SCRIPT, help="the install script to check")
    ap.add_argument("--self-test", action="store_true",
                    help="also check that the check fails without a needed package")
    ap.add_argument("--explain", action="store_true",
                    help="list each package used, how many files of it and one of them")
    args = ap.parse_args()
    script = os.path.abspath(args.deps_script)
    started = time.monotonic()
    check, dpkg = Check(), Dpkg()
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        check_builds(check, pool)
        check_binaries(check, pool)
    check_python(check)
    check_programs(check, dpkg)
    dpkg.lookup([p for uses in check.uses.values() for p in uses])
    find_unowned(check, dpkg)
    pkgs, provides = installed_packages()
    try:
        missing, used, named = evaluate(check, dpkg, script, pkgs, provides)
    except RuntimeError as e:
        print(f"deps-check: FAILED: {e}")
        return 1
    c, u = check.counts, check.uses
    print(f"deps-check: {c.get('compiles', 0)} compiles and {c.get('links', 0)} links in"
          f" {len(c.get('builds', []))} builds ({'; '.join(c.get('builds', []))}),"
          f" {len(u.get('header', {}))} system headers, {len(u.get('link input', {}))} link inputs,"
          f" {len(u.get('compiler part', {}))} compiler parts, {c.get('programs', 0)} programs,"
          f" {c.get('python modules', 0)} python modules, {len(u.get('shared library', {}))}"
          f" shared libraries of {c.get('binaries', 0)} built binaries"
          f" -> {len(used)} Debian packages ({len(named)} named by {rel(script)})")
    if args.explain:
        explain(check, dpkg, named, pkgs, provides)
    if c.get("outside dpkg"):
        print(f"deps-check: not from Debian, accepted as deps.sh does: {', '.join(c['outside dpkg'])}")
    ok = True
    for p in check.problems:
        print(f"deps-check: FAILED: {p}")
        ok = False
    if missing:
        report_missing(missing, script)
        ok = False
    if args.self_test and not self_test(check, dpkg, script, pkgs, provides):
        ok = False
    took = time.monotonic() - started
    if ok:
        print(f"deps-check: ok: every package used is installed by {rel(script)} or what it"
              f" depends on ({took:.1f} s)")
        return 0
    if missing:
        print(f"deps-check: fix: add each package to the list in {rel(DEPS_SCRIPT)}, run it"
              " (make deps), then make check-deps")
    print(f"deps-check: FAILED ({took:.1f} s); docs/development.md says what to do")
    return 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Checks the deploy recipes against each other and against the real server.

    scripts/check-deploy.py [--binary target/release/hotline]

Needs PyYAML, kubernetes-validate, dockerfile-parse and check-jsonschema
(.ci/run installs them into a venv under target/). For each recipe
(Dockerfile, docker-compose.yml, fly.toml, deploy/k8s/, .replit):

- its schema or syntax: the Kubernetes manifests against the Kubernetes
  schemas (strict: unknown fields fail), the compose file against the
  compose specification, the TOML files parsed;
- its settings: every variable it gives hotline is one `hotline serve
  --help` knows, and the binary starts with them (each recipe's settings,
  with temporary directories and a free loopback port in place of its
  paths and port) and answers every path the recipe probes with 200; the
  HPA's metric is a series of that server's /metrics; the Dockerfile's
  HEALTHCHECK command itself passes against it, and fails with no server;
- its stop grace: at least HOTLINE_DRAIN_SECS + 10 s (the calls' close
  handshakes, 5 s at most, the records' flush and 2 s for the last HTTP
  requests) plus the preStop sleep where there is one;
- its port: the variable, the exposed or internal port, the probes' port
  and the Service's target all the same.

And docs/deploy.md, which documents them: it names every recipe, and its
grace-period table has every platform.

Prints one line per check and `N passed, N failed`; exits 1 on a failure.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import kubernetes_validate
import yaml
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parent.parent
# What the server does after the drain budget, at most: 5 s for the calls'
# close handshakes, the records' flush, 2 s for idle HTTP connections
# (host/http/server.rs: CLOSE_GRACE, HTTP_GRACE), and a margin.
AFTER_DRAIN_SECS = 10
# Kubernetes versions the manifests must validate against: the oldest
# still common and the newest the package knows.
K8S_VERSIONS = ["1.29.0", None]

results = []
# The variables `hotline serve --help` lists (set in main).
KNOWN = set()


def check(name, ok, detail=""):
    results.append(ok)
    line = f"{'ok  ' if ok else 'FAIL'} {name}"
    if detail:
        line += f": {detail}"
    print(line, flush=True)
    return ok


# ---------------------------------------------------------------- the binary


def known_variables(binary):
    """Every variable `hotline serve --help` lists, with its default."""
    out = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, check=True).stdout
    names = {}
    for match in re.finditer(r"\[env: ([A-Z0-9_]+)=?([^\]]*)\]", out):
        names[match.group(1)] = match.group(2)
    defaults = {}
    # "[default: 25]" follows the env line of the same option.
    for block in out.split("\n\n"):
        env = re.search(r"\[env: ([A-Z0-9_]+)", block)
        default = re.search(r"\[default: ([^\]]*)\]", block)
        if env and default:
            defaults[env.group(1)] = default.group(1)
    return set(names), defaults


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, timeout=2.0):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except OSError as e:
        return None, str(e)


class Server:
    """`hotline serve` with a recipe's settings, on loopback."""

    def __init__(self, binary, env, tmp, known):
        self.port = free_port()
        data = Path(tmp) / "data"
        cache = Path(tmp) / "cache"
        # Only the recipe's settings: none of hotline's variables (a key, a
        # database) from the environment this runs in.
        full = {k: v for k, v in os.environ.items() if k not in known and not k.startswith("HOTLINE_")}
        full.update(env)
        full.update(
            PORT=str(self.port),
            HOTLINE_BIND="127.0.0.1",
            HOTLINE_DATA_DIR=str(data),
            HOTLINE_CACHE_DIR=str(cache),
        )
        self.log = open(Path(tmp) / "server.log", "w+")
        self.proc = subprocess.Popen([binary, "serve"], env=full, stdout=self.log, stderr=subprocess.STDOUT)

    def ready(self, within=20.0):
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            status, _ = get(self.port, "/readyz", timeout=1.0)
            if status == 200:
                return True
            time.sleep(0.05)
        return False

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def run_recipe(binary, name, env, paths, extra=None):
    known = KNOWN
    """Starts the server with `env`; each of `paths` must answer 200."""
    with tempfile.TemporaryDirectory(prefix="hotline-deploy-") as tmp:
        os.chmod(tmp, 0o700)
        server = Server(binary, env, tmp, known)
        try:
            up = server.ready()
            if not check(f"{name}: hotline serve starts with the recipe's settings and /readyz says 200", up,
                         "" if up else server.output()[-2000:]):
                return
            for path in sorted(set(paths)):
                status, body = get(server.port, path)
                check(f"{name}: GET {path} on the real server", status == 200, f"{status} {body[:80]!r}")
            if extra:
                extra(server)
        finally:
            code = server.stop()
            check(f"{name}: SIGTERM drains and exits 0", code == 0, f"exit {code}")


# ----------------------------------------------------------------- helpers


def duration_secs(value):
    """Compose's durations: 130s, 2m10s, 1m, 90 (seconds)."""
    if isinstance(value, (int, float)):
        return float(value)
    total, matched = 0.0, False
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", value):
        matched = True
        total += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}[unit]
    if not matched:
        total = float(value)
    return total


def interpolate(value):
    """Compose's ${VAR:-default} and ${VAR}, taking the defaults (CI sets none)."""
    if not isinstance(value, str):
        return value

    def sub(m):
        name, default = m.group(1), m.group(3)
        return os.environ.get(name) or (default or "")

    return re.sub(r"\$\{([A-Z0-9_]+)(:?-([^}]*))?\}", sub, value)


def unknown_vars(env, known, allowed=()):
    return sorted(k for k in env if k not in known and k not in allowed)


def drain_of(env, defaults):
    return int(env.get("HOTLINE_DRAIN_SECS") or defaults.get("HOTLINE_DRAIN_SECS", "25"))


# --------------------------------------------------------------- the recipes


def dockerfile(binary, known, defaults):
    path = ROOT / "Dockerfile"
    text = path.read_text()
    parser = DockerfileParser(path=str(path))
    structure = parser.structure
    froms = [i for i in structure if i["instruction"] == "FROM"]
    check("Dockerfile: multi-stage (a build stage and a runtime stage)", len(froms) >= 2, f"{len(froms)} FROM")
    last_from = max(i["startline"] for i in froms)
    final = [i for i in structure if i["startline"] >= last_from]
    build = [i for i in structure if i["startline"] < last_from]

    channel = tomllib.loads((ROOT / "rust-toolchain.toml").read_text())["toolchain"]
    arg = re.search(r"^ARG RUST_VERSION=(\S+)", text, re.M)
    check("Dockerfile: the builder's Rust is rust-toolchain.toml's channel",
          bool(arg) and arg.group(1) == channel["channel"] and "${RUST_VERSION}" in froms[0]["value"],
          f"ARG {arg.group(1) if arg else None}, toolchain {channel['channel']}, FROM {froms[0]['value']}")
    build_runs = " ".join(i["value"] for i in build if i["instruction"] == "RUN")
    missing = [t for t in channel.get("targets", []) if t not in build_runs]
    check("Dockerfile: the builder adds rust-toolchain.toml's targets", not missing, f"missing {missing}" if missing else "")
    check("Dockerfile: cargo builds the release binary, --locked",
          re.search(r"cargo build --release --locked", build_runs) is not None)

    final_runs = " ".join(i["value"] for i in final if i["instruction"] == "RUN")
    check("Dockerfile: the runtime installs ca-certificates", "ca-certificates" in final_runs)
    installs = [i["value"] for i in structure if i["instruction"] == "RUN" and "apt-get install" in i["value"]]
    check("Dockerfile: apt-get installs without recommends and drops its lists",
          all("--no-install-recommends" in v and "rm -rf /var/lib/apt/lists" in v for v in installs))
    users = [i["value"].strip() for i in final if i["instruction"] == "USER"]
    uid = users[-1].split(":")[0] if users else "0"
    check("Dockerfile: the runtime runs as a numeric non-root user", uid.isdigit() and uid != "0", f"USER {users}")

    env = {}
    for i in final:
        if i["instruction"] == "ENV":
            for k, v in re.findall(r"([A-Z0-9_]+)=(\S+)", i["value"]):
                env[k] = v
    bad = unknown_vars(env, known)
    check("Dockerfile: every ENV is a hotline setting", not bad, f"unknown {bad}" if bad else ", ".join(sorted(env)))
    exposes = [i["value"].split("/")[0].strip() for i in final if i["instruction"] == "EXPOSE"]
    check("Dockerfile: EXPOSE is ENV PORT", exposes == [env.get("PORT")], f"EXPOSE {exposes}, PORT {env.get('PORT')}")
    stop = [i["value"].strip() for i in final if i["instruction"] == "STOPSIGNAL"]
    check("Dockerfile: STOPSIGNAL SIGTERM", stop == ["SIGTERM"], f"{stop}")
    entry = [json.loads(i["value"]) for i in final if i["instruction"] in ("ENTRYPOINT", "CMD")]
    check("Dockerfile: it runs `hotline serve`", entry == [["hotline"], ["serve"]], f"{entry}")
    drain = drain_of(env, defaults)
    timeout = re.search(r"--stop-timeout (\d+)", text)
    check("Dockerfile: the stop timeout it tells covers the drain",
          bool(timeout) and int(timeout.group(1)) >= drain + AFTER_DRAIN_SECS,
          f"--stop-timeout {timeout.group(1) if timeout else None} vs HOTLINE_DRAIN_SECS {drain} + {AFTER_DRAIN_SECS}")
    precompile = [i for i in final if i["instruction"] == "RUN" and "hotline guest compile" in i["value"]]
    check("Dockerfile: the built-in guest is precompiled into HOTLINE_CACHE_DIR as hotline's user",
          len(precompile) == 1 and "HOTLINE_CACHE_DIR" in env
          and any(i["instruction"] == "USER" and i["startline"] < precompile[0]["startline"] for i in final))

    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    check(".dockerignore: the build context leaves out target/ and .git", "target" in ignore and ".git" in ignore)

    health = [i for i in final if i["instruction"] == "HEALTHCHECK"]
    if not check("Dockerfile: a HEALTHCHECK on /healthz", len(health) == 1 and "/healthz" in health[0]["value"]):
        return env, []
    cmd = json.loads(health[0]["value"].split("CMD", 1)[1].strip())
    if not check("Dockerfile: its HEALTHCHECK needs only bash (in the runtime image)", cmd[0] == "bash", f"{cmd[0]}"):
        return env, ["/healthz"]
    bash = shutil.which("bash")

    def healthcheck(server):
        ok = subprocess.run([bash, *cmd[1:]], env={"PORT": str(server.port)}, timeout=5).returncode
        check("Dockerfile: its HEALTHCHECK command passes against the real server", ok == 0, f"exit {ok}")

    no_server = subprocess.run([bash, *cmd[1:]], env={"PORT": str(free_port())}, capture_output=True, timeout=5)
    check("Dockerfile: its HEALTHCHECK command fails when nothing listens", no_server.returncode != 0,
          f"exit {no_server.returncode}")
    run_recipe(binary, "Dockerfile", env, ["/healthz"], healthcheck)
    return env, ["/healthz"]


def compose(binary, known, defaults, image_env):
    path = ROOT / "docker-compose.yml"
    schema = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
                             "vendor.compose-spec", str(path)], capture_output=True, text=True)
    check("docker-compose.yml: valid against the compose specification", schema.returncode == 0,
          (schema.stdout + schema.stderr).strip()[-400:])
    doc = yaml.safe_load(path.read_text())
    services = doc["services"]
    hl = next((s for s in services.values() if s.get("build") is not None), None)
    pg = services.get("postgres")
    if not check("docker-compose.yml: a hotline service built from the Dockerfile and a postgres service",
                 hl is not None and pg is not None):
        return
    env = {k: interpolate(str(v)) for k, v in (hl.get("environment") or {}).items()}
    bad = unknown_vars(env, known)
    check("docker-compose.yml: every variable given hotline is a hotline setting", not bad, f"unknown {bad}" if bad else "")
    check("docker-compose.yml: postgres has a healthcheck", "test" in (pg.get("healthcheck") or {}))
    dep = (hl.get("depends_on") or {}).get("postgres", {})
    check("docker-compose.yml: hotline waits for postgres: condition service_healthy",
          isinstance(dep, dict) and dep.get("condition") == "service_healthy")
    check("docker-compose.yml: DATABASE_URL names the postgres service",
          re.match(r"postgres(ql)?://[^@]+@postgres(:5432)?/", env.get("DATABASE_URL", "")) is not None,
          env.get("DATABASE_URL", "").split("@")[-1])
    merged = {**image_env, **env}
    drain = drain_of(merged, defaults)
    grace = duration_secs(hl.get("stop_grace_period", "10s"))
    check("docker-compose.yml: stop_grace_period covers HOTLINE_DRAIN_SECS + 10 s", grace >= drain + AFTER_DRAIN_SECS,
          f"{grace:g} s vs {drain} + {AFTER_DRAIN_SECS}")
    port = merged.get("PORT")
    targets = [interpolate(str(p)).rsplit(":", 1)[-1] for p in hl.get("ports", [])]
    check("docker-compose.yml: the published port targets the container's PORT", targets == [port],
          f"ports {targets}, PORT {port}")
    run_env = {k: v for k, v in merged.items() if k != "DATABASE_URL"}
    run_recipe(binary, "docker-compose.yml", run_env, ["/healthz"])


def fly(binary, known, defaults, image_env):
    doc = tomllib.loads((ROOT / "fly.toml").read_text())
    env = {k: str(v) for k, v in doc.get("env", {}).items()}
    bad = unknown_vars(env, known)
    check("fly.toml: every [env] variable is a hotline setting", not bad, f"unknown {bad}" if bad else "")
    service = doc.get("http_service", {})
    merged = {**image_env, **env}
    check("fly.toml: [http_service] internal_port is PORT", str(service.get("internal_port")) == merged.get("PORT"),
          f"internal_port {service.get('internal_port')}, PORT {merged.get('PORT')}")
    check("fly.toml: kill_signal SIGTERM", doc.get("kill_signal") == "SIGTERM", f"{doc.get('kill_signal')}")
    kill = doc.get("kill_timeout")
    kill = duration_secs(kill) if isinstance(kill, str) else kill
    drain = drain_of(merged, defaults)
    check("fly.toml: kill_timeout covers HOTLINE_DRAIN_SECS + 10 s", kill is not None and kill >= drain + AFTER_DRAIN_SECS,
          f"{kill} vs {drain} + {AFTER_DRAIN_SECS}")
    check("fly.toml: kill_timeout within a shared-CPU machine's 300 s", kill is not None and kill <= 300, f"{kill}")
    checks = service.get("checks", [])
    paths = [c.get("path") for c in checks]
    check("fly.toml: http checks on /healthz", paths and all(p == "/healthz" for p in paths), f"{paths}")
    check("fly.toml: the checks use the service's port",
          all(c.get("port") in (None, service.get("internal_port")) for c in checks))
    conc = service.get("concurrency", {})
    calls = int(merged.get("HOTLINE_MAX_CALLS") or defaults.get("HOTLINE_MAX_CALLS", "1000"))
    check("fly.toml: concurrency in connections, hard limit ≥ soft limit ≥ 1, room for HOTLINE_MAX_CALLS",
          conc.get("type") == "connections" and conc.get("hard_limit", 0) >= conc.get("soft_limit", 0) >= 1
          and conc.get("hard_limit", 0) >= calls,
          f"{conc}, HOTLINE_MAX_CALLS {calls}")
    needs_token = merged.get("HOTLINE_REQUIRE_SIGNATURE") == "true"
    run_env = dict(merged)
    if needs_token:
        # A secret on Fly (`fly secrets set`); a stand-in here.
        run_env["TWILIO_AUTH_TOKEN"] = "stand-in-auth-token-for-the-check"
    run_recipe(binary, "fly.toml", run_env, paths)


def kubernetes(binary, known, defaults, image_uid):
    docs = {}
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            for version in K8S_VERSIONS:
                try:
                    kubernetes_validate.validate(doc, version or kubernetes_validate.utils.latest_version(), strict=True)
                    ok, detail = True, ""
                except kubernetes_validate.ValidationError as e:
                    ok, detail = False, str(e)[:300]
                except Exception as e:  # an unknown kind or version
                    ok, detail = False, f"{type(e).__name__}: {e}"[:300]
                label = version or kubernetes_validate.utils.latest_version()
                check(f"deploy/k8s/{path.name}: {doc['kind']} valid against Kubernetes {label} schemas (strict)", ok, detail)
            docs.setdefault(doc["kind"], []).append(doc)
    needed = ["Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ConfigMap", "Secret"]
    check("deploy/k8s: Deployment, Service, PodDisruptionBudget, HorizontalPodAutoscaler, ConfigMap, Secret",
          all(k in docs for k in needed), f"have {sorted(docs)}")
    if not all(k in docs for k in needed):
        return
    dep = docs["Deployment"][0]
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    container = spec["containers"][0]
    labels = pod["metadata"]["labels"]
    cm = {d["metadata"]["name"]: d.get("data", {}) for d in docs["ConfigMap"]}
    secrets = {d["metadata"]["name"]: d.get("stringData", {}) for d in docs["Secret"]}
    env = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(cm.get(source["configMapRef"]["name"], {}))
        if "secretRef" in source:
            env.update(secrets.get(source["secretRef"]["name"], {}))
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
    bad = unknown_vars(env, known)
    check("deploy/k8s: every variable in the ConfigMap and Secret is a hotline setting", not bad,
          f"unknown {bad}" if bad else "")

    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    port = env.get("PORT") or defaults.get("PORT", "8080")
    check("deploy/k8s: the ConfigMap's PORT is the containerPort", str(ports.get("http")) == str(port),
          f"PORT {port}, ports {ports}")

    def probe_port_ok(p):
        return p in ("http", ports.get("http"))

    live, ready = container.get("livenessProbe", {}), container.get("readinessProbe", {})
    check("deploy/k8s: liveness on /healthz", live.get("httpGet", {}).get("path") == "/healthz"
          and probe_port_ok(live["httpGet"].get("port")))
    check("deploy/k8s: readiness on /readyz", ready.get("httpGet", {}).get("path") == "/readyz"
          and probe_port_ok(ready["httpGet"].get("port")))
    pre = container.get("lifecycle", {}).get("preStop", {})
    sleep = 0
    if "exec" in pre:
        cmd = pre["exec"]["command"]
        sleep = int(cmd[1]) if cmd[0] in ("sleep", "/bin/sleep") and len(cmd) == 2 else -1
    elif "sleep" in pre:
        sleep = int(pre["sleep"]["seconds"])
    check("deploy/k8s: a preStop that waits for the endpoints to drop the pod", sleep > 0, f"{sleep} s")
    drain = drain_of(env, defaults)
    grace = spec.get("terminationGracePeriodSeconds", 30)
    check("deploy/k8s: terminationGracePeriodSeconds covers preStop + HOTLINE_DRAIN_SECS + 10 s",
          grace >= sleep + drain + AFTER_DRAIN_SECS, f"{grace} vs {sleep} + {drain} + {AFTER_DRAIN_SECS}")

    sc, csc = spec.get("securityContext", {}), container.get("securityContext", {})
    check("deploy/k8s: non-root as the image's uid, read-only root, no privilege escalation, no capabilities",
          sc.get("runAsNonRoot") is True and str(sc.get("runAsUser")) == str(image_uid)
          and csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False
          and csc.get("capabilities", {}).get("drop") == ["ALL"],
          f"runAsUser {sc.get('runAsUser')}, image uid {image_uid}")
    mounts = {m["mountPath"].rstrip("/"): m["name"] for m in container.get("volumeMounts", [])}

    def inside_mount(path):
        """A directory below (never at) a mounted volume: hotline creates it 0700."""
        parents = [m for m in mounts if path.startswith(m + "/")]
        return bool(parents) and path.rstrip("/") not in mounts

    for var in ("HOTLINE_DATA_DIR", "HOTLINE_CACHE_DIR"):
        check(f"deploy/k8s: {var} is a sub-directory of a writable volume", inside_mount(env.get(var, "")),
              f"{env.get(var)} in mounts {sorted(mounts)}")
    seeds = " ".join(" ".join(c.get("command", [])) for c in spec.get("initContainers", []))
    check("deploy/k8s: an init container seeds HOTLINE_CACHE_DIR from the image's precompiled cache",
          env.get("HOTLINE_CACHE_DIR", "?") in seeds and "/var/cache/hotline" in seeds)
    check("deploy/k8s: resources requested and memory limited",
          "requests" in container.get("resources", {}) and "memory" in container["resources"].get("limits", {}))

    svc = docs["Service"][0]
    check("deploy/k8s: the Service selects the pods and targets their port",
          all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
          and all(probe_port_ok(p["targetPort"]) for p in svc["spec"]["ports"]))
    pdb = docs["PodDisruptionBudget"][0]
    check("deploy/k8s: the PodDisruptionBudget selects the pods",
          all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()))
    hpa = docs["HorizontalPodAutoscaler"][0]
    metrics = hpa["spec"].get("metrics", [])
    pods_metric = [m["pods"] for m in metrics if m.get("type") == "Pods"]
    target = hpa["spec"]["scaleTargetRef"]
    check("deploy/k8s: the HPA (autoscaling/v2) scales the Deployment on a Pods metric",
          hpa["apiVersion"] == "autoscaling/v2" and target["kind"] == "Deployment"
          and target["name"] == dep["metadata"]["name"] and len(pods_metric) == 1)
    metric = pods_metric[0]["metric"]["name"] if pods_metric else None
    calls = int(env.get("HOTLINE_MAX_CALLS") or defaults.get("HOTLINE_MAX_CALLS", "1000"))
    average = float(pods_metric[0]["target"].get("averageValue", "0")) if pods_metric else 0
    check("deploy/k8s: the HPA's target is below HOTLINE_MAX_CALLS", 0 < average < calls, f"{average} of {calls}")
    annotations = pod["metadata"].get("annotations", {})
    scrape_path = annotations.get("prometheus.io/path", "/metrics")
    check("deploy/k8s: the scrape annotations name the container's port",
          annotations.get("prometheus.io/port") in (None, str(ports.get("http"))))

    def metric_exists(server):
        status, body = get(server.port, scrape_path)
        names = set(re.findall(r"^# TYPE (\S+) ", body, re.M))
        check(f"deploy/k8s: the HPA's metric {metric} is a series of the real /metrics", metric in names,
              f"{len(names)} series")

    run_env = {k: v for k, v in env.items() if k != "DATABASE_URL"}
    run_recipe(binary, "deploy/k8s", run_env, ["/healthz", "/readyz", scrape_path], metric_exists)


def replit(binary, known, defaults):
    doc = tomllib.loads((ROOT / ".replit").read_text())
    dep = doc.get("deployment", {})
    run = dep.get("run", [])
    run = run if isinstance(run, list) else run.split()
    check(".replit: [deployment] runs the release binary's `serve`",
          run[:2] == ["./target/release/hotline", "serve"], f"{run}")
    check(".replit: the run command names no port (hotline reads $PORT)", not any("port" in a.lower() for a in run))
    build = dep.get("build", [])
    build = build if isinstance(build, list) else build.split()
    check(".replit: [deployment] builds the release binary", build[:3] == ["cargo", "build", "--release"], f"{build}")
    check(".replit: deploymentTarget is a Reserved VM (gce) or Autoscale (cloudrun)",
          dep.get("deploymentTarget") in ("gce", "cloudrun"), f"{dep.get('deploymentTarget')}")
    env = {k: str(v) for k, v in doc.get("env", {}).items()}
    bad = unknown_vars(env, known, allowed=())
    check(".replit: every [env] variable is a hotline setting", not bad, f"unknown {bad}" if bad else "")
    port = env.get("PORT") or defaults.get("PORT", "8080")
    local = [str(p.get("localPort")) for p in doc.get("ports", [])]
    check(".replit: [[ports]] localPort is the port hotline listens on", local == [port], f"{local}, PORT {port}")
    check(".replit: no rust-stable module (Nix's rustc, without rustup, older than the pin)",
          not any("rust" in m for m in doc.get("modules", [])), f"{doc.get('modules')}")
    nix = (ROOT / "replit.nix").read_text() if (ROOT / "replit.nix").exists() else ""
    check("replit.nix: rustup (for rust-toolchain.toml's toolchain and target) and a C compiler",
          "pkgs.rustup" in nix and "pkgs.gcc" in nix)
    run_recipe(binary, ".replit", env, ["/healthz"])


def deploy_doc():
    """docs/deploy.md, the recipes' documentation: the whole page (it opens with `# Deploy`)."""
    path = ROOT / "docs" / "deploy.md"
    text = path.read_text() if path.exists() else ""
    section = text if text.startswith("# Deploy\n") else ""
    names = ["Dockerfile", "docker-compose.yml", "fly.toml", "deploy/k8s", ".replit", "scripts/check-deploy.py"]
    missing = [n for n in names if n not in section]
    check("docs/deploy.md: a Deploy page naming every recipe", bool(section) and not missing, f"missing {missing}" if missing else "")
    for platform in ["Docker", "Kubernetes", "Fly.io", "Cloud Run", "Railway", "Render", "Replit"]:
        check(f"docs/deploy.md: the grace-period table has {platform}", re.search(rf"^\| {re.escape(platform)}\b", section, re.M) is not None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "hotline"))
    args = parser.parse_args()
    binary = str(Path(args.binary).resolve())
    if not os.access(binary, os.X_OK):
        print(f"no hotline binary at {binary}: build it (cargo build --release) or pass --binary", file=sys.stderr)
        return 2
    known, defaults = known_variables(binary)
    KNOWN.update(known)
    check("hotline serve --help lists its settings", len(known) > 50, f"{len(known)} variables")
    image_env, _ = dockerfile(binary, known, defaults)
    uid = next((line.split()[1].split(":")[0] for line in (ROOT / "Dockerfile").read_text().splitlines()
                if line.startswith("USER ")), None)
    compose(binary, known, defaults, image_env)
    fly(binary, known, defaults, image_env)
    kubernetes(binary, known, defaults, uid)
    replit(binary, known, defaults)
    deploy_doc()
    failed = results.count(False)
    print(f"{results.count(True)} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""NATS, the event bus: rendered from the vendored official Helm chart (infra/k8s/charts,
through infra/k8s/nats with `kubectl kustomize --enable-helm`), one server in dev and a
cluster of three in staging and prod, and secured: one NATS user per service with the
subject permissions of infra/nats/permissions.json, passwords from Secrets.

  chart        the kustomizations render the pinned, vendored chart (no repo: never pulled),
               with its license; the rendered objects carry that chart's label; the image is
               the official nats image at a pinned tag, 2.10 or newer
  servers      dev: one, no cluster; staging, prod: three in a cluster whose routes name each
               server, one per node (required anti-affinity on the hostname), a budget that
               lets one go at a time; every variant: JetStream with its store on the claim
               each server mounts, fsync on every write (sync_interval: always)
  replicas     NATS_STREAM_REPLICAS of every service that uses the bus is the number of servers
  users        the rendered config's users are exactly permissions.json's (and users.yaml is
               what infra/k8s/nats/generate-users.py makes of it), no anonymous access; each
               password is a variable the server's env fills from the user's Secret, the same
               Secret key that user's Deployment reads as NATS_PASSWORD beside NATS_USER;
               every service given NATS_URL has a user; the stream and prefix are the ones
               permissions.json was written for
  config       the rendered config is valid for the pinned nats-server (`nats-server -t`,
               the binary scripts/install.sh builds), its variables set as the pod sets them
  network      the client port is reachable by the users' services alone, the monitor port
               by no pod, and the Service `nats` publishes the client port only
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from .common import (
    K8S,
    ROOT,
    Problems,
    configmaps,
    find,
    label,
    mutate,
    name_of,
    ns_of,
    objects,
    pod_spec,
    resolve_env,
    selects,
    split_image,
    the_deployment,
    workloads,
)

CHART_VERSION = "2.12.4"
CHART_DIR = K8S / "charts" / "nats" / CHART_VERSION
NATS_KUSTOMIZATIONS = (K8S / "nats" / "kustomization.yaml", K8S / "nats" / "single" / "kustomization.yaml")
PERMISSIONS = ROOT / "infra" / "nats" / "permissions.json"
GENERATOR = K8S / "nats" / "generate-users.py"
# Users that no Deployment connects as: the operator's (redrive, stream settings).
OPERATOR_USERS = {"admin"}
SERVERS = {"dev": 1, "staging": 3, "prod": 3}
MIN_SERVER = (2, 10)
CLIENT_PORT, CLUSTER_PORT, MONITOR_PORT = 4222, 6222, 8222
HOSTNAME = "kubernetes.io/hostname"


def generator():
    """infra/k8s/nats/generate-users.py as a module."""
    spec = importlib.util.spec_from_file_location("generate_users", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_permissions(path: Path | None = None) -> dict:
    return json.loads((path or PERMISSIONS).read_text())


# --- the chart -----------------------------------------------------------------------------


def load_kustomizations() -> dict[Path, dict]:
    return {path: yaml.safe_load(path.read_text()) for path in NATS_KUSTOMIZATIONS}


CHART_PIN = K8S / "charts" / "Chart.yaml"
CHART_REPO = "https://nats-io.github.io/k8s/helm/charts/"


def check_chart(
    kustomizations: dict[Path, dict] | None = None, chart_dir: Path = CHART_DIR, pin: dict | None = None
) -> Problems:
    """Each NATS kustomization renders the vendored chart at the pinned version, from no repo,
    and the dependency Dependabot watches (charts/Chart.yaml) names that version."""
    problems: Problems = []
    pin = pin if pin is not None else yaml.safe_load(CHART_PIN.read_text()) if CHART_PIN.exists() else {}
    watched = [d for d in pin.get("dependencies") or [] if d.get("name") == "nats"]
    if len(watched) != 1 or str(watched[0].get("version")) != CHART_VERSION or watched[0].get("repository") != CHART_REPO:
        problems.append(
            f"{CHART_PIN.relative_to(ROOT)}: its nats dependency {watched} is not nats {CHART_VERSION} from {CHART_REPO}: "
            "vendor that version (infra/k8s/charts/README.md) or set the pin back"
        )
    chart_yaml = chart_dir / "nats" / "Chart.yaml"
    if not chart_yaml.exists():
        return [f"{chart_yaml.relative_to(ROOT)} is missing: the chart is not vendored"]
    chart = yaml.safe_load(chart_yaml.read_text())
    if str(chart.get("version")) != CHART_VERSION or chart.get("name") != "nats":
        problems.append(f"{chart_yaml.relative_to(ROOT)}: chart {chart.get('name')} {chart.get('version')}, want nats {CHART_VERSION}")
    license_file = chart_dir / "LICENSE"
    if not license_file.exists() or "Apache License" not in license_file.read_text():
        problems.append(f"{license_file.relative_to(ROOT)}: the chart's license (Apache-2.0) is not beside it")
    for path, k in (kustomizations or load_kustomizations()).items():
        where = path.relative_to(ROOT)
        charts = k.get("helmCharts") or []
        if len(charts) != 1:
            problems.append(f"{where}: {len(charts)} helmCharts entries, want the NATS chart once")
            continue
        c = charts[0]
        if c.get("name") != "nats" or str(c.get("version")) != CHART_VERSION:
            problems.append(f"{where}: renders {c.get('name')} {c.get('version')}, want nats {CHART_VERSION}")
        if c.get("repo"):
            problems.append(f"{where}: pulls the chart from {c['repo']}: render the vendored copy (no repo)")
        home = (path.parent / ((k.get("helmGlobals") or {}).get("chartHome") or "charts")).resolve()
        if home != chart_dir.resolve():
            problems.append(f"{where}: chartHome is {home}, want {chart_dir.relative_to(ROOT)}")
        if c.get("releaseName") != "nats":
            problems.append(f"{where}: releaseName {c.get('releaseName')!r}: the Service must stay `nats` (NATS_URL)")
    return problems


# --- the rendered objects --------------------------------------------------------------------


def nats_statefulset(docs: list[dict]) -> tuple[dict | None, dict | None]:
    found = [d for d in objects(docs, "StatefulSet") if name_of(d) == "nats"]
    if len(found) != 1:
        return None, None
    for c in pod_spec(found[0]).get("containers") or []:
        if c.get("name") == "nats":
            return found[0], c
    return found[0], None


def parse_config(text: str) -> dict:
    """The chart's nats.conf: JSON but for the variables it leaves unquoted ($SERVER_NAME,
    the passwords), which become strings here."""
    quoted = re.sub(r'(:\s*)(\$[A-Za-z_][A-Za-z0-9_]*)(\s*[,}\n])', r'\1"\2"\3', text)
    return json.loads(quoted)


def nats_config(docs: list[dict], sts: dict, container: dict) -> tuple[dict | None, str, Problems]:
    """The config file the server reads (--config), parsed, and its text."""
    args = (container.get("command") or []) + (container.get("args") or [])
    path = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--config", "-c")), None)
    path = path or next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), None)
    if not path:
        return None, "", ["nats: the server is given no --config"]
    directory, _, filename = path.rpartition("/")
    mounts = {m.get("mountPath"): m.get("name") for m in container.get("volumeMounts") or []}
    volume = mounts.get(directory)
    cm_name = next((v.get("configMap", {}).get("name") for v in pod_spec(sts).get("volumes") or [] if v.get("name") == volume), None)
    data = configmaps(docs).get((ns_of(sts), cm_name))
    if data is None or filename not in data:
        return None, "", [f"nats: its config {path} is not in a ConfigMap of the overlay"]
    try:
        return parse_config(data[filename]), data[filename], []
    except json.JSONDecodeError as err:
        return None, data[filename], [f"nats: {path} does not parse ({err})"]


def version_of(tag: str) -> tuple[int, ...] | None:
    m = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", tag)
    return tuple(int(g or 0) for g in m.groups()) if m else None


def check_servers(docs: list[dict], overlay: str) -> Problems:
    """The chart's objects, the servers, JetStream and its store, the cluster."""
    problems: Problems = []
    sts, container = nats_statefulset(docs)
    if sts is None or container is None:
        return ["no StatefulSet nats with a container nats"]
    for doc in docs:
        chart = (doc.get("metadata", {}).get("labels") or {}).get("helm.sh/chart")
        if chart is not None and chart != f"nats-{CHART_VERSION}":
            problems.append(f"{label(doc)}: rendered from chart {chart}, want nats-{CHART_VERSION}")
    for doc in objects(docs, "StatefulSet") + objects(docs, "Service"):
        if name_of(doc).startswith("nats") and (doc.get("metadata", {}).get("labels") or {}).get("helm.sh/chart") is None:
            problems.append(f"{label(doc)}: not rendered from the NATS chart (no helm.sh/chart label)")
    image = container.get("image", "")
    name, tag, _digest = split_image(image)
    if name not in ("nats", "docker.io/library/nats", "library/nats"):
        problems.append(f"nats: image {image} is not the official nats image")
    v = version_of(tag)
    if v is None or v[:2] < MIN_SERVER:
        problems.append(f"nats: image {image}: want a pinned tag of NATS {MIN_SERVER[0]}.{MIN_SERVER[1]} or newer")
    app_ns = {ns_of(d) for d in workloads(docs)}
    for doc in docs:
        if "nats" in name_of(doc) and kind_of_namespaced(doc) and {ns_of(doc)} != app_ns:
            problems.append(f"{label(doc)}: in namespace {ns_of(doc) or '(none)'}, the app's workloads in {sorted(app_ns)}")
    want = SERVERS[overlay]
    replicas = sts.get("spec", {}).get("replicas", 1)
    if replicas != want:
        problems.append(f"nats: {replicas} servers in {overlay}, want {want}")
    config, _text, config_problems = nats_config(docs, sts, container)
    problems += config_problems
    if config is None:
        return problems
    js = config.get("jetstream")
    if not isinstance(js, dict):
        problems.append("nats: JetStream is not enabled (no jetstream block)")
    else:
        if str(js.get("sync_interval")) != "always":
            problems.append(f"nats: jetstream sync_interval is {js.get('sync_interval')!r}: an acknowledged event must survive a node crash (always)")
        store = js.get("store_dir")
        claims = {t.get("metadata", {}).get("name"): t for t in sts.get("spec", {}).get("volumeClaimTemplates") or []}
        mount = next((m for m in container.get("volumeMounts") or [] if m.get("mountPath") == store), None)
        if store is None or mount is None or mount.get("name") not in claims:
            problems.append(f"nats: the JetStream store ({store}) is not on a volume claim of the StatefulSet")
        elif not ((claims[mount["name"]].get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage"):
            problems.append(f"nats: the claim {mount['name']} requests no storage size")
        if js.get("max_file_store") is not None:
            problems.append("nats: max_file_store is set: the server sizes its store from the volume each overlay gives it")
    cluster = config.get("cluster")
    spec = pod_spec(sts)
    if want == 1:
        if cluster:
            problems.append(f"nats: a cluster block with one server in {overlay}")
    else:
        routes = (cluster or {}).get("routes") or []
        headless = sts.get("spec", {}).get("serviceName")
        hosts = sorted(re.sub(r"^nats://([^:/@]+@)?([^:/]+):\d+$", r"\2", r) for r in routes)
        want_hosts = sorted(f"nats-{i}.{headless}" for i in range(want))
        if not cluster or hosts != want_hosts or not cluster.get("name"):
            problems.append(f"nats: {overlay}'s cluster routes are {routes}, want a named cluster routing to {want_hosts}")
        port = (cluster or {}).get("port")
        if port not in [p.get("containerPort") for p in container.get("ports") or [] if p.get("name") == "cluster"]:
            problems.append("nats: the cluster port is not a container port named cluster")
        terms = (((spec.get("affinity") or {}).get("podAntiAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")) or []
        pod_labels = (sts["spec"].get("template", {}).get("metadata") or {}).get("labels") or {}
        if not any(t.get("topologyKey") == HOSTNAME and selects(t.get("labelSelector") or {}, pod_labels) for t in terms):
            problems.append(f"nats: {overlay}'s servers may share a node (no required podAntiAffinity on {HOSTNAME} selecting its pods)")
        pdbs = [p for p in objects(docs, "PodDisruptionBudget") if ns_of(p) == ns_of(sts) and selects((p.get("spec") or {}).get("selector") or {}, pod_labels)]
        if len(pdbs) != 1 or str((pdbs[0].get("spec") or {}).get("maxUnavailable")) != "1":
            problems.append("nats: want one PodDisruptionBudget with maxUnavailable 1 (a drain takes one server at a time)")
    # Non-root, resources, probes and the rest: the workloads check, as for every pod.
    return problems


def kind_of_namespaced(doc: dict) -> bool:
    return doc.get("kind") not in ("Namespace", "ClusterIssuer", "ClusterRole", "ClusterRoleBinding")


def check_stream_replicas(docs: list[dict], overlay: str, env_rows) -> Problems:
    """Every service that uses the bus keeps each event on every server."""
    problems: Problems = []
    sts, _ = nats_statefulset(docs)
    servers = (sts or {}).get("spec", {}).get("replicas", 1)
    cms = configmaps(docs)
    for service, rows in env_rows.items():
        if "NATS_URL" not in {r.var for r in rows}:
            continue
        doc, container, missing = the_deployment(docs, service)
        problems += missing
        if container is None:
            continue
        env, _ = resolve_env(doc, container, cms)
        got = str(env.get("NATS_STREAM_REPLICAS", {}).get("value", ""))
        if got != str(servers):
            problems.append(f"{service}: NATS_STREAM_REPLICAS={got or '(unset)'} in {overlay}, which runs {servers} NATS server{'s' if servers != 1 else ''}")
    return problems


# --- users ------------------------------------------------------------------------------------


def check_users_file(permissions: dict, users_yaml: str | None = None) -> Problems:
    """infra/k8s/nats/single/users.yaml is what generate-users.py makes of permissions.json."""
    gen = generator()
    text = gen.USERS_VALUES.read_text() if users_yaml is None else users_yaml
    if text != gen.render(permissions):
        return [f"{gen.USERS_VALUES.relative_to(ROOT)} is stale: run python3 {GENERATOR.relative_to(ROOT)}"]
    return []


def check_users(docs: list[dict], env_rows, permissions: dict) -> Problems:
    problems: Problems = []
    gen = generator()
    sts, container = nats_statefulset(docs)
    if sts is None or container is None:
        return ["no StatefulSet nats with a container nats"]
    config, _text, config_problems = nats_config(docs, sts, container)
    if config is None:
        return config_problems
    cms = configmaps(docs)
    for key in ("no_auth_user",):
        if key in config:
            problems.append(f"nats: {key} is set: a client without credentials would be let in")
    auth = config.get("authorization") or {}
    if set(auth) - {"users"} or not auth.get("users"):
        problems.append(f"nats: authorization has {sorted(auth)}, want users alone (no shared user, token or anonymous access)")
    rendered = {u.get("user"): u for u in auth.get("users") or []}
    want = permissions.get("users") or {}
    if set(rendered) != set(want):
        problems.append(f"nats: the config's users are {sorted(map(str, rendered))}, permissions.json's {sorted(want)}")
    server_env, _ = resolve_env(sts, container, cms)
    for user, perms in sorted(want.items()):
        got = rendered.get(user)
        if got is None:
            continue
        for direction in ("publish", "subscribe"):
            rule = (got.get("permissions") or {}).get(direction) or {}
            if not isinstance(rule, dict) or set(rule) - {"allow"}:
                problems.append(f"nats: user {user}'s {direction} permissions are not an allow list (everything else denied)")
                continue
            allowed, wanted = set(rule.get("allow") or []), set(perms.get(direction) or [])
            if allowed - wanted:
                problems.append(f"nats: user {user} may {direction} {sorted(allowed - wanted)}, beyond permissions.json")
            if wanted - allowed:
                problems.append(f"nats: user {user} may not {direction} {sorted(wanted - allowed)}, which permissions.json allows")
        var = gen.password_var(user)
        if got.get("password") != f"${var}":
            problems.append(f"nats: user {user}'s password is not the variable ${var} (a password in the config would be in the repo)")
        src = server_env.get(var)
        if not src or src["from"] != "secret" or src["ref"] != gen.secret_name(user) or src["key"] != gen.SECRET_KEY or src["optional"]:
            problems.append(f"nats: the server's {var} is not Secret {gen.secret_name(user)} key {gen.SECRET_KEY}")
        if user in OPERATOR_USERS:
            continue
        doc, svc, missing = the_deployment(docs, user)
        if svc is None:
            problems.append(f"nats: user {user} is neither a Deployment nor an operator user")
            continue
        env, _ = resolve_env(doc, svc, cms)
        if env.get("NATS_USER", {}).get("value") != user or env.get("NATS_USER", {}).get("from") not in ("literal", "configmap"):
            problems.append(f"{user}: NATS_USER is {env.get('NATS_USER', {}).get('value')!r}, want {user!r}")
        pw = env.get("NATS_PASSWORD")
        if not pw or pw["from"] != "secret" or pw["ref"] != gen.secret_name(user) or pw["key"] != gen.SECRET_KEY or pw["optional"]:
            problems.append(f"{user}: NATS_PASSWORD is not from Secret {gen.secret_name(user)} key {gen.SECRET_KEY}")
    for service, rows in env_rows.items():
        if "NATS_URL" in {r.var for r in rows} and service not in want:
            problems.append(f"{service} gets NATS_URL but has no NATS user in permissions.json")
    for (_, cm), data in cms.items():
        if cm.startswith("gittix-config"):
            for key, field in (("EVENTS_STREAM", "stream"), ("EVENTS_SUBJECT_PREFIX", "prefix")):
                if field in permissions and data.get(key) != permissions[field]:
                    problems.append(f"{key}={data.get(key)!r}, permissions.json is written for {field} {permissions[field]!r}")
    return problems


def check_server_accepts(docs: list[dict]) -> Problems:
    """`nats-server -t` on the rendered config, its variables as the pod sets them (a
    placeholder for each password)."""
    nats_server = shutil.which("nats-server")
    if nats_server is None:
        return ["nats-server is not on PATH: scripts/install.sh builds it (NATS_SERVER_VERSION in scripts/lib.sh)"]
    sts, container = nats_statefulset(docs)
    if sts is None or container is None:
        return ["no StatefulSet nats with a container nats"]
    _config, text, problems = nats_config(docs, sts, container)
    if problems:
        return problems
    env = {"PATH": os.environ.get("PATH", "")}
    for item in container.get("env") or []:
        env[item["name"]] = item.get("value", "placeholder-from-" + ("secret" if "valueFrom" in item else "pod"))
    env["SERVER_NAME"] = "nats-0"
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "nats.conf"
        conf.write_text(text)
        proc = subprocess.run([nats_server, "-t", "-c", str(conf)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return [f"nats-server -t: {(proc.stderr or proc.stdout).strip()}"]
    return []


# --- network ----------------------------------------------------------------------------------


def check_nats_network(docs: list[dict], permissions: dict) -> Problems:
    """Who may reach the servers' ports: the users' services the client port, nobody else;
    no pod the monitor port; the Service publishes the client port alone."""
    from .network import allowed_flows, cluster_of  # the network check's model of the policies

    problems: Problems = []
    cluster = cluster_of(docs)
    flows = allowed_flows(cluster, objects(docs, "NetworkPolicy"), False)
    users = set(permissions.get("users") or {})
    # The servers' side alone: what their policy takes, whatever the sender's allows.
    taken = {src for (src, dst, port, proto), (eg, ing) in flows.items() if dst == "nats" and port == CLIENT_PORT and ing}
    if taken - users:
        problems.append(f"nats: the client port takes {sorted(taken - users)}, which have no NATS user")
    clients = {src for (src, dst, port, proto), (eg, ing) in flows.items() if dst == "nats" and port == CLIENT_PORT and eg and ing}
    services = {u for u in users if u not in OPERATOR_USERS}
    if services - clients:
        problems.append(f"nats: the client port is closed to {sorted(services - clients)}, whose user it is")
    for (src, dst, port, proto), (eg, ing) in sorted(flows.items()):
        if dst == "nats" and port == MONITOR_PORT and ing:
            problems.append(f"nats: the monitor port takes {src} (it serves the kubelet's probes alone)")
        if dst == "nats" and port == CLUSTER_PORT and ing and src != "nats":
            problems.append(f"nats: the cluster port takes {src}")
    for svc in find(docs, "Service", "nats"):
        ports = [(p.get("port"), p.get("targetPort")) for p in (svc.get("spec") or {}).get("ports") or []]
        if [p for p, _ in ports] != [CLIENT_PORT]:
            problems.append(f"{label(svc)}: publishes ports {[p for p, _ in ports]}, want the client port {CLIENT_PORT} alone")
    return problems


# --- where else the overlays are rendered -----------------------------------------------------

LIB_SH = ROOT / "scripts" / "lib.sh"
DEPLOY_YML = ROOT / ".github" / "workflows" / "deploy.yml"
SKAFFOLD_YML = ROOT / "skaffold.yaml"


def check_helm_renders(deploy: dict | None = None, skaffold: dict | None = None, lib_sh: str | None = None) -> Problems:
    """deploy.yml and skaffold.yaml render the overlays with helm enabled; every deploy job
    that renders installs the helm scripts/install.sh builds (HELM_VERSION)."""
    problems: Problems = []
    deploy = deploy if deploy is not None else yaml.safe_load(DEPLOY_YML.read_text())
    skaffold = skaffold if skaffold is not None else yaml.safe_load(SKAFFOLD_YML.read_text())
    m = re.search(r'^HELM_VERSION="?(v[^"\s]+)"?', LIB_SH.read_text() if lib_sh is None else lib_sh, re.M)
    if not m:
        return ["scripts/lib.sh sets no HELM_VERSION"]
    helm_version = m.group(1)
    for job_name, job in (deploy.get("jobs") or {}).items():
        steps = job.get("steps") or []
        runs = [st.get("run") or "" for st in steps]
        renders = [line for r in runs for line in r.splitlines() if "kubectl kustomize" in line]
        if not renders:
            continue
        for line in renders:
            if "--enable-helm" not in line:
                problems.append(f"deploy.yml job {job_name}: `{line.strip()}` renders without --enable-helm")
        helm = [st for st in steps if str(st.get("uses", "")).startswith("azure/setup-helm@")]
        if len(helm) != 1 or str((helm[0].get("with") or {}).get("version")) != helm_version:
            got = [(h.get("with") or {}).get("version") for h in helm]
            problems.append(f"deploy.yml job {job_name}: renders with helm {got or 'never installed'}, want azure/setup-helm with version {helm_version} (scripts/lib.sh)")
    blocks = [("manifests", skaffold.get("manifests") or {})]
    blocks += [(f"profile {p.get('name')}", p.get("manifests") or {}) for p in skaffold.get("profiles") or [] if "manifests" in p]
    for where, manifests in blocks:
        k = manifests.get("kustomize")
        if k is not None and "--enable-helm" not in (k.get("buildArgs") or []):
            problems.append(f"skaffold.yaml {where}: kustomize without buildArgs --enable-helm")
    return problems


# --- the password-reset subject ---------------------------------------------------------------

RESET_EVENT = "user.password_reset_requested"
# The one service that may read it (its events carry a reset token), besides the operator.
RESET_READER = "notifications"


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether a NATS subject pattern (with * and >) covers a subject."""
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


def check_reset_subject(permissions: dict) -> Problems:
    """The reset subject reaches notifications alone: no other service user may subscribe to
    it, create a consumer that could deliver it, or read stream messages directly."""
    problems: Problems = []
    stream, prefix = permissions.get("stream", "GITTIX"), permissions.get("prefix", "gittix")
    subject = f"{prefix}.{RESET_EVENT}"
    api = "$JS.API"
    reading = [
        ("subscribe", subject),
        ("publish", f"{api}.CONSUMER.CREATE.{stream}"),
        ("publish", f"{api}.CONSUMER.CREATE.{stream}.any"),
        ("publish", f"{api}.CONSUMER.CREATE.{stream}.any.{subject}"),
        ("publish", f"{api}.CONSUMER.CREATE.{stream}.any.{prefix}.>"),
        ("publish", f"{api}.CONSUMER.DURABLE.CREATE.{stream}.any"),
        ("publish", f"{api}.STREAM.MSG.GET.{stream}"),
        ("publish", f"{api}.DIRECT.GET.{stream}"),
        ("publish", f"{api}.DIRECT.GET.{stream}.{subject}"),
    ]
    users = permissions.get("users") or {}
    for user, perms in sorted(users.items()):
        if user in OPERATOR_USERS or user == RESET_READER:
            continue
        for direction, probe in reading:
            hits = [p for p in perms.get(direction) or [] if subject_matches(p, probe)]
            if hits:
                problems.append(f"{user} may {direction} {probe} ({hits[0]}): it could read {subject}, which notifications alone reads")
    reader = users.get(RESET_READER) or {}
    creates = re.compile(rf"^{re.escape(api)}\.CONSUMER\.CREATE\.{re.escape(stream)}\.[^.*>]+\.{re.escape(subject)}$")
    if not any(creates.match(p) for p in reader.get("publish") or []):
        problems.append(f"{RESET_READER} may not create its consumer of {subject}")
    return problems


# --- self-tests -------------------------------------------------------------------------------


def self_tests(dev: list[dict], staging: list[dict], prod: list[dict], env_rows, permissions: dict, network_check):
    """(name, thunk) pairs: each check of this module on a broken copy, which it must fail.
    network_check(docs) is the overlay's NetworkPolicy check."""
    import copy

    from .common import RenderError, render

    def nats_container(d):
        return next(c for c in pod_spec(d)["containers"] if c["name"] == "nats")

    def conf(docs, edit):
        """A copy whose nats.conf is edited (parsed, changed, written back as JSON)."""
        def fn(cm):
            config = parse_config(cm["data"]["nats.conf"])
            edit(config)
            text = json.dumps(config, indent=2)
            cm["data"]["nats.conf"] = re.sub(r'"(\$[A-Za-z_][A-Za-z0-9_]*)"', r"\1", text)
        return mutate(docs, "ConfigMap", "nats-config", fn)

    def user(name):
        def get(config):
            return next(u for u in config["authorization"]["users"] if u["user"] == name)
        return get

    def cm_set(docs, key, value):
        name = next(name_of(d) for d in objects(docs, "ConfigMap") if name_of(d).startswith("gittix-config"))
        return mutate(docs, "ConfigMap", name, lambda d: d["data"].update({key: value}))

    def env_edit(service, fn):
        def edit(d):
            c = next(c for c in pod_spec(d)["containers"] if c["name"] == service)
            fn(c["env"])
        return edit

    def drop(var):
        return lambda env: env.__setitem__(slice(None), [e for e in env if e["name"] != var])

    def secret_to(var, secret):
        def fn(env):
            for e in env:
                if e["name"] == var:
                    e["valueFrom"]["secretKeyRef"]["name"] = secret
        return fn

    def kustomization_edit(edit):
        ks = load_kustomizations()
        edit(next(iter(ks.values()))["helmCharts"][0])
        return ks

    def render_without_chart() -> Problems:
        with tempfile.TemporaryDirectory(prefix="gittix-nochart-") as tmp:
            copy_dir = Path(tmp) / "k8s"
            shutil.copytree(K8S, copy_dir)
            shutil.rmtree(copy_dir / "charts" / "nats" / CHART_VERSION / "nats")
            try:
                render(copy_dir / "overlays" / "dev")
            except RenderError as err:
                return [f"refused: {str(err).splitlines()[-1][:120]}"]
        return []

    def perms_edit(edit):
        p = copy.deepcopy(permissions)
        edit(p["users"])
        return p

    def stale_users() -> Problems:
        return check_users_file(perms_edit(lambda u: u["tickets"]["publish"].append(f"{permissions.get('prefix', 'gittix')}.order.created")))

    def policy_values(edit):
        def fn(d):
            for peer in d["spec"]["ingress"][0]["from"]:
                for e in (peer.get("podSelector") or {}).get("matchExpressions") or []:
                    edit(e["values"])
        return fn

    def spread_off(d):
        pod_spec(d).pop("affinity", None)

    def deploy_edit(edit):
        d = yaml.safe_load(DEPLOY_YML.read_text())
        edit(d)
        return check_helm_renders(deploy=d)

    def skaffold_edit(edit):
        d = yaml.safe_load(SKAFFOLD_YML.read_text())
        edit(d)
        return check_helm_renders(skaffold=d)

    def steps_of(d):
        return [st for j in d["jobs"].values() for st in j.get("steps") or []]

    def helm_version(v):
        def fn(d):
            for st in steps_of(d):
                if str(st.get("uses", "")).startswith("azure/setup-helm@"):
                    st["with"]["version"] = v
        return fn

    def no_enable_helm(d):
        for st in steps_of(d):
            if "run" in st:
                st["run"] = st["run"].replace("kubectl kustomize --enable-helm", "kubectl kustomize")

    def prod_profile(d):
        return next(p for p in d["profiles"] if p["name"] == "prod")

    reset = f"{permissions.get('prefix', 'gittix')}.{RESET_EVENT}"
    return [
        ("nats: deploy.yml installs another helm than scripts/lib.sh pins", lambda: deploy_edit(helm_version("v3.14.0"))),
        ("nats: deploy.yml renders without --enable-helm", lambda: deploy_edit(no_enable_helm)),
        ("nats: skaffold's prod profile renders without --enable-helm", lambda: skaffold_edit(lambda d: prod_profile(d)["manifests"]["kustomize"].pop("buildArgs"))),
        ("nats: the chart pulled from a repository", lambda: check_chart(kustomization_edit(lambda c: c.update(repo="https://nats-io.github.io/k8s/helm/charts/")))),
        ("nats: another chart version than the vendored one", lambda: check_chart(kustomization_edit(lambda c: c.update(version="1.3.16")))),
        ("nats: Dependabot's pin bumped, the vendored chart not", lambda: check_chart(pin={"dependencies": [{"name": "nats", "version": "2.12.5", "repository": CHART_REPO}]})),
        ("nats: the vendored chart removed (the render must not fetch it)", render_without_chart),
        ("nats: a NATS server older than 2.10", lambda: check_servers(mutate(dev, "StatefulSet", "nats", lambda d: nats_container(d).update(image="nats:2.9.25-alpine")), "dev")),
        ("nats: one server in prod", lambda: check_servers(mutate(prod, "StatefulSet", "nats", lambda d: d["spec"].update(replicas=1)), "prod")),
        ("nats: staging's servers not in a cluster", lambda: check_servers(conf(staging, lambda c: c.pop("cluster")), "staging")),
        ("nats: a route to a fourth server (prod)", lambda: check_servers(conf(prod, lambda c: c["cluster"]["routes"].append("nats://nats-3.nats-headless:6222")), "prod")),
        ("nats: no fsync on every write (dev)", lambda: check_servers(conf(dev, lambda c: c["jetstream"].pop("sync_interval")), "dev")),
        ("nats: the JetStream store off the volume (prod)", lambda: check_servers(conf(prod, lambda c: c["jetstream"].update(store_dir="/tmp/js")), "prod")),
        ("nats: JetStream off (staging)", lambda: check_servers(conf(staging, lambda c: c.pop("jetstream")), "staging")),
        ("nats: prod's servers free to share a node", lambda: check_servers(mutate(prod, "StatefulSet", "nats", spread_off), "prod")),
        ("nats: a budget letting two servers go at once", lambda: check_servers(mutate(prod, "PodDisruptionBudget", "nats", lambda d: d["spec"].update(maxUnavailable=2)), "prod")),
        ("nats: prod's NATS outside the app's namespace", lambda: check_servers(mutate(prod, "Service", "nats", lambda d: d["metadata"].pop("namespace")), "prod")),
        ("nats: one copy of each event in prod", lambda: check_stream_replicas(cm_set(prod, "NATS_STREAM_REPLICAS", "1"), "prod", env_rows)),
        ("nats: three copies with dev's one server", lambda: check_stream_replicas(cm_set(dev, "NATS_STREAM_REPLICAS", "3"), "dev", env_rows)),
        ("nats: tickets may publish order.created (config)", lambda: check_users(conf(prod, lambda c: user("tickets")(c)["permissions"]["publish"]["allow"].append(f"{permissions.get('prefix', 'gittix')}.order.created")), env_rows, permissions)),
        ("nats: a deny list beside the allow list", lambda: check_users(conf(dev, lambda c: user("orders")(c)["permissions"]["subscribe"].update(deny=["x"])), env_rows, permissions)),
        ("nats: notifications' user missing", lambda: check_users(conf(staging, lambda c: c["authorization"]["users"].remove(user("notifications")(c))), env_rows, permissions)),
        ("nats: a password written in the config", lambda: check_users(conf(dev, lambda c: user("auth")(c).update(password="hunter2")), env_rows, permissions)),
        ("nats: anonymous clients let in (no_auth_user)", lambda: check_users(conf(dev, lambda c: c.update(no_auth_user="auth")), env_rows, permissions)),
        ("nats: orders' NATS_PASSWORD from tickets' Secret", lambda: check_users(mutate(prod, "Deployment", "orders", env_edit("orders", secret_to("NATS_PASSWORD", "nats-tickets"))), env_rows, permissions)),
        ("nats: expiration without NATS_USER", lambda: check_users(mutate(dev, "Deployment", "expiration", env_edit("expiration", drop("NATS_USER"))), env_rows, permissions)),
        ("nats: the server's payments password from another Secret", lambda: check_users(mutate(prod, "StatefulSet", "nats", env_edit("nats", secret_to("NATS_PASSWORD_PAYMENTS", "nats-orders"))), env_rows, permissions)),
        ("nats: permissions.json with a user the config lacks", lambda: check_users(dev, env_rows, perms_edit(lambda u: u.update(reports={"publish": [], "subscribe": []})))),
        ("nats: users.yaml stale against permissions.json", stale_users),
        ("nats: tickets may subscribe to the reset subject", lambda: check_reset_subject(perms_edit(lambda u: u["tickets"]["subscribe"].append(reset)))),
        ("nats: orders may create an unfiltered consumer", lambda: check_reset_subject(perms_edit(lambda u: u["orders"]["publish"].append(f"$JS.API.CONSUMER.CREATE.{permissions.get('stream', 'GITTIX')}.>")))),
        ("nats: notifications cannot consume the reset subject", lambda: check_reset_subject(perms_edit(lambda u: u["notifications"].update(publish=[p for p in u["notifications"]["publish"] if not p.endswith(reset)])))),
        ("nats: the server missing a password variable (nats-server -t)", lambda: check_server_accepts(mutate(dev, "StatefulSet", "nats", env_edit("nats", drop("NATS_PASSWORD_AUTH"))))),
        ("nats: the client port open to the client", lambda: check_nats_network(mutate(dev, "NetworkPolicy", "nats", policy_values(lambda v: v.append("client"))), permissions)),
        ("nats: the client port closed to payments", lambda: check_nats_network(mutate(staging, "NetworkPolicy", "nats", policy_values(lambda v: v.remove("payments"))), permissions)),
        ("nats: the monitor port open to the services", lambda: check_nats_network(mutate(prod, "NetworkPolicy", "nats", lambda d: d["spec"]["ingress"][0]["ports"].append({"protocol": "TCP", "port": MONITOR_PORT})), permissions)),
        ("nats: the cluster port open to the services", lambda: check_nats_network(mutate(prod, "NetworkPolicy", "nats", lambda d: d["spec"]["ingress"][0]["ports"].append({"protocol": "TCP", "port": CLUSTER_PORT})), permissions)),
        ("nats: the Service publishing the monitor port", lambda: check_nats_network(mutate(dev, "Service", "nats", lambda d: d["spec"]["ports"].append({"name": "monitor", "port": MONITOR_PORT, "targetPort": "monitor"})), permissions)),
        ("network: the NATS cluster's routes denied (prod)", network_check(mutate(prod, "NetworkPolicy", "nats-cluster", lambda d: d["spec"].pop("egress")))),
    ]

#!/usr/bin/env python3
"""Offline checks of everything that deploys GitTix: no cluster, no container engine.

Run by scripts/test.d/infra.sh (which provides the pinned tools on PATH and the Python
packages of infra/validate/requirements.txt); prints one line per check and ends with
`infra: N passed, M failed`, exiting non-zero when anything failed.

What is checked (docs/DEPLOY.md, "What make test checks", says why):
  render / schema   every overlay renders with `kubectl kustomize`, and every object is
                    valid for Kubernetes K8S_VERSION (kubernetes-validate, strict), the
                    cert-manager ClusterIssuers against schemas/cert-manager-clusterissuer.json
  routes            each overlay's Ingress routes exactly infra/routes.tsv
  env               every required variable of infra/service-env.tsv is set on its
                    service's Deployment, secrets come from their Secret, URLs name Services
  workloads         probes, resources, security contexts, pinned images, data stores
  release           staging and prod with images set as the deploy workflow sets them: TLS,
                    issuers, hosts, the DigitalOcean load balancer
  skaffold          skaffold.yaml against the skaffold/v4beta13 schema, plus its content
  dockerfile        hadolint and the image rules; .dockerignore keeps the workspace
  workflows         actionlint (with shellcheck) and what test.yml and deploy.yml must do
  monitoring        infra/monitoring: the alerting rules (a PrometheusRule) and the Grafana
                    dashboard read only metrics the Rust code exports; the PodMonitor and
                    the service-down alert cover exactly the pods annotated for scraping
  selftest          each check above, fed a deliberately broken copy, must fail
"""

from __future__ import annotations

import atexit
import copy
import fnmatch
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Callable, Iterable

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
OVERLAYS = ("dev", "staging", "prod")
# The Kubernetes version the manifests must be valid for: the oldest we support (kind,
# minikube and DigitalOcean all offer it or newer).
K8S_VERSION = "1.33"
ROUTES_TSV = ROOT / "infra" / "routes.tsv"
SERVICE_ENV_TSV = ROOT / "infra" / "service-env.tsv"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
SKAFFOLD_SCHEMA = SCHEMAS / "skaffold-v4beta13.json"
SHARED_SKAFFOLD_SCHEMA = ROOT.parent / "shared" / "schemas" / "skaffold-v4beta13.json"
CLUSTER_ISSUER_SCHEMA = SCHEMAS / "cert-manager-clusterissuer.json"
PROMETHEUS_RULE_SCHEMA = SCHEMAS / "monitoring-prometheusrule.json"
MONITORING = ROOT / "infra" / "monitoring"
ALERTS = MONITORING / "alerts.yaml"
DASHBOARD = MONITORING / "dashboard.json"
POD_MONITOR = MONITORING / "podmonitor.yaml"
# Where the metrics are defined: the Rust sources under these directories.
METRIC_SOURCES = ("crates", "services")
# Series Prometheus itself makes for every target it scrapes.
PROMETHEUS_SERIES = {"up"}
# The pod label that names a service, and what it is called on `up` (podmonitor.yaml's
# podTargetLabels, or the labelmap of an annotation-based scrape job).
NAME_LABEL = "app.kubernetes.io/name"
UP_NAME_LABEL = "app_kubernetes_io_name"
SKAFFOLD_API_VERSION = "skaffold/v4beta13"
# Secrets are created out of band (docs/DEPLOY.md): the only ones manifests may name.
SECRET_KEYS = {
    # The Ed25519 key that signs session tokens (auth only), and the public keys that verify
    # them (every service that checks a session; two during a key rotation).
    "jwt-signing-key": {"JWT_PRIVATE_KEY"},
    "jwt-public-keys": {"JWT_PUBLIC_KEYS"},
    "stripe-secret": {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_PUBLISHABLE_KEY"},
}
# Services whose one replica is a design choice, not an oversight (expiration schedules
# expiries in Redis; two would race).
SINGLE_REPLICA = {"expiration"}
# Services nothing calls over HTTP: no Service object needed.
NO_SERVICE = {"expiration"}
ISSUERS = {
    "staging": ("letsencrypt-staging", "https://acme-staging-v02.api.letsencrypt.org/directory"),
    "prod": ("letsencrypt-prod", "https://acme-v02.api.letsencrypt.org/directory"),
}
# auth hashes passwords at 19 MiB each, HASH_CONCURRENCY at once (service-env.tsv): those must
# take at most half of its memory limit, the rest being the process itself.
HASH_MIB = 19
FAKE_REGISTRY = "registry.example.test/gittix"
FAKE_SHA = "0123456789abcdef0123456789abcdef01234567"

Problems = list[str]


# --- inputs -------------------------------------------------------------------------------


def tsv_rows(path: Path) -> list[list[str]]:
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        rows.append(line.split("\t"))
    return rows


def load_routes(path: Path = ROUTES_TSV) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in tsv_rows(path)]


class EnvRow:
    def __init__(self, service: str, var: str, required: str, example: str, meaning: str):
        self.service, self.var, self.example, self.meaning = service, var, example, meaning
        if required not in ("yes", "no"):
            raise ValueError(f"service-env.tsv: {service} {var}: required is {required!r}")
        self.required = required == "yes"
        m = re.search(r"\(secret ([a-z0-9-]+)\)", meaning)
        self.secret = m.group(1) if m else None


def load_service_env(path: Path = SERVICE_ENV_TSV) -> dict[str, list[EnvRow]]:
    env: dict[str, list[EnvRow]] = {}
    for r in tsv_rows(path):
        if len(r) < 5:
            raise ValueError(f"{path.name}: short row {r}")
        env.setdefault(r[0], []).append(EnvRow(*r[:5]))
    return env


# --- tools --------------------------------------------------------------------------------


def run(cmd: list[str], cwd: Path = ROOT, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def tool_output(proc: subprocess.CompletedProcess) -> Problems:
    """The findings of a linter run: none when it exited 0."""
    if proc.returncode == 0:
        return []
    lines = (proc.stdout + proc.stderr).strip().splitlines() or [f"exited {proc.returncode}"]
    return [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines]


class RenderError(Exception):
    pass


def render(path: Path) -> list[dict]:
    proc = run(["kubectl", "kustomize", str(path)])
    if proc.returncode != 0:
        raise RenderError(proc.stderr.strip() or f"kubectl kustomize exited {proc.returncode}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


# --- helpers over rendered objects ----------------------------------------------------------


def kind_of(doc: dict) -> str:
    return doc.get("kind", "")


def name_of(doc: dict) -> str:
    return doc.get("metadata", {}).get("name", "")


def ns_of(doc: dict) -> str:
    return doc.get("metadata", {}).get("namespace", "")


def label(doc: dict) -> str:
    ns = ns_of(doc)
    return f"{kind_of(doc)} {ns + '/' if ns else ''}{name_of(doc)}"


def objects(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if kind_of(d) == kind]


def find(docs: list[dict], kind: str, name: str) -> list[dict]:
    return [d for d in objects(docs, kind) if name_of(d) == name]


def pod_spec(doc: dict) -> dict:
    return doc.get("spec", {}).get("template", {}).get("spec", {})


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if kind_of(d) in ("Deployment", "StatefulSet")]


def configmaps(docs: list[dict]) -> dict[tuple[str, str], dict]:
    return {(ns_of(d), name_of(d)): d.get("data", {}) or {} for d in objects(docs, "ConfigMap")}


def split_image(image: str) -> tuple[str, str, str]:
    """name, tag, digest of an image reference."""
    name, _, digest = image.partition("@")
    tag = ""
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest


def resolve_env(doc: dict, container: dict, cms: dict) -> tuple[dict[str, dict], Problems]:
    """What each variable of a container is set from, as Kubernetes resolves it: envFrom
    first (in order), then env, which wins."""
    ns = ns_of(doc)
    env: dict[str, dict] = {}
    problems: Problems = []
    for source in container.get("envFrom", []) or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref = source["configMapRef"]
            data = cms.get((ns, ref.get("name")))
            if data is None:
                if not ref.get("optional"):
                    problems.append(f"envFrom names ConfigMap {ref.get('name')}, not in the overlay")
                continue
            for key, value in data.items():
                env[prefix + key] = {"from": "configmap", "ref": ref.get("name"), "value": value}
        elif "secretRef" in source:
            problems.append(
                f"envFrom secretRef {source['secretRef'].get('name')}: name each secret key in env"
            )
    for item in container.get("env", []) or []:
        name = item.get("name")
        if "valueFrom" in item:
            vf = item["valueFrom"]
            if "secretKeyRef" in vf:
                ref = vf["secretKeyRef"]
                env[name] = {
                    "from": "secret",
                    "ref": ref.get("name"),
                    "key": ref.get("key"),
                    "optional": bool(ref.get("optional")),
                }
            elif "configMapKeyRef" in vf:
                ref = vf["configMapKeyRef"]
                data = cms.get((ns, ref.get("name")))
                if data is None or ref.get("key") not in data:
                    if not ref.get("optional"):
                        problems.append(
                            f"{name}: ConfigMap {ref.get('name')} key {ref.get('key')} is not in the overlay"
                        )
                    continue
                env[name] = {"from": "configmap", "ref": ref.get("name"), "value": data[ref["key"]]}
            else:
                env[name] = {"from": "field", "value": "(from the pod)"}
        else:
            env[name] = {"from": "literal", "value": item.get("value", "")}
    return env, problems


def service_container(doc: dict, name: str) -> dict | None:
    for c in pod_spec(doc).get("containers", []) or []:
        if c.get("name") == name:
            return c
    return None


def the_deployment(docs: list[dict], service: str) -> tuple[dict | None, dict | None, Problems]:
    found = find(docs, "Deployment", service)
    if len(found) != 1:
        return None, None, [f"{service}: {len(found)} Deployments named {service} (want 1)"]
    container = service_container(found[0], service)
    if container is None:
        return found[0], None, [f"{service}: Deployment has no container named {service}"]
    return found[0], container, []


# --- checks: schema, routes, env, workloads -------------------------------------------------


@functools.lru_cache(maxsize=None)
def _schema_contents(filename: str, desired_version: str):
    return _original_schema_contents(filename, desired_version)


# kubernetes-validate reads (and parses) its large definitions file once per object; cache it.
_original_schema_contents = kubernetes_validate.utils.schema_contents
kubernetes_validate.utils.schema_contents = _schema_contents


@functools.lru_cache(maxsize=None)
def cluster_issuer_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(CLUSTER_ISSUER_SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def check_schemas(docs: list[dict]) -> Problems:
    problems: Problems = []
    for doc in docs:
        if doc.get("apiVersion", "").startswith("cert-manager.io/"):
            if kind_of(doc) != "ClusterIssuer":
                problems.append(f"{label(doc)}: no schema here for this cert-manager kind")
                continue
            for err in cluster_issuer_validator().iter_errors(doc):
                path = ".".join(str(p) for p in err.absolute_path)
                problems.append(f"{label(doc)}: {path}: {err.message}")
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = ".".join(str(p) for p in err.path)
            problems.append(f"{label(doc)}: {path}: {err.message}")
        except kubernetes_validate.SchemaNotFoundError as err:
            problems.append(f"{label(doc)}: {err.message}")
    return problems


def check_routes(docs: list[dict], routes: list[tuple[str, str]]) -> Problems:
    """The Ingress routes exactly the table of infra/routes.tsv, to Services that exist."""
    problems: Problems = []
    want = set(routes)
    if len(want) != len(routes):
        problems.append("routes.tsv lists a route twice")
    ingresses = objects(docs, "Ingress")
    if not ingresses:
        return ["no Ingress in the overlay"]
    services = {(ns_of(d), name_of(d)): d for d in objects(docs, "Service")}
    for ing in ingresses:
        where = label(ing)
        if ing.get("apiVersion") != "networking.k8s.io/v1":
            problems.append(f"{where}: apiVersion {ing.get('apiVersion')}, want networking.k8s.io/v1")
        spec = ing.get("spec", {})
        if spec.get("ingressClassName") != "nginx":
            problems.append(f"{where}: ingressClassName {spec.get('ingressClassName')!r}, want 'nginx'")
        if spec.get("defaultBackend"):
            problems.append(f"{where}: a defaultBackend bypasses routes.tsv")
        rules = spec.get("rules") or []
        if not rules:
            problems.append(f"{where}: no rules")
        for rule in rules:
            host = rule.get("host", "*")
            got = []
            for p in (rule.get("http") or {}).get("paths") or []:
                path = p.get("path")
                if p.get("pathType") != "Prefix":
                    problems.append(f"{where} {host}{path}: pathType {p.get('pathType')}, want Prefix")
                backend = (p.get("backend") or {}).get("service")
                if not backend:
                    problems.append(f"{where} {host}{path}: backend is not a Service")
                    continue
                svc_name = backend.get("name")
                got.append((path, svc_name))
                svc = services.get((ns_of(ing), svc_name))
                if svc is None:
                    problems.append(f"{where} {host}{path}: Service {svc_name} is not in the overlay")
                    continue
                port = backend.get("port", {})
                ports = svc.get("spec", {}).get("ports", [])
                if not any(
                    ("name" in port and sp.get("name") == port["name"])
                    or ("number" in port and sp.get("port") == port["number"])
                    for sp in ports
                ):
                    problems.append(f"{where} {host}{path}: Service {svc_name} has no port {port}")
            if len(got) != len(set(got)):
                problems.append(f"{where} {host}: a path is routed twice")
            for path, svc in sorted(want - set(got)):
                problems.append(f"{where} {host}: routes.tsv has {path} -> {svc}, the Ingress does not")
            for path, svc in sorted(set(got) - want):
                problems.append(f"{where} {host}: the Ingress has {path} -> {svc}, routes.tsv does not")
    return problems


URL_RE = re.compile(r"^(mongodb|nats|redis|https?)://([^/:@]+):(\d+)(/|$)")


def check_env(docs: list[dict], env_rows: dict[str, list[EnvRow]]) -> Problems:
    """Every `yes` row of service-env.tsv is set on its service's Deployment, secrets come
    from the Secret and key the table names, nothing unknown is set, and URLs point at
    Services of the overlay."""
    problems: Problems = []
    cms = configmaps(docs)
    known_anywhere = {row.var for rows in env_rows.values() for row in rows}
    services = {(ns_of(d), name_of(d)): d for d in objects(docs, "Service")}
    for service, rows in env_rows.items():
        doc, container, missing = the_deployment(docs, service)
        problems += missing
        if container is None:
            continue
        env, env_problems = resolve_env(doc, container, cms)
        problems += [f"{service}: {p}" for p in env_problems]
        by_var = {row.var: row for row in rows}
        for row in rows:
            src = env.get(row.var)
            if src is None:
                if row.required:
                    problems.append(f"{service}: required {row.var} is not set on the Deployment")
                continue
            if row.secret:
                if src["from"] != "secret":
                    problems.append(
                        f"{service}: {row.var} must come from Secret {row.secret}, not a {src['from']} value"
                    )
                    continue
                if src["ref"] != row.secret or src["key"] != row.var:
                    problems.append(
                        f"{service}: {row.var} comes from Secret {src['ref']} key {src['key']}, "
                        f"want Secret {row.secret} key {row.var}"
                    )
                if row.required and src["optional"]:
                    problems.append(f"{service}: required {row.var} comes from an optional secret key")
            elif src["from"] in ("literal", "configmap") and row.required and not str(src["value"]).strip():
                problems.append(f"{service}: required {row.var} is set to an empty value")
        # Explicit env entries and the service's own ConfigMap: only variables it reads.
        for item in container.get("env", []) or []:
            if item.get("name") not in by_var:
                problems.append(f"{service}: sets {item.get('name')}, which service-env.tsv does not list for it")
        for name, src in env.items():
            if src["from"] == "secret":
                allowed = SECRET_KEYS.get(src["ref"], set())
                if src["key"] not in allowed:
                    problems.append(f"{service}: {name} names Secret {src['ref']} key {src['key']}, none documented")
            if src["from"] == "configmap":
                own = src["ref"].startswith(f"{service}-config")
                if (own and name not in by_var) or name not in known_anywhere:
                    problems.append(f"{service}: ConfigMap {src['ref']} sets {name}, which {service} does not read")
            value = str(src.get("value", ""))
            m = URL_RE.match(value)
            if m and src["from"] != "secret":
                host, port = m.group(2), int(m.group(3))
                svc = services.get((ns_of(doc), host))
                if svc is None:
                    problems.append(f"{service}: {name}={value}: no Service {host} in the overlay")
                elif not any(p.get("port") == port for p in svc.get("spec", {}).get("ports", [])):
                    problems.append(f"{service}: {name}={value}: Service {host} has no port {port}")
        # Gateways the service refuses in production (service-env.tsv, PAYMENT_GATEWAY).
        app_env = env.get("APP_ENV", {}).get("value", "development")
        gateway = env.get("PAYMENT_GATEWAY", {}).get("value")
        if "PAYMENT_GATEWAY" in by_var and gateway is not None:
            if gateway == "simulated" and app_env == "production":
                problems.append(f"{service}: PAYMENT_GATEWAY=simulated with APP_ENV=production")
            if gateway == "stripe":
                key = env.get("STRIPE_SECRET_KEY")
                if key is None or key.get("from") != "secret":
                    problems.append(f"{service}: PAYMENT_GATEWAY=stripe without STRIPE_SECRET_KEY from its Secret")
                elif key.get("optional") and app_env == "production":
                    problems.append(f"{service}: PAYMENT_GATEWAY=stripe in production with an optional STRIPE_SECRET_KEY")
    return problems


def mebibytes(quantity: object) -> float | None:
    """A Kubernetes memory quantity (256Mi, 1Gi, 268435456, 300M) in MiB; None if unreadable."""
    m = re.fullmatch(r"([0-9.]+)([KMGT]i?|k)?", str(quantity).strip())
    if not m:
        return None
    unit = {None: 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[m.group(2)]
    return float(m.group(1)) * unit / 2**20


def http_probe(container: dict, kind: str) -> tuple[str | None, object]:
    probe = container.get(kind) or {}
    get = probe.get("httpGet") or {}
    return get.get("path"), get.get("port")


def check_workloads(docs: list[dict], services: Iterable[str], overlay: str) -> Problems:
    problems: Problems = []
    cms = configmaps(docs)
    svc_objects = {(ns_of(d), name_of(d)): d for d in objects(docs, "Service")}
    for service in services:
        doc, container, missing = the_deployment(docs, service)
        problems += missing
        if container is None:
            continue
        name, _tag, _ = split_image(container.get("image", ""))
        if name.rsplit("/", 1)[-1] != service:
            problems.append(f"{service}: image {container.get('image')} is not the {service} image")
        http = [p for p in container.get("ports", []) or [] if p.get("name") == "http"]
        if len(http) != 1:
            problems.append(f"{service}: no container port named http")
            continue
        port = http[0].get("containerPort")
        env, _ = resolve_env(doc, container, cms)
        if str(env.get("PORT", {}).get("value", "3000")) != str(port):
            problems.append(f"{service}: PORT={env.get('PORT', {}).get('value')} but the http port is {port}")
        if service == "auth":
            # Unset, it hashes as many at once as the node has cores: the limit would not hold.
            limit = mebibytes(((container.get("resources") or {}).get("limits") or {}).get("memory", ""))
            hashes = str(env.get("HASH_CONCURRENCY", {}).get("value", ""))
            if not hashes.isdigit() or int(hashes) < 1:
                problems.append(f"auth: HASH_CONCURRENCY={hashes or '(unset)'}: set a number of hashes at once that its memory limit holds")
            elif limit is not None and int(hashes) * HASH_MIB > limit / 2:
                problems.append(
                    f"auth: HASH_CONCURRENCY={hashes} hashes take {int(hashes) * HASH_MIB} MiB, "
                    f"more than half its memory limit ({limit:g} MiB)"
                )
        for kind, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            got_path, got_port = http_probe(container, kind)
            if got_path != path or got_port not in ("http", port):
                problems.append(f"{service}: {kind} is not GET {path} on the http port")
        replicas = doc.get("spec", {}).get("replicas", 1)
        if overlay == "prod" and service not in SINGLE_REPLICA and replicas < 2:
            problems.append(f"{service}: {replicas} replica in prod; stateless services run several")
        if service in SINGLE_REPLICA and replicas != 1:
            problems.append(f"{service}: {replicas} replicas; it must run exactly one")
        if service not in NO_SERVICE:
            svc = svc_objects.get((ns_of(doc), service))
            pod_labels = doc["spec"]["template"].get("metadata", {}).get("labels", {})
            if svc is None:
                problems.append(f"{service}: no Service {service}")
            else:
                selector = svc.get("spec", {}).get("selector", {})
                if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
                    problems.append(f"{service}: Service selector {selector} does not select its pods")
                if not any(
                    p.get("port") == 3000 and p.get("targetPort") in ("http", port)
                    for p in svc["spec"].get("ports", [])
                ):
                    problems.append(f"{service}: Service has no port 3000 to the http port")
    # Every workload, services and data stores alike.
    for doc in workloads(docs):
        where = label(doc)
        spec = pod_spec(doc)
        pod_sc = spec.get("securityContext", {}) or {}
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: mounts a service account token it does not use")
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            cw = f"{where} container {c.get('name')}"
            image = c.get("image", "")
            _name, tag, digest = split_image(image)
            if not digest and (not tag or tag == "latest"):
                problems.append(f"{cw}: image {image} is not pinned (a tag other than latest, or a digest)")
            res = c.get("resources", {}) or {}
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(part) or {}):
                        problems.append(f"{cw}: no {part}.{r}")
            sc = c.get("securityContext", {}) or {}
            if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
                problems.append(f"{cw}: runAsNonRoot is not true")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) in (None, 0):
                problems.append(f"{cw}: no non-zero runAsUser (an image's named user cannot be verified)")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cw}: allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cw}: readOnlyRootFilesystem is not true")
            if sc.get("privileged"):
                problems.append(f"{cw}: privileged")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{cw}: capabilities are not all dropped")
            if not (c.get("readinessProbe") and c.get("livenessProbe")):
                problems.append(f"{cw}: needs a readiness and a liveness probe")
    # Data stores: StatefulSets with their data on a claim, behind a headless Service.
    for doc in objects(docs, "StatefulSet"):
        where = label(doc)
        spec = doc.get("spec", {})
        claims = {t.get("metadata", {}).get("name") for t in spec.get("volumeClaimTemplates") or []}
        if not claims:
            problems.append(f"{where}: no volumeClaimTemplates: its data would not survive the pod")
        mounts = {m.get("name") for c in pod_spec(doc).get("containers", []) for m in c.get("volumeMounts") or []}
        if claims - mounts:
            problems.append(f"{where}: claims {sorted(claims - mounts)} are not mounted")
        governing = svc_objects.get((ns_of(doc), spec.get("serviceName")))
        if governing is None or governing.get("spec", {}).get("clusterIP") != "None":
            problems.append(f"{where}: serviceName {spec.get('serviceName')} is not a headless Service")
    nats = [
        c
        for d in objects(docs, "StatefulSet")
        for c in pod_spec(d).get("containers", [])
        if split_image(c.get("image", ""))[0] in ("nats", "docker.io/library/nats")
    ]
    if len(nats) != 1:
        problems.append(f"{len(nats)} NATS StatefulSets (official nats image), want 1")
    else:
        args = (nats[0].get("command") or []) + (nats[0].get("args") or [])
        if not any(a in ("-js", "--jetstream") for a in args):
            problems.append("NATS runs without JetStream (-js)")
        store = next((a.split("=", 1)[1] for a in args if a.startswith(("--store_dir=", "-sd="))), None)
        if store is None and "-sd" in args:
            store = args[args.index("-sd") + 1]
        if store is None or not any(m.get("mountPath") == store for m in nats[0].get("volumeMounts") or []):
            problems.append("NATS keeps its JetStream store outside its volume")
        # An acknowledged event must survive a node crash: the config file NATS reads syncs
        # every write (the server's default syncs every 2 minutes).
        config = next((a.split("=", 1)[1] for a in args if a.startswith(("--config=", "-c="))), None)
        texts = [v for cm in objects(docs, "ConfigMap") for k, v in (cm.get("data") or {}).items() if config and config.endswith("/" + k)]
        if not any(re.search(r"^\s*sync_interval\s*:\s*\"?always\"?\s*$", t, re.M) for t in texts):
            problems.append("NATS does not fsync every JetStream write (--config with jetstream { sync_interval: always })")
    return problems


def check_hosts_and_tls(docs: list[dict], overlay: str) -> Problems:
    """dev serves gittix.dev over plain HTTP; staging and prod their own host over HTTPS
    from the right Let's Encrypt issuer; prod's load balancer knows its host."""
    problems: Problems = []
    ingresses = objects(docs, "Ingress")
    hosts = {r.get("host") for ing in ingresses for r in ing.get("spec", {}).get("rules") or []}
    if overlay == "dev":
        if hosts != {"gittix.dev"}:
            problems.append(f"dev hosts are {sorted(map(str, hosts))}, want gittix.dev")
        return problems
    if "gittix.dev" in hosts or None in hosts:
        problems.append(f"{overlay} still serves host {sorted(map(str, hosts))}")
    issuer_name, server = ISSUERS[overlay]
    issuers = {name_of(d): d for d in objects(docs, "ClusterIssuer")}
    for name, url in ISSUERS.values():
        if name not in issuers:
            problems.append(f"ClusterIssuer {name} is not in the overlay")
        elif issuers[name]["spec"]["acme"]["server"] != url:
            problems.append(f"ClusterIssuer {name} uses {issuers[name]['spec']['acme']['server']}")
    for ing in ingresses:
        annotations = ing.get("metadata", {}).get("annotations") or {}
        if annotations.get("cert-manager.io/cluster-issuer") != issuer_name:
            problems.append(f"{label(ing)}: cluster-issuer is {annotations.get('cert-manager.io/cluster-issuer')!r}, want {issuer_name}")
        tls_hosts = {h for t in ing.get("spec", {}).get("tls") or [] for h in t.get("hosts") or []}
        rule_hosts = {r.get("host") for r in ing.get("spec", {}).get("rules") or []}
        if tls_hosts != rule_hosts:
            problems.append(f"{label(ing)}: TLS covers {sorted(tls_hosts)}, the rules serve {sorted(map(str, rule_hosts))}")
        if not all(t.get("secretName") for t in ing.get("spec", {}).get("tls") or []):
            problems.append(f"{label(ing)}: a TLS entry without secretName")
    namespaces = {name_of(d) for d in objects(docs, "Namespace")}
    app_namespaces = {ns_of(d) for d in workloads(docs)}
    if len(app_namespaces) != 1 or not app_namespaces <= namespaces:
        problems.append(f"{overlay}: workloads in namespaces {sorted(app_namespaces)}, created: {sorted(namespaces)}")
    if overlay == "prod":
        lbs = [d for d in find(docs, "Service", "ingress-nginx-controller") if ns_of(d) == "ingress-nginx"]
        if len(lbs) != 1:
            problems.append("prod: no Service ingress-nginx/ingress-nginx-controller (DigitalOcean load balancer)")
        else:
            lb = lbs[0]
            ann = lb.get("metadata", {}).get("annotations") or {}
            if lb.get("spec", {}).get("type") != "LoadBalancer":
                problems.append("prod: the ingress-nginx controller Service is not a LoadBalancer")
            if ann.get("service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol") != "true":
                problems.append("prod: the load balancer does not speak the PROXY protocol")
            lb_host = ann.get("service.beta.kubernetes.io/do-loadbalancer-hostname")
            if {lb_host} != hosts:
                problems.append(f"prod: the load balancer hostname is {lb_host!r}, the Ingress serves {sorted(map(str, hosts))}")
    return problems


def release_render(overlay: str, services: Iterable[str], k8s_dir: Path = K8S) -> list[dict]:
    """The overlay as the deploy workflow applies it: a copy, images set by set-images.sh."""
    with tempfile.TemporaryDirectory(prefix="gittix-release-") as tmp:
        copy_dir = Path(tmp) / "k8s"
        shutil.copytree(k8s_dir, copy_dir)
        pairs = [f"{s}={FAKE_REGISTRY}/{s}:{FAKE_SHA}" for s in services]
        proc = run(["bash", str(copy_dir / "set-images.sh"), str(copy_dir / "overlays" / overlay), *pairs])
        if proc.returncode != 0:
            raise RenderError(f"set-images.sh: {proc.stderr.strip()}")
        return render(copy_dir / "overlays" / overlay)


def check_release_images(docs: list[dict], services: Iterable[str]) -> Problems:
    problems: Problems = []
    for service in services:
        _doc, container, missing = the_deployment(docs, service)
        problems += missing
        want = f"{FAKE_REGISTRY}/{service}:{FAKE_SHA}"
        if container is not None and container.get("image") != want:
            problems.append(f"{service}: deploys {container.get('image')}, want {want}")
    for doc in workloads(docs):
        for c in pod_spec(doc).get("containers", []):
            if split_image(c.get("image", ""))[0].startswith("gittix/"):
                problems.append(f"{label(doc)}: image {c['image']} was never built for a registry")
    return problems


def check_app_env(docs: list[dict], overlay: str) -> Problems:
    want = "development" if overlay == "dev" else "production"
    got = {data.get("APP_ENV") for (_, name), data in configmaps(docs).items() if name.startswith("gittix-config")}
    return [] if got == {want} else [f"{overlay}: APP_ENV is {sorted(map(str, got))}, want {want}"]


# --- checks: skaffold, Dockerfile, workflows, scripts ----------------------------------------


def check_skaffold_schema(path: Path, schema: Path = SKAFFOLD_SCHEMA) -> Problems:
    return tool_output(run(["check-jsonschema", "--schemafile", str(schema), str(path)]))


def check_shared_schema() -> Problems:
    if not SHARED_SKAFFOLD_SCHEMA.exists():
        return []  # a clone without shared/ beside it: the vendored copy is the schema
    if SHARED_SKAFFOLD_SCHEMA.read_bytes() != SKAFFOLD_SCHEMA.read_bytes():
        return [f"{SKAFFOLD_SCHEMA.relative_to(ROOT)} differs from {SHARED_SKAFFOLD_SCHEMA}: copy it again"]
    return []


def json_patch(doc: dict, patches: list[dict]) -> dict:
    """The add/replace/remove operations skaffold profiles use here (RFC 6902 subset)."""
    doc = copy.deepcopy(doc)
    for p in patches:
        parts = [s.replace("~1", "/").replace("~0", "~") for s in p["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        key = int(last) if isinstance(parent, list) else last
        if p["op"] in ("add", "replace"):
            if p["op"] == "replace" and (isinstance(parent, dict) and key not in parent):
                raise KeyError(f"patch {p['path']}: nothing to replace")
            parent[key] = p["value"]
        elif p["op"] == "remove":
            del parent[key]
        else:
            raise ValueError(f"patch op {p['op']} is not handled here")
    return doc


def check_skaffold_config(path: Path, services: Iterable[str]) -> Problems:
    problems: Problems = []
    cfg = yaml.safe_load(path.read_text())
    if cfg.get("apiVersion") != SKAFFOLD_API_VERSION:
        problems.append(f"apiVersion {cfg.get('apiVersion')!r}, want {SKAFFOLD_API_VERSION}")
    if cfg.get("kind") != "Config":
        problems.append(f"kind {cfg.get('kind')!r}, want Config")

    def artifacts_ok(c: dict, where: str, profile: str) -> None:
        arts = {a.get("image"): a for a in (c.get("build") or {}).get("artifacts") or []}
        if set(arts) != {f"gittix/{s}" for s in services}:
            problems.append(f"{where}: artifacts {sorted(arts)}, want gittix/<service> for each service")
        for s in services:
            a = arts.get(f"gittix/{s}")
            if not a:
                continue
            docker = a.get("docker") or {}
            args = docker.get("buildArgs") or {}
            if a.get("context", ".") != "." or docker.get("dockerfile", "Dockerfile") != "Dockerfile":
                problems.append(f"{where}: gittix/{s} is not built from the root Dockerfile")
            if args.get("SERVICE") != s:
                problems.append(f"{where}: gittix/{s} builds SERVICE={args.get('SERVICE')}")
            if args.get("CARGO_PROFILE", "release") != profile:
                problems.append(f"{where}: gittix/{s} builds CARGO_PROFILE={args.get('CARGO_PROFILE')}, want {profile}")

    def manifests_ok(c: dict, where: str, overlay: str) -> None:
        paths = ((c.get("manifests") or {}).get("kustomize") or {}).get("paths")
        if paths != [f"infra/k8s/overlays/{overlay}"]:
            problems.append(f"{where}: kustomize paths {paths}, want infra/k8s/overlays/{overlay}")
        for p in paths or []:
            if not (ROOT / p / "kustomization.yaml").exists():
                problems.append(f"{where}: {p} has no kustomization.yaml")

    artifacts_ok(cfg, "build", "dev")
    manifests_ok(cfg, "manifests", "dev")
    if ((cfg.get("build") or {}).get("local") or {}).get("push") is not False:
        problems.append("build.local.push is not false: the dev loop must not push")
    if "kubectl" not in (cfg.get("deploy") or {}):
        problems.append("deploy.kubectl is missing")
    profiles = {p.get("name"): p for p in cfg.get("profiles") or []}
    for overlay in ("staging", "prod"):
        prof = profiles.get(overlay)
        if prof is None:
            problems.append(f"no profile {overlay}")
            continue
        try:
            applied = json_patch({k: v for k, v in cfg.items() if k != "profiles"}, prof.get("patches") or [])
        except (KeyError, IndexError, ValueError) as err:
            problems.append(f"profile {overlay}: {err}")
            continue
        for key in ("build", "manifests", "deploy"):
            if key in prof:
                applied[key] = {**(applied.get(key) or {}), **prof[key]}
        artifacts_ok(applied, f"profile {overlay}", "release")
        manifests_ok(applied, f"profile {overlay}", overlay)
        if ((applied.get("build") or {}).get("local") or {}).get("push") is not True:
            problems.append(f"profile {overlay}: images are not pushed")
    return problems


def dockerfile_stages(text: str) -> list[dict]:
    """FROM lines and the instructions of each stage (continuations joined)."""
    text = re.sub(r"\\\n", " ", text)
    stages: list[dict] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            stages.append({"image": parts[0], "name": parts[2] if len(parts) > 2 else None, "lines": []})
        elif stages:
            stages[-1]["lines"].append((word.upper(), rest.strip()))
    return stages


def check_dockerfile(path: Path) -> Problems:
    problems: Problems = []
    stages = dockerfile_stages(path.read_text())
    if not stages:
        return ["no FROM"]
    names = {s["name"] for s in stages if s["name"]}
    for s in stages:
        if s["image"] in names:
            continue
        _name, tag, digest = split_image(s["image"])
        if not digest and (not tag or tag == "latest"):
            problems.append(f"FROM {s['image']}: pin a tag (not latest) or a digest")
    final = stages[-1]
    users = [rest for word, rest in final["lines"] if word == "USER"]
    if not users or not re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]):
        problems.append(f"the runtime stage's USER is {users[-1] if users else 'unset'}: a non-zero uid")
    all_lines = [line for s in stages for line in s["lines"]]
    if ("ARG", "SERVICE") not in all_lines:
        problems.append("no build argument SERVICE")
    if not any(w == "RUN" and "cargo chef cook" in r for w, r in all_lines):
        problems.append("dependencies are not cached (cargo chef cook)")
    if not any(w == "RUN" and re.search(r"--bin \"?\$\{?SERVICE", r) for w, r in all_lines):
        problems.append("no `cargo build --bin $SERVICE`")
    if not any(w == "ENTRYPOINT" for w, _ in final["lines"]):
        problems.append("the runtime stage has no ENTRYPOINT")
    return problems


def check_dockerignore(path: Path) -> Problems:
    problems: Problems = []
    patterns = [
        line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]

    def ignored(rel: str) -> bool:
        out = False
        for pat in patterns:
            neg = pat.startswith("!")
            pat = pat.lstrip("!").strip("/")
            parts = rel.split("/")
            hit = any(
                fnmatch.fnmatch("/".join(parts[: i + 1]), pat) or fnmatch.fnmatch("/".join(parts[: i + 1]), pat.replace("**/", ""))
                for i in range(len(parts))
            )
            if hit:
                out = not neg
        return out

    for keep in ["Cargo.toml", "Cargo.lock", "crates/common/src/lib.rs", "services/auth/src/main.rs", "services/client/templates/page.html"]:
        if ignored(keep):
            problems.append(f".dockerignore drops {keep}, which the build needs")
    for drop in ["target/release/auth", ".git/HEAD", ".gittix/test/servers.env"]:
        if not ignored(drop):
            problems.append(f".dockerignore sends {drop} to the build")
    return problems


def check_workflows_content(services: list[str], images: dict[str, str]) -> Problems:
    """What the workflows must do beyond being valid (actionlint checks that)."""
    problems: Problems = []
    wf_dir = ROOT / ".github" / "workflows"
    test = yaml.safe_load((wf_dir / "test.yml").read_text())
    deploy = yaml.safe_load((wf_dir / "deploy.yml").read_text())
    # PyYAML reads the key `on` as True.
    test_on = test.get("on", test.get(True)) or {}
    deploy_on = deploy.get("on", deploy.get(True)) or {}
    if "pull_request" not in test_on or "main" not in ((test_on.get("push") or {}).get("branches") or []):
        problems.append("test.yml does not run on pull requests and pushes to main")
    if "main" not in ((deploy_on.get("push") or {}).get("branches") or []):
        problems.append("deploy.yml does not run on pushes to main")
    job = (test.get("jobs") or {}).get("test") or {}
    env = {**(test.get("env") or {}), **(job.get("env") or {})}
    for var in ("TEST_MONGO_URL", "TEST_NATS_URL", "TEST_REDIS_URL"):
        if not env.get(var):
            problems.append(f"test.yml does not set {var}")
    runs = "\n".join(s.get("run", "") for s in job.get("steps") or [])
    if not re.search(r"^\s*make test\s*$", runs, re.M):
        problems.append("test.yml does not run `make test`")
    if "--jetstream" not in runs and " -js" not in runs:
        problems.append("test.yml starts NATS without JetStream")
    # CI's servers are the images production runs.
    ci_images = {name: (svc or {}).get("image", "") for name, svc in (job.get("services") or {}).items()}
    ci_images["nats"] = env.get("NATS_IMAGE", "")
    for name, image in images.items():
        if ci_images.get(name) != image:
            problems.append(f"test.yml runs {name} {ci_images.get(name) or 'nowhere'}, infra/k8s runs {image}")
    d_env = deploy.get("env") or {}
    if (d_env.get("SERVICES") or "").split() != services:
        problems.append(f"deploy.yml SERVICES is {d_env.get('SERVICES')!r}, want {' '.join(services)!r}")
    d_runs = "\n".join(s.get("run", "") for j in (deploy.get("jobs") or {}).values() for s in j.get("steps") or [])
    for needle in ("doctl kubernetes cluster kubeconfig save", "infra/k8s/set-images.sh", "kubectl apply -k", "rollout status"):
        if needle not in d_runs:
            problems.append(f"deploy.yml never runs {needle}")
    return problems


def base_images(docs: list[dict]) -> dict[str, str]:
    """The data stores' images by role: mongo, redis, nats."""
    out: dict[str, str] = {}
    for doc in objects(docs, "StatefulSet"):
        for c in pod_spec(doc).get("containers", []):
            role = split_image(c["image"])[0].rsplit("/", 1)[-1]
            out.setdefault(role, c["image"])
    return out


# --- checks: monitoring (infra/monitoring) ---------------------------------------------------


def load_yaml(path: Path) -> dict:
    """The one YAML document of a file."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    if len(docs) != 1:
        raise ValueError(f"{path.relative_to(ROOT)}: {len(docs)} YAML documents, want 1")
    return docs[0]


def rust_sources() -> list[str]:
    return [p.read_text(errors="replace") for d in METRIC_SOURCES for p in sorted((ROOT / d).rglob("*.rs"))]


METRIC_MACRO_RE = re.compile(r'\b(?:metrics::)?(counter|gauge|histogram)!\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
BUCKETS_RE = re.compile(r'set_buckets_for_metric\(\s*Matcher::(Full|Prefix|Suffix)\(\s*"([^"]*)"')


def exported_metrics(sources: Iterable[str]) -> set[str]:
    """The series names the services render at /metrics (metrics-exporter-prometheus): each
    counter!/gauge! name as given; a histogram's _bucket, _sum and _count when a
    set_buckets_for_metric matcher (or set_buckets) gives it buckets, else it is a summary:
    the name itself (quantiles), _sum and _count."""
    macros: list[tuple[str, str]] = []
    matchers: list[tuple[str, str]] = []
    all_bucketed = False
    for text in sources:
        macros += METRIC_MACRO_RE.findall(text)
        matchers += BUCKETS_RE.findall(text)
        all_bucketed = all_bucketed or bool(re.search(r"\.set_buckets\(", text))

    def bucketed(name: str) -> bool:
        return all_bucketed or any(
            (kind == "Full" and name == m) or (kind == "Prefix" and name.startswith(m)) or (kind == "Suffix" and name.endswith(m))
            for kind, m in matchers
        )

    names: set[str] = set()
    for kind, name in macros:
        if kind == "histogram":
            names |= {f"{name}_sum", f"{name}_count", f"{name}_bucket" if bucketed(name) else name}
        else:
            names.add(name)
    return names


PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "inf", "nan"}


def promql_metrics(expr: str) -> tuple[set[str], Problems]:
    """The metric names a PromQL expression (or a Grafana target's, with $variables) reads,
    and its bracket problems. A name is an identifier outside strings, label matchers, ranges
    and label lists that is neither a keyword, a number, nor a function called."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    problems: Problems = []
    stack: list[str] = []
    for ch in e:
        if ch in "([{":
            stack.append(ch)
        elif ch in ")]}":
            if not stack or stack.pop() != {")": "(", "]": "[", "}": "{"}[ch]:
                problems.append(f"unbalanced {ch!r}")
                break
    else:
        if stack:
            problems.append(f"unclosed {stack[-1]!r}")
    e = re.sub(r"\$\{[^}]*\}|\$\w+", " ", e)
    e = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\boffset\s+-?\w+", " ", e)
    e = re.sub(r"(?<![\w.])\d[\w.]*", " ", e)
    names = {
        m.group()
        for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e)
        if m.group() not in PROMQL_WORDS and not re.match(r"\s*\(", e[m.end():])
    }
    return names, problems


def check_expr(expr: str, known: set[str]) -> Problems:
    names, problems = promql_metrics(expr)
    if not names:
        problems.append("reads no metric")
    for name in sorted(names - known - PROMETHEUS_SERIES):
        problems.append(f"{name}: no such metric (none of crates/ and services/ exports it)")
    return problems


@functools.lru_cache(maxsize=None)
def prometheus_rule_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(PROMETHEUS_RULE_SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def rules_of(doc: dict) -> list[tuple[str, dict]]:
    """(group name, rule) for each rule of a PrometheusRule, skipping what is malformed."""
    groups = (doc.get("spec") or {}).get("groups") if isinstance(doc, dict) else None
    out = []
    for g in groups if isinstance(groups, list) else []:
        if isinstance(g, dict) and isinstance(g.get("rules"), list):
            out += [(str(g.get("name")), r) for r in g["rules"] if isinstance(r, dict)]
    return out


def check_alerts(doc: dict, known: set[str]) -> Problems:
    """alerts.yaml: a PrometheusRule (schemas/monitoring-prometheusrule.json: every alert
    with a severity, a summary and a description), alert names unique, every expression
    balanced and reading only exported metrics (or the rules' own recorded series)."""
    if not isinstance(doc, dict):
        return ["not a YAML mapping"]
    problems = [
        f"{'.'.join(str(p) for p in err.absolute_path) or '(top)'}: {err.message}"
        for err in prometheus_rule_validator().iter_errors(doc)
    ]
    rules = rules_of(doc)
    if not rules:
        problems.append("no rules")
    known = known | {str(r["record"]) for _, r in rules if r.get("record")}
    alerts = [r.get("alert") for _, r in rules if r.get("alert")]
    for name in sorted({a for a in alerts if alerts.count(a) > 1}):
        problems.append(f"alert {name} is defined twice")
    for group, rule in rules:
        where = f"{group}: {rule.get('alert') or rule.get('record') or '(unnamed rule)'}"
        expr = rule.get("expr")
        if isinstance(expr, str):
            problems += [f"{where}: {p}" for p in check_expr(expr, known)]
    return problems


def dashboard_panels(panels: list) -> list[dict]:
    """Every panel but rows, the panels of collapsed rows included."""
    out = []
    for p in panels if isinstance(panels, list) else []:
        if not isinstance(p, dict):
            continue
        if p.get("type") == "row":
            out += dashboard_panels(p.get("panels") or [])
        else:
            out.append(p)
    return out


def check_dashboard(dash: dict, known: set[str]) -> Problems:
    """dashboard.json: a titled dashboard whose panels each query, through a datasource
    variable (not one Grafana's uid), only metrics the code exports."""
    if not isinstance(dash, dict):
        return ["not a JSON object"]
    problems: Problems = []
    for key in ("title", "uid"):
        if not str(dash.get(key) or "").strip():
            problems.append(f"no {key}")
    if not isinstance(dash.get("schemaVersion"), int):
        problems.append("no schemaVersion")
    variables = (dash.get("templating") or {}).get("list") or []
    sources = {v.get("name") for v in variables if v.get("type") == "datasource" and v.get("query") == "prometheus"}
    sources |= {i.get("name") for i in dash.get("__inputs") or [] if i.get("pluginId") == "prometheus"}
    if not sources:
        problems.append("no Prometheus datasource variable (templating) or input (__inputs)")

    def via_variable(ds: object) -> bool:
        uid = ds.get("uid") if isinstance(ds, dict) else ds
        m = re.fullmatch(r"\$\{?(\w+)\}?", uid) if isinstance(uid, str) else None
        return bool(m) and m.group(1) in sources

    panels = dashboard_panels(dash.get("panels"))
    if not panels:
        problems.append("no panels")
    ids = [p.get("id") for p in panels]
    for pid in sorted({i for i in ids if ids.count(i) > 1}, key=str):
        problems.append(f"panel id {pid} is used twice")
    for p in panels:
        where = f"panel {p.get('title') or p.get('id')!r}"
        if not str(p.get("title") or "").strip():
            problems.append(f"{where}: no title")
        grid = p.get("gridPos") or {}
        if not all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")) or grid["x"] + grid["w"] > 24:
            problems.append(f"{where}: gridPos {grid} is not within the 24 columns")
        if not via_variable(p.get("datasource")):
            problems.append(f"{where}: datasource {p.get('datasource')} is not the datasource variable")
        targets = p.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or None in refs:
            problems.append(f"{where}: refIds {refs} are not unique")
        for t in targets:
            if "datasource" in t and not via_variable(t["datasource"]):
                problems.append(f"{where} {t.get('refId')}: datasource {t['datasource']} is not the datasource variable")
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{where} {t.get('refId')}: no expr")
                continue
            problems += [f"{where} {t.get('refId')}: {q}" for q in check_expr(expr, known)]
    return problems


def selects(selector: dict, labels: dict) -> bool:
    """Whether a Kubernetes label selector selects these labels (an empty one selects all)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if not {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op, False):
            return False
    return True


def check_scrape(pod_monitor: dict, alerts: dict, docs: list[dict]) -> Problems:
    """podmonitor.yaml scrapes exactly the pods whose template asks for it (prometheus.io/*
    annotations), on the port and path they name, labelling `up` with their name; every `up`
    of alerts.yaml selects exactly those services by that label."""
    problems: Problems = []
    if pod_monitor.get("apiVersion") != "monitoring.coreos.com/v1" or kind_of(pod_monitor) != "PodMonitor":
        problems.append(f"podmonitor.yaml is a {pod_monitor.get('apiVersion')} {kind_of(pod_monitor)}, want a monitoring.coreos.com/v1 PodMonitor")
    spec = pod_monitor.get("spec") or {}
    annotated: dict[str, dict] = {}
    selected: set[str] = set()
    for doc in workloads(docs):
        meta = doc.get("spec", {}).get("template", {}).get("metadata", {})
        if selects(spec.get("selector") or {}, meta.get("labels") or {}):
            selected.add(name_of(doc))
        if (meta.get("annotations") or {}).get("prometheus.io/scrape") == "true":
            annotated[name_of(doc)] = doc
    if not annotated:
        return problems + ["no pod template has the annotation prometheus.io/scrape: \"true\""]
    if selected != set(annotated):
        problems.append(f"podmonitor.yaml selects {sorted(selected)}; the pods annotated for scraping are {sorted(annotated)}")
    endpoints = spec.get("podMetricsEndpoints") or []
    if len(endpoints) != 1:
        problems.append(f"podmonitor.yaml has {len(endpoints)} podMetricsEndpoints, want 1")
    else:
        for name, doc in sorted(annotated.items()):
            ann = doc["spec"]["template"]["metadata"]["annotations"]
            ports = {p.get("containerPort"): p.get("name") for c in pod_spec(doc).get("containers", []) for p in c.get("ports") or []}
            port_name = ports.get(int(ann.get("prometheus.io/port", 0) or 0))
            if endpoints[0].get("port") != port_name:
                problems.append(f"{name}: scraped on port {ann.get('prometheus.io/port')} ({port_name}), podmonitor.yaml scrapes {endpoints[0].get('port')}")
            if endpoints[0].get("path", "/metrics") != ann.get("prometheus.io/path", "/metrics"):
                problems.append(f"{name}: metrics at {ann.get('prometheus.io/path')}, podmonitor.yaml scrapes {endpoints[0].get('path')}")
    if NAME_LABEL not in (spec.get("podTargetLabels") or []):
        problems.append(f"podmonitor.yaml: podTargetLabels lacks {NAME_LABEL}: `up` would not say which service it is")
    for group, rule in rules_of(alerts):
        for m in re.finditer(r"(?<![\w:])up\b\s*(\{[^}]*\})?", str(rule.get("expr", ""))):
            matcher = re.search(UP_NAME_LABEL + r'\s*=~\s*"([^"]*)"', m.group(1) or "")
            services = set(matcher.group(1).split("|")) if matcher else None
            if services != set(annotated):
                problems.append(
                    f"{group}: {rule.get('alert')}: `up` selects {sorted(services) if services else 'every target'}, "
                    f"want {UP_NAME_LABEL}=~ the scraped services {sorted(annotated)}"
                )
    return problems


# --- self-tests: each check must fail on a broken copy ---------------------------------------


def mutate(docs: list[dict], kind: str, name: str, fn: Callable[[dict], None]) -> list[dict]:
    docs = copy.deepcopy(docs)
    hits = find(docs, kind, name)
    if not hits:
        raise LookupError(f"self-test: no {kind} {name} to break")
    for d in hits:
        fn(d)
    return docs


def container(doc: dict, name: str | None = None) -> dict:
    """The named container of a workload, or its first."""
    found = service_container(doc, name) if name else pod_spec(doc)["containers"][0]
    if found is None:
        raise LookupError(f"self-test: {label(doc)} has no container {name}")
    return found


def drop_env(var: str) -> Callable[[dict], None]:
    def fn(doc: dict) -> None:
        c = container(doc, name_of(doc))
        c["env"] = [e for e in c.get("env", []) if e["name"] != var]
    return fn


def set_cm(key: str, value: str | None) -> Callable[[dict], None]:
    def fn(doc: dict) -> None:
        if value is None:
            doc["data"].pop(key, None)
        else:
            doc["data"][key] = value
    return fn


def cm_name(docs: list[dict], prefix: str) -> str:
    return next(name_of(d) for d in objects(docs, "ConfigMap") if name_of(d).startswith(prefix + "-"))


def self_tests(dev: list[dict], prod: list[dict], prod_release: list[dict], routes, env_rows, services, known: set[str]) -> list[tuple[str, Callable[[], Problems]]]:
    """(name, thunk) pairs; each thunk runs a check on something broken and must fail."""
    def paths(fn):
        return lambda d: fn(d["spec"]["rules"][0]["http"]["paths"])

    def retarget(paths_):
        for p in paths_:
            if p["path"] == "/api/orders":
                p["backend"]["service"]["name"] = "tickets"

    def broken_tsv(text: str) -> Path:
        f = tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False)
        f.write(text)
        f.close()
        atexit.register(os.unlink, f.name)
        return Path(f.name)

    extra_route = broken_tsv(ROUTES_TSV.read_text() + "/api/refunds\tpayments\n")
    extra_required = broken_tsv(SERVICE_ENV_TSV.read_text() + "orders\tORDERS_FEATURE\tyes\tx\tnew required variable\n")

    def workflow_broken() -> Problems:
        with tempfile.TemporaryDirectory() as tmp:
            wf = Path(tmp) / "broken.yml"
            wf.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.evnt.name }}\n      - uses: actions/checkout@v4\n        with:\n          fetch-dept: 0\n")
            return tool_output(run(["actionlint", "-no-color", str(wf)]))

    def dockerfile_broken() -> Problems:
        with tempfile.TemporaryDirectory() as tmp:
            df = Path(tmp) / "Dockerfile"
            df.write_text("FROM debian:latest\nRUN apt-get update && apt-get install -y curl\nUSER root\n")
            return tool_output(run(["hadolint", str(df)])) + check_dockerfile(df)

    def skaffold_broken(edit: Callable[[dict], None], schema_only: bool) -> Callable[[], Problems]:
        def thunk() -> Problems:
            cfg = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
            edit(cfg)
            with tempfile.TemporaryDirectory() as tmp:
                f = Path(tmp) / "skaffold.yaml"
                f.write_text(yaml.safe_dump(cfg))
                return check_skaffold_schema(f) if schema_only else check_skaffold_config(f, services)
        return thunk

    def shell_broken() -> Problems:
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / "broken.sh"
            f.write_text("#!/usr/bin/env bash\nfor f in $(ls *.txt); do rm $f; done\n")
            return tool_output(run(["shellcheck", str(f)]))

    def set_images_untagged() -> Problems:
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(K8S, Path(tmp) / "k8s")
            proc = run(["bash", str(Path(tmp) / "k8s" / "set-images.sh"), str(Path(tmp) / "k8s" / "overlays" / "prod"), "auth=registry.example.test/auth"])
            return ["refused"] if proc.returncode != 0 else []

    def unknown_kind(docs):
        return docs + [{"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "x"}}]

    def issuer_typo(d):
        d["spec"]["acme"]["solvers"][0]["http01"]["ingres"] = d["spec"]["acme"]["solvers"][0]["http01"].pop("ingress")

    def jwt_literal(d):
        c = container(d, "auth")
        pem = "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n"
        c["env"] = [{"name": "JWT_PRIVATE_KEY", "value": pem} if e["name"] == "JWT_PRIVATE_KEY" else e for e in c["env"]]

    def jwt_optional(d):
        c = container(d, "auth")
        for e in c["env"]:
            if e["name"] == "JWT_PRIVATE_KEY":
                e["valueFrom"]["secretKeyRef"]["optional"] = True

    def private_key_to(service):
        def fn(d):
            container(d, service)["env"].append(
                {"name": "JWT_PRIVATE_KEY", "valueFrom": {"secretKeyRef": {"name": "jwt-signing-key", "key": "JWT_PRIVATE_KEY"}}}
            )
        return fn

    def public_keys_from(secret):
        def fn(d):
            for e in container(d, name_of(d))["env"]:
                if e["name"] == "JWT_PUBLIC_KEYS":
                    e["valueFrom"]["secretKeyRef"]["name"] = secret
        return fn

    def c0(fn):
        return lambda d: fn(container(d))

    def alerts_broken(edit: Callable[[dict], None], metrics: Callable[[], set[str]] = lambda: known) -> Callable[[], Problems]:
        def thunk() -> Problems:
            doc = load_yaml(ALERTS)
            edit(doc)
            return check_alerts(doc, metrics())
        return thunk

    def dashboard_broken(edit: Callable[[dict], None]) -> Callable[[], Problems]:
        def thunk() -> Problems:
            dash = json.loads(DASHBOARD.read_text())
            edit(dash)
            return check_dashboard(dash, known)
        return thunk

    def scrape_broken(edit_pod_monitor: Callable[[dict], None], edit_alerts: Callable[[dict], None] = lambda d: None) -> Callable[[], Problems]:
        def thunk() -> Problems:
            pod_monitor, alerts = load_yaml(POD_MONITOR), load_yaml(ALERTS)
            edit_pod_monitor(pod_monitor)
            edit_alerts(alerts)
            return check_scrape(pod_monitor, alerts, dev)
        return thunk

    def rule(alert: str) -> Callable[[dict], dict]:
        def get(doc: dict) -> dict:
            found = [r for _, r in rules_of(doc) if r.get("alert") == alert]
            if not found:
                raise LookupError(f"self-test: no alert {alert} to break")
            return found[0]
        return get

    def rename_metric(old: str, new: str) -> Callable[[dict], None]:
        def fn(doc: dict) -> None:
            for _, r in rules_of(doc):
                r["expr"] = r["expr"].replace(old, new)
        return fn

    def no_buckets() -> set[str]:
        # The code as it would be without metrics.rs's bucket matcher: histograms are summaries.
        return exported_metrics(BUCKETS_RE.sub("(", text) for text in rust_sources())

    def panel(title: str) -> Callable[[dict], dict]:
        def get(dash: dict) -> dict:
            found = [p for p in dashboard_panels(dash["panels"]) if p.get("title") == title]
            if not found:
                raise LookupError(f"self-test: no panel {title!r} to break")
            return found[0]
        return get

    def drop_value(value: str) -> Callable[[dict], None]:
        def fn(pm: dict) -> None:
            for e in pm["spec"]["selector"]["matchExpressions"]:
                e["values"] = [v for v in e["values"] if v != value]
        return fn

    return [
        ("routes: an Ingress path removed", lambda: check_routes(mutate(dev, "Ingress", "gittix", paths(lambda ps: ps.pop(1))), routes)),
        ("routes: /api/orders sent to tickets", lambda: check_routes(mutate(dev, "Ingress", "gittix", paths(retarget)), routes)),
        ("routes: a route added to routes.tsv only", lambda: check_routes(dev, load_routes(extra_route))),
        ("routes: pathType Exact", lambda: check_routes(mutate(dev, "Ingress", "gittix", paths(lambda ps: ps[0].update(pathType="Exact"))), routes)),
        ("env: JWT_PRIVATE_KEY removed from auth", lambda: check_env(mutate(dev, "Deployment", "auth", drop_env("JWT_PRIVATE_KEY")), env_rows)),
        ("env: JWT_PRIVATE_KEY as a literal value", lambda: check_env(mutate(dev, "Deployment", "auth", jwt_literal), env_rows)),
        ("env: JWT_PRIVATE_KEY from an optional secret key", lambda: check_env(mutate(dev, "Deployment", "auth", jwt_optional), env_rows)),
        ("env: the signing key given to tickets", lambda: check_env(mutate(dev, "Deployment", "tickets", private_key_to("tickets")), env_rows)),
        ("env: JWT_PUBLIC_KEYS removed from orders", lambda: check_env(mutate(dev, "Deployment", "orders", drop_env("JWT_PUBLIC_KEYS")), env_rows)),
        ("env: JWT_PUBLIC_KEYS from the signing key's Secret", lambda: check_env(mutate(dev, "Deployment", "payments", public_keys_from("jwt-signing-key")), env_rows)),
        ("env: MONGO_URL removed from tickets' ConfigMap", lambda: check_env(mutate(dev, "ConfigMap", cm_name(dev, "tickets-config"), set_cm("MONGO_URL", None)), env_rows)),
        ("env: a misspelt variable in a ConfigMap", lambda: check_env(mutate(dev, "ConfigMap", cm_name(dev, "orders-config"), set_cm("EXPIRATION_WINDOW_SECS", "900")), env_rows)),
        ("env: NATS_URL naming no Service", lambda: check_env(mutate(dev, "ConfigMap", cm_name(dev, "gittix-config"), set_cm("NATS_URL", "nats://natz:4222")), env_rows)),
        ("env: a simulated gateway in production", lambda: check_env(mutate(prod, "ConfigMap", cm_name(prod, "payments-config"), set_cm("PAYMENT_GATEWAY", "simulated")), env_rows)),
        ("env: a new required variable in service-env.tsv", lambda: check_env(dev, load_service_env(extra_required))),
        ("schema: replicas as a string", lambda: check_schemas(mutate(dev, "Deployment", "auth", lambda d: d["spec"].update(replicas="two")))),
        ("schema: an unknown field (strict)", lambda: check_schemas(mutate(dev, "Deployment", "auth", lambda d: d["spec"].update(replica=2)))),
        ("schema: an unknown kind", lambda: check_schemas(unknown_kind(dev))),
        ("schema: a misspelt ClusterIssuer field", lambda: check_schemas(mutate(prod, "ClusterIssuer", "letsencrypt-prod", issuer_typo))),
        ("workloads: no readiness probe", lambda: check_workloads(mutate(dev, "Deployment", "orders", c0(lambda c: c.pop("readinessProbe"))), services, "dev")),
        ("workloads: an image tagged latest", lambda: check_workloads(mutate(dev, "StatefulSet", "nats", c0(lambda c: c.update(image="nats:latest"))), services, "dev")),
        ("workloads: root allowed", lambda: check_workloads(mutate(dev, "Deployment", "client", lambda d: pod_spec(d)["securityContext"].update(runAsNonRoot=False)), services, "dev")),
        ("workloads: no memory limit", lambda: check_workloads(mutate(dev, "StatefulSet", "auth-mongo", c0(lambda c: c["resources"]["limits"].pop("memory"))), services, "dev")),
        ("workloads: NATS without JetStream", lambda: check_workloads(mutate(dev, "StatefulSet", "nats", c0(lambda c: c.update(args=[a for a in c["args"] if a not in ("-js", "--jetstream")]))), services, "dev")),
        ("workloads: NATS without its fsync config", lambda: check_workloads(mutate(dev, "StatefulSet", "nats", c0(lambda c: c.update(args=[a for a in c["args"] if not a.startswith("--config=")]))), services, "dev")),
        ("workloads: auth hashes more at once than its memory holds", lambda: check_workloads(mutate(dev, "ConfigMap", cm_name(dev, "auth-config"), set_cm("HASH_CONCURRENCY", "16")), services, "dev")),
        ("workloads: one replica of auth in prod", lambda: check_workloads(mutate(prod, "Deployment", "auth", lambda d: d["spec"].update(replicas=1)), services, "prod")),
        ("release: prod applied without set-images.sh", lambda: check_release_images(prod, services)),
        ("release: TLS for another host", lambda: check_hosts_and_tls(mutate(prod_release, "Ingress", "gittix", lambda d: d["spec"]["tls"][0].update(hosts=["other.example.com"])), "prod")),
        ("release: load balancer hostname differs", lambda: check_hosts_and_tls(mutate(prod_release, "Service", "ingress-nginx-controller", lambda d: d["metadata"]["annotations"].update({"service.beta.kubernetes.io/do-loadbalancer-hostname": "old.example.com"})), "prod")),
        ("release: set-images.sh refuses an untagged image", set_images_untagged),
        ("skaffold: an unknown field (schema)", skaffold_broken(lambda c: c["build"].update(artefacts=[]), True)),
        ("skaffold: a wrong apiVersion", skaffold_broken(lambda c: c.update(apiVersion="skaffold/v4beta12"), False)),
        ("skaffold: an artifact missing", skaffold_broken(lambda c: c["build"]["artifacts"].pop(), False)),
        ("dockerfile: latest base, root user", dockerfile_broken),
        ("workflows: a broken workflow", workflow_broken),
        ("shellcheck: a broken script", shell_broken),
        ("monitoring: an alert on a metric the code does not export", alerts_broken(rename_metric("events_dead_lettered_total", "events_dead_letters_total"))),
        ("monitoring: an alert without a severity", alerts_broken(lambda d: rule("GittixOutboxBacklog")(d)["labels"].pop("severity"))),
        ("monitoring: an alert without a summary", alerts_broken(lambda d: rule("GittixHttp5xxRatioHigh")(d)["annotations"].pop("summary"))),
        ("monitoring: a misspelt rule field", alerts_broken(lambda d: rule("GittixConsumerRetrying")(d).update(fore="15m"))),
        ("monitoring: rules that are not a PrometheusRule", alerts_broken(lambda d: d.update(kind="ConfigMap"))),
        ("monitoring: an unclosed parenthesis", alerts_broken(lambda d: rule("GittixExpiryLate")(d).update(expr="histogram_quantile(0.99, rate(expiration_lateness_seconds_bucket[5m]) > 1"))),
        ("monitoring: _bucket of a histogram without buckets", alerts_broken(lambda d: None, no_buckets)),
        ("monitoring: a panel on a metric the code does not export", dashboard_broken(lambda d: panel("Orders per minute by status")(d)["targets"][0].update(expr="sum by (status) (rate(order_total[5m]))"))),
        ("monitoring: a panel without targets", dashboard_broken(lambda d: panel("Outbox pending")(d).update(targets=[]))),
        ("monitoring: a panel on one Grafana's datasource uid", dashboard_broken(lambda d: panel("5xx ratio")(d).update(datasource={"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}))),
        ("monitoring: the PodMonitor misses expiration", scrape_broken(drop_value("expiration"))),
        ("monitoring: GittixServiceDown misses payments", scrape_broken(lambda pm: None, lambda d: rule("GittixServiceDown")(d).update(expr=rule("GittixServiceDown")(d)["expr"].replace("|payments", "")))),
    ]


# --- runner ---------------------------------------------------------------------------------


class Report:
    def __init__(self, verbose: bool):
        self.passed = 0
        self.failed = 0
        self.verbose = verbose

    def record(self, name: str, fn: Callable[[], Problems], expect_fail: bool = False) -> Problems | None:
        try:
            problems = fn()
            error = None
        except Exception as err:  # a check that crashes has failed, and says why
            problems = None
            error = f"{type(err).__name__}: {err}"
            if self.verbose:
                traceback.print_exc()
        if expect_fail:
            ok = error is None and bool(problems)
            detail = [] if ok else ([error] if error else ["the check passed on a broken copy"])
        else:
            ok = error is None and not problems
            detail = [error] if error else (problems or [])
        if ok:
            self.passed += 1
            print(f"  ok    {name}")
            if expect_fail and self.verbose:
                for p in problems[:3]:
                    print(f"          (caught: {p})")
        else:
            self.failed += 1
            print(f"  FAIL  {name}")
            for p in detail[:40]:
                print(f"          {p}")
            if len(detail) > 40:
                print(f"          … and {len(detail) - 40} more")
        sys.stdout.flush()
        return problems


def main() -> int:
    verbose = "-v" in sys.argv[1:]
    report = Report(verbose)
    routes = load_routes()
    env_rows = load_service_env()
    services = list(env_rows)
    renders: dict[str, list[dict]] = {}

    print("kubernetes manifests (infra/k8s)")
    for overlay in OVERLAYS:
        def do_render(overlay=overlay) -> Problems:
            renders[overlay] = render(K8S / "overlays" / overlay)
            return []
        report.record(f"{overlay}: renders with kubectl kustomize", do_render)
        if overlay not in renders:
            continue
        docs = renders[overlay]
        report.record(f"{overlay}: objects valid for Kubernetes {K8S_VERSION} (strict)", lambda: check_schemas(docs))
        report.record(f"{overlay}: Ingress routes = infra/routes.tsv", lambda: check_routes(docs, routes))
        report.record(f"{overlay}: service-env.tsv variables set on the Deployments", lambda: check_env(docs, env_rows))
        report.record(f"{overlay}: probes, resources, security, pinned images, data stores", lambda: check_workloads(docs, services, overlay))
        report.record(f"{overlay}: APP_ENV", lambda: check_app_env(docs, overlay))
        if overlay == "dev":
            report.record("dev: host gittix.dev over HTTP", lambda: check_hosts_and_tls(docs, overlay))
    release: dict[str, list[dict]] = {}
    for overlay in ("staging", "prod"):
        def do_release(overlay=overlay) -> Problems:
            release[overlay] = release_render(overlay, services)
            return check_schemas(release[overlay]) + check_release_images(release[overlay], services)
        report.record(f"{overlay}: with images set as deploy.yml sets them", do_release)
        if overlay in release:
            report.record(f"{overlay}: host, TLS, issuer, namespace{', load balancer' if overlay == 'prod' else ''}",
                          lambda: check_hosts_and_tls(release[overlay], overlay))

    print("skaffold.yaml")
    report.record(f"matches the {SKAFFOLD_API_VERSION} schema (check-jsonschema)", lambda: check_skaffold_schema(ROOT / "skaffold.yaml"))
    report.record("vendored schema = ../shared/schemas copy" + ("" if SHARED_SKAFFOLD_SCHEMA.exists() else " (absent here)"), check_shared_schema)
    report.record("apiVersion, kind, artifacts, overlays, profiles", lambda: check_skaffold_config(ROOT / "skaffold.yaml", services))

    print("images")
    report.record("hadolint Dockerfile", lambda: tool_output(run(["hadolint", "Dockerfile"])))
    report.record("Dockerfile: pinned bases, non-root, SERVICE, cached dependencies", lambda: check_dockerfile(ROOT / "Dockerfile"))
    report.record(".dockerignore keeps the workspace, drops the rest", lambda: check_dockerignore(ROOT / ".dockerignore"))

    print("workflows and scripts")
    report.record("actionlint .github/workflows (with shellcheck)", lambda: tool_output(run(["actionlint", "-no-color"])))
    if "dev" in renders:
        report.record("test.yml and deploy.yml do their jobs", lambda: check_workflows_content(services, base_images(renders["dev"])))
    scripts = sorted(str(p.relative_to(ROOT)) for p in [*ROOT.glob("scripts/*.sh"), *ROOT.glob("scripts/test.d/*.sh")])
    report.record("shellcheck scripts/*.sh scripts/test.d/*.sh infra/k8s/set-images.sh",
                  lambda: tool_output(run(["shellcheck", "-x", *scripts, "infra/k8s/set-images.sh"])))

    print("monitoring (infra/monitoring)")
    known: set[str] = set()

    def do_metrics() -> Problems:
        known.update(exported_metrics(rust_sources()))
        return [] if known else [f"no metrics::counter!/gauge!/histogram! under {', '.join(METRIC_SOURCES)}"]
    report.record("the metrics crates/ and services/ export", do_metrics)
    report.record("alerts.yaml: a PrometheusRule, severity and summary, exported metrics only", lambda: check_alerts(load_yaml(ALERTS), known))
    report.record("dashboard.json: panels with targets on exported metrics only", lambda: check_dashboard(json.loads(DASHBOARD.read_text()), known))
    if "dev" in renders:
        report.record("podmonitor.yaml and GittixServiceDown cover the pods annotated for scraping",
                      lambda: check_scrape(load_yaml(POD_MONITOR), load_yaml(ALERTS), renders["dev"]))

    print("self-tests: each check fails on a broken copy")
    if all(k in renders for k in ("dev", "prod")) and "prod" in release:
        for name, thunk in self_tests(renders["dev"], renders["prod"], release["prod"], routes, env_rows, services, known):
            report.record(name, thunk, expect_fail=True)
    else:
        report.record("self-tests need the dev and prod renders", lambda: ["a render failed above"])

    print(f"infra: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The rendered overlays: valid Kubernetes objects (kubernetes-validate, strict, and the
cert-manager ClusterIssuer schema), the workloads' probes, resources, security settings,
images and data stores, and the release: hosts, TLS, issuers, the DigitalOcean load
balancer, images set as the deploy workflow sets them, APP_ENV."""

from __future__ import annotations

import functools
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils

from .common import (
    K8S,
    SCHEMAS,
    Problems,
    RenderError,
    configmaps,
    find,
    kind_of,
    label,
    min_replicas,
    name_of,
    ns_of,
    objects,
    pod_spec,
    render,
    resolve_env,
    run,
    split_image,
    the_deployment,
    workloads,
)

# The Kubernetes version the manifests must be valid for: the oldest we support (kind,
# minikube and DigitalOcean all offer it or newer).
K8S_VERSION = "1.33"
CLUSTER_ISSUER_SCHEMA = SCHEMAS / "cert-manager-clusterissuer.json"
# Services nothing calls over HTTP (no route, no other service's URL names them): no Service
# object needed. Both consume events; their port serves the probes and Prometheus's scrape.
NO_SERVICE = {"expiration", "notifications"}
ISSUERS = {
    "staging": ("letsencrypt-staging", "https://acme-staging-v02.api.letsencrypt.org/directory"),
    "prod": ("letsencrypt-prod", "https://acme-v02.api.letsencrypt.org/directory"),
}
# auth hashes passwords at 19 MiB each, HASH_CONCURRENCY at once (service-env.tsv): those must
# take at most half of its memory limit, the rest being the process itself.
HASH_MIB = 19
FAKE_REGISTRY = "registry.example.test/gittix"
FAKE_SHA = "0123456789abcdef0123456789abcdef01234567"


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
        replicas = min_replicas(docs, doc)
        if overlay == "prod" and replicas < 2:
            problems.append(f"{service}: {replicas} replica in prod; stateless services run several")
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
    # NATS (its chart, JetStream, the cluster, the users): nats.py.
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
        problems += check_controller_config(docs)
    return problems


# What an access log line must not have: the query string (a password reset link's token is
# in it: /reset-password?token=…) and the Referer (a page's address, query and all).
LEAKY_LOG_VARIABLES = re.compile(r"\$(request(?![_a-z])|request_uri|args|query_string|arg_\w+|http_referer)\b")


def check_controller_config(docs: list[dict]) -> Problems:
    """prod's ingress-nginx controller ConfigMap: the provider's keys kept, and an access log
    format without query strings or Referer (ingress-nginx's default has both)."""
    configs = [d for d in find(docs, "ConfigMap", "ingress-nginx-controller") if ns_of(d) == "ingress-nginx"]
    if len(configs) != 1:
        return ["prod: no ConfigMap ingress-nginx/ingress-nginx-controller (the controller's access log format)"]
    data = configs[0].get("data") or {}
    problems = []
    if data.get("use-proxy-protocol") != "true":
        problems.append("prod: the controller's ConfigMap drops use-proxy-protocol (the load balancer speaks it)")
    log_format = data.get("log-format-upstream")
    if not log_format:
        problems.append("prod: the controller's ConfigMap sets no log-format-upstream (the default logs query strings and the Referer)")
    else:
        leaks = sorted({m.group(0) for m in LEAKY_LOG_VARIABLES.finditer(log_format)})
        if leaks:
            problems.append(f"prod: the controller's access log format has {', '.join(leaks)} (query strings or the Referer: a reset link's token)")
        if "$uri" not in log_format:
            problems.append("prod: the controller's access log format has no $uri (the path)")
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

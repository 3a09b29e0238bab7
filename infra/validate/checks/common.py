"""What every check shares: the repository's paths and tables, the pinned tools, rendering an
overlay, and helpers over rendered Kubernetes objects."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "infra" / "k8s"
OVERLAYS = ("dev", "staging", "prod")
ROUTES_TSV = ROOT / "infra" / "routes.tsv"
SERVICE_ENV_TSV = ROOT / "infra" / "service-env.tsv"
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
MONITORING = ROOT / "infra" / "monitoring"
# The pod label that names a service (every selector selects by it alone).
NAME_LABEL = "app.kubernetes.io/name"

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
    # NATS is rendered from its vendored Helm chart (infra/k8s/nats): kustomize runs helm,
    # which scripts/install.sh builds (pinned) into the tools folder on PATH.
    helm = shutil.which("helm")
    if helm is None:
        raise RenderError("helm is not on PATH: scripts/install.sh builds it (HELM_VERSION in scripts/lib.sh)")
    proc = run(["kubectl", "kustomize", "--enable-helm", "--helm-command", helm, str(path)])
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


def mutate(docs: list[dict], kind: str, name: str, fn) -> list[dict]:
    """A broken copy for a self-test: `docs` with `fn` applied to each `kind` named `name`."""
    docs = copy.deepcopy(docs)
    hits = find(docs, kind, name)
    if not hits:
        raise LookupError(f"self-test: no {kind} {name} to break")
    for d in hits:
        fn(d)
    return docs


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


def autoscalers_of(docs: list[dict], doc: dict) -> list[dict]:
    """The HorizontalPodAutoscalers whose scaleTargetRef is this workload."""
    return [
        h for h in objects(docs, "HorizontalPodAutoscaler")
        if ns_of(h) == ns_of(doc)
        and (h.get("spec", {}).get("scaleTargetRef") or {}).get("kind") == kind_of(doc)
        and (h.get("spec", {}).get("scaleTargetRef") or {}).get("name") == name_of(doc)
    ]


def min_replicas(docs: list[dict], doc: dict) -> int:
    """The fewest pods a workload runs: its replicas, or with an autoscaler (which then owns
    the count) the autoscaler's minReplicas."""
    spec = doc.get("spec", {})
    hpas = autoscalers_of(docs, doc)
    if "replicas" not in spec and hpas:
        return min(int(h["spec"].get("minReplicas", 1)) for h in hpas)
    return int(spec.get("replicas", 1))


def load_yaml(path: Path) -> dict:
    """The one YAML document of a file."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    if len(docs) != 1:
        raise ValueError(f"{path.relative_to(ROOT)}: {len(docs)} YAML documents, want 1")
    return docs[0]


def load_yaml_all(path: Path) -> list[dict]:
    """Every YAML document of a file (`---`-separated), empty ones skipped."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    if not docs:
        raise ValueError(f"{path.relative_to(ROOT)}: no YAML document")
    for d in docs:
        if not isinstance(d, dict):
            raise ValueError(f"{path.relative_to(ROOT)}: a document is not a mapping")
    return docs

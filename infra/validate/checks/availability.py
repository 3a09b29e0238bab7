"""Availability: a PodDisruptionBudget for every workload of more than one replica (and none
that would block a drain), HorizontalPodAutoscalers for the HTTP services wherever they run
more than one replica (never fighting a `replicas` field, never on CPU without CPU requests),
and the HTTP services' pods spread across nodes in staging and prod."""

from __future__ import annotations

import re
from typing import Iterable

from .common import (
    NAME_LABEL,
    Problems,
    autoscalers_of,
    find,
    label,
    min_replicas,
    name_of,
    ns_of,
    objects,
    pod_spec,
    selects,
    workloads,
)

HOSTNAME = "kubernetes.io/hostname"
# The overlays whose HTTP services must spread across nodes.
SPREAD_OVERLAYS = ("staging", "prod")


def pod_labels(doc: dict) -> dict:
    return (doc.get("spec", {}).get("template", {}).get("metadata") or {}).get("labels") or {}


def disruptions_allowed(pdb: dict, replicas: int) -> int:
    """How many of `replicas` pods the budget lets a drain evict at once."""
    spec = pdb.get("spec") or {}

    def count(v: object, round_up: bool) -> int:
        m = re.fullmatch(r"(\d+)%", str(v))
        if not m:
            return int(v)
        exact = replicas * int(m.group(1)) / 100
        return -int(-exact // 1) if round_up else int(exact)

    if "minAvailable" in spec:
        return replicas - count(spec["minAvailable"], True)
    if "maxUnavailable" in spec:
        return count(spec["maxUnavailable"], True)
    return 0


def check_disruption_budgets(docs: list[dict]) -> Problems:
    problems: Problems = []
    pdbs = objects(docs, "PodDisruptionBudget")
    for doc in workloads(docs):
        replicas = min_replicas(docs, doc)
        mine = [p for p in pdbs if ns_of(p) == ns_of(doc) and selects((p.get("spec") or {}).get("selector") or {"matchLabels": {"-": "-"}}, pod_labels(doc))]
        where = f"{label(doc)} ({replicas} replica{'s' if replicas != 1 else ''})"
        if replicas >= 2:
            if len(mine) != 1:
                problems.append(f"{where}: {len(mine)} PodDisruptionBudgets select its pods, want 1")
            for p in mine:
                allowed = disruptions_allowed(p, replicas)
                if allowed < 1:
                    problems.append(f"{where}: PodDisruptionBudget {name_of(p)} lets no pod be evicted: every node drain would stall")
                if allowed >= replicas:
                    problems.append(f"{where}: PodDisruptionBudget {name_of(p)} lets every pod be evicted at once")
        else:
            for p in mine:
                if disruptions_allowed(p, 1) < 1:
                    problems.append(f"{where}: PodDisruptionBudget {name_of(p)} on a single pod blocks every node drain")
    for p in pdbs:
        sel = (p.get("spec") or {}).get("selector") or {}
        hits = [name_of(d) for d in workloads(docs) if ns_of(d) == ns_of(p) and selects(sel, pod_labels(d))]
        if len(hits) != 1:
            problems.append(f"{label(p)}: selects the pods of {hits or 'no workload'}, want exactly one workload")
    return problems


def check_autoscalers(docs: list[dict], http_services: Iterable[str]) -> Problems:
    """Where the overlay runs several pods of its stateless services, each HTTP service has one
    HorizontalPodAutoscaler (autoscaling/v2) of at least 2 pods, owning the count; CPU and
    memory targets have requests to be a percentage of."""
    problems: Problems = []
    http_services = list(http_services)
    deployments = {name_of(d): d for d in objects(docs, "Deployment")}
    replicated = any(min_replicas(docs, d) >= 2 for d in deployments.values())
    for hpa in objects(docs, "HorizontalPodAutoscaler"):
        where = label(hpa)
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        if hpa.get("apiVersion") != "autoscaling/v2":
            problems.append(f"{where}: apiVersion {hpa.get('apiVersion')}, want autoscaling/v2")
        if ref.get("apiVersion") != "apps/v1" or ref.get("kind") != "Deployment" or not find(docs, "Deployment", ref.get("name", "")):
            problems.append(f"{where}: scaleTargetRef {ref} is not a Deployment of the overlay")
            continue
        target = find(docs, "Deployment", ref["name"])[0]
        if ref["name"] not in http_services:
            problems.append(f"{where}: scales {ref['name']}, not an HTTP service")
        if "replicas" in (target.get("spec") or {}):
            problems.append(f"{where}: Deployment {ref['name']} sets replicas: each apply would reset the autoscaler's count")
        lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas", 0)
        if lo < 2 or hi < lo:
            problems.append(f"{where}: minReplicas {lo}, maxReplicas {hi}: want at least 2, and a maximum no lower")
        metrics = spec.get("metrics") or []
        if not metrics:
            problems.append(f"{where}: no metrics (it would default to CPU without saying so)")
        for m in metrics:
            res = (m.get("resource") or {}) if m.get("type") == "Resource" else (m.get("containerResource") or {}) if m.get("type") == "ContainerResource" else {}
            if not res or (res.get("target") or {}).get("type") != "Utilization":
                continue
            for c in pod_spec(target).get("containers") or []:
                if m.get("type") == "ContainerResource" and c.get("name") != res.get("container"):
                    continue
                if res.get("name") not in ((c.get("resources") or {}).get("requests") or {}):
                    problems.append(f"{where}: targets {res.get('name')} utilization, container {c.get('name')} requests no {res.get('name')}")
    for service in http_services:
        doc = deployments.get(service)
        if doc is None:
            continue
        hpas = autoscalers_of(docs, doc)
        if replicated and len(hpas) != 1:
            problems.append(f"{service}: {len(hpas)} HorizontalPodAutoscalers, want 1 (the overlay runs several replicas)")
        if not replicated and hpas:
            problems.append(f"{service}: an autoscaler in an overlay of single replicas")
    return problems


def check_spread(docs: list[dict], http_services: Iterable[str]) -> Problems:
    """Each HTTP service's pods spread across nodes: a topologySpreadConstraint on
    kubernetes.io/hostname, skew 1, counting exactly that service's pods."""
    problems: Problems = []
    for service in http_services:
        found = find(docs, "Deployment", service)
        if len(found) != 1:
            problems.append(f"{service}: {len(found)} Deployments")
            continue
        labels = pod_labels(found[0])
        others = [pod_labels(d) for d in workloads(docs) if name_of(d) != service]
        ok = False
        for c in pod_spec(found[0]).get("topologySpreadConstraints") or []:
            sel = c.get("labelSelector") or {}
            keys = c.get("matchLabelKeys") or []
            own = selects(sel, labels) if sel else False
            # matchLabelKeys narrows the selector to pods with the same values of those keys.
            narrowed = lambda other: selects(sel, other) and all(other.get(k) == labels.get(k) for k in keys)  # noqa: E731
            if c.get("topologyKey") == HOSTNAME and c.get("maxSkew") == 1 and own and not any(narrowed(o) for o in others):
                ok = True
        if not ok:
            problems.append(f"{service}: no topologySpreadConstraint spreading its pods (and only them) across {HOSTNAME} with maxSkew 1")
        if NAME_LABEL not in labels:
            problems.append(f"{service}: its pods have no {NAME_LABEL}")
    return problems

"""Routes: each overlay's Ingress routes exactly infra/routes.tsv (the local nginx's table)."""

from __future__ import annotations

from .common import Problems, label, name_of, ns_of, objects


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

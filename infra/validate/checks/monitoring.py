"""infra/monitoring: the alerting rules (a PrometheusRule) and the Grafana dashboard read only
metrics the Rust code exports; the PodMonitors and the service-down alert cover exactly the
pods annotated for scraping, each on the port it names; no metrics port is reachable through
the Ingress."""

from __future__ import annotations

import functools
import json
import re
from typing import Iterable

import jsonschema

from .common import MONITORING, NAME_LABEL, ROOT, SCHEMAS, Problems, kind_of, name_of, ns_of, objects, pod_spec, selects, workloads

PROMETHEUS_RULE_SCHEMA = SCHEMAS / "monitoring-prometheusrule.json"
ALERTS = MONITORING / "alerts.yaml"
DASHBOARD = MONITORING / "dashboard.json"
POD_MONITOR = MONITORING / "podmonitor.yaml"
# Where the metrics are defined: the Rust sources under these directories.
METRIC_SOURCES = ("crates", "services")
# Series Prometheus itself makes for every target it scrapes.
PROMETHEUS_SERIES = {"up"}
# What the pod label NAME_LABEL is called on `up` (podmonitor.yaml's podTargetLabels, or the
# labelmap of an annotation-based scrape job).
UP_NAME_LABEL = "app_kubernetes_io_name"


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



def scrape_annotations(doc: dict) -> dict | None:
    """The prometheus.io/* annotations of a workload's pod template when it asks to be
    scraped (prometheus.io/scrape: "true"), else None."""
    ann = ((doc.get("spec", {}).get("template", {}).get("metadata") or {}).get("annotations")) or {}
    return ann if ann.get("prometheus.io/scrape") == "true" else None


def metrics_port(doc: dict, ann: dict) -> tuple[int | None, str | None]:
    """The container port (number, name) that prometheus.io/port names; (None, None) when
    the annotation is not a number, (n, None) when no container port has that number."""
    raw = str(ann.get("prometheus.io/port", ""))
    if not raw.isdigit():
        return None, None
    number = int(raw)
    names = [p.get("name") for c in pod_spec(doc).get("containers") or [] for p in c.get("ports") or [] if p.get("containerPort") == number]
    return number, (names[0] if names else None)


def check_scrape(pod_monitors: list[dict], alerts: dict, docs: list[dict]) -> Problems:
    """podmonitor.yaml (one or more PodMonitors) scrapes exactly the pods whose template asks
    for it (prometheus.io/* annotations): each such pod is selected by exactly one PodMonitor,
    whose single endpoint is the container port the pod's prometheus.io/port names (by name,
    as the operator selects ports) and its prometheus.io/path; no other pod is selected; each
    PodMonitor labels `up` with the pod's name. Every `up` of alerts.yaml selects exactly
    those services by that label."""
    problems: Problems = []
    if not pod_monitors:
        problems.append("podmonitor.yaml has no PodMonitor")
    for pm in pod_monitors:
        if pm.get("apiVersion") != "monitoring.coreos.com/v1" or kind_of(pm) != "PodMonitor":
            problems.append(f"podmonitor.yaml: {name_of(pm) or '(unnamed)'} is a {pm.get('apiVersion')} {kind_of(pm)}, want a monitoring.coreos.com/v1 PodMonitor")
    names = [name_of(pm) for pm in pod_monitors]
    for name in sorted({n for n in names if names.count(n) > 1 or not n}):
        problems.append(f"podmonitor.yaml: {'a PodMonitor has no name' if not name else f'two PodMonitors are named {name}'}")
    annotated: set[str] = set()
    scrapes: dict[str, set[str]] = {name_of(pm): set() for pm in pod_monitors}
    for doc in workloads(docs):
        name = name_of(doc)
        labels = (doc.get("spec", {}).get("template", {}).get("metadata") or {}).get("labels") or {}
        by = [pm for pm in pod_monitors if selects((pm.get("spec") or {}).get("selector") or {}, labels)]
        for pm in by:
            scrapes[name_of(pm)].add(name)
        ann = scrape_annotations(doc)
        if ann is None:
            if by:
                problems.append(f"{name}: not annotated for scraping, yet PodMonitor {', '.join(name_of(pm) for pm in by)} selects it")
            continue
        annotated.add(name)
        if len(by) != 1:
            problems.append(
                f"{name}: annotated for scraping, selected by {len(by)} PodMonitors {[name_of(pm) for pm in by]}, want exactly one "
                "(each scrapes every pod it selects on its own endpoint's port)"
            )
            continue
        pm = by[0]
        endpoints = (pm.get("spec") or {}).get("podMetricsEndpoints") or []
        if len(endpoints) != 1:
            continue  # said once for the PodMonitor, below
        ep = endpoints[0]
        number, port_name = metrics_port(doc, ann)
        if number is None:
            problems.append(f"{name}: prometheus.io/port {ann.get('prometheus.io/port')!r} is not a port number")
        elif port_name is None:
            problems.append(f"{name}: prometheus.io/port {number} is no named container port (a PodMonitor selects ports by name)")
        elif ep.get("port") != port_name:
            problems.append(f"{name}: metrics on port {number} ({port_name}), PodMonitor {name_of(pm)} scrapes port {ep.get('port')}")
        for key in ("targetPort", "portNumber"):
            if key in ep:
                problems.append(f"PodMonitor {name_of(pm)}: endpoint sets {key}; name the container port with `port` alone")
        if ep.get("path", "/metrics") != ann.get("prometheus.io/path", "/metrics"):
            problems.append(f"{name}: metrics at {ann.get('prometheus.io/path', '/metrics')}, PodMonitor {name_of(pm)} scrapes {ep.get('path', '/metrics')}")
    if not annotated:
        return problems + ["no pod template has the annotation prometheus.io/scrape: \"true\""]
    for pm in pod_monitors:
        spec = pm.get("spec") or {}
        where = f"PodMonitor {name_of(pm)}"
        if not scrapes.get(name_of(pm)):
            problems.append(f"{where} selects no pod annotated for scraping")
        endpoints = spec.get("podMetricsEndpoints") or []
        if len(endpoints) != 1:
            problems.append(f"{where} has {len(endpoints)} podMetricsEndpoints, want 1 (every pod it selects is scraped on each)")
        if NAME_LABEL not in (spec.get("podTargetLabels") or []):
            problems.append(f"{where}: podTargetLabels lacks {NAME_LABEL}: `up` would not say which service it is")
    for group, rule in rules_of(alerts):
        for m in re.finditer(r"(?<![\w:])up\b\s*(\{[^}]*\})?", str(rule.get("expr", ""))):
            matcher = re.search(UP_NAME_LABEL + r'\s*=~\s*"([^"]*)"', m.group(1) or "")
            services = set(matcher.group(1).split("|")) if matcher else None
            if services != annotated:
                problems.append(
                    f"{group}: {rule.get('alert')}: `up` selects {sorted(services) if services else 'every target'}, "
                    f"want {UP_NAME_LABEL}=~ the scraped services {sorted(annotated)}"
                )
    return problems


def path_under(path: str, prefix: str, path_type: str) -> bool:
    """Whether an Ingress path of this pathType matches the request path (Prefix: element by
    element, as Kubernetes matches it)."""
    if path_type == "Exact":
        return path == prefix
    base = prefix.rstrip("/")
    return base == "" or path == base or path.startswith(base + "/")


def check_metrics_private(docs: list[dict]) -> Problems:
    """Metrics stay inside the cluster: no Ingress path sends a pod's metrics path to its
    metrics port (the services' /metrics on 3000 is outside every /api/<service> prefix; the
    client's port 3000, where `/` goes, serves none), and a metrics port of its own (one not
    named http, such as the client's 9100) is on no Service."""
    problems: Problems = []
    scraped = {}
    for doc in workloads(docs):
        ann = scrape_annotations(doc)
        if ann is not None:
            number, port_name = metrics_port(doc, ann)
            labels = (doc["spec"]["template"].get("metadata") or {}).get("labels") or {}
            scraped[name_of(doc)] = (doc, labels, number, port_name, ann.get("prometheus.io/path", "/metrics"))
    services = {(ns_of(s), name_of(s)): s for s in objects(docs, "Service")}

    def targets(svc: dict, port: dict | None) -> list[tuple[str, int]]:
        """(pod, container port) a Service sends its port (by name or number; every port when
        None) to, for the scraped pods it selects."""
        out = []
        selector = (svc.get("spec") or {}).get("selector") or {}
        for sp in (svc.get("spec") or {}).get("ports") or []:
            if port is not None and not (("name" in port and sp.get("name") == port["name"]) or ("number" in port and sp.get("port") == port["number"])):
                continue
            tp = sp.get("targetPort", sp.get("port"))
            for name, (doc, labels, _n, _pn, _path) in scraped.items():
                if ns_of(doc) != ns_of(svc) or not selector or not selects({"matchLabels": selector}, labels):
                    continue
                ports = [(p.get("name"), p.get("containerPort")) for c in pod_spec(doc).get("containers") or [] for p in c.get("ports") or []]
                out += [(name, num) for pn, num in ports if (pn == tp if isinstance(tp, str) else num == tp)]
        return out

    for svc in services.values():
        for pod, num in targets(svc, None):
            _doc, _labels, number, port_name, _path = scraped[pod]
            if num == number and port_name != "http":
                problems.append(f"Service {name_of(svc)} exposes {pod}'s metrics port {number} ({port_name}), which only Prometheus scrapes, from the pods")
    for ing in objects(docs, "Ingress"):
        for rule in (ing.get("spec") or {}).get("rules") or []:
            for p in (rule.get("http") or {}).get("paths") or []:
                backend = (p.get("backend") or {}).get("service") or {}
                svc = services.get((ns_of(ing), backend.get("name")))
                if svc is None:
                    continue
                for pod, num in targets(svc, backend.get("port") or {}):
                    _doc, _labels, number, _pn, mpath = scraped[pod]
                    if num == number and path_under(mpath, p.get("path", "/"), p.get("pathType", "Prefix")):
                        problems.append(
                            f"Ingress {name_of(ing)}: {rule.get('host', '*')}{p.get('path')} goes to {pod}'s port {num}, "
                            f"its metrics port: GET {mpath} would be public"
                        )
    if not scraped:
        problems.append("no pod template has the annotation prometheus.io/scrape: \"true\"")
    return problems

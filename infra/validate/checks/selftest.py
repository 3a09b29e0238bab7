"""Self-tests: every check, fed a deliberately broken copy of what it checks, must fail.
self_tests() lists them as (name, thunk) pairs; the runner expects each thunk to report
problems."""

from __future__ import annotations

import atexit
import base64
import copy
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import yaml

from .build import LIB_SH, check_dockerfile, check_local_versions, check_skaffold_config, check_skaffold_schema
from .build import RUST_TOOLCHAIN, check_dockerignore, check_toolchain
from .common import (
    K8S,
    ROOT,
    ROUTES_TSV,
    SERVICE_ENV_TSV,
    Problems,
    find,
    label,
    load_routes,
    load_service_env,
    load_yaml,
    load_yaml_all,
    mutate,
    name_of,
    ns_of,
    objects,
    pod_spec,
    run,
    service_container,
    tool_output,
)
from .availability import check_autoscalers, check_disruption_budgets, check_spread
from .env import check_env, check_public_url
from .labels import check_labels
from .manifests import check_hosts_and_tls, check_release_images, check_schemas, check_workloads
from .monitoring import (
    ALERTS,
    BUCKETS_RE,
    DASHBOARD,
    POD_MONITOR,
    check_alerts,
    check_dashboard,
    check_metrics_private,
    check_scrape,
    dashboard_panels,
    exported_metrics,
    rules_of,
    rust_sources,
)
from .network import MONITORING_POLICY, check_network_policies, check_ownership, ownership
from .routes import check_routes


def drop(docs: list[dict], kind: str, name: str) -> list[dict]:
    """A copy without the named object(s)."""
    if not find(docs, kind, name):
        raise LookupError(f"self-test: no {kind} {name} to remove")
    return [copy.deepcopy(d) for d in docs if not (d.get("kind") == kind and name_of(d) == name)]


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


def secret_data(key: str, value: str) -> Callable[[dict], None]:
    """A generated Secret's key set to another value."""
    return lambda d: d["data"].update({key: base64.b64encode(value.encode()).decode()})


def secret_of(var: str, secret: str) -> Callable[[dict], None]:
    """A Deployment's variable read from another Secret (same key)."""
    def fn(doc: dict) -> None:
        for e in container(doc, name_of(doc)).get("env", []):
            if e["name"] == var:
                e["valueFrom"]["secretKeyRef"]["name"] = secret
    return fn


def cm_name(docs: list[dict], prefix: str) -> str:
    return next(name_of(d) for d in objects(docs, "ConfigMap") if name_of(d).startswith(prefix + "-"))


def self_tests(dev: list[dict], prod: list[dict], prod_release: list[dict], routes, env_rows, services, known: set[str], staging: list[dict]) -> list[tuple[str, Callable[[], Problems]]]:
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

    def scrape_broken(edit_pod_monitors: Callable[[list[dict]], None], edit_alerts: Callable[[dict], None] = lambda d: None) -> Callable[[], Problems]:
        def thunk() -> Problems:
            pod_monitors, alerts = load_yaml_all(POD_MONITOR), load_yaml(ALERTS)
            edit_pod_monitors(pod_monitors)
            edit_alerts(alerts)
            return check_scrape(pod_monitors, alerts, dev)
        return thunk

    def pod_monitor(name: str) -> Callable[[list[dict]], dict]:
        def get(pms: list[dict]) -> dict:
            found = [pm for pm in pms if name_of(pm) == name]
            if not found:
                raise LookupError(f"self-test: no PodMonitor {name} to break")
            return found[0]
        return get

    def services_also_select(value: str) -> Callable[[list[dict]], None]:
        def fn(pms: list[dict]) -> None:
            pod_monitor("gittix")(pms)["spec"]["selector"]["matchExpressions"][0]["values"].append(value)
        return fn

    def one_pod_monitor(pms: list[dict]) -> None:
        # The naive design: every pod selected by one PodMonitor with both ports' endpoints.
        first = pod_monitor("gittix")(pms)
        first["spec"]["selector"]["matchExpressions"][0]["values"].append("client")
        first["spec"]["podMetricsEndpoints"].append(dict(first["spec"]["podMetricsEndpoints"][0], port="metrics"))
        pms[:] = [first]

    def client_endpoint(**fields) -> Callable[[list[dict]], None]:
        return lambda pms: pod_monitor("gittix-client")(pms)["spec"]["podMetricsEndpoints"][0].update(fields)

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

    def drop_value(value: str) -> Callable[[list[dict]], None]:
        def fn(pms: list[dict]) -> None:
            for e in pod_monitor("gittix")(pms)["spec"]["selector"]["matchExpressions"]:
                e["values"] = [v for v in e["values"] if v != value]
        return fn

    def client_service(fn: Callable[[dict], None]) -> list[dict]:
        return mutate(dev, "Service", "client", fn)

    # --- labels, network policies, availability -----------------------------------------
    http_services = list(dict.fromkeys(s for _, s in routes))

    def tmpl_labels(d):
        return d["spec"]["template"]["metadata"]["labels"]

    def both_labels(key, value):
        def fn(d):
            d["metadata"]["labels"][key] = value
            tmpl_labels(d)[key] = value
        return fn

    def rules(direction, index):
        """The peers' list (from/to) of rule `index` of a NetworkPolicy."""
        return lambda d: d["spec"][direction][index]["from" if direction == "ingress" else "to"]

    def network(docs, rows=None, scrape=None) -> Callable[[], Problems]:
        return lambda: check_network_policies(docs, routes, rows or env_rows, scrape if scrape is not None else load_yaml_all(MONITORING_POLICY))

    def in_values(edit):
        def fn(peers):
            for peer in peers:
                for e in (peer.get("podSelector") or {}).get("matchExpressions") or []:
                    edit(e["values"])
        return fn

    def scrape_policy(name, edit=None):
        """networkpolicy.yaml's documents, the named one edited (or left out, without edit)."""
        docs = load_yaml_all(MONITORING_POLICY)
        if not any(name_of(d) == name for d in docs):
            raise LookupError(f"self-test: no monitoring NetworkPolicy {name} to break")
        if edit is None:
            return [d for d in docs if name_of(d) != name]
        for d in docs:
            if name_of(d) == name:
                edit(d)
        return docs

    def scrape_without(value):
        return scrape_policy("gittix-metrics-scrape", lambda d: d["spec"]["podSelector"]["matchExpressions"][0]["values"].remove(value))

    extra_url = broken_tsv(SERVICE_ENV_TSV.read_text() + "orders\tTICKETS_URL\tno\thttp://tickets:3000\ta new call from orders to tickets\n")

    def with_pdb(docs, name):
        return docs + [{"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": ns_of(find(docs, "Deployment", name)[0])},
                        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}}}}]

    def spread(fn):
        return lambda d: fn(pod_spec(d)["topologySpreadConstraints"][0])

    # --- notifications: its mail transport, its links, its two stores --------------------
    def sendgrid_key_optional(d):
        for e in container(d, "notifications")["env"]:
            if e["name"] == "SENDGRID_API_KEY":
                e["valueFrom"]["secretKeyRef"]["optional"] = True

    def internet_rule(d):
        """payments' egress rule to the internet (Stripe), appended to another policy."""
        stripe = [r for r in find(d, "NetworkPolicy", "payments")[0]["spec"]["egress"] if any(internet(p) for p in r["to"])]
        return lambda p: p["spec"]["egress"].append(copy.deepcopy(stripe[0]))

    def internet(peer):
        # The internet's rule (0.0.0.0/0, private ranges excepted), not a managed store's VPC.
        return (peer.get("ipBlock") or {}).get("cidr") == "0.0.0.0/0"

    def without_internet(d):
        d["spec"]["egress"] = [r for r in d["spec"]["egress"] if not any(internet(p) for p in r.get("to") or [])]

    def mail_config(docs, key, value):
        return mutate(docs, "ConfigMap", cm_name(docs, "notifications-config"), set_cm(key, value))


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
        ("env: MONGO_URL removed from tickets' Deployment", lambda: check_env(mutate(dev, "Deployment", "tickets", drop_env("MONGO_URL")), env_rows)),
        ("env: orders' MONGO_URL from tickets' managed Secret (prod)", lambda: check_env(mutate(prod, "Deployment", "orders", secret_of("MONGO_URL", "tickets-managed-mongo")), env_rows)),
        ("env: a misspelt variable in a ConfigMap", lambda: check_env(mutate(dev, "ConfigMap", cm_name(dev, "orders-config"), set_cm("EXPIRATION_WINDOW_SECS", "900")), env_rows)),
        ("env: NATS_URL naming no Service", lambda: check_env(mutate(dev, "ConfigMap", cm_name(dev, "gittix-config"), set_cm("NATS_URL", "nats://natz:4222")), env_rows)),
        ("env: a simulated gateway in production", lambda: check_env(mutate(prod, "ConfigMap", cm_name(prod, "payments-config"), set_cm("PAYMENT_GATEWAY", "simulated")), env_rows)),
        ("env: a new required variable in service-env.tsv", lambda: check_env(dev, load_service_env(extra_required))),
        ("env: SendGrid in production with an optional SENDGRID_API_KEY", lambda: check_env(mutate(prod, "Deployment", "notifications", sendgrid_key_optional), env_rows)),
        ("env: prod sending mail to a Mailpit it does not run", lambda: check_env(mail_config(prod, "MAIL_TRANSPORT", "smtp://mailpit:1025"), env_rows)),
        ("env: a misspelt MAIL_TRANSPORT", lambda: check_env(mail_config(staging, "MAIL_TRANSPORT", "send-grid"), env_rows)),
        ("env: staging's emails linking to prod's host", lambda: check_public_url(mail_config(staging, "PUBLIC_URL", "https://gittix.example.com"), env_rows)),
        ("env: dev's emails linking over https (its Ingress has no TLS)", lambda: check_public_url(mail_config(dev, "PUBLIC_URL", "https://gittix.dev"), env_rows)),
        ("schema: replicas as a string", lambda: check_schemas(mutate(dev, "Deployment", "auth", lambda d: d["spec"].update(replicas="two")))),
        ("schema: an unknown field (strict)", lambda: check_schemas(mutate(dev, "Deployment", "auth", lambda d: d["spec"].update(replica=2)))),
        ("schema: an unknown kind", lambda: check_schemas(unknown_kind(dev))),
        ("schema: a misspelt ClusterIssuer field", lambda: check_schemas(mutate(prod, "ClusterIssuer", "letsencrypt-prod", issuer_typo))),
        ("workloads: no readiness probe", lambda: check_workloads(mutate(dev, "Deployment", "orders", c0(lambda c: c.pop("readinessProbe"))), services, "dev")),
        ("workloads: an image tagged latest", lambda: check_workloads(mutate(dev, "StatefulSet", "nats", c0(lambda c: c.update(image="nats:latest"))), services, "dev")),
        ("workloads: root allowed", lambda: check_workloads(mutate(dev, "Deployment", "client", lambda d: pod_spec(d)["securityContext"].update(runAsNonRoot=False)), services, "dev")),
        ("workloads: no memory limit", lambda: check_workloads(mutate(dev, "StatefulSet", "auth-mongo", c0(lambda c: c["resources"]["limits"].pop("memory"))), services, "dev")),
        ("workloads: auth hashes more at once than its memory holds", lambda: check_workloads(mutate(dev, "ConfigMap", cm_name(dev, "auth-config"), set_cm("HASH_CONCURRENCY", "16")), services, "dev")),
        ("workloads: one replica of auth in prod", lambda: check_workloads(mutate(prod, "Deployment", "auth", lambda d: d["spec"].update(replicas=1)), services, "prod")),
        ("workloads: one replica of notifications in prod", lambda: check_workloads(mutate(prod, "Deployment", "notifications", lambda d: d["spec"].update(replicas=1)), services, "prod")),
        ("versions: make up builds another Mailpit than dev runs", lambda: check_local_versions(dev, LIB_SH.read_text().replace('MAILPIT_VERSION="v', 'MAILPIT_VERSION="v9'))),
        ("workloads: dev's Mailpit with a writable root filesystem", lambda: check_workloads(mutate(dev, "Deployment", "mailpit", c0(lambda c: c["securityContext"].update(readOnlyRootFilesystem=False))), services, "dev")),
        ("release: prod applied without set-images.sh", lambda: check_release_images(prod, services)),
        ("release: TLS for another host", lambda: check_hosts_and_tls(mutate(prod_release, "Ingress", "gittix", lambda d: d["spec"]["tls"][0].update(hosts=["other.example.com"])), "prod")),
        ("release: load balancer hostname differs", lambda: check_hosts_and_tls(mutate(prod_release, "Service", "ingress-nginx-controller", lambda d: d["metadata"]["annotations"].update({"service.beta.kubernetes.io/do-loadbalancer-hostname": "old.example.com"})), "prod")),
        ("release: the controller logs the request line (query string)", lambda: check_hosts_and_tls(mutate(prod_release, "ConfigMap", "ingress-nginx-controller", lambda d: d["data"].update({"log-format-upstream": '$remote_addr "$request" $status'})), "prod")),
        ("release: the controller logs the Referer", lambda: check_hosts_and_tls(mutate(prod_release, "ConfigMap", "ingress-nginx-controller", lambda d: d["data"].update({"log-format-upstream": d["data"]["log-format-upstream"] + ' "$http_referer"'})), "prod")),
        ("release: the controller's default log format", lambda: check_hosts_and_tls(mutate(prod_release, "ConfigMap", "ingress-nginx-controller", lambda d: d["data"].pop("log-format-upstream")), "prod")),
        ("release: set-images.sh refuses an untagged image", set_images_untagged),
        ("skaffold: an unknown field (schema)", skaffold_broken(lambda c: c["build"].update(artefacts=[]), True)),
        ("skaffold: a wrong apiVersion", skaffold_broken(lambda c: c.update(apiVersion="skaffold/v4beta12"), False)),
        ("skaffold: an artifact missing", skaffold_broken(lambda c: c["build"]["artifacts"].pop(), False)),
        ("skaffold: prod building notifications with the dev profile", skaffold_broken(lambda c: c["profiles"][[p["name"] for p in c["profiles"]].index("prod")]["patches"].pop(7), False)),
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
        ("monitoring: the PodMonitor misses notifications", scrape_broken(drop_value("notifications"))),
        ("monitoring: GittixServiceDown misses payments", scrape_broken(lambda pm: None, lambda d: rule("GittixServiceDown")(d).update(expr=rule("GittixServiceDown")(d)["expr"].replace("|payments", "")))),
        ("monitoring: GittixServiceDown misses the client", scrape_broken(lambda pm: None, lambda d: rule("GittixServiceDown")(d).update(expr=rule("GittixServiceDown")(d)["expr"].replace("|client", "")))),
        ("monitoring: the client selected by both PodMonitors", scrape_broken(services_also_select("client"))),
        ("monitoring: one PodMonitor scraping every pod on http and metrics", scrape_broken(one_pod_monitor)),
        ("monitoring: the client's PodMonitor on its http port", scrape_broken(client_endpoint(port="http"))),
        ("monitoring: the client's PodMonitor on another path", scrape_broken(client_endpoint(path="/stats"))),
        ("monitoring: the client's PodMonitor removed", scrape_broken(lambda pms: pms.remove(pod_monitor("gittix-client")(pms)))),
        ("monitoring: the client's PodMonitor without podTargetLabels", scrape_broken(lambda pms: pod_monitor("gittix-client")(pms)["spec"].pop("podTargetLabels"))),
        ("monitoring: a data store selected by a PodMonitor", scrape_broken(services_also_select("nats"))),
        ("monitoring: the client's metrics port on its Service", lambda: check_metrics_private(client_service(lambda d: d["spec"]["ports"].append({"name": "metrics", "port": 9100, "targetPort": "metrics"})))),
        ("monitoring: the Ingress's / sent to the client's metrics port", lambda: check_metrics_private(client_service(lambda d: d["spec"]["ports"][0].update(targetPort=9100)))),
        ("monitoring: the Ingress routing /metrics to auth", lambda: check_metrics_private(mutate(dev, "Ingress", "gittix", paths(lambda ps: ps.append(dict(copy.deepcopy(ps[0]), path="/metrics")))))),
        ("labels: a pod template without app.kubernetes.io/instance", lambda: check_labels(mutate(prod, "Deployment", "orders", lambda d: tmpl_labels(d).pop("app.kubernetes.io/instance")))),
        ("labels: NATS's image bumped, its version label not", lambda: check_labels(mutate(dev, "StatefulSet", "nats", c0(lambda c: c.update(image="nats:2.12.5-alpine"))))),
        ("labels: a selector that adds app.kubernetes.io/instance", lambda: check_labels(mutate(dev, "Deployment", "auth", lambda d: d["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/instance": "gittix-dev"})))),
        ("labels: labels on a volumeClaimTemplate", lambda: check_labels(mutate(dev, "StatefulSet", "auth-mongo", lambda d: d["spec"]["volumeClaimTemplates"][0]["metadata"].update(labels={"app.kubernetes.io/part-of": "gittix"})))),
        ("labels: a deployed service labelled with another version", lambda: check_labels(mutate(prod_release, "Deployment", "payments", both_labels("app.kubernetes.io/version", "dev")))),
        ("network: no default-deny", network(drop(prod, "NetworkPolicy", "default-deny"))),
        ("network: auth may reach tickets-mongo", network(mutate(dev, "NetworkPolicy", "auth", lambda d: rules("egress", 0)(d).append({"podSelector": {"matchLabels": {"app.kubernetes.io/name": "tickets-mongo"}}})))),
        ("network: Stripe's egress without the cluster's ranges excepted", network(mutate(prod, "NetworkPolicy", "payments", lambda d: [p["ipBlock"].pop("except") for r in d["spec"]["egress"] for p in r["to"] if "except" in p.get("ipBlock", {})]))),
        ("network: the client cannot call payments", network(mutate(dev, "NetworkPolicy", "client", lambda d: in_values(lambda v: v.remove("payments"))(rules("egress", 0)(d))))),
        ("network: DNS over UDP only", network(mutate(staging, "NetworkPolicy", "auth", lambda d: d["spec"]["egress"][-1].update(ports=[{"protocol": "UDP", "port": 53}])))),
        ("network: the ingress controller may reach NATS", network(mutate(dev, "NetworkPolicy", "nats", lambda d: rules("ingress", 0)(d).append(copy.deepcopy(rules("ingress", 0)(find(dev, "NetworkPolicy", "client")[0])[0]))))),
        ("network: the ingress peer without its namespace", network(mutate(prod, "NetworkPolicy", "tickets", lambda d: rules("ingress", 0)(d)[0].pop("namespaceSelector")))),
        ("network: a URL service-env.tsv gives orders, no policy allows", network(dev, load_service_env(extra_url))),
        ("network: the monitoring policy misses expiration", network(prod, None, scrape_without("expiration"))),
        ("network: the monitoring policies without the client's", network(prod, None, scrape_policy("gittix-client-metrics-scrape"))),
        ("network: Prometheus may reach the client's http port", network(staging, None, scrape_policy("gittix-client-metrics-scrape", lambda d: d["spec"]["ingress"][0]["ports"].append({"protocol": "TCP", "port": 3000})))),
        ("network: Prometheus may reach the services' port 9100", network(dev, None, scrape_policy("gittix-metrics-scrape", lambda d: d["spec"]["ingress"][0]["ports"].append({"protocol": "TCP", "port": 9100})))),
        ("network: the ingress controller may reach the client's metrics port", network(mutate(prod, "NetworkPolicy", "client", lambda d: d["spec"]["ingress"][0]["ports"].append({"protocol": "TCP", "port": 9100})))),
        ("network: the client's policy takes any port from the ingress controller", network(mutate(dev, "NetworkPolicy", "client", lambda d: d["spec"]["ingress"][0].pop("ports")))),
        ("network: dev's notifications may reach the internet", network(mutate(dev, "NetworkPolicy", "notifications", internet_rule(dev)))),
        ("network: prod's notifications cannot reach SendGrid", network(mutate(prod, "NetworkPolicy", "notifications", without_internet))),
        ("network: any pod may send mail to dev's Mailpit", network(mutate(dev, "NetworkPolicy", "mailpit", lambda d: d["spec"]["ingress"][0].pop("from")))),
        ("network: SendGrid's URL counted with MAIL_TRANSPORT=smtp (prod)", network(mail_config(prod, "MAIL_TRANSPORT", "smtp://nats:4222"))),
        ("network: prod without the HTTP-01 solver's policy", network(drop(prod, "NetworkPolicy", "acme-http01-solver"))),
        ("ownership: orders' MONGO_URL at tickets-mongo", lambda: check_ownership(mutate(dev, "Secret", "orders-mongo-url", secret_data("MONGO_URL", "mongodb://orders:x@tickets-mongo:27017/orders?authSource=orders")), env_rows, ownership())),
        ("ownership: the table gives the client a Redis", lambda: check_ownership(dev, env_rows, {**ownership(), "client": frozenset({("redis", "")})})),
        ("ownership: notifications' REDIS_URL at expiration-redis", lambda: check_ownership(mutate(dev, "Secret", "notifications-redis-url", secret_data("REDIS_URL", "redis://default:x@expiration-redis:6379")), env_rows, ownership())),
        ("ownership: prod's notifications reading expiration's managed Valkey Secret", lambda: check_ownership(mutate(prod, "Deployment", "notifications", secret_of("REDIS_URL", "expiration-managed-valkey")), env_rows, ownership())),
        ("ownership: the table forgets notifications' Redis", lambda: check_ownership(prod, env_rows, {**ownership(), "notifications": frozenset({("mongo", "notifications")})})),
        ("availability: prod without notifications' PodDisruptionBudget", lambda: check_disruption_budgets(drop(prod, "PodDisruptionBudget", "notifications"))),
        ("availability: prod without orders' PodDisruptionBudget", lambda: check_disruption_budgets(drop(prod, "PodDisruptionBudget", "orders"))),
        ("availability: a budget that blocks drains (minAvailable 2 of 2)", lambda: check_disruption_budgets(mutate(prod, "PodDisruptionBudget", "expiration", lambda d: d["spec"].update(minAvailable=2)))),
        ("availability: a budget on a single pod (staging)", lambda: check_disruption_budgets(with_pdb(staging, "auth"))),
        ("availability: prod without payments' autoscaler", lambda: check_autoscalers(drop(prod, "HorizontalPodAutoscaler", "payments"), http_services)),
        ("availability: an autoscaler on CPU without CPU requests", lambda: check_autoscalers(mutate(prod, "Deployment", "client", c0(lambda c: c["resources"]["requests"].pop("cpu"))), http_services)),
        ("availability: replicas set beside an autoscaler", lambda: check_autoscalers(mutate(prod, "Deployment", "tickets", lambda d: d["spec"].update(replicas=2)), http_services)),
        ("availability: client not spread across nodes (staging)", lambda: check_spread(mutate(staging, "Deployment", "client", lambda d: pod_spec(d).pop("topologySpreadConstraints")), http_services)),
        ("availability: spread across zones, not nodes", lambda: check_spread(mutate(prod, "Deployment", "orders", spread(lambda c: c.update(topologyKey="topology.kubernetes.io/zone"))), http_services)),
        ("availability: a spread counting every GitTix pod", lambda: check_spread(mutate(prod, "Deployment", "auth", spread(lambda c: c.pop("matchLabelKeys"))), http_services)),
        *toolchain_self_tests(),
    ]


def toolchain_self_tests() -> list[tuple[str, Callable[[], Problems]]]:
    """The one Rust toolchain (build.check_toolchain), each place in turn naming another."""
    def edited(rel: str, pattern: str, repl: str) -> Callable[[], Problems]:
        def thunk() -> Problems:
            text = (ROOT / rel).read_text()
            broken, n = re.subn(pattern, repl, text, count=1, flags=re.M)
            if not n:
                raise LookupError(f"self-test: {pattern!r} not in {rel}")
            return check_toolchain({rel: broken})
        return thunk

    def deploy_step(run_: str) -> Callable[[], Problems]:
        def thunk() -> Problems:
            wf = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())
            wf["jobs"]["build"]["steps"].append({"name": "broken", "run": run_})
            return check_toolchain({".github/workflows/deploy.yml": yaml.safe_dump(wf)})
        return thunk

    def dockerignore_keeps_toolchain() -> Problems:
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / ".dockerignore"
            f.write_text((ROOT / ".dockerignore").read_text().replace(f"\n{RUST_TOOLCHAIN}\n", "\n"))
            return check_dockerignore(f)

    return [
        ("toolchain: rust-toolchain.toml on stable, not a release", edited(RUST_TOOLCHAIN, r'^channel = "[^"]*"', 'channel = "stable"')),
        ("toolchain: rust-toolchain.toml bumped alone", edited(RUST_TOOLCHAIN, r'^channel = "[^"]*"', 'channel = "1.999.0"')),
        ("toolchain: Cargo.toml's rust-version another release", edited("Cargo.toml", r'^rust-version = "[^"]*"', 'rust-version = "1.90"')),
        ("toolchain: a member not inheriting rust-version", edited("services/auth/Cargo.toml", r"^rust-version\.workspace = true\n", "")),
        ("toolchain: the Dockerfile on another rust image", edited("Dockerfile", r"^(FROM rust:)[0-9.]+", r"\g<1>1.0.0")),
        ("toolchain: test.yml installing a toolchain of its own", edited(".github/workflows/test.yml", r"^( +)rustup toolchain install$", r"\1rustup toolchain install 1.0.0")),
        ("toolchain: test.yml installing none before make test", edited(".github/workflows/test.yml", r"^ +rustup toolchain install\n", "")),
        ("toolchain: a deploy.yml step on cargo +nightly", deploy_step("cargo +nightly build")),
        ("toolchain: .dockerignore sending rust-toolchain.toml to the image", dockerignore_keeps_toolchain),
    ]

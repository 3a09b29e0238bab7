"""The runner: every check in turn, then every self-test, one line each, ending with
`infra: N passed, M failed` (exit status 1 when anything failed). `-v` shows what each
self-test caught and the traceback of a check that crashed."""

from __future__ import annotations

import json
import sys
import traceback
from typing import Callable

from .build import (
    RUST_TOOLCHAIN,
    SHARED_SKAFFOLD_SCHEMA,
    SKAFFOLD_API_VERSION,
    base_images,
    check_dockerfile,
    check_dockerignore,
    check_shared_schema,
    check_skaffold_config,
    check_skaffold_schema,
    check_local_versions,
    check_toolchain,
    check_workflows_content,
)
from .deploy import check_deploy_safety, hand_applied, load_deploy_workflow, self_tests as deploy_self_tests
from .common import K8S, OVERLAYS, ROOT, Problems, load_routes, load_service_env, load_yaml, load_yaml_all, render, run, tool_output
from .availability import SPREAD_OVERLAYS, check_autoscalers, check_disruption_budgets, check_spread
from .env import check_env, check_public_url
from .labels import check_labels
from .manifests import (
    K8S_VERSION,
    check_app_env,
    check_hosts_and_tls,
    check_release_images,
    check_schemas,
    check_workloads,
    release_render,
)
from .monitoring import (
    ALERTS,
    DASHBOARD,
    METRIC_SOURCES,
    POD_MONITOR,
    check_alerts,
    check_dashboard,
    check_metrics_private,
    check_scrape,
    exported_metrics,
    rust_sources,
)
from .nats import (
    check_chart,
    check_helm_renders,
    check_nats_network,
    check_reset_subject,
    check_server_accepts,
    check_servers,
    check_stream_replicas,
    check_users,
    check_users_file,
    load_permissions,
    self_tests as nats_self_tests,
)
from .network import MONITORING_POLICY, check_network_policies, check_ownership, ownership
from .routes import check_routes
from .selftest import self_tests
from .stores import check_stores, self_tests as store_self_tests


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
    # The services the ingress routes to: the ones that serve HTTP to the world.
    http_services = list(dict.fromkeys(service for _, service in routes))
    renders: dict[str, list[dict]] = {}

    # NATS's users and permissions (infra/nats/permissions.json, from the code).
    permissions: dict = {}

    def do_permissions() -> Problems:
        permissions.update(load_permissions())
        return [] if permissions.get("users") else ["infra/nats/permissions.json: no users"]

    print("nats (infra/k8s/nats, infra/k8s/charts)")
    report.record("the vendored chart, pinned and rendered offline, with its license", check_chart)
    report.record("infra/nats/permissions.json read", do_permissions)
    if permissions:
        report.record("users.yaml = generate-users.py of permissions.json", lambda: check_users_file(permissions))
        report.record("the password-reset subject reaches notifications alone", lambda: check_reset_subject(permissions))
    report.record("deploy.yml and skaffold.yaml render with helm, deploy.yml's at scripts/lib.sh's version", check_helm_renders)

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
        report.record(f"{overlay}: PUBLIC_URL (links in emails) is the Ingress's origin", lambda: check_public_url(docs, env_rows))
        report.record(f"{overlay}: probes, resources, security, pinned images, data stores", lambda: check_workloads(docs, services, overlay))
        report.record(f"{overlay}: APP_ENV", lambda: check_app_env(docs, overlay))
        report.record(f"{overlay}: recommended labels on workloads and pod templates; selectors by name alone",
                      lambda: check_labels(docs))
        report.record(f"{overlay}: NetworkPolicies allow exactly the architecture's flows", lambda: check_network_policies(docs, routes, env_rows, load_yaml_all(MONITORING_POLICY)))
        report.record(f"{overlay}: no metrics port behind the Ingress or a Service of its own", lambda: check_metrics_private(docs))
        report.record(f"{overlay}: each data store reached by its owner alone (docs/ARCHITECTURE.md)", lambda: check_ownership(docs, env_rows, ownership()))
        report.record(f"{overlay}: data stores {'managed (TLS, CA mounted)' if overlay in ('staging', 'prod') else 'in-cluster'}, signed in to, URLs from Secrets, one database per user",
                      lambda: check_stores(docs, overlay, env_rows, ownership()))
        report.record(f"{overlay}: a PodDisruptionBudget for every replicated workload", lambda: check_disruption_budgets(docs))
        report.record(f"{overlay}: autoscalers for the HTTP services wherever they run several", lambda: check_autoscalers(docs, http_services))
        report.record(f"{overlay}: NATS from its chart: {'three servers in a cluster, one per node' if overlay != 'dev' else 'one server'}, JetStream on its volume, fsync always",
                      lambda: check_servers(docs, overlay))
        report.record(f"{overlay}: NATS_STREAM_REPLICAS = the NATS servers", lambda: check_stream_replicas(docs, overlay, env_rows))
        if permissions:
            report.record(f"{overlay}: NATS users = permissions.json, passwords from each service's Secret", lambda: check_users(docs, env_rows, permissions))
            report.record(f"{overlay}: NATS client port for the users' services alone, monitor port for none", lambda: check_nats_network(docs, permissions))
        report.record(f"{overlay}: the rendered NATS config passes nats-server -t", lambda: check_server_accepts(docs))
        if overlay in SPREAD_OVERLAYS:
            report.record(f"{overlay}: the HTTP services spread across nodes", lambda: check_spread(docs, http_services))
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
            report.record(f"{overlay}: each service's version label is its deployed image's tag", lambda: check_labels(release[overlay]))

    print("skaffold.yaml")
    report.record(f"matches the {SKAFFOLD_API_VERSION} schema (check-jsonschema)", lambda: check_skaffold_schema(ROOT / "skaffold.yaml"))
    report.record("vendored schema = ../shared/schemas copy" + ("" if SHARED_SKAFFOLD_SCHEMA.exists() else " (absent here)"), check_shared_schema)
    report.record("apiVersion, kind, artifacts, overlays, profiles", lambda: check_skaffold_config(ROOT / "skaffold.yaml", services))

    print("images")
    report.record("hadolint Dockerfile", lambda: tool_output(run(["hadolint", "Dockerfile"])))
    report.record("Dockerfile: pinned bases, non-root, SERVICE, cached dependencies", lambda: check_dockerfile(ROOT / "Dockerfile"))
    report.record(".dockerignore keeps the workspace, drops the rest", lambda: check_dockerignore(ROOT / ".dockerignore"))
    report.record(f"one Rust toolchain: {RUST_TOOLCHAIN}'s release = rust-version of every crate = the Dockerfile's rust image = the workflows'",
                  check_toolchain)

    print("workflows and scripts")
    report.record("actionlint .github/workflows (with shellcheck)", lambda: tool_output(run(["actionlint", "-no-color"])))
    if "dev" in renders:
        report.record("test.yml and deploy.yml do their jobs", lambda: check_workflows_content(services, base_images(renders["dev"])))
        report.record("the dev overlay's NATS and Mailpit are the versions make up builds (scripts/lib.sh)", lambda: check_local_versions(renders["dev"]))
    deployed = {o: renders[o] for o in ("staging", "prod") if o in renders}
    secret_names = {r.secret for rows in env_rows.values() for r in rows if r.secret}
    report.record("deploy.yml: diff, apply pruning the overlay's own objects, rollouts undone on failure, smoke test",
                  lambda: check_deploy_safety(load_deploy_workflow(), deployed, hand_applied(), secret_names))
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
        report.record("podmonitor.yaml and GittixServiceDown: each pod annotated for scraping by one PodMonitor, on its port",
                      lambda: check_scrape(load_yaml_all(POD_MONITOR), load_yaml(ALERTS), renders["dev"]))
    report.record("networkpolicy.yaml: valid NetworkPolicies (what they allow: the overlays' network checks)",
                  lambda: check_schemas(load_yaml_all(MONITORING_POLICY)))

    print("self-tests: each check fails on a broken copy")
    if all(k in renders for k in ("dev", "staging", "prod")) and "prod" in release:
        for name, thunk in self_tests(renders["dev"], renders["prod"], release["prod"], routes, env_rows, services, known, renders["staging"]):
            report.record(name, thunk, expect_fail=True)
        for name, thunk in deploy_self_tests(deployed, secret_names):
            report.record(name, thunk, expect_fail=True)
        if permissions:
            def nats_network(docs: list[dict]) -> Callable[[], Problems]:
                return lambda: check_network_policies(docs, routes, env_rows, load_yaml_all(MONITORING_POLICY))
            for name, thunk in nats_self_tests(renders["dev"], renders["staging"], renders["prod"], env_rows, permissions, nats_network):
                report.record(name, thunk, expect_fail=True)
        def network(docs: list[dict]) -> Callable[[], Problems]:
            return lambda: check_network_policies(docs, routes, env_rows, load_yaml_all(MONITORING_POLICY))
        for name, thunk in store_self_tests(renders["dev"], renders["staging"], renders["prod"], env_rows, ownership(), network):
            report.record(name, thunk, expect_fail=True)
    else:
        report.record("self-tests need the dev, staging and prod renders", lambda: ["a render failed above"])

    print(f"infra: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0

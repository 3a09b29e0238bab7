"""Network policies: an overlay's NetworkPolicies (with infra/monitoring/networkpolicy.yaml,
when Prometheus is assumed) allow exactly the flows the architecture has, no more and no
fewer; and each data store is reached by its owner alone, as docs/ARCHITECTURE.md's
ownership table says.

The expected flows are derived, not listed:
  - the ingress controller to each service of infra/routes.tsv, on its Service's target port
  - each service to what the URLs it gets name (the variables infra/service-env.tsv lists
    for it, as the overlay sets them, or the table's example when unset): a Service of the
    overlay (its pods, on the target port) or a host outside the cluster (on the URL's port).
    Not every URL is a connection: LINK_VARIABLES are put in what a service writes (links in
    emails), and a URL of USED_WITH counts only with the setting that makes the service use
    it (SendGrid's API with MAIL_TRANSPORT=sendgrid; an smtp:// MAIL_TRANSPORT is a URL)
  - DNS (kube-dns, UDP and TCP 53) for each service that names a host
  - the ingress controller to cert-manager's HTTP-01 solver, in overlays whose Ingress asks
    cert-manager for its certificate
  - Prometheus (namespace monitoring) to the pods annotated for scraping, on the port each
    names (the services' 3000, the client's 9100) and no other, with the monitoring policies
    (every document of infra/monitoring/networkpolicy.yaml) only.
The allowed flows are evaluated as Kubernetes does: a pod that a policy of its namespace
selects for a direction is isolated in it and takes only what some rule allows; a flow needs
the sender's egress and the receiver's ingress. They are evaluated between the workloads'
pods and stand-ins for what else there is: the ingress controller, kube-dns, Prometheus,
the solver, a stray pod of the namespace, a pod of another namespace (labelled as auth),
an address on the internet and the cloud's metadata address.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .stores import MANAGED_PORTS, managed_vpc, store_url
from .common import (
    MONITORING,
    NAME_LABEL,
    ROOT,
    EnvRow,
    Problems,
    configmaps,
    kind_of,
    name_of,
    ns_of,
    objects,
    pod_spec,
    resolve_env,
    selects,
    the_deployment,
    workloads,
)

MONITORING_POLICY = MONITORING / "networkpolicy.yaml"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
SCHEME_PORTS = {"http": 80, "https": 443, "mongodb": 27017, "nats": 4222, "redis": 6379, "rediss": 6379, "smtp": 25}
# URLs a service never connects to: it writes them (the origin of the links in its emails).
LINK_VARIABLES = {"PUBLIC_URL"}
# URLs a service connects to only when another of its variables has this value.
USED_WITH = {"SENDGRID_API_URL": ("MAIL_TRANSPORT", "sendgrid")}
NS_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Endpoint:
    name: str
    ns: str | None  # None: not a pod (an address outside the cluster)
    labels: tuple = ()
    ip: str = ""
    ports: tuple = ()  # (name, number, protocol) of its containers

    def label_map(self) -> dict:
        return dict(self.labels)


def _eps(labels: dict) -> tuple:
    return tuple(sorted(labels.items()))


INGRESS = Endpoint("the ingress controller", "ingress-nginx", _eps({
    "app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller",
    "app.kubernetes.io/instance": "ingress-nginx"}), "10.244.9.10", (("http", 80, "TCP"), ("https", 443, "TCP")))
DNS = Endpoint("kube-dns", "kube-system", _eps({"k8s-app": "kube-dns"}), "10.244.9.11", (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")))
PROMETHEUS = Endpoint("Prometheus", "monitoring", _eps({"app.kubernetes.io/name": "prometheus"}), "10.244.9.12", (("web", 9090, "TCP"),))
INTERNET = Endpoint("the internet (Stripe, SendGrid)", None, (), "54.187.216.72")
METADATA = Endpoint("the cloud's metadata address", None, (), "169.254.169.254")
OUTSIDER = Endpoint("a pod of another namespace", "elsewhere", _eps({NAME_LABEL: "auth"}), "10.244.9.13", (("http", 3000, "TCP"),))
# The managed MongoDB and Valkey (stores.py), at an address of the overlay's VPC range.
MANAGED_NAME = "the managed stores (VPC)"
SOLVER_LABELS = {"acme.cert-manager.io/http01-solver": "true"}
SOLVER_PORT = 8089
# Ports every flow is tried on, besides every container port of the overlay.
EXTRA_PORTS = {(53, "UDP"), (53, "TCP"), (443, "TCP"), (80, "TCP"), (SOLVER_PORT, "TCP"), (9090, "TCP")}

Flow = tuple[str, str, int, str]  # sender, receiver, port, protocol


@dataclass
class Cluster:
    ns: str
    pods: list[Endpoint] = field(default_factory=list)
    vpc: object = None  # the managed stores' VPC range (stores.managed_vpc), if any

    def endpoints(self, with_prometheus: bool) -> list[Endpoint]:
        managed = []
        if self.vpc is not None:
            ip = self.vpc[min(10, self.vpc.num_addresses - 1)]
            managed = [Endpoint(MANAGED_NAME, None, (), str(ip), tuple(("store", p, "TCP") for p in sorted(set(MANAGED_PORTS.values()))))]
        extra = managed + [INGRESS, DNS, INTERNET, METADATA, OUTSIDER,
                 Endpoint("cert-manager's HTTP-01 solver", self.ns, _eps(SOLVER_LABELS), "10.244.8.2", (("http", SOLVER_PORT, "TCP"),)),
                 Endpoint("a stray pod of the namespace", self.ns, _eps({"run": "debug"}), "10.244.8.3", (("http", 8080, "TCP"),))]
        return self.pods + extra + ([PROMETHEUS] if with_prometheus else [])


def app_namespace(docs: list[dict]) -> str:
    spaces = {ns_of(d) for d in workloads(docs)}
    return spaces.pop() if len(spaces) == 1 else ""


def cluster_of(docs: list[dict]) -> Cluster:
    ns = app_namespace(docs)
    pods = []
    for i, doc in enumerate(workloads(docs)):
        labels = (doc["spec"].get("template", {}).get("metadata") or {}).get("labels") or {}
        ports = tuple(
            (p.get("name", ""), int(p["containerPort"]), p.get("protocol", "TCP"))
            for c in pod_spec(doc).get("containers") or [] for p in c.get("ports") or []
        )
        pods.append(Endpoint(name_of(doc), ns, _eps(labels), f"10.244.1.{i + 10}", ports))
    return Cluster(ns, pods, managed_vpc(docs))


def ns_labels(ns: str | None) -> dict:
    return {NS_LABEL: ns or "default"}


def policy_types(policy: dict) -> set[str]:
    spec = policy.get("spec") or {}
    if "policyTypes" in spec:
        return set(spec["policyTypes"] or [])
    return {"Ingress"} | ({"Egress"} if "egress" in spec else set())


def peer_matches(peer: dict, policy_ns: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"] or {}
        ip = ipaddress.ip_address(other.ip)
        if ip not in ipaddress.ip_network(block.get("cidr", "0.0.0.0/32"), strict=False):
            return False
        return not any(ip in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])
    if other.ns is None:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"] or {}, ns_labels(other.ns)):
            return False
    elif other.ns != policy_ns:
        return False
    return selects(peer.get("podSelector") or {}, other.label_map()) if "podSelector" in peer else True


def port_matches(spec: dict, port: int, proto: str, receiver: Endpoint) -> bool:
    if spec.get("protocol", "TCP") != proto:
        return False
    want = spec.get("port")
    if want is None:
        return True
    if isinstance(want, int):
        return want <= port <= int(spec.get("endPort", want))
    return any(n == want and num == port and pr == proto for n, num, pr in receiver.ports)


def side_allows(pod: Endpoint, policies: list[dict], direction: str, other: Endpoint, port: int, proto: str, receiver: Endpoint) -> bool:
    if pod.ns is None:
        return True  # outside the cluster: no policy of ours
    isolating = [
        p for p in policies
        if ns_of(p) == pod.ns and direction in policy_types(p)
        and selects((p.get("spec") or {}).get("podSelector") or {}, pod.label_map())
    ]
    if not isolating:
        return True
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for p in isolating:
        for rule in (p.get("spec") or {}).get(key) or []:
            peers = rule.get(peers_key)
            if peers and not any(peer_matches(peer, ns_of(p), other) for peer in peers):
                continue
            ports = rule.get("ports")
            if ports and not any(port_matches(s, port, proto, receiver) for s in ports):
                continue
            return True
    return False


def allowed_flows(cluster: Cluster, policies: list[dict], with_prometheus: bool) -> dict[Flow, tuple[bool, bool]]:
    """Every flow the sender's egress or the receiver's ingress allows, with (egress allows,
    ingress allows): the flow happens when both do."""
    eps = cluster.endpoints(with_prometheus)
    ports = set(EXTRA_PORTS) | {(num, pr) for e in eps for _, num, pr in e.ports}
    out: dict[Flow, tuple[bool, bool]] = {}
    for src in eps:
        for dst in eps:
            # Flows with no end in the app's namespace are not these policies' business.
            if src is dst or cluster.ns not in (src.ns, dst.ns):
                continue
            for port, proto in ports:
                egress = side_allows(src, policies, "Egress", dst, port, proto, dst)
                ingress = side_allows(dst, policies, "Ingress", src, port, proto, dst)
                # A side counts only where one of our policies could govern it.
                if (egress and src.ns == cluster.ns) or (ingress and dst.ns == cluster.ns) or (egress and ingress):
                    out[(src.name, dst.name, port, proto)] = (egress, ingress)
    return out


def target_port(svc: dict, port: int, pods: list[Endpoint]) -> list[tuple[Endpoint, int]]:
    """The pods a Service sends port `port` to, with the container port."""
    out = []
    for sp in (svc.get("spec") or {}).get("ports") or []:
        if sp.get("port") != port:
            continue
        tp = sp.get("targetPort", port)
        for pod in pods:
            if not selects({"matchLabels": (svc.get("spec") or {}).get("selector") or {"-": "-"}}, pod.label_map()):
                continue
            if isinstance(tp, int):
                out.append((pod, tp))
            else:
                out += [(pod, num) for n, num, _ in pod.ports if n == tp]
    return out


def service_urls(docs: list[dict], env_rows: dict[str, list[EnvRow]]) -> dict[str, list[tuple[str, str]]]:
    """(variable, URL) of each service: what the overlay sets, else the table's example."""
    cms = configmaps(docs)
    out: dict[str, list[tuple[str, str]]] = {}
    for service, rows in env_rows.items():
        doc, container, _ = the_deployment(docs, service)
        if container is None:
            continue
        env, _ = resolve_env(doc, container, cms)

        def value_of(row: EnvRow) -> str:
            src = env.get(row.var)
            if src is not None and src["from"] == "secret":
                # A store's URL: the dev overlay's generated Secret, or a managed store.
                return store_url(docs, doc, service, row.var, src)
            return str(src.get("value", "")) if src else row.example

        by_var = {row.var: row for row in rows}
        for row in rows:
            if row.var in LINK_VARIABLES:
                continue
            if row.var in USED_WITH:
                var, want = USED_WITH[row.var]
                if var not in by_var or value_of(by_var[var]) != want:
                    continue
            value = value_of(row)
            if re.match(r"^[a-z]+://", value):
                out.setdefault(service, []).append((row.var, value))
    return out


def expected_flows(docs: list[dict], routes: list[tuple[str, str]], env_rows: dict[str, list[EnvRow]], cluster: Cluster, with_prometheus: bool) -> tuple[set[Flow], Problems]:
    problems: Problems = []
    flows: set[Flow] = set()
    services = {name_of(s): s for s in objects(docs, "Service") if ns_of(s) == cluster.ns}
    for _path, service in routes:
        svc = services.get(service)
        if svc is None:
            problems.append(f"routes.tsv routes to {service}, which has no Service")
            continue
        for sp in (svc.get("spec") or {}).get("ports") or []:
            for pod, port in target_port(svc, sp["port"], cluster.pods):
                flows.add((INGRESS.name, pod.name, port, "TCP"))
    for service, urls in service_urls(docs, env_rows).items():
        for var, url in urls:
            parts = urlsplit(url)
            host, port = parts.hostname or "", parts.port or SCHEME_PORTS.get(parts.scheme)
            if parts.scheme == "managed":
                flows.add((service, MANAGED_NAME, port, "TCP"))
            elif host in services:
                hits = target_port(services[host], port, cluster.pods)
                if not hits:
                    problems.append(f"{service}: {var}={url}: Service {host} sends port {port} to no pod")
                flows |= {(service, pod.name, p, "TCP") for pod, p in hits}
            elif "." in host:
                flows.add((service, INTERNET.name, port, "TCP"))
            else:
                problems.append(f"{service}: {var}={url}: {host} is neither a Service of the overlay nor a host outside the cluster")
                continue
            flows |= {(service, DNS.name, 53, "UDP"), (service, DNS.name, 53, "TCP")}
    # The servers of a NATS cluster open routes to each other by name (checks/nats.py: the
    # cluster port between them alone).
    for doc in objects(docs, "StatefulSet"):
        if any(p.get("name") == "cluster" for c in pod_spec(doc).get("containers") or [] for p in c.get("ports") or []):
            flows |= {(name_of(doc), DNS.name, 53, "UDP"), (name_of(doc), DNS.name, 53, "TCP")}
    issuers = [i for i in objects(docs, "Ingress") if (i.get("metadata", {}).get("annotations") or {}).get("cert-manager.io/cluster-issuer")]
    if issuers:
        flows.add((INGRESS.name, "cert-manager's HTTP-01 solver", SOLVER_PORT, "TCP"))
    if with_prometheus:
        for doc in workloads(docs):
            ann = (doc["spec"]["template"].get("metadata") or {}).get("annotations") or {}
            if ann.get("prometheus.io/scrape") == "true":
                flows.add((PROMETHEUS.name, name_of(doc), int(ann.get("prometheus.io/port", 0)), "TCP"))
    return flows, problems


def describe(flow: Flow) -> str:
    src, dst, port, proto = flow
    return f"{src} -> {dst} {proto}/{port}"


def check_network_policies(docs: list[dict], routes: list[tuple[str, str]], env_rows: dict[str, list[EnvRow]], monitoring_policies: list[dict]) -> Problems:
    """The overlay alone, then with the monitoring policies (every document of
    infra/monitoring/networkpolicy.yaml): allowed flows = expected flows."""
    problems: Problems = []
    for doc in monitoring_policies:
        if kind_of(doc) != "NetworkPolicy":
            problems.append(f"infra/monitoring/networkpolicy.yaml: {name_of(doc) or '(unnamed)'} is a {kind_of(doc) or 'document without a kind'}, want a NetworkPolicy")
    monitoring_policies = [d for d in monitoring_policies if kind_of(d) == "NetworkPolicy"]
    cluster = cluster_of(docs)
    policies = objects(docs, "NetworkPolicy")
    deny = [
        p for p in policies
        if ns_of(p) == cluster.ns and not ((p.get("spec") or {}).get("podSelector") or {})
        and policy_types(p) == {"Ingress", "Egress"} and not p["spec"].get("ingress") and not p["spec"].get("egress")
    ]
    if not deny:
        problems.append("no default-deny NetworkPolicy (podSelector {}, policyTypes Ingress and Egress, no rules)")
    own = {e.name for e in cluster.endpoints(True) if e.ns == cluster.ns}
    # Applied in the application's namespace (kubectl -n), as docs/DEPLOY.md says.
    scrape = []
    for policy in monitoring_policies:
        meta = {k: v for k, v in (policy.get("metadata") or {}).items() if k != "namespace"}
        scrape.append(dict(policy, metadata={**meta, "namespace": cluster.ns} if cluster.ns else meta))
    for with_prometheus, extra, what in ((False, [], "the overlay"), (True, scrape, "with infra/monitoring/networkpolicy.yaml")):
        want, derive_problems = expected_flows(docs, routes, env_rows, cluster, with_prometheus)
        if not with_prometheus:
            problems += derive_problems
        sides = allowed_flows(cluster, policies + extra, with_prometheus)
        got = {f for f, (egress, ingress) in sides.items() if egress and ingress}
        for flow in sorted(got - want):
            problems.append(f"{what}: allows {describe(flow)}, a flow the architecture lacks")
        for flow in sorted(want - got):
            problems.append(f"{what}: misses {describe(flow)}, a flow the architecture needs")
        # Each side exact too: a rule that lets one end send (or take) what the architecture
        # lacks is a hole waiting for the other end's rule to widen.
        for flow, (egress, ingress) in sorted(sides.items()):
            if flow in want or flow in got:
                continue
            src, dst = flow[0], flow[1]
            if egress and src in own:
                problems.append(f"{what}: {src}'s egress allows {describe(flow)}, a flow the architecture lacks")
            if ingress and dst in own:
                problems.append(f"{what}: {dst}'s ingress allows {describe(flow)}, a flow the architecture lacks")
    return problems


# --- the ownership table -----------------------------------------------------------------


Store = tuple[str, str]  # ("mongo", database) or ("redis", "")


def ownership(path: Path = ARCHITECTURE) -> dict[str, frozenset[Store]]:
    """docs/ARCHITECTURE.md, "Services and the data they own": service -> the stores it owns,
    ("mongo", "auth") for Mongo `auth`, ("redis", "") for Redis; none for "none". A service
    with several lists them in its Store cell, "Mongo `notifications`, Redis" (separated by
    a comma, a plus or "and")."""
    text = path.read_text()
    m = re.search(r"^## Services and the data they own\n(.*?)(?=^## )", text, re.M | re.S)
    if not m:
        raise ValueError(f"{path.relative_to(ROOT)}: no section 'Services and the data they own'")
    out: dict[str, frozenset[Store]] = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[0] in ("Service", "") or set(cells[0]) <= {"-"}:
            continue
        if cells[1] == "none":
            out[cells[0]] = frozenset()
            continue
        stores = set()
        for part in re.split(r"\s*(?:,|\+|\band\b)\s*", cells[1]):
            if (mm := re.fullmatch(r"Mongo `([a-z0-9_-]+)`", part)):
                stores.add(("mongo", mm.group(1)))
            elif part == "Redis":
                stores.add(("redis", ""))
            else:
                raise ValueError(f"{path.relative_to(ROOT)}: {cells[0]}'s store {cells[1]!r} is not Mongo `name`, Redis (or both) or none")
        out[cells[0]] = frozenset(stores)
    return out


def check_ownership(docs: list[dict], env_rows: dict[str, list[EnvRow]], owners: dict[str, frozenset[Store]]) -> Problems:
    """Each service reaches (through its URLs) exactly the stores the table gives it, one of
    each kind, Mongo with the database it names, and no store is reached by another service."""
    problems: Problems = []
    cluster = cluster_of(docs)
    want, derive_problems = expected_flows(docs, [], env_rows, cluster, False)
    problems += derive_problems
    stores = {name_of(d): d for d in workloads(docs) if (d["spec"]["template"].get("metadata") or {}).get("labels", {}).get("app.kubernetes.io/component") == "database"}
    kinds: dict[str, str] = {}
    for name, doc in stores.items():
        image = (pod_spec(doc).get("containers") or [{}])[0].get("image", "")
        kinds[name] = "mongo" if image.startswith("mongo:") else "redis" if image.startswith("redis:") else "?"
    reached: dict[str, set[str]] = {}
    for src, dst, _port, _proto in want:
        if dst in stores:
            reached.setdefault(src, set()).add(dst)
    # A managed store is the Secret its URL comes from (managed://<secret>:<port>).
    for service, urls in service_urls(docs, env_rows).items():
        for var, url in urls:
            if url.startswith("managed://"):
                secret = urlsplit(url).hostname or ""
                stores[secret] = {}
                kinds[secret] = "mongo" if var == "MONGO_URL" else "redis"
                reached.setdefault(service, set()).add(secret)
    if set(owners) != set(env_rows):
        problems.append(f"the ownership table lists {sorted(owners)}, service-env.tsv {sorted(env_rows)}")
    cms = configmaps(docs)
    for service, owned in sorted(owners.items()):
        got = sorted(reached.get(service, set()))
        if not owned:
            if got:
                problems.append(f"{service} owns no store, yet reaches {got}")
            continue
        want_kinds = sorted(kind for kind, _ in owned)
        got_kinds = sorted(kinds.get(g, "?") for g in got)
        if got_kinds != want_kinds:
            problems.append(f"{service} owns {' and '.join(want_kinds)}; it reaches {got or 'none'} ({' and '.join(got_kinds) or 'no store'})")
            continue
        for kind, db in owned:
            if kind != "mongo":
                continue
            doc, container, _ = the_deployment(docs, service)
            env, _ = resolve_env(doc, container, cms) if container else ({}, [])
            got_db = env.get("MONGO_DB", {}).get("value", "")
            if got_db != db:
                problems.append(f"{service}: MONGO_DB={got_db!r}, the ownership table says {db!r}")
    for store in sorted(stores):
        users = sorted(s for s, hits in reached.items() if store in hits)
        if len(users) != 1:
            problems.append(f"{store} is reached by {users or 'no service'}; a store has one owner")
    return problems

"""Data stores: where each service's MongoDB and Redis are, and how it signs in to them.

Everywhere: a store's URL (MONGO_URL, REDIS_URL: they hold a password) comes from a
secretKeyRef to the service's own store Secret, required, never a literal or a ConfigMap.
Generated Secrets exist in the dev overlay alone, each marked dev-only; staging and prod render
no Secret (theirs are made by hand, docs/DEPLOY.md).

In-cluster stores (dev): each MongoDB runs with access control (--auth), its root user from
its Secret, and one service user that base/mongo-service-user.js creates with readWrite on the
database the ownership table of docs/ARCHITECTURE.md gives that service, and nothing else; the
service's MONGO_URL signs in as that user to that database (authSource too) with the password
the MongoDB gave it. Each Redis runs with requirepass from its Secret, its readiness probe
signing in (REDISCLI_AUTH), and the service's REDIS_URL carries the same password.

Managed stores (MANAGED_OVERLAYS, through components/managed-datastores): no MongoDB, Redis or
Valkey runs in the cluster; each service reads its store URLs from the managed stores' Secrets
(MANAGED_SECRET), mounts the Secret with their CA certificates (CA_SECRET at CA_DIR), and a
Redis client gets REDIS_CA_FILE there; the overlay says the VPC range its NetworkPolicies let
the services reach the stores in (the ConfigMap MANAGED_CONFIG).

network.py asks store_url() where a URL from a Secret leads: the rendered Secret's value (dev),
or the managed store (MANAGED_PORTS: a flow to the VPC on that port).
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import re
from typing import Callable
from urllib.parse import parse_qs, unquote, urlsplit

from .common import (
    EnvRow,
    Problems,
    configmaps,
    find,
    kind_of,
    label,
    mutate,
    name_of,
    ns_of,
    objects,
    pod_spec,
    resolve_env,
    split_image,
    the_deployment,
    workloads,
)

# The overlays whose stores are DigitalOcean's managed MongoDB and Valkey.
MANAGED_OVERLAYS = ("staging", "prod")
# The variable of each kind of store, and the Secret a service reads it from.
STORE_VARS = {"mongo": "MONGO_URL", "redis": "REDIS_URL"}
IN_CLUSTER_SECRET = {"MONGO_URL": "{service}-mongo-url", "REDIS_URL": "{service}-redis-url"}
MANAGED_SECRET = {"MONGO_URL": "{service}-managed-mongo", "REDIS_URL": "{service}-managed-valkey"}
# DigitalOcean's managed MongoDB listens on 27017 (its SRV records say so), Valkey on 25061.
MANAGED_PORTS = {"MONGO_URL": 27017, "REDIS_URL": 25061}
MANAGED_CONFIG = "managed-datastores"
VPC_KEY = "vpc-ip-range"
CA_SECRET = "managed-db-ca"
CA_DIR = "/etc/gittix/managed-db-ca"
DEV_ONLY = "gittix.dev/dev-only"
STORE_IMAGES = {"mongo": "mongo", "redis": "redis", "valkey": "redis"}
INITDB_DIR = "/docker-entrypoint-initdb.d"


def store_secret_keys(service: str) -> dict[str, set[str]]:
    """The store Secrets a service may read, with their keys: its own, in-cluster or managed."""
    out: dict[str, set[str]] = {}
    for var in STORE_VARS.values():
        for pattern in (IN_CLUSTER_SECRET[var], MANAGED_SECRET[var]):
            out[pattern.format(service=service)] = {var}
    return out


def secret_value(docs: list[dict], ns: str, name: str, key: str) -> str | None:
    """A key of a Secret the overlay renders (generated), decoded; None if it renders none."""
    for s in objects(docs, "Secret"):
        if name_of(s) == name and ns_of(s) == ns:
            if key in (s.get("stringData") or {}):
                return str(s["stringData"][key])
            if key in (s.get("data") or {}):
                return base64.b64decode(s["data"][key]).decode()
            return ""
    return None


def managed_vpc(docs: list[dict]) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The VPC range the overlay's managed stores are in, or None without managed stores."""
    for cm in objects(docs, "ConfigMap"):
        if name_of(cm) == MANAGED_CONFIG:
            try:
                return ipaddress.ip_network(str((cm.get("data") or {}).get(VPC_KEY, "")), strict=True)
            except ValueError:
                return None
    return None


def store_url(docs: list[dict], doc: dict, service: str, var: str, src: dict) -> str:
    """Where a variable set from a Secret leads: the generated Secret's value, or for a managed
    store's Secret `managed://<secret>:<port>` (a flow to the VPC on that port); "" otherwise."""
    value = secret_value(docs, ns_of(doc), src.get("ref", ""), src.get("key", ""))
    if value is not None:
        return value
    if var in MANAGED_SECRET and src.get("ref") == MANAGED_SECRET[var].format(service=service) and managed_vpc(docs):
        return f"managed://{src['ref']}:{MANAGED_PORTS[var]}"
    return ""


def _store_kind(container: dict) -> str | None:
    name = split_image(container.get("image", ""))[0].rsplit("/", 1)[-1]
    return STORE_IMAGES.get(name)


def store_workloads(docs: list[dict]) -> list[tuple[dict, dict, str]]:
    """(workload, container, kind) of every MongoDB, Redis or Valkey the overlay runs."""
    out = []
    for doc in workloads(docs):
        for c in pod_spec(doc).get("containers") or []:
            kind = _store_kind(c)
            if kind:
                out.append((doc, c, kind))
    return out


def _env_item(container: dict, name: str) -> dict | None:
    return next((e for e in container.get("env") or [] if e.get("name") == name), None)


def _secret_ref(container: dict, name: str) -> dict | None:
    item = _env_item(container, name)
    return ((item or {}).get("valueFrom") or {}).get("secretKeyRef")


def _literal(container: dict, name: str) -> str | None:
    item = _env_item(container, name)
    return None if item is None or "valueFrom" in item else str(item.get("value", ""))


def check_init_script(script: str) -> Problems:
    """The MongoDB init script creates one user, in the database GITTIX_DB names, whose roles
    are exactly readWrite on that database."""
    problems: Problems = []
    consts = {m.group(1): m.group(2) for m in re.finditer(r"\bconst\s+(\w+)\s*=\s*process\.env\.(\w+)\s*;", script)}

    def env_of(expr: str) -> str | None:
        expr = expr.strip()
        m = re.fullmatch(r"process\.env\.(\w+)", expr)
        return m.group(1) if m else consts.get(expr)

    calls = list(re.finditer(r"db\.getSiblingDB\(([^)]*)\)\.createUser\(\{(.*?)\}\)", script, re.S))
    if len(re.findall(r"\bcreateUser\s*\(", script)) != 1 or len(calls) != 1:
        return ["the init script does not create exactly one user (db.getSiblingDB(<GITTIX_DB>).createUser({...}))"]
    target, body = calls[0].group(1), calls[0].group(2)
    if env_of(target) != "GITTIX_DB":
        problems.append(f"the init script creates its user in {target.strip()}, not the database GITTIX_DB names")
    user = re.search(r"\buser\s*:\s*([^,\n]+)", body)
    if not user or env_of(user.group(1)) != "GITTIX_DB_USER":
        problems.append("the init script's user is not GITTIX_DB_USER")
    roles = re.search(r"\broles\s*:\s*\[(.*)\]", body, re.S)
    entries = re.findall(r"\{([^{}]*)\}|(\"[^\"]*\"|'[^']*')", roles.group(1)) if roles else []
    if len(entries) != 1 or not entries[0][0]:
        return problems + [f"the init script grants {len(entries)} roles, want one: readWrite on GITTIX_DB's database"]
    role = re.search(r"\brole\s*:\s*[\"'](\w+)[\"']", entries[0][0])
    db = re.search(r"\bdb\s*:\s*([^,}\n]+)", entries[0][0])
    if not role or role.group(1) != "readWrite":
        problems.append(f"the init script grants the role {role.group(1) if role else '(none)'}, want readWrite")
    if not db or env_of(db.group(1)) != "GITTIX_DB":
        problems.append(f"the init script's role is on {db.group(1).strip() if db else '(no db)'}, not GITTIX_DB's database")
    return problems


def _check_mongo(docs: list[dict], doc: dict, c: dict, owners: dict[str, frozenset]) -> Problems:
    where = label(doc)
    problems: Problems = []
    args = (c.get("command") or []) + (c.get("args") or [])
    if "--auth" not in args:
        problems.append(f"{where}: mongod without --auth (access control)")
    for var in ("MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD", "GITTIX_DB_PASSWORD"):
        if _secret_ref(c, var) is None:
            problems.append(f"{where}: {var} is not from a Secret")
    owner = name_of(doc).removesuffix("-mongo")
    dbs = [db for kind, db in owners.get(owner, frozenset()) if kind == "mongo"]
    if len(dbs) != 1:
        return problems + [f"{where}: {owner} owns {len(dbs)} MongoDB databases in the ownership table, want 1"]
    if _literal(c, "GITTIX_DB") != dbs[0]:
        problems.append(f"{where}: its service user's database GITTIX_DB={_literal(c, 'GITTIX_DB')!r}, the ownership table says {dbs[0]!r}")
    if _literal(c, "GITTIX_DB_USER") != owner:
        problems.append(f"{where}: its service user GITTIX_DB_USER={_literal(c, 'GITTIX_DB_USER')!r}, want {owner!r}")
    # The init script: a ConfigMap volume mounted at the image's init folder.
    mounts = {m.get("name"): m for m in c.get("volumeMounts") or []}
    cms = {name_of(cm): cm for cm in objects(docs, "ConfigMap") if ns_of(cm) == ns_of(doc)}
    scripts = []
    for v in pod_spec(doc).get("volumes") or []:
        m = mounts.get(v.get("name"))
        if m and m.get("mountPath") == INITDB_DIR and "configMap" in v:
            cm = cms.get(v["configMap"].get("name"))
            scripts += [text for key, text in ((cm or {}).get("data") or {}).items() if key.endswith((".js", ".sh"))]
    if len(scripts) != 1:
        problems.append(f"{where}: {len(scripts)} init scripts at {INITDB_DIR}, want the one that creates its service's user")
    else:
        problems += [f"{where}: {p}" for p in check_init_script(scripts[0])]
    return problems


def _check_redis(doc: dict, c: dict) -> Problems:
    where = label(doc)
    problems: Problems = []
    args = (c.get("command") or []) + (c.get("args") or [])
    ref = _secret_ref(c, "REDIS_PASSWORD")
    if "--requirepass" not in args or args.index("--requirepass") + 1 >= len(args) or args[args.index("--requirepass") + 1] != "$(REDIS_PASSWORD)":
        problems.append(f"{where}: redis-server without --requirepass $(REDIS_PASSWORD)")
    if ref is None:
        problems.append(f"{where}: REDIS_PASSWORD is not from a Secret")
    probe = " ".join(((c.get("readinessProbe") or {}).get("exec") or {}).get("command") or [])
    if "redis-cli" in probe and _secret_ref(c, "REDISCLI_AUTH") != ref:
        problems.append(f"{where}: its redis-cli probe does not sign in (REDISCLI_AUTH from REDIS_PASSWORD's Secret)")
    return problems


def _in_cluster_url(docs: list[dict], doc: dict, service: str, var: str, url: str, owned_db: str) -> Problems:
    """The generated URL leads to the service's own store, signed in as the store expects."""
    problems: Problems = []
    parts = urlsplit(url)
    ns = ns_of(doc)
    if var == "MONGO_URL":
        query = parse_qs(parts.query)
        if parts.scheme != "mongodb" or parts.hostname != f"{service}-mongo":
            problems.append(f"{service}: MONGO_URL leads to {parts.scheme}://{parts.hostname}, want mongodb://{service}-mongo")
        if unquote(parts.username or "") != service or not parts.password:
            problems.append(f"{service}: MONGO_URL signs in as {parts.username!r}, want its own user {service!r} with a password")
        if parts.path.strip("/") != owned_db or query.get("authSource") != [owned_db]:
            problems.append(f"{service}: MONGO_URL's database {parts.path.strip('/')!r}, authSource {query.get('authSource')}: want {owned_db!r} for both")
        store = find(docs, "StatefulSet", f"{service}-mongo")
        ref = _secret_ref(pod_spec(store[0])["containers"][0], "GITTIX_DB_PASSWORD") if store else None
        want = secret_value(docs, ns, ref.get("name", ""), ref.get("key", "")) if ref else None
        if want is not None and unquote(parts.password or "") != want:
            problems.append(f"{service}: MONGO_URL's password is not the one {service}-mongo gives its user")
    else:
        if parts.scheme != "redis" or parts.hostname != f"{service}-redis":
            problems.append(f"{service}: REDIS_URL leads to {parts.scheme}://{parts.hostname}, want redis://{service}-redis")
        store = find(docs, "StatefulSet", f"{service}-redis")
        ref = _secret_ref(pod_spec(store[0])["containers"][0], "REDIS_PASSWORD") if store else None
        want = secret_value(docs, ns, ref.get("name", ""), ref.get("key", "")) if ref else None
        if not parts.password or (want is not None and unquote(parts.password) != want):
            problems.append(f"{service}: REDIS_URL's password is not {service}-redis's requirepass")
    return problems


def check_stores(docs: list[dict], overlay: str, env_rows: dict[str, list[EnvRow]], owners: dict[str, frozenset]) -> Problems:
    problems: Problems = []
    managed = overlay in MANAGED_OVERLAYS
    cms = configmaps(docs)
    # Generated Secrets: the dev overlay's alone, marked.
    for s in objects(docs, "Secret"):
        if managed:
            problems.append(f"{label(s)}: {overlay} renders a Secret (its values would be in the repository); make it by hand (docs/DEPLOY.md)")
        elif ((s.get("metadata") or {}).get("annotations") or {}).get(DEV_ONLY) != "true":
            problems.append(f"{label(s)}: a generated Secret without the {DEV_ONLY} mark")
    running = store_workloads(docs)
    if managed:
        for doc, _c, kind in running:
            problems.append(f"{label(doc)}: {overlay} runs an in-cluster {kind}; its stores are the managed ones")
        vpc = managed_vpc(docs)
        if vpc is None:
            problems.append(f"{overlay}: no ConfigMap {MANAGED_CONFIG} with a network range in {VPC_KEY} (the VPC of the managed stores)")
        elif not vpc.is_private or vpc.prefixlen < 8:
            problems.append(f"{overlay}: {VPC_KEY} {vpc} is not a VPC's private range")
    else:
        for doc, c, kind in running:
            problems += _check_mongo(docs, doc, c, owners) if kind == "mongo" else _check_redis(doc, c)
    for service, owned in sorted(owners.items()):
        if service not in env_rows:
            continue
        doc, container, missing = the_deployment(docs, service)
        problems += missing
        if container is None:
            continue
        env, _ = resolve_env(doc, container, cms)
        for kind, db in sorted(owned):
            var = STORE_VARS[kind]
            src = env.get(var)
            want = (MANAGED_SECRET if managed else IN_CLUSTER_SECRET)[var].format(service=service)
            if src is None or src["from"] != "secret":
                problems.append(f"{service}: {var} is {'unset' if src is None else 'a ' + src['from'] + ' value'}, want Secret {want} (it holds a password)")
                continue
            if src["ref"] != want or src["key"] != var or src["optional"]:
                problems.append(f"{service}: {var} from Secret {src['ref']} key {src['key']}{' (optional)' if src['optional'] else ''}, want {want} key {var}, required")
                continue
            if managed:
                continue
            url = secret_value(docs, ns_of(doc), want, var)
            if url is not None:
                problems += _in_cluster_url(docs, doc, service, var, url, db)
        uses_redis = any(kind == "redis" for kind, _ in owned)
        if managed and owned:
            vols = {v.get("name"): v for v in pod_spec(doc).get("volumes") or []}
            mounted = [m for m in container.get("volumeMounts") or [] if m.get("mountPath") == CA_DIR
                       and ((vols.get(m.get("name")) or {}).get("secret") or {}).get("secretName") == CA_SECRET]
            if not mounted:
                problems.append(f"{service}: the managed stores' CA (Secret {CA_SECRET}) is not mounted at {CA_DIR}")
            ca = str(env.get("REDIS_CA_FILE", {}).get("value", ""))
            if uses_redis and not ca.startswith(CA_DIR + "/"):
                problems.append(f"{service}: REDIS_CA_FILE={ca or '(unset)'}, want a file of {CA_DIR} (the managed Valkey's CA)")
    return problems


# --- self-tests -----------------------------------------------------------------------------


def self_tests(dev: list[dict], staging: list[dict], prod: list[dict], env_rows, owners, network: Callable[[list[dict]], Problems]) -> list[tuple[str, Callable[[], Problems]]]:
    """(name, thunk) pairs, each a broken copy the store checks (or, given as `network`, the
    NetworkPolicy check) must fail."""

    def c0(d):
        return pod_spec(d)["containers"][0]

    def env_item(name):
        def get(d):
            item = _env_item(c0(d), name)
            if item is None:
                raise LookupError(f"self-test: {label(d)} has no {name}")
            return item
        return get

    def literal(name, value):
        def fn(d):
            item = env_item(name)(d)
            item.pop("valueFrom")
            item["value"] = value
        return fn

    def set_secret(name, key, value):
        def fn(d):
            d.setdefault("data", {})[key] = base64.b64encode(value.encode()).decode()
        return lambda docs: mutate(docs, "Secret", name, fn)

    def initdb(edit):
        name = next(name_of(d) for d in objects(dev, "ConfigMap") if name_of(d).startswith("mongo-initdb"))
        return mutate(dev, "ConfigMap", name, lambda d: d["data"].update({k: edit(v) for k, v in d["data"].items()}))

    def with_objects(docs, more, ns):
        out = copy.deepcopy(docs)
        for d in copy.deepcopy(more):
            d["metadata"]["namespace"] = ns
            out.append(d)
        return out

    def drop_args(*names):
        def fn(d):
            c = c0(d)
            c["args"] = [a for a in c["args"] if a not in names and a != "$(REDIS_PASSWORD)"]
        return fn

    def rule(index, edit):
        return lambda d: edit(d["spec"]["egress"][index])

    def cidr(value):
        return lambda r: r["to"][0]["ipBlock"].update(cidr=value)

    def stores(docs, overlay):
        return lambda: check_stores(docs, overlay, env_rows, owners)

    prod_ns = ns_of(find(prod, "Deployment", "auth")[0])
    dev_store = [d for d in dev if name_of(d) == "auth-mongo" and kind_of(d) in ("StatefulSet", "Service")]
    dev_secret = [d for d in objects(dev, "Secret") if name_of(d) == "auth-mongo-url"]
    cm_name = next(name_of(d) for d in objects(prod, "ConfigMap") if name_of(d).startswith("expiration-config"))

    def redis_url_in_configmap(docs):
        docs = mutate(docs, "Deployment", "expiration", lambda d: c0(d).update(env=[e for e in c0(d)["env"] if e["name"] != "REDIS_URL"]))
        return mutate(docs, "ConfigMap", cm_name, lambda d: d["data"].update(REDIS_URL="rediss://default:hunter2@db.example.com:25061"))

    return [
        ("stores: prod runs an in-cluster MongoDB", stores(with_objects(prod, dev_store, prod_ns), "prod")),
        ("stores: a generated Secret in prod", stores(with_objects(prod, dev_secret, prod_ns), "prod")),
        ("stores: a dev Secret without its dev-only mark", stores(mutate(dev, "Secret", "auth-mongo-url", lambda d: d["metadata"].pop("annotations")), "dev")),
        ("stores: MONGO_URL as a literal with its password (dev)", stores(mutate(dev, "Deployment", "auth", literal("MONGO_URL", "mongodb://auth:pw@auth-mongo:27017/auth?authSource=auth")), "dev")),
        ("stores: REDIS_URL from a ConfigMap (prod)", stores(redis_url_in_configmap(prod), "prod")),
        ("stores: MONGO_URL from an optional Secret key (staging)", stores(mutate(staging, "Deployment", "orders", lambda d: env_item("MONGO_URL")(d)["valueFrom"]["secretKeyRef"].update(optional=True)), "staging")),
        ("stores: prod's notifications reading the in-cluster REDIS_URL Secret", stores(mutate(prod, "Deployment", "notifications", lambda d: env_item("REDIS_URL")(d)["valueFrom"]["secretKeyRef"].update(name="notifications-redis-url")), "prod")),
        ("stores: prod's expiration without the managed stores' CA", stores(mutate(prod, "Deployment", "expiration", lambda d: c0(d).update(volumeMounts=[m for m in c0(d)["volumeMounts"] if m["mountPath"] != CA_DIR])), "prod")),
        ("stores: prod's notifications without REDIS_CA_FILE", stores(mutate(prod, "ConfigMap", next(name_of(d) for d in objects(prod, "ConfigMap") if name_of(d).startswith("notifications-config")), lambda d: d["data"].pop("REDIS_CA_FILE")), "prod")),
        ("stores: prod without its VPC range", stores([d for d in prod if name_of(d) != MANAGED_CONFIG], "prod")),
        ("stores: a VPC range that is the internet", stores(mutate(prod, "ConfigMap", MANAGED_CONFIG, lambda d: d["data"].update({VPC_KEY: "0.0.0.0/0"})), "prod")),
        ("stores: dev's MongoDB without --auth", stores(mutate(dev, "StatefulSet", "tickets-mongo", drop_args("--auth")), "dev")),
        ("stores: dev's MongoDB root password as a literal", stores(mutate(dev, "StatefulSet", "payments-mongo", literal("MONGO_INITDB_ROOT_PASSWORD", "root")), "dev")),
        ("stores: orders' MongoDB user on the tickets database", stores(mutate(dev, "StatefulSet", "orders-mongo", lambda d: env_item("GITTIX_DB")(d).update(value="tickets")), "dev")),
        ("stores: the init script grants readWriteAnyDatabase", stores(initdb(lambda s: s.replace('{ role: "readWrite", db: database }', '{ role: "readWriteAnyDatabase", db: "admin" }')), "dev")),
        ("stores: the init script grants a second database", stores(initdb(lambda s: s.replace('{ role: "readWrite", db: database }', '{ role: "readWrite", db: database }, { role: "read", db: "tickets" }')), "dev")),
        ("stores: the init script creates a second user", stores(initdb(lambda s: s + 'db.getSiblingDB("admin").createUser({ user: "ops", pwd: password, roles: ["root"] });\n'), "dev")),
        ("stores: no init script mounted", stores(mutate(dev, "StatefulSet", "auth-mongo", lambda d: c0(d).update(volumeMounts=[m for m in c0(d)["volumeMounts"] if m["mountPath"] != INITDB_DIR])), "dev")),
        ("stores: dev's MONGO_URL signs in to another database", stores(set_secret("auth-mongo-url", "MONGO_URL", "mongodb://auth:dev-only-auth-mongo-user@auth-mongo:27017/tickets?authSource=tickets")(dev), "dev")),
        ("stores: dev's MONGO_URL as the root user", stores(set_secret("notifications-mongo-url", "MONGO_URL", "mongodb://root:dev-only-notifications-mongo-root@notifications-mongo:27017/notifications?authSource=admin")(dev), "dev")),
        ("stores: dev's MONGO_URL with another password than its user's", stores(set_secret("tickets-mongo-admin", "GITTIX_DB_PASSWORD", "changed")(dev), "dev")),
        ("stores: dev's Redis without requirepass", stores(mutate(dev, "StatefulSet", "expiration-redis", drop_args("--requirepass")), "dev")),
        ("stores: dev's Redis probe without REDISCLI_AUTH", stores(mutate(dev, "StatefulSet", "notifications-redis", lambda d: c0(d).update(env=[e for e in c0(d)["env"] if e["name"] != "REDISCLI_AUTH"])), "dev")),
        ("stores: dev's REDIS_URL without the password", stores(set_secret("expiration-redis-url", "REDIS_URL", "redis://expiration-redis:6379")(dev), "dev")),
        ("network: prod's auth may reach port 27017 anywhere", network(mutate(prod, "NetworkPolicy", "auth", rule(0, cidr("0.0.0.0/0"))))),
        ("network: prod's expiration reaches Valkey on 6379, not 25061", network(mutate(prod, "NetworkPolicy", "expiration", rule(0, lambda r: r["ports"][0].update(port=6379))))),
        ("network: staging's notifications without its Valkey rule", network(mutate(staging, "NetworkPolicy", "notifications", lambda d: d["spec"]["egress"].pop(1)))),
        ("network: prod's tickets may reach the managed Valkey", network(mutate(prod, "NetworkPolicy", "tickets", rule(0, lambda r: r["ports"].append({"protocol": "TCP", "port": 25061}))))),
        ("network: dev's auth MONGO_URL Secret leading to tickets-mongo", network(set_secret("auth-mongo-url", "MONGO_URL", "mongodb://auth:x@tickets-mongo:27017/auth?authSource=auth")(dev))),
    ]

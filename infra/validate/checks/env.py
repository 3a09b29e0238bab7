"""Configuration: every overlay's Deployments get exactly the variables infra/service-env.tsv
lists for their service, secrets from their Secret, URLs naming Services of the overlay."""

from __future__ import annotations

import re

from .common import EnvRow, Problems, configmaps, name_of, ns_of, objects, resolve_env, the_deployment
from .stores import store_secret_keys

# Secrets are created out of band (docs/DEPLOY.md): the only ones manifests may name.
SECRET_KEYS = {
    # The Ed25519 key that signs session tokens (auth only), and the public keys that verify
    # them (every service that checks a session; two during a key rotation).
    "jwt-signing-key": {"JWT_PRIVATE_KEY"},
    "jwt-public-keys": {"JWT_PUBLIC_KEYS"},
    "stripe-secret": {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_PUBLISHABLE_KEY"},
    # SendGrid's API key: notifications sends through it with MAIL_TRANSPORT=sendgrid.
    "sendgrid-secret": {"SENDGRID_API_KEY"},
}


URL_RE = re.compile(r"^(mongodb|nats|redis|smtp|https?)://([^/:@]+):(\d+)(/|$)")
# MAIL_TRANSPORT: SendGrid's API, or an SMTP server (service-env.tsv).
MAIL_TRANSPORT_RE = re.compile(r"^(sendgrid|smtp://[^/:@]+:\d+)$")


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
                # The documented Secrets, and the service's own store Secrets (stores.py).
                allowed = SECRET_KEYS.get(src["ref"], set()) | store_secret_keys(service).get(src["ref"], set())
                # Each service's own NATS password (infra/k8s/nats: Secret nats-<service>).
                if src["ref"] == f"nats-{service}":
                    allowed = allowed | {"NATS_PASSWORD"}
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
        # The mail transport: SendGrid needs its key from sendgrid-secret (not optional where
        # emails must leave: production); SMTP names a server (a Service of the overlay, as
        # every URL above).
        transport = env.get("MAIL_TRANSPORT", {}).get("value")
        if "MAIL_TRANSPORT" in by_var and transport is not None:
            if not MAIL_TRANSPORT_RE.match(str(transport)):
                problems.append(f"{service}: MAIL_TRANSPORT={transport!r} is neither sendgrid nor smtp://host:port")
            if transport == "sendgrid":
                key = env.get("SENDGRID_API_KEY")
                if key is None or key.get("from") != "secret":
                    problems.append(f"{service}: MAIL_TRANSPORT=sendgrid without SENDGRID_API_KEY from its Secret")
                elif key.get("optional") and app_env == "production":
                    problems.append(f"{service}: MAIL_TRANSPORT=sendgrid in production with an optional SENDGRID_API_KEY")
    return problems


def check_public_url(docs: list[dict], env_rows: dict[str, list[EnvRow]]) -> Problems:
    """PUBLIC_URL (the origin of the links a service puts in emails) is the origin of the
    overlay's Ingress: its one host, https where the Ingress has TLS for it, http otherwise."""
    problems: Problems = []
    cms = configmaps(docs)
    origins = set()
    for ing in objects(docs, "Ingress"):
        tls_hosts = {h for t in ing.get("spec", {}).get("tls") or [] for h in t.get("hosts") or []}
        for rule in ing.get("spec", {}).get("rules") or []:
            host = rule.get("host")
            origins.add(f"{'https' if host in tls_hosts else 'http'}://{host}" if host else None)
    for service, rows in env_rows.items():
        if not any(row.var == "PUBLIC_URL" for row in rows):
            continue
        doc, container, missing = the_deployment(docs, service)
        problems += missing
        if container is None:
            continue
        env, _ = resolve_env(doc, container, cms)
        got = str(env.get("PUBLIC_URL", {}).get("value", "")).rstrip("/")
        if len(origins) != 1 or None in origins:
            problems.append(f"{service}: the overlay's Ingress serves {sorted(map(str, origins))}, not one host: PUBLIC_URL cannot follow it")
        elif got != next(iter(origins)):
            problems.append(f"{service}: PUBLIC_URL={got or '(unset)'}, but the Ingress serves {next(iter(origins))}: links in emails would lead elsewhere")
    return problems

#!/usr/bin/env python3
"""Offline checks of everything that deploys GitTix: no cluster, no container engine.

Run by scripts/test.d/infra.sh (which provides the pinned tools on PATH and the Python
packages of infra/validate/requirements.txt); prints one line per check and ends with
`infra: N passed, M failed`, exiting non-zero when anything failed. `-v` shows what each
self-test caught.

This file is only the entry point: the checks live in the package checks/ beside it, one
module per job (checks/__init__.py lists them; the module of each is named below).

What is checked (docs/DEPLOY.md, "What make test checks", says why):
  render / schema   (manifests) every overlay renders with `kubectl kustomize`, and every object is
                    valid for Kubernetes K8S_VERSION (kubernetes-validate, strict), the
                    cert-manager ClusterIssuers against schemas/cert-manager-clusterissuer.json
  routes            (routes) each overlay's Ingress routes exactly infra/routes.tsv
  env               (env) every required variable of infra/service-env.tsv is set on its
                    service's Deployment, secrets come from their Secret, URLs name Services,
                    payments' gateway and notifications' mail transport have what they need,
                    PUBLIC_URL (links in emails) is the origin of the overlay's Ingress
  workloads         (manifests) probes, resources, security contexts, pinned images, data stores
  labels            (labels) the recommended app.kubernetes.io/* labels on every workload and
                    pod template, version = image tag; selectors by name alone
  network           (network) NetworkPolicies allow exactly the flows derived from routes.tsv,
                    service-env.tsv and the ownership table of docs/ARCHITECTURE.md
  stores            (stores) every store URL from the service's own Secret; dev's MongoDBs with
                    --auth and one service user each, readWrite on its own database alone (the
                    init script), its URL signing in as that user; dev's Redis with requirepass;
                    generated Secrets in dev alone, marked dev-only; staging and prod with no
                    in-cluster store, the managed stores' Secrets, CA and VPC range
  availability      (availability) PodDisruptionBudgets, HorizontalPodAutoscalers, spreading
                    the HTTP services across nodes
  release           (manifests) staging and prod with images set as the deploy workflow sets
                    them: TLS, issuers, hosts, the DigitalOcean load balancer, version labels
  skaffold          (build) skaffold.yaml against the skaffold/v4beta13 schema, plus its content
  dockerfile        (build) hadolint and the image rules; .dockerignore keeps the workspace
  workflows         (build) actionlint (with shellcheck) and what test.yml and deploy.yml must do
  deploy            (deploy) deploy.yml's deploy job: kubectl diff, apply pruning by the overlay's
                    instance label and an allowlist of its kinds (never Secrets, ConfigMaps,
                    Namespaces, volumes, nor infra/monitoring's objects), rollout status with a
                    timeout and rollout undo, a smoke test of the public site, in that order
  monitoring        (monitoring) infra/monitoring: the alerting rules (a PrometheusRule) and the Grafana
                    dashboard read only metrics the Rust code exports; the PodMonitors and
                    the service-down alert cover exactly the pods annotated for scraping,
                    each pod by one PodMonitor on the port it names; no metrics port is
                    behind the Ingress or (a port of its own) on a Service
  nats              (nats) NATS from the vendored chart (pinned, rendered offline), one server in
                    dev and a cluster of three in staging and prod (one per node), JetStream
                    on its volume with fsync always, NATS_STREAM_REPLICAS = servers, users =
                    infra/nats/permissions.json with passwords from Secrets, nats-server -t,
                    client port for the users alone, deploy.yml and skaffold.yaml with helm
  selftest          (selftest, run by runner) each check above, fed a deliberately broken copy, must fail
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from checks.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

"""The offline checks of everything that deploys GitTix, one module per job (validate.py,
beside this package, runs them all):

  common      paths, the tables (routes.tsv, service-env.tsv), the pinned tools, rendering
              an overlay with `kubectl kustomize`, helpers over rendered objects
  manifests   schema (kubernetes-validate, strict; cert-manager), workloads, release
  routes      each overlay's Ingress against infra/routes.tsv
  env         the Deployments' variables against infra/service-env.tsv
  labels      the recommended labels on workloads and pod templates; selectors unchanged
  network     NetworkPolicies against the flows the architecture has; stores' owners
  stores      the data stores: in-cluster ones signed in to (one database per user), managed
              ones over TLS with their CA; store URLs from Secrets; dev-only generated Secrets
  availability  PodDisruptionBudgets, HorizontalPodAutoscalers, spreading across nodes
  build       skaffold.yaml, the Dockerfile, .dockerignore, the GitHub workflows
  deploy      deploy.yml's deploy job: diff, apply with prune, rollouts undone on failure,
              smoke test, in that order; what the prune may reach
  monitoring  infra/monitoring: alerts, dashboard against the exported metrics; PodMonitors
              against the scrape annotations; metrics ports kept off the Ingress
  nats        the event bus: its vendored Helm chart rendered offline and pinned, one server
              or a cluster of three, JetStream, users = infra/nats/permissions.json,
              passwords from Secrets, its ports' policies, deploy.yml/skaffold with helm
  selftest    each check fed a deliberately broken copy, which it must fail
  runner      runs the checks, then the self-tests, and prints the tally
"""

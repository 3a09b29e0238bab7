"""The deploy job's safety (.github/workflows/deploy.yml, job `deploy`): a `kubectl diff`
before the apply, the apply pruning only what the overlay labels (by an explicit selector
and allowlist of kinds, never a hand-made Secret or anything applied by hand), every
Deployment and StatefulSet awaited with a timeout and undone when it fails, then a smoke
test of the public site, in that order. actionlint and shellcheck check the same file's
syntax and scripts (runner); this reads what the scripts do."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Callable, Iterable

import yaml

from .common import MONITORING, ROOT, Problems, label, name_of, objects

DEPLOY_YML = ROOT / ".github" / "workflows" / "deploy.yml"
INSTANCE_LABEL = "app.kubernetes.io/instance"
# The overlays deploy.yml deploys (its workflow_dispatch choices; prod on push).
DEPLOYED_OVERLAYS = ("staging", "prod")
# Kinds the prune must never reach, whatever the overlays hold, and why.
NEVER_PRUNED = {
    "Namespace": "deleting it deletes everything in it, the hand-made Secrets and the data included",
    "Secret": "the Secrets are made by hand (jwt-signing-key, jwt-public-keys, stripe-secret, sendgrid-secret)",
    "PersistentVolumeClaim": "the data stores' volumes",
    "ConfigMap": "`kubectl rollout undo` needs the previous revision's hash-named ConfigMaps",
}
# What the smoke test must ask, and what the Ingress does not route (so it must not).
SMOKE_PATHS = ("/api/tickets", "/api/users/currentuser")
PRIVATE_PATHS = ("/readyz", "/healthz", "/metrics")


def load_deploy_workflow(path: Path = DEPLOY_YML) -> dict:
    return yaml.safe_load(path.read_text())


def hand_applied() -> list[dict]:
    """The objects of infra/monitoring, which are applied by hand into the app's namespace."""
    docs: list[dict] = []
    for f in sorted(MONITORING.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(f.read_text()) if isinstance(d, dict)]
    return docs


def script(step: dict) -> str:
    """A step's run script as logical lines: continuations joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", step.get("run") or "")
    lines = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        lines.append(re.sub(r"\s#\s.*$", "", line))
    return "\n".join(lines)


def command_lines(text: str, *words: str) -> list[str]:
    return [line for line in text.splitlines() if all(w in line for w in words)]


def gvk(doc: dict) -> str:
    """group/version/Kind as --prune-allowlist spells it (core for the legacy group)."""
    api = doc.get("apiVersion", "")
    return f"{api if '/' in api else 'core/' + api}/{doc.get('kind')}"


def minutes(value: str) -> float | None:
    m = re.fullmatch(r"(\d+)(s|m|h)", value)
    if not m:
        return None
    return int(m.group(1)) * {"s": 1 / 60, "m": 1, "h": 60}[m.group(2)]


def instance_of(docs: list[dict]) -> str | None:
    values = {(d["metadata"].get("labels") or {}).get(INSTANCE_LABEL) for d in objects(docs, "Deployment") + objects(docs, "StatefulSet")}
    return values.pop() if len(values) == 1 else None


def matches(selector: str, labels: dict) -> bool:
    """An equality-based selector (k=v,k!=v,k) against labels."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k) != v:
                return False
        elif term not in labels:
            return False
    return True


def check_deploy_safety(wf: dict, renders: dict[str, list[dict]], hand_made: list[dict], secret_names: Iterable[str]) -> Problems:
    problems: Problems = []
    job = (wf.get("jobs") or {}).get("deploy")
    if not job:
        return ["deploy.yml has no job `deploy`"]
    env = {**(wf.get("env") or {}), **(job.get("env") or {})}
    steps = job.get("steps") or []
    scripts = [script(s) for s in steps]

    def overlay_expr(value: str, overlay: str) -> str:
        value = re.sub(r"\$\{\{\s*inputs\.overlay\s*\|\|\s*'[a-z]+'\s*\}\}", overlay, value)
        return re.sub(r"\$\{?OVERLAY\}?", overlay, value)

    def resolve(token: str) -> str:
        token = token.strip("'\"")
        m = re.fullmatch(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", token)
        return str(env.get(m.group(1), token)) if m else token

    def first(pred: Callable[[str], bool]) -> int | None:
        return next((i for i, s in enumerate(scripts) if pred(s)), None)

    def name(i: int) -> str:
        return f"step {i + 1} ({steps[i].get('name') or steps[i].get('uses') or 'unnamed'})"

    diff_i = first(lambda s: bool(command_lines(s, "kubectl diff")))
    apply_i = first(lambda s: any("--dry-run" not in line for line in command_lines(s, "kubectl apply")))
    rollout_i = first(lambda s: bool(command_lines(s, "rollout status")))
    smoke_i = first(lambda s: bool(command_lines(s, "curl")))
    for what, i in (("a `kubectl diff`", diff_i), ("a `kubectl apply`", apply_i), ("a `kubectl rollout status`", rollout_i), ("a smoke test (curl)", smoke_i)):
        if i is None:
            problems.append(f"the deploy job has no step running {what}")
    found = [(w, i) for w, i in (("diff", diff_i), ("apply", apply_i), ("rollout status", rollout_i), ("smoke test", smoke_i)) if i is not None]
    for (w1, i1), (w2, i2) in zip(found, found[1:]):
        if i1 >= i2:
            problems.append(f"the {w1} ({name(i1)}) does not come before the {w2} ({name(i2)}): want diff, apply, rollout status, smoke test")
    for i in (diff_i, apply_i, rollout_i, smoke_i):
        if i is not None and (steps[i].get("continue-on-error") or "always()" in str(steps[i].get("if", ""))):
            problems.append(f"{name(i)} runs whatever happened before it, or lets the job go on when it fails")

    # --- diff: shown, and its exit status 1 ("there are differences") is not a failure -----
    if diff_i is not None:
        s = scripts[diff_i]
        line = command_lines(s, "kubectl diff")[0]
        tolerant = "set +e" in s.split(line)[0] or "||" in line or re.match(r"\s*(if|until|while)\b", line)
        if not tolerant or not re.search(r"-(gt|le) 1\b|-ge 2\b|-(eq|ne) 1\b|\b1\)", s):
            problems.append(f"{name(diff_i)}: `kubectl diff` exits 1 when there are differences; the step must take only a status above 1 for a failure")
        if "GITHUB_STEP_SUMMARY" not in s:
            problems.append(f"{name(diff_i)}: the diff does not go to the run's summary ($GITHUB_STEP_SUMMARY)")

    # --- apply: everything, and a prune by this overlay's label and an allowlist of kinds ----
    if apply_i is not None:
        s = scripts[apply_i]
        applies = [line for line in command_lines(s, "kubectl apply") if "--dry-run" not in line]
        prunes = [line for line in applies if re.search(r"--prune\b(?!-)", line)]
        if not prunes:
            problems.append(f"{name(apply_i)}: no `kubectl apply --prune`: objects removed from the overlay keep running")
        for line in prunes:
            if re.search(r"\s--all\b", line):
                problems.append(f"{name(apply_i)}: prune with --all: every object of the allowlisted kinds in the namespace is a candidate, hand-made ones too")
            sel = re.search(r"(?:\s-l|--selector)[ =](\"[^\"]*\"|'[^']*'|\S+)", line)
            # Literal --prune-allowlist=KIND flags, or ones a loop builds from a variable:
            #   for kind in $PRUNE_ALLOWLIST; do allow+=("--prune-allowlist=$kind"); done
            allow = [v.strip("'\"") for v in re.findall(r"--prune-allowlist[ =](\"[^\"]*\"|'[^']*'|\S+)", line) if "$" not in v]
            for loop in re.finditer(r"for (\w+) in \"?\$\{?(\w+)\}?\"?;.*--prune-allowlist=\$\{?\1\}?", s):
                allow += str(env.get(loop.group(2), "")).split()
            if not sel:
                problems.append(f"{name(apply_i)}: prune without a label selector (-l)")
            if not allow:
                problems.append(f"{name(apply_i)}: prune without --prune-allowlist: kubectl's default list includes kinds the overlays do not hold (Secret, PersistentVolumeClaim)")
            expected: set[str] = set()
            for overlay in DEPLOYED_OVERLAYS:
                docs = renders.get(overlay)
                if docs is None:
                    problems.append(f"no render of {overlay} to check the prune against")
                    continue
                instance = instance_of(docs)
                if instance is None:
                    problems.append(f"{overlay}: the workloads do not share one {INSTANCE_LABEL}")
                    continue
                owned = [d for d in docs if (d["metadata"].get("labels") or {}).get(INSTANCE_LABEL) == instance]
                expected |= {gvk(d) for d in owned if d["metadata"].get("namespace") and d.get("kind") not in NEVER_PRUNED}
                if sel:
                    selector = overlay_expr(resolve(sel.group(1)), overlay)
                    if selector != f"{INSTANCE_LABEL}={instance}":
                        problems.append(f"{name(apply_i)}: prunes by {selector!r} for {overlay}, want exactly {INSTANCE_LABEL}={instance} (what the overlay's own objects carry)")
                    for d in hand_made:
                        if matches(selector, (d.get("metadata") or {}).get("labels") or {}):
                            problems.append(f"{label(d)} (applied by hand from infra/monitoring) matches the prune selector {selector!r} of {overlay}")
                    if len(owned) < len(docs) and not any(not re.search(r"\s(-l|--selector)\b", a) and a not in prunes for a in applies):
                        others = ", ".join(label(d) for d in docs if d not in owned)
                        problems.append(f"{name(apply_i)}: nothing applies the objects outside the selector ({others}) in {overlay}")
                namespaces = [name_of(d) for d in objects(docs, "Namespace")]
                for d in objects(docs, "Deployment") + objects(docs, "StatefulSet"):
                    if [d["metadata"].get("namespace")] != namespaces:
                        problems.append(f"{overlay}: {label(d)} is not in the overlay's Namespace {namespaces}, where the job awaits and undoes rollouts")
                for d in objects(docs, "Secret"):
                    if name_of(d) in set(secret_names):
                        problems.append(f"{overlay} renders the Secret {name_of(d)}, which is made by hand (docs/DEPLOY.md)")
            given = set(allow)
            for entry in sorted(given):
                kind = entry.rsplit("/", 1)[-1]
                if kind in NEVER_PRUNED:
                    problems.append(f"the prune allowlist has {entry}: never prune a {kind} ({NEVER_PRUNED[kind]})")
                elif allow and entry not in expected:
                    problems.append(f"the prune allowlist has {entry}, a kind the overlays do not label: pruning it reaches objects GitTix did not create")
            for entry in sorted(expected - given) if allow else []:
                problems.append(f"the prune allowlist lacks {entry}: such objects removed from the overlay would keep running")

    # --- rollouts: every workload, a timeout, undo on failure, the job fails ----------------
    if rollout_i is not None:
        s = scripts[rollout_i]
        status = command_lines(s, "rollout status")
        if not re.search(r"deployment", s, re.I) or not re.search(r"statefulset", s, re.I):
            problems.append(f"{name(rollout_i)}: does not await both the Deployments and the StatefulSets")
        if "rollout undo" not in s:
            problems.append(f"{name(rollout_i)}: a failed rollout is not undone (`kubectl rollout undo`)")
        if not re.search(r"\bexit +(\"?\$\w+\"?|[1-9])", s):
            problems.append(f"{name(rollout_i)}: never exits non-zero: a failed rollout would pass")
        timeouts = [minutes(resolve(m)) for m in re.findall(r"--timeout[ =](\"[^\"]*\"|\S+)", status[0])] if status else []
        if not timeouts:
            problems.append(f"{name(rollout_i)}: `rollout status` without --timeout")
        elif timeouts[0] is None:
            problems.append(f"{name(rollout_i)}: cannot read the rollout timeout {status[0]!r}")
        else:
            workloads = max((len(objects(d, "Deployment") + objects(d, "StatefulSet")) for d in renders.values()), default=1)
            parallel = status[0].rstrip().endswith("&")
            undo = [minutes(resolve(m)) or 0 for line in command_lines(s, "rollout status")[1:] for m in re.findall(r"--timeout[ =](\"[^\"]*\"|\S+)", line)]
            total = timeouts[0] * (1 if parallel else workloads) + sum(undo) + 1
            limit = job.get("timeout-minutes")
            if isinstance(limit, int) and total >= limit:
                problems.append(f"the deploy job's timeout-minutes ({limit}) ends it before its rollouts can: "
                                f"{'awaited together' if parallel else f'{workloads} awaited one after the other'} at {timeouts[0]:g} min each, "
                                f"with the undo and the smoke test {total:g} min")

    # --- smoke test: the public site, public paths, retried ---------------------------------
    if smoke_i is not None:
        s = scripts[smoke_i]
        for path in SMOKE_PATHS:
            if path not in s:
                problems.append(f"{name(smoke_i)}: does not GET {path}")
        for path in PRIVATE_PATHS:
            if path in s:
                problems.append(f"{name(smoke_i)}: asks {path}, which the Ingress does not route")
        if not (re.search(r"\b(until|while|for)\b", s) and "sleep" in s):
            problems.append(f"{name(smoke_i)}: no retry (a loop with sleep) while the load balancer catches up")
        if not re.search(r"ingress|URL", s):
            problems.append(f"{name(smoke_i)}: the URL is neither the Ingress host nor a configured URL")
    return problems


# --- self-tests ------------------------------------------------------------------------------


def self_tests(renders: dict[str, list[dict]], secret_names: Iterable[str]) -> list[tuple[str, Callable[[], Problems]]]:
    """(name, thunk) pairs: the check on a broken copy of deploy.yml (or of what is applied by
    hand), each of which must fail."""
    secret_names = list(secret_names)

    def broken(edit: Callable[[dict], None], hand: Callable[[list[dict]], None] = lambda docs: None) -> Callable[[], Problems]:
        def thunk() -> Problems:
            wf = copy.deepcopy(load_deploy_workflow())
            edit(wf)
            docs = hand_applied()
            hand(docs)
            return check_deploy_safety(wf, renders, docs, secret_names)
        return thunk

    def job(wf: dict) -> dict:
        return wf["jobs"]["deploy"]

    def step_with(wf: dict, needle: str) -> dict:
        found = [s for s in job(wf)["steps"] if needle in (s.get("run") or "")]
        if not found:
            raise LookupError(f"self-test: no deploy step runs {needle!r}")
        return found[0]

    def replace(needle: str, old: str, new: str) -> Callable[[dict], None]:
        def edit(wf: dict) -> None:
            s = step_with(wf, needle)
            if old not in s["run"]:
                raise LookupError(f"self-test: {old!r} not in the step running {needle!r}")
            s["run"] = s["run"].replace(old, new)
        return edit

    def move(needle: str, before: str) -> Callable[[dict], None]:
        def edit(wf: dict) -> None:
            steps = job(wf)["steps"]
            s = step_with(wf, needle)
            steps.remove(s)
            steps.insert(steps.index(step_with(wf, before)), s)
        return edit

    def drop(needle: str) -> Callable[[dict], None]:
        return lambda wf: job(wf)["steps"].remove(step_with(wf, needle))

    def env(key: str, fn: Callable[[str], str]) -> Callable[[dict], None]:
        def edit(wf: dict) -> None:
            job(wf)["env"][key] = fn(job(wf)["env"][key])
        return edit

    def label_monitoring(docs: list[dict]) -> None:
        prod = instance_of(renders["prod"])
        docs[0].setdefault("metadata", {}).setdefault("labels", {})[INSTANCE_LABEL] = prod

    return [
        ("deploy: the apply before the diff", broken(move("templates-before", "kubectl diff"))),
        ("deploy: kubectl diff's exit status 1 taken for a failure", broken(replace("kubectl diff", "set +e\n", ""))),
        ("deploy: the apply without --prune", broken(lambda wf: step_with(wf, "templates-before").update(run='kubectl apply -f "$MANIFESTS"\n'))),
        ("deploy: prune with --all instead of the overlay's label", broken(replace("templates-before", '-l "$PRUNE_SELECTOR" "${allow[@]}"\n', '--all "${allow[@]}"\n'))),
        ("deploy: prune by part-of=gittix (takes the monitoring objects too)", broken(env("PRUNE_SELECTOR", lambda v: "app.kubernetes.io/part-of=gittix"))),
        ("deploy: Secret in the prune allowlist", broken(env("PRUNE_ALLOWLIST", lambda v: v + " core/v1/Secret"))),
        ("deploy: ConfigMap in the prune allowlist (rollback needs them)", broken(env("PRUNE_ALLOWLIST", lambda v: v + " core/v1/ConfigMap"))),
        ("deploy: PodDisruptionBudget missing from the prune allowlist", broken(env("PRUNE_ALLOWLIST", lambda v: v.replace("policy/v1/PodDisruptionBudget", "")))),
        ("deploy: a monitoring object labelled as prod's own", broken(lambda wf: None, label_monitoring)),
        ("deploy: a failed rollout not undone", broken(replace("rollout status", "rollout undo", "rollout history"))),
        ("deploy: rollouts without a timeout", broken(replace("rollout status", ' --timeout="$ROLLOUT_TIMEOUT"', ""))),
        ("deploy: rollouts one by one, past the job's timeout", broken(replace("rollout status", "2>&1 &\n", "2>&1\n"))),
        ("deploy: the smoke test before the rollouts", broken(move("curl", "rollout status"))),
        ("deploy: a smoke test of /readyz", broken(replace("curl", "get /api/tickets application/json", "get /readyz text/plain"))),
        ("deploy: no smoke test", broken(drop("curl"))),
    ]

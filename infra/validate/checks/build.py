"""Building and shipping: skaffold.yaml against the skaffold/v4beta13 schema and in content,
the Dockerfile (hadolint and the image rules), .dockerignore, what the GitHub workflows
must do (actionlint runs separately, in the runner), and the one Rust toolchain."""

from __future__ import annotations

import copy
import fnmatch
import re
from pathlib import Path
from typing import Iterable

import yaml

from .common import ROOT, SCHEMAS, Problems, objects, pod_spec, run, split_image, tool_output

SKAFFOLD_SCHEMA = SCHEMAS / "skaffold-v4beta13.json"
SHARED_SKAFFOLD_SCHEMA = ROOT.parent / "shared" / "schemas" / "skaffold-v4beta13.json"
SKAFFOLD_API_VERSION = "skaffold/v4beta13"


def check_skaffold_schema(path: Path, schema: Path = SKAFFOLD_SCHEMA) -> Problems:
    return tool_output(run(["check-jsonschema", "--schemafile", str(schema), str(path)]))


def check_shared_schema() -> Problems:
    if not SHARED_SKAFFOLD_SCHEMA.exists():
        return []  # a clone without shared/ beside it: the vendored copy is the schema
    if SHARED_SKAFFOLD_SCHEMA.read_bytes() != SKAFFOLD_SCHEMA.read_bytes():
        return [f"{SKAFFOLD_SCHEMA.relative_to(ROOT)} differs from {SHARED_SKAFFOLD_SCHEMA}: copy it again"]
    return []


def json_patch(doc: dict, patches: list[dict]) -> dict:
    """The add/replace/remove operations skaffold profiles use here (RFC 6902 subset)."""
    doc = copy.deepcopy(doc)
    for p in patches:
        parts = [s.replace("~1", "/").replace("~0", "~") for s in p["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        key = int(last) if isinstance(parent, list) else last
        if p["op"] in ("add", "replace"):
            if p["op"] == "replace" and (isinstance(parent, dict) and key not in parent):
                raise KeyError(f"patch {p['path']}: nothing to replace")
            parent[key] = p["value"]
        elif p["op"] == "remove":
            del parent[key]
        else:
            raise ValueError(f"patch op {p['op']} is not handled here")
    return doc


def check_skaffold_config(path: Path, services: Iterable[str]) -> Problems:
    problems: Problems = []
    cfg = yaml.safe_load(path.read_text())
    if cfg.get("apiVersion") != SKAFFOLD_API_VERSION:
        problems.append(f"apiVersion {cfg.get('apiVersion')!r}, want {SKAFFOLD_API_VERSION}")
    if cfg.get("kind") != "Config":
        problems.append(f"kind {cfg.get('kind')!r}, want Config")

    def artifacts_ok(c: dict, where: str, profile: str) -> None:
        arts = {a.get("image"): a for a in (c.get("build") or {}).get("artifacts") or []}
        if set(arts) != {f"gittix/{s}" for s in services}:
            problems.append(f"{where}: artifacts {sorted(arts)}, want gittix/<service> for each service")
        for s in services:
            a = arts.get(f"gittix/{s}")
            if not a:
                continue
            docker = a.get("docker") or {}
            args = docker.get("buildArgs") or {}
            if a.get("context", ".") != "." or docker.get("dockerfile", "Dockerfile") != "Dockerfile":
                problems.append(f"{where}: gittix/{s} is not built from the root Dockerfile")
            if args.get("SERVICE") != s:
                problems.append(f"{where}: gittix/{s} builds SERVICE={args.get('SERVICE')}")
            if args.get("CARGO_PROFILE", "release") != profile:
                problems.append(f"{where}: gittix/{s} builds CARGO_PROFILE={args.get('CARGO_PROFILE')}, want {profile}")

    def manifests_ok(c: dict, where: str, overlay: str) -> None:
        paths = ((c.get("manifests") or {}).get("kustomize") or {}).get("paths")
        if paths != [f"infra/k8s/overlays/{overlay}"]:
            problems.append(f"{where}: kustomize paths {paths}, want infra/k8s/overlays/{overlay}")
        for p in paths or []:
            if not (ROOT / p / "kustomization.yaml").exists():
                problems.append(f"{where}: {p} has no kustomization.yaml")

    artifacts_ok(cfg, "build", "dev")
    manifests_ok(cfg, "manifests", "dev")
    if ((cfg.get("build") or {}).get("local") or {}).get("push") is not False:
        problems.append("build.local.push is not false: the dev loop must not push")
    if "kubectl" not in (cfg.get("deploy") or {}):
        problems.append("deploy.kubectl is missing")
    profiles = {p.get("name"): p for p in cfg.get("profiles") or []}
    for overlay in ("staging", "prod"):
        prof = profiles.get(overlay)
        if prof is None:
            problems.append(f"no profile {overlay}")
            continue
        try:
            applied = json_patch({k: v for k, v in cfg.items() if k != "profiles"}, prof.get("patches") or [])
        except (KeyError, IndexError, ValueError) as err:
            problems.append(f"profile {overlay}: {err}")
            continue
        for key in ("build", "manifests", "deploy"):
            if key in prof:
                applied[key] = {**(applied.get(key) or {}), **prof[key]}
        artifacts_ok(applied, f"profile {overlay}", "release")
        manifests_ok(applied, f"profile {overlay}", overlay)
        if ((applied.get("build") or {}).get("local") or {}).get("push") is not True:
            problems.append(f"profile {overlay}: images are not pushed")
    return problems


def dockerfile_stages(text: str) -> list[dict]:
    """FROM lines and the instructions of each stage (continuations joined)."""
    text = re.sub(r"\\\n", " ", text)
    stages: list[dict] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            stages.append({"image": parts[0], "name": parts[2] if len(parts) > 2 else None, "lines": []})
        elif stages:
            stages[-1]["lines"].append((word.upper(), rest.strip()))
    return stages


def check_dockerfile(path: Path) -> Problems:
    problems: Problems = []
    stages = dockerfile_stages(path.read_text())
    if not stages:
        return ["no FROM"]
    names = {s["name"] for s in stages if s["name"]}
    for s in stages:
        if s["image"] in names:
            continue
        _name, tag, digest = split_image(s["image"])
        if not digest and (not tag or tag == "latest"):
            problems.append(f"FROM {s['image']}: pin a tag (not latest) or a digest")
    final = stages[-1]
    users = [rest for word, rest in final["lines"] if word == "USER"]
    if not users or not re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]):
        problems.append(f"the runtime stage's USER is {users[-1] if users else 'unset'}: a non-zero uid")
    all_lines = [line for s in stages for line in s["lines"]]
    if ("ARG", "SERVICE") not in all_lines:
        problems.append("no build argument SERVICE")
    if not any(w == "RUN" and "cargo chef cook" in r for w, r in all_lines):
        problems.append("dependencies are not cached (cargo chef cook)")
    if not any(w == "RUN" and re.search(r"--bin \"?\$\{?SERVICE", r) for w, r in all_lines):
        problems.append("no `cargo build --bin $SERVICE`")
    if not any(w == "ENTRYPOINT" for w, _ in final["lines"]):
        problems.append("the runtime stage has no ENTRYPOINT")
    return problems


def check_dockerignore(path: Path) -> Problems:
    problems: Problems = []
    patterns = [
        line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]

    def ignored(rel: str) -> bool:
        out = False
        for pat in patterns:
            neg = pat.startswith("!")
            pat = pat.lstrip("!").strip("/")
            parts = rel.split("/")
            hit = any(
                fnmatch.fnmatch("/".join(parts[: i + 1]), pat) or fnmatch.fnmatch("/".join(parts[: i + 1]), pat.replace("**/", ""))
                for i in range(len(parts))
            )
            if hit:
                out = not neg
        return out

    for keep in ["Cargo.toml", "Cargo.lock", "crates/common/src/lib.rs", "services/auth/src/main.rs", "services/client/templates/page.html"]:
        if ignored(keep):
            problems.append(f".dockerignore drops {keep}, which the build needs")
    for drop in ["target/release/auth", ".git/HEAD", ".gittix/test/servers.env", "rust-toolchain.toml"]:
        if not ignored(drop):
            problems.append(f".dockerignore sends {drop} to the build")
    return problems


def check_workflows_content(services: list[str], images: dict[str, str]) -> Problems:
    """What the workflows must do beyond being valid (actionlint checks that)."""
    problems: Problems = []
    wf_dir = ROOT / ".github" / "workflows"
    test = yaml.safe_load((wf_dir / "test.yml").read_text())
    deploy = yaml.safe_load((wf_dir / "deploy.yml").read_text())
    # PyYAML reads the key `on` as True.
    test_on = test.get("on", test.get(True)) or {}
    deploy_on = deploy.get("on", deploy.get(True)) or {}
    if "pull_request" not in test_on or "main" not in ((test_on.get("push") or {}).get("branches") or []):
        problems.append("test.yml does not run on pull requests and pushes to main")
    if "main" not in ((deploy_on.get("push") or {}).get("branches") or []):
        problems.append("deploy.yml does not run on pushes to main")
    job = (test.get("jobs") or {}).get("test") or {}
    env = {**(test.get("env") or {}), **(job.get("env") or {})}
    for var in ("TEST_MONGO_URL", "TEST_NATS_URL", "TEST_REDIS_URL"):
        if not env.get(var):
            problems.append(f"test.yml does not set {var}")
    runs = "\n".join(s.get("run", "") for s in job.get("steps") or [])
    if not re.search(r"^\s*make test\s*$", runs, re.M):
        problems.append("test.yml does not run `make test`")
    if "--jetstream" not in runs and " -js" not in runs:
        problems.append("test.yml starts NATS without JetStream")
    # CI's servers are the images production runs.
    ci_images = {name: (svc or {}).get("image", "") for name, svc in (job.get("services") or {}).items()}
    ci_images["nats"] = env.get("NATS_IMAGE", "")
    for name, image in images.items():
        if ci_images.get(name) != image:
            problems.append(f"test.yml runs {name} {ci_images.get(name) or 'nowhere'}, infra/k8s runs {image}")
    d_env = deploy.get("env") or {}
    # Every service once, in any order.
    if sorted((d_env.get("SERVICES") or "").split()) != sorted(services):
        problems.append(f"deploy.yml SERVICES is {d_env.get('SERVICES')!r}, want each of {' '.join(services)!r} once")
    d_runs = "\n".join(s.get("run", "") for j in (deploy.get("jobs") or {}).values() for s in j.get("steps") or [])
    # The deploy job's diff, prune, rollouts and smoke test: deploy.py.
    for needle in ("doctl kubernetes cluster kubeconfig save", "infra/k8s/set-images.sh", "kubectl apply", "rollout status"):
        if needle not in d_runs:
            problems.append(f"deploy.yml never runs {needle}")
    return problems


def base_images(docs: list[dict]) -> dict[str, str]:
    """The data stores' images by role: mongo, redis, nats."""
    out: dict[str, str] = {}
    for doc in objects(docs, "StatefulSet"):
        for c in pod_spec(doc).get("containers", []):
            role = split_image(c["image"])[0].rsplit("/", 1)[-1]
            out.setdefault(role, c["image"])
    return out


# Servers `make up` builds (scripts/install.sh, at the versions pinned in scripts/lib.sh) and
# the clusters run as images: lib.sh's variable, and the image's name.
LIB_SH = ROOT / "scripts" / "lib.sh"
LOCAL_SERVERS = {"NATS_SERVER_VERSION": "nats", "MAILPIT_VERSION": "axllent/mailpit"}


def check_local_versions(docs: list[dict], lib_sh: str | None = None) -> Problems:
    """Each server the local stack builds runs the same version in the overlay as there
    (a tag's leading v and -alpine aside), so what `make up` shows is what deploys."""
    text = LIB_SH.read_text() if lib_sh is None else lib_sh
    problems: Problems = []
    images = {split_image(c.get("image", ""))[0].removeprefix("docker.io/").removeprefix("library/"): c.get("image", "")
              for d in objects(docs, "StatefulSet") + objects(docs, "Deployment") for c in pod_spec(d).get("containers") or []}
    for var, image in LOCAL_SERVERS.items():
        m = re.search(rf'^{var}="?v?([^"\s]+)"?', text, re.M)
        if not m:
            problems.append(f"scripts/lib.sh sets no {var}")
            continue
        if image not in images:
            continue  # not in this overlay (Mailpit runs in dev only)
        tag = split_image(images[image])[1].removeprefix("v").removesuffix("-alpine")
        if tag != m.group(1):
            problems.append(f"{images[image]} runs {tag}, scripts/lib.sh builds {var}={m.group(1)} for the local stack")
    return problems


# The one Rust toolchain: rust-toolchain.toml's channel is the release every other place
# names (Cargo.toml's rust-version, the Dockerfile's rust image, the workflows), so a bump
# that misses one fails here. Paths relative to the root; the self-tests pass broken copies.
RUST_TOOLCHAIN = "rust-toolchain.toml"
RELEASE_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
# rustup subcommands whose positional arguments are toolchains, and their options that take
# a value (skipped with it).
RUSTUP_TOOLCHAIN_ARGS = re.compile(r"\brustup\s+(toolchain\s+install|install|default|override\s+set|update|run)\b([^\n;&|]*)")
RUSTUP_VALUE_OPTIONS = {"--profile", "-c", "--component", "-t", "--target", "--path"}


def toml_value(text: str, table: str, key: str) -> str | None:
    """The string (or `key.workspace = true`: "workspace") of `key` in [table]: one line
    each in the files checked here, so no TOML library (tomllib is Python 3.11+)."""
    current = None
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if re.fullmatch(r"\[[^\]]+\]", line):
            current = line[1:-1].strip()
        elif current == table:
            m = re.fullmatch(rf'{re.escape(key)}\s*=\s*"([^"]*)"', line)
            if m:
                return m.group(1)
            if re.fullmatch(rf"{re.escape(key)}\.workspace\s*=\s*true", line):
                return "workspace"
    return None


def toolchains_in_workflow(wf: dict) -> list[tuple[str, str]]:
    """(where, toolchain) for every Rust toolchain a workflow names: action inputs and refs,
    RUSTUP_TOOLCHAIN, and rustup/cargo/rustc arguments in its scripts."""
    named: list[tuple[str, str]] = []

    def env_of(obj: dict, where: str) -> None:
        value = (obj.get("env") or {}).get("RUSTUP_TOOLCHAIN")
        if value is not None:
            named.append((f"{where} env RUSTUP_TOOLCHAIN", str(value)))

    env_of(wf, "the workflow's")
    for job_name, job in (wf.get("jobs") or {}).items():
        env_of(job, f"job {job_name}:")
        for i, step in enumerate(job.get("steps") or []):
            where = f"job {job_name}, step {step.get('name') or step.get('uses') or i + 1!r}:"
            env_of(step, where)
            uses = step.get("uses") or ""
            with_ = step.get("with") or {}
            for key in ("toolchain", "rust-version"):
                for value in str(with_.get(key) or "").split(","):
                    if value.strip():
                        named.append((f"{where} {key}", value.strip()))
            # dtolnay/rust-toolchain@<toolchain>: its ref names one unless it is master or a commit.
            if uses.startswith("dtolnay/rust-toolchain@"):
                ref = uses.split("@", 1)[1]
                if ref != "master" and not re.fullmatch(r"[0-9a-f]{40}", ref):
                    named.append((f"{where} uses", ref))
            script = step.get("run") or ""
            for m in re.finditer(r"\b(?:cargo|rustc|rustdoc)\s+\+(\S+)", script):
                named.append((f"{where} run", m.group(1)))
            for m in re.finditer(r"\bRUSTUP_TOOLCHAIN=(\S+)", script):
                named.append((f"{where} run", m.group(1)))
            for m in RUSTUP_TOOLCHAIN_ARGS.finditer(script):
                words = m.group(2).split()
                skip = False
                for word in words:
                    if skip:
                        skip = False
                    elif word in RUSTUP_VALUE_OPTIONS:
                        skip = True
                    elif not word.startswith("-"):
                        named.append((f"{where} run", word))
                        if m.group(1) == "run":
                            break  # `rustup run <toolchain> <command…>`
    return named


def check_toolchain(files: dict[str, str] | None = None) -> Problems:
    """rust-toolchain.toml pins a release; the workspace's rust-version is that release and
    every member inherits it; the Dockerfile builds on rust:<that release>; no workflow
    names another toolchain, and test.yml installs this one before `make test`."""
    files = files or {}

    def text(rel: str) -> str:
        return files[rel] if rel in files else (ROOT / rel).read_text()

    problems: Problems = []
    channel = toml_value(text(RUST_TOOLCHAIN), "toolchain", "channel")
    if not channel or not RELEASE_RE.fullmatch(channel):
        return [f"{RUST_TOOLCHAIN}: channel {channel!r} is not a release (x.y.z): pin one"]
    release = channel.split(".")

    cargo = text("Cargo.toml")
    rust_version = toml_value(cargo, "workspace.package", "rust-version")
    if rust_version is None:
        problems.append("Cargo.toml: [workspace.package] has no rust-version")
    elif rust_version.split(".") != release[: len(rust_version.split("."))]:
        problems.append(f"Cargo.toml: rust-version {rust_version}, {RUST_TOOLCHAIN} pins {channel}")
    m = re.search(r"^members\s*=\s*\[([^\]]*)\]", cargo, re.M)
    patterns = re.findall(r'"([^"]+)"', m.group(1)) if m else []
    manifests = sorted({str(p.relative_to(ROOT)) for pat in patterns for p in ROOT.glob(f"{pat}/Cargo.toml")} | {f for f in files if f.endswith("/Cargo.toml")})
    if not manifests:
        problems.append("Cargo.toml: no workspace members found")
    for rel in manifests:
        value = toml_value(text(rel), "package", "rust-version")
        if value != "workspace" and (value is None or value.split(".") != release[: len(value.split("."))]):
            problems.append(f"{rel}: rust-version is {value or 'unset'}, want rust-version.workspace = true")

    rust_images = [s["image"] for s in dockerfile_stages(text("Dockerfile"))
                   if split_image(s["image"])[0].removeprefix("docker.io/").removeprefix("library/") == "rust"]
    if not rust_images:
        problems.append("Dockerfile: no stage builds FROM the rust image")
    for image in rust_images:
        version = split_image(image)[1].split("-", 1)[0]
        if version != channel:
            problems.append(f"Dockerfile: FROM {image} is Rust {version or '(untagged)'}, {RUST_TOOLCHAIN} pins {channel}")

    workflow_files = sorted({str(p.relative_to(ROOT)) for p in (ROOT / ".github" / "workflows").glob("*.yml")} | {f for f in files if f.startswith(".github/workflows/")})
    for rel in workflow_files:
        wf = yaml.safe_load(text(rel)) or {}
        for where, toolchain in toolchains_in_workflow(wf):
            if toolchain not in (channel, f"{channel}-x86_64-unknown-linux-gnu"):
                problems.append(f"{rel}: {where} names Rust {toolchain}, {RUST_TOOLCHAIN} pins {channel} (let rustup read the file)")
    test = yaml.safe_load(text(".github/workflows/test.yml")) or {}
    installed = False
    for step in ((test.get("jobs") or {}).get("test") or {}).get("steps") or []:
        script = step.get("run") or ""
        if re.search(r"^\s*make test\s*$", script, re.M):
            break
        if re.search(r"\brustup\s+toolchain\s+install\b", script) or step.get("uses", "").startswith(("dtolnay/rust-toolchain@", "actions-rust-lang/setup-rust-toolchain@")):
            installed = True
    if not installed:
        problems.append(f"test.yml: the test job installs no Rust toolchain before `make test` (`rustup toolchain install` reads {RUST_TOOLCHAIN})")
    return problems

"""Labels: Kubernetes' recommended labels (app.kubernetes.io/name, instance, version, component,
part-of, managed-by) on every workload and its pod template, the version being the image tag
the workload runs; selectors, immutable in a live cluster, select by app.kubernetes.io/name
alone, and no label reaches a StatefulSet's volumeClaimTemplates (immutable too)."""

from __future__ import annotations

import re

from .common import NAME_LABEL, Problems, label, name_of, objects, pod_spec, service_container, split_image, workloads

PREFIX = "app.kubernetes.io/"
RECOMMENDED = tuple(PREFIX + k for k in ("name", "instance", "version", "component", "part-of", "managed-by"))
PART_OF = "gittix"
MANAGED_BY = "kustomize"
# A label value: at most 63 characters, alphanumerics with - _ . inside.
LABEL_VALUE_RE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?")


def image_tag(doc: dict) -> str:
    """The tag of a workload's own image: the container named after it, else its first."""
    c = service_container(doc, name_of(doc)) or (pod_spec(doc).get("containers") or [{}])[0]
    return split_image(c.get("image", ""))[1]


def check_labels(docs: list[dict]) -> Problems:
    problems: Problems = []
    instances: dict[str, list[str]] = {}
    for doc in workloads(docs):
        where = label(doc)
        spec = doc.get("spec", {})
        meta = doc.get("metadata", {}).get("labels") or {}
        tmpl = (spec.get("template", {}).get("metadata") or {}).get("labels") or {}
        for part, labels in (("metadata", meta), ("pod template", tmpl)):
            missing = [k for k in RECOMMENDED if not str(labels.get(k) or "").strip()]
            if missing:
                problems.append(f"{where}: {part} lacks {', '.join(missing)}")
            for k in RECOMMENDED:
                if k in labels and not LABEL_VALUE_RE.fullmatch(str(labels[k])):
                    problems.append(f"{where}: {part} {k}={labels[k]!r} is not a valid label value")
        for k in RECOMMENDED:
            if k in meta and k in tmpl and meta[k] != tmpl[k]:
                problems.append(f"{where}: {k} is {meta[k]!r} on the workload, {tmpl[k]!r} on its pods")
        for k, want in ((NAME_LABEL, name_of(doc)), (PREFIX + "part-of", PART_OF), (PREFIX + "managed-by", MANAGED_BY)):
            for part, labels in (("metadata", meta), ("pod template", tmpl)):
                if k in labels and labels[k] != want:
                    problems.append(f"{where}: {part} {k}={labels[k]!r}, want {want!r}")
        tag = image_tag(doc)
        for part, labels in (("metadata", meta), ("pod template", tmpl)):
            got = labels.get(PREFIX + "version")
            if got is not None and str(got) != tag:
                problems.append(f"{where}: {part} {PREFIX}version={got!r}, but the image's tag is {tag!r}")
        instances.setdefault(str(tmpl.get(PREFIX + "instance")), []).append(name_of(doc))
        # Selectors select by name alone: they cannot change on a live object, and a label
        # that changes (version) would orphan the running pods.
        want_selector = {"matchLabels": {NAME_LABEL: name_of(doc)}}
        if spec.get("selector") != want_selector:
            problems.append(f"{where}: selector {spec.get('selector')}, want {want_selector} (selectors are immutable)")
        for vct in spec.get("volumeClaimTemplates") or []:
            extra = sorted(set(vct.get("metadata") or {}) - {"name"})
            if extra:
                problems.append(
                    f"{where}: volumeClaimTemplate {vct.get('metadata', {}).get('name')} has {extra}: "
                    "its templates are immutable in a live StatefulSet, keep labels off them"
                )
    if len(instances) > 1:
        problems.append(f"workloads disagree on {PREFIX}instance: {instances}")
    for svc in objects(docs, "Service"):
        selector = (svc.get("spec") or {}).get("selector") or {}
        if (svc.get("metadata", {}).get("labels") or {}).get(PREFIX + "part-of") == PART_OF and set(selector) - {NAME_LABEL}:
            problems.append(f"{label(svc)}: selector {selector} selects by more than {NAME_LABEL}")
    return problems

#!/usr/bin/env bash
# Points an overlay at built images: appends an `images:` list to its kustomization.yaml,
# which then applies to every resource of the overlay (the base's gittix/<service>:dev
# placeholders). Used by .github/workflows/deploy.yml on its throwaway checkout, and by the
# offline checks on a copy; by hand, run it on a copy too, or revert with git afterwards.
#
# usage: infra/k8s/set-images.sh OVERLAY_DIR SERVICE=IMAGE...
#   e.g. infra/k8s/set-images.sh infra/k8s/overlays/prod auth=registry.digitalocean.com/gittix/auth:3f2c1e0
set -euo pipefail

overlay=${1:?usage: set-images.sh OVERLAY_DIR SERVICE=IMAGE...}
shift
file="$overlay/kustomization.yaml"
[ -f "$file" ] || { echo "set-images: no $file" >&2; exit 1; }
[ "$#" -gt 0 ] || { echo "set-images: no SERVICE=IMAGE given" >&2; exit 1; }
if grep -q '^images:' "$file"; then
  echo "set-images: $file already has an images: list" >&2
  exit 1
fi

# Built whole before anything is written: a bad argument leaves the file as it was.
block=$(
  printf '\n# Set by infra/k8s/set-images.sh.\nimages:\n'
  for pair in "$@"; do
    service=${pair%%=*}
    image=${pair#*=}
    [[ "$service" =~ ^[a-z][a-z0-9-]*$ ]] || { echo "set-images: bad service in '$pair'" >&2; exit 1; }
    # name[:tag][@digest]: the tag is what follows the last ':' after the last '/'.
    name=${image%@*}
    digest=""
    if [ "$name" != "$image" ]; then digest=${image#*@}; fi
    tag=""
    if [[ "${name##*/}" == *:* ]]; then
      tag=${name##*:}
      name=${name%:*}
    fi
    [ -n "$tag" ] || [ -n "$digest" ] || { echo "set-images: '$image' has neither tag nor digest" >&2; exit 1; }
    printf '  - name: gittix/%s\n    newName: %s\n' "$service" "$name"
    if [ -n "$tag" ]; then printf '    newTag: "%s"\n' "$tag"; fi
    if [ -n "$digest" ]; then printf '    digest: %s\n' "$digest"; fi
  done
)
printf '%s\n' "$block" >>"$file"

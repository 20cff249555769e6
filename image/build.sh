#!/usr/bin/env bash
# `make image`: build the Sentinel image (Containerfile) with buildah, without a Docker daemon.
#
#   BASE=python:3.11-slim make image     # from a registry, where one is reachable
#   make image                           # here: a Debian bookworm base made with mmdebstrap
#
# Without BASE, the base is made once from Debian's packages (mmdebstrap, then `podman import`) and
# reused. Images live in this checkout's own container storage (.stack/image/storage), so stacks and
# checkouts on one machine never share tags; image/podman runs podman on that storage.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SENTINEL_STACK_DIR:=$PWD/.stack}"
IMAGE=${SENTINEL_IMAGE:-localhost/sentinel:0.1.0}
LOCAL_BASE=localhost/sentinel-base:bookworm
work="$SENTINEL_STACK_DIR/image"
storage=(--root "$work/storage" --runroot "$work/run" --storage-driver overlay)
step() { printf '%s image: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if ! command -v buildah >/dev/null || ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null; then
    step "installing buildah, podman, runc and mmdebstrap from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends buildah podman runc mmdebstrap uidmap >&2
fi
mkdir -p "$work"

if [ -z "${BASE:-}" ]; then
    BASE=$LOCAL_BASE
    if ! podman "${storage[@]}" image exists "$BASE"; then
        step "making the base $BASE: Debian bookworm's python3 with mmdebstrap (about a minute)"
        mmdebstrap --quiet --variant=essential \
            --include=python3,python3-venv,ca-certificates,libstdc++6,tzdata \
            --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            bookworm "$work/base.tar" http://deb.debian.org/debian
        step "importing the base into podman's storage"
        podman "${storage[@]}" import --quiet --change 'CMD ["/bin/sh"]' "$work/base.tar" "$BASE" >/dev/null
        rm -f "$work/base.tar"
    fi
fi

step "building $IMAGE from $BASE (buildah, chroot isolation; the Python packages come from PyPI)"
started=$(date +%s)
ca=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
buildah "${storage[@]}" bud --isolation chroot --layers --force-rm --secret "id=pip-ca,src=$ca" \
    --build-arg "BASE=$BASE" -f Containerfile -t "$IMAGE" . >&2
step "built $IMAGE in $(( $(date +%s) - started )) s; $(podman "${storage[@]}" image inspect --format '{{.Size}}' "$IMAGE") bytes"

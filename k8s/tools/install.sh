#!/usr/bin/env bash
# Installs the pinned kustomize into .stack/bin (git-ignored) with `go install` from the Go module
# proxy; does nothing when that version is already there. tests/k8s runs this before building.
set -euo pipefail

KUSTOMIZE_VERSION="v5.7.1"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="$ROOT/.stack/bin"
KUSTOMIZE="$BIN/kustomize"

if [[ -x "$KUSTOMIZE" ]] && [[ "$("$KUSTOMIZE" version 2>/dev/null)" == "$KUSTOMIZE_VERSION" ]]; then
    echo "$KUSTOMIZE"
    exit 0
fi
if ! command -v go >/dev/null 2>&1; then
    echo "kustomize $KUSTOMIZE_VERSION is missing and so is Go, which installs it." >&2
    echo "Install Go (1.22 or later), then run: bash k8s/tools/install.sh" >&2
    exit 1
fi
mkdir -p "$BIN"
GOBIN="$BIN" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
installed="$("$KUSTOMIZE" version)"
if [[ "$installed" != "$KUSTOMIZE_VERSION" ]]; then
    echo "installed kustomize reports $installed, expected $KUSTOMIZE_VERSION" >&2
    exit 1
fi
echo "$KUSTOMIZE"

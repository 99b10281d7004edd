#!/usr/bin/env bash
# A local Debian base image with Python for the container test: no registry is needed (or reachable).
# Idempotent: does nothing when the tools and the image are already there. Usage: .ci/container-base.sh [IMAGE]
set -euo pipefail
IMAGE="${1:-localhost/psf-base:trixie}"
# the tools themselves, from Debian's packages, when missing (needs root)
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || ! command -v runc >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends podman buildah debootstrap runc
fi
if podman image exists "$IMAGE"; then
    echo "container base $IMAGE: present"
    exit 0
fi
ROOTFS="$(mktemp -d /var/tmp/psf-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT
# minbase + Python (trixie has 3.13; serving and the client run on it, training needs 3.12)
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates trixie "$ROOTFS" \
    http://deb.debian.org/debian >/dev/null
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
tar -C "$ROOTFS" -c . | podman import - "$IMAGE" >/dev/null
echo "container base $IMAGE: built"

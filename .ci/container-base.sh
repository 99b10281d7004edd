#!/usr/bin/env bash
# A local Debian base image with Python for the container test: no registry is needed (or reachable).
# Idempotent: does nothing when the image is already there. Usage: .ci/container-base.sh [IMAGE]
set -euo pipefail
IMAGE="${1:-localhost/psf-base:trixie}"
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

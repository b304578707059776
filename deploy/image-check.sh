#!/usr/bin/env bash
# make image-check: the Docker image's runtime stage, checked without a Docker engine.
# A `debootstrap --variant=minbase bookworm` root with exactly the packages the Dockerfile's
# runtime stage installs, the same user, the statically linked (Swift runtime) binary copied
# in; then, in a chroot as that unprivileged user: it starts, answers GET /ready, serves one
# echo call, and drains on SIGTERM (exit 0 after the call ends).
# Needs root (debootstrap, chroot). The root is cached in .build-image/ and rebuilt when the
# package list changes. MIRROR overrides the Debian mirror.
set -euo pipefail
cd "$(dirname "$0")/.."
MIRROR=${MIRROR:-http://deb.debian.org/debian}
WORK=.build-image
ROOT=$WORK/rootfs
SWIFT=${SWIFT:-swift}

# The runtime stage: everything after the last FROM. Its apt-get install line and useradd.
runtime=$(awk '/^FROM /{stage=""} {stage=stage $0 "\n"} END{printf "%s", stage}' Dockerfile)
packages=$(printf '%s' "$runtime" | grep -o 'apt-get install -y -qq [a-z0-9. +-]*' | sed 's/apt-get install -y -qq //' | tr -s ' ' | sed 's/ *$//')
user=$(printf '%s' "$runtime" | grep -o 'useradd --system --no-create-home [a-z_-]*' | awk '{print $NF}')
[ -n "$packages" ] && [ -n "$user" ] || { echo "image-check: cannot read the runtime stage of the Dockerfile" >&2; exit 1; }
echo "image-check: runtime packages: $packages; user: $user"

stamp="$packages|$user|$MIRROR"
if [ ! -f "$WORK/stamp" ] || [ "$(cat "$WORK/stamp")" != "$stamp" ]; then
  echo "image-check: debootstrap --variant=minbase bookworm (a few minutes the first time)"
  rm -rf "$WORK"
  mkdir -p "$WORK"
  nice -n 10 debootstrap --variant=minbase --include="$(echo "$packages" | tr ' ' ',')" bookworm "$ROOT" "$MIRROR" \
    > "$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
  chroot "$ROOT" useradd --system --no-create-home "$user"
  echo "$stamp" > "$WORK/stamp"
fi
echo "image-check: static build (--static-swift-stdlib)"
nice -n 10 $SWIFT build -c release --product avr-core --static-swift-stdlib --scratch-path .build-static 2>&1 | tail -1
binary=.build-static/release/avr-core

install -D -m 755 "$binary" "$ROOT/usr/local/bin/avr-core"
echo "image-check: shared libraries the binary needs inside the root:"
chroot "$ROOT" /usr/bin/ldd /usr/local/bin/avr-core 2>/dev/null | sed 's/^/    /' || true
python3 deploy/image_check.py "$ROOT" "$user"

#!/usr/bin/env bash
# make fresh-check: the README's two commands, `make run` and `make test`, on a stock Debian 12
# that has only the Swift toolchain added. A `debootstrap bookworm` root (the default variant:
# Debian's required and important packages, what a minimal installation has; cached in
# .build-fresh/base), copied afresh for every run; in a chroot of that copy, as root:
#   1. Swift's own prerequisites for Debian 12 (SWIFT_PREREQS: what the toolchain's
#      installation instructions list), and the toolchain (SWIFT_DIR) bind-mounted read-only;
#   2. a clone of this repository's committed HEAD (uncommitted changes are not in it);
#   3. `make run` with free ports: it must install what it needs, build, start and answer
#      GET /ready with 200; then SIGTERM, and make must exit 0;
#   4. `make test` (FRESH_TEST_ARGS are passed to it, e.g. INTEGRATION_TESTS=... to run part of
#      the integration suite; FRESH_TEST=0 skips it).
# The chroot's python3 is Debian's /usr/bin/python3: nothing may be pip-installed into it.
# Every mount (/proc, /sys, /dev, /dev/pts, the toolchain, local git mirrors) is undone on exit.
# Needs root. Not run in CI (it downloads Debian packages and builds everything from nothing).
# Output: the terminal, and .build-fresh/fresh-check.log.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SWIFT_DIR=${SWIFT_DIR:-/opt/swift}
FRESH_TEST=${FRESH_TEST:-1}
FRESH_TEST_ARGS=${FRESH_TEST_ARGS:-}
SWIFT_PREREQS=${SWIFT_PREREQS:-"binutils-gold gcc git libcurl4-openssl-dev libedit-dev libicu-dev libncurses-dev libpython3-dev libsqlite3-dev libxml2-dev pkg-config tzdata uuid-dev make"}
WORK=$REPO/.build-fresh
BASE=$WORK/base
ROOT=$WORK/root
LOG=$WORK/fresh-check.log

[ "$(id -u)" = 0 ] || { echo "fresh-check: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
[ -x "$SWIFT_DIR/usr/bin/swift" ] || { echo "fresh-check: no Swift toolchain at $SWIFT_DIR (set SWIFT_DIR)" >&2; exit 1; }
mkdir -p "$WORK"
exec > >(tee "$LOG") 2>&1
say() { echo "fresh-check: $(date -u +%H:%M:%S) $*"; }

if [ ! -f "$BASE/.fresh-check-base" ]; then
  say "debootstrap bookworm (default variant) from $MIRROR"
  rm -rf --one-file-system "$BASE"
  nice -n 10 debootstrap bookworm "$BASE" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; exit 1; }
  touch "$BASE/.fresh-check-base"
fi

mounted=()
cleanup() {
  local status=$?
  if [ -n "${run_pid:-}" ] && kill -0 "$run_pid" 2>/dev/null; then kill "$run_pid" 2>/dev/null || true; fi
  for (( i=${#mounted[@]}-1; i>=0; i-- )); do
    umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null || echo "fresh-check: could not unmount ${mounted[i]}"
  done
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mnt() { # mnt <target inside ROOT> <mount arguments...>
  mkdir -p "$ROOT$1"
  mount "${@:2}" "$ROOT$1"
  mounted+=("$ROOT$1")
}

# A run killed before its trap ran may have left mounts under the root: never delete through
# them (/dev is bind-mounted read-write).
if grep -q " $ROOT/" /proc/mounts; then
  echo "fresh-check: still mounted under $ROOT (an earlier run was killed); unmount first:" >&2
  grep " $ROOT/" /proc/mounts | awk '{print "  umount " $2}' >&2
  exit 1
fi
say "a fresh copy of the base root"
rm -rf --one-file-system "$ROOT"
cp -a "$BASE" "$ROOT"
mnt /proc -t proc proc
mnt /sys -t sysfs sysfs
mnt /dev --bind /dev
mnt /dev/pts --bind /dev/pts
mnt "$SWIFT_DIR" --bind -o ro "$SWIFT_DIR"
mount -o remount,bind,ro "$ROOT$SWIFT_DIR"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
[ -s "$ROOT/etc/hosts" ] || printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"
# git URL rewrites of this machine that point at a local directory (a mirror of the package
# hosts) are carried into the root, with the directory, so the packages resolve as they do here.
git config --system --get-regexp '^url\..*\.insteadof$' 2>/dev/null | while read -r key value; do
  dir=${key#url.}; dir=${dir%.insteadof}
  if [ -d "$dir" ]; then echo "$dir $value"; fi
done > "$WORK/rewrites" || true
while read -r dir value; do
  [ -d "$ROOT$dir" ] || mnt "$dir" --bind -o ro "$dir"
done < <(awk '{print $1}' "$WORK/rewrites" | sort -u | sed 's/$/ -/')

in_root() { chroot "$ROOT" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
  PATH="$SWIFT_DIR/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" /bin/bash -c "$1"; }

say "Swift's prerequisites for Debian 12: $SWIFT_PREREQS"
in_root "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $SWIFT_PREREQS >/dev/null"
# The root uses this machine's network, so it trusts the certificate authorities this machine
# added locally (/usr/local/share/ca-certificates: e.g. a proxy's), as it uses its resolv.conf.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  in_root "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ca-certificates >/dev/null && update-ca-certificates >/dev/null"
fi
# the rewrites need git, installed just now
while read -r dir value; do
  in_root "git config --system --add url.$dir.insteadOf $value"
done < <(sort -u "$WORK/rewrites")
in_root "swift --version 2>&1 | head -1; python3 --version 2>&1 || echo 'no python3 yet'; command -v python3 || true"

say "clone of $(git rev-parse --short HEAD) into /root/avr-core"
git clone -q --no-hardlinks "$REPO" "$ROOT/root/avr-core"
git -C "$ROOT/root/avr-core" checkout -q --detach "$(git rev-parse HEAD)"

ports=$(python3 -c 'import socket
ps=[]
for _ in range(2):
    s=socket.socket(); s.bind(("127.0.0.1",0)); ps.append(s)
print(*[s.getsockname()[1] for s in ps])')
read -r aport hport <<< "$ports"
say "make run (PORT=$aport HTTP_PORT=$hport)"
in_root "cd /root/avr-core && nice -n 5 make run PORT=$aport HTTP_PORT=$hport" > "$WORK/make-run.log" 2>&1 &
run_pid=$!
ready=""
for _ in $(seq 1 7200); do   # the build comes first: up to two hours on a busy machine
  if ! kill -0 "$run_pid" 2>/dev/null; then break; fi
  if ready=$(curl -s -m 2 "http://127.0.0.1:$hport/ready" 2>/dev/null) && [ -n "$ready" ]; then break; fi
  ready=""
  sleep 1
done
sed 's/^/    | /' "$WORK/make-run.log" | grep -v '^    | \[[0-9]*/[0-9]*\] ' || true
[ -n "$ready" ] || { say "FAIL: make run did not answer GET /ready"; exit 1; }
say "GET /ready: $ready"
# The server: the process whose executable is the root's release binary (make's child).
server=""
binary=$(readlink -f "$ROOT/root/avr-core/.build/release/avr-core")
for p in $(ps -eo pid=); do
  if [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$binary" ]; then server=$p; break; fi
done
[ -n "$server" ] || { say "FAIL: cannot find the server process"; exit 1; }
say "SIGTERM to the server (pid $server)"
kill -TERM "$server"
run_status=0
wait "$run_pid" || run_status=$?
run_pid=""
tail -3 "$WORK/make-run.log" | sed 's/^/    | /'
[ "$run_status" = 0 ] || { say "FAIL: make run exited $run_status after SIGTERM"; exit 1; }
say "make run: built, started, /ready answered, exited 0 on SIGTERM"

if [ "$FRESH_TEST" != 0 ]; then
  say "make test $FRESH_TEST_ARGS"
  set +e
  in_root "cd /root/avr-core && nice -n 5 make test $FRESH_TEST_ARGS" 2>&1 \
    | grep --line-buffered -v '^\[[0-9]*/[0-9]*\] ' | sed -u 's/^/    | /'
  test_status=${PIPESTATUS[0]}
  set -e
  [ "$test_status" = 0 ] || { say "FAIL: make test exited $test_status"; exit 1; }
  say "make test $FRESH_TEST_ARGS: exit 0"
fi
in_root 'n=$(find /usr/local/lib/python3* -mindepth 2 -maxdepth 2 2>/dev/null | wc -l); echo "fresh-check: modules pip-installed into the system Python (/usr/local/lib/python3*): $n"; command -v python3; ls /root/avr-core/.venv/bin/python3'
say "done"

#!/usr/bin/env bash
# The fresh-machine proof: run the README's two commands, copied from the README verbatim, on a fresh Debian 12
# (bookworm) root filesystem that has python3 and nothing else (no pip, no venv module, no engines), as a new user's
# cloud image would.
#
#   sudo bash scripts/ci_fresh_debian.sh                  # build (or reuse) the root filesystem, then run both
#   bash scripts/ci_fresh_debian.sh --print-commands      # only print the two commands it would run
#   sudo bash scripts/ci_fresh_debian.sh --build-only     # only build (or find) the cached root filesystem
#
# 1. The root filesystem: `debootstrap --variant=minbase --include=python3 bookworm` (debootstrap is installed from
#    apt when absent), packed once into $GAMEBRIDGE_CI_CACHE/bookworm-python3.tar.zst (default
#    /var/cache/gamebridge-ci, outside the checkout) and reused while it is there; delete the file to rebuild.
# 2. A clean clone of this checkout's HEAD (committed work only) goes to /build/repo in a throw-away copy of that
#    filesystem, with ../shared beside it when the checkout has one (as CI lays it out).
# 3. /proc, /sys, /dev, /dev/pts and /dev/shm are mounted; `command -v gamebridge` must find nothing; then the
#    README's first command (setup + demo) and second command (setup again + the whole test suite) run inside, as
#    root, with CI=true and no stdin. Everything is unmounted and removed on exit, whatever happened.
#
# Needs root (debootstrap, chroot, mount) and the network to reach Debian's mirror and the Python package index.
# Environment: GAMEBRIDGE_CI_CACHE (cache folder), GAMEBRIDGE_CI_MIRROR (default http://deb.debian.org/debian),
# GAMEBRIDGE_CI_KEEP=1 (keep the chroot's folder for inspection; it is still unmounted).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
CACHE="${GAMEBRIDGE_CI_CACHE:-/var/cache/gamebridge-ci}"
TARBALL="$CACHE/bookworm-python3.tar.zst"
MIRROR="${GAMEBRIDGE_CI_MIRROR:-http://deb.debian.org/debian}"

# The README's two commands: the lines of its fenced block that start with `bash scripts/` and carry a comment
# (tests/test_readme.py reads them with the same rule).
readme_commands() {
    sed -n 's/^\(bash scripts\/[^ ]* && .*[^ ]\) *#.*$/\1/p' "$REPO/README.md" | head -2
}

if [ "${1:-}" = "--print-commands" ]; then
    readme_commands
    exit 0
fi

mapfile -t COMMANDS < <(readme_commands)
if [ "${#COMMANDS[@]}" != 2 ]; then
    echo "ci_fresh_debian: expected the README's two commands (lines 'bash scripts/... && ...  # ...'), found ${#COMMANDS[@]}" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "ci_fresh_debian: needs root (debootstrap, chroot, mount): run it with sudo" >&2
    exit 1
fi

stamp() { date +%s; }
log() { echo "== ci_fresh_debian: $*"; }
T_START=$(stamp)

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ---- 1. the cached root filesystem --------------------------------------------------------------------------
T_DEBOOTSTRAP=0
if [ ! -s "$TARBALL" ]; then
    missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v zstd >/dev/null || missing+=(zstd)
    [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
    if [ "${#missing[@]}" != 0 ]; then
        log "installing ${missing[*]} from apt"
        apt_install "${missing[@]}"
    fi
    mkdir -p "$CACHE"
    BUILD="$(mktemp -d "$CACHE/build.XXXXXX")"
    chmod 755 "$BUILD"  # it becomes the chroot's /, which apt's _apt user must traverse
    log "debootstrap --variant=minbase --include=python3 bookworm (a few minutes; cached afterwards in $TARBALL)"
    t0=$(stamp)
    if ! debootstrap --variant=minbase --include=python3 bookworm "$BUILD" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1; then
        tail -20 "$CACHE/debootstrap.log" >&2
        rm -rf "$BUILD"
        echo "ci_fresh_debian: debootstrap failed (log: $CACHE/debootstrap.log); the fresh-machine proof cannot run" >&2
        exit 1
    fi
    # As a cloud image: the same suites it would list, and apt's caches empty.
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
        "$MIRROR" "$MIRROR" >"$BUILD/etc/apt/sources.list"
    rm -rf "$BUILD"/var/cache/apt/archives/*.deb "$BUILD"/var/lib/apt/lists/*
    tar -C "$BUILD" --numeric-owner -I 'zstd -q -T0' -cf "$TARBALL.part" .
    mv "$TARBALL.part" "$TARBALL"
    rm -rf "$BUILD"
    T_DEBOOTSTRAP=$(( $(stamp) - t0 ))
    log "root filesystem built in ${T_DEBOOTSTRAP}s: $TARBALL ($(du -h "$TARBALL" | cut -f1))"
else
    log "reusing $TARBALL"
fi
command -v zstd >/dev/null || apt_install zstd
if [ "${1:-}" = "--build-only" ]; then
    exit 0
fi

# ---- 2. a throw-away copy with a clean clone ----------------------------------------------------------------
ROOT="$(mktemp -d /var/tmp/gamebridge-ci.XXXXXX)"
MOUNTED=()
cleanup() {
    local status=$?
    local i
    for (( i=${#MOUNTED[@]}-1; i>=0; i-- )); do
        umount "${MOUNTED[$i]}" 2>/dev/null || umount -l "${MOUNTED[$i]}" 2>/dev/null || true
    done
    if [ "${GAMEBRIDGE_CI_KEEP:-}" = 1 ]; then
        log "kept $ROOT"
    elif ! findmnt -rn -o TARGET | grep -q "^$ROOT"; then
        rm -rf "$ROOT"
    else
        echo "ci_fresh_debian: something is still mounted under $ROOT; left in place" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tar -C "$ROOT" --numeric-owner -I zstd -xf "$TARBALL"
chmod 755 "$ROOT"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The network's trust as the host has it: where TLS to the package index is intercepted by a proxy whose CA only
# the host's bundle holds, pip inside needs that bundle (a cloud image's own CA bundle would not have it either).
# Nothing else of the host's pip configuration goes in.
CHROOT_ENV=()
HOST_CA="${PIP_CERT:-${SSL_CERT_FILE:-${REQUESTS_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}}}"
if [ -s "$HOST_CA" ]; then
    mkdir -p "$ROOT/etc/gamebridge-ci"
    cp -L "$HOST_CA" "$ROOT/etc/gamebridge-ci/host-ca.crt"
    CHROOT_ENV+=(PIP_CERT=/etc/gamebridge-ci/host-ca.crt)
fi
mkdir -p "$ROOT/build"
git clone -q --no-hardlinks "$REPO" "$ROOT/build/repo"
if [ -d "$REPO/../shared" ]; then
    cp -a "$REPO/../shared" "$ROOT/build/shared"
fi
log "clone of $(git -C "$REPO" rev-parse --short HEAD) in $ROOT/build/repo"

mnt() {  # mnt TARGET MOUNT-ARGS...
    local target="$ROOT$1"; shift
    mkdir -p "$target"
    mount "$@" "$target"
    MOUNTED+=("$target")
}
mnt /proc -t proc proc
mnt /sys -t sysfs sysfs
mnt /dev --bind /dev
mnt /dev/pts -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts
mnt /dev/shm -t tmpfs -o mode=1777 shm

in_chroot() {  # a login-like environment: root, Debian's default PATH, CI=true, no stdin
    chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI=true \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${CHROOT_ENV[@]}" \
        /bin/bash -c "cd /build/repo && $1" </dev/null
}

# ---- 3. the proof -------------------------------------------------------------------------------------------
log "fresh machine: $(in_chroot '. /etc/os-release; echo "$PRETTY_NAME, $(python3 --version)"')"
if in_chroot 'command -v gamebridge'; then
    echo "ci_fresh_debian: gamebridge is already on the fresh machine's PATH" >&2
    exit 1
fi
if in_chroot 'python3 -m pip --version' >/dev/null 2>&1; then
    echo "ci_fresh_debian: the fresh machine already has pip; it should have python3 only" >&2
    exit 1
fi
log "before setup: command -v gamebridge finds nothing, python3 has no pip"

t0=$(stamp)
log "README command 1: ${COMMANDS[0]}"
in_chroot "${COMMANDS[0]}"
T_FIRST=$(( $(stamp) - t0 ))

t0=$(stamp)
log "README command 2: ${COMMANDS[1]}"
in_chroot "${COMMANDS[1]}"
T_SECOND=$(( $(stamp) - t0 ))

log "passed: debootstrap ${T_DEBOOTSTRAP}s (0 = cached), command 1 (setup + demo) ${T_FIRST}s," \
    "command 2 (setup again + tests) ${T_SECOND}s, total $(( $(stamp) - T_START ))s"

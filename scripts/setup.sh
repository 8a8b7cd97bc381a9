#!/usr/bin/env bash
# Set up this checkout on a Debian 12 / Ubuntu 24.04 machine that may have nothing but python3:
#   1. from the distribution (apt-get, as root or through sudo): the engines GNU Go, Stockfish and Leela Zero, and the
#      venv module (python3-venv) when python3 lacks it;
#   2. a virtual environment in the checkout, .venv/ (git-ignored), with the package installed editable and its test
#      tools (pip install -e ".[test]", from the Python package index).
# Nothing goes into the system Python (PEP 668). Afterwards the command is .venv/bin/gamebridge (activate the
# environment, `. .venv/bin/activate`, to call it plain `gamebridge`), and scripts/test.sh uses .venv/bin/python.
# Idempotent and quick the second time: apt is used only for what is missing, pip only when pyproject.toml changed
# since the last install (or the environment is broken). Environment: PYTHON (default python3) the interpreter
# the environment is made from.
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
PYTHON="${PYTHON:-python3}"
VENV=.venv
# The engines, as /usr/games/BINARY:PACKAGE (Debian and Ubuntu name them alike).
ENGINES=(gnugo:gnugo stockfish:stockfish leelaz:leela-zero)

say() { echo "setup: $*"; }
die() { echo "setup: $*" >&2; exit 1; }

if ! command -v "$PYTHON" >/dev/null; then
    die "$PYTHON not found: install Python 3.11 or later (apt-get install python3), or set PYTHON=/path/to/python3"
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    die "$("$PYTHON" --version 2>&1) is too old: Python 3.11 or later is needed (set PYTHON=/path/to/python3.11)"
fi

# ---- 1. from the distribution -------------------------------------------------------------------------------
packages=()
for engine in "${ENGINES[@]}"; do
    [ -x "/usr/games/${engine%%:*}" ] || packages+=("${engine#*:}")
done
# `python3 -m venv` needs ensurepip, which Debian and Ubuntu ship apart, in python3.X-venv.
if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    packages+=("python$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv")
fi
if [ "${#packages[@]}" != 0 ]; then
    SUDO=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || die "needs root to install ${packages[*]}: run it as root, or install sudo"
        SUDO=(sudo)
    fi
    command -v apt-get >/dev/null || die "no apt-get: install ${packages[*]} with your system's package manager"
    say "installing ${packages[*]} with apt-get"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" \
        >/dev/null
fi

# ---- 2. the virtual environment -----------------------------------------------------------------------------
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    say "$VENV is broken (its Python is gone?): making it again"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
# Reinstall only when what pip installs from changed: the dependencies and entry points in pyproject.toml.
STAMP="$VENV/.gamebridge-setup"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ] || [ ! -x "$VENV/bin/gamebridge" ] \
        || ! "$VENV/bin/python" -c 'import bridge, pytest' 2>/dev/null; then
    say "installing the package and its test tools into $VENV (pip install -e \".[test]\")"
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
    "$VENV/bin/python" -m pip install -q -e ".[test]"
    echo "$want" >"$STAMP"
fi

versions="$(/usr/games/gnugo --version | head -1)"
say "done in $(( $(date +%s) - T0 ))s: $versions; $("$VENV/bin/gamebridge" --version 2>/dev/null || echo gamebridge) in $VENV"

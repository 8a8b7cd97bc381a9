#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for bridge: engines from Debian, then the package and its test tools.
# Idempotent; run as root or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if [ ! -x /usr/games/gnugo ] || [ ! -x /usr/games/stockfish ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gnugo stockfish >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ".[test]"
echo "setup done: $(/usr/games/gnugo --version | head -1), $(python3 -m pip show bridge-games | grep ^Version)"

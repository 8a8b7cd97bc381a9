#!/usr/bin/env bash
# Run the real gtp2ogs v9 (OGS's own bot bridge, Node.js) against our OGS sandbox with GNU Go, by hand.
#
#   scripts/gtp2ogs_against_sandbox.sh install   # only install/build gtp2ogs into $GTP2OGS_HOME
#   scripts/gtp2ogs_against_sandbox.sh run       # install if needed, then play one 9x9 game (default)
#
# Environment:
#   GTP2OGS_HOME  where gtp2ogs is installed/built (default /tmp/gtp2ogs-v9). Never inside the repository.
#   GNUGO         GNU Go binary (default /usr/games/gnugo)
#   PYTHON        python with this project installed (default python3)
#
# Installing: `npm install gtp2ogs@^9` into $GTP2OGS_HOME. Where the registry does not serve it, install gtp2ogs
# yourself (outside this repository) and point $GTP2OGS_HOME/ENTRY or GTP2OGS_ENTRY at its main .js file; this
# project ships no recipe for building it.
#
# Running: the Node `--require` shim $GTP2OGS_HOME/hostfix.js works around a gtp2ogs v9 bug: its REST helper
# passes "127.0.0.1:PORT" as the host name, which cannot resolve (docs/ogs-wire.md, "REST calls"). Without
# it, accepting a challenge fails against any server on a non-default port.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
GTP2OGS_HOME="${GTP2OGS_HOME:-/tmp/gtp2ogs-v9}"
GNUGO="${GNUGO:-/usr/games/gnugo}"
PYTHON="${PYTHON:-python3}"
MODE="${1:-run}"
SANDBOX_PID=""
G2O_PID=""
WORKDIR=""

die() { echo "gtp2ogs_against_sandbox: $*" >&2; exit 1; }

case "$GTP2OGS_HOME" in
  "$REPO"|"$REPO"/*) die "GTP2OGS_HOME must be outside the repository ($REPO)";;
esac

write_hostfix() {
  cat > "$GTP2OGS_HOME/hostfix.js" <<'EOF'
// Preloaded with `node --require`: split "host:port" that gtp2ogs v9's util.ts passes as the host name.
"use strict";
for (const mod of [require("http"), require("https")]) {
  const original = mod.request;
  mod.request = function (options, ...rest) {
    if (options && typeof options === "object" && typeof options.host === "string") {
      const m = /^([^:\[\]]+):(\d+)$/.exec(options.host);
      if (m) {
        options = Object.assign({}, options, { host: m[1], port: options.port || m[2] });
      }
    }
    return original.call(this, options, ...rest);
  };
}
EOF
}

install_gtp2ogs() {
  command -v node >/dev/null || die "node is not installed (apt-get install nodejs npm)"
  command -v npm >/dev/null || die "npm is not installed (apt-get install npm)"
  mkdir -p "$GTP2OGS_HOME"
  write_hostfix
  if [ -n "${GTP2OGS_ENTRY:-}" ]; then echo "$GTP2OGS_ENTRY" > "$GTP2OGS_HOME/ENTRY"; fi
  if [ -s "$GTP2OGS_HOME/ENTRY" ] && [ -f "$(cat "$GTP2OGS_HOME/ENTRY")" ]; then
    echo "gtp2ogs already installed: $(cat "$GTP2OGS_HOME/ENTRY")"
    return
  fi
  cd "$GTP2OGS_HOME"
  [ -f package.json ] || echo '{"name": "gtp2ogs-sandbox-run", "version": "0.0.0", "private": true}' > package.json
  if npm install --no-audit --no-fund 'gtp2ogs@^9' >npm-gtp2ogs.log 2>&1; then
    echo "$GTP2OGS_HOME/node_modules/gtp2ogs/dist/gtp2ogs.js" > ENTRY
    echo "installed gtp2ogs from npm: $(node -p 'require("./node_modules/gtp2ogs/package.json").version')"
    return
  fi
  die "npm has no gtp2ogs package here (see $GTP2OGS_HOME/npm-gtp2ogs.log). Install gtp2ogs v9 yourself
(outside this repository) and write the path of its main .js file into $GTP2OGS_HOME/ENTRY, or set GTP2OGS_ENTRY."
}

cleanup() {
  if [ -n "$G2O_PID" ]; then kill "$G2O_PID" 2>/dev/null || true; fi
  if [ -n "$SANDBOX_PID" ]; then kill "$SANDBOX_PID" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  if [ -n "$WORKDIR" ]; then echo "logs kept in $WORKDIR"; fi
}

run_game() {
  local entry workdir
  entry="$(cat "$GTP2OGS_HOME/ENTRY")"
  workdir="$(mktemp -d /tmp/gtp2ogs-run.XXXXXX)"
  WORKDIR="$workdir"
  trap cleanup EXIT
  echo "starting the sandbox..."
  (cd "$REPO" && exec "$PYTHON" -u - "$workdir/url" <<'EOF'
import signal, sys, threading
from bridge.adapters.ogs.sandbox import SandboxServer

server = SandboxServer(port=0).start()
server.add_bot("gtp2ogs-bot", "sandbox-test-key")
with open(sys.argv[1], "w") as f:
    f.write(server.url)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
try:
    stop.wait()
finally:
    server.stop()
EOF
  ) >"$workdir/sandbox.log" 2>&1 &
  SANDBOX_PID=$!
  for _ in $(seq 100); do [ -s "$workdir/url" ] && break; sleep 0.1; done
  [ -s "$workdir/url" ] || die "sandbox did not start, see $workdir/sandbox.log"
  local url; url="$(cat "$workdir/url")"; url="${url%/}"
  echo "sandbox at $url"
  cat > "$workdir/config.json5" <<EOF
{
  apikey: "sandbox-test-key",
  server: "$url",
  bot: { command: ["$GNUGO", "--mode", "gtp", "--level", "1"], manager: "persistent", quit_grace_period: 1000 },
  min_move_time: 0,
  status_update_frequency: 0,
  allowed_board_sizes: [9, 13, 19],
  allowed_live_settings: { simple: { per_move_time_range: [1, 300] }, concurrent_games: 3 },
}
EOF
  node --require "$GTP2OGS_HOME/hostfix.js" "$entry" -c "$workdir/config.json5" >"$workdir/gtp2ogs.log" 2>&1 &
  G2O_PID=$!
  for _ in $(seq 200); do
    grep -q "Bot is user id" "$workdir/gtp2ogs.log" 2>/dev/null && break
    kill -0 "$G2O_PID" 2>/dev/null || die "gtp2ogs exited, see $workdir/gtp2ogs.log"
    sleep 0.1
  done
  grep -q "Bot is user id" "$workdir/gtp2ogs.log" || die "gtp2ogs did not authenticate, see $workdir/gtp2ogs.log"
  echo "creating a challenge..."
  local reply game_id
  reply="$(curl -sf -X POST -H 'Content-Type: application/json' \
    -d '{"target": "gtp2ogs-bot", "challenger": {"house": "random"}, "width": 9, "height": 9,
         "time_control": {"system": "simple", "speed": "live", "per_move": 30}}' \
    "$url/sandbox/challenges")" || die "challenge creation failed, see $workdir/sandbox.log"
  echo "challenge: $reply"
  game_id="$("$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(d.get("game_id") or d.get("id") or "")' <<<"$reply")"
  for _ in $(seq 600); do
    local state
    state="$(curl -sf "$url/sandbox/games/$game_id" || true)"
    if grep -q '"phase": *"finished"' <<<"$state"; then
      echo "game $game_id finished: $state" | cut -c1-400
      return 0
    fi
    sleep 0.5
  done
  die "game $game_id did not finish in 300 s; see $workdir/gtp2ogs.log and $workdir/sandbox.log"
}

case "$MODE" in
  install) install_gtp2ogs;;
  run) install_gtp2ogs; run_game;;
  *) die "usage: $0 [install|run]";;
esac

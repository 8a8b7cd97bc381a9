"""The real gtp2ogs v9 (OGS's own bot bridge, Node.js) against our OGS sandbox, with real GNU Go.

This proves that the sandbox speaks the protocol the way online-go.com does for an independent client:
authentication by API key, challenge notification -> REST accept/reject, ``active_game`` push,
``game/connect`` -> gamedata, move echo, clock, and the end of the game.

gtp2ogs is not vendored. ``scripts/gtp2ogs_against_sandbox.sh install`` installs it into ``/tmp/gtp2ogs-v9``
(from npm, or built from source checkouts); the test finds it through ``$GTP2OGS_ENTRY`` (the JS entry file) or
``$GTP2OGS_HOME/ENTRY`` (default home ``/tmp/gtp2ogs-v9``) and skips, saying so, when node or gtp2ogs is missing.

gtp2ogs v9's REST helper cannot reach a server on a non-default port (it resolves "127.0.0.1:PORT" as a host
name; see docs/ogs-wire.md). The script's ``hostfix.js`` is preloaded with ``node --require`` to split the
port off; it changes nothing else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.e2e

GNUGO = "/usr/games/gnugo"
BOT_NAME = "gtp2ogs-bot"
BOT_KEY = "g2o-secret-apikey-5f3c"
GAME_TIMEOUT = 150.0


def _find_gtp2ogs() -> tuple[str, Path, Path]:
    """(node binary, gtp2ogs entry .js, hostfix.js) or pytest.skip with the reason."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs npm)")
    home = Path(os.environ.get("GTP2OGS_HOME", "/tmp/gtp2ogs-v9"))
    entry_text = os.environ.get("GTP2OGS_ENTRY", "")
    if not entry_text and (home / "ENTRY").is_file():
        entry_text = (home / "ENTRY").read_text().strip()
    if not entry_text or not Path(entry_text).is_file():
        pytest.skip(
            "gtp2ogs v9 is not installed: run scripts/gtp2ogs_against_sandbox.sh install "
            "(or set GTP2OGS_ENTRY to its main .js file)"
        )
    hostfix = home / "hostfix.js"
    if not hostfix.is_file():
        pytest.skip(f"{hostfix} is missing: run scripts/gtp2ogs_against_sandbox.sh install")
    if not os.access(GNUGO, os.X_OK):
        pytest.skip(f"{GNUGO} is not installed (apt-get install gnugo)")
    return node, Path(entry_text), hostfix


class Gtp2ogs:
    """One gtp2ogs process in its own process group, its output collected in a log file."""

    def __init__(self, node: str, entry: Path, hostfix: Path, workdir: Path, server_url: str, **extra: Any) -> None:
        self.log_path = workdir / "gtp2ogs.log"
        ranges = {
            "simple": {"per_move_time_range": [1, 604800]},
            "byoyomi": {"main_time_range": [0, 604800], "period_time_range": [1, 604800], "periods_range": [1, 30]},
            "fischer": {
                "initial_time_range": [1, 604800],
                "max_time_range": [1, 604800],
                "time_increment_range": [0, 604800],
            },
        }
        config: dict[str, Any] = {
            "apikey": BOT_KEY,
            "server": server_url.rstrip("/"),
            "bot": {
                "command": [GNUGO, "--mode", "gtp", "--level", "1"],
                "manager": "persistent",
                "quit_grace_period": 500,
                "release_delay": 10,
            },
            "min_move_time": 0,
            "status_update_frequency": 0,
            "max_games_per_player": 5,
            "allowed_board_sizes": [9, 13, 19],
            "allowed_blitz_settings": {**ranges, "concurrent_games": 3},
            "allowed_rapid_settings": {**ranges, "concurrent_games": 3},
            "allowed_live_settings": {**ranges, "concurrent_games": 3},
            "allowed_correspondence_settings": {**ranges, "concurrent_games": 3},
            "greeting": {"en": "hello from gtp2ogs"},
            "farewell": {"en": "bye from gtp2ogs"},
        }
        config.update(extra)
        config_path = workdir / "gtp2ogs.json5"
        config_path.write_text(json.dumps(config, indent=2))
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [node, "--require", str(hostfix), str(entry), "-c", str(config_path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            start_new_session=True,
            env={**os.environ, "FORCE_COLOR": "0", "NO_COLOR": "1"},
        )

    def text(self) -> str:
        # tracer colours its output; strip ANSI escapes for matching.
        return re.sub(r"\x1b\[[0-9;]*m", "", self.log_path.read_text(errors="replace"))

    def wait_for_log(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text())
            if match:
                return match
            if self.proc.poll() is not None:
                raise AssertionError(f"gtp2ogs exited ({self.proc.returncode}) before /{pattern}/:\n{self.tail()}")
            time.sleep(0.1)
        raise AssertionError(f"gtp2ogs log never matched /{pattern}/ in {timeout} s:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM the whole group (gtp2ogs and its GNU Go children), SIGKILL after 3 s. Never raises."""
        try:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=3)
            # GNU Go children exit on stdin EOF; make sure none of the group outlives the test.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        except OSError:
            pass
        finally:
            self._log.close()


@pytest.fixture
def sandbox() -> Iterator[Any]:
    try:
        from bridge.adapters.ogs.sandbox import SandboxServer
    except ModuleNotFoundError as exc:  # pragma: no cover - only before the sandbox exists
        pytest.skip(f"the OGS sandbox is not available yet: {exc}")
    server = SandboxServer(port=0).start()
    server.add_bot(BOT_NAME, BOT_KEY)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_gtp2ogs(tmp_path: Path) -> Iterator[Callable[..., Gtp2ogs]]:
    node, entry, hostfix = _find_gtp2ogs()
    started: list[Gtp2ogs] = []

    def start(server_url: str, **extra: Any) -> Gtp2ogs:
        bot = Gtp2ogs(node, entry, hostfix, tmp_path, server_url, **extra)
        started.append(bot)
        return bot

    try:
        yield start
    finally:
        for bot in started:
            bot.stop()


def _control(sandbox: Any, method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(method, sandbox.url.rstrip("/") + path, timeout=10, **kwargs)
    assert response.status_code < 300, f"{method} {path} -> {response.status_code} {response.text}"
    return response.json()


def _wait_game_finished(sandbox: Any, game_id: int, bot: Gtp2ogs, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    game: dict[str, Any] = {}
    while time.monotonic() < deadline:
        game = _control(sandbox, "GET", f"/sandbox/games/{game_id}")
        if game.get("phase") == "finished":
            return game
        if bot.proc.poll() is not None:
            raise AssertionError(f"gtp2ogs exited ({bot.proc.returncode}) mid-game:\n{bot.tail()}")
        time.sleep(0.25)
    raise AssertionError(f"game {game_id} not finished after {timeout} s: {json.dumps(game)[:1500]}\n{bot.tail()}")


def _game_id(reply: dict[str, Any]) -> int:
    for key in ("game_id", "id"):
        if isinstance(reply.get(key), int):
            return int(reply[key])
    raise AssertionError(f"challenge reply has no game id: {reply}")


def test_gtp2ogs_plays_a_full_9x9_game_on_the_sandbox(
    sandbox: Any, start_gtp2ogs: Callable[..., Gtp2ogs]
) -> None:
    bot = start_gtp2ogs(sandbox.url)
    bot.wait_for_log(r"Bot is user id:\s+\d+", timeout=20)

    started = time.monotonic()
    reply = _control(
        sandbox,
        "POST",
        "/sandbox/challenges",
        json={
            "target": BOT_NAME,
            "challenger": {"house": "random"},
            "width": 9,
            "height": 9,
            "time_control": {"system": "simple", "speed": "live", "per_move": 30},
        },
    )
    game_id = _game_id(reply)
    game = _wait_game_finished(sandbox, game_id, bot, GAME_TIMEOUT)
    elapsed = time.monotonic() - started

    log = bot.text()
    # gtp2ogs accepted by REST, connected to the game, and played moves through GNU Go.
    assert "Connecting to game" in log, bot.tail()
    assert re.search(r"Playing [a-t]\d+|Playing pass", log, re.IGNORECASE), bot.tail()
    # Every move event matched gtp2ogs's own count: no dropped or duplicated moves.
    assert "move_number is invalid" not in log, bot.tail()
    assert "but no state exists" not in log, bot.tail()
    # It saw the end of the game through the protocol and said goodbye.
    bot.wait_for_log(r"Game over\.\s+Result: [BW]\+", timeout=10)
    assert game.get("outcome"), game
    moves = game.get("moves") or []
    assert len(moves) >= 10, f"suspiciously short game: {game}"
    print(f"gtp2ogs game {game_id}: {len(moves)} moves, outcome {game.get('outcome')!r}, {elapsed:.1f} s")

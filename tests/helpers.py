"""Helpers shared by test files (``from helpers import wait_for``): waiting on a condition, processes under /proc,
the OGS sandbox's control API as the Go tests use it, and an OGS bot's config and records. Fixtures belong in
conftest.py (``ogs_bot`` starts a daemon from ``ogs_config_text``); plain functions here."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import requests

from bridge.adapters.ogs.codec import decode_move_array
from bridge.games.sgf import read_sgf_moves, read_sgf_property

if TYPE_CHECKING:
    from bridge.adapters.ogs.sandbox import SandboxServer
    from bridge.daemon import Daemon

T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], timeout: float = 10.0, what: str = "condition",
             step: float = 0.02) -> T:
    """Wait until ``predicate()`` is true and return its value; fail naming ``what`` after ``timeout`` seconds.
    For state that nothing announces (a file, another process, a server's state behind HTTP): the poll is the
    event. Where something can be waited on directly (a threading.Event, a queue, a process's exit), wait on it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


# --- the OGS sandbox's control API ----------------------------------------------------------------------------
SHORT_GAME = ["cc", "gg", "cg", "gc", "ee", "resign"]  # moves of a scripted house that plays a little, then resigns
BYOYOMI_FAST = {"system": "byoyomi", "time_control": "byoyomi", "speed": "live", "main_time": 120,
                "period_time": 10, "periods": 3, "pause_on_weekends": False}


def children_of(pid: int) -> list[int]:
    """pid's children, whichever of its threads started them, from /proc/PID/task/*/children (a few reads, not a
    walk over every process; empty where the kernel lacks CONFIG_PROC_CHILDREN or the process is gone)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:  # the thread or the process ended meanwhile
            continue
    return out


def gone_or_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return True  # gone
    return stat[stat.rfind(")") + 2:].split()[:1] == ["Z"]


def processes_naming(text: str, *, but: int | None = None) -> list[int]:
    """The processes whose command line contains ``text`` (e.g. a test's own folder), ``but`` one pid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == but:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if text in f.read().decode(errors="replace"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def stopped_by_sigterm(run: subprocess.Popen[str], started: list[int], what: str, timeout: float) -> None:
    """SIGTERM to ``run`` (a script that takes it like Ctrl-C): it exits 130 saying it was interrupted, and none of
    ``started`` (the processes it had started) is still running."""
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=timeout)
    assert run.returncode == 130, err[-2000:]
    assert "interrupted" in err
    left = [pid for pid in started if not gone_or_zombie(pid)]
    assert not left, f"still running after the {what}'s SIGTERM: {left}"


def kill_all(run: subprocess.Popen[str], leftovers: list[int]) -> None:
    """After such a test, whatever happened: ``run`` and ``leftovers`` killed (SIGKILL), those already gone skipped."""
    if run.poll() is None:
        run.kill()
        run.wait(10)
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def api(sandbox: SandboxServer, method: str, path: str, **kw: Any) -> Any:
    """One call to the sandbox's HTTP API; fails the test on an error status."""
    r = requests.request(method, f"{sandbox.url}{path}", timeout=10, **kw)
    assert r.status_code < 300, f"{method} {path} -> {r.status_code} {r.text}"
    return r.json()


def challenge(sandbox: SandboxServer, target: str, challenger: dict[str, Any], **settings: Any) -> dict[str, Any]:
    """A 9x9 unranked japanese challenge (komi 6.5, byo-yomi 120 s + 3 x 10 s unless ``time_control`` says
    otherwise) from ``challenger`` (``{"user": NAME}`` or ``{"house": ...}``) to the bot ``target``."""
    body: dict[str, Any] = {"target": target, "challenger": challenger, "width": 9, "height": 9,
                            "rules": "japanese", "komi": 6.5, "ranked": False, "handicap": 0,
                            "time_control": BYOYOMI_FAST}
    body.update(settings)
    result: dict[str, Any] = api(sandbox, "POST", "/sandbox/challenges", json=body)
    return result


def sandbox_game(sandbox: SandboxServer, game_id: Any) -> dict[str, Any] | None:
    """The sandbox's view of a game, None while it does not exist (the bot has not accepted the challenge yet)."""
    r = requests.get(f"{sandbox.url}/sandbox/games/{game_id}", timeout=10)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    game: dict[str, Any] = r.json()
    return game


def wait_finished(sandbox: SandboxServer, game_id: Any, timeout: float = 240.0) -> dict[str, Any]:
    """The game once the sandbox says it is finished."""
    last: dict[str, Any] = {}

    def finished() -> dict[str, Any] | None:
        game = sandbox_game(sandbox, game_id)
        if game is not None:
            last.update(game)
        return game if game is not None and game.get("phase") == "finished" else None

    try:
        return wait_for(finished, timeout, f"game {game_id} to finish", step=0.1)
    except AssertionError:
        raise AssertionError(f"game {game_id} did not finish within {timeout:g} s: phase {last.get('phase')}, "
                             f"{len(last.get('moves', []))} moves") from None


# --- a bridge daemon as an OGS bot on the sandbox (the ``ogs_bot`` fixture in conftest.py starts one) ---------------
def _lines(extra: str) -> str:
    """YAML lines for a section's body: dedented, then indented by two spaces (callers may indent or not)."""
    body = textwrap.dedent(extra).strip("\n")
    return textwrap.indent(body, "  ") + "\n" if body else ""


def ogs_config_text(url: str, username: str, key_env: str, command: list[str], data_dir: Path, *,
                    server: str = "", engine: str = "", go: str | None = None, daemon: str = "") -> str:
    """The config of a bot ``username`` on the OGS sandbox at ``url`` (its API key read from ``key_env``) playing
    with ``command``: quick reconnects and pings (reconnect 0.2-1.0 s, ping every 2 s), engine.move_margin 10.
    ``server``, ``engine``, ``daemon``: more YAML lines for that section; ``go``: the go section's value (a flow
    mapping such as ``{undo: true}``), left out when None."""
    text = (f"server:\n  kind: ogs\n  url: {url}\n  username: {username}\n  api_key: {{env: {key_env}}}\n"
            "  reconnect_min_delay: 0.2\n  reconnect_max_delay: 1.0\n  ping_interval: 2\n" + _lines(server)
            + f"engine:\n  command: {command!r}\n  move_margin: 10\n" + _lines(engine))
    if go is not None:
        text += f"go: {go}\n"
    return text + f"daemon:\n  data_dir: {data_dir}\n" + _lines(daemon)


def sandbox_moves(game: dict[str, Any]) -> list[Any]:
    """A sandbox game's moves, decoded (``(x, y)`` or None for a pass)."""
    return [decode_move_array(m) for m in game["moves"]]


def sgf_path(d: Daemon, game_id: Any) -> Path:
    return Path(d.config.daemon.data_dir) / "records" / f"ogs-{game_id}.sgf"


def transcript_path(d: Daemon, game_id: Any) -> Path:
    return Path(d.config.daemon.data_dir) / "transcripts" / f"ogs-{game_id}.log"


def transcript(d: Daemon, game_id: Any) -> str:
    """The daemon's transcript of an OGS game, as it is now."""
    return transcript_path(d, game_id).read_text()


def ended_transcript(d: Daemon, game_id: Any, timeout: float = 20.0) -> str:
    """The daemon's transcript of an OGS game once its session has ended (its last line written)."""
    path = transcript_path(d, game_id)

    def ended() -> str | None:
        text = path.read_text() if path.exists() else ""
        return text if "session ended" in text else None

    return wait_for(ended, timeout, f"the session of game {game_id} to end", step=0.1)


def assert_record_matches(d: Daemon, game: dict[str, Any]) -> None:
    """The daemon's SGF record of a finished sandbox game holds the server's moves and result."""
    path = sgf_path(d, game["game_id"] if "game_id" in game else game["id"])
    wait_for(path.exists, 20, f"SGF record {path}")
    text = path.read_text()
    assert [m for _, m in read_sgf_moves(text)] == sandbox_moves(game)
    result = read_sgf_property(text, "RE")
    assert result is not None and result == game["score"], (result, game.get("score"), game.get("outcome"))


def server_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, masked: bool = False) -> bytes:
    """One WebSocket frame as a server writes it (unmasked unless ``masked``: a breach), with the 7-, 16- or 64-bit
    length encoding its size needs."""
    n = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head = bytes((first, mask_bit | n))
    elif n < 1 << 16:
        head = bytes((first, mask_bit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, mask_bit | 127)) + n.to_bytes(8, "big")
    if masked:
        key = b"\x01\x02\x03\x04"
        return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + payload

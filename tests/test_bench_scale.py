"""The scale benchmark's parts (scripts/bench_scale.py, scripts/instant_gtp.py, the sandbox's move times): the instant
engine's board never plays an illegal move, the sandbox stamps every move it broadcasts, and a one-game smoke run of
the benchmark (a few moves, floor and bridge) produces its table and JSON."""

from __future__ import annotations

import json
import random
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.adapters.ogs.sandbox import SandboxServer
from bridge.engines.gtp import GtpEngine
from bridge.games.gorules import GoBoard, IllegalMove

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from instant_gtp import Board  # noqa: E402


def test_board_refuses_suicide_and_ko_and_captures() -> None:
    b = Board(5, 5)
    # white stones around (1,1): black playing there is suicide
    for p in ((1, 0), (0, 1), (2, 1), (1, 2)):
        b.play(2, p[0] + p[1] * 5)
    assert not b.legal(1, 1 + 1 * 5)
    assert b.legal(2, 1 + 1 * 5)
    # a ko: black captures one white stone, white may not retake at once
    k = Board(5, 5)
    for color, (x, y) in ((1, (1, 0)), (2, (2, 0)), (1, (0, 1)), (2, (3, 1)), (1, (1, 2)), (2, (2, 2)),
                          (2, (1, 1))):
        k.play(color, x + y * 5)
    k.play(1, 2 + 1 * 5)  # captures white (1,1)
    assert k.cells[1 + 1 * 5] == 0
    assert k.ko == 1 + 1 * 5
    assert not k.legal(2, 1 + 1 * 5)
    k.play(2, 4 + 4 * 5)  # white plays elsewhere: the ko is lifted, the retake (capturing back) is legal
    assert k.ko == -1
    assert k.legal(2, 1 + 1 * 5)


def test_instant_engine_plays_only_legal_moves_against_a_random_player(tmp_path: Path) -> None:
    """The real engine process, refereed by the sandbox's rules (simple ko, no suicide), until both sides pass."""
    times = tmp_path / "times.txt"
    engine = GtpEngine.start([sys.executable, str(ROOT / "scripts" / "instant_gtp.py"), "--times", str(times)],
                             name="instant")
    try:
        engine.command("boardsize", "9")
        engine.command("clear_board")
        ref = GoBoard(9, 9, ko="simple", allow_suicide=False)
        rng = random.Random(7)
        passes, genmoves = 0, 0
        for turn in range(400):
            if turn % 2 == 0:
                vertex = engine.command("genmove", "b").strip()
                genmoves += 1
                move = None if vertex.lower() == "pass" else ("ABCDEFGHJ".index(vertex[0]), 9 - int(vertex[1:]))
                try:
                    ref.play("black", move)
                except IllegalMove as exc:
                    pytest.fail(f"the instant engine played an illegal {vertex}: {exc}")
            else:
                move = ref.random_move("white", rng)
                ref.play("white", move)
                engine.command("play", "w", "pass" if move is None else f"{'ABCDEFGHJ'[move[0]]}{9 - move[1]}")
            passes = passes + 1 if move is None else 0
            if passes >= 2:
                break
        assert passes >= 2, "the game did not end within 400 moves"
    finally:
        engine.close()
    think = [float(x) for x in times.read_text().split()]
    assert len(think) == genmoves
    assert max(think) < 50_000  # microseconds: instant


def test_sandbox_stamps_every_move_it_broadcasts(sandbox: SandboxServer) -> None:
    import websocket

    key = secrets.token_hex(8)
    sandbox.add_bot("stamped", key)
    ws = websocket.create_connection(sandbox.url.replace("http", "ws", 1) + "/", timeout=10)
    try:
        ws.send(json.dumps(["authenticate", {"jwt": "", "bot_username": "stamped", "bot_apikey": key}, 1]))
        ids = sandbox.challenge(target="stamped", width=9, height=9, challenger_color="white",
                                challenger={"house": "scripted", "moves": ["cc"], "delay": 0})
        r = requests.post(f"{sandbox.url}/api/v1/me/challenges/{ids['challenge_id']}/accept",
                          json={"apikey": key, "username": "stamped"}, timeout=10)
        assert r.status_code == 200, r.text
        gid = ids["game_id"]
        ws.send(json.dumps(["game/connect", {"game_id": gid, "chat": False}]))
        ws.send(json.dumps(["game/move", {"game_id": gid, "move": "gg"}]))
        while True:  # until the house's answer is broadcast to us
            frame = json.loads(ws.recv())
            if frame[0] == f"game/{gid}/move" and frame[1]["move_number"] == 2:
                break
    finally:
        ws.close()
    with requests.Session() as http:
        rows = http.get(f"{sandbox.url}/sandbox/move_times", timeout=10).json()
        brief = http.get(f"{sandbox.url}/sandbox/move_times", params={"times": "0"}, timeout=10).json()
    row = next(r for r in rows if r["game_id"] == gid)
    assert row["black"] == "stamped" and row["move_colors"] == ["black", "white"]
    assert len(row["times"]) == 2 and row["times"][0] < row["times"][1]
    assert "times" not in next(r for r in brief if r["game_id"] == gid)


@pytest.mark.e2e
@pytest.mark.alone  # it measures latencies
@pytest.mark.timeout(180)
def test_bench_scale_smoke_one_game(tmp_path: Path) -> None:
    """The benchmark itself, one game with a few moves for the floor, the engine relay (asyncio's pipes), the pipe
    relay (blocking pipes) and a real `gamebridge run`."""
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_scale.py"), "--quick", "--levels", "1",
                           "--players", "floor,relay,pipe,bridge",
                           "--json", str(out), "--workdir", str(tmp_path / "work")],
                          cwd=ROOT, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    by = {r["player"]: r for r in data["results"]}
    assert set(by) == {"floor", "relay", "pipe", "bridge"}
    for r in by.values():
        assert r["moves_measured"] >= 10, r
        assert 0 < r["p50"] <= r["p90"] <= r["p99"], r
        assert r["window_moves"] > 0 and r["rss_mb"] > 0, r
    assert by["bridge"]["engines_alive_max"] == 1, by["bridge"]
    assert by["bridge"]["engine_us"] > 0, by["bridge"]
    # the relays' moves were the engine's
    assert by["relay"]["engine_us"] > 0 and by["pipe"]["engine_us"] > 0 and by["floor"]["engine_us"] == 0, by
    assert "x the engine relay's" in proc.stdout and "x the pipe relay's" in proc.stdout
    assert "| 1 paced game | bridge |" in proc.stdout
    assert any(t["target"].startswith("1 game: p99") for t in data["targets"])


@pytest.mark.parametrize("key", ["1", "500", "500p", "500c"])
def test_each_level_configures_the_daemon_it_names(key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The configuration a level gives the daemon is valid and holds the level's engine manager, its pool's size and
    slots for all its games: 500p and 500c run 500 games on a pool of 4 engines, the others one engine a game."""
    import bench_scale

    from bridge.config import load_config_text

    monkeypatch.setenv("BENCH_SCALE_KEY", secrets.token_hex(16))
    level = bench_scale.LEVELS[key]
    cfg: Any = load_config_text(bench_scale.daemon_config(level, "http://127.0.0.1:9", "bench-bot",
                                                          tmp_path / "times.txt", tmp_path / "data"))
    assert cfg.engine.manager == ("pool" if key in ("500p", "500c") else "per_game")
    assert level.engine_cap == (cfg.engine.pool_size if key in ("500p", "500c") else level.games)
    assert cfg.daemon.max_concurrent_games == level.games
    assert cfg.server.accept.max_games_per_opponent == level.games


def test_repeated_runs_pool_their_samples() -> None:
    """--repeat: one row per player from all its runs: percentiles over every sample, CPU over every move."""
    import bench_scale

    a = bench_scale.Result("bridge", "1 paced game", 1, "1", overheads=[1.0, 2.0, 3.0], p50=2.0, window_moves=3,
                           cpu_s=0.003, engines_cpu_s=0.0003, rss_mb=40, engines_alive_max=1, engine_us=50)
    b = bench_scale.Result("bridge", "1 paced game", 1, "1", overheads=[4.0, 5.0, 6.0, 7.0], p50=5.0,
                           window_moves=5, cpu_s=0.015, engines_cpu_s=0.0005, rss_mb=45, engines_alive_max=1,
                           engine_us=70)
    p = bench_scale.pooled([a, b])
    assert p.runs == 2 and p.runs_p50 == [2.0, 5.0]
    assert p.moves_measured == 7 and p.p50 == 4.0 and p.p99 == 7.0
    assert p.cpu_ms_per_move == pytest.approx(18 / 8) and p.engines_cpu_ms_per_move == pytest.approx(0.1)
    assert p.rss_mb == 45 and p.engine_us == 60
    assert bench_scale.pooled([a]) is a

"""The `gamebridge` command as a user runs it: real subprocesses, the real sandbox, real GNU Go."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from bridge.adapters.ogs.sandbox import SandboxServer
from bridge.cli import build_parser
from bridge.events import RBC_DEMO_INCREMENT, RBC_DEMO_SECONDS

BRIDGE = [sys.executable, "-m", "bridge.cli"]


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*BRIDGE, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)



def write_config(path: Path, url: str, key_file: Path, engine: str = "/usr/games/gnugo") -> Path:
    path.write_text(f"""\
server:
  kind: ogs
  url: {url}
  username: cli-bot
  api_key: {{file: {key_file}}}
engine:
  command: [{engine}, --mode, gtp, --level, "1"]
daemon:
  data_dir: {path.parent / 'runs'}
""")
    return path


DEMO_GAMES = ["go", "go-analysis", "battleship", "rbc"]


def test_the_demo_plays_every_game_in_order_by_default() -> None:
    """The README's first command plays every demo (each is run by a test of its own below, side by side)."""
    from bridge.demo import demo_names

    assert build_parser().parse_args(["demo"]).game == "all"
    assert demo_names() == DEMO_GAMES


@pytest.mark.parametrize("game", DEMO_GAMES)
def test_demo_plays_a_whole_game(tmp_path: Path, gnugo_command: list[str], game: str) -> None:
    """The README's first command (after setup): whole games on the embedded sandboxes, boards and results shown;
    one demo a test (`--game`) so that the suite's workers share them."""
    # RBC on a 30 s clock, not the demo's 60 s: the game (the player spends its clock) takes ~40 s, not ~110 s
    rbc_clock = ["--rbc-seconds", "30", "--rbc-increment", "1"] if game == "rbc" else []
    p = run(["demo", "--game", game, "--opponent", "random", "--data-dir", str(tmp_path / "demo"), *rbc_clock],
            tmp_path, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    if game == "go":
        assert re.search(r"^result: [BW]\+", p.stdout, re.M), p.stdout[-1000:]
        assert "move 1: black" in p.stdout and "A B C D E F G H J" in p.stdout
        assert "analysis messages: none (engine.analysis is on, but GNU Go prints no principal variation" in p.stdout
        sgf = re.search(r"^SGF record: (\S+)", p.stdout, re.M)
        assert sgf is not None and Path(sgf.group(1)).exists()
    elif game == "go-analysis":
        # the engine's thinking: Leela Zero through lz-genmove_analyze, one OGS analysis message a move of the bot
        assert re.search(r"^analysis message \(main chat\), after move 1: Win rate: [\d.]+%, Visits: \d+; "
                         r"variation [A-T]\d+", p.stdout, re.M), p.stdout[-3000:]
        assert re.search(r"^result: W\+R; 5 analysis message\(s\), one for each move of the bot", p.stdout, re.M)
    elif game == "rbc":
        # Reconnaissance Blind Chess: Stockfish through the bridge finds its own game (server.seek), and shows the
        # true board and the belief as it goes
        assert "invited house random itself (server.seek)" in p.stdout, p.stdout[-3000:]
        assert "30 s + 1 s a turn" in p.stdout
        assert re.search(r"^turn 1: sensed around \S+; asked \S+, played .+; the bridge now thinks \d+ boards",
                         p.stdout, re.M), p.stdout[-3000:]
        assert re.search(r"^result: (white \(the bridge\)|black \(random\)|nobody) wins", p.stdout, re.M)
        records = re.search(r"^records: (\S+\.json)", p.stdout, re.M)
        assert records is not None and Path(records.group(1)).exists()
        # each turn's count is the belief right after that turn's move, as the player's transcript notes it, not
        # the count when the demo looked (by then the player may be a turn further)
        game_id = re.search(r"a turn; game (\S+)$", p.stdout, re.M)
        assert game_id is not None
        transcript = (tmp_path / "demo" / "transcripts" / f"reconchess-{game_id.group(1)}.log").read_text()
        noted = {int(n): int(k) for n, k in re.findall(
            r"## turn (\d+): .*(?:taken as asked|took \S+)[^:]*: (\d+) boards", transcript)}
        shown = {int(n): int(k) for n, k in re.findall(
            r"^turn (\d+): sensed around .*; the bridge now thinks (\d+) boards possible", p.stdout, re.M)}
        assert shown and noted, (p.stdout[-2000:], transcript[-2000:])
        assert {n: (k, noted.get(n)) for n, k in shown.items() if noted.get(n) != k} == {}
    else:
        # Battleship: the reference engine through the bridge, both grids after each turn
        assert re.search(r"^turn 1: (bridge|hunt-target) (shoots [A-J]\d+|moves )", p.stdout, re.M)
        assert "the bridge's fleet" in p.stdout and "hunt-target's fleet" in p.stdout
        assert re.search(r"^result: (the bridge|hunt-target) wins after \d+ turns", p.stdout, re.M)


def test_the_demos_rbc_clock_bounds_a_long_game() -> None:
    """The player spends its clock, so the RBC demo lasts at most its clock plus the increment a turn of our
    thinking (the random bot answers at once). The random bot's longest game in 40 benchmark games was 69
    half-turns, 35 of ours: the demo's defaults keep that under 150 s. At 120 s + 5 s (295 s) the demo test timed
    out at 300 s in CI (2 workers)."""
    args = build_parser().parse_args(["demo"])
    assert (args.rbc_seconds, args.rbc_increment) == (RBC_DEMO_SECONDS, RBC_DEMO_INCREMENT)
    assert args.rbc_seconds + 35 * args.rbc_increment <= 150


def _good_config(tmp_path: Path, sandbox: SandboxServer) -> Path:
    """A config whose bot the sandbox knows by the key in its key file."""
    key = tmp_path / "key"
    key.write_text("cli-secret-key-123\n")
    sandbox.add_bot("cli-bot", "cli-secret-key-123")
    return write_config(tmp_path / "bot.yaml", sandbox.url, key)


def test_check_says_ready_for_a_good_config(tmp_path: Path, sandbox: SandboxServer, gnugo_command: list[str]) -> None:
    cfg = _good_config(tmp_path, sandbox)
    p = run(["check", str(cfg)], tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "VERDICT: ready" in p.stdout
    assert "engine GNU Go" in p.stdout and "authenticated as cli-bot" in p.stdout
    assert f"ok   data folder {tmp_path / 'runs'} can hold the transcripts and records" in p.stdout
    assert "ok   transcripts: 0 file(s), 0.0 MB, of daemon.transcripts_max_mb 1.00 GB\n" in p.stdout
    assert f"ok   data folder {tmp_path / 'runs'}: " in p.stdout and " free on its disk\n" in p.stdout
    assert not (tmp_path / "runs").exists(), "the check only looks; the daemon makes the folders"
    assert "cli-secret-key-123" not in p.stdout + p.stderr


def test_check_names_a_data_folder_the_games_cannot_write_in(tmp_path: Path, sandbox: SandboxServer,
                                                               gnugo_command: list[str]) -> None:
    cfg = _good_config(tmp_path, sandbox)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "records").write_text("a file where the folder should be")
    p = run(["check", str(cfg)], tmp_path)
    assert p.returncode == 1, p.stdout + p.stderr
    folder = tmp_path / "runs" / "records"
    assert (f"FAIL daemon.data_dir: cannot write in {folder} ({folder} is not a folder): games are played without "
            f"records until it can be; make {folder} a writable folder with free space") in p.stdout, p.stdout
    assert "transcripts" not in p.stdout.split("FAIL")[1].split("\n")[0]
    assert "VERDICT: not ready: 1 problem(s) above" in p.stdout


def test_check_names_a_wrong_key_without_printing_it(tmp_path: Path, sandbox: SandboxServer,
                                                     gnugo_command: list[str]) -> None:
    key = tmp_path / "key"
    key.write_text("wrong-key-456789\n")
    sandbox.add_bot("cli-bot", "the-right-key-000")
    cfg = write_config(tmp_path / "bot.yaml", sandbox.url, key)
    p = run(["check", str(cfg)], tmp_path)
    assert p.returncode == 1
    assert "FAIL" in p.stdout and "api_key" in p.stdout and "VERDICT: not ready" in p.stdout
    assert "wrong-key-456789" not in p.stdout + p.stderr


def test_check_reports_a_bad_config_and_an_unreachable_server(tmp_path: Path, gnugo_command: list[str]) -> None:
    key = tmp_path / "key"
    key.write_text("k" * 20 + "\n")
    cfg = write_config(tmp_path / "bot.yaml", "http://127.0.0.1:9", key, engine="/nonexistent/gnugo")
    p = run(["check", str(cfg)], tmp_path)
    assert p.returncode == 78 and "engine.command" in p.stdout and "not found" in p.stdout
    cfg = write_config(tmp_path / "bot.yaml", "http://127.0.0.1:9", key)
    p = run(["check", str(cfg)], tmp_path)
    assert p.returncode == 1 and "cannot reach" in p.stdout and "engine GNU Go" in p.stdout


def test_check_reports_leela_zeros_extensions_and_the_board_sizes_it_refuses(
        tmp_path: Path, sandbox: SandboxServer, leelaz_command: list[str]) -> None:
    """A second real GTP engine through `gamebridge check`: Leela Zero plays 19x19 only. check names the extensions
    the bridge will use (its own clock command, the cleanup genmove) and the others it lists, and fails a config
    that would accept board sizes the engine refuses, naming the key; with 19 only it is ready."""
    key = tmp_path / "key"
    key.write_text("leela-secret-key-123\n")
    sandbox.add_bot("cli-bot", "leela-secret-key-123")
    command = ", ".join(json.dumps(part) for part in leelaz_command)
    cfg = tmp_path / "leela.yaml"
    text = f"""\
server:
  kind: ogs
  url: {sandbox.url}
  username: cli-bot
  api_key: {{file: {key}}}
  accept: {{board_sizes: [9, 13, 19]}}
engine:
  command: [{command}]
daemon:
  data_dir: {tmp_path / 'runs'}
"""
    cfg.write_text(text)
    p = run(["check", str(cfg)], tmp_path)
    assert p.returncode == 1, p.stdout + p.stderr
    assert re.search(r"^FAIL .*boardsize 9.*server\.accept\.board_sizes", p.stdout, re.M), p.stdout
    assert "VERDICT: not ready" in p.stdout
    cfg.write_text(text.replace("[9, 13, 19]", "[19]"))
    p = run(["check", str(cfg)], tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "engine Leela Zero 0.17" in p.stdout
    supports = re.search(r"^ok   engine supports: (.*)$", p.stdout, re.M)
    assert supports is not None
    assert "kgs-time_settings" in supports.group(1) and "kgs-genmove_cleanup" in supports.group(1)
    assert re.search(r"^ok   engine also lists .*lz-analyze", p.stdout, re.M), p.stdout
    assert re.search(r"^ok   engine answered a test genmove on 19x19: ", p.stdout, re.M), p.stdout
    assert "leela-secret-key-123" not in p.stdout + p.stderr


@pytest.mark.e2e
def test_schema_is_json(tmp_path: Path) -> None:
    p = run(["schema"], tmp_path)
    assert p.returncode == 0
    schema = json.loads(p.stdout)
    assert schema["title"] == "bridge configuration" and "server" in schema["properties"]


def test_run_plays_and_stops_cleanly_on_sigterm(tmp_path: Path, gnugo_command: list[str]) -> None:
    """`gamebridge sandbox ogs` and `gamebridge run` as separate processes, as a user would start them."""
    port_probe = SandboxServer("127.0.0.1", 0)  # find a free port, then give it to the sandbox process
    port_probe.start()
    port = port_probe.port
    port_probe.stop()
    sandbox = subprocess.Popen([*BRIDGE, "sandbox", "ogs", "--port", str(port)], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    daemon: subprocess.Popen[str] | None = None
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(f"{url}/sandbox/games", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        r = requests.post(f"{url}/sandbox/bots", json={"username": "cli-bot", "apikey": "run-key-abcdef"}, timeout=5)
        assert r.status_code < 300, r.text
        key = tmp_path / "key"
        key.write_text("run-key-abcdef\n")
        cfg = write_config(tmp_path / "bot.yaml", url, key)
        daemon = subprocess.Popen([*BRIDGE, "run", str(cfg)], cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        body = {"target": "cli-bot", "challenger": {"house": "scripted", "moves": ["cc", "gg", "ee", "resign"]},
                "width": 9, "height": 9}
        game_id = requests.post(f"{url}/sandbox/challenges", json=body, timeout=5).json()["game_id"]
        deadline = time.monotonic() + 120
        game = {}
        while time.monotonic() < deadline:
            game = requests.get(f"{url}/sandbox/games/{game_id}", timeout=5).json()
            if game.get("phase") == "finished":
                break
            time.sleep(0.3)
        assert game.get("phase") == "finished", game
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, out[-2000:]
        assert "bridge daemon stopped" in out
        assert "run-key-abcdef" not in out
        assert (tmp_path / "runs" / "records" / f"ogs-{game_id}.sgf").exists()
    finally:
        for proc in (daemon, sandbox):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate()


def _config_for(tmp_path: Path, kind: str, secret: str) -> Path:
    servers = {
        "ogs": f"  kind: ogs\n  url: http://127.0.0.1:9\n  username: cli-bot\n  api_key: {secret}\n",
        "reconchess": f"  kind: reconchess\n  url: http://127.0.0.1:9\n  username: cli-bot\n  password: {secret}\n",
        "opengames": f"  kind: opengames\n  url: http://127.0.0.1:9\n  agent: cli-bot\n  api_key: {secret}\n",
    }
    engines = {"ogs": "[/usr/games/gnugo, --mode, gtp]", "reconchess": "[/usr/games/stockfish]",
               "opengames": f"[{sys.executable}, scripts/battleship_engine.py]"}
    protocol = {"ogs": "gtp", "reconchess": "uci", "opengames": "line"}[kind]
    path = tmp_path / f"{kind}.yaml"
    path.write_text(f"server:\n{servers[kind]}engine:\n  protocol: {protocol}\n  command: {engines[kind]}\n"
                    f"daemon:\n  data_dir: {tmp_path / 'runs'}\n")
    return path


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["ogs", "reconchess", "opengames"])
@pytest.mark.parametrize("secret", ["{env: BRIDGE_TEST_UNSET_SECRET}", "{file: /nonexistent/bridge-secret.key}"])
def test_run_with_a_missing_secret_is_one_line_and_the_config_exit_status(tmp_path: Path, kind: str,
                                                                          secret: str) -> None:
    cfg = _config_for(tmp_path, kind, secret)
    env = {k: v for k, v in os.environ.items() if k != "BRIDGE_TEST_UNSET_SECRET"}
    p = subprocess.run([*BRIDGE, "run", str(cfg)], cwd=Path(__file__).parent.parent, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 78, p.stdout + p.stderr
    assert "Traceback" not in p.stderr + p.stdout
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("bridge: configuration error: server."), lines
    assert ("BRIDGE_TEST_UNSET_SECRET" in lines[0]) if "env" in secret else ("/nonexistent" in lines[0])


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["run", "check"])
def test_a_config_file_that_is_not_utf8_is_one_line_and_the_config_exit_status(tmp_path: Path,
                                                                                command: str) -> None:
    cfg = tmp_path / "latin1.yaml"
    cfg.write_bytes(b"# the bot\nserver:\n  kind: ogs  # caf\xe9\n")
    p = run([command, str(cfg)], tmp_path, timeout=60)
    assert p.returncode == 78, p.stdout + p.stderr
    out = p.stdout + p.stderr
    assert "Traceback" not in out
    assert f"{cfg}:3: the configuration is not UTF-8 text (byte 0xe9)" in out, out


def test_check_says_whether_the_array_belief_can_load_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from bridge.check import check_belief

    assert check_belief(SimpleNamespace(rbc=SimpleNamespace(belief="boards"))) == []
    [ok] = check_belief(SimpleNamespace(rbc=SimpleNamespace(belief="arrays")))
    assert ok.ok and ok.what.startswith("rbc.belief: arrays (numpy ")
    monkeypatch.setitem(sys.modules, "numpy", None)  # a broken install
    [bad] = check_belief(SimpleNamespace(rbc=SimpleNamespace(belief="arrays")))
    assert not bad.ok and "scripts/setup.sh" in bad.what and "rbc.belief: boards" in bad.what


def test_the_processes_the_tests_start_run_this_checkout_s_package(tmp_path: Path) -> None:
    """Whatever folder a test runs the bridge in, it is the code under test (tests/conftest.py sets PYTHONPATH), not
    the checkout an editable install points to (a worktree sharing another checkout's .venv ran the other's code)."""
    p = subprocess.run([sys.executable, "-c", "import bridge; print(bridge.__file__)"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert Path(p.stdout.strip()).resolve() == (Path(__file__).resolve().parent.parent / "bridge" / "__init__.py")

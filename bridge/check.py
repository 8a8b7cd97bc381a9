"""``gamebridge check``: is this config ready to run? Config, engine, server, each with one clear line."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TextIO

from bridge import datadir
from bridge.config import EngineConfig, load_config
from bridge.errors import EXIT_CONFIG, BridgeError, ConfigError, EngineRefusedError
from bridge.events import CheckLine
from bridge.registry import adapter_spec

# GTP commands the Go player uses when the engine lists them, and what each one gives.
GTP_FEATURES = {
    "kgs-time_settings": "byo-yomi/canadian/absolute clocks",
    "kata-time_settings": "fischer clocks",
    "time_settings": "basic clocks",
    "time_left": "time left before each move",
    "kata-set-rules": "rules",
    "kgs-rules": "rules",
    "place_free_handicap": "choosing free handicap stones",
    "set_free_handicap": "opponent's free handicap stones",
    "final_status_list": "dead stones at the end",
    "kgs-genmove_cleanup": "playing out disputed dead stones after a rejected stone removal",
    "kata-genmove_analyze": "the move with its analysis, with engine.analysis",
    "lz-genmove_analyze": "the move with its analysis, with engine.analysis",
    "rectangular_boardsize": "rectangular boards",
}
# Prefixes of engine extensions worth naming in the check even though the bridge does not use them.
EXTENSION_PREFIXES = ("kgs-", "kata-", "lz-", "gomill-", "gogui-", "pachi-")


def check_engine(config: object) -> list[CheckLine]:
    from bridge.engines.gtp import GtpEngine
    from bridge.transcript import Transcript

    engine_cfg = config.engine  # type: ignore[attr-defined]
    if engine_cfg.protocol == "uci":
        return check_uci_engine(engine_cfg)
    if engine_cfg.protocol == "line":
        return check_line_engine(engine_cfg)
    if engine_cfg.manager == "kata_analysis":
        return check_kata_analysis(config)
    lines: list[CheckLine] = []
    with tempfile.TemporaryDirectory() as tmp:
        transcript = Transcript(Path(tmp) / "check.log")
        try:
            engine = GtpEngine.start(list(engine_cfg.command), name="check", cwd=engine_cfg.cwd,
                                     env=dict(engine_cfg.env) or None, transcript=transcript,
                                     startup_timeout=engine_cfg.startup_timeout, quit_grace=engine_cfg.quit_grace)
        except BridgeError as exc:
            transcript.close()
            return [CheckLine(False, f"engine did not start: {exc}")]
        try:
            lines.append(CheckLine(True, f"engine {engine.engine_name} {engine.engine_version} speaks GTP "
                                         f"{engine.protocol_version}, {len(engine.commands)} commands"))
            have = [f"{cmd} ({why})" for cmd, why in GTP_FEATURES.items() if engine.supports(cmd)]
            missing = [cmd for cmd in GTP_FEATURES if not engine.supports(cmd)]
            lines.append(CheckLine(True, "engine supports: " + (", ".join(have) or "only the required commands")))
            if missing:
                lines.append(CheckLine(True, "engine lacks (the bridge works around them): " + ", ".join(missing)))
            extras = sorted(cmd for cmd in engine.commands
                            if cmd.startswith(EXTENSION_PREFIXES) and cmd not in GTP_FEATURES)
            if extras:
                lines.append(CheckLine(True, "engine also lists (not used by the bridge): " + ", ".join(extras)))
            sizes = _accepted_board_sizes(config)
            played = []
            for size in sizes:
                try:
                    engine.command("boardsize", str(size))
                    played.append(size)
                except EngineRefusedError as exc:
                    lines.append(CheckLine(False, f"engine refuses boardsize {size} ({exc.reply or 'refused'}), which "
                                                  f"server.accept.board_sizes accepts: list only the sizes it plays"))
            if played:
                size = played[0]
                engine.command("boardsize", str(size))
                engine.command("clear_board")
                reply = engine.genmove("black", timeout=engine_cfg.startup_timeout + engine_cfg.move_margin)
                lines.append(CheckLine(True, f"engine answered a test genmove on {size}x{size}: {reply}"))
        except BridgeError as exc:
            lines.append(CheckLine(False, f"engine failed a test command: {exc}"))
        finally:
            engine.close()
            transcript.close()
    return lines


def check_kata_analysis(config: object) -> list[CheckLine]:
    """engine.manager: kata_analysis: start the analysis engine, handshake (query_version), ask one move."""
    from bridge.games.go_kata import KataAnalysisEngine
    from bridge.games.gotypes import GoSettings, GoState, TimeControl, gtp_vertex
    from bridge.transcript import Transcript

    engine_cfg = config.engine  # type: ignore[attr-defined]
    manager = KataAnalysisEngine(engine_cfg)
    lines: list[CheckLine] = []
    try:
        manager.ensure_started()
        lines.append(CheckLine(True, f"KataGo analysis engine started in {manager.start_seconds:.1f} s "
                                 f"(engine.manager: kata_analysis)"))
        size = _accepted_board_sizes(config)[0]
        player = manager.player(name="check", transcript=Transcript(None), on_stderr=None)
        # a clock bounds the test query (maxTime, then the hang limit) as a move on a clock would be
        clock = TimeControl(system="simple", per_move=engine_cfg.startup_timeout + 2 * engine_cfg.move_margin + 5)
        settings = GoSettings(width=size, height=size, komi=6.5, rules="chinese", my_color="black",
                              time_control=clock)
        answer = player.genmove(GoState(game_id="check", settings=settings))
        shown = answer if isinstance(answer, str) else " ".join(gtp_vertex(m, size) for m in answer)
        lines.append(CheckLine(True, f"analysis engine answered a test query on {size}x{size}: {shown}"))
        return lines
    except BridgeError as exc:
        return [*lines, CheckLine(False, f"analysis engine failed: {exc}")]
    finally:
        manager.close()


def _accepted_board_sizes(config: object) -> list[int]:
    """The square board sizes the config accepts (OGS's server.accept.board_sizes), smallest first; 9 when the
    server section has no such policy."""
    sizes = getattr(getattr(getattr(config, "server", None), "accept", None), "board_sizes", None)
    return sorted(set(sizes)) if sizes else [9]


def check_uci_engine(engine_cfg: EngineConfig) -> list[CheckLine]:
    """Start a UCI engine with python-chess, apply the configured options, and search the start position."""
    import chess
    import chess.engine

    try:
        engine = chess.engine.SimpleEngine.popen_uci(list(engine_cfg.command), timeout=engine_cfg.startup_timeout,
                                                     cwd=engine_cfg.cwd, env=_env(engine_cfg))
    except (OSError, chess.engine.EngineError, TimeoutError) as exc:
        return [CheckLine(False, f"engine did not start: {type(exc).__name__}: {exc}")]
    try:
        name = engine.id.get("name", "?")
        lines = [CheckLine(True, f"engine {name} speaks UCI, {len(engine.options)} options")]
        try:
            if engine_cfg.options:
                engine.configure({k: v if isinstance(v, str | int) else str(v)
                                  for k, v in engine_cfg.options.items()})
                lines.append(CheckLine(True, "engine options applied: " + ", ".join(
                    f"{k}={v}" for k, v in engine_cfg.options.items())))
        except chess.engine.EngineError as exc:
            return [*lines, CheckLine(False, f"engine.options: {exc}")]
        result = engine.play(chess.Board(), chess.engine.Limit(time=0.1))
        lines.append(CheckLine(True, f"engine answered a test search from the start position: {result.move}"))
        return lines
    except (chess.engine.EngineError, TimeoutError) as exc:
        return [CheckLine(False, f"engine failed a test search: {type(exc).__name__}: {exc}")]
    finally:
        try:
            engine.quit()
        except Exception:
            engine.close()


def check_line_engine(engine_cfg: EngineConfig) -> list[CheckLine]:
    """Start a Battleship line-protocol engine and handshake."""
    from bridge.engines.line import LineEngine

    try:
        engine = LineEngine.start(list(engine_cfg.command), name="check", cwd=engine_cfg.cwd,
                                  env=dict(engine_cfg.env) or None, startup_timeout=engine_cfg.startup_timeout)
    except BridgeError as exc:
        return [CheckLine(False, f"engine did not start: {exc}")]
    try:
        return [CheckLine(True, f"engine {engine.engine_name} {engine.engine_version} speaks the Battleship line "
                                f"protocol {engine.protocol_version}, {len(engine.commands)} commands")]
    finally:
        engine.close()


def _env(engine_cfg: EngineConfig) -> dict[str, str]:
    from bridge.engines.process import engine_environment

    return engine_environment(dict(engine_cfg.env))


def check_belief(config: object) -> list[CheckLine]:
    """``rbc.belief: arrays`` needs numpy: a line saying whether it imports (none for the default belief)."""
    if getattr(getattr(config, "rbc", None), "belief", "boards") != "arrays":
        return []
    try:
        import numpy
    except ImportError as exc:
        return [CheckLine(False, f"rbc.belief: arrays needs numpy, which cannot be imported ({exc}): reinstall the "
                                 f"bridge's dependencies (bash scripts/setup.sh), or set rbc.belief: boards")]
    return [CheckLine(True, f"rbc.belief: arrays (numpy {numpy.__version__})")]


def run_check(path: Path, out: TextIO) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        out.write(f"FAIL config {path}:\n{exc}\n")
        out.write("VERDICT: not ready: fix the configuration\n")
        return EXIT_CONFIG
    out.write(f"ok   config {path} is valid (server {config.server.kind}, engine {config.engine.command[0]})\n")
    data_dir = Path(config.daemon.data_dir)
    lines = [CheckLine(False, problem) for problem in datadir.problems(data_dir, create=False)]
    if not lines:
        lines.append(CheckLine(True, f"data folder {data_dir} can hold the transcripts and records"))
    lines += [CheckLine(ok, what) for ok, what in datadir.usage(data_dir, config.daemon.transcripts_max_mb)]
    lines += check_engine(config)
    lines += check_belief(config)
    try:
        adapter = adapter_spec(config.server.kind).factory(config.server, config)
        lines += adapter.check()
    except BridgeError as exc:
        lines.append(CheckLine(False, str(exc)))
    for line in lines:
        out.write(f"{'ok  ' if line.ok else 'FAIL'} {line.what}\n")
    failed = [line for line in lines if not line.ok]
    if failed:
        out.write(f"VERDICT: not ready: {len(failed)} problem(s) above\n")
        return 1
    out.write("VERDICT: ready: `gamebridge run` will play with this configuration\n")
    return 0

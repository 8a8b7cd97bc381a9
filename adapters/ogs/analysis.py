"""The engine's thinking as OGS shows it: a ``game/chat`` body of type ``analysis`` (goban's
``GameChatAnalysisMessage``: ``type``, ``name``, ``from`` = the number of moves before the variation starts,
``moves`` = the variation in two-letter coordinates, ``marks`` = ``{circle: first move}``,
``engine_analysis {win_rate, score?, visits?}``), which OGS renders as a clickable variation on the board. Built
here (the client) and checked here (the sandbox), so that both read the shape the same way."""

from __future__ import annotations

from typing import Any

from bridge.adapters.ogs.codec import decode_point, encode_point
from bridge.games.go_analysis import EngineAnalysis
from bridge.games.gotypes import Move


def analysis_body(analysis: EngineAnalysis, from_move: int) -> dict[str, Any]:
    """The chat body for ``analysis`` of the position after ``from_move`` moves."""
    moves = "".join(encode_point(m) for m in analysis.pv)
    engine: dict[str, Any] = {"win_rate": round(analysis.win_rate, 2)}
    if analysis.score is not None:
        engine["score"] = round(analysis.score, 2)
    if analysis.visits is not None:
        engine["visits"] = analysis.visits
    if analysis.playouts is not None:
        engine["playouts"] = analysis.playouts
    return {"type": "analysis", "name": analysis.title(), "from": from_move, "moves": moves,
            "marks": {"circle": moves[:2]}, "engine_analysis": engine}


def read_analysis_body(body: Any, moves_so_far: int) -> tuple[int, list[Move]]:
    """Check an ``analysis`` chat body; its ``from`` and its variation as moves. ValueError says what is wrong."""
    if not isinstance(body, dict) or body.get("type") != "analysis":
        raise ValueError("not an analysis body: {type: \"analysis\", ...} expected")
    start = body.get("from", 0)
    if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start <= moves_so_far:
        raise ValueError(f"analysis 'from' {start!r} is not a move number of this game (0-{moves_so_far})")
    text = body.get("moves", "")
    if not isinstance(text, str) or len(text) % 2:
        raise ValueError(f"analysis 'moves' {str(text)[:40]!r} is not a string of two-letter coordinates")
    variation = [decode_point(text[i:i + 2]) for i in range(0, len(text), 2)]
    for key in ("name",):
        if key in body and not isinstance(body[key], str):
            raise ValueError(f"analysis {key!r} must be a string")
    marks = body.get("marks", {})
    if not isinstance(marks, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in marks.items()):
        raise ValueError("analysis 'marks' must map mark names to coordinate strings")
    engine = body.get("engine_analysis")
    if engine is not None:
        if not isinstance(engine, dict) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in engine.values()):
            raise ValueError("analysis 'engine_analysis' must map names to numbers")
        if "win_rate" not in engine:
            raise ValueError("analysis 'engine_analysis' needs a win_rate")
    return start, variation

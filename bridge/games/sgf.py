"""SGF (FF[4]) records of Go games: written for every finished game, read back by the tests."""

from __future__ import annotations

import datetime as _dt
import re

from bridge.games.gotypes import GoState, Move, Point

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_RULES = {"chinese": "Chinese", "japanese": "Japanese", "korean": "Korean", "aga": "AGA", "ing": "Ing",
          "nz": "NZ"}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("]", "\\]")


def _point(p: Point) -> str:
    return _LETTERS[p[0]] + _LETTERS[p[1]]


def _move(m: Move) -> str:
    return "" if m is None else _point(m)


def _time_props(state: GoState) -> str:
    tc = state.settings.time_control
    if tc.system == "fischer":
        return f"TM[{tc.initial_time:g}]OT[fischer {tc.time_increment:g}s increment, max {tc.max_time:g}s]"
    if tc.system == "byoyomi":
        return f"TM[{tc.main_time:g}]OT[{tc.periods}x{tc.period_time:g} byo-yomi]"
    if tc.system == "canadian":
        return f"TM[{tc.main_time:g}]OT[{tc.stones_per_period}/{tc.period_time:g} Canadian]"
    if tc.system == "absolute":
        return f"TM[{tc.total_time:g}]OT[none (absolute)]"
    if tc.system == "simple":  # no main time; every move has its own fixed time
        return f"TM[0]OT[{tc.per_move:g}s per move (simple)]"
    # "none" (and anything unknown): no main time, no overtime; OT says there is no clock at all
    return "TM[0]OT[no time limit]"


def to_sgf(state: GoState, *, server: str = "", date: _dt.date | None = None) -> str:
    s = state.settings
    size = f"{s.width}" if s.width == s.height else f"{s.width}:{s.height}"
    props = [
        "FF[4]", "GM[1]", "CA[UTF-8]", "AP[bridge:0.1]", f"SZ[{size}]", f"KM[{s.komi:g}]",
        f"RU[{_RULES.get(s.rules, _escape(s.rules))}]",
        f"PB[{_escape(s.black_name)}]", f"PW[{_escape(s.white_name)}]",
        f"DT[{(date or _dt.date.today()).isoformat()}]", f"GN[{_escape(server)} game {_escape(state.game_id)}]",
    ]
    if s.handicap:
        props.append(f"HA[{s.handicap}]")
    props.append(_time_props(state))
    if state.result is not None:
        props.append(f"RE[{_escape(state.result.score or '?')}]")
    if s.initial_black:
        props.append("AB" + "".join(f"[{_point(p)}]" for p in s.initial_black))
    if s.initial_white:
        props.append("AW" + "".join(f"[{_point(p)}]" for p in s.initial_white))
    if s.initial_player == "white" and state.moves:
        props.append("PL[W]")
    nodes = [";" + "".join(p for p in props if p)]
    for i, move in enumerate(state.moves):
        color = "B" if state.color_of_move(i) == "black" else "W"
        nodes.append(f";{color}[{_move(move)}]")
    return "(" + "\n".join(nodes) + ")\n"


_NODE_MOVE = re.compile(r";\s*([BW])\[([a-zA-Z]{0,2})\]")


def read_sgf_moves(text: str) -> list[tuple[str, Move]]:
    """The main line's moves of a simple (unbranched) SGF as ``[("B", (3, 3)), ("W", None), ...]``."""
    out: list[tuple[str, Move]] = []
    for color, coord in _NODE_MOVE.findall(text):
        if coord in ("", "tt"):
            out.append((color, None))
        else:
            out.append((color, (_LETTERS.index(coord[0]), _LETTERS.index(coord[1]))))
    return out


def read_sgf_property(text: str, name: str) -> str | None:
    m = re.search(rf"(?<![A-Z]){name}\[((?:[^\]\\]|\\.)*)\]", text)
    return m.group(1) if m else None

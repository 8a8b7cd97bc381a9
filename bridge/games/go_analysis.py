"""What a Go engine thinks of its move: its principal variation (PV), win rate, score lead and visits.

Two sources, both read here and nowhere else:

- **GTP analysis extensions**, answered on stdout as part of the move itself (no scraping):
  ``kata-genmove_analyze`` (KataGo: ``info move D4 visits 120 winrate 0.55 scoreLead 1.5 ... order 0 pv D4 Q16``,
  win rates in [0, 1]) and ``lz-genmove_analyze`` (Leela Zero, KataGo too: ``info move D4 visits 120 winrate 5500
  ... order 0 pv D4 Q16``, win rates in ten-thousandths), each ending with ``play D4``. :func:`parse_genmove_analyze`.
- **stderr**, for engines run with plain ``genmove`` (:class:`StderrPvParser`, one per engine process), in the
  formats the engines print (public in their sources):

  - KataGo with ``ogsChatToStderr``: one line ``CHAT:Visits 4005 Winrate 41.71% ScoreLead -0.9 ScoreStdev 20.6
    PV C16 Q16 D4`` (``MALKOVICH:`` instead of ``CHAT:`` too; an optional ``(PDA 0.50)`` before ``PV``);
  - Leela Zero: per candidate ``D16 ->    6703 (V: 57.50%) (LCB: 57.46%) (N: 29.75%) PV: D16 C17 C16``, the chosen
    move first, then a summary ``17937 visits, 6257774 nodes, 17936 playouts, 1037 n/s``;
  - Leela 0.11: ``1435 visits, score 51.28% (from 51.10%) PV: F3 E3 E2 D2``.

Win rates are kept in percent (0-100) for the player to move, as OGS shows them. Anything that does not parse is
ignored: a garbage line never breaks a game (the caller logs it once).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.games.gotypes import Move, parse_gtp_vertex

ENGINE_FORMATS = ("katago", "leela_zero", "leela")


@dataclass(frozen=True)
class EngineAnalysis:
    """One engine's view of the position before its move, for the player to move."""

    pv: tuple[Move, ...]  # the principal variation, starting with the move the engine likes best
    win_rate: float  # percent, 0-100
    score: float | None = None  # points the player to move leads by
    visits: int | None = None
    playouts: int | None = None

    def title(self) -> str:
        """A short line for people: ``Win rate: 55.1%, Score: 1.5, Visits: 1234``."""
        parts = [f"Win rate: {self.win_rate:.1f}%"]
        if self.score is not None:
            parts.append(f"Score: {self.score:.1f}")
        if self.visits is not None:
            parts.append(f"Visits: {self.visits}")
        if self.playouts is not None:
            parts.append(f"Playouts: {self.playouts}")
        return ", ".join(parts)


class AnalysisError(ValueError):
    """A line in an analysis format that cannot be read (a number that is not one, a vertex off the board)."""


def _pv(text: str, width: int, height: int) -> tuple[Move, ...]:
    moves: list[Move] = []
    for token in text.split():
        try:
            moves.append(parse_gtp_vertex(token, width, height))
        except ValueError as exc:
            raise AnalysisError(f"PV move {token!r}: {exc}") from None
    if not moves:
        raise AnalysisError("an empty PV")
    return tuple(moves)


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise AnalysisError(f"{what} {text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise AnalysisError(f"{what} {text!r} is not a finite number")
    return value


def _win_rate(value: float) -> float:
    if not 0.0 <= value <= 100.0:
        raise AnalysisError(f"win rate {value} is not a percentage")
    return value


# --- GTP analysis extensions (stdout) ------------------------------------------------------------------------
_INFO_KEYS_WITH_LISTS = {"pv", "pvVisits", "pvEdgeVisits", "movesOwnership", "movesOwnershipStdev"}
_TOP_LEVEL = {"info", "rootInfo", "ownership", "ownershipStdev", "play"}


def parse_genmove_analyze(lines: list[str], width: int, height: int, *,
                          scale: float) -> tuple[str | None, EngineAnalysis | None]:
    """The answer of ``kata-genmove_analyze`` (``scale`` 1: win rates in [0, 1]) or ``lz-genmove_analyze``
    (``scale`` 10000): the final ``play`` argument (a vertex, ``pass`` or ``resign``; None if there is none) and
    the analysis of the best move (``order 0``, else the most visited; None if no ``info`` could be read).
    Raises nothing: unreadable ``info`` entries are skipped."""
    tokens = " ".join(line.strip() for line in lines if line.strip()).split()
    play: str | None = None
    best: tuple[tuple[int, int], EngineAnalysis] | None = None
    root_visits: int | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "play" and i + 1 < len(tokens):
            play = tokens[i + 1]
            i += 2
            continue
        if token == "rootInfo":
            j = i + 1
            while j + 1 < len(tokens) and tokens[j] not in _TOP_LEVEL:
                if tokens[j] == "visits":
                    try:
                        root_visits = int(tokens[j + 1])
                    except ValueError:
                        pass
                j += 2
            i = j
            continue
        if token != "info":
            i += 1
            continue
        j = i + 1
        fields: dict[str, str] = {}
        while j < len(tokens) and tokens[j] not in _TOP_LEVEL:
            key = tokens[j]
            if key in _INFO_KEYS_WITH_LISTS:
                k = j + 1
                while k < len(tokens) and tokens[k] not in _TOP_LEVEL and not _is_info_key(tokens[k]):
                    k += 1
                fields[key] = " ".join(tokens[j + 1:k])
                j = k
            else:
                fields[key] = tokens[j + 1] if j + 1 < len(tokens) else ""
                j += 2
        i = j
        try:
            analysis = EngineAnalysis(
                pv=_pv(fields.get("pv", ""), width, height),
                win_rate=_win_rate(_number(fields.get("winrate", ""), "winrate") * 100.0 / scale),
                score=_number(fields["scoreLead"], "scoreLead") if "scoreLead" in fields else None,
                visits=int(_number(fields.get("visits", "0"), "visits")),
            )
            order = int(_number(fields.get("order", "1000000"), "order"))
        except (AnalysisError, ValueError):
            continue
        rank = (order, -(analysis.visits or 0))
        if best is None or rank < best[0]:
            best = (rank, analysis)
    result = best[1] if best is not None else None
    if result is not None and root_visits is not None:
        result = EngineAnalysis(result.pv, result.win_rate, result.score, root_visits, result.playouts)
    return play, result


def _is_info_key(token: str) -> bool:
    """Whether a token starts the next key of an ``info`` entry (not a vertex of a list)."""
    return token in {"move", "visits", "edgeVisits", "utility", "winrate", "scoreMean", "scoreStdev", "scoreLead",
                     "scoreSelfplay", "prior", "lcb", "utilityLcb", "order", "weight", "noResultValue",
                     "isSymmetryOf"} | _INFO_KEYS_WITH_LISTS


# --- stderr ----------------------------------------------------------------------------------------------------
_KATAGO = re.compile(
    r"^(?:CHAT|MALKOVICH):Visits (?P<visits>\d+) Winrate (?P<wr>-?[\d.]+)% ScoreLead (?P<score>-?[\d.]+) "
    r"ScoreStdev (?P<stdev>-?[\d.]+) (?:\(PDA (?P<pda>-?[\d.]+)\) )?PV (?P<pv>.*)$")
_LZ_CANDIDATE = re.compile(
    r"^\s*(?P<move>[A-Za-z]\d+|pass) ->\s+(?P<visits>\d+) \(V:\s*(?P<wr>[\d.]+)%\)(?: \(LCB:\s*-?[\d.]+%\))? "
    r"\(N:\s*[\d.]+%\) PV: ?(?P<pv>.*)$")
_LZ_SUMMARY = re.compile(r"^(?P<visits>\d+) visits, (?P<nodes>\d+) nodes, (?P<playouts>\d+) playouts, \d+ n/s")
_LEELA = re.compile(r"^(?P<visits>\d+) visits, score (?P<wr>[\d.]+)% \(from [^)]*\) PV: (?P<pv>.*)$")


class StderrPvParser:
    """Reads one engine's stderr, line by line, into :class:`EngineAnalysis` (one per move searched).

    ``engine``: one of :data:`ENGINE_FORMATS`, or None to recognise it from the lines themselves. :meth:`feed`
    returns an analysis when a line completes one; a line in the format that cannot be read raises
    :class:`AnalysisError` (the caller logs it once and goes on); other lines are ignored."""

    def __init__(self, width: int, height: int, engine: str | None = None) -> None:
        if engine is not None and engine not in ENGINE_FORMATS:
            raise ValueError(f"unknown engine format {engine!r}; one of {', '.join(ENGINE_FORMATS)}")
        self.width = width
        self.height = height
        self.engine = engine
        self._lz_first: EngineAnalysis | None = None

    def feed(self, line: str) -> EngineAnalysis | None:
        line = line.rstrip("\r\n")
        if self.engine is None:
            self.engine = _detect(line)
            if self.engine is None:
                return None
        if self.engine == "katago":
            m = _KATAGO.match(line)
            if m is None:
                if line.startswith(("CHAT:Visits", "MALKOVICH:Visits")):
                    raise AnalysisError(f"a KataGo analysis line that cannot be read: {line[:120]!r}")
                return None
            return EngineAnalysis(_pv(m["pv"], self.width, self.height),
                                  _win_rate(_number(m["wr"], "Winrate")), _number(m["score"], "ScoreLead"),
                                  int(m["visits"]))
        if self.engine == "leela_zero":
            m = _LZ_CANDIDATE.match(line)
            if m is not None:
                if self._lz_first is None:  # the first candidate listed is the move chosen
                    self._lz_first = EngineAnalysis(_pv(m["pv"], self.width, self.height),
                                                    _win_rate(_number(m["wr"], "V")), None, int(m["visits"]))
                return None
            if " -> " in line and "PV:" in line:
                raise AnalysisError(f"a Leela Zero candidate line that cannot be read: {line[:120]!r}")
            m = _LZ_SUMMARY.match(line)
            if m is not None and self._lz_first is not None:
                first, self._lz_first = self._lz_first, None
                return EngineAnalysis(first.pv, first.win_rate, None, int(m["visits"]), int(m["playouts"]))
            return None
        m = _LEELA.match(line)  # leela
        if m is None:
            if " visits, score " in line and "PV:" in line:
                raise AnalysisError(f"a Leela analysis line that cannot be read: {line[:120]!r}")
            return None
        return EngineAnalysis(_pv(m["pv"], self.width, self.height), _win_rate(_number(m["wr"], "score")), None,
                              int(m["visits"]))


def _detect(line: str) -> str | None:
    if "KataGo" in line or _KATAGO.match(line):
        return "katago"
    if _LZ_CANDIDATE.match(line) or line.startswith("Leela Zero"):
        return "leela_zero"
    if line.startswith("MC winrate=") or _LEELA.match(line):
        return "leela"
    return None


# --- KataGo's analysis engine (JSON) ---------------------------------------------------------------------------
def analysis_of_move_info(info: dict[str, object], width: int, height: int, *, black_view: bool,
                          to_move: str) -> EngineAnalysis:
    """One ``moveInfos`` entry of a ``katago analysis`` answer (``pv`` a list of vertices, ``winrate`` in [0, 1],
    ``scoreLead``, ``visits``) as :class:`EngineAnalysis` for the player to move; ``black_view``: the query asked
    for ``reportAnalysisWinratesAs: BLACK``, so white's numbers are turned round."""
    pv = info.get("pv")
    if not isinstance(pv, list) or not all(isinstance(v, str) for v in pv):
        raise AnalysisError(f"moveInfo pv {str(pv)[:80]!r} is not a list of vertices")
    flip = black_view and to_move == "white"
    win = _number(str(info.get("winrate", "")), "winrate")
    if not 0.0 <= win <= 1.0:
        raise AnalysisError(f"moveInfo winrate {win} is not in [0, 1]")
    score = info.get("scoreLead")
    lead = _number(str(score), "scoreLead") if score is not None else None
    visits = info.get("visits")
    return EngineAnalysis(
        pv=_pv(" ".join(pv), width, height),
        win_rate=(1.0 - win if flip else win) * 100.0,
        score=(-lead if flip else lead) if lead is not None else None,
        visits=int(visits) if isinstance(visits, int | float) and not isinstance(visits, bool) else None)

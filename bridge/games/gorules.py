"""A Go referee: legal moves, captures, ko, scoring.  Pure Python, no I/O.

Coordinates are the neutral :data:`~bridge.games.gotypes.Point` ``(x, y)``: 0-based, x from the left, y from the
top.  A move is a point, or ``None`` for a pass.

Ko: the board enforces one of three rules, chosen per board (``ko=``):

- ``"simple"``: a move may not recreate the position as it stood before the opponent's last move (basic ko;
  what OGS enforces under Japanese and Korean rules, where longer cycles are allowed);
- ``"positional"``: a move may not recreate any earlier whole-board position (positional superko, PSK);
- ``"situational"``: a move may not recreate an earlier position that arose after a move by the same player
  (situational superko, SSK).  The initial position counts for both players.

Suicide (a move that leaves its own group without liberties and captures nothing) raises :class:`IllegalMove`
unless the board was made with ``allow_suicide=True`` (New Zealand and Ing rules), in which case the group is
removed and counted as captured by the opponent.  A single-stone suicide never changes the position, so a
superko rule still forbids it.

Scoring (:meth:`GoBoard.score`): area scoring (chinese, aga, nz, ing) counts living stones plus territory;
territory scoring (japanese, korean) counts territory plus prisoners (captured stones and stones marked dead).
White adds komi and, where the rules say so, a handicap compensation.  Territory is an empty region (after the
dead stones are lifted) that touches stones of one colour only.  Seki is not detected: an eye inside a seki
counts as territory under both systems.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from bridge.errors import BridgeError
from bridge.games.gotypes import Color, Move, Point

KoRule = Literal["simple", "positional", "situational"]
EMPTY, BLACK, WHITE = 0, 1, 2
_CODE: dict[str, int] = {"black": BLACK, "white": WHITE}
_COLOR: dict[int, Color] = {BLACK: "black", WHITE: "white"}


class IllegalMove(BridgeError):
    """A move the rules forbid.  ``reason`` is one of: ``off board``, ``occupied``, ``suicide``, ``ko``,
    ``superko``."""

    def __init__(self, color: Color, point: Point, reason: str, detail: str = "") -> None:
        self.color = color
        self.point = point
        self.reason = reason
        self.detail = detail
        text = f"illegal move: {color} at {point} ({reason})"
        super().__init__(f"{text}: {detail}" if detail else text)


# --- rule sets (OGS names and defaults, as OGS's goban library sets them) ------------------------------------
@dataclass(frozen=True)
class RuleSet:
    name: str
    area_scoring: bool  # True: stones + territory; False: territory + prisoners
    komi: float  # automatic komi for an even game
    ko: KoRule
    free_handicap: bool  # handicap stones placed by black as moves by default
    allow_suicide: bool
    handicap_bonus: Literal["none", "handicap", "handicap-1"]  # points given to white per handicap

    def auto_komi(self, handicap: int) -> float:
        """OGS's automatic komi: the even-game komi, or only its fractional part in a handicap game."""
        if handicap > 0:
            return self.komi - int(self.komi)
        return self.komi

    def handicap_compensation(self, handicap: int) -> int:
        if self.handicap_bonus == "handicap":
            return handicap
        if self.handicap_bonus == "handicap-1" and handicap > 0:
            return handicap - 1
        return 0


RULESETS: dict[str, RuleSet] = {
    "chinese": RuleSet("chinese", True, 7.5, "positional", True, False, "handicap"),
    "aga": RuleSet("aga", True, 7.5, "situational", False, False, "handicap-1"),
    "japanese": RuleSet("japanese", False, 6.5, "simple", False, False, "none"),
    "korean": RuleSet("korean", False, 6.5, "simple", False, False, "none"),
    "ing": RuleSet("ing", True, 7.5, "positional", True, True, "handicap"),
    "nz": RuleSet("nz", True, 7.0, "situational", True, True, "none"),
}


def ruleset(name: str) -> RuleSet:
    """The rule set called ``name`` (OGS names: chinese, aga, japanese, korean, ing, nz)."""
    try:
        return RULESETS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown rules {name!r}; expected one of {', '.join(RULESETS)}") from None


def fixed_handicap_points(width: int, height: int, handicap: int) -> list[Point] | None:
    """Where OGS puts ``handicap`` fixed handicap stones, or ``None`` when OGS uses free placement for this board
    and handicap (boards other than 9x9, 13x13, 19x19; handicap 1; more than 9)."""
    if width != height or width not in (9, 13, 19) or not 2 <= handicap <= 9:
        return None
    edge = 2 if width == 9 else 3
    lo, mid, hi = edge, width // 2, width - 1 - edge
    # stars[row][col]: rows from the top
    stars = [[(lo, lo), (mid, lo), (hi, lo)], [(lo, mid), (mid, mid), (hi, mid)], [(lo, hi), (mid, hi), (hi, hi)]]
    top_right_bottom_left = [stars[0][2], stars[2][0]]
    pts: list[Point] = []
    if handicap % 2 == 0 or handicap == 3:
        if handicap >= 8:
            pts += [stars[0][1], stars[2][1]]
        if handicap >= 6:
            pts += [stars[1][0], stars[1][2]]
        if handicap >= 4:
            pts.append(stars[0][0])
        if handicap >= 3:
            pts.append(stars[2][2])
        pts += top_right_bottom_left
    else:  # 5, 7, 9
        if handicap >= 9:
            pts += [stars[0][1], stars[2][1]]
        if handicap >= 7:
            pts += [stars[1][0], stars[1][2]]
        pts += [stars[1][1], stars[0][0], stars[2][2], *top_right_bottom_left]
    return pts


def default_komi(rules: str, handicap: int) -> float:
    """OGS's automatic komi when a game does not set one (:meth:`RuleSet.auto_komi`); 0 under rules OGS does not
    name."""
    rs = RULESETS.get(rules.lower())
    return rs.auto_komi(handicap) if rs is not None else 0.0


def default_free_handicap(rules: str, width: int, height: int, handicap: int) -> bool:
    """Whether black places the handicap stones as moves when a game does not say: the rules place them freely,
    or this board and handicap have no fixed placement (:func:`fixed_handicap_points` is ``None``)."""
    rs = RULESETS.get(rules.lower())
    return (rs is not None and rs.free_handicap) or fixed_handicap_points(width, height, handicap) is None


# --- board geometry, cached per size -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Geometry:
    width: int
    height: int
    neighbours: tuple[tuple[int, ...], ...]
    diagonals: tuple[tuple[int, ...], ...]
    on_edge: tuple[bool, ...]
    zobrist: tuple[tuple[int, ...], ...]  # [colour code][index]; row 0 unused
    side: tuple[int, int, int]  # key xor-ed in for situational superko, per colour code


@lru_cache(maxsize=64)
def _geometry(width: int, height: int) -> _Geometry:
    def idx(x: int, y: int) -> int:
        return y * width + x

    nbs: list[tuple[int, ...]] = []
    diags: list[tuple[int, ...]] = []
    edge: list[bool] = []
    for y in range(height):
        for x in range(width):
            nbs.append(tuple(idx(x + dx, y + dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))
                             if 0 <= x + dx < width and 0 <= y + dy < height))
            diags.append(tuple(idx(x + dx, y + dy) for dx, dy in ((1, 1), (-1, 1), (1, -1), (-1, -1))
                               if 0 <= x + dx < width and 0 <= y + dy < height))
            edge.append(x in (0, width - 1) or y in (0, height - 1))
    rng = random.Random(width * 1000 + height)  # fixed: hashes are stable across copies and runs
    n = width * height
    zob = (tuple([0] * n), tuple(rng.getrandbits(64) for _ in range(n)), tuple(rng.getrandbits(64) for _ in range(n)))
    side = (0, rng.getrandbits(64), rng.getrandbits(64))
    return _Geometry(width, height, tuple(nbs), tuple(diags), tuple(edge), zob, side)


# --- the board ---------------------------------------------------------------------------------------------
class GoBoard:
    """A Go position with its history (for ko), for any size from 1x1 to 25x25.

    ``black``/``white`` are initial stones (fixed handicap, or a set-up position); they are placed without
    captures and count as the starting position.  The board does not enforce whose turn it is: free handicap
    placement lets black play several moves in a row, and the game layer decides the order.
    """

    def __init__(self, width: int = 19, height: int | None = None, *, ko: KoRule = "positional",
                 allow_suicide: bool = False, black: Iterable[Point] = (), white: Iterable[Point] = ()) -> None:
        height = width if height is None else height
        if not (1 <= width <= 25 and 1 <= height <= 25):
            raise ValueError(f"board size {width}x{height} is outside 1x1..25x25")
        if ko not in ("simple", "positional", "situational"):
            raise ValueError(f"unknown ko rule {ko!r}; expected simple, positional or situational")
        self.width = width
        self.height = height
        self.ko: KoRule = ko
        self.allow_suicide = allow_suicide
        self._g = _geometry(width, height)
        self._cells = [EMPTY] * (width * height)
        self._hash = 0
        for color, points in ((BLACK, black), (WHITE, white)):
            for p in points:
                i = self._index(p, _COLOR[color])
                if self._cells[i] != EMPTY:
                    raise ValueError(f"initial stones overlap at {p}")
                self._cells[i] = color
                self._hash ^= self._g.zobrist[color][i]
        self.captures: dict[Color, int] = {"black": 0, "white": 0}  # stones captured BY each colour
        self.moves: list[tuple[Color, Move]] = []
        self.consecutive_passes = 0
        self._history: list[int] = [self._hash]  # position hash after each move (passes repeat it)
        self._seen: set[int] = {self._hash}
        self._seen_sit: set[int] = {self._hash ^ self._g.side[BLACK], self._hash ^ self._g.side[WHITE]}

    # -- access ---------------------------------------------------------------------------------------------
    def copy(self) -> GoBoard:
        new = GoBoard.__new__(GoBoard)
        new.width, new.height, new.ko, new.allow_suicide, new._g = (
            self.width, self.height, self.ko, self.allow_suicide, self._g)
        new._cells = self._cells.copy()
        new._hash = self._hash
        new.captures = dict(self.captures)
        new.moves = self.moves.copy()
        new.consecutive_passes = self.consecutive_passes
        new._history = self._history.copy()
        new._seen = set(self._seen)
        new._seen_sit = set(self._seen_sit)
        return new

    def get(self, point: Point) -> Color | None:
        """The colour of the stone at ``point``, or ``None`` if it is empty."""
        c = self._cells[self._index(point, "black")]
        return _COLOR.get(c)

    @property
    def stones(self) -> dict[Point, Color]:
        """Every stone on the board."""
        w = self.width
        return {(i % w, i // w): _COLOR[c] for i, c in enumerate(self._cells) if c != EMPTY}

    @property
    def position_hash(self) -> int:
        return self._hash

    def __str__(self) -> str:
        chars = {EMPTY: ".", BLACK: "X", WHITE: "O"}
        rows = [" ".join(chars[self._cells[y * self.width + x]] for x in range(self.width)) for y in range(self.height)]
        return "\n".join(rows)

    def _index(self, point: Point, color: Color) -> int:
        x, y = point
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise IllegalMove(color, point, "off board", f"the board is {self.width}x{self.height}")
        return y * self.width + x

    # -- groups ---------------------------------------------------------------------------------------------
    def _has_liberty(self, start: int) -> bool:
        cells, nbs = self._cells, self._g.neighbours
        color = cells[start]
        stack = [start]
        seen = {start}
        while stack:
            p = stack.pop()
            for n in nbs[p]:
                c = cells[n]
                if c == EMPTY:
                    return True
                if c == color and n not in seen:
                    seen.add(n)
                    stack.append(n)
        return False

    def _group(self, start: int) -> list[int]:
        cells, nbs = self._cells, self._g.neighbours
        color = cells[start]
        stack = [start]
        seen = {start}
        while stack:
            p = stack.pop()
            for n in nbs[p]:
                if cells[n] == color and n not in seen:
                    seen.add(n)
                    stack.append(n)
        return list(seen)

    def group(self, point: Point) -> tuple[set[Point], set[Point]]:
        """The stones of the group at ``point`` and its liberties (both empty if the point is empty)."""
        i = self._index(point, "black")
        if self._cells[i] == EMPTY:
            return set(), set()
        w = self.width
        stones = self._group(i)
        libs = {n for s in stones for n in self._g.neighbours[s] if self._cells[n] == EMPTY}
        return {(s % w, s // w) for s in stones}, {(n % w, n // w) for n in libs}

    # -- moves ----------------------------------------------------------------------------------------------
    def _attempt(self, i: int, color: Color, commit: bool) -> list[int]:
        """Place a stone of ``color`` at index ``i``.  Returns the captured indices (own stones if a permitted
        suicide).  Raises IllegalMove and leaves the board unchanged if the move is illegal.  When ``commit`` is
        false the board is restored afterwards in every case."""
        cells, nbs, zob = self._cells, self._g.neighbours, self._g.zobrist
        w = self.width
        point = (i % w, i // w)
        if cells[i] != EMPTY:
            raise IllegalMove(color, point, "occupied", "there is already a stone there")
        me = _CODE[color]
        opp = 3 - me
        cells[i] = me
        new_hash = self._hash ^ zob[me][i]
        captured: list[int] = []
        for n in nbs[i]:
            if cells[n] == opp and not self._has_liberty(n):
                grp = self._group(n)
                for g in grp:
                    cells[g] = EMPTY
                    new_hash ^= zob[opp][g]
                captured.extend(grp)
        suicide: list[int] = []
        if not captured and not self._has_liberty(i):
            if not self.allow_suicide:
                cells[i] = EMPTY
                raise IllegalMove(color, point, "suicide", "the stone would have no liberties and captures nothing")
            suicide = self._group(i)
            for g in suicide:
                cells[g] = EMPTY
                new_hash ^= zob[me][g]
        reason = ""
        if self.ko == "simple":
            if len(self._history) >= 2 and new_hash == self._history[-2]:
                reason = "ko"
        elif self.ko == "positional":
            if new_hash in self._seen:
                reason = "superko"
        elif new_hash ^ self._g.side[me] in self._seen_sit:
            reason = "superko"
        if reason or not commit:
            for g in suicide:
                cells[g] = me
            for g in captured:
                cells[g] = opp
            cells[i] = EMPTY
            if reason:
                detail = ("it would retake the ko at once" if reason == "ko"
                          else "it would repeat an earlier whole-board position")
                raise IllegalMove(color, point, reason, detail)
            return suicide or captured
        self._hash = new_hash
        self._history.append(new_hash)
        self._seen.add(new_hash)
        self._seen_sit.add(new_hash ^ self._g.side[me])
        if suicide:
            self.captures["white" if color == "black" else "black"] += len(suicide)
            return suicide
        self.captures[color] += len(captured)
        return captured

    def play(self, color: Color, point: Move) -> list[Point]:
        """Play a move (``None`` passes).  Returns the stones it captured.  Raises :class:`IllegalMove` (with the
        reason) and leaves the board unchanged if the rules forbid the move."""
        if color not in _CODE:
            raise ValueError(f"colour must be 'black' or 'white', not {color!r}")
        if point is None:
            self.moves.append((color, None))
            self.consecutive_passes += 1
            self._history.append(self._hash)
            return []
        i = self._index(point, color)
        taken = self._attempt(i, color, commit=True)
        self.moves.append((color, point))
        self.consecutive_passes = 0
        w = self.width
        return [(t % w, t // w) for t in taken]

    def is_legal(self, color: Color, point: Move) -> bool:
        if point is None:
            return True
        x, y = point
        if not (0 <= x < self.width and 0 <= y < self.height):
            return False
        return self._legal_index(y * self.width + x, _CODE[color], color)

    def _legal_index(self, i: int, me: int, color: Color) -> bool:
        cells = self._cells
        if cells[i] != EMPTY:
            return False
        # fast path: a free neighbour and no opponent's stone beside: no suicide and no capture, so the new position
        # is the old one plus this stone (beside an opponent's stone a capture may change it: the full attempt)
        nbs = self._g.neighbours[i]
        opp = 3 - me
        if EMPTY in (cells[n] for n in nbs) and opp not in (cells[n] for n in nbs):
            h = self._hash ^ self._g.zobrist[me][i]
            if self.ko == "simple":
                return len(self._history) < 2 or h != self._history[-2]
            if self.ko == "positional":
                return h not in self._seen
            return h ^ self._g.side[me] not in self._seen_sit
        try:
            self._attempt(i, color, commit=False)
        except IllegalMove:
            return False
        return True

    def legal_moves(self, color: Color) -> list[Point]:
        """Every point where ``color`` may play now (passing is always legal and not listed)."""
        me = _CODE[color]
        w = self.width
        return [(i % w, i // w) for i, c in enumerate(self._cells)
                if c == EMPTY and self._legal_index(i, me, color)]

    # -- helpers for simple players -------------------------------------------------------------------------
    def is_eye(self, point: Point, color: Color) -> bool:
        """True if ``point`` is an empty point surrounded by ``color`` that is a real eye (not a false eye by the
        diagonal test).  Filling it would be pointless for a random player."""
        return self._is_eye(self._index(point, color), _CODE[color])

    def _is_eye(self, i: int, me: int) -> bool:
        cells = self._cells
        if cells[i] != EMPTY:
            return False
        for n in self._g.neighbours[i]:
            if cells[n] != me:
                return False
        opp = 3 - me
        bad = sum(1 for d in self._g.diagonals[i] if cells[d] == opp)
        return bad < (1 if self._g.on_edge[i] else 2)

    def random_move(self, color: Color, rng: random.Random | None = None) -> Point | None:
        """A uniformly random legal move that does not fill one of ``color``'s own eyes, or ``None`` (pass) when
        no such move exists."""
        rng = rng or random.Random()
        me = _CODE[color]
        empties = [i for i, c in enumerate(self._cells) if c == EMPTY]
        rng.shuffle(empties)
        w = self.width
        for i in empties:
            if not self._is_eye(i, me) and self._legal_index(i, me, color):
                return (i % w, i // w)
        return None

    def playout(self, to_move: Color = "black", rng: random.Random | None = None, max_moves: int | None = None) -> int:
        """Play random non-eye-filling moves for both sides until two passes in a row (or ``max_moves``).
        Returns the number of moves played.  Used by benchmarks and simple players."""
        rng = rng or random.Random()
        limit = max_moves if max_moves is not None else 3 * self.width * self.height
        color = to_move
        played = 0
        passes = 0
        while played < limit and passes < 2:
            mv = self.random_move(color, rng)
            self.play(color, mv)
            passes = passes + 1 if mv is None else 0
            played += 1
            color = "white" if color == "black" else "black"
        return played

    # -- scoring --------------------------------------------------------------------------------------------
    def territory(self, dead: Iterable[Point] = ()) -> dict[Color, set[Point]]:
        """Empty points (after lifting ``dead`` stones) enclosed by one colour only."""
        cells = self._cells.copy()
        for pt in dead:
            cells[self._index(pt, "black")] = EMPTY
        nbs = self._g.neighbours
        w = self.width
        result: dict[Color, set[Point]] = {"black": set(), "white": set()}
        visited = [False] * len(cells)
        for start, c in enumerate(cells):
            if c != EMPTY or visited[start]:
                continue
            region = [start]
            visited[start] = True
            borders = 0
            k = 0
            while k < len(region):
                cur = region[k]
                k += 1
                for n in nbs[cur]:
                    cn = cells[n]
                    if cn == EMPTY:
                        if not visited[n]:
                            visited[n] = True
                            region.append(n)
                    else:
                        borders |= cn
            if borders in (BLACK, WHITE):
                result[_COLOR[borders]].update((r % w, r // w) for r in region)
        return result

    def score_detail(self, komi: float, rules: str, dead: Iterable[Point] = (),
                     handicap: int = 0) -> dict[Color, dict[str, float]]:
        """Each side's score broken down as OGS reports it: stones, territory, prisoners, handicap, komi, total."""
        rs = ruleset(rules)
        dead_set = set(dead)
        dead_by: dict[Color, int] = {"black": 0, "white": 0}
        for p in dead_set:
            owner = self.get(p)
            if owner is None:
                raise ValueError(f"dead stone {p} is not on the board")
            dead_by[owner] += 1
        terr = self.territory(dead_set)
        out: dict[Color, dict[str, float]] = {}
        for color in ("black", "white"):
            other: Color = "white" if color == "black" else "black"
            alive = sum(1 for p, c in self.stones.items() if c == color and p not in dead_set)
            d = {"stones": float(alive) if rs.area_scoring else 0.0,
                 "territory": float(len(terr[color])),
                 "prisoners": 0.0 if rs.area_scoring else float(self.captures[color] + dead_by[other]),
                 "handicap": float(rs.handicap_compensation(handicap)) if color == "white" else 0.0,
                 "komi": float(komi) if color == "white" else 0.0}
            d["total"] = d["stones"] + d["territory"] + d["prisoners"] + d["handicap"] + d["komi"]
            out[color] = d
        return out

    def score(self, komi: float, rules: str, dead: Iterable[Point] = (), handicap: int = 0) -> tuple[float, float]:
        """``(black_score, white_score)`` under ``rules`` (area: chinese, aga, nz, ing; territory: japanese,
        korean) with the ``dead`` stones removed."""
        d = self.score_detail(komi, rules, dead, handicap)
        return d["black"]["total"], d["white"]["total"]

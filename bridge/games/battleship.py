"""The bridge's Battleship player: keeps a line-protocol engine (:class:`~bridge.engines.line.LineEngine`)
in step with one game and answers its turns, never leaving a turn unanswered.

The adapter (e.g. Open Games) turns each state it reads into a :class:`BattleshipView` -- a server-neutral
snapshot of the game from our side -- and calls:

- :meth:`BattleshipPlayer.observe` with every view at our turn: the player tells the engine what changed
  since the last one (the opponent's shot and its result, or ``opponent_moved`` when a turn passed without a
  new shot; our own shots whose results it was not told; ``place`` for each of our ships that the server shows
  elsewhere than the engine believes). Views are snapshots: telling one twice tells nothing new.
- :meth:`BattleshipPlayer.decide` for the turn's action: ``movable`` then ``genmove`` with the time left, the
  answer checked against the rules model (:mod:`bridge.games.battleship_rules`) and the ships the server lets
  move. A crashed or hung engine is restarted and the whole game replayed into it (``engine.max_restarts``
  times a game); an invalid answer, no time left or no engine at all give a **fallback** action: a shot at the
  likeliest unshot cell from a probability density over the opponent's unsunk ships. No turn is forfeited.
- :meth:`BattleshipPlayer.own_shot` / :meth:`own_moved` / :meth:`rejected` with what became of the action.

Every line to and from the engine, and a note for every incident, go to the game's transcript.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bridge.engines.line import EngineTurn, LineEngine
from bridge.errors import ConfigError, EngineError
from bridge.games.battleship_rules import (
    Board,
    Cell,
    Rules,
    RulesError,
    Ship,
    ShipSpec,
    ShotResult,
    all_placements,
    cell_name,
)
from bridge.transcript import Transcript

log = logging.getLogger("bridge.battleship")

MIN_THINK = 1.0  # seconds: below this, the engine is not asked (the fallback shot is sent at once)
BOOKKEEPING_TIMEOUT = 5.0  # seconds for every command but genmove (the engine answers them in milliseconds)
HIT_BOOST = 30.0  # fallback density: weight factor of a placement per open hit it covers


# --- the server-neutral snapshot --------------------------------------------------------------------------
@dataclass(frozen=True)
class OwnShip:
    """One of our ships as the server shows it."""

    ship: Ship
    hits: frozenset[Cell] = frozenset()
    sunk: bool = False
    can_move: bool = True


@dataclass(frozen=True)
class BattleshipView:
    """A game as the server shows it to us at one moment. Cells are ``(row, col)`` (see battleship_rules).

    Shots are lists: a server listing a missed cell once per shot lets the player see a shot at an old miss;
    a server listing each cell once hides it (the player then reports that turn as a ship move)."""

    player: int  # 1 or 2; player 1 moves first
    turn: int
    my_turn: bool
    ships: tuple[OwnShip, ...]
    opponent_hits: tuple[Cell, ...] = ()
    opponent_misses: tuple[Cell, ...] = ()
    my_hits: tuple[Cell, ...] = ()
    my_misses: tuple[Cell, ...] = ()
    sunk_ships: tuple[str, ...] = ()  # the opponent's ships we sank
    ships_remaining: int | None = None  # the opponent's ships afloat
    game_over: bool = False
    winner: Any = None  # as the server gives it (a player number, a name, an id...)
    turn_elapsed: float = 0.0
    turn_timeout: float = 180.0
    rows: int = 10
    cols: int = 10
    rules: Rules = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fleet = tuple(ShipSpec(s.ship.name, s.ship.length) for s in self.ships)
        try:
            rules = Rules(self.rows, self.cols, fleet, moves_enabled=True)
        except RulesError as exc:
            raise ValueError(f"the fleet is not a Battleship fleet: {exc}") from None
        object.__setattr__(self, "rules", rules)
        for s in self.ships:
            if not all(rules.on_board(c) for c in s.ship.cells):
                raise ValueError(f"ship {s.ship} lies off the {self.rows}x{self.cols} board")
        for what, cells in (("opponent_hits", self.opponent_hits), ("opponent_misses", self.opponent_misses),
                            ("my_hits", self.my_hits), ("my_misses", self.my_misses)):
            for c in cells:
                if not rules.on_board(c):
                    raise ValueError(f"{what} holds {c}, off the {self.rows}x{self.cols} board")

    @property
    def fleet(self) -> dict[str, Ship]:
        return {s.ship.name: s.ship for s in self.ships}

    def own(self, name: str) -> OwnShip:
        for s in self.ships:
            if s.ship.name.lower() == name.lower():
                return s
        raise KeyError(name)

    def board(self) -> Board:
        """Our fleet in the rules model, with the opponent's hits on it. Raises RulesError (ships overlap)."""
        board = Board(self.rules, (s.ship for s in self.ships))
        occupied = {c for s in self.ships for c in s.ship.cells}
        board.hits = set(self.opponent_hits) & occupied
        board.misses = set(self.opponent_misses) - occupied
        return board

    def movable(self) -> list[str]:
        """Our ships the server says may move (``can_move``) and the rules let move (no hit, not sunk)."""
        hits = set(self.opponent_hits)
        return [s.ship.name for s in self.ships
                if s.can_move and not s.sunk and not s.hits and not hits.intersection(s.ship.cells)]

    @property
    def all_mine_sunk(self) -> bool:
        return bool(self.ships) and all(s.sunk for s in self.ships)

    @property
    def all_theirs_sunk(self) -> bool:
        if self.ships_remaining is not None:
            return self.ships_remaining == 0
        names = {n.lower() for n in self.sunk_ships}
        return all(s.ship.name.lower() in names for s in self.ships)


# --- the fallback action ----------------------------------------------------------------------------------
def fallback_shot(view: BattleshipView, exclude: Collection[Cell] = ()) -> tuple[Cell, str]:
    """The likeliest cell to hit among the cells not hit yet (and not in ``exclude``), preferring cells never
    shot, from a probability density over the placements of the opponent's unsunk ships (placements over our
    misses are ruled out, those over open hits are favoured). Returns the cell and a one-line reason."""
    rules = view.rules
    hits = set(view.my_hits)
    misses = set(view.my_misses)
    sunk = {n.lower() for n in view.sunk_ships}
    afloat = [s for s in rules.fleet if s.name.lower() not in sunk]
    sunk_cells = sum(s.length for s in rules.fleet if s.name.lower() in sunk)
    open_hits = len(hits) > sunk_cells  # some hit belongs to a ship still afloat
    everything = [(r, c) for r in range(rules.rows) for c in range(rules.cols)]
    density: dict[Cell, float] = dict.fromkeys(everything, 0.0)
    for spec in afloat:
        for ship in all_placements(rules.rows, rules.cols, spec.name, spec.length):
            cells = ship.cells
            if misses.intersection(cells):
                continue
            covered = len(hits.intersection(cells)) if open_hits else 0
            if covered == len(cells):
                continue
            weight = HIT_BOOST ** covered
            for c in cells:
                if c not in hits:
                    density[c] += weight
    candidates = [c for c in everything if c not in hits and c not in exclude]
    if not candidates:  # cannot happen in a game that is not over; keep a legal-looking answer anyway
        candidates = [c for c in everything if c not in hits] or everything
    unshot = [c for c in candidates if c not in misses]
    pool = unshot or candidates
    best = max(pool, key=lambda c: (density[c], -c[0], -c[1]))
    total = sum(density[c] for c in pool)
    share = f" ({100 * density[best] / total:.0f}% of the estimated hit chances)" if total > 0 else ""
    mode = "targeting an open hit" if open_hits else "hunting"
    return best, f"{mode}: {cell_name(best)} is the likeliest unshot cell{share}"


# --- the player -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """A turn's action: the engine's, or the fallback's (``source``), with why the fallback was used."""

    turn: EngineTurn
    source: Literal["engine", "fallback"]
    why: str = ""


HistoryEntry = tuple[Literal["shot", "opponent_shot", "opponent_moved"], Cell | None, ShotResult | None]


class BattleshipPlayer:
    """Plays one game with the line engine started by ``command`` (None: no engine, fallback shots only).

    Not thread-safe: one game loop calls it."""

    def __init__(
        self,
        command: Sequence[str] | None,
        *,
        transcript: Transcript | None = None,
        name: str = "battleship",
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        startup_timeout: float = 20.0,
        quit_grace: float = 2.0,
        max_restarts: int = 3,
        max_move_time: float | None = None,
        move_margin: float = 0.0,
        label: str = "",
    ) -> None:
        self.command = list(command) if command else None
        self.transcript = transcript
        self.name = name
        self.cwd = cwd
        self.env = env
        self.startup_timeout = startup_timeout
        self.quit_grace = quit_grace
        self.max_restarts = max_restarts
        self.max_move_time = max_move_time
        self.move_margin = move_margin
        self.label = label or name
        self.engine: LineEngine | None = None
        self.rules: Rules | None = None
        self.history: list[HistoryEntry] = []
        self.placed: dict[str, Ship] = {}  # what the running engine believes of our ships
        self.starts = 0
        self.restarts = 0
        self.gave_up = self.command is None
        self.fallbacks = 0
        self.incidents: list[str] = []
        self._told_opp_hits: set[Cell] = set()
        self._told_opp_misses: Counter[Cell] = Counter()
        self._told_own_sunk: set[str] = set()
        self._told_my_hits: set[Cell] = set()
        self._told_my_misses: Counter[Cell] = Counter()
        self._told_their_sunk: set[str] = set()
        self._opponent_to_play = False
        self._replace_all = False
        self._started = False

    # --- notes ---------------------------------------------------------------------------------------------
    def note(self, text: str) -> None:
        if self.transcript is not None:
            self.transcript.note(text, self.name)

    def incident(self, text: str) -> None:
        """One clear line: in the log (WARNING) and the transcript."""
        self.incidents.append(text)
        log.warning("%s: %s", self.label, text)
        self.note(text)

    # --- the game ------------------------------------------------------------------------------------------
    def start(self, view: BattleshipView) -> None:
        """Begin the game from its first view (or a later one, when resuming): start the engine and tell it
        the board, the fleet and where our ships lie. An engine that fails to start is retried at our turn."""
        self.rules = view.rules
        self._started = True
        self._opponent_to_play = view.player == 2 and view.turn <= 2
        self.note(f"game: player {view.player}, turn {view.turn}, {view.rows}x{view.cols}, fleet "
                  + " ".join(f"{s.name}:{s.length}" for s in view.rules.fleet)
                  + "; ships: " + ", ".join(str(s.ship) for s in view.ships))
        if not self.gave_up:
            try:
                self._ensure_engine(view)
            except EngineError as exc:
                self._engine_failed(exc, "starting")

    def observe(self, view: BattleshipView) -> list[str]:
        """Tell the engine what ``view`` shows that it was not told yet; returns what happened, one item
        each."""
        if not self._started:
            self.start(view)
        events: list[str] = []
        # our own shots whose results were not told (an answer lost; a resumed game)
        new_hits = list(dict.fromkeys(c for c in view.my_hits if c not in self._told_my_hits))
        new_sunk = self._new_sunk(view)
        for cell in new_hits:
            ship = new_sunk.pop(0) if new_sunk and cell == new_hits[-1] else None
            result = ShotResult("sunk", ship) if ship else ShotResult("hit")
            self._record_own_shot(cell, result)
            events.append(f"our shot {cell_name(cell)}: {result} (from the state)")
        for cell, n in (Counter(view.my_misses) - self._told_my_misses).items():
            for _ in range(n):
                self._record_own_shot(cell, ShotResult("miss"))
                events.append(f"our shot {cell_name(cell)}: miss (from the state)")
        # the opponent's shots since the last view
        opp_events: list[tuple[Cell, ShotResult]] = []
        for cell, n in (Counter(view.opponent_misses) - self._told_opp_misses).items():
            opp_events += [(cell, ShotResult("miss"))] * n
        fleet = view.fleet
        fresh_hits = [c for c in dict.fromkeys(view.opponent_hits) if c not in self._told_opp_hits]
        for i, cell in enumerate(fresh_hits):
            owner = next((s for s in view.ships if cell in s.ship.cells), None)
            if owner is None:
                result = ShotResult("hit")
            else:
                later = any(c in fleet[owner.ship.name].cells for c in fresh_hits[i + 1:])
                sunk = owner.sunk or all(c in set(view.opponent_hits) for c in owner.ship.cells)
                if sunk and not later and owner.ship.name not in self._told_own_sunk:
                    result = ShotResult("sunk", owner.ship.name)
                else:
                    result = ShotResult("hit")
            opp_events.append((cell, result))
        for cell, result in opp_events:
            if result.hit:
                self._told_opp_hits.add(cell)
            else:
                self._told_opp_misses.update([cell])
            if result.ship:
                self._told_own_sunk.add(result.ship)
            self._tell("opponent_shot", cell, result)
            events.append(f"opponent shot {cell_name(cell)}: {result}")
        if not opp_events and self._opponent_to_play and view.my_turn:
            self._tell("opponent_moved", None, None)
            events.append("opponent moved ships (or shot an old miss again)")
        if view.my_turn:
            self._opponent_to_play = False
        if self.engine is not None:
            try:
                self._sync_ships(view)
            except EngineError as exc:
                self._engine_failed(exc, "placing our ships")
        for e in events:
            self.note(e)
        return events

    def decide(
        self,
        view: BattleshipView,
        deadline: float,
        movable: Iterable[str] | None = None,
        exclude: Collection[Cell] = (),
        use_engine: bool = True,
    ) -> Decision:
        """This turn's action; never raises for an engine's failure. ``deadline`` (``time.monotonic()``) is
        when the action must be on its way; ``movable``: the ships the server lists as movable (None: the
        view's ``can_move``); ``exclude``: cells the server refused this turn; ``use_engine`` False: the
        fallback shot at once (the server refused the engine's answers this turn)."""
        if not self._started:
            self.start(view)
        allowed = view.movable()
        if movable is not None:
            listed = {n.lower() for n in movable}
            allowed = [n for n in allowed if n.lower() in listed]
        why = public = ""
        if self.gave_up:
            why, public = "the engine gave up earlier in this game", "the engine is out of order"
        if not use_engine:
            why = public = "the platform refused the engine's actions this turn"
        while use_engine and not self.gave_up:
            if deadline - time.monotonic() < MIN_THINK:
                why = f"only {max(deadline - time.monotonic(), 0):.1f} s were left for the engine"
                public = "no time was left for the engine"
                break
            stage = "starting"
            try:
                engine = self._ensure_engine(view)
                stage = "being told the game"
                self._sync_ships(view)
                engine.movable(allowed)
                budget = deadline - time.monotonic()
                if self.max_move_time is not None:
                    budget = min(budget, self.max_move_time + self.move_margin)
                stage = "thinking (genmove)"
                turn = engine.genmove(timeout=max(budget, 0.1))
            except EngineError as exc:
                if stage == "thinking (genmove)" and self.engine is not None and self.engine.broken is None:
                    why = f"its answer was not usable ({exc})"
                    public = "the engine's answer was not usable"
                    self._replace_all = True
                    break
                failure = self._engine_failed(exc, stage, report=False)
                if not self.gave_up and deadline - time.monotonic() >= MIN_THINK:
                    self.incident(failure)  # and it is restarted at once, in this turn
                    continue
                why, public = failure, "the engine failed"
                break
            problem = self.check(turn, view, allowed, exclude)
            if problem is None:
                return Decision(turn, "engine")
            why = f"its answer '{turn}' breaks the rules: {problem}"
            public = f"the engine's answer '{turn}' breaks the rules: {problem}"
            if turn.moves:
                self._replace_all = True  # the engine assumes its moves were carried out
            break
        if not why:
            why = public = "the engine failed and no restart is left"
        return self._fallback(view, why, public, exclude)

    def check(
        self, turn: EngineTurn, view: BattleshipView, allowed: Collection[str], exclude: Collection[Cell] = ()
    ) -> str | None:
        """Why ``turn`` cannot be played in ``view`` (None: it can)."""
        if turn.shot is not None:
            if not view.rules.on_board(turn.shot):
                return f"{turn.shot} is off the board"
            if turn.shot in set(view.my_hits):
                return f"{cell_name(turn.shot)} was already hit (a hit cell cannot be shot again)"
            if turn.shot in exclude:
                return f"the server refused a shot at {cell_name(turn.shot)} this turn"
            return None
        names = {n.lower() for n in allowed}
        for mv in turn.moves:
            if mv.ship.lower() not in names:
                return f"ship {mv.ship} may not move this turn (movable: {', '.join(allowed) or 'none'})"
        try:
            view.board().after_moves(turn.moves)
        except RulesError as exc:
            return str(exc)
        return None

    def own_shot(
        self, cell: Cell, result: ShotResult | None = None, view: BattleshipView | None = None
    ) -> None:
        """Our shot at ``cell`` was carried out with ``result`` (None: read it from ``view``, a state after
        it)."""
        if result is None:
            if view is None:
                raise ValueError("own_shot needs a result or a view to read it from")
            if cell in set(view.my_hits):
                new_sunk = self._new_sunk(view)
                result = ShotResult("sunk", new_sunk[0]) if new_sunk else ShotResult("hit")
            else:
                result = ShotResult("miss")
        self._record_own_shot(cell, result)
        self._opponent_to_play = True

    def own_moved(self, turn: EngineTurn) -> None:
        """Our ship moves were carried out (the next view's positions are re-sent with ``place``)."""
        self.note(f"our ships moved: {turn}")
        self._opponent_to_play = True

    def rejected(self, turn: EngineTurn, reason: str) -> None:
        """The server refused ``turn``: the engine is told every ship again before it is asked again."""
        self.note(f"the server refused '{turn}': {reason}")
        self._replace_all = True

    def close(self) -> None:
        """Stop the engine (quit, then signals). Idempotent; never raises."""
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.close()

    def summary(self) -> str:
        return (f"{self.starts} engine start(s), {self.restarts} restart(s), {self.fallbacks} fallback "
                f"action(s), {len(self.incidents)} incident(s)")

    # --- inside --------------------------------------------------------------------------------------------
    def _new_sunk(self, view: BattleshipView) -> list[str]:
        """The opponent's ships the view shows sunk that the engine was not told of (spelt as our fleet spells
        them when it has the name: both fleets are the same)."""
        out = []
        for name in view.sunk_ships:
            if name.lower() not in self._told_their_sunk:
                try:
                    out.append(view.rules.spec(name).name)
                except RulesError:
                    out.append(name)
        return out

    def _record_own_shot(self, cell: Cell, result: ShotResult) -> None:
        if result.hit:
            self._told_my_hits.add(cell)
        else:
            self._told_my_misses.update([cell])
        if result.ship is not None:
            self._told_their_sunk.add(result.ship.lower())
        self._tell("shot", cell, result)

    def _tell(self, kind: Literal["shot", "opponent_shot", "opponent_moved"], cell: Cell | None,
              result: ShotResult | None) -> None:
        """Record an event in the game's history, and tell the running engine (a failure stops it: the next
        decision restarts it and replays the history, this event included)."""
        self.history.append((kind, cell, result))
        if self.engine is None:
            return
        try:
            self._send(self.engine, kind, cell, result)
        except EngineError as exc:
            self._engine_failed(exc, "telling it the game")

    @staticmethod
    def _send(engine: LineEngine, kind: str, cell: Cell | None, result: ShotResult | None) -> None:
        if kind == "shot":
            assert cell is not None and result is not None
            engine.shot_result(cell, result)
        elif kind == "opponent_shot":
            assert cell is not None and result is not None
            engine.opponent_shot(cell, result)
        else:
            engine.opponent_moved()

    def _ensure_engine(self, view: BattleshipView) -> LineEngine:
        """The running engine, or a new one told the whole game (new_game, board, fleet, our ships where the
        view shows them, then every shot and move of the history). Raises EngineError."""
        if self.engine is not None:
            return self.engine
        assert self.command is not None and self.rules is not None
        if self.starts > 0:
            self.restarts += 1
        self.starts += 1
        engine = LineEngine.start(self.command, name=self.name, cwd=self.cwd, env=self.env,
                                  transcript=self.transcript, startup_timeout=self.startup_timeout,
                                  quit_grace=self.quit_grace)
        engine.command_timeout = BOOKKEEPING_TIMEOUT
        try:
            engine.new_game(self.rules)
            engine.place_fleet(view.fleet.values())
            for kind, cell, result in self.history:
                self._send(engine, kind, cell, result)
        except BaseException:
            engine.close()
            raise
        if self.starts > 1:
            self.note(f"engine restarted ({self.restarts} of {self.max_restarts} restart(s)) and told the "
                      f"whole game: {len(self.history)} event(s) replayed")
        self.engine = engine
        self.placed = dict(view.fleet)
        self._replace_all = False
        return engine

    def _sync_ships(self, view: BattleshipView) -> None:
        """``place`` every ship the engine believes elsewhere than ``view`` shows it (all of them after a
        refusal)."""
        assert self.engine is not None
        for name, ship in view.fleet.items():
            if self._replace_all or self.placed.get(name) != ship:
                self.engine.place(ship)
                self.placed[name] = ship
        self._replace_all = False

    def _engine_failed(self, exc: BaseException, stage: str, report: bool = True) -> str:
        """Stop a failed engine; give up on engines for this game once ``max_restarts`` is used up. Returns
        the one-line account (also logged as an incident if ``report``)."""
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.close()
        left = self.max_restarts - self.restarts
        if left > 0:
            text = (f"the engine failed while {stage}: {exc}; it is restarted and told the whole game "
                    f"({left} restart(s) left in this game)")
        else:
            self.gave_up = True
            text = (f"the engine failed while {stage}: {exc}; no restart left (engine.max_restarts="
                    f"{self.max_restarts}): the rest of the game is played with the bridge's fallback shots")
        if report:
            self.incident(text)
        return text

    def fallback(self, view: BattleshipView, why: str, exclude: Collection[Cell] = ()) -> Decision:
        """The fallback shot, without asking the engine (``why``: also the public reason)."""
        return self._fallback(view, why, why, exclude)

    def _fallback(self, view: BattleshipView, why: str, public: str, exclude: Collection[Cell]) -> Decision:
        cell, reason = fallback_shot(view, exclude)
        self.fallbacks += 1
        if why == "the engine gave up earlier in this game":
            self.note(f"turn {view.turn}: fallback shot {cell_name(cell)}")
        else:
            self.incident(f"turn {view.turn}: {why}; sending the fallback shot {cell_name(cell)} instead")
        # the reasoning is public (spectators, the dataset): no paths, no engine details
        turn = EngineTurn(shot=cell, reasoning=f"Fallback ({public[:200]}): {reason}.")
        return Decision(turn, "fallback", why)


def make_player(ctx: Any, label: str = "") -> BattleshipPlayer:
    """The player for one game of the daemon: the configured line engine (``engine:``, protocol ``line``); its
    lines and the player's notes go to the game's transcript."""
    engine = ctx.config.engine
    if engine.protocol != "line":
        raise ConfigError(f"engine.protocol is {engine.protocol!r}, but Battleship needs an engine speaking "
                          f"the Battleship line protocol: set engine.protocol: line and engine.command to "
                          f"e.g. [python3, scripts/battleship_engine.py] (see docs/battleship-protocol.md)")
    return BattleshipPlayer(
        engine.command, transcript=ctx.transcript, name=engine_label(engine.command),
        cwd=engine.cwd, env=dict(engine.env) or None, startup_timeout=engine.startup_timeout,
        quit_grace=engine.quit_grace, max_restarts=engine.max_restarts, max_move_time=engine.max_move_time,
        move_margin=engine.move_margin, label=label or f"game {ctx.game_id}",
    )


def engine_label(command: Sequence[str]) -> str:
    """A short name for the engine in logs and transcripts: the program, or the script an interpreter runs."""
    program = Path(command[0]).name if command else "engine"
    if program.startswith(("python", "pypy", "node", "java", "ruby", "perl")) and len(command) > 1:
        script = next((c for c in command[1:] if not c.startswith("-")), "")
        if script:
            return Path(script).stem or program
    return program or "engine"

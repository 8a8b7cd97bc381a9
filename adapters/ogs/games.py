"""The games one bot account follows on OGS: discovery bookkeeping, the per-game state machine that turns the
server's game events into :class:`~bridge.games.gotypes.GoState` snapshots for the sessions, and the periodic
checks over all games (overdue game data, long pauses, the status counts).

Everything here runs under the adapter's lock: a server event on the transport's reader thread (which writes the
game's newest snapshot straight into its session's slot), the periodic checks on the adapter thread. The connection
is reached through :class:`Link`."""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bridge.adapters.ogs.codec import (
    SPEEDS,
    RawClock,
    as_int,
    corrected_clock,
    decode_move,
    decode_stones,
    describe_time_control,
    opt_id,
    parse_clock,
    parse_gamedata,
    parse_result,
    undo_payload,
    wire_id,
)
from bridge.events import GameInbox
from bridge.games.go_events import (
    ActionRejected,
    ChatReceived,
    GameAbandoned,
    GameEvent,
    GoActions,
    StateUpdate,
    UndoRequested,
)
from bridge.games.gotypes import ClockState, Color, GoResult, GoSettings, GoState, Move, Phase, Point, color_of_move
from bridge.redact import redact

log = logging.getLogger("bridge.ogs")

GAMEDATA_WAIT = 15.0  # seconds to wait for a game's gamedata before asking again
GAMEDATA_TRIES = 4  # game/connect attempts before the game is given up
FINISH_WAIT = 8.0  # seconds to wait for the final gamedata after a bare "finished" phase
PAUSE_RESUME_GAP = 30.0  # seconds between two game/resume of the same game
IGNORED_GAME_EVENTS = {"reset-chats", "latency", "auto_resign", "clear_auto_resign", "player_update",
                       "conditional_moves", "stalling_score_estimate", "chat/remove", "undo_canceled"}


class Link(Protocol):
    """What the games need from the adapter that holds the connection."""

    bot_id: int | None

    def send(self, command: str, data: Any) -> bool: ...

    def server_now_ms(self, wall_ms: float, mono: float) -> float: ...  # the server's clock at that instant

    def open_inbox(self, game_id: str, color: Color, actions: GoActions) -> GameInbox: ...


@dataclass
class Game:
    game_id: str
    wire_id: int | str
    actions: GoActions
    my_color: Color | None = None
    settings: GoSettings | None = None
    black_id: int | None = None
    white_id: int | None = None
    moves: list[Move] = field(default_factory=list)
    phase: Phase = "play"
    raw_clock: RawClock | None = None
    clock: ClockState | None = None
    paused: bool = False
    paused_since: float | None = None
    pause_reasons: frozenset[str] = frozenset()
    resume_sent: float = 0.0  # monotonic time of our last game/resume
    removal: frozenset[Point] = frozenset()
    accepted_stones: dict[Color, frozenset[Point]] = field(default_factory=dict)  # as goban tracks them
    result: GoResult | None = None
    inbox: GameInbox | None = None
    sync_id: int = 0
    needs_sync: bool = True  # the next gamedata is a (re)load: bump sync_id
    connect_sent: float = 0.0  # monotonic time of the last game/connect without an answer yet
    connect_tries: int = 0
    finish_deadline: float | None = None
    undo_requested: int | None = None
    undo_count: int = 1
    move_sent: int = 0  # the number our last game/move will have once the server echoes it; 0 after an undo or reload
    chat_ids: set[str] = field(default_factory=set)
    last_posted: GoState | None = None
    bad_gamedata_warned: bool = False  # one warning per game for unreadable gamedata frames
    opponent_hint: int | None = None  # the opponent before the gamedata says (accepted challenge, active_game)

    def chat_move_number(self) -> int:
        """The move a chat is posted at: our move once it is sent, even before the server echoes it (so a remark
        about our move is shown at it whichever comes first), else the last move on the board."""
        have = len(self.moves)
        return have + 1 if self.move_sent == have + 1 else have

    @property
    def speed(self) -> str:
        return self.settings.time_control.speed if self.settings else ""

    def opponent_id(self) -> int | None:
        if self.my_color == "black":
            return self.white_id
        if self.my_color == "white":
            return self.black_id
        return self.opponent_hint

    @property
    def removal_accepted(self) -> frozenset[Color]:
        """Who accepted the current proposal (goban: a player's accepted_stones equal the current removal)."""
        return frozenset(c for c, stones in self.accepted_stones.items() if stones == self.removal)

    def due(self) -> float:
        """When the periodic check must next look at this game (monotonic; inf: only when it is due anyway)."""
        if self.finish_deadline is not None:
            return self.finish_deadline
        if self.connect_sent:
            return self.connect_sent + GAMEDATA_WAIT
        return math.inf

    def snapshot(self) -> GoState | None:
        if self.settings is None:
            return None
        to_move = color_of_move(self.settings, len(self.moves))
        return GoState(game_id=self.game_id, settings=self.settings, moves=tuple(self.moves),
                       phase=self.phase, to_move=to_move, clock=self.clock, removal=self.removal,
                       removal_accepted=self.removal_accepted, result=self.result, sync_id=self.sync_id)


class Games:
    """The followed games, by id, and the recently finished ones (whose late events are ignored)."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self._by_id: dict[str, Game] = {}
        self._done: OrderedDict[str, None] = OrderedDict()
        self.next_due = math.inf  # the earliest per-game deadline (monotonic) set since the last check

    def get(self, game_id: str) -> Game | None:
        return self._by_id.get(game_id)

    def __iter__(self) -> Iterator[Game]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    # --- following and forgetting -----------------------------------------------------------------------
    def follow(self, game_id: str, actions: GoActions, opponent: int | None) -> None:
        if game_id in self._by_id or game_id in self._done:
            return
        game = Game(game_id=game_id, wire_id=wire_id(game_id), actions=actions, opponent_hint=opponent)
        self._by_id[game_id] = game
        log.info("following game %s", game_id)
        self.connect(game)

    def reconnected(self, now: float) -> None:
        """A new connection: ask for every game still in progress again (its next gamedata is a reload)."""
        for game in self._by_id.values():
            game.needs_sync = True
            self.connect(game, now)

    def connect(self, game: Game, now: float | None = None) -> None:
        game.connect_tries += 1
        game.connect_sent = now if now is not None else time.monotonic()
        self.next_due = min(self.next_due, game.due())
        self._link.send("game/connect", {"game_id": game.wire_id, "chat": True})

    def forget(self, game: Game) -> None:
        self._by_id.pop(game.game_id, None)
        self._done[game.game_id] = None
        while len(self._done) > 1000:
            self._done.popitem(last=False)
        self._link.send("game/disconnect", {"game_id": game.wire_id})

    def expect_end(self, game: Game) -> None:
        """The game ended but we lack the result: ask for the final gamedata and wait a little for it."""
        game.finish_deadline = time.monotonic() + FINISH_WAIT
        self.next_due = min(self.next_due, game.finish_deadline)
        self._reload(game)

    def _reload(self, game: Game) -> None:
        self._link.send("game/connect", {"game_id": game.wire_id, "chat": True})

    # --- the periodic checks (run on the adapter's timer, never per event) ----------------------------------
    def check(self, now: float) -> None:
        """Games whose final data or game data is overdue: ask again, or give them up. Sets ``next_due``."""
        self.next_due = math.inf
        for game in list(self._by_id.values()):
            if game.finish_deadline is not None and now >= game.finish_deadline:
                log.warning("game %s: the server sent no final game data after the end; closing it without "
                            "a result", game.game_id)
                self.forget(game)
                continue
            if game.connect_sent and now - game.connect_sent > GAMEDATA_WAIT:
                if game.connect_tries >= GAMEDATA_TRIES:
                    log.warning("game %s: no game data after %d requests; the bridge stops following it (its "
                                "clock runs on OGS): if the game is still on, restart the daemon to take it up "
                                "again", game.game_id, game.connect_tries)
                    self.post(game, GameAbandoned(f"the server sent no game data after {game.connect_tries} "
                                                  f"requests"))
                    self.forget(game)
                    continue
                log.info("game %s: still no game data; asking again", game.game_id)
                self.connect(game, now)
            self.next_due = min(self.next_due, game.due())

    def resume_long_pauses(self, now: float, limit: float, server_now_ms: float) -> None:
        """Like gtp2ogs: a pause by a player (and nothing else) longer than ``limit`` seconds is ended."""
        if limit <= 0:
            return
        for game in self._by_id.values():
            if (not game.paused or game.paused_since is None or game.pause_reasons != {"paused"}
                    or game.phase != "play" or now - game.resume_sent < PAUSE_RESUME_GAP):
                continue
            if server_now_ms - game.paused_since > limit * 1000.0:
                game.resume_sent = now
                log.info("game %s: paused for more than %g s; resuming it", game.game_id, limit)
                self._link.send("game/chat", {"game_id": game.wire_id, "type": "main",
                                              "move_number": len(game.moves),
                                              "body": "Maximum pause time reached, unpausing clock"})
                self._link.send("game/resume", {"game_id": game.wire_id})

    def status(self) -> dict[str, int]:
        """``bot/status``: the games in play (not paused, not finished) per speed."""
        counts = {f"ongoing_{s}_count": 0 for s in SPEEDS}
        for game in self._by_id.values():
            key = f"ongoing_{game.speed}_count"
            if key in counts and game.phase != "finished" and not game.paused:
                counts[key] += 1
        return counts

    # --- one game's events -----------------------------------------------------------------------------------
    def on_event(self, game: Game, kind: str, data: Any, wall_ms: float, mono: float) -> None:
        if kind == "gamedata":
            self._on_gamedata(game, data, wall_ms, mono)
            return
        if kind in IGNORED_GAME_EVENTS:
            return
        if kind == "error":
            message = redact(str(data))[:300]
            log.warning("game %s: the server refused our action: %s", game.game_id, message)
            self.post(game, ActionRejected(message))
            return
        if game.settings is None:
            log.debug("game %s: %s before its game data; ignored (the game data will carry it)", game.game_id,
                      kind)
            return
        if kind == "move":
            self._on_move(game, data)
        elif kind == "clock":
            self._on_clock(game, data, wall_ms, mono)
            self.post_state(game)
        elif kind == "phase":
            self._on_phase(game, data)
        elif kind == "removed_stones":
            self._on_removed_stones(game, data)
        elif kind == "removed_stones_accepted":
            self._on_removed_stones_accepted(game, data)
        elif kind == "undo_requested":
            number, count = undo_payload(data)
            game.undo_requested, game.undo_count = number, count or 1
            log.info("game %s: the opponent asks to undo (move %d)", game.game_id, number)
            self.post(game, UndoRequested(number))
        elif kind == "undo_accepted":
            _, count = undo_payload(data)
            steps = count or game.undo_count or 1
            if 0 < steps <= len(game.moves):
                del game.moves[-steps:]
            game.undo_requested = None
            game.move_sent = 0
            log.info("game %s: undo accepted: %d move(s) taken back", game.game_id, steps)
            self.post_state(game)
            self._reload(game)  # confirm with fresh data
        elif kind == "chat":
            self._on_chat(game, data)
        else:
            log.debug("game %s: event %s ignored", game.game_id, kind)

    def _on_gamedata(self, game: Game, data: Any, wall_ms: float, mono: float) -> None:
        gd = parse_gamedata(data)
        bot_id = self._link.bot_id
        if bot_id is not None and bot_id == gd.black_id:
            color: Color | None = "black"
        elif bot_id is not None and bot_id == gd.white_id:
            color = "white"
        else:
            color = None
        if color is None and (game.my_color is not None or gd.black_id is None or gd.white_id is None):
            # One frame that does not name its players (or names others in a game we already play) is a bad
            # frame, not news: the last good state stands, and a game we play is never dropped because of it.
            if not game.bad_gamedata_warned:
                game.bad_gamedata_warned = True
                log.warning("game %s: ignored a gamedata frame that does not name the bot as a player (black %s, "
                            "white %s); %s", game.game_id, gd.black_id, gd.white_id,
                            "keeping the last good state" if game.my_color is not None
                            else "waiting for a readable one")
            return
        game.connect_sent = 0.0
        game.connect_tries = 0
        if color is None:
            log.warning("game %s: we are not a player in it (black %s, white %s); not following it",
                        game.game_id, gd.black_id, gd.white_id)
            self.post(game, GameAbandoned("the bot is not a player of this game"))
            self.forget(game)
            return
        first = game.settings is None
        game.my_color = color
        game.black_id, game.white_id = gd.black_id, gd.white_id
        game.settings = GoSettings(
            width=gd.width, height=gd.height, komi=gd.komi, rules=gd.rules, my_color=color,
            handicap=gd.handicap, free_handicap=gd.free_handicap, initial_black=gd.initial_black,
            initial_white=gd.initial_white, initial_player=gd.initial_player, time_control=gd.time_control,
            black_name=gd.black_name, white_name=gd.white_name, ranked=gd.ranked)
        game.moves = list(gd.moves)
        game.move_sent = 0
        game.phase = gd.phase
        game.removal, game.accepted_stones = gd.removal, dict(gd.accepted_stones)
        if gd.paused is not None:
            game.paused, game.pause_reasons = gd.paused, gd.pause_reasons
        if gd.clock is not None:
            try:
                self._on_clock(game, gd.clock, wall_ms, mono)
            except ValueError as exc:
                log.warning("game %s: ignoring the malformed clock in its game data: %s", game.game_id, exc)
        if gd.phase == "finished":
            winner: Color | None = None
            if gd.winner_id is not None:
                winner = "black" if gd.winner_id == gd.black_id else "white" if gd.winner_id == gd.white_id \
                    else None
            game.result = parse_result(gd.outcome, winner)
        if game.needs_sync:
            game.sync_id += 1
            game.needs_sync = False
        if first:
            log.info("game %s: %s vs %s, %dx%d, %s, komi %g, handicap %d, %s; we play %s", game.game_id,
                     gd.black_name, gd.white_name, gd.width, gd.height, gd.rules, gd.komi, gd.handicap,
                     describe_time_control(gd.time_control), color)
        if gd.phase != "finished" and (game.inbox is None or game.inbox.finished):
            game.inbox = self._link.open_inbox(game.game_id, color, game.actions)
        self.post_state(game, force=True)
        if gd.phase == "finished":
            self.finish(game)

    def _on_move(self, game: Game, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise ValueError("expected an object")
        assert game.settings is not None
        number = as_int(data.get("move_number"), "move_number")
        move = decode_move(data.get("move"), game.settings.width, game.settings.height, "move")
        have = len(game.moves)
        if number <= have:
            if number >= 1 and game.moves[number - 1] != move:
                log.warning("game %s: move %d is %s here but the server now says %s; reloading the game",
                            game.game_id, number, game.moves[number - 1], move)
                self._reload(game)
            return  # a duplicate (replay after a reconnect, or an echo we already have)
        if number > have + 1:
            log.warning("game %s: move %d arrived but we have only %d moves; reloading the game",
                        game.game_id, number, have)
            self._reload(game)
            return
        game.moves.append(move)
        game.undo_requested = None
        if game.phase == "stone removal":  # a move means play resumed (a missed phase event)
            game.phase = "play"
            game.removal, game.accepted_stones = frozenset(), {}
        self.post_state(game)

    def _on_clock(self, game: Game, data: Any, wall_ms: float, mono: float) -> None:
        assert game.settings is not None
        tc = game.settings.time_control
        raw = parse_clock(data, tc)
        if raw.paused is not None:
            game.paused = raw.paused
            game.paused_since = raw.paused_since if raw.paused else None
            if raw.pause_reasons or not raw.paused:
                game.pause_reasons = raw.pause_reasons
        game.raw_clock = raw
        if raw.current_player is not None and raw.current_player == game.black_id:
            to_move: Color = "black"
        elif raw.current_player is not None and raw.current_player == game.white_id:
            to_move = "white"
        else:
            to_move = color_of_move(game.settings, len(game.moves))
        game.clock = corrected_clock(raw, tc, to_move, server_now_ms=self._link.server_now_ms(wall_ms, mono),
                                     received_at=mono, paused=game.paused, paused_since=game.paused_since)

    def _on_phase(self, game: Game, data: Any) -> None:
        if data not in ("play", "stone removal", "finished"):
            raise ValueError(f"unknown phase {data!r}")
        if data == game.phase:
            return
        log.info("game %s: phase %s", game.game_id, data)
        game.phase = data
        if data == "play":
            game.removal, game.accepted_stones = frozenset(), {}
            self._reload(game)  # resumed: fresh data
        self.post_state(game)
        if data == "finished" and game.result is None:
            self.expect_end(game)

    def _on_removed_stones(self, game: Game, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise ValueError("expected an object")
        if isinstance(data.get("all_removed"), str):
            removal = frozenset(decode_stones(data["all_removed"], "all_removed"))
        elif isinstance(data.get("stones"), str):
            stones = frozenset(decode_stones(data["stones"], "stones"))
            removal = game.removal | stones if data.get("removed") else game.removal - stones
        else:
            return  # e.g. {strict_seki_mode} only
        game.removal = removal
        self.post_state(game)

    def _on_removed_stones_accepted(self, game: Game, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise ValueError("expected an object")
        pid = opt_id(data.get("player_id"))
        color: Color | None = "black" if pid is not None and pid == game.black_id else \
            "white" if pid is not None and pid == game.white_id else None
        stones = frozenset(decode_stones(data["stones"], "stones")) if isinstance(data.get("stones"), str) \
            else game.removal
        if pid == 0:  # both players at once (goban)
            game.accepted_stones = {"black": stones, "white": stones}
        elif color is not None:
            game.accepted_stones[color] = stones
        if data.get("phase") == "finished":
            game.phase = "finished"
            wid = opt_id(data.get("winner"))
            winner: Color | None = "black" if wid is not None and wid == game.black_id else \
                "white" if wid is not None and wid == game.white_id else None
            if data.get("outcome"):
                game.result = parse_result(data.get("outcome"), winner)
            self.post_state(game)
            if game.result is not None:
                self.finish(game)
            else:
                self.expect_end(game)
            return
        self.post_state(game)

    def _on_chat(self, game: Game, data: Any) -> None:
        if not isinstance(data, Mapping) or not isinstance(data.get("line"), Mapping):
            raise ValueError("expected {channel, line{...}}")
        line = data["line"]
        body = line.get("body")
        if not isinstance(body, str):
            return  # analysis/review attachments
        chat_id = str(line.get("chat_id") or f"{line.get('date')}-{line.get('player_id')}-{body}")
        if chat_id in game.chat_ids:
            return  # resent after a reconnect
        game.chat_ids.add(chat_id)
        bot_id = self._link.bot_id
        if bot_id is not None and opt_id(line.get("player_id")) == bot_id:
            return
        channel = str(data.get("channel") or line.get("channel") or "main")
        self.post(game, ChatReceived(username=str(line.get("username") or "?"), body=body, channel=channel))

    # --- to the session ------------------------------------------------------------------------------------
    def post(self, game: Game, event: GameEvent) -> None:
        if game.inbox is None:
            return
        try:
            game.inbox.post(event)
        except Exception:
            log.exception("game %s: the %s event was dropped after an unexpected error (a bug: please report it "
                          "with this traceback); the game goes on with the next one", game.game_id,
                          type(event).__name__)

    def post_state(self, game: Game, force: bool = False) -> None:
        state = game.snapshot()
        if state is None or (not force and state == game.last_posted):
            return
        game.last_posted = state
        self.post(game, StateUpdate(state))

    def finish(self, game: Game) -> None:
        result = game.result
        if result is not None:  # the session says it at INFO, once (it acts on it: record, farewell)
            log.debug("game %s finished: %s (%s)", game.game_id, result.score, result.reason)
        self.forget(game)

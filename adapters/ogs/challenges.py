"""Challenges to the bot: the accept/decline decision against the limits, the REST calls that answer them, and
the reservations that count an accepted challenge until its game is followed.

The decision and the bookkeeping run on the adapter thread; the REST calls run on the adapter's worker pool and
report back through its queue (``("accepted", challenge, game id)`` or ``("accept_failed", challenge)``)."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bridge.adapters.ogs.api import OgsRest, RestError
from bridge.adapters.ogs.codec import opt_id
from bridge.adapters.ogs.config import OgsServerConfig
from bridge.adapters.ogs.games import Games
from bridge.adapters.ogs.policy import Challenge, Decision, decide, parse_challenge
from bridge.events import Host, engine_problem

log = logging.getLogger("bridge.ogs")

RESERVATION_TTL = 60.0  # an accepted challenge whose game never shows up stops counting this long after the accept
HANDLED_KEPT = 1000  # challenge ids remembered as answered (the server may notify the same challenge again)


class Desk(Protocol):
    """What challenge handling needs from the adapter."""

    server: OgsServerConfig
    stats: dict[str, int]

    def send(self, command: str, data: Any) -> bool: ...

    def max_games(self) -> int | None: ...

    def host(self) -> Host: ...

    def rest(self) -> OgsRest: ...

    def run_rest(self, fn: Callable[..., None], *args: Any) -> None: ...

    def enqueue(self, item: tuple[Any, ...]) -> None: ...


@dataclass
class Reservation:
    """A challenge the adapter decided to accept. It counts against every limit (the daemon's game cap, games
    per opponent) from that decision on: while the accept is in flight and until its game is followed, when the
    game itself (with the reservation's opponent) takes over. A failed accept releases it."""

    challenge_id: int
    user_id: int | None
    game_id: str | None
    accepted_at: float | None = None  # monotonic time the server confirmed the accept (None: in flight)


class Challenges:
    def __init__(self, desk: Desk, games: Games) -> None:
        self._desk = desk
        self._games = games
        self._handled: OrderedDict[int, None] = OrderedDict()
        self.reservations: dict[int, Reservation] = {}  # challenge id -> accepted, game not followed yet
        # the challenges the bot sent and that are not answered yet (server.seek): (count, of them to a user)
        self.outgoing: Callable[[int | None], tuple[int, int]] = lambda user_id: (0, 0)

    def on_notification(self, data: Any) -> None:
        """A ``notification`` event: a challenge is decided and answered; any other kind is deleted."""
        desk = self._desk
        if not isinstance(data, Mapping):
            raise ValueError("expected an object")
        ntype = data.get("type")
        if ntype != "challenge":
            if ntype != "delete" and data.get("id") is not None:
                desk.send("notification/delete", {"notification_id": data["id"]})
            log.debug("notification %s ignored", ntype)
            return
        cid = opt_id(data.get("challenge_id"))
        if cid is not None and cid in self._handled:
            log.debug("challenge %s already handled", cid)
            return
        try:
            challenge = parse_challenge(data)
        except ValueError as exc:
            desk.stats["bad_messages"] += 1
            log.warning("ignoring a malformed 'notification' (challenge %s) from the server: %s", cid, exc)
            if cid is not None:
                self._remember(cid)
                desk.run_rest(self._reject_unreadable, cid)
            return
        self._remember(challenge.challenge_id)
        host = desk.host()
        if engine_problem(host) is not None:  # no game while the engine cannot start: say so
            engine_down = Decision(False, "not_accepting_new_challenges",
                                   "This bot's engine cannot start right now; please try again later.")
            log.info("rejecting challenge %s from %s (id %s): the engine cannot start", challenge.challenge_id,
                     challenge.username, challenge.user_id)
            desk.run_rest(self._reject, challenge.challenge_id, engine_down.reason,
                          engine_down.rejection_details())
            return
        max_games = desk.max_games()
        active = host.active_games()
        uncounted, opponent_games = self.commitments(challenge.user_id)
        can = host.can_accept_game() and (max_games is None or active + uncounted < max_games)
        decision = decide(desk.server.accept, challenge, can_accept=can, active_games=active + uncounted,
                          max_games=max_games, games_with_opponent=opponent_games)
        who = f"{challenge.username} (id {challenge.user_id})"
        if decision.accept:
            log.info("accepting challenge %s from %s: %s", challenge.challenge_id, who, challenge.describe())
            desk.stats["challenges_accepted"] += 1
            # counted from now on, not from the server's answer: the next challenge in a burst sees it
            self.reservations[challenge.challenge_id] = Reservation(
                challenge.challenge_id, challenge.user_id,
                str(challenge.game_id) if challenge.game_id is not None else None)
            desk.run_rest(self._accept, challenge)
        else:
            log.info("rejecting challenge %s from %s (%s): %s: %s", challenge.challenge_id, who,
                     challenge.describe(), decision.code, decision.reason)
            desk.stats["challenges_declined"] += 1
            desk.run_rest(self._reject, challenge.challenge_id, decision.reason, decision.rejection_details())

    def _remember(self, cid: int) -> None:
        self._handled[cid] = None
        while len(self._handled) > HANDLED_KEPT:
            self._handled.popitem(last=False)

    def commitments(self, user_id: int | None) -> tuple[int, int]:
        """``(games the host does not count yet, games against user_id)`` over everything this adapter has
        committed to: challenges it sent (unanswered), reservations (accepted challenges not yet followed) and
        followed games not finished. The
        host counts a game once its session is open; a followed game waits for its gamedata to open one."""
        uncounted, with_user = self.outgoing(user_id)
        uncounted += len(self.reservations)
        with_user += sum(1 for r in self.reservations.values() if user_id is not None and r.user_id == user_id)
        for game in self._games:
            if game.phase == "finished":
                continue
            if game.inbox is None or game.inbox.finished:
                uncounted += 1
            if user_id is not None and game.opponent_id() == user_id:
                with_user += 1
        return uncounted, with_user

    def claim(self, game_id: str, opponent: int | None) -> int | None:
        """The game of an accepted challenge is followed: it counts from now on, not its reservation. Returns
        the opponent (``opponent``, else the reservation's)."""
        for cid in [cid for cid, res in self.reservations.items() if res.game_id == game_id]:
            opponent = opponent if opponent is not None else self.reservations[cid].user_id
            del self.reservations[cid]
        return opponent

    def on_accepted(self, challenge: Challenge, game_id: str | None) -> None:
        log.info("challenge %s accepted; game %s", challenge.challenge_id, game_id)
        res = self.reservations.get(challenge.challenge_id)
        if res is not None:
            res.accepted_at = time.monotonic()
            res.game_id = res.game_id or game_id

    def release(self, cid: int) -> None:
        """The accept failed: the challenge no longer counts against any limit."""
        self._desk.stats["accepts_failed"] += 1
        if self.reservations.pop(cid, None) is not None:
            log.info("challenge %s: not accepted after all; it no longer counts against the limits", cid)

    def expire(self, now: float) -> None:
        """Periodic: an accepted challenge whose game never showed up stops counting after RESERVATION_TTL."""
        for cid, res in list(self.reservations.items()):
            if res.accepted_at is not None and now - res.accepted_at > RESERVATION_TTL:
                del self.reservations[cid]
                log.warning("challenge %s was accepted %.0f s ago but its game %s never started; it no longer "
                            "counts against the limits", cid, now - res.accepted_at, res.game_id or "(unknown)")

    # --- on a REST worker --------------------------------------------------------------------------------
    def _accept(self, challenge: Challenge) -> None:
        """Always ends with "accepted" or "accept_failed" queued, so the reservation taken for this challenge
        becomes its game or is released."""
        rest = self._desk.rest()
        try:
            reply = rest.accept_challenge(challenge.challenge_id)
        except Exception as exc:  # RestError, or a bug: either way the reservation must not outlive it
            if not isinstance(exc, RestError):
                log.exception("accepting challenge %s failed", challenge.challenge_id)
            log.warning("accepting challenge %s failed: %s; declining it", challenge.challenge_id, exc)
            try:
                rest.reject_challenge(challenge.challenge_id,
                                      "Error accepting game challenge, challenge has been removed.")
            except RestError as exc2:
                log.warning("declining challenge %s failed too: %s", challenge.challenge_id, exc2)
            self._desk.enqueue(("accept_failed", challenge))
            return
        game_id = challenge.game_id
        if game_id is None and isinstance(reply, Mapping):
            game_id = opt_id(reply.get("game_id"))
        self._desk.enqueue(("accepted", challenge, str(game_id) if game_id is not None else None))

    def _reject(self, cid: int, message: str, details: dict[str, Any]) -> None:
        try:
            self._desk.rest().reject_challenge(cid, message, details)
        except RestError as exc:
            log.warning("rejecting challenge %s failed: %s", cid, exc)

    def _reject_unreadable(self, cid: int) -> None:
        try:
            self._desk.rest().reject_challenge(cid, "This bot could not read the challenge; please try again.")
        except RestError as exc:
            log.warning("declining unreadable challenge %s failed: %s", cid, exc)

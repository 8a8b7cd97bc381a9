"""Challenges the bot sends (``server.seek``): direct challenges to the listed opponents through the REST API, and
their fate (accepted: the game is followed like any other; declined; unanswered: cancelled after ``seek.timeout``).

The public facts this follows (online-go.com's web client, ``ChallengeModal``; ogsapi's ``create_challenge``):
``POST /api/v1/players/{id}/challenge`` with ``{challenger_color, min_ranking, max_ranking, game{name, rules,
ranked, width, height, handicap, komi_auto, komi, time_control, time_control_parameters, ...}}`` answers
``{challenge: ID, game: ID}``; the challenger keeps a live challenge alive with ``challenge/keepalive {challenge_id,
game_id}``; a decline reaches it as a ``notification`` of type ``gameOfferRejected`` with the ``game_id``, the
``message`` and the ``rejection_details``; an accepted challenge's game arrives as ``active_game``; ``DELETE
/api/v1/me/challenges/{id}`` cancels; ``GET /api/v1/me/challenges`` lists the challenges sent and received.

What :class:`~bridge.seek.Seeker` does not know about OGS is kept here: a challenge counts against every game cap
from the moment it is sent (in flight, then pending) until it is declined, cancelled, or its game is followed,
when the game itself counts. The create call is never retried: when its answer is lost (no answer, a 5xx), the
challenges we sent are listed and the one to that opponent adopted; nothing is re-sent before that is settled.

Open challenges (``seek.open``; ChallengeModal's mode "open", ``POST /api/v1/challenges``, cancelled as the web
client's CustomGames does, ``DELETE /api/v1/challenges/{id}``) name nobody: whoever accepts plays. Up to
``max_games`` of them (pending or playing) at once. No REST list is known to show one's own open challenges (the web
client lists them from the seek graph, entries whose ``user_id`` is its own), so the bot subscribes to the realtime
seek graph (``seek_graph/connect {channel: "global"}``; goban's protocol: ``seekgraph/global`` pushes lists of
challenge entries, ``{challenge_id, delete}`` and ``{challenge_id, game_started, game_id, creator, ...}``). A lost
create answer is settled from it: our own entry with the settings we sent, or the game it started; failing those,
a game for us that started since and that no incoming challenge explains. Until then nothing else is sent; after
``seek.timeout`` unsettled, the bot gives up looking (and follows the game if one still turns up).

Bookkeeping runs on the adapter thread; the REST calls on its worker pool, reporting back through its queue."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bridge.adapters.ogs.api import OgsRest, RestError
from bridge.adapters.ogs.codec import opt_id
from bridge.adapters.ogs.config import OgsSeekConfig
from bridge.adapters.ogs.games import Games
from bridge.events import Host, engine_problem
from bridge.seek import Seek, SeekConfig, Seeker

log = logging.getLogger("bridge.ogs")


class SeekDesk(Protocol):
    """What seeking needs from the adapter."""

    bot_id: int | None
    stats: dict[str, int]

    def send(self, command: str, data: Any) -> bool: ...

    def max_games(self) -> int | None: ...

    def host(self) -> Host: ...

    def rest(self) -> OgsRest: ...

    def run_rest(self, fn: Callable[..., None], *args: Any) -> None: ...

    def enqueue(self, item: tuple[Any, ...]) -> None: ...

    def uncounted_games(self) -> int: ...  # games committed to that the host does not count yet (ours included)


@dataclass
class Outgoing:
    """One challenge we send: in flight (no id yet), then pending until answered or cancelled."""

    seek: Seek
    sent_at: float  # monotonic
    describe: str
    opponent_id: int | None = None
    challenge_id: int | None = None
    game_id: str | None = None
    cancelling: bool = False
    games_before: frozenset[str] = frozenset()  # the games followed when it was sent
    draining: bool = False  # cancelled because the daemon drains (no backoff: the opponent did nothing)
    lost: bool = False  # the create call's answer was lost
    body: dict[str, Any] | None = None  # the create call's body (open challenges: matched on the seek graph)
    lost_at: float | None = None  # when the loss was known (open challenges: settling gives up after timeout)
    # a lost direct challenge not listed among ours: (until when its game may still start, why, backoff)
    unlisted: tuple[float, str, bool] | None = None


def challenge_body(config: OgsSeekConfig, seek: Seek, index: int) -> tuple[dict[str, Any], str]:
    """The JSON body of the create call for the ``index``-th challenge (board sizes and time controls in turn),
    and a short description for the log."""
    size = config.board_sizes[index % len(config.board_sizes)]
    tc = config.time_controls[index % len(config.time_controls)]
    game: dict[str, Any] = {
        "name": "Friendly Match", "rules": config.rules, "ranked": config.ranked, "width": size, "height": size,
        "handicap": config.handicap, "komi_auto": "automatic" if config.komi is None else "custom",
        "disable_analysis": False, "initial_state": None, "private": False, "pause_on_weekends": False,
        "time_control": tc.system, "time_control_parameters": tc.parameters(),
    }
    if config.komi is not None:
        game["komi"] = config.komi
    color = "white" if seek.white else "black"
    body = {"initialized": False, "min_ranking": config.min_ranking, "max_ranking": config.max_ranking,
            "challenger_color": color,
            "invite_only": False, "aga_ranked": False, "game": game}
    what = (f"{size}x{size}, {'ranked' if config.ranked else 'unranked'}, {config.rules}, {tc.system} "
            f"({tc.speed}), we ask for {color}")
    return body, what


# A direct challenge whose create answer was lost and which our challenges' listing does not show may have been
# accepted at once, its game's active_game still on its way: it stays counted (in flight) this long, and a game
# against that opponent starting meanwhile is its game; after that it counts as not made.
LOST_GAME_WAIT = 10.0

OPEN_SLOT = "(open challenge {})"  # the seeker's "opponents" in open mode: one per place seek.max_games allows


def seeker_config(config: OgsSeekConfig) -> SeekConfig:
    """What the seeker enforces. Open challenges: ``max_games`` anonymous places (names no OGS user can have),
    so the seeker's rules (at most one request per place, ``every``, ``stop_after``, ``pause``) hold unchanged."""
    if not config.open:
        return config
    return SeekConfig(every=config.every, max_games=config.max_games, stop_after=config.stop_after,
                      pause=config.pause, color=config.color, decline_backoff=config.decline_backoff,
                      opponents=[OPEN_SLOT.format(i + 1) for i in range(config.max_games)])


def _matches(entry: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    """Whether a seek-graph entry is the open challenge ``body`` would make (size, rules, ranked, time control)."""
    game = body.get("game")
    if not isinstance(game, Mapping):
        return False
    tc = entry.get("time_control_parameters")
    system = tc.get("system", tc.get("time_control")) if isinstance(tc, Mapping) else entry.get("time_control")
    return (entry.get("width") == game.get("width") and entry.get("height") == game.get("height")
            and entry.get("rules") == game.get("rules") and bool(entry.get("ranked")) == bool(game.get("ranked"))
            and system == game.get("time_control"))


class Seeking:
    def __init__(self, desk: SeekDesk, games: Games, config: OgsSeekConfig, self_name: str) -> None:
        self._desk = desk
        self._games = games
        self.config = config
        self.seeker = Seeker(seeker_config(config), self_name=self_name)
        self._known: set[int] = set()  # every challenge id we sent and know (open: never adopted again)
        self._graph_ours: dict[int, Mapping[str, Any]] = {}  # our open challenges on the seek graph
        self._graph_started: dict[int, str] = {}  # our open challenges' games, by challenge id (seek graph)
        self._unexplained: list[str] = []  # recent games followed that no incoming challenge explains
        self.inflight: Outgoing | None = None
        self.pending: dict[int, Outgoing] = {}  # challenge id -> sent and unanswered
        self.playing: set[str] = set()  # game ids of our challenges' games, until they are forgotten
        self._early: dict[str, str] = {}  # game id -> decline reason seen before the create's answer
        self._player_ids: dict[str, int] = {}
        self._sent = 0  # challenges sent (rotates board sizes and time controls)

    def reconfigure(self, config: OgsSeekConfig) -> None:
        self.config = config
        self.seeker.reconfigure(seeker_config(config))

    @property
    def open(self) -> bool:
        return self.config.open

    # --- counting -------------------------------------------------------------------------------------------
    def commitments(self, user_id: int | None) -> tuple[int, int]:
        """``(challenges sent and not yet answered, of them to user_id)``: they count against every game cap."""
        outs = list(self.pending.values()) + ([self.inflight] if self.inflight is not None else [])
        return len(outs), sum(1 for o in outs if user_id is not None and o.opponent_id == user_id)

    # --- the timer --------------------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Periodic (adapter thread): games ended, keepalives, timeouts, and the next challenge when due."""
        for gid in [g for g in self.playing if self._games.get(g) is None]:
            self.playing.discard(gid)
            self.seeker.ended(gid)
        draining = getattr(self._desk.host(), "draining", False) is True
        for cid, out in list(self.pending.items()):
            if out.cancelling:
                continue
            if draining:  # no new game while the daemon drains: the challenges still waiting are withdrawn
                out.cancelling = out.draining = True
                log.info("seek: withdrawing challenge %s to %s: the daemon is finishing its games", cid,
                         out.seek.opponent)
                self._desk.run_rest(self._cancel, out)
            elif now - out.sent_at >= self.config.timeout:
                out.cancelling = True
                log.info("seek: %s has not answered challenge %s in %g s; cancelling it",
                         "nobody" if self.open else out.seek.opponent, cid, self.config.timeout)
                self._desk.run_rest(self._cancel, out)
            elif out.game_id is not None:
                self._desk.send("challenge/keepalive", {"challenge_id": cid, "game_id": int(out.game_id)})
        lost = self.inflight
        if lost is not None and lost.unlisted is not None and now >= lost.unlisted[0]:
            self.inflight = None
            _, reason, backoff = lost.unlisted
            log.info("seek: no game against %s started within %g s of the lost challenge; it counts as not made",
                     lost.seek.opponent, LOST_GAME_WAIT)
            self._not_made(lost, reason, backoff)
        elif lost is not None and lost.lost_at is not None and now - lost.lost_at >= self.config.timeout:
            self.inflight = None
            self.seeker.withdrawn(lost.seek)
            log.warning("seek: the open challenge whose answer was lost did not show on the seek graph within %g s; "
                        "no longer waiting for it (its game is still played if it starts)", self.config.timeout)
        self._maybe_send(now)

    def _maybe_send(self, now: float) -> None:
        desk = self._desk
        if self.inflight is not None or not self.seeker.due():
            return
        host = desk.host()
        if not host.can_accept_game() or engine_problem(host) is not None:
            return
        max_games = desk.max_games()
        if max_games is not None and host.active_games() + desk.uncounted_games() >= max_games:
            return
        seek = self.seeker.next()
        if seek is None:
            return
        body, what = challenge_body(self.config, seek, self._sent)
        self._sent += 1
        out = Outgoing(seek, now, what, games_before=frozenset(g.game_id for g in self._games), body=body)
        self.inflight = out
        if self.open:
            log.info("seek: offering an open challenge: %s", what)
            desk.run_rest(self._create_open, out, body)
            return
        known = set(self.pending)
        log.info("seek: challenging %s: %s", seek.opponent, what)
        desk.run_rest(self._create, out, body, known)

    # --- answers (adapter thread) -------------------------------------------------------------------------------
    def on_sent(self, out: Outgoing, challenge_id: int, game_id: str | None) -> None:
        if self.inflight is out:
            self.inflight = None
        elif out.lost_at is not None:  # settled after we gave up waiting: too late to count it as sent
            return
        self._known.add(challenge_id)
        self._graph_ours.pop(challenge_id, None)
        out.challenge_id, out.game_id = challenge_id, game_id
        if self.open and game_id is None:
            game_id = out.game_id = self._graph_started.get(challenge_id)
        self._desk.stats["challenges_sent"] += 1
        if game_id is not None and self._games.get(game_id) is not None:  # accepted before the answer came
            self._start(out, game_id)
            return
        early = self._early.pop(game_id, None) if game_id is not None else None
        if early is not None:
            self.seeker.declined(out.seek, early)
            return
        started = self._graph_started.get(challenge_id)
        if started is not None and self._games.get(started) is not None:  # taken, and its game followed already
            self._start(out, started)
            return
        self.pending[challenge_id] = out
        log.info("seek: challenge %s (game %s) sent to %s; waiting up to %g s for an answer", challenge_id,
                 game_id, "anyone (open)" if self.open else out.seek.opponent, self.config.timeout)

    # --- open challenges: the seek graph ---------------------------------------------------------------------
    def on_lost(self, out: Outgoing, why: str, now: float) -> None:
        """The answer to an open challenge's create call was lost: it is looked for on the seek graph (and among
        the games that start), never sent again."""
        out.lost, out.lost_at = True, now
        log.warning("seek: the answer to the open challenge (%s) was lost (%s); looking for it on the seek graph",
                    out.describe, why)
        self._settle_open()

    def on_seekgraph(self, data: Any) -> None:
        """A ``seekgraph/global`` push: a list of challenge entries, deletions and started games."""
        bot = self._desk.bot_id
        for entry in data if isinstance(data, list) else []:
            if not isinstance(entry, Mapping):
                continue
            cid = opt_id(entry.get("challenge_id"))
            if cid is None:
                continue
            if entry.get("game_started"):
                gid = opt_id(entry.get("game_id"))
                if gid is not None and bot is not None and opt_id(entry.get("creator")) == bot:
                    self._graph_started[cid] = str(gid)
                    out = self.pending.get(cid)
                    if out is not None and out.game_id is None:
                        out.game_id = str(gid)
            elif entry.get("delete"):
                self._graph_ours.pop(cid, None)
            elif bot is not None and opt_id(entry.get("user_id")) == bot and cid not in self._known:
                self._graph_ours[cid] = entry
        while len(self._graph_started) > 200:  # only recent ones matter
            del self._graph_started[next(iter(self._graph_started))]
        self._settle_open()

    def _settle_open(self, starting: str | None = None) -> None:
        """``starting``: the game being claimed now, followed right after (not among the games yet)."""
        out = self.inflight
        if out is None or not out.lost or out.body is None:
            return
        for cid, entry in sorted(self._graph_ours.items()):
            if cid not in self._known and _matches(entry, out.body):
                gid = opt_id(entry.get("game_id"))
                self._found(out, cid, str(gid) if gid is not None else None, "on the seek graph")
                return
        for cid, started in self._graph_started.items():
            if cid not in self._known:
                self._found(out, cid, started, "taken already (the seek graph says its game started)")
                return
        for game_id in self._unexplained:
            # taken before the seek graph showed it: a game for us that started since, that no incoming challenge
            # explains
            if (game_id not in out.games_before and game_id not in self.playing
                    and (game_id == starting or self._games.get(game_id) is not None)):
                self.inflight = None
                self._desk.stats["challenges_settled"] += 1
                log.info("seek: the lost open challenge was taken already: its game is %s", game_id)
                self._start(out, game_id)
                return

    def _found(self, out: Outgoing, cid: int, gid: str | None, how: str) -> None:
        self._desk.stats["challenges_settled"] += 1
        log.info("seek: the lost open challenge is challenge %s (game %s), %s: keeping it", cid, gid, how)
        self.on_sent(out, cid, gid)

    def on_failed(self, out: Outgoing, reason: str, backoff: bool = True) -> None:
        """The challenge was not made (or cannot be found). ``backoff``: the opponent's doing (an unknown name, a
        refusal), left alone for a while; otherwise (the server unreachable, a bug) its place is just freed."""
        if self.inflight is out:
            self.inflight = None
        if out.lost and out.opponent_id is not None:
            # accepted before our challenges were listed: its game is the one against that opponent that started
            # since (the active_game came before the listing's answer was queued)
            for game in self._games:
                if (game.game_id not in out.games_before and game.game_id not in self.playing
                        and game.opponent_id() == out.opponent_id):
                    self._desk.stats["challenges_settled"] += 1
                    log.info("seek: the lost challenge to %s was accepted already: its game is %s",
                             out.seek.opponent, game.game_id)
                    self._start(out, game.game_id)
                    return
            if out.unlisted is None:  # its game's active_game may still be on its way: wait for it a little
                out.unlisted = (time.monotonic() + LOST_GAME_WAIT, reason, backoff)
                self.inflight = out
                return
        self._not_made(out, reason, backoff)

    def _not_made(self, out: Outgoing, reason: str, backoff: bool) -> None:
        if backoff:
            self.seeker.declined(out.seek, reason)
        else:
            self.seeker.withdrawn(out.seek)
            log.warning("seek: challenging %s failed (%s); trying again later", out.seek.opponent, reason)

    def on_rejected(self, data: Mapping[str, Any]) -> bool:
        """A ``gameOfferRejected`` notification: one of our challenges was declined. True when it was ours."""
        gid = opt_id(data.get("game_id"))
        cid = opt_id(data.get("challenge_id"))
        details = data.get("rejection_details")
        code = details.get("rejection_code") if isinstance(details, Mapping) else None
        message = data.get("message") if isinstance(data.get("message"), str) else ""
        reason = ": ".join(str(p) for p in (code, message) if p) or "declined, no reason given"
        for key, out in list(self.pending.items()):
            if (gid is not None and out.game_id == str(gid)) or (cid is not None and key == cid):
                del self.pending[key]
                self.seeker.declined(out.seek, reason[:200])
                return True
        if gid is not None and self.inflight is not None:
            self._early[str(gid)] = reason[:200]
            return True
        return False

    def on_cancelled(self, out: Outgoing, error: str | None) -> None:
        cid = out.challenge_id
        if cid is None or self.pending.get(cid) is not out:
            return  # answered meanwhile (its game is followed, or it was declined)
        if error is None:
            del self.pending[cid]
            self._desk.stats["challenges_cancelled"] += 1
            if out.draining or self.open:  # an open challenge nobody took: nobody to leave alone
                self.seeker.withdrawn(out.seek)
            else:
                self.seeker.declined(out.seek, f"no answer within {self.config.timeout:g} s (challenge {cid} "
                                               f"cancelled)")
        else:  # try again at the next timeout
            out.cancelling = False
            out.sent_at += self.config.timeout
            log.warning("seek: cancelling challenge %s failed (%s); trying again later", cid, error)

    def claim(self, game_id: str, incoming: bool = False, opponent: int | None = None) -> int | None:
        """A game is followed: when one of our challenges made it, it counts from now on as a game (returns the
        opponent's id), not as a challenge. ``incoming``: an incoming challenge we accepted explains it;
        ``opponent``: the other player, when the event that announced the game names them."""
        for cid, out in list(self.pending.items()):
            if out.game_id == game_id:
                del self.pending[cid]
                self._start(out, game_id)
                return out.opponent_id
        lost = self.inflight
        if (lost is not None and lost.unlisted is not None and not incoming and opponent is not None
                and opponent == lost.opponent_id and game_id not in lost.games_before):
            self.inflight = None
            self._desk.stats["challenges_settled"] += 1
            log.info("seek: the lost challenge to %s was accepted at once: its game is %s", lost.seek.opponent,
                     game_id)
            self._start(lost, game_id)
            return lost.opponent_id
        if self.open and not incoming:
            self._unexplained.append(game_id)
            del self._unexplained[:-20]
            self._settle_open(starting=game_id)
        return None

    def _start(self, out: Outgoing, game_id: str) -> None:
        self.seeker.started(out.seek, game_id)
        self.playing.add(game_id)
        if out.challenge_id is not None:
            self._known.add(out.challenge_id)
        who = "someone" if self.open else out.seek.opponent
        log.info("seek: %s accepted challenge %s; game %s", who, out.challenge_id, game_id)

    def cancel_all(self, rest: OgsRest) -> None:
        """The adapter stops: the challenges still waiting are withdrawn (nobody would play their games)."""
        for cid, out in list(self.pending.items()):
            try:
                if self.open:
                    rest.cancel_open_challenge(cid, retry=False)
                else:
                    rest.cancel_challenge(cid, retry=False)
                log.info("seek: challenge %s to %s withdrawn: the bot is stopping", cid, out.seek.opponent)
            except RestError as exc:
                log.warning("seek: could not withdraw challenge %s to %s while stopping (%s); it stays open on OGS "
                            "until it expires or is taken, and a game it makes is played at the next start; "
                            "cancel it on the site if the bot stays down", cid, out.seek.opponent, exc)
            del self.pending[cid]

    # --- REST (worker) --------------------------------------------------------------------------------------------
    def _create(self, out: Outgoing, body: dict[str, Any], known: set[int]) -> None:
        """Always ends with ``seek_sent`` or ``seek_failed`` queued."""
        desk = self._desk
        name = out.seek.opponent
        try:
            try:
                pid = self._player_ids.get(name.casefold())
                if pid is None:
                    pid = desk.rest().find_player(name)
                if pid is None:
                    desk.enqueue(("seek_failed", out, f"there is no player named {name!r} on the server; check "
                                                      f"seek.opponents"))
                    return
                self._player_ids[name.casefold()] = pid
                out.opponent_id = pid
            except RestError as exc:
                desk.enqueue(("seek_failed", out, f"cannot look the player up: {exc}", not exc.transient))
                return
            try:
                reply = desk.rest().challenge_player(pid, body)
            except RestError as exc:
                if exc.status == 0 or exc.status >= 500:  # the server may have made it: never send it again
                    self._settle(out, known, str(exc))
                else:
                    desk.enqueue(("seek_failed", out, f"the challenge was refused: {exc}"))
                return
            cid = opt_id(reply.get("challenge")) if isinstance(reply, Mapping) else None
            game = reply.get("game") if isinstance(reply, Mapping) else None
            gid = opt_id(game.get("id") if isinstance(game, Mapping) else game)
            if cid is None:
                self._settle(out, known, f"the answer names no challenge: {str(reply)[:120]}")
                return
            desk.enqueue(("seek_sent", out, cid, str(gid) if gid is not None else None))
        except Exception as exc:  # a bug must not leave the challenge in flight forever
            log.exception("seek: challenging %s failed unexpectedly (a bug: please report it with this traceback)",
                          name)
            desk.enqueue(("seek_failed", out, f"internal error: {type(exc).__name__}", False))

    def _create_open(self, out: Outgoing, body: dict[str, Any]) -> None:
        """Always ends with ``seek_sent``, ``seek_lost`` or ``seek_failed`` queued."""
        desk = self._desk
        try:
            try:
                reply = desk.rest().create_open_challenge(body)
            except RestError as exc:
                if exc.status == 0 or exc.status >= 500:  # the server may have made it: never send it again
                    desk.enqueue(("seek_lost", out, str(exc)))
                else:
                    desk.enqueue(("seek_failed", out, f"the open challenge was refused: {exc}", False))
                return
            cid = opt_id(reply.get("challenge")) if isinstance(reply, Mapping) else None
            game = reply.get("game") if isinstance(reply, Mapping) else None
            gid = opt_id(game.get("id") if isinstance(game, Mapping) else game)
            if cid is None:
                desk.enqueue(("seek_lost", out, f"the answer names no challenge: {str(reply)[:120]}"))
                return
            desk.enqueue(("seek_sent", out, cid, str(gid) if gid is not None else None))
        except Exception as exc:  # a bug must not leave the challenge in flight forever
            log.exception("seek: offering an open challenge failed unexpectedly (a bug: please report it with this "
                          "traceback)")
            desk.enqueue(("seek_failed", out, f"internal error: {type(exc).__name__}", False))

    def _settle(self, out: Outgoing, known: set[int], why: str) -> None:
        """The create call's answer was lost: find the challenge among ours (to that opponent, not one we know)."""
        desk = self._desk
        out.lost = True
        log.warning("seek: the answer to the challenge to %s was lost (%s); looking for it among our challenges",
                    out.seek.opponent, why)
        try:
            rows = desk.rest().my_challenges()
        except RestError as exc:
            desk.enqueue(("seek_failed", out, f"the challenge's answer was lost and our challenges cannot be "
                                              f"listed ({exc})"))
            return
        found: list[tuple[int, str | None]] = []
        for row in rows:
            challenger, challenged = row.get("challenger"), row.get("challenged")
            if not isinstance(challenger, Mapping) or not isinstance(challenged, Mapping):
                continue
            cid = opt_id(row.get("id"))
            if (cid is None or cid in known or opt_id(challenger.get("id")) != desk.bot_id
                    or opt_id(challenged.get("id")) != out.opponent_id):
                continue
            game = row.get("game")
            gid = opt_id(game.get("id") if isinstance(game, Mapping) else game)
            found.append((cid, str(gid) if gid is not None else None))
        if not found:
            desk.enqueue(("seek_failed", out, "the challenge's answer was lost and no challenge of ours to it is "
                                              "listed"))
            return
        lost_id, lost_game = max(found)
        desk.stats["challenges_settled"] += 1
        log.info("seek: the lost challenge to %s is challenge %s (game %s): keeping it", out.seek.opponent, lost_id,
                 lost_game)
        desk.enqueue(("seek_sent", out, lost_id, lost_game))

    def _cancel(self, out: Outgoing) -> None:
        assert out.challenge_id is not None
        try:
            if self.open:
                self._desk.rest().cancel_open_challenge(out.challenge_id)
            else:
                self._desk.rest().cancel_challenge(out.challenge_id)
        except RestError as exc:
            # 404: the challenge is gone already (answered meanwhile, or removed): nothing left to cancel
            self._desk.enqueue(("seek_cancelled", out, None if exc.status == 404 else str(exc)))
            return
        self._desk.enqueue(("seek_cancelled", out, None))

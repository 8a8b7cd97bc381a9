"""The reconchess client adapter: connect as the official ``rc_connect`` does, accept invitations, and run
each game in the daemon (``Host.run_game``) with a ``reconchess.Player`` (``adapters/reconchess/play.py``).

Connecting: ``GET /api/version`` must equal the installed reconchess version (otherwise the adapter stops, as
the official client quits); then ranked mode and bot version, and ``max_games``. Serving:
every ``poll_interval`` seconds ``GET /api/invitations/``; each new invitation is accepted while fewer than
``max_games`` of ours run and the daemon can take a game (``host.can_accept_game()``). Failures: 5xx answers
and connection errors are retried with capped exponential backoff and jitter, until the daemon stops (api.py);
a 401, a version mismatch or a bot version the server cannot take is final: ``run`` raises
:class:`bridge.errors.FatalAdapterError` (the adapter contract: the daemon logs it as one ERROR line and
``gamebridge run`` exits with status 77, which a systemd unit lists in RestartPreventExitStatus).

Restarts: an accept is written down before it is sent (``daemon.data_dir/state/reconchess-invitation-N.json``,
then with its game id) until the game's own state file exists (``play.py``); on start, after connecting, every game
of an earlier run is gone on with, from its state file or such an accept file. A lost answer to an accept (the
re-sent accept is refused: already accepted) is settled by finding the game through the game endpoints.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import reconchess
from reconchess import Player

from bridge.adapters.reconchess.api import ApiError, RbcApi, RetryPolicy, Stopped, Unauthorized
from bridge.adapters.reconchess.config import ReconchessServerConfig
from bridge.adapters.reconchess.play import GameResult, ReconchessGame
from bridge.errors import BridgeError, ConfigError, FatalAdapterError, ProtocolError, ServerError
from bridge.events import CheckLine, GameContext, Host, host_ready
from bridge.games.rbc_state import RbcGameState, StateError, load_state, state_path
from bridge.seek import Seek, Seeker

log = logging.getLogger("bridge.reconchess")

PlayerFactory = Callable[[GameContext], Player]
REFUSED_RETRY = 60.0  # seconds before an invitation that could not be accepted is tried again
LOST_ACCEPT_SPAN = 8  # game ids probed on each side of an invitation id whose accept answer was lost
LOST_INVITE_SPAN = 32  # game ids probed after the newest game id seen, for an invitation whose answer was lost


def _named_game_id(text: str) -> int | None:
    """A game id a refusal names: ``{"game_id": G}`` in its JSON, or "game G" in its text."""
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("game_id"), int) and not isinstance(
        answer.get("game_id"), bool
    ):
        return int(answer["game_id"])
    match = re.search(r"\bgame (\d+)", text)
    return int(match.group(1)) if match else None


def default_player_factory(ctx: GameContext) -> Player:
    """The bridge's RBC player (``bridge.games.rbc.make_player``): a UCI engine tracking possible boards."""
    try:
        from bridge.games.rbc import make_player
    except ImportError as exc:
        raise BridgeError(
            f"the bridge's RBC player cannot be loaded ({exc}); reinstall the bridge (pip install -e .)"
        ) from None
    player: Player = make_player(ctx)
    return player


class ReconchessAdapter:
    """Implements :class:`bridge.events.Adapter` for a reconchess server."""

    def __init__(
        self, server: ReconchessServerConfig, config: Any, player_factory: PlayerFactory | None = None
    ) -> None:
        self.server = server
        self.config = config
        self.player_factory: PlayerFactory = player_factory or default_player_factory
        self.url = server.url.rstrip("/")
        self.retry = RetryPolicy(server.retry_min_delay, server.retry_max_delay, server.retry_give_up)
        self._password: str | None = None
        self._lock = threading.Lock()
        self._games: dict[int, int] = {}  # invitation id -> game id, for the games of ours that run now
        self._refused: dict[int, float] = {}  # invitation id -> when accepting it failed
        self._done: set[int] = set()  # invitations accepted once: never again, even if still listed
        self._waiting_logged: set[int] = set()
        self._played: set[int] = set()  # game ids played to their end (or given up) by this adapter
        self.results: list[GameResult] = []
        self.stats: dict[str, int] = {"accepted": 0, "finished": 0, "error_resigns": 0, "settled": 0, "resumed": 0,
                                      "invited": 0}
        self.stopped_reason: str | None = None
        self._tell_cap = threading.Event()  # a reload changed max_games: tell the server at the next poll
        self.seeker = Seeker(server.seek, self_name=server.username) if server.seek is not None else None
        self._newest_game = 0  # the highest game id of ours seen (where a lost invitation's game is looked for)

    # A reload (SIGHUP) may change these server keys live; any other needs a restart.
    reloadable_server_keys = frozenset({"max_games", "poll_interval", "status_interval"})
    # (server.seek is not among them: a seek policy added, removed or changed takes a restart)

    def reconfigure(self, config: Any) -> None:
        """Take a reloaded configuration (only ``reloadable_server_keys`` differ from the running server config):
        invitations are judged by the new ``max_games`` from the next poll, which also tells the server the new
        cap; the poll intervals apply from the next wait (``status_interval`` to the games started after it)."""
        cap_changed = config.server.max_games != self.server.max_games
        self.config, self.server = config, config.server
        if self.seeker is not None and config.server.seek is not None:
            self.seeker.reconfigure(config.server.seek)
        if cap_changed:
            self._tell_cap.set()

    # --- plumbing -------------------------------------------------------------------------------------------
    def _secret(self) -> str:
        if self._password is None:
            self._password = self.server.password.resolve("server.password").get_secret_value()
        return self._password

    def make_api(
        self, stop: threading.Event, retry: RetryPolicy | None = None, timeout: float | None = None
    ) -> RbcApi:
        return RbcApi(
            self.url,
            self.server.username,
            self._secret(),
            timeout=timeout or self.server.request_timeout,
            retry=retry or self.retry,
            stop=stop,
        )

    def _fatal(self, message: str) -> NoReturn:
        """The adapter contract's fatal condition: ``run`` ends with :class:`FatalAdapterError` (the daemon logs
        it as one ERROR line and exits with status 77)."""
        self.stopped_reason = message
        raise FatalAdapterError(message)

    # --- Adapter --------------------------------------------------------------------------------------------
    def run(self, host: Host, stop: threading.Event) -> None:
        """Connect, then serve invitations until ``stop`` is set (or a fatal refusal)."""
        try:
            self._secret()
        except ConfigError as exc:
            self._fatal(str(exc))
        api = self.make_api(stop)
        ranked_set = False
        resumed = False
        try:
            while not stop.is_set():
                try:
                    if not self._connect(api, stop):
                        return
                    host_ready(host)
                    ranked_set = self.server.ranked
                    if not resumed:
                        resumed = True
                        self._resume_games(host)
                        self._resume_accepts(api, host, api.invitations())
                    self._serve(api, host, stop)
                except (ApiError, ProtocolError) as exc:  # 4xx where none was expected, garbage, gave up
                    log.warning(
                        "reconchess server %s: %s; trying again in %.0f s",
                        self.url,
                        exc,
                        self.server.retry_max_delay,
                    )
                    stop.wait(self.server.retry_max_delay)
        except Unauthorized as exc:
            ranked_set = False
            self._fatal(str(exc))
        except Stopped:
            pass
        finally:
            api.close()
            if ranked_set:  # as rc_connect does on exit: no ranked matches are scheduled while we are away
                leaving = self.make_api(stop, timeout=min(self.server.request_timeout, 5.0))  # one quick try
                try:
                    leaving.set_ranked(False)
                except BridgeError as exc:
                    log.info("could not leave ranked mode on the way out: %s", exc)
                finally:
                    leaving.close()

    def _connect(self, api: RbcApi, stop: threading.Event) -> bool:
        version = api.version()
        if version != reconchess.__version__:
            self._fatal(version_mismatch(self.url, version))
        me = api.me()
        if str(me.get("username", "")).casefold() != self.server.username.casefold():
            log.warning("the reconchess server %s calls this account %r, not %r (server.username); going on; fix "
                        "server.username if that is a different account", self.url, me.get("username"),
                        self.server.username)
        if self.server.ranked:
            version_number = self._ranked_version(api, stop)
            if version_number is None:
                return False
            api.set_ranked(True)
            ranked = f"ranked as version {version_number}"
        else:
            api.set_ranked(False)
            ranked = "unranked"
        api.set_max_games(self.server.max_games)
        log.info(
            "connected to reconchess server %s (reconchess %s) as %s: %s, up to %d game(s) at once",
            self.url,
            version,
            me.get("username"),
            ranked,
            self.server.max_games,
        )
        return True

    def _ranked_version(self, api: RbcApi, stop: threading.Event) -> int | None:
        current = api.bot_version()
        wanted = self.server.bot_version
        if wanted is None or wanted == current + 1:
            if wanted is None and current > 0:
                return current
            created = api.new_bot_version()
            log.info("created bot version %d on the server (was %d)", created, current)
            return created
        if wanted == current:
            return current
        self._fatal(
            f"server.bot_version is {wanted} but the server's current version of this bot is "
            f"{current}: use {current} to keep it or {current + 1} to create a new version "
            f"(versions cannot go back)",
        )
        return None

    def _serve(self, api: RbcApi, host: Host, stop: threading.Event) -> None:
        while not stop.is_set():
            retries = api.retries
            invitations = api.invitations()
            if api.retries != retries:  # the server was away: tell it our cap again, as rc_connect does
                api.set_max_games(self.server.max_games)
                log.info("reconchess server %s is answering again", self.url)
            if self._tell_cap.is_set():
                self._tell_cap.clear()
                api.set_max_games(self.server.max_games)
                log.info("told the server the new cap: up to %d game(s) at once", self.server.max_games)
            for invitation_id in invitations:
                if stop.is_set():
                    break
                self._consider(api, host, invitation_id)
            if not stop.is_set():
                self._seek(api, host)
            stop.wait(self.server.poll_interval)

    # --- seeking: invitations sent (server.seek) --------------------------------------------------------------
    def _seek(self, api: RbcApi, host: Host) -> None:
        """Invite the next opponent the seek policy allows, when there is room for one more game (the server's
        max_games, the daemon's cap, not draining), and play the game it makes."""
        seeker = self.seeker
        if seeker is None or not seeker.due():
            return
        with self._lock:
            running = len(self._games)
        if running >= self.server.max_games or not host.can_accept_game():
            return
        active = api.users() if seeker.wants_active_users() else []
        seek = seeker.next(active)
        if seek is None:
            return
        color = "white" if seek.white else "black"
        log.info("seek: inviting %s to a game (we ask for %s)", seek.opponent, color)
        try:
            game_id = api.invite(seek.opponent, seek.white)
        except ApiError as exc:
            if not exc.maybe_done:
                seeker.declined(seek, exc.text.strip()[:120] or str(exc))
                return
            found = self._settle_lost_invite(api, seek)
            if found is None:
                seeker.declined(seek, "the invitation's answer was lost and no game of it was found")
                return
            game_id = found
        seeker.started(seek, str(game_id))
        self._saw_game(game_id)
        with self._lock:
            self._games[-game_id] = game_id
        self.count("invited")
        log.info("seek: %s invited: game %d, playing %s", seek.opponent, game_id, color)
        target = functools.partial(self._play, invitation_id=None, game_id=game_id)
        if not host.run_game(str(game_id), target):
            with self._lock:
                self._games.pop(-game_id, None)
            seeker.ended(str(game_id))
            log.info("game %d: the daemon is stopping before it could start", game_id)

    def _settle_lost_invite(self, api: RbcApi, seek: Seek) -> int | None:
        """An invitation was sent but its answer (the game id) was lost: it may have made a game. It is looked
        for after the newest game id of ours seen (the API lists no games): a live game of ours against that
        opponent, with the colour asked for, not played here. Never sent again: a second attempt would make a
        second game."""
        with self._lock:
            known = set(self._games.values()) | self._played
        start = max(self._newest_game, max(known, default=0))
        if start <= 0:
            log.warning("seek: the answer to the invitation to %s was lost, and no game id of ours is known to "
                        "look for its game from; not inviting it again for a while (a game it made, if any, is not "
                        "played and ends on time)", seek.opponent)
            return None
        for game_id in range(start + 1, start + 1 + LOST_INVITE_SPAN):
            if game_id in known:
                continue
            try:
                if api.color(game_id) != seek.white or api.opponent_name(game_id) != seek.opponent:
                    continue
                if api.game_status(game_id).is_over:
                    continue
            except ApiError as probe:
                if probe.status in (400, 401, 403, 404):  # not a game of ours (or none)
                    continue
                raise
            self.count("settled")
            log.info("seek: the answer to the invitation to %s was lost; its game is %d: playing it",
                     seek.opponent, game_id)
            return game_id
        log.warning("seek: the answer to the invitation to %s was lost and no game of it was found among the %d "
                    "game ids after %d; not inviting it again for a while", seek.opponent, LOST_INVITE_SPAN, start)
        return None

    def _saw_game(self, game_id: int) -> None:
        with self._lock:
            self._newest_game = max(self._newest_game, game_id)

    def _consider(self, api: RbcApi, host: Host, invitation_id: int) -> None:
        with self._lock:
            if invitation_id in self._games or invitation_id in self._done:
                return
            refused_at = self._refused.get(invitation_id)
            running = len(self._games)
        if refused_at is not None and time.monotonic() - refused_at < REFUSED_RETRY:
            return
        if running >= self.server.max_games or not host.can_accept_game():
            if invitation_id not in self._waiting_logged:
                self._waiting_logged.add(invitation_id)
                log.info(
                    "invitation %d waits: %d game(s) running (server.max_games %d, or the daemon is full)",
                    invitation_id,
                    running,
                    self.server.max_games,
                )
            return
        self._note_accept(invitation_id, None)  # before accepting: a restart then looks for the game
        try:
            game_id = api.accept(invitation_id)
        except ApiError as exc:
            found = self._settle_lost_accept(api, invitation_id, exc) if exc.status == 400 and exc.maybe_done \
                else None
            if found is None:
                self.forget_accept(invitation_id)
                self._refused[invitation_id] = time.monotonic()
                log.warning("invitation %d could not be accepted (%s); tried again in %.0f s if it is still open, "
                            "other invitations meanwhile", invitation_id, exc, REFUSED_RETRY)
                return
            game_id = found
        self._start_accepted(api, host, invitation_id, game_id)

    def _start_accepted(self, api: RbcApi, host: Host, invitation_id: int, game_id: int,
                        resumed: bool = False) -> None:
        self._note_accept(invitation_id, game_id)
        self._saw_game(game_id)
        self._waiting_logged.discard(invitation_id)
        self._refused.pop(invitation_id, None)
        with self._lock:
            self._games[invitation_id] = game_id
            self._done.add(invitation_id)
        if not resumed:
            self.count("accepted")
            log.info("invitation %d accepted: game %d", invitation_id, game_id)
        target = functools.partial(self._play, invitation_id=invitation_id, game_id=game_id, resumed=resumed)
        if not host.run_game(str(game_id), target):
            with self._lock:
                self._games.pop(invitation_id, None)
            log.info("game %d: the daemon is stopping before it could start; the next start plays it", game_id)

    # --- accepts on disk: an accept whose game is not on disk yet (state/reconchess-invitation-N.json) -------
    def _accept_file(self, invitation_id: int) -> Path | None:
        sample = self.state_file(0)
        return None if sample is None else sample.parent / f"reconchess-invitation-{invitation_id}.json"

    def _note_accept(self, invitation_id: int, game_id: int | None) -> None:
        """Written before an accept is sent, and again with its game: a restart before the game's own state file
        exists still finds the game (the server lists accepted invitations nowhere)."""
        path = self._accept_file(invitation_id)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(json.dumps(self.state_identity(invitation_id) | {"game_id": game_id}))
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("invitation %d: cannot write %s (%s); a restart right now would lose its game",
                        invitation_id, path, exc.strerror or exc)

    def forget_accept(self, invitation_id: int | None) -> None:
        """The game's own state file now stands for it (or it was refused): the accept's file goes."""
        path = self._accept_file(invitation_id) if invitation_id is not None else None
        if path is not None:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("cannot remove %s (%s): a restart would look for that invitation's game again (and "
                            "find it ended); remove the file by hand", path, exc)

    def _resume_accepts(self, api: RbcApi, host: Host, pending: list[int]) -> None:
        """Accepts an earlier run sent whose game never reached its own state file: the game is started (its id
        known) or looked for as after a lost answer; an invitation still open is left to the usual accept."""
        sample = self.state_file(0)
        if sample is None or not sample.parent.is_dir():
            return
        for path in sorted(sample.parent.glob("reconchess-invitation-*.json")):
            match = re.fullmatch(r"reconchess-invitation-(\d+)\.json", path.name)
            if match is None:
                continue
            invitation_id = int(match.group(1))
            try:
                data = json.loads(path.read_text())
                if not isinstance(data, dict):
                    raise ValueError("not an object")
            except (OSError, ValueError) as exc:
                data = {"url": self.url, "username": self.server.username, "game_id": None}
                log.warning("invitation %d: %s cannot be read (%s); looking for its game", invitation_id, path, exc)
            if data.get("url") != self.url or data.get("username") != self.server.username:
                continue
            with self._lock:
                known = invitation_id in self._games or invitation_id in self._done
            if known or invitation_id in pending:  # resumed from its game's state file, or still open
                self.forget_accept(invitation_id)
                continue
            game_id = data.get("game_id")
            if not isinstance(game_id, int) or isinstance(game_id, bool):
                game_id = self._settle_lost_accept(
                    api, invitation_id, ApiError("accepted by an earlier run, its answer not recorded", 400))
                if game_id is None:
                    self.forget_accept(invitation_id)
                    continue
            log.info("invitation %d: accepted by an earlier run (game %d): resuming it", invitation_id, game_id)
            self.count("resumed")
            self._start_accepted(api, host, invitation_id, game_id, resumed=True)

    def _settle_lost_accept(self, api: RbcApi, invitation_id: int, exc: ApiError) -> int | None:
        """The accept's answer was lost and the re-sent accept is refused (400: already accepted): the server
        accepted it for us, but its answer, the game id, is gone, and the API lists no games. The game is found
        through the game endpoints: the id the refusal names (if any), then ids near the invitation's (a game
        is created with its invitation: the sandbox gives both the same id) and after the last game of ours,
        each checked to be a game of ours (``color`` answers 200, not 401/404) that is live and not already
        played here. None if none is."""
        candidates: list[int] = []
        named = _named_game_id(exc.text)
        if named is not None:
            candidates.append(named)
        for delta in range(LOST_ACCEPT_SPAN + 1):
            candidates += [invitation_id + delta, invitation_id - delta]
        with self._lock:
            known = set(self._games.values()) | self._played
        latest = max(known, default=0)
        if latest:
            candidates += range(latest + 1, latest + 1 + LOST_ACCEPT_SPAN)
        tried: set[int] = set()
        for game_id in candidates:
            if game_id in tried or game_id in known or game_id <= 0:
                continue
            tried.add(game_id)
            try:
                api.color(game_id)
                if api.game_status(game_id).is_over:
                    continue
            except ApiError as probe:
                if probe.status in (400, 401, 403, 404):  # not a game of ours (or none)
                    continue
                raise
            self.count("settled")
            log.info(
                "invitation %d: the answer to the accept was lost and the server says it was already accepted "
                "(%s); its game is %d, a live game of ours not played here: playing it",
                invitation_id,
                exc.text.strip()[:80] or exc,
                game_id,
            )
            return game_id
        log.warning(
            "invitation %d: the answer to the accept was lost and the server says it was already accepted, but "
            "no live game of ours was found among %d candidate ids (the server's API lists no games); it cannot "
            "be played and the server will end it",
            invitation_id,
            len(tried),
        )
        return None

    # --- games of an earlier run --------------------------------------------------------------------------
    def state_file(self, game_id: int) -> Path | None:
        """Where a game's state is kept (``daemon.data_dir/state/reconchess-GAME.json``); None without a config."""
        daemon = getattr(self.config, "daemon", None)
        if daemon is None:
            return None
        return state_path(daemon.data_dir, "reconchess", str(game_id))

    def state_identity(self, invitation_id: int | None) -> dict[str, Any]:
        """What the state file keeps of the server: a file is resumed only by the same server and account."""
        return {"url": self.url, "username": self.server.username, "invitation_id": invitation_id}

    def _resume_games(self, host: Host) -> None:
        """Go on with every game an earlier run was playing: one per state file of this server and account."""
        sample = self.state_file(0)
        if sample is None or not sample.parent.is_dir():
            return
        for path in sorted(sample.parent.glob("reconchess-*.json")):
            match = re.fullmatch(r"reconchess-(\d+)\.json", path.name)
            if match is None:
                continue
            game_id = int(match.group(1))
            saved: RbcGameState | None
            try:
                saved = load_state(path)
            except (StateError, OSError) as exc:
                log.warning(
                    "game %d: its state file %s cannot be read (%s); going on with the game from what the server "
                    "tells (what the player had observed is lost)", game_id, path, exc)
                saved = None
            if saved is not None:
                ident = saved.server
                if ident.get("url") != self.url or ident.get("username") != self.server.username:
                    log.info("state file %s belongs to %s at %s, not this bridge: left alone", path,
                             ident.get("username"), ident.get("url"))
                    continue
            raw_invitation = saved.server.get("invitation_id") if saved is not None else None
            invitation_id = raw_invitation if isinstance(raw_invitation, int) else None
            key = invitation_id if invitation_id is not None else -game_id
            self._saw_game(game_id)
            with self._lock:
                if key in self._games or game_id in self._games.values():
                    continue
                self._games[key] = game_id
                if invitation_id is not None:
                    self._done.add(invitation_id)
            log.info("game %d: resuming it (a game of an earlier run, %d turn(s) on record)", game_id,
                     len(saved.turns) if saved is not None else 0)
            self.count("resumed")
            target = functools.partial(self._play, invitation_id=invitation_id, game_id=game_id, saved=saved,
                                       resumed=True)
            if not host.run_game(str(game_id), target):
                with self._lock:
                    self._games.pop(key, None)

    def _play(self, ctx: GameContext, invitation_id: int | None, game_id: int, saved: RbcGameState | None = None,
              resumed: bool = False) -> None:
        key = invitation_id if invitation_id is not None else -game_id
        try:
            result = ReconchessGame(self, ctx, invitation_id, game_id, self.player_factory, saved, resumed).run()
            with self._lock:
                self.results.append(result)
            self.count("finished")
            self.count("settled", result.settled)
        finally:
            with self._lock:
                self._games.pop(key, None)
                self._played.add(game_id)
            if self.seeker is not None:
                self.seeker.ended(str(game_id))

    def count(self, stat: str, n: int = 1) -> None:
        with self._lock:
            self.stats[stat] += n

    def active_games(self) -> dict[int, int]:
        with self._lock:
            return dict(self._games)

    # --- gamebridge check ----------------------------------------------------------------------------
    def check(self) -> list[CheckLine]:
        """Reach the server, compare versions, authenticate: one line each. Never raises when they fail."""
        try:
            self._secret()
        except ConfigError as exc:
            return [CheckLine(False, str(exc))]
        timeout = min(self.server.request_timeout, 15.0)
        api = self.make_api(threading.Event(), RetryPolicy(0.2, 1.0, give_up=timeout), timeout)
        lines: list[CheckLine] = []
        try:
            started = time.monotonic()
            try:
                version = api.version()
            except ApiError as exc:
                if exc.status == 0:
                    return [CheckLine(False, f"cannot reach {self.url}: {exc}")]
                return [
                    CheckLine(
                        False,
                        f"{self.url} does not answer like a reconchess server ({exc}); check server.url",
                    )
                ]
            except ProtocolError as exc:
                return [
                    CheckLine(
                        False,
                        f"{self.url} does not answer like a reconchess server ({exc}); check server.url",
                    )
                ]
            lines.append(
                CheckLine(
                    True,
                    f"server reachable at {self.url} (answered in "
                    f"{(time.monotonic() - started) * 1000:.0f} ms)",
                )
            )
            if version == reconchess.__version__:
                lines.append(CheckLine(True, f"the server runs reconchess {version}, as installed here"))
            else:
                lines.append(CheckLine(False, version_mismatch(self.url, version)))
            try:
                me = api.me()
            except Unauthorized as exc:
                lines.append(CheckLine(False, str(exc)))
                return lines
            name = str(me.get("username"))
            lines.append(CheckLine(True, f"authenticated as {name}"))
            if name.casefold() != self.server.username.casefold():
                lines.append(
                    CheckLine(
                        False,
                        f"the server calls this account {name!r}, not "
                        f"{self.server.username!r}: fix server.username",
                    )
                )
            if self.server.ranked:
                current = api.bot_version()
                wanted = self.server.bot_version
                ok = wanted is None or wanted in (current, current + 1)
                lines.append(
                    CheckLine(
                        ok,
                        f"ranked play: the server's bot version is {current}"
                        + ("" if wanted is None else f", server.bot_version is {wanted}")
                        + ("" if ok else f" (use {current} or {current + 1})"),
                    )
                )
        except ServerError as exc:
            lines.append(CheckLine(False, f"reconchess server {self.url}: {exc}"))
        finally:
            api.close()
        return lines


def version_mismatch(url: str, server_version: str) -> str:
    return (
        f"the reconchess server {url} runs reconchess {server_version} but this bridge has reconchess "
        f"{reconchess.__version__} installed, and the game protocol may differ between versions (the "
        f"official client refuses to play too); install the server's version (pip install "
        f"'reconchess=={server_version}') or a bridge release made for it"
    )

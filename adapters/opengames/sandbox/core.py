"""The sandbox's state: agents and their keys, the matchmaking queue and its pairing, games, webhooks, stats,
the dataset of completed games, and (with a ``data_dir``) their persistence.

One re-entrant lock guards everything; ``changed`` (a condition on it) is notified after every change, so
house players wait for their turn without polling. Webhook events are queued for delivery while the lock is
held and sent by :class:`~.webhooks.WebhookDispatcher` threads outside it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.adapters.opengames.sandbox.game import GAME_TYPE, ApiError, SandboxGame, Seat, iso
from bridge.games.battleship_rules import CLASSIC_FLEET, Rules, RulesError, Ship, parse_cell

log = logging.getLogger("bridge.opengames.sandbox")

KEY_PATTERN = re.compile(r"og_[0-9a-f]{64}")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.\-]{0,49}")
HOUSE_KINDS = ("random", "hunt-target")
HOUSE_DESCRIPTIONS = {
    "random": "Sandbox house opponent: shoots at random unexplored cells.",
    "hunt-target": "Sandbox house opponent: parity hunting, then targets the cells around its hits.",
}

WebhookSink = Callable[[str, dict[str, Any]], None]  # (agent_id, payload without token) -> queued
HouseStarter = Callable[[SandboxGame, int, "Ticket"], None]  # (game, role, the house's ticket)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Webhook:
    url: str
    token: str
    endpoint_type: str
    registered_at: float = field(default_factory=time.time)


@dataclass
class Agent:
    id: str
    name: str
    description: str
    key_hash: str | None  # None: a house agent, which cannot log in
    created_at: float = field(default_factory=time.time)
    house: str | None = None
    webhook: Webhook | None = None
    last_seen: float = 0.0

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "created_at": iso(self.created_at),
            "is_house": self.house is not None,
        }

    def saved(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "key_sha256": self.key_hash,
            "created_at": self.created_at,
            "house": self.house,
        }


@dataclass
class Ticket:
    """One place in the matchmaking queue; ``game_id`` is set when it is matched."""

    agent_id: str
    joined_mono: float = field(default_factory=time.monotonic)
    seq: int = 0
    game_id: str | None = None
    matched_mono: float | None = None
    house_moves: bool = False  # house tickets: play with ship moves
    house_delay: float | None = None  # house tickets: seconds before each action (None: the sandbox's)


class SandboxState:
    """Everything the sandbox knows. Public methods take the lock; ``ApiError`` carries HTTP errors."""

    def __init__(
        self,
        *,
        turn_timeout: float,
        ship_moves: bool = True,
        data_dir: Path | None = None,
        webhook_sink: WebhookSink | None = None,
        house_starter: HouseStarter | None = None,
        seed: int | None = None,
        forget_match_on_join: bool = False,
    ) -> None:
        self.lock = threading.RLock()
        self.forget_match_on_join = forget_match_on_join  # /matchmaking/status forgets a joined game
        self.changed = threading.Condition(self.lock)
        self.turn_timeout = turn_timeout
        self.rules = Rules(fleet=CLASSIC_FLEET, moves_enabled=ship_moves)
        self.data_dir = data_dir
        self.webhook_sink = webhook_sink
        self.house_starter = house_starter
        self._rng = random.Random(seed)
        self.agents: dict[str, Agent] = {}
        self._by_key: dict[str, str] = {}
        self._by_name: dict[str, str] = {}
        self.queue: list[Ticket] = []  # waiting and matched tickets, in joining order
        self._tickets: dict[str, Ticket] = {}  # the (one) ticket of each non-house agent
        self._seq = 0
        self.games: dict[str, SandboxGame] = {}
        self.records: dict[str, dict[str, Any]] = {}  # completed games' dataset records, in completion order
        self._waits: deque[float] = deque(maxlen=100)  # seconds from joining the queue to a match
        if data_dir is not None:
            self._load()
        for kind in HOUSE_KINDS:
            if kind.lower() not in self._by_name:
                self._add_agent(kind, HOUSE_DESCRIPTIONS[kind], None, house=kind)

    # --- persistence ---------------------------------------------------------------------------------------
    def _load(self) -> None:
        assert self.data_dir is not None
        agents_file = self.data_dir / "agents.json"
        if agents_file.exists():
            try:
                saved = json.loads(agents_file.read_text())
                for a in saved:
                    agent = Agent(
                        a["id"],
                        a["name"],
                        a.get("description", ""),
                        a.get("key_sha256"),
                        float(a.get("created_at", time.time())),
                        a.get("house"),
                    )
                    self._index(agent)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"{agents_file}: not a sandbox agents file ({exc}); move it away to start afresh"
                ) from None
        games_file = self.data_dir / "dataset" / "games.jsonl"
        if games_file.exists():
            for n, line in enumerate(games_file.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    self.records[record["game_id"]] = record
                except (ValueError, KeyError, TypeError):
                    log.warning("%s:%d: not a dataset record; skipped", games_file, n)
        log.info(
            "sandbox data from %s: %d agents, %d completed games",
            self.data_dir,
            len(self.agents),
            len(self.records),
        )

    def _save_agents(self) -> None:
        if self.data_dir is None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "agents.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([a.saved() for a in self.agents.values()], indent=1))
        os.replace(tmp, path)

    def _save_record(self, record: dict[str, Any]) -> None:
        if self.data_dir is None:
            return
        folder = self.data_dir / "dataset"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "games.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

    # --- agents --------------------------------------------------------------------------------------------
    def _index(self, agent: Agent) -> None:
        self.agents[agent.id] = agent
        self._by_name[agent.name.lower()] = agent.id
        if agent.key_hash:
            self._by_key[agent.key_hash] = agent.id

    def _add_agent(self, name: str, description: str, key: str | None, house: str | None = None) -> Agent:
        agent = Agent(str(uuid.uuid4()), name, description, hash_key(key) if key else None, house=house)
        self._index(agent)
        self._save_agents()
        return agent

    def register(self, name: Any, description: Any) -> tuple[Agent, str]:
        """A new agent and its API key (``og_`` + 64 hex; only its hash is kept)."""
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name.strip()):
            raise ApiError(
                422,
                "name must be 1-50 characters: letters, digits, spaces, '_', '.', '-', starting "
                f"with a letter or digit (got {name!r})",
            )
        if description is not None and not isinstance(description, str):
            raise ApiError(422, "description must be a string")
        name = name.strip()
        with self.lock:
            if name.lower() in self._by_name:
                raise ApiError(409, f"an agent named {name!r} already exists; choose another name")
            key = "og_" + secrets.token_hex(32)
            agent = self._add_agent(name, (description or "")[:500], key)
            self.changed.notify_all()
            return agent, key

    def authenticate(self, authorization: str | None) -> Agent:
        if not authorization:
            raise ApiError(401, "missing API key: send 'Authorization: Bearer og_...'")
        scheme, _, key = authorization.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise ApiError(401, "the Authorization header must be 'Bearer og_...'")
        if not KEY_PATTERN.fullmatch(key):
            raise ApiError(401, "invalid API key format: a key is og_ followed by 64 hexadecimal characters")
        with self.lock:
            agent_id = self._by_key.get(hash_key(key))
            if agent_id is None:
                raise ApiError(401, "invalid API key: no agent has this key")
            agent = self.agents[agent_id]
            agent.last_seen = time.time()
            return agent

    def agent(self, agent_id: str) -> Agent:
        with self.lock:
            agent = self.agents.get(agent_id)
            if agent is None:
                raise ApiError(404, f"no agent with id {agent_id!r}")
            return agent

    def agent_by_name(self, name: str) -> Agent:
        with self.lock:
            agent_id = self._by_name.get(name.strip().lower())
            if agent_id is None:
                raise ApiError(404, f"no agent named {name!r}")
            return self.agents[agent_id]

    def house_agent(self, kind: str) -> Agent:
        if kind not in HOUSE_KINDS:
            raise ApiError(422, f"house opponents are {', '.join(HOUSE_KINDS)}, not {kind!r}")
        return self.agent_by_name(kind)

    def agent_status(self, agent: Agent) -> dict[str, Any]:
        with self.lock:
            ticket = self._tickets.get(agent.id)
            active = [
                g.id
                for g in self.games.values()
                if not g.over and agent.id in (g.seats[1].agent_id, g.seats[2].agent_id)
            ]
            return {
                "agent_id": agent.id,
                "name": agent.name,
                "status": "active",
                "is_active": True,
                "in_queue": ticket is not None,  # as /matchmaking/status counts it: waiting or matched
                "matched_game_id": ticket.game_id if ticket is not None else None,
                "active_games": active,
            }

    # --- stats ---------------------------------------------------------------------------------------------
    def stats(self, agent: Agent) -> dict[str, Any]:
        """Win rate, hit rate and average turns to win, from the completed games' records."""
        with self.lock:
            played = wins = shots = hits = 0
            turns_to_win: list[int] = []
            for record in self.records.values():
                role = next(
                    (int(k[-1]) for k, v in record["agents"].items() if v.get("agent_id") == agent.id), None
                )
                if role is None:
                    continue
                played += 1
                mine = [t for t in record["turns"] if t["player"] == role]
                shot_turns = [t for t in mine if t["action_type"] == "shoot"]
                shots += len(shot_turns)
                hits += sum(1 for t in shot_turns if t["result"]["hit"])
                if record["result"]["winner_player"] == role:
                    wins += 1
                    turns_to_win.append(len(mine))
            return {
                "agent_id": agent.id,
                "name": agent.name,
                "games_played": played,
                "wins": wins,
                "losses": played - wins,
                "win_rate": round(wins / played, 4) if played else 0.0,
                "total_shots": shots,
                "total_hits": hits,
                "hit_rate": round(hits / shots, 4) if shots else 0.0,
                "avg_turns_to_win": round(sum(turns_to_win) / len(turns_to_win), 2) if turns_to_win else None,
            }

    def leaderboard(self, sort_by: str, limit: int) -> list[dict[str, Any]]:
        if sort_by not in ("wins", "win_rate", "hit_rate"):
            raise ApiError(422, f"sort_by must be wins, win_rate or hit_rate, not {sort_by!r}")
        with self.lock:
            rows = [self.stats(a) for a in self.agents.values()]
        rows = [r for r in rows if r["games_played"] > 0]
        rows.sort(key=lambda r: (-r[sort_by], -r["wins"], -r["win_rate"], r["name"].lower()))
        return [{"rank": i + 1} | r for i, r in enumerate(rows[:limit])]

    def platform_stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "total_agents": len(self.agents),
                "total_games": len(self.records)
                + sum(1 for g in self.games.values() if g.id not in self.records),
                "completed_games": len(self.records),
                "active_games": sum(1 for g in self.games.values() if not g.over),
                "total_turns": sum(r["total_turns"] for r in self.records.values()),
                "agents_in_queue": sum(1 for t in self.queue if t.game_id is None),
                "game_types": [GAME_TYPE],
            }

    # --- matchmaking ---------------------------------------------------------------------------------------
    def _waiting(self) -> list[Ticket]:
        return [t for t in self.queue if t.game_id is None]

    def _position(self, ticket: Ticket) -> int:
        if ticket.game_id is not None:
            return 0
        return self._waiting().index(ticket) + 1

    def _enqueue(self, ticket: Ticket) -> None:
        self._seq += 1
        ticket.seq = self._seq
        self.queue.append(ticket)

    def mm_join(self, agent: Agent) -> dict[str, Any]:
        with self.lock:
            ticket = self._tickets.get(agent.id)
            if ticket is not None:
                if ticket.game_id is None:
                    raise ApiError(
                        409,
                        f"already in the matchmaking queue (position {self._position(ticket)}); "
                        f"poll GET /api/v1/matchmaking/status",
                    )
                game = self.games.get(ticket.game_id)
                if game is not None and not game.over:
                    raise ApiError(
                        409,
                        f"already matched: game {ticket.game_id} is in progress; join it with "
                        f"POST /api/v1/mcp/game/join?game_id={ticket.game_id}",
                    )
                self.queue.remove(ticket)
            ticket = Ticket(agent.id)
            self._enqueue(ticket)
            self._tickets[agent.id] = ticket
            self.changed.notify_all()
            waiting = self._waiting()
            return {
                "message": "Joined matchmaking queue",
                "position": waiting.index(ticket) + 1,
                "queue_size": len(waiting),
            }

    def mm_status(self, agent: Agent) -> dict[str, Any]:
        with self.lock:
            ticket = self._tickets.get(agent.id)
            size = len(self._waiting())
            if ticket is None:
                return {
                    "in_queue": False,
                    "matched": False,
                    "game_id": None,
                    "position": None,
                    "queue_size": size,
                }
            game = self.games.get(ticket.game_id) if ticket.game_id else None
            answer = {
                "in_queue": True,
                "matched": ticket.game_id is not None,
                "game_id": ticket.game_id,
                "position": self._position(ticket),
                "queue_size": size,
                "wait_seconds": round(((ticket.matched_mono or time.monotonic()) - ticket.joined_mono), 3),
            }
            if game is not None:
                answer["game_over"] = game.over
            return answer

    def mm_leave(self, agent: Agent) -> dict[str, Any]:
        with self.lock:
            ticket = self._tickets.pop(agent.id, None)
            if ticket is None:
                return {"message": "Not in the matchmaking queue", "left": False}
            self.queue.remove(ticket)
            self.changed.notify_all()
            if ticket.game_id is not None:
                return {"message": f"Left the queue; the matched game {ticket.game_id} goes on", "left": True}
            return {"message": "Left matchmaking queue", "left": True}

    def enqueue_house(self, kind: str, moves: bool, delay: float | None) -> dict[str, Any]:
        """Puts one house opponent in the queue (a house agent may wait in several places at once)."""
        agent = self.house_agent(kind)
        with self.lock:
            ticket = Ticket(agent.id, house_moves=moves, house_delay=delay)
            self._enqueue(ticket)
            self.changed.notify_all()
            waiting = self._waiting()
            return {
                "agent_id": agent.id,
                "name": agent.name,
                "moves": moves,
                "position": waiting.index(ticket) + 1,
                "queue_size": len(waiting),
            }

    def queue_info(self) -> dict[str, Any]:
        with self.lock:
            now = time.monotonic()
            waiting = self._waiting()
            waits = [now - t.joined_mono for t in waiting]
            return {
                "queue_size": len(waiting),
                "avg_wait_seconds": round(sum(self._waits) / len(self._waits), 3) if self._waits else 0.0,
                "longest_wait_seconds": round(max(waits), 3) if waits else 0.0,
                "pairing": "FIFO: the two longest-waiting agents are paired into a new game",
            }

    def pair(self) -> list[SandboxGame]:
        """The matchmaking worker's run: pairs waiting tickets two by two, longest-waiting first (never an
        agent with itself); the earlier of the two is player 1."""
        games = []
        with self.lock:
            waiting = self._waiting()
            while len(waiting) >= 2:
                first = waiting.pop(0)
                second = next((t for t in waiting if t.agent_id != first.agent_id), None)
                if second is None:
                    break
                waiting.remove(second)
                games.append(self._match(first, second))
        return games

    def _match(
        self,
        first: Ticket,
        second: Ticket,
        seed: int | None = None,
        placement: dict[int, list[Ship]] | None = None,
    ) -> SandboxGame:
        now = time.monotonic()
        seats = {}
        for role, ticket in ((1, first), (2, second)):
            agent = self.agents[ticket.agent_id]
            seats[role] = Seat(agent.id, agent.name, agent.description, agent.house)
        try:
            game = SandboxGame(
                seats,
                self.rules,
                self.turn_timeout,
                seed=self._rng.randrange(2**31) if seed is None else seed,
                placement=placement,
            )
        except RulesError as exc:
            raise ApiError(422, f"invalid placement: {exc}") from None
        self.games[game.id] = game
        for role, ticket in ((1, first), (2, second)):
            ticket.game_id = game.id
            ticket.matched_mono = now
            self._waits.append(now - ticket.joined_mono)
            if self.agents[ticket.agent_id].house is not None:
                self.queue.remove(ticket)  # house tickets are used up by their match
            opponent = seats[3 - role]
            self._notify(
                ticket.agent_id,
                {
                    "event": "match_found",
                    "game_id": game.id,
                    "opponent_name": opponent.name,
                    "player_role": role,
                },
            )
        log.info(
            "sandbox: matched %s (player 1) and %s (player 2) in game %s (seed %d)",
            seats[1].name,
            seats[2].name,
            game.id,
            game.seed,
        )
        for role, ticket in ((1, first), (2, second)):
            if self.agents[ticket.agent_id].house is not None and self.house_starter is not None:
                self.house_starter(game, role, ticket)
        self.changed.notify_all()
        return game

    def create_game(
        self, agent1: Agent, agent2: Agent, seed: int | None = None, placement: Any = None
    ) -> SandboxGame:
        """A game between two agents without the queue (control API); ``agent1`` is player 1. ``placement``
        optionally sets either fleet, as the dataset writes it: ``{"player1": {"Carrier": ["A1", ...], ...}}``
        (a fleet left out is placed from the seed)."""
        if agent1.id == agent2.id:
            raise ApiError(422, "an agent cannot play itself")
        fleets = self._parse_placement(placement)
        with self.lock:
            return self._match(Ticket(agent1.id), Ticket(agent2.id), seed, fleets)

    def _parse_placement(self, placement: Any) -> dict[int, list[Ship]] | None:
        if placement is None:
            return None
        example = '{"player1": {"Carrier": ["A1", "A2", "A3", "A4", "A5"], "Battleship": [...], ...}}'
        if not isinstance(placement, dict) or not set(placement) <= {"player1", "player2"}:
            raise ApiError(422, f"placement must be an object like {example}")
        fleets: dict[int, list[Ship]] = {}
        for key, fleet in placement.items():
            if not isinstance(fleet, dict):
                raise ApiError(422, f"placement.{key} must be an object like {example}")
            ships = []
            for name, cells in fleet.items():
                if not isinstance(cells, list) or not all(isinstance(c, str) for c in cells):
                    raise ApiError(422, f'placement.{key}.{name} must be a list of cells such as "A1"')
                try:
                    spec = self.rules.spec(name)
                    parsed = [parse_cell(c, self.rules.rows, self.rules.cols) for c in cells]
                    ships.append(Ship.from_cells(spec.name, parsed))
                except (ValueError, RulesError) as exc:
                    raise ApiError(422, f"placement.{key}.{name}: {exc}") from None
            fleets[int(key[-1])] = ships
        return fleets

    # --- games ---------------------------------------------------------------------------------------------
    def game(self, game_id: str) -> SandboxGame:
        game = self.games.get(game_id)
        if game is None:
            raise ApiError(404, f"no game with id {game_id!r}")
        return game

    def _notify(self, agent_id: str, payload: dict[str, Any]) -> None:
        if self.webhook_sink is not None:
            self.webhook_sink(agent_id, payload)

    def _after_change(self, game: SandboxGame, *, new_turn: bool, ended: bool) -> None:
        """Webhooks, records and wake-ups after ``game`` changed: ``new_turn`` if a turn began (the game
        started, or an action was played), ``ended`` if the game ended just now."""
        mover = game.to_move
        if new_turn and mover is not None:
            self._notify(
                game.seats[mover].agent_id, {"event": "your_turn", "game_id": game.id, "turn": game.turn}
            )
        if ended:
            self._on_over(game)
        self.changed.notify_all()

    def _on_over(self, game: SandboxGame) -> None:
        winner = game.seats[game.winner] if game.winner else None
        for seat in game.seats.values():
            self._notify(
                seat.agent_id,
                {
                    "event": "game_over",
                    "game_id": game.id,
                    "winner_id": winner.agent_id if winner else None,
                    "winner_name": winner.name if winner else None,
                    "you_won": winner is not None and winner.agent_id == seat.agent_id,
                    "reason": game.end_reason,
                },
            )
        if game.status == "completed":
            record = game.record()
            self.records[game.id] = record
            self._save_record(record)
        log.info(
            "sandbox: game %s over: %s (%s, %d turns)",
            game.id,
            f"{winner.name} won" if winner else "abandoned",
            game.end_reason,
            len(game.turns),
        )

    def join_game(self, agent: Agent, game_id: str) -> dict[str, Any]:
        with self.lock:
            game = self.game(game_id)
            role = game.role_of(agent.id)
            now = time.monotonic()
            if game.check_timeout(now):
                self._after_change(game, new_turn=False, ended=True)
            if game.over:
                return {
                    "game_id": game.id,
                    "player_role": role,
                    "message": f"Game {game.id} is over.",
                    "waiting_for_opponent": False,
                    "opponent_connected": game.seats[3 - role].joined,
                    "game_over": True,
                }
            started = game.join(role, now)
            ticket = self._tickets.get(agent.id)
            if self.forget_match_on_join and ticket is not None and ticket.game_id == game.id:
                del self._tickets[agent.id]  # the queue entry ends with the match: the status no longer names it
                self.queue.remove(ticket)
            self._after_change(game, new_turn=started, ended=False)
            opponent = game.seats[3 - role]
            return {
                "game_id": game.id,
                "player_role": role,
                "message": f"Joined game! You are Player {role}.",
                "waiting_for_opponent": not opponent.joined,
                "opponent_connected": opponent.joined,
                "opponent_name": opponent.name,
                "game_over": False,
            }

    def _checked(self, game_id: str) -> SandboxGame:
        game = self.game(game_id)
        if game.check_timeout(time.monotonic()):
            self._after_change(game, new_turn=False, ended=True)
        return game

    def state(self, agent: Agent, game_id: str) -> dict[str, Any]:
        with self.lock:
            game = self._checked(game_id)
            return game.player_view(game.role_of(agent.id), time.monotonic())

    def actions(self, agent: Agent, game_id: str) -> dict[str, Any]:
        with self.lock:
            game = self._checked(game_id)
            return game.actions_view(game.role_of(agent.id))

    def act(self, agent: Agent, game_id: str, body: Any) -> dict[str, Any]:
        with self.lock:
            game = self._checked(game_id)
            role = game.role_of(agent.id)
            answer = game.act(role, body, time.monotonic())
            self._after_change(game, new_turn=True, ended=game.over)
            return answer

    def spectate(self, game_id: str) -> dict[str, Any]:
        with self.lock:
            return self._checked(game_id).spectate(time.monotonic())

    def force_timeout(self, game_id: str) -> dict[str, Any]:
        with self.lock:
            game = self.game(game_id)
            if game.over:
                raise ApiError(409, f"game {game_id} is already over")
            game.force_timeout()
            self._after_change(game, new_turn=False, ended=True)
            return game.summary()

    def tick(self) -> None:
        """Turn deadlines of every active game."""
        with self.lock:
            now = time.monotonic()
            for game in list(self.games.values()):
                if game.check_timeout(now):
                    self._after_change(game, new_turn=False, ended=True)

    def game_summary(self, game_id: str) -> dict[str, Any]:
        with self.lock:
            game = self.games.get(game_id)
            if game is not None:
                return game.summary()
            record = self.records.get(game_id)
            if record is None:
                raise ApiError(404, f"no game with id {game_id!r}")
            return record_summary(record)

    def completed_games(self, agent_id: str | None, skip: int, limit: int) -> list[dict[str, Any]]:
        with self.lock:
            records = list(self.records.values())
        if agent_id:
            records = [r for r in records if any(a.get("agent_id") == agent_id for a in r["agents"].values())]
        records.reverse()  # newest first
        return [record_summary(r) for r in records[skip : skip + limit]]

    def live_games(self) -> list[dict[str, Any]]:
        with self.lock:
            return [g.summary() for g in self.games.values() if not g.over]

    def record(self, game_id: str) -> dict[str, Any]:
        with self.lock:
            record = self.records.get(game_id)
            if record is None:
                if game_id in self.games:
                    raise ApiError(
                        404, f"game {game_id} is not completed: only completed games are in the dataset"
                    )
                raise ApiError(404, f"no completed game with id {game_id!r}")
            return record

    def record_list(self, skip: int, limit: int | None) -> list[dict[str, Any]]:
        with self.lock:
            records = list(self.records.values())
        return records[skip:] if limit is None else records[skip : skip + limit]

    # --- webhooks ------------------------------------------------------------------------------------------
    def register_webhook(self, agent: Agent, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(
                422,
                'expected {"webhook_url": "http://host:port/path", "webhook_token": "...", '
                '"endpoint_type": "agent"}',
            )
        url, token, kind = (
            body.get("webhook_url"),
            body.get("webhook_token"),
            body.get("endpoint_type", "agent"),
        )
        if not isinstance(url, str) or not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url.strip()):
            raise ApiError(422, f"webhook_url must be an http:// or https:// URL, not {url!r}")
        if not isinstance(token, str) or not token.strip():
            raise ApiError(
                422,
                'webhook_token must be a non-empty string: every webhook carries it as "token" so '
                "that your receiver can reject forged calls",
            )
        if not isinstance(kind, str) or not kind.strip():
            raise ApiError(422, 'endpoint_type must be a non-empty string (e.g. "agent")')
        with self.lock:
            updated = agent.webhook is not None
            agent.webhook = Webhook(url.strip(), token, kind.strip())
        return {
            "message": "Webhook updated" if updated else "Webhook registered",
            "webhook_url": url.strip(),
            "endpoint_type": kind.strip(),
            "events": ["match_found", "your_turn", "game_over"],
        }

    def webhook_info(self, agent: Agent) -> dict[str, Any]:
        hook = agent.webhook
        if hook is None:
            return {"registered": False, "webhook_url": None, "endpoint_type": None}
        return {
            "registered": True,
            "webhook_url": hook.url,
            "endpoint_type": hook.endpoint_type,
            "token_set": True,
            "registered_at": iso(hook.registered_at),
            "events": ["match_found", "your_turn", "game_over"],
        }

    def delete_webhook(self, agent: Agent) -> dict[str, Any]:
        with self.lock:
            had = agent.webhook is not None
            agent.webhook = None
        return {"message": "Webhook removed" if had else "No webhook was registered", "removed": had}

    # --- control API ---------------------------------------------------------------------------------------
    def control_agents(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                a.public() | {"house": a.house, "webhook_url": a.webhook.url if a.webhook else None}
                for a in self.agents.values()
            ]

    def control_games(self) -> list[dict[str, Any]]:
        with self.lock:
            games = [g.summary() for g in self.games.values()]
            games += [record_summary(r) for gid, r in self.records.items() if gid not in self.games]
            return games

    def control_game(self, game_id: str) -> dict[str, Any]:
        with self.lock:
            game = self.games.get(game_id)
            if game is not None:
                return game.truth(time.monotonic())
            return self.record(game_id)  # a game from an earlier run: its record holds the placement

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def active_game_ids(self) -> Iterable[str]:
        with self.lock:
            return [g.id for g in self.games.values() if not g.over]


def record_summary(record: dict[str, Any]) -> dict[str, Any]:
    """A completed game's public summary from its dataset record."""
    agents = record["agents"]
    winner = record["result"]["winner_player"]
    return {
        "game_id": record["game_id"],
        "game_type": record["game_type"],
        "status": "completed",
        "player1": {"agent_id": agents["player1"].get("agent_id"), "name": agents["player1"]["name"]},
        "player2": {"agent_id": agents["player2"].get("agent_id"), "name": agents["player2"]["name"]},
        "turn": record["total_turns"],
        "total_turns": record["total_turns"],
        "current_player": None,
        "started_at": record["started_at"],
        "completed_at": record["completed_at"],
        "duration_seconds": record["duration_seconds"],
        "game_over": True,
        "winner_player": winner,
        "winner_id": agents[f"player{winner}"].get("agent_id"),
        "winner_name": record["result"]["winner_name"],
        "end_reason": record["result"].get("reason"),
    }

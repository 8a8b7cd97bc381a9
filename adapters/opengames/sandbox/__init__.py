"""A local Open Games server for dry runs and tests: the whole Battleship API of the seed (agents and keys,
FIFO matchmaking, game sessions, state/actions/action, turn timeouts, spectating, leaderboard and stats, live
games, webhooks, the dataset export), house opponents (``random``, ``hunt-target``) and a control API under
``/sandbox/`` (docs/opengames-sandbox.md). Game logic is :mod:`bridge.games.battleship_rules`."""

from __future__ import annotations

from bridge.adapters.opengames.sandbox.server import OpenGamesSandbox, run_sandbox

__all__ = ["OpenGamesSandbox", "run_sandbox"]

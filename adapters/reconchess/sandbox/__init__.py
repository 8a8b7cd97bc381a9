"""A local reconchess server for dry runs and tests: the whole HTTP API of the seed (users, invitations,
games, history) on top of reconchess's own ``LocalGame`` arbiter with real clocks, HTTP basic auth, house
opponents (``random``, ``attacker``, ``trout``) and a control API under ``/sandbox/``
(docs/reconchess-sandbox.md)."""

from __future__ import annotations

from bridge.adapters.reconchess.sandbox.server import ReconchessSandbox, run_sandbox

__all__ = ["ReconchessSandbox", "run_sandbox"]

"""A local OGS server for dry runs and tests: the real wire protocol (plain WebSocket at ``/`` and legacy
socket.io at ``/socket.io/``), the REST calls a bot makes, Go refereed by :mod:`bridge.games.gorules`, server
clocks, house opponents, and a control API under ``/sandbox/`` (docs/ogs-sandbox.md)."""

from __future__ import annotations

from bridge.adapters.ogs.sandbox.server import SandboxServer, run_sandbox

__all__ = ["SandboxServer", "run_sandbox"]

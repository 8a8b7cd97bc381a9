"""Reconnaissance Blind Chess on a reconchess server (https://rbc.jhuapl.edu): the client adapter, its HTTP
API client, and a local sandbox server."""

from __future__ import annotations

from typing import Any

from bridge.adapters.reconchess.config import ReconchessServerConfig
from bridge.events import AdapterSpec, DemoOptions


def _factory(server: ReconchessServerConfig, config: Any) -> Any:
    from bridge.adapters.reconchess.client import ReconchessAdapter

    return ReconchessAdapter(server, config)


def _sandbox(host: str, port: int, **kwargs: Any) -> Any:
    from bridge.adapters.reconchess.sandbox import run_sandbox

    return run_sandbox(host, port, **kwargs)


def _rbc_demo(opts: DemoOptions) -> int:
    from bridge.adapters.reconchess.demo import rbc_demo

    return rbc_demo(opts)


ADAPTER = AdapterSpec(
    kind="reconchess", game="rbc", config_model=ReconchessServerConfig, factory=_factory, sandbox=_sandbox,
    demos={"rbc": _rbc_demo},
)

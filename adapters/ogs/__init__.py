"""online-go.com: the client adapter, its protocol codec and its local sandbox server."""

from __future__ import annotations

from typing import Any

from bridge.adapters.ogs.config import OgsServerConfig
from bridge.events import AdapterSpec, DemoOptions


def _factory(server: OgsServerConfig, config: Any) -> Any:
    from bridge.adapters.ogs.client import OgsAdapter

    return OgsAdapter(server, config)


def _sandbox(host: str, port: int, **kwargs: Any) -> Any:
    from bridge.adapters.ogs.sandbox import run_sandbox

    return run_sandbox(host, port, **kwargs)


def _go_demo(opts: DemoOptions) -> int:
    from bridge.adapters.ogs.demo import go_demo

    return go_demo(opts)


def _go_analysis_demo(opts: DemoOptions) -> int:
    from bridge.adapters.ogs.demo import go_analysis_demo

    return go_analysis_demo(opts)


ADAPTER = AdapterSpec(kind="ogs", game="go", config_model=OgsServerConfig, factory=_factory, sandbox=_sandbox,
                      demos={"go": _go_demo, "go-analysis": _go_analysis_demo})

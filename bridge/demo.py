"""``gamebridge demo``: the main job on the embedded defaults. Each adapter names its demos in its spec
(``AdapterSpec.demos``): each starts that server's sandbox in-process, runs the daemon against it with a Debian
engine, has a house opponent play the bot, and shows the game as it goes. Nothing here names an adapter."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from bridge.events import RBC_DEMO_INCREMENT, RBC_DEMO_SECONDS, DemoOptions
from bridge.registry import adapter_specs


def demo_names() -> list[str]:
    """Every demo the installed adapters offer, in the order ``gamebridge demo`` plays them."""
    return [name for spec in adapter_specs().values() for name in spec.demos]


def run_demo(*, games: list[str], size: int = 9, opponent: str = "gnugo", rbc_opponent: str = "random",
             rbc_seconds: float = RBC_DEMO_SECONDS, rbc_increment: float = RBC_DEMO_INCREMENT,
             data_dir: Path = Path("runs/demo"), out: TextIO, delay: float = 0.0) -> int:
    opts = DemoOptions(data_dir=data_dir, out=out, size=size, opponent=opponent, rbc_opponent=rbc_opponent,
                       rbc_seconds=rbc_seconds, rbc_increment=rbc_increment, delay=delay)
    code = 0
    for spec in adapter_specs().values():
        for name, demo in spec.demos.items():
            if name in games:
                code |= demo(opts)
    return code

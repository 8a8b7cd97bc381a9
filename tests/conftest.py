"""Shared fixtures. Keep each fixture small and documented; add new ones below the existing ones."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from bridge.adapters.ogs.sandbox import SandboxServer

GNUGO = "/usr/games/gnugo"
FAKE_GTP = Path(__file__).parent / "fakes" / "fake_gtp.py"


@pytest.fixture
def gnugo_command() -> list[str]:
    """GNU Go in GTP mode at level 1 (fast: ~7 ms a 9x9 genmove). Skips the test if GNU Go is missing."""
    if not os.access(GNUGO, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{GNUGO} is not installed: CI must install it (scripts/setup.sh does)")
        pytest.skip(f"{GNUGO} is not installed (apt-get install gnugo)")
    return [GNUGO, "--mode", "gtp", "--level", "1"]


@pytest.fixture
def fake_gtp_command() -> Callable[..., list[str]]:
    """``fake_gtp_command("--hang-on", "genmove")`` -> the command line of the scripted fake GTP engine
    (tests/fakes/fake_gtp.py, a real subprocess; its docstring lists the misbehaviour flags)."""

    def make(*flags: str) -> list[str]:
        return [sys.executable, str(FAKE_GTP), *flags]

    return make


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """The OGS sandbox on a free loopback port, stopped afterwards."""
    from bridge.adapters.ogs.sandbox import SandboxServer

    server = SandboxServer("127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


STOCKFISH = "/usr/games/stockfish"


@pytest.fixture
def stockfish() -> str:
    """Stockfish from Debian. Skips the test if it is missing (fails it in CI, where setup installs it)."""
    if not os.access(STOCKFISH, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{STOCKFISH} is not installed: CI must install it (scripts/setup.sh does)")
        pytest.skip(f"{STOCKFISH} is not installed (apt-get install stockfish)")
    return STOCKFISH

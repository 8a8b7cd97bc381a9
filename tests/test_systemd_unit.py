"""The systemd units in configs/: `systemd-analyze verify` is clean and `systemd-analyze security` rates each one
<= 3.0 (offline: no systemd needs to run as PID 1). Skipped, with the reason, where systemd-analyze is missing or
too old for --offline."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.errors import EXIT_CONFIG, EXIT_FATAL

ROOT = Path(__file__).parent.parent
UNITS = sorted((ROOT / "configs").glob("*.service"))
TEMPLATE = ROOT / "configs" / "gamebridge@.service"
EXEC_START = "/usr/local/bin/gamebridge"


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)


def _settings(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_template_unit_is_the_only_unit() -> None:
    assert UNITS == [TEMPLATE], UNITS


def test_the_template_speaks_the_daemons_protocol() -> None:
    s = _settings(TEMPLATE)
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["ExecStart"] == [f"{EXEC_START} run /etc/gamebridge/%i.yaml"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert re.fullmatch(r"\d+s", s["WatchdogSec"][0])
    assert s["Restart"] == ["on-failure"] and "StartLimitBurst" in s and "StartLimitIntervalSec" in s
    assert sorted(s["RestartPreventExitStatus"][0].split()) == sorted([str(EXIT_CONFIG), str(EXIT_FATAL)])
    assert s["DynamicUser"] == ["yes"] and s["StateDirectory"] == ["gamebridge/%i"]
    assert "MemoryMax" in s


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_verify_is_clean(unit: Path, tmp_path: Path) -> None:
    """`systemd-analyze verify` checks the syntax, every key, and that the commands exist. Where the console script
    is not installed at the unit's path on this machine, that one line is expected; a copy naming an executable
    that exists must then verify with no output at all."""
    p = _analyze("verify", str(unit))
    out = [line for line in (p.stdout + p.stderr).splitlines() if line.strip()]
    if Path(EXEC_START).exists():
        assert p.returncode == 0 and not out, out
        return
    missing = f"Command {EXEC_START} is not executable: No such file or directory"
    assert all(missing in line for line in out) and len(out) == 1, out
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(EXEC_START, "/bin/true"))
    p = _analyze("verify", str(copy))
    out = [line for line in (p.stdout + p.stderr).splitlines() if line.strip()]
    assert p.returncode == 0 and not out, out


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_security_exposure_is_at_most_3(unit: Path) -> None:
    p = _analyze("security", "--offline=true", "--threshold=30", "--no-pager", str(unit))
    text = p.stdout + p.stderr
    if "--offline" in text and ("unrecognized" in text or "Unknown" in text):
        pytest.skip("this systemd-analyze has no --offline (systemd >= 250 needed)")
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", text)
    assert m is not None, text[-2000:]
    assert float(m.group(1)) <= 3.0 and p.returncode == 0, text[-3000:]


MDWE_RUNNER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN (Linux >= 6.3)
    sys.exit(77)
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""

MDWE_CHECK = r"""
import sys
import bridge.cli, bridge.daemon, bridge.adapters.ogs.sandbox, bridge.adapters.reconchess, bridge.adapters.opengames
from bridge.check import check_engine
from bridge.config import load_config_text
from bridge.malloc import glibc, limit_arenas
arenas = limit_arenas()  # what `gamebridge run` does first: a plain ctypes call, no W+X memory
assert arenas == "malloc arenas: at most 2" or not glibc(), arenas
engines = {
    "gtp": "  command: [/usr/games/gnugo, --mode, gtp, --level, '1']\n",
    "uci": "  protocol: uci\n  command: [/usr/games/stockfish]\n",
    "line": f"  protocol: line\n  command: [{sys.executable}, scripts/battleship_engine.py]\n",
}
for name, engine in engines.items():
    cfg = load_config_text("server: {kind: ogs, username: x, api_key: {env: X}}\nengine:\n" + engine, name)
    lines = check_engine(cfg)
    assert lines and all(line.ok for line in lines), (name, [line.what for line in lines])
    print(name, "ok:", lines[0].what)
"""


def test_python_and_the_engines_run_without_writable_executable_memory(gnugo_command: list[str],
                                                                       stockfish: str) -> None:
    """MemoryDenyWriteExecute=yes is only in the unit because the daemon (CPython and every package it imports) and
    the engines (GNU Go, Stockfish, the reference Battleship engine) work without W+X memory: the same check as
    `gamebridge check` runs here under the kernel's equivalent, prctl(PR_SET_MDWE), inherited by the engines, after
    the cap on malloc arenas that `gamebridge run` sets first (bridge/malloc.py)."""
    p = subprocess.run([sys.executable, "-c", MDWE_RUNNER, "-c", MDWE_CHECK], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    if p.returncode == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux >= 6.3 needed)")
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    assert [line.split()[0] for line in p.stdout.splitlines()] == ["gtp", "uci", "line"], p.stdout

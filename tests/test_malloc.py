"""The daemon's cap on glibc's malloc arenas (bridge/malloc.py): threads allocating at once share two C heaps in the
daemon, while a program it starts (an engine) keeps glibc's defaults; an operator's MALLOC_ARENA_MAX is kept; and
`gamebridge run` sets the cap before anything else."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bridge import cli
from bridge.malloc import glibc, limit_arenas

glibc_only = pytest.mark.skipif(not glibc(), reason="the arena cap is glibc's")

# Eight threads allocate blocks above pymalloc's 512 bytes at the same moment, then glibc's malloc_info lists its
# heaps (one <heap nr=...> per arena); with --cap, bridge.malloc.limit_arenas runs first; with --child, the same
# probe also runs in a new Python started from there.
PROBE = textwrap.dedent("""
    import ctypes, re, subprocess, sys, tempfile, threading
    if "--cap" in sys.argv:
        from bridge.malloc import glibc, limit_arenas
        print(limit_arenas())
    barrier = threading.Barrier(9)
    def work():
        keep = [bytearray(1000 + i % 5000) for i in range(2000)]
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    barrier.wait()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    with tempfile.NamedTemporaryFile("r") as f:
        fp = ctypes.c_void_p(libc.fopen(f.name.encode(), b"w"))
        libc.malloc_info(0, fp)
        libc.fclose(fp)
        print("heaps", len(re.findall(r"<heap nr=", f.read())))
    for t in threads:
        t.join()
    if "--child" in sys.argv:
        print(subprocess.run([sys.executable, "-c", sys.argv[1]], capture_output=True, text=True).stdout)
""")


def _probe(*flags: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([sys.executable, "-c", PROBE, PROBE, *flags], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _heaps(out: str) -> list[int]:
    return [int(line.split()[1]) for line in out.splitlines() if line.startswith("heaps ")]


@glibc_only
def test_threads_allocating_at_once_share_two_heaps_and_a_started_program_keeps_the_default() -> None:
    env = {"MALLOC_ARENA_MAX": ""}  # glibc ignores an empty value; so does limit_arenas
    plain = _heaps(_probe(env=env))
    assert plain[0] > 2, f"the probe must see more than two heaps without the cap to mean anything: {plain}"
    out = _probe("--cap", "--child", env=env)
    assert "malloc arenas: at most 2" in out
    capped, child = _heaps(out)
    assert capped <= 2, out
    assert child > 2, f"a program started by the daemon (an engine) must keep glibc's default arenas: {out}"


def test_glibc_is_told_as_python_reads_it_from_the_executable() -> None:
    """The skips above and the systemd unit's test rely on it: it must not say "not glibc" on glibc."""
    assert glibc() == (platform.libc_ver()[0] == "glibc")


def test_an_operators_malloc_arena_max_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_arenas() == "malloc arenas: MALLOC_ARENA_MAX=4 from the environment, kept"


def test_run_sets_the_cap_before_it_reads_the_configuration(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    calls: list[str] = []

    def limit() -> str:
        calls.append("limit")
        return "malloc arenas: recorded"

    monkeypatch.setattr("bridge.malloc.limit_arenas", limit)
    assert cli.main(["run", str(tmp_path / "missing.yaml")]) == 78  # the configuration cannot be read: EX_CONFIG
    assert calls == ["limit"]

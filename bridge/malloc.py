"""Fewer C heaps for a daemon that runs for months (glibc only).

glibc's ``malloc`` gives threads that allocate at the same moment heaps of their own ("arenas"), up to 8 per core,
and keeps the memory freed in each for reuse there. The daemon starts threads all the time (a game's thread, its
engine's stderr reader, REST workers), so over thousands of games the freed memory spreads over many arenas: the
endurance benchmark (README, Endurance) measured the daemon's RSS growing ~130 KB per 100 games with glibc's default
and 65-77 KB with at most two arenas, the Python objects alive staying the same (tracemalloc). Python's own allocator
serves the small objects and the GIL serialises most allocations: at 100 games the cap changed the CPU a move by
0.998 x (scale benchmark, 3 pairs against the commit before).

:func:`limit_arenas` sets the cap with ``mallopt`` in this process only: the engines it starts are new programs
(``exec``) with glibc's defaults, so a multi-threaded engine (KataGo) keeps its per-thread arenas. An operator's own
``MALLOC_ARENA_MAX`` (read by glibc when the process starts) is left as it is.
"""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8  # glibc's malloc.h
ARENAS = 2


def glibc() -> bool:
    """Whether this process runs on glibc (asked of the C library itself, not read from the executable's file)."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # a C library without the name, or a system without confstr
        return False


def limit_arenas(arenas: int = ARENAS) -> str:
    """Cap this process's malloc arenas at ``arenas``; says what was done, for a debug line."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return f"malloc arenas: MALLOC_ARENA_MAX={os.environ['MALLOC_ARENA_MAX']} from the environment, kept"
    if not glibc():
        return "malloc arenas: not glibc, left to the C library"
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError) as exc:
        return f"malloc arenas: mallopt is not available ({exc}), left to the C library"
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if mallopt(M_ARENA_MAX, arenas) != 1:
        return "malloc arenas: glibc refused the cap, left as they are"
    return f"malloc arenas: at most {arenas}"

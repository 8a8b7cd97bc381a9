"""The daemon's data folder (``daemon.data_dir``): what goes there, and what to say when it cannot be written.

A folder that cannot be written (not a folder, no permission, a read-only mount, a full disk) never costs a game:
the game is played without its transcript or record, and the log says which folder and what to do, once at the
daemon's start and once for each game that is affected."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

FOLDERS = ("transcripts", "records")  # the folders every game writes to


def advice(folder: Path) -> str:
    """What the operator does about a folder of the data folder that cannot be written."""
    return f"make {folder} a writable folder with free space (it is under daemon.data_dir)"


def problems(data_dir: Path, *, create: bool) -> list[str]:
    """One message for each folder of ``data_dir`` the games cannot write in (empty: all is well).
    ``create``: make the folders and write a byte in each (the daemon); otherwise only look (``gamebridge check``:
    a folder that does not exist yet counts when the folder it would be made in can be written)."""
    out: list[str] = []
    for name in FOLDERS:
        folder = data_dir / name
        reason = _try_write(folder) if create else _looks_writable(folder)
        if reason is not None:
            out.append(f"daemon.data_dir: cannot write in {folder} ({reason}): games are played without {name} "
                       f"until it can be; {advice(folder)}")
    return out


def _try_write(folder: Path) -> str | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".write-check-") as f:
            f.write(b"x")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _looks_writable(folder: Path) -> str | None:
    path = folder
    while not path.exists():
        if path.parent == path:
            return "no part of the path exists"
        path = path.parent
    if not path.is_dir():
        return f"{path} is not a folder"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} is not writable by this user"
    fs = os.statvfs(path)
    if fs.f_bavail == 0 or fs.f_favail == 0:
        return "the disk is full"
    return None

"""The daemon's data folder (``daemon.data_dir``): what goes there, and what to say when it cannot be written.

A folder that cannot be written (not a folder, no permission, a read-only mount, a full disk) never costs a game:
the game is played without its transcript or record, and the log says which folder and what to do, once at the
daemon's start and once for each game that is affected.

Transcripts are kept bounded (:func:`prune_transcripts`: ``daemon.transcripts_max_mb`` and
``daemon.transcripts_max_days``), so that a daemon running for months does not fill its disk with them; records
are the games themselves and are kept."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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


def _existing(path: Path) -> Path | None:
    """``path`` or its nearest ancestor that exists (None: no part of it does)."""
    while not path.exists():
        if path.parent == path:
            return None
        path = path.parent
    return path


def _looks_writable(folder: Path) -> str | None:
    path = _existing(folder)
    if path is None:
        return "no part of the path exists"
    if not path.is_dir():
        return f"{path} is not a folder"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} is not writable by this user"
    fs = os.statvfs(path)
    if fs.f_bavail == 0 or fs.f_favail == 0:
        return "the disk is full"
    return None


# --- keeping transcripts/ bounded --------------------------------------------------------------------------------
RECENT = 3600.0  # seconds: a transcript written this recently is never removed (a game in progress, this daemon's
#                  or another's sharing the folder)


def _transcripts(folder: Path) -> list[tuple[float, int, Path]]:
    """(mtime, size, path) of every transcript in ``folder`` (``*.log`` files); none when the folder is absent or
    unreadable (the start-up check says so)."""
    files: list[tuple[float, int, Path]] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return files
    for entry in entries:
        if not entry.name.endswith(".log") or not entry.is_file(follow_symlinks=False):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        files.append((st.st_mtime, st.st_size, Path(entry.path)))
    return files


@dataclass
class Pruned:
    """What :func:`prune_transcripts` removed (and could not)."""

    files: int = 0
    bytes: int = 0
    failed: list[str] = field(default_factory=list)  # "path: reason"
    total_before: int = 0  # bytes of every transcript before
    total_after: int = 0

    def __bool__(self) -> bool:
        return bool(self.files or self.failed)


def prune_transcripts(folder: Path, *, max_mb: float, max_days: float, keep: Callable[[Path], bool] = lambda p: False,
                      now: float | None = None) -> Pruned:
    """Remove the oldest transcripts (``*.log`` in ``folder``) while they total more than ``max_mb`` MB (0: no
    cap), and those last written more than ``max_days`` days ago (0: kept however old). Never one that ``keep``
    says to keep (the daemon's games in progress) nor one written in the last :data:`RECENT` seconds. Records are
    not transcripts and are never touched. A file that cannot be removed is listed in ``failed``, not raised."""
    now = time.time() if now is None else now
    out = Pruned()
    if max_mb <= 0 and max_days <= 0:
        return out
    files = _transcripts(folder)
    total = sum(size for _, size, _ in files)
    out.total_before = total
    cap = max_mb * 1e6
    for mtime, size, path in sorted(files):  # the oldest first
        old = max_days > 0 and now - mtime > max_days * 86400
        over = max_mb > 0 and total > cap
        if not (old or over):
            break  # the oldest first: nothing younger is old, and the total is under the cap
        if now - mtime < RECENT or keep(path):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            total -= size
            continue
        except OSError as exc:
            out.failed.append(f"{path}: {exc.strerror or exc}")
            continue
        total -= size
        out.files += 1
        out.bytes += size
    out.total_after = total
    return out


# --- what the data folder holds (gamebridge check) ------------------------------------------------------------------
MIN_FREE = 100e6  # bytes the records and the logs should find free beyond the transcripts' room


def _records(folder: Path) -> tuple[int, int]:
    """(count, bytes) of the files under ``folder`` and its subfolders (dot files aside); (0, 0) when absent."""
    count = size = 0
    for root, _, names in os.walk(folder):
        for name in names:
            if name.startswith("."):
                continue
            try:
                size += os.stat(os.path.join(root, name), follow_symlinks=False).st_size
            except OSError:
                continue
            count += 1
    return count, size


def _free_bytes(path: Path) -> int | None:
    existing = _existing(path)
    if existing is None:
        return None
    try:
        fs = os.statvfs(existing)
    except OSError:
        return None
    return fs.f_bavail * fs.f_frsize


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB" if n < 1e9 else f"{n / 1e9:,.2f} GB"


def usage(data_dir: Path, max_mb: float) -> list[tuple[bool, str]]:
    """Lines for ``gamebridge check``: the transcripts' total against ``daemon.transcripts_max_mb``, the records,
    and whether the disk has room for the transcripts up to their cap (False: it has not)."""
    files = _transcripts(data_dir / "transcripts")  # what prune_transcripts counts and removes
    count, total = len(files), sum(size for _, size, _ in files)
    records, records_size = _records(data_dir / "records")
    cap = max_mb * 1e6
    if max_mb <= 0:
        cap_text = "no cap (daemon.transcripts_max_mb: 0): they grow without bound; set a cap in MB"
    elif total > cap:
        cap_text = (f"over daemon.transcripts_max_mb ({_mb(cap)}) by {_mb(total - cap)}: the daemon removes the "
                    f"oldest at its start and every 10 minutes")
    else:
        cap_text = f"of daemon.transcripts_max_mb {_mb(cap)}"
    lines = [(True, f"transcripts: {count} file(s), {_mb(total)}, {cap_text}"),
             (True, f"records: {records} file(s), {_mb(records_size)} (kept: never removed)")]
    free = _free_bytes(data_dir)
    if free is not None:
        room = max(cap - total, 0.0) if max_mb > 0 else 0.0
        need = room + MIN_FREE
        if free < need:
            lines.append((False, f"data folder {data_dir}: {_mb(free)} free on its disk, but the transcripts may take "
                                 f"{_mb(room)} more before their cap and the records grow too: free space there "
                                 f"or lower daemon.transcripts_max_mb"))
        else:
            lines.append((True, f"data folder {data_dir}: {_mb(free)} free on its disk"))
    return lines

"""The data folder (``daemon.data_dir``): the start-up check and ``gamebridge check`` say which folder the games
cannot write in and what to do (the games themselves: tests/test_hosting.py, tests/test_go_faults.py)."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge import datadir
from bridge.logsetup import setup_logging


def test_a_writable_data_dir_has_no_problem_and_is_made_by_the_daemon_only(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert datadir.problems(runs, create=False) == []
    assert not runs.exists(), "looking makes nothing"
    assert datadir.problems(runs, create=True) == []
    assert sorted(p.name for p in runs.iterdir()) == ["records", "transcripts"]
    assert list((runs / "records").iterdir()) == [], "the write check leaves no file behind"


def test_a_file_in_the_way_is_named_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "transcripts").write_text("in the way")
    for create in (True, False):
        [problem] = datadir.problems(tmp_path, create=create)
        assert problem.startswith(f"daemon.data_dir: cannot write in {tmp_path / 'transcripts'} (")
        assert problem.endswith(f"games are played without transcripts until it can be; make "
                                f"{tmp_path / 'transcripts'} a writable folder with free space (it is under "
                                f"daemon.data_dir)")


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real file system with no space left: a 64 KiB tmpfs, filled (needs root and a mount; skipped without)."""
    mount = tmp_path / "full"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with open(mount / "fill", "wb", buffering=0) as f, pytest.raises(OSError):
            while True:
                f.write(b"\0" * 4096)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_found_by_the_daemon_and_by_the_check(full_disk: Path) -> None:
    for create in (True, False):
        problems = datadir.problems(full_disk / "runs", create=create)
        assert len(problems) == 2, problems
        reason = "No space left on device" if create else "the disk is full"
        assert all(f"({reason}):" in p for p in problems), problems


@pytest.mark.parametrize("max_bytes", [1_000_000, 0], ids=["rotated", "watched"])
def test_a_log_file_on_a_full_disk_is_one_message_not_a_traceback_a_line(
        full_disk: Path, capfd: pytest.CaptureFixture[str], max_bytes: int) -> None:
    """``daemon.log_file`` on a disk that fills up: Python's logging printed a 10-line "--- Logging error ---"
    traceback on stderr (the journal) for every log line. Now one error says which file and what to do, the lines
    still reach stderr, and one line says when the file is written again."""
    log_file = full_disk / "gamebridge.log"
    log = logging.getLogger("bridge.test.full")
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    try:
        setup_logging("INFO", log_file, max_bytes=max_bytes, backups=1, journal=False)
        for i in range(5):
            log.info("line %d while the disk is full", i)
        (full_disk / "fill").unlink()
        log.info("a line once there is room again")
        err = capfd.readouterr().err
    finally:
        setup_logging("WARNING", journal=False)  # closes the test's file handler ...
        for h in list(root.handlers):  # ... and pytest's handlers come back (a stream on this test's captured
            root.removeHandler(h)  # stderr, closed after it, printed a "Logging error" in later tests)
        for h in before[0]:
            root.addHandler(h)
        root.setLevel(before[1])
    assert "Logging error" not in err and "Traceback" not in err, err
    failed = [line for line in err.splitlines() if "cannot write the log file" in line]
    assert len(failed) == 1, err
    assert f"cannot write the log file {log_file} (No space left on device)" in failed[0]
    assert f"free space in {full_disk}" in failed[0] and "daemon.log_file" in failed[0]
    assert all(f"line {i} while the disk is full" in err for i in range(5)), "stderr keeps every line"
    assert f"the log file {log_file} is written again" in err
    assert "a line once there is room again" in log_file.read_text()


# --- transcripts kept bounded ------------------------------------------------------------------------------------
DAY = 86400.0


def _transcripts(folder: Path, ages_days: list[float], size: int = 1_000_000) -> list[Path]:
    """Transcripts of ``size`` bytes last written ``ages_days`` ago (real files, their mtimes set)."""
    import os
    import time

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, age in enumerate(ages_days):
        p = folder / f"ogs-{1000 + i}.log"
        p.write_bytes(b"x" * size)
        when = time.time() - age * DAY
        os.utime(p, (when, when))
        paths.append(p)
    return paths


def test_past_the_cap_the_oldest_transcripts_go_and_nothing_else(tmp_path: Path) -> None:
    folder = tmp_path / "transcripts"
    paths = _transcripts(folder, [5, 1, 4, 2, 3])  # 5 MB in all
    (folder / "notes.txt").write_text("not a transcript")
    (folder / "sub").mkdir()
    (folder / "sub" / "old.log").write_text("in a subfolder")
    pruned = datadir.prune_transcripts(folder, max_mb=3.2, max_days=0)
    assert (pruned.files, pruned.bytes, pruned.total_before, pruned.total_after) == (2, 2_000_000, 5_000_000,
                                                                                     3_000_000)
    assert [p.exists() for p in paths] == [False, True, False, True, True]  # the 5- and 4-day-old ones
    assert (folder / "notes.txt").exists() and (folder / "sub" / "old.log").exists()
    assert not datadir.prune_transcripts(folder, max_mb=3.2, max_days=0), "under the cap: nothing more"


def test_old_transcripts_go_by_age_and_zero_keeps_everything(tmp_path: Path) -> None:
    folder = tmp_path / "transcripts"
    paths = _transcripts(folder, [10, 6, 8, 1], size=10)
    assert not datadir.prune_transcripts(folder, max_mb=0, max_days=0)
    assert all(p.exists() for p in paths)
    pruned = datadir.prune_transcripts(folder, max_mb=0, max_days=7)
    assert pruned.files == 2
    assert [p.exists() for p in paths] == [False, True, False, True]


def test_a_transcript_written_in_the_last_hour_or_kept_is_never_removed(tmp_path: Path) -> None:
    folder = tmp_path / "transcripts"
    paths = _transcripts(folder, [0.01, 3, 2])  # the first one written ~15 minutes ago
    pruned = datadir.prune_transcripts(folder, max_mb=0.5, max_days=1, keep=lambda p: p == paths[1])
    assert pruned.files == 1 and pruned.total_after == 2_000_000
    assert [p.exists() for p in paths] == [True, True, False]


def test_a_transcript_that_cannot_be_removed_is_listed_not_raised(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "transcripts"
    paths = _transcripts(folder, [3, 2])
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self == paths[0]:
            raise PermissionError(13, "Permission denied")
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    pruned = datadir.prune_transcripts(folder, max_mb=0.5, max_days=0)
    assert pruned.files == 1 and pruned.failed == [f"{paths[0]}: Permission denied"]
    assert paths[0].exists() and not paths[1].exists()


def test_the_daemon_prunes_at_its_start_but_never_a_game_in_progress(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import sys
    import threading

    from bridge.config import load_config_text
    from bridge.daemon import Daemon

    class Idle:
        def run(self, host: object, stop: threading.Event) -> None:
            stop.wait()

        def check(self) -> list[object]:
            return []

    data = tmp_path / "runs"
    paths = _transcripts(data / "transcripts", [9, 8, 7, 6])
    config = load_config_text(f"""
server: {{kind: ogs, url: "http://127.0.0.1:9", username: bot, api_key: {{env: UNUSED_KEY}}}}
engine: {{command: ["{sys.executable}", "-c", "pass"]}}
daemon: {{data_dir: "{data}", transcripts_max_mb: 2.5}}
""")
    daemon = Daemon(config, adapter=Idle())  # type: ignore[arg-type]
    daemon._games["1000"] = threading.current_thread()  # the oldest one's game is in progress
    with caplog.at_level(logging.INFO, logger="bridge.daemon"):
        daemon.prune_transcripts()
    assert [p.exists() for p in paths] == [True, False, False, True]
    [line] = [r.getMessage() for r in caplog.records if "transcript" in r.getMessage()]
    assert line == (f"removed the 2 oldest transcript(s), 2.0 MB, from {data / 'transcripts'} "
                    f"(daemon.transcripts_max_mb: 2.5; 2.0 MB of transcripts left; the records are kept)")
    # over the cap with nothing that may go (games in progress, a transcript just written): said once
    daemon._games["1003"] = threading.current_thread()
    (data / "transcripts" / "ogs-2000.log").write_bytes(b"x" * 1_000_000)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bridge.daemon"):
        assert not daemon.prune_transcripts()
        assert not daemon.prune_transcripts()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "total 3.0 MB, over daemon.transcripts_max_mb (2.5 MB), and none more can be " \
                              "removed" in said[0], said
    assert all(p.exists() for p in (paths[0], paths[3]))


# --- what gamebridge check says of the data folder ---------------------------------------------------------------
def test_the_check_counts_transcripts_against_their_cap_and_the_records(tmp_path: Path) -> None:
    _transcripts(tmp_path / "transcripts", [1, 2, 3], size=2_000_000)
    (tmp_path / "transcripts" / "notes.txt").write_text("not a transcript")
    (tmp_path / "records" / "ogs").mkdir(parents=True)
    (tmp_path / "records" / "ogs" / "1.sgf").write_bytes(b"x" * 500_000)
    (tmp_path / "records" / "2.json").write_bytes(b"x" * 500_000)
    lines = datadir.usage(tmp_path, max_mb=10)
    assert lines[0] == (True, "transcripts: 3 file(s), 6.0 MB, of daemon.transcripts_max_mb 10.0 MB")
    assert lines[1] == (True, "records: 2 file(s), 1.0 MB (kept: never removed)")
    assert lines[2][0] and lines[2][1].startswith(f"data folder {tmp_path}: ") and "free on its disk" in lines[2][1]
    over = datadir.usage(tmp_path, max_mb=5)[0][1]
    assert over == ("transcripts: 3 file(s), 6.0 MB, over daemon.transcripts_max_mb (5.0 MB) by 1.0 MB: the daemon "
                    "removes the oldest at its start and every 10 minutes")
    assert "grow without bound" in datadir.usage(tmp_path, max_mb=0)[0][1]
    empty = datadir.usage(tmp_path / "not-yet", max_mb=10)  # before the first start: nothing, and no error
    assert empty[:2] == [(True, "transcripts: 0 file(s), 0.0 MB, of daemon.transcripts_max_mb 10.0 MB"),
                         (True, "records: 0 file(s), 0.0 MB (kept: never removed)")]


def test_the_check_fails_a_disk_without_room_for_the_transcripts_cap(full_disk: Path) -> None:
    lines = datadir.usage(full_disk / "runs", max_mb=1000)
    assert lines[2] == (False, f"data folder {full_disk / 'runs'}: 0.0 MB free on its disk, but the transcripts may "
                               f"take 1.00 GB more before their cap and the records grow too: free space there "
                               f"or lower daemon.transcripts_max_mb")

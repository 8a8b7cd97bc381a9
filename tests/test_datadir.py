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
    try:
        setup_logging("INFO", log_file, max_bytes=max_bytes, backups=1, journal=False)
        for i in range(5):
            log.info("line %d while the disk is full", i)
        (full_disk / "fill").unlink()
        log.info("a line once there is room again")
        err = capfd.readouterr().err
    finally:
        setup_logging("WARNING", journal=False)
    assert "Logging error" not in err and "Traceback" not in err, err
    failed = [line for line in err.splitlines() if "cannot write the log file" in line]
    assert len(failed) == 1, err
    assert f"cannot write the log file {log_file} (No space left on device)" in failed[0]
    assert f"free space in {full_disk}" in failed[0] and "daemon.log_file" in failed[0]
    assert all(f"line {i} while the disk is full" in err for i in range(5)), "stderr keeps every line"
    assert f"the log file {log_file} is written again" in err
    assert "a line once there is room again" in log_file.read_text()

"""The session's inbox (bridge/slot.py): the newest snapshot in a versioned slot, other events in order, one
wake-up. Unit tests with threads started at a barrier and joined; no sleep is used to order anything."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from helpers import wait_for

from bridge.slot import Latest, Mailbox, Wake


@dataclass(frozen=True)
class Undo:
    n: int


@dataclass(frozen=True)
class Chat:
    text: str


def test_versions_count_writes_and_the_newest_value_wins() -> None:
    slot: Latest[int] = Latest()
    assert slot.get() == (0, None) and slot.newer_than(0) is None
    assert [slot.put(v) for v in (10, 20, 30)] == [1, 2, 3]
    assert slot.get() == (3, 30)
    assert slot.newer_than(2) == 30 and slot.newer_than(3) is None
    assert slot.wake.is_set()


def test_a_wake_is_consumed_by_one_wait_and_sets_twice_as_once() -> None:
    wake = Wake()
    assert not wake.is_set() and wake.wait(0.0) is False
    wake.set()
    wake.set()  # a second set before the wait is the same wake-up
    assert wake.is_set()
    assert wake.wait(0.0) is True
    assert not wake.is_set() and wake.wait(0.01) is False
    wake.set()
    wake.clear()
    assert wake.wait(0.0) is False
    assert wake.wait(-1.0) is False  # a deadline already past: no wait (not Lock's "forever")
    wake.set()
    assert wake.wait(1e12) is True  # beyond threading.TIMEOUT_MAX: clamped, no OverflowError


def test_a_wake_set_by_another_thread_ends_a_wait() -> None:
    wake = Wake()
    woken: list[bool] = []
    started = threading.Event()

    def waiter() -> None:
        started.set()
        woken.append(wake.wait(30.0))

    thread = threading.Thread(target=waiter)
    thread.start()
    started.wait()
    wake.set()
    thread.join(10.0)
    assert woken == [True] and not wake.is_set()


def test_keep_refuses_a_write_without_a_new_version() -> None:
    slot: Latest[str] = Latest(keep=lambda current, new: current == "over" and new != "over")
    slot.put("play")
    assert slot.put("over") == 2
    assert slot.put("play again") == 0  # refused: nothing changes, no new version
    assert slot.get() == (2, "over")


def test_no_newest_snapshot_is_lost_under_concurrent_writers() -> None:
    writers, writes = 8, 2000
    slot: Latest[tuple[int, int]] = Latest()
    start = threading.Barrier(writers + 1)
    stop_reading = threading.Event()
    last_write: list[tuple[int, tuple[int, int]]] = []  # (version, value) of every writer's writes
    lock = threading.Lock()
    seen_backwards: list[str] = []

    def write(w: int) -> None:
        start.wait()
        mine = [(slot.put((w, i)), (w, i)) for i in range(writes)]
        versions = [v for v, _ in mine]
        assert versions == sorted(versions) and len(set(versions)) == writes  # one writer's versions increase
        with lock:
            last_write.extend(mine)

    def read() -> None:
        start.wait()
        version, per_writer = 0, [-1] * writers
        while not stop_reading.is_set() or slot.version != version:
            v, value = slot.get()
            if v < version:
                seen_backwards.append(f"version {v} after {version}")
            version = v
            if value is not None:
                w, i = value
                if i < per_writer[w]:
                    seen_backwards.append(f"writer {w}: write {i} after {per_writer[w]}")
                per_writer[w] = max(per_writer[w], i)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    reader = threading.Thread(target=read)
    for t in [*threads, reader]:
        t.start()
    for t in threads:
        t.join()
    stop_reading.set()
    reader.join()
    assert not seen_backwards, seen_backwards[:5]
    versions = sorted(v for v, _ in last_write)
    assert versions == list(range(1, writers * writes + 1)), "every write got its own version"
    newest = max(last_write)  # the write that got the highest version is the one the slot holds
    assert slot.get() == newest


def test_side_events_keep_their_order_and_never_reorder_snapshots() -> None:
    box: Mailbox[int, Undo | Chat] = Mailbox()
    box.put_snapshot(1)
    box.push(Undo(1))
    box.put_snapshot(2)
    box.push(Chat("a"))
    box.push(Undo(2))
    box.put_snapshot(3)
    assert box.pending(Undo) == 2 and box.pending(Chat) == 1
    assert box.take_events() == [Undo(1), Chat("a"), Undo(2)]
    assert box.pending(Undo) == 0 and box.take_events() == []
    assert box.snapshot.get() == (3, 3)


def test_a_write_after_the_readers_wait_always_wakes_it() -> None:
    """A producer writes K snapshots, each only after the consumer has read the previous one; the consumer waits
    with a long timeout: a lost wake-up would show as a timed-out wait."""
    box: Mailbox[int, Chat] = Mailbox()
    rounds = 500
    taken = threading.Semaphore(0)
    timeouts: list[int] = []

    def produce() -> None:
        for k in range(1, rounds + 1):
            box.put_snapshot(k)
            if k % 3 == 0:
                box.push(Chat(str(k)))
            taken.acquire()

    def consume() -> None:
        seen = 0
        while seen < rounds:
            if not box.wait(10.0):
                timeouts.append(seen)
                return
            box.take_events()
            value = box.snapshot.newer_than(0)
            if value is not None and value > seen:
                seen = value
                taken.release()

    producer, consumer = threading.Thread(target=produce), threading.Thread(target=consume)
    consumer.start()
    producer.start()
    producer.join(30)
    consumer.join(30)
    assert not producer.is_alive() and not consumer.is_alive()
    assert timeouts == []


def test_interrupt_wakes_without_a_write() -> None:
    box: Mailbox[int, Chat] = Mailbox()
    assert box.wait(0) is False
    box.interrupt()
    assert box.wait(0) is True and box.wait(0) is False
    assert box.snapshot.get() == (0, None) and box.take_events() == []


def test_a_reader_that_woke_a_waiting_thread_yields_once_and_only_then() -> None:
    """``yield_to_woken`` sleeps only after a ``set(handoff=True)`` that released a thread blocked in ``wait``, on
    the thread that called ``set``, and once; a plain ``set`` (a clock tick, the echo of our own move: nothing
    urgent for the woken thread) owes no yield, so no timer wake-up is paid for it."""
    from bridge import slot

    slot.yield_to_woken()  # what earlier tests on this thread left owed
    wake = Wake()
    wake.set()  # nobody waits: no yield owed
    assert not slot._woke.waiter
    wake.clear()
    woken = threading.Event()

    def waiter() -> None:
        if wake.wait(5.0):
            woken.set()

    t = threading.Thread(target=waiter)
    t.start()
    wait_for(lambda: wake._waiting)
    wake.set(handoff=True)
    assert slot._woke.waiter
    other: list[bool] = []
    reader = threading.Thread(target=lambda: other.append(slot._woke.waiter))
    reader.start()
    reader.join()
    assert other == [False]  # the debt is the setting thread's own
    slot.yield_to_woken()
    assert not slot._woke.waiter
    assert woken.wait(5.0)
    t.join(5.0)

    calm = Mailbox[int, str]()  # a snapshot that is not urgent wakes the waiter and owes nothing
    woken.clear()

    def calm_waiter() -> None:
        if calm.wait(5.0):
            woken.set()

    t = threading.Thread(target=calm_waiter)
    t.start()
    wait_for(lambda: calm.wake._waiting)
    calm.put_snapshot(1)
    assert woken.wait(5.0) and not slot._woke.waiter
    t.join(5.0)


def test_a_reader_yields_at_most_once_per_spacing_however_many_games_it_wakes() -> None:
    """Under load (100 games: a woken game every ~10 ms) each yield's timer wake-up costs CPU (the spacing
    saved 7.5 % of the daemon's CPU a move at 100 games: docs/scale_history.md, 0.93 x); a reader yields at most
    once per HANDOFF_SPACING, and a debt it does not pay is dropped, not carried to a later frame."""
    from bridge import slot

    slot.yield_to_woken()  # what earlier tests on this thread left owed
    slot._woke.last = -1.0
    slot._woke.waiter = True
    slot.yield_to_woken()
    first = slot._woke.last
    assert first > 0 and not slot._woke.waiter  # yielded
    slot._woke.waiter = True
    slot.yield_to_woken()  # at once after: no yield, and the debt is gone
    assert slot._woke.last == first and not slot._woke.waiter
    slot._woke.last = first - slot.HANDOFF_SPACING  # a spacing later
    slot._woke.waiter = True
    slot.yield_to_woken()
    assert slot._woke.last > first - slot.HANDOFF_SPACING

"""The spool: order, bounds, the full policies, slots, and what a crash can leave behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from mcp_proxy.spool import DROP_NEWEST, DROP_OLDEST, Spool, read_segment, segment_name
from sentinel import settings


def lines(*numbers: int) -> list[bytes]:
    return [orjson.dumps({"n": n}) for n in numbers]


def numbers(spool: Spool, max_events: int = 10_000) -> list[int]:
    """Every event of the spool, oldest first, as `lease` hands them out."""
    segments = spool.lease(max_events, 1 << 30)
    found = [orjson.loads(line)["n"] for s in segments for line in read_segment(s.path).lines]
    spool.release(segments)
    return found


def test_segments_are_replayed_by_sequence_not_by_when_they_were_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append(5, lines(5, 6))
    spool.append(3, lines(3, 4))  # a batch the poster held, older than what the batcher spooled
    spool.append(9, lines(9))
    assert numbers(spool) == [3, 4, 5, 6, 9]
    assert spool.events == 5
    assert spool.bytes == sum(len(line) + 1 for line in lines(3, 4, 5, 6, 9))


def test_a_lease_stays_within_its_limits_takes_at_least_one_segment_and_is_exclusive(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    for seq in range(4):
        spool.append(seq, lines(*range(seq * 3, seq * 3 + 3)))
    first = spool.lease(max_events=7, max_bytes=1 << 20)
    assert [s.seq for s in first] == [0, 1]  # a third segment would make 9 events
    assert spool.lease(7, 1 << 20) == []  # the oldest is being posted: nothing behind it jumps ahead
    spool.release(first)
    assert [s.seq for s in spool.lease(max_events=1, max_bytes=1)] == [0]


def test_removed_segments_are_deleted_from_disk(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append(0, lines(1))
    spool.append(1, lines(2))
    leased = spool.lease(1, 1 << 20)
    spool.remove(leased)
    assert not leased[0].path.exists()
    assert numbers(spool) == [2]
    assert spool.bytes == len(lines(2)[0]) + 1


def test_a_new_spool_on_the_same_folder_replays_what_is_there_and_numbers_after_it(tmp_path: Path) -> None:
    first = Spool(tmp_path, 1 << 20)
    first.append(first.next_seq(), lines(1, 2))
    first.append(first.next_seq(), lines(3))
    first.close()
    second = Spool(tmp_path, 1 << 20)
    assert numbers(second) == [1, 2, 3]
    second.append(second.next_seq(), lines(4))
    assert numbers(second) == [1, 2, 3, 4]


def test_drop_newest_keeps_what_is_on_disk_and_stores_the_first_lines_that_fit(tmp_path: Path) -> None:
    one = len(lines(1)[0]) + 1
    spool = Spool(tmp_path, max_bytes=3 * one, policy=DROP_NEWEST)
    assert spool.append(0, lines(1, 2)).written == 2
    stored = spool.append(1, lines(3, 4, 5))
    assert (stored.written, stored.refused, stored.evicted) == (1, 2, 0)
    assert numbers(spool) == [1, 2, 3]
    assert spool.append(2, lines(6)).refused == 1
    assert spool.bytes <= 3 * one


def test_drop_oldest_evicts_the_oldest_segments_not_being_posted(tmp_path: Path) -> None:
    one = len(lines(1)[0]) + 1
    spool = Spool(tmp_path, max_bytes=4 * one, policy=DROP_OLDEST)
    spool.append(0, lines(1))
    spool.append(1, lines(2))
    spool.append(2, lines(3, 4))
    stored = spool.append(3, lines(5, 6))
    assert (stored.written, stored.refused, stored.evicted) == (2, 0, 2)
    assert numbers(spool) == [3, 4, 5, 6]
    leased = spool.lease(2, 1 << 20)  # segment 2, in flight: not evicted under the poster's feet
    stored = spool.append(4, lines(7, 8))
    assert (stored.written, stored.evicted) == (2, 2)
    spool.release(leased)
    assert numbers(spool) == [3, 4, 7, 8]


def test_drop_oldest_keeps_the_newest_lines_of_a_batch_larger_than_the_spool(tmp_path: Path) -> None:
    one = len(lines(1)[0]) + 1
    spool = Spool(tmp_path, max_bytes=2 * one, policy=DROP_OLDEST)
    stored = spool.append(0, lines(1, 2, 3))
    assert (stored.written, stored.refused) == (2, 1)
    assert numbers(spool) == [2, 3]


def test_an_unknown_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="drop-newest"):
        Spool(tmp_path, 1, policy="drop-random")


def test_a_truncated_last_line_and_garbage_lines_are_skipped_not_fatal(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append(0, lines(1, 2))
    spool.close()
    path = tmp_path / "0" / segment_name(0)
    with path.open("ab") as segment:
        segment.write(b"not json\n")
        segment.write(orjson.dumps({"n": 3}) + b"\n")
        segment.write(b'{"n": 4, "cut sho')  # a write cut short
    reopened = Spool(tmp_path, 1 << 20)
    read = read_segment(reopened.lease(100, 1 << 20)[0].path)
    assert [orjson.loads(line)["n"] for line in read.lines] == [1, 2, 3]
    assert read.unreadable == 2


def test_a_segment_left_half_written_by_a_crash_is_kept_on_the_next_open(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.close()
    tmp = tmp_path / "0" / (segment_name(7)[: -len(".ndjson")] + ".ndjson.tmp")
    tmp.write_bytes(orjson.dumps({"n": 1}) + b"\n" + b'{"n": 2')
    (tmp_path / "0" / "00000000000000000008.ndjson.tmp").write_bytes(b"")  # nothing written yet
    reopened = Spool(tmp_path, 1 << 20)
    assert numbers(reopened) == [1]
    assert not list((tmp_path / "0").glob("*.tmp"))
    assert reopened.next_seq() == 8


def test_each_process_of_a_data_folder_takes_a_slot_of_its_own(tmp_path: Path) -> None:
    first = Spool(tmp_path, 1 << 20)
    second = Spool(tmp_path, 1 << 20)
    assert (first.folder.name, second.folder.name) == ("0", "1")
    first.append(0, lines(1))
    first.close()
    again = Spool(tmp_path, 1 << 20)  # the slot a stopped (or killed) process left
    assert again.folder.name == "0"
    assert numbers(again) == [1]


# A child that appends segments as fast as it can and prints each seq once `append` returned.
_WRITER = """
import sys, orjson
from pathlib import Path
from mcp_proxy.spool import Spool
spool = Spool(Path(sys.argv[1]), 1 << 30)
payload = "x" * 2000
seq = 0
while True:
    spool.append(seq, [orjson.dumps({"seq": seq, "i": i, "pad": payload}) for i in range(50)])
    print(seq, flush=True)
    seq += 1
"""


def test_every_segment_acknowledged_before_a_sigkill_is_read_back_whole(tmp_path: Path) -> None:
    for attempt in range(3):
        root = tmp_path / f"run{attempt}"
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(root)],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(settings.REPO_ROOT)},
        )
        assert child.stdout is not None
        acknowledged: list[int] = []
        deadline = time.monotonic() + 30
        while len(acknowledged) < 5 + attempt * 7 and time.monotonic() < deadline:
            acknowledged.append(int(child.stdout.readline()))
        child.send_signal(signal.SIGKILL)  # somewhere in a write, an fsync or a rename
        child.wait()
        acknowledged.extend(int(line) for line in child.stdout.read().split())
        assert acknowledged, "the writer never acknowledged a segment"
        spool = Spool(root, 1 << 30)
        found: dict[int, int] = {}
        for segment in spool.lease(10**9, 1 << 40):
            for line in read_segment(segment.path).lines:
                seq = orjson.loads(line)["seq"]
                found[seq] = found.get(seq, 0) + 1
        missing = [seq for seq in acknowledged if found.get(seq) != 50]
        assert not missing, f"segments acknowledged before the kill but not read back whole: {missing}"


def test_only_a_slot_with_segments_and_no_live_owner_is_adopted(tmp_path: Path) -> None:
    mine = Spool(tmp_path, 1 << 20)
    other = Spool(tmp_path, 1 << 20)
    other.append(0, lines(1))
    empty = Spool(tmp_path, 1 << 20)
    assert mine.adopt_orphan() is None  # its owner still runs
    other.close()
    empty.close()
    adopted = mine.adopt_orphan()
    assert adopted is not None
    assert adopted.folder.name == "1"
    assert numbers(adopted) == [1]
    assert mine.adopt_orphan() is None  # held now, by this process

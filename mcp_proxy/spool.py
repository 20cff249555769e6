"""The emitter's durable spool: audit events kept on disk while ingest cannot take them.

A slot folder holds segment files `<seq>.ndjson`, one JSON event per line. Each segment is written
whole to `<seq>.ndjson.tmp`, fsync'd and renamed, and the folder fsync'd: the rename is the
acknowledgement, so a segment that `append` reported is complete and survives a SIGKILL or a power
cut. Segments are read oldest (lowest seq) first and deleted once ingest acknowledged their events
(delete-on-ack); a crash between the 202 and the delete posts them again, which event ids fixed at
capture make harmless downstream. A `.tmp` left by a crash mid-write is kept as a segment on the
next open, and the reader skips a line cut short or unreadable instead of failing on it.

Each process takes the first slot under the root whose `lock` it can flock: stdio proxies that MCP
clients launch side by side share one data folder. The kernel drops a lock with its process, so a
proxy restarted after a SIGKILL takes the same slot back and replays it; a slot whose proxy is not
restarted is adopted by another (`adopt_orphan`).
"""

from __future__ import annotations

import bisect
import fcntl
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

log = logging.getLogger(__name__)

DROP_NEWEST = "drop-newest"
DROP_OLDEST = "drop-oldest"
POLICIES = (DROP_NEWEST, DROP_OLDEST)

SEGMENT_SUFFIX = ".ndjson"
TMP_SUFFIX = ".ndjson.tmp"
LOCK_NAME = "lock"
MAX_SLOTS = 64


class SpoolError(RuntimeError):
    """The spool cannot be opened: no free slot, or the folder cannot be written."""


@dataclass(frozen=True)
class Segment:
    seq: int
    path: Path
    size: int  # bytes on disk
    events: int  # complete lines


@dataclass(frozen=True)
class Stored:
    """What `append` did with a batch of lines."""

    written: int  # lines now on disk
    refused: int  # lines of this batch not stored (the spool is full)
    evicted: int  # older events deleted to make room (drop-oldest)


@dataclass(frozen=True)
class ReadBack:
    lines: list[bytes]
    unreadable: int  # lines skipped: cut short by a crash, or not JSON


def segment_name(seq: int) -> str:
    return f"{seq:020d}{SEGMENT_SUFFIX}"


def encode(lines: Sequence[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def read_segment(path: Path) -> ReadBack:
    """The segment's events, each line as it was written; a last line without its newline (a
    write cut short) and lines that are not JSON are skipped and counted."""
    data = path.read_bytes()
    *complete, tail = data.split(b"\n")
    unreadable = 1 if tail.strip() else 0
    lines: list[bytes] = []
    for line in complete:
        if not line.strip():
            continue
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError:
            unreadable += 1
            continue
        lines.append(line)
    return ReadBack(lines, unreadable)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name[: -len(SEGMENT_SUFFIX)] + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _lock(folder: Path) -> int | None:
    """The fd of `folder`'s lock, held by this process from now on; None if another holds it."""
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _take_slot(root: Path) -> tuple[Path, int]:
    """The first slot folder under `root` whose lock this process can hold, and the lock's fd."""
    root.mkdir(parents=True, exist_ok=True)
    for number in range(MAX_SLOTS):
        folder = root / str(number)
        folder.mkdir(mode=0o700, exist_ok=True)
        fd = _lock(folder)
        if fd is not None:
            return folder, fd
    raise SpoolError(f"all {MAX_SLOTS} spool slots under {root} are held by running processes")


def _orphan_slot(root: Path, skip: Path) -> tuple[Path, int] | None:
    """A slot under `root` other than `skip` that holds segments and no process holds: its
    process died and no other took the slot back since."""
    for number in range(MAX_SLOTS):
        folder = root / str(number)
        if folder == skip or not folder.is_dir():
            continue
        if not any(folder.glob(f"*{SEGMENT_SUFFIX}")) and not any(folder.glob(f"*{TMP_SUFFIX}")):
            continue
        fd = _lock(folder)
        if fd is not None:
            return folder, fd
    return None


class Spool:
    """A bounded FIFO of segments on disk. Thread-safe: one thread appends while another leases,
    reads and removes. Bytes are bounded by `max_bytes`; `policy` says what gives when full."""

    def __init__(
        self, root: Path, max_bytes: int, policy: str = DROP_NEWEST, *, slot: tuple[Path, int] | None = None
    ) -> None:
        """Takes a slot under `root` (or `slot`, a folder and its held lock) and recovers what a
        previous process left there. Raises SpoolError when no slot is free, OSError when the
        folder cannot be written."""
        if policy not in POLICIES:
            raise ValueError(f"spool policy {policy!r}; use one of {', '.join(POLICIES)}")
        self.max_bytes = max_bytes
        self.policy = policy
        self.folder, self._lock_fd = slot or _take_slot(root)
        self._lock = threading.Lock()
        self._segments: list[Segment] = []  # sorted by seq
        self._leased: set[int] = set()
        self._bytes = 0
        self._reserved = 0
        self._recover()
        self._next_seq = self._segments[-1].seq + 1 if self._segments else 0

    def _recover(self) -> None:
        for tmp in sorted(self.folder.glob(f"*{TMP_SUFFIX}")):
            # Its append never returned, but the lines it holds are events nobody else has: keep
            # them; the reader skips a last line cut short.
            final = tmp.with_name(tmp.name[: -len(TMP_SUFFIX)] + SEGMENT_SUFFIX)
            if final.exists() or tmp.stat().st_size == 0:
                tmp.unlink()
            else:
                os.replace(tmp, final)
        for path in self.folder.glob(f"*{SEGMENT_SUFFIX}"):
            try:
                seq = int(path.name[: -len(SEGMENT_SUFFIX)])
            except ValueError:
                continue
            data = path.read_bytes()
            self._segments.append(Segment(seq, path, len(data), data.count(b"\n")))
            self._bytes += len(data)
        self._segments.sort(key=lambda s: s.seq)
        _fsync_dir(self.folder)

    def adopt_orphan(self) -> Spool | None:
        """Another slot of this spool's root whose process died, now held by this process to be
        replayed (and closed when empty), or None. Without this a slot would wait, perhaps for
        ever, for a process to take it back."""
        found = _orphan_slot(self.folder.parent, self.folder)
        if found is None:
            return None
        try:
            return Spool(self.folder.parent, self.max_bytes, self.policy, slot=found)
        except BaseException:
            os.close(found[1])
            raise

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def events(self) -> int:
        return sum(segment.events for segment in self._segments)

    def empty(self) -> bool:
        return not self._segments

    def next_seq(self) -> int:
        """A sequence number above every segment's: segments are replayed in this order."""
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            return seq

    def append(self, seq: int, lines: Sequence[bytes]) -> Stored:
        """Store `lines` as segment `seq`, durably, before returning. When they do not all fit,
        drop-newest stores the first ones that do; drop-oldest first deletes the oldest segments
        not being posted, then keeps the last lines that fit. Raises OSError when the disk does."""
        sizes = [len(line) + 1 for line in lines]
        evicted = 0
        with self._lock:
            room = self.max_bytes - self._bytes - self._reserved
            if sum(sizes) > room and self.policy == DROP_OLDEST:
                evicted, room = self._evict(sum(sizes) - room, room)
            keep = _fitting(sizes, room, newest=self.policy == DROP_OLDEST)
            kept = lines[:keep] if self.policy == DROP_NEWEST else lines[len(lines) - keep :]
            data = encode(kept)
            self._reserved += len(data)
        path = self.folder / segment_name(seq)
        try:
            if kept:
                _write_durably(path, data)
        except BaseException:
            with self._lock:
                self._reserved -= len(data)
            raise
        with self._lock:
            self._reserved -= len(data)
            if kept:
                bisect.insort(self._segments, Segment(seq, path, len(data), len(kept)), key=lambda s: s.seq)
                self._bytes += len(data)
        return Stored(len(kept), len(lines) - len(kept), evicted)

    def _evict(self, needed: int, room: int) -> tuple[int, int]:
        evicted = 0
        for segment in list(self._segments):
            if needed <= 0:
                break
            if segment.seq in self._leased:
                continue
            self._drop(segment)
            evicted += segment.events
            needed -= segment.size
            room += segment.size
        return evicted, room

    def lease(self, max_events: int, max_bytes: int) -> list[Segment]:
        """The oldest segments, together within `max_events` and `max_bytes` (at least one), that
        no one is posting; empty when the oldest is already leased. Hand them back with `remove`
        once acknowledged or `release` to post them later."""
        taken: list[Segment] = []
        events = size = 0
        with self._lock:
            for segment in self._segments:
                if segment.seq in self._leased:
                    break
                if taken and (events + segment.events > max_events or size + segment.size > max_bytes):
                    break
                taken.append(segment)
                events += segment.events
                size += segment.size
            self._leased.update(segment.seq for segment in taken)
        return taken

    def release(self, segments: Sequence[Segment]) -> None:
        with self._lock:
            self._leased.difference_update(segment.seq for segment in segments)

    def remove(self, segments: Sequence[Segment]) -> None:
        """Delete acknowledged segments."""
        with self._lock:
            for segment in segments:
                self._leased.discard(segment.seq)
                if segment in self._segments:
                    self._drop(segment)

    def _drop(self, segment: Segment) -> None:
        self._segments.remove(segment)
        self._bytes -= segment.size
        segment.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Give up the slot's lock; the segments stay for the next process."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


def _fitting(sizes: Sequence[int], room: int, *, newest: bool) -> int:
    """How many of `sizes`, from the first on (or from the last back, `newest`), fit in `room`."""
    total = count = 0
    for size in reversed(sizes) if newest else sizes:
        if total + size > room:
            break
        total += size
        count += 1
    return count

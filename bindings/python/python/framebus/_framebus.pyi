"""Type stubs of framebus._framebus (the Rust extension); see framebus/__init__.py."""

from types import TracebackType
from typing import Any, Iterator, Literal, Optional, Type

import numpy as np
import numpy.typing as npt

__version__: str
LAYOUT_VERSION: int

# The core's vocabulary (framebus_core::vocab); a test checks these against PIXEL_FORMATS,
# PATTERNS, POLICIES and CONSUMER_KINDS. Arguments also take `_` for `-` (for example
# "drop_oldest") and the aliases "bgr", "rgb", "gray".
Format = Literal["raw", "bgr24", "rgb24", "gray8", "nv12", "i420"]
PatternName = Literal["work-queue", "broadcast"]
PolicyName = Literal["block", "drop-oldest", "drop-newest"]
KindName = Literal["worker", "subscriber", "latest"]
SkipCauseName = Literal["dropped-oldest", "dropped-newest", "worker-died", "deadline", "no-result", "overflow"]

PIXEL_FORMATS: list[str]
PATTERNS: list[str]
POLICIES: list[str]
CONSUMER_KINDS: list[str]
SKIP_CAUSES: list[str]

class Error(Exception):
    """Base class of every framebus error."""

class NotFound(Error):
    """No segment has that name (is its producer running?)."""

class AlreadyExists(Error):
    """A segment with that name exists already."""

class PermissionDenied(Error):
    """The OS refused access to the segment."""

class BadSegment(Error):
    """Not a valid framebus segment (truncated, garbage, other layout version)."""

class Busy(Error):
    """Another live producer is attached to the segment."""

class Evicted(Error):
    """This consumer was reclaimed as dead; open a new one."""

class Corrupt(Error):
    """Shared memory holds impossible values."""

class Superseded(Error):
    """Another producer took over the segment."""

class Released(Error):
    """The frame, slot or endpoint was released or closed."""

class Timeout(Error):
    """No free slot came within the timeout (Block policy)."""

class EndOfStream(Error):
    """The producer finished the stream and every frame was given out."""

def open(name: str) -> Segment:
    """Opens the existing segment `name`, validating its header and size.

    Raises NotFound, BadSegment, PermissionDenied, or ValueError for a bad name."""

def create(
    name: str,
    width: int,
    height: int,
    format: Format = "bgr24",
    slots: int = 8,
    pattern: PatternName = "work-queue",
    policy: PolicyName = "block",
    max_consumers: int = 8,
    mode: int = 0o600,
    results: int = 0,
    result_max: int = 0,
) -> Segment:
    """Creates the segment `name`; it is removed when this Segment and every endpoint made
    from it are gone. `results` (a power of two, work queue only) gives it ordered results of up
    to `result_max` bytes (0: 4096) each. Raises AlreadyExists, PermissionDenied, ValueError."""

def remove(name: str) -> None:
    """Removes the segment `name` from the namespace (open mappings stay valid)."""

class Segment:
    """An open segment."""

    @property
    def name(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def format(self) -> Format: ...
    @property
    def shape(self) -> list[int]:
        """The numpy shape of one frame, e.g. [720, 1280, 3] for bgr24."""
    @property
    def slots(self) -> int: ...
    @property
    def pattern(self) -> PatternName: ...
    @property
    def policy(self) -> PolicyName: ...
    @property
    def frame_size(self) -> int: ...
    @property
    def size(self) -> int:
        """Bytes of the whole mapping."""
    @property
    def address(self) -> int:
        """Address of the mapping in this process; every frame array lies inside it."""
    def stats(self) -> dict[str, int]:
        """published, next_seq, dropped_oldest, dropped_newest, delivered, epoch, reclaimed
        (frames taken back from consumers whose process died), redelivered (of those, frames
        given once more to another worker: segments with results), late_results, result_overflow."""
    def reader(self, deadline: Optional[float] = None) -> Reader:
        """Attaches as the ordered results reader (raises Busy while a live one is attached)."""
    def producer(self) -> Producer:
        """Attaches as the only producer (raises Busy while a live one is attached)."""
    def worker(self) -> Consumer:
        """A work-queue worker: each frame goes to exactly one worker."""
    def subscriber(self) -> Consumer:
        """A broadcast subscriber: every frame goes to every subscriber."""
    def latest(self) -> Consumer:
        """A latest reader: the newest frame, skipping older ones."""

class OrderedResult:
    """One frame's outcome, in frame order: its result bytes, or why it has none."""

    seq: int
    epoch: int
    data: Optional[bytes]
    skipped: Optional[SkipCauseName]

class Reader:
    """The ordered results reader: iterate for one OrderedResult per frame, in frame order,
    until the producer finishes. With a deadline, a frame without a result that long is
    yielded as skipped ("deadline")."""

    def next(self, timeout: Optional[float] = None) -> Optional[OrderedResult]:
        """The next outcome, or None when `timeout` passed first; StopIteration at the end."""
    def skip_head(self) -> bool:
        """Gives up on the frame being waited for (True when it is now skipped)."""
    @property
    def head(self) -> int: ...
    def __iter__(self) -> Reader: ...
    def __next__(self) -> OrderedResult: ...
    def close(self) -> None: ...
    def __enter__(self) -> Reader: ...
    def __exit__(
        self,
        t: Optional[Type[BaseException]],
        v: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None: ...

class Consumer:
    """A worker, subscriber or latest reader. Close it (or use `with`) to leave."""

    def claim(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """The next frame, or None when `timeout` seconds passed (None: wait until one comes).
        Raises EndOfStream once the producer finished and every frame was given out.
        Releases the GIL while waiting; Ctrl-C interrupts it."""
    def __iter__(self) -> Iterator[Frame]: ...
    def __next__(self) -> Frame:
        """The next frame, waiting as long as it takes; StopIteration at the end of the stream."""
    @property
    def delivered(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def held(self) -> int: ...
    @property
    def kind(self) -> KindName: ...
    def close(self) -> None: ...
    def __enter__(self) -> Consumer: ...
    def __exit__(
        self, t: Optional[Type[BaseException]], v: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None: ...

class Frame:
    """A held frame; `with` releases it at the end of the block."""

    @property
    def array(self) -> npt.NDArray[np.uint8]:
        """Read-only view of the slot (no copy); raises Released after release()."""
    @property
    def __array_interface__(self) -> dict[str, Any]: ...
    def tobytes(self) -> bytes: ...
    def release(self) -> None: ...
    def post(self, data: bytes, timeout: Optional[float] = None) -> bool:
        """Posts this frame's result (before releasing it): True when it will be delivered,
        False when the frame was already given up on (counted late)."""
    @property
    def released(self) -> bool: ...
    @property
    def seq(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    @property
    def capture_ns(self) -> int:
        """Whatever the producer passed: framebus does not read it. `framebus producer` and
        `framebus run` stamp CLOCK_MONOTONIC in ns (Python: `time.monotonic_ns()`), the clock
        every process of one boot shares; use the same in your own producer."""
    @property
    def pts_ns(self) -> int:
        """The presentation time the producer passed (ns; `framebus producer`: frame index / fps)."""
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def format(self) -> Format: ...
    @property
    def flags(self) -> int: ...
    @property
    def payload_len(self) -> int: ...
    @property
    def checksum(self) -> Optional[int]: ...
    @property
    def slot(self) -> int: ...
    @property
    def address(self) -> int: ...
    def __enter__(self) -> Frame: ...
    def __exit__(
        self, t: Optional[Type[BaseException]], v: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None: ...

class Producer:
    """The segment's only producer."""

    def begin(self, timeout: Optional[float] = None) -> Optional[Slot]:
        """The slot for the next frame. What a full segment does depends on the policy:
        block waits up to `timeout` seconds, then raises Timeout; drop-newest returns None (this
        frame is dropped, counted); drop-oldest never returns None: it takes back the oldest
        frame no worker claimed yet, named by `slot.dropped_seq` (counted).

        `slot.seq` is the number the frame gets *when published*: numbers are given at
        publish, so after `abandon()` the next frame gets that number (a slot's seq is not a
        frame until it is published)."""
    def write(
        self,
        array: npt.ArrayLike,
        capture_ns: int = 0,
        pts_ns: int = 0,
        flags: int = 0,
        timeout: Optional[float] = None,
    ) -> Optional[int]:
        """Copies `array` into the next slot and publishes it; its seq, or None if dropped."""
    def finish(self) -> None:
        """Ends the stream after the last frame issued, then detaches."""
    def close(self) -> None: ...
    def __enter__(self) -> Producer: ...
    def __exit__(
        self, t: Optional[Type[BaseException]], v: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None: ...

class Slot:
    """A slot being filled; leaving `with` publishes it (an exception abandons it)."""

    @property
    def array(self) -> npt.NDArray[np.uint8]:
        """Writable view of the slot (no copy)."""
    @property
    def __array_interface__(self) -> dict[str, Any]: ...
    @property
    def seq(self) -> int: ...
    @property
    def slot(self) -> int: ...
    @property
    def dropped_seq(self) -> Optional[int]: ...
    def publish(
        self,
        capture_ns: int = 0,
        pts_ns: int = 0,
        flags: int = 0,
        payload_len: Optional[int] = None,
        checksum: Optional[int] = None,
    ) -> int: ...
    def abandon(self) -> None: ...
    def __enter__(self) -> Slot: ...
    def __exit__(
        self, t: Optional[Type[BaseException]], v: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None: ...

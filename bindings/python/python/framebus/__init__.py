"""framebus: zero-copy video frames between processes over shared memory.

A producer (C++, Rust or Python) publishes decoded frames into a fixed set of slots in a
named shared-memory segment; workers, subscribers and latest readers in other processes get
each frame as a read-only ``numpy.ndarray`` view of the slot itself -- no copy, no pickling,
a fixed amount of memory, and drops that are counted instead of queues that grow.

Worker::

    import framebus
    seg = framebus.open("cam0")            # made by `framebus producer`, C or Python
    worker = seg.worker()                  # each frame goes to exactly one worker
    while True:
        with worker.claim() as frame:      # waits (GIL released); Ctrl-C works
            img = frame.array              # H x W x 3 uint8 view of shared memory
            result = model(img)            # OpenCV / numpy / torch.from_numpy as they are
        # leaving the block gave the slot back to the producer

Producer::

    seg = framebus.create("cam0", 1280, 720, format="bgr24", slots=8, policy="drop-oldest")
    producer = seg.producer()
    with producer.begin() as slot:         # None under drop policies when the frame is dropped
        cv2.resize(src, (1280, 720), dst=slot.array)   # decode or draw straight into the slot
    # leaving the block published it; producer.write(img) is the one-call copying form

An array taken from a frame keeps that frame (and its slot) alive as long as the array lives,
unless the frame is released explicitly (``release()`` or the end of ``with``): after that the
array sees whatever the producer writes next. Copy (``arr.copy()``) what you keep.
"""

from ._framebus import (
    CONSUMER_KINDS,
    LAYOUT_VERSION,
    PATTERNS,
    PIXEL_FORMATS,
    POLICIES,
    SKIP_CAUSES,
    AlreadyExists,
    BadSegment,
    Busy,
    Consumer,
    Corrupt,
    EndOfStream,
    Error,
    Evicted,
    Frame,
    NotFound,
    OrderedResult,
    PermissionDenied,
    Producer,
    Reader,
    Released,
    Segment,
    Slot,
    Superseded,
    Timeout,
    __version__,
    create,
    open,
    remove,
)

__all__ = [
    "CONSUMER_KINDS",
    "LAYOUT_VERSION",
    "PATTERNS",
    "PIXEL_FORMATS",
    "POLICIES",
    "SKIP_CAUSES",
    "AlreadyExists",
    "BadSegment",
    "Busy",
    "Consumer",
    "Corrupt",
    "EndOfStream",
    "Error",
    "Evicted",
    "Frame",
    "NotFound",
    "OrderedResult",
    "PermissionDenied",
    "Producer",
    "Reader",
    "Released",
    "Segment",
    "Slot",
    "Superseded",
    "Timeout",
    "__version__",
    "create",
    "open",
    "remove",
]

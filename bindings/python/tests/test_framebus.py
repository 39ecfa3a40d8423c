"""Tests of the framebus Python package, across processes and languages.

`cargo xtask ci` runs them in the virtualenv it builds (target/pyvenv), with FRAMEBUS_BIN and
FRAMEBUS_PEER naming the Rust binaries (`framebus` and `framebus-peer`); run by hand, they look
in target/release and target/debug.
"""

import gc
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import framebus

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
END = 1  # the flag framebus-peer treats as end of stream
_n = 0


def unique(tag):
    global _n
    _n += 1
    return f"py-{tag}-{os.getpid()}-{_n}"


def binary(env, name):
    if os.environ.get(env):
        return os.environ[env]
    for profile in ("release", "checked", "debug"):
        p = ROOT / "target" / profile / name
        if p.exists():
            return str(p)
    pytest.fail(f"{name} not found: set {env} or build it (cargo build --release -p framebus-platform -p framebus-harness)")


def pattern(seq, n):
    """Byte i of frame seq, as framebus-peer writes and checks it."""
    return ((seq * 31 + np.arange(n, dtype=np.uint64) * 7) % 251).astype(np.uint8)


def fnv_words(data):
    """The harness's frame checksum (FNV-1a over little-endian 64-bit words, then the length)."""
    prime, h, mask = 0x100000001B3, 0xCBF29CE484222325, (1 << 64) - 1
    buf = bytes(data)
    whole = len(buf) // 8 * 8
    for w in np.frombuffer(buf[:whole], dtype="<u8").tolist():
        h = ((h ^ w) * prime) & mask
    for b in buf[whole:]:
        h = ((h ^ b) * prime) & mask
    return h ^ len(buf)


def spawn(argv, **kw):
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, **kw)


def expect_line(proc, prefix, timeout=20):
    """The next line `proc` prints, which must start with `prefix`."""
    result = []
    t = threading.Thread(target=lambda: result.append(proc.stdout.readline()))
    t.start()
    t.join(timeout)
    line = result[0] if result else ""
    assert line.startswith(prefix), f"{proc.args} printed {line!r}, expected {prefix!r}"
    return line


def test_views_are_zero_copy_and_read_only():
    seg = framebus.create(unique("zc"), 64, 48, format="bgr24", slots=3)
    assert (seg.shape, seg.frame_size, seg.format) == ([48, 64, 3], 64 * 48 * 3, "bgr24")
    producer, worker = seg.producer(), seg.worker()
    with producer.begin() as slot:
        view = slot.array
        assert view.shape == (48, 64, 3) and view.flags.writeable
        assert seg.address <= view.ctypes.data < seg.address + seg.size
        view[:] = np.arange(64 * 48 * 3, dtype=np.uint64).reshape(48, 64, 3) % 256
    with worker.claim(timeout=1) as frame:
        arr = frame.array
        # The array is the slot itself: its buffer lies inside this process' mapping.
        assert seg.address <= arr.ctypes.data < seg.address + seg.size
        assert arr.ctypes.data == frame.address
        assert arr.base is frame or getattr(arr.base, "base", None) is frame
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0, 0, 0] = 1
        assert (frame.seq, frame.width, frame.height, frame.format) == (0, 64, 48, "bgr24")
        assert np.array_equal(arr.reshape(-1), np.arange(64 * 48 * 3, dtype=np.uint64) % 256)
        assert frame.tobytes() == arr.tobytes()
    assert frame.released
    with pytest.raises(framebus.Released, match="copy the array"):
        frame.array
    assert worker.claim(timeout=0) is None
    assert seg.stats()["delivered"] == 1


def test_reads_frames_that_framebus_producer_decodes(tmp_path):
    name = unique("decoded")
    video = ROOT / "harness" / "media" / "bbb-720p25.mp4"
    prod = spawn([binary("FRAMEBUS_BIN", "framebus"), "producer", "--video", str(video), "--segment", name,
                  "--create", "--policy", "block", "--slots", "4", "--frames", "12", "--max-speed"])
    try:
        expect_line(prod, "ready")
        # The README's ten lines.
        seg = framebus.open(name)
        worker = seg.worker()
        sums = []
        for _ in range(12):
            with worker.claim(timeout=10) as frame:
                img = frame.array  # 720 x 1280 x 3, no copy
                assert seg.address <= img.ctypes.data < seg.address + seg.size
                assert img.shape == (720, 1280, 3) and frame.format == "bgr24"
                if frame.seq < 2:
                    sums.append((fnv_words(img), frame.checksum))
                assert img.mean() > 10  # a decoded picture, not an empty slot
        assert all(ours == theirs for ours, theirs in sums), sums
        assert prod.wait(timeout=20) == 0
    finally:
        prod.kill()


def test_rust_producer_feeds_python_worker_processes():
    n, workers = 3000, 2
    seg = framebus.create(unique("r2p"), 64, 16, format="gray8", slots=4)
    procs = [spawn([sys.executable, str(HERE / "py_worker.py"), seg.name]) for _ in range(workers)]
    for p in procs:
        expect_line(p, "ready")
    prod = spawn([binary("FRAMEBUS_PEER", "framebus-peer"), "producer", seg.name, str(n)])
    try:
        expect_line(prod, f"published {n}", timeout=60)
        count = total = 0
        for p in procs:
            out, _ = p.communicate(timeout=30)
            assert p.returncode == 0, out
            c, s = map(int, out.split())
            count, total = count + c, total + s
        # Block policy: every frame to exactly one Python worker, every byte checked there.
        assert (count, total) == (n, n * (n - 1) // 2)
    finally:
        prod.kill()
        for p in procs:
            p.kill()


def test_python_producer_feeds_a_rust_worker_process():
    n = 2000
    seg = framebus.create(unique("p2r"), 64, 16, format="gray8", slots=4)
    worker = spawn([binary("FRAMEBUS_PEER", "framebus-peer"), "worker", seg.name])
    expect_line(worker, "ready")
    producer = seg.producer()
    for seq in range(n):
        with producer.begin(timeout=10) as slot:
            assert slot.seq == seq
            slot.array.reshape(-1)[:] = pattern(seq, seg.frame_size)
    assert producer.write(np.zeros(seg.shape, np.uint8), flags=END, timeout=10) == n
    out, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0
    count, total, _sumsq, skipped = map(int, out.split())
    assert (count, total, skipped) == (n, n * (n - 1) // 2, 0)


def test_a_python_worker_killed_mid_frame_has_its_slots_reclaimed():
    seg = framebus.create(unique("kill"), 64, 16, format="gray8", slots=2)
    producer = seg.producer()
    for _ in range(2):
        producer.write(np.full(seg.shape, 9, np.uint8))
    victim = spawn([sys.executable, str(HERE / "py_worker.py"), seg.name, "--hold", "2"])
    expect_line(victim, "held 2")
    with pytest.raises(framebus.Timeout):
        producer.begin(timeout=0.05)  # both slots are held by the victim
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    # The waiting producer reaps the dead worker and gets its slots back.
    with producer.begin(timeout=10) as slot:
        slot.array[:] = 1
    assert seg.stats()["published"] == 3
    assert seg.stats()["reclaimed"] == 2, "both of the dead worker's frames were taken back"
    with seg.worker() as survivor:
        frame = survivor.claim(timeout=1)
        assert frame is not None and frame.seq == 2 and frame.array.max() == 1
        frame.release()


def test_opencv_takes_the_views_as_they_are():
    if os.environ.get("FRAMEBUS_REQUIRE_ALL"):
        import cv2  # CI: a missing OpenCV is a failure, not a skip
    else:
        cv2 = pytest.importorskip("cv2", reason="opencv-python-headless is not installed (pip install opencv-python-headless)")
    seg = framebus.create(unique("cv"), 320, 240, format="bgr24", slots=2)
    producer, worker = seg.producer(), seg.worker()
    src = np.zeros((480, 640, 3), np.uint8)
    cv2.rectangle(src, (100, 100), (300, 200), (0, 0, 255), -1)
    with producer.begin() as slot:
        out = cv2.resize(src, (320, 240), dst=slot.array, interpolation=cv2.INTER_NEAREST)
        assert out.ctypes.data == slot.array.ctypes.data  # OpenCV wrote into the slot itself
    with worker.claim(timeout=1) as frame:
        gray = cv2.cvtColor(frame.array, cv2.COLOR_BGR2GRAY)
        assert gray.shape == (240, 320) and gray[75, 100] > 0 and gray[10, 10] == 0
        expected = cv2.resize(src, (320, 240), interpolation=cv2.INTER_NEAREST)
        assert np.array_equal(frame.array, expected)
        assert cv2.countNonZero(cv2.inRange(frame.array, (0, 0, 200), (10, 10, 255))) > 0


def test_errors_say_what_happened():
    with pytest.raises(framebus.NotFound, match="framebus ls"):
        framebus.open("py-no-such-segment")
    with pytest.raises(ValueError, match="A-Za-z0-9"):
        framebus.open("bad/name")
    with pytest.raises(ValueError, match="unknown pixel format: use raw, bgr24, rgb24, gray8, nv12 or i420"):
        framebus.create(unique("bad"), 4, 4, format="yuyv")
    with pytest.raises(ValueError, match="unknown overflow policy: use block, drop-oldest or drop-newest"):
        framebus.create(unique("bad"), 4, 4, policy="sometimes")
    name = unique("garbage")
    path = Path("/dev/shm") / f"framebus.{name}"
    path.write_bytes(b"\xa5" * 8192)
    try:
        with pytest.raises(framebus.BadSegment):
            framebus.open(name)
    finally:
        path.unlink()
    seg = framebus.create(unique("errs"), 8, 8, format="gray8", slots=1)
    with pytest.raises(framebus.AlreadyExists):
        framebus.create(seg.name, 8, 8)
    producer = seg.producer()
    with pytest.raises(framebus.Busy):
        seg.producer()
    with pytest.raises(framebus.Error, match="WorkQueue"):
        seg.subscriber()
    worker = seg.worker()
    with pytest.raises(ValueError, match="timeout"):
        worker.claim(timeout=-1)
    with pytest.raises(ValueError, match="broadcast"):
        producer.write(np.zeros((3, 3), np.uint8))  # numpy's own message: shapes differ
    slot = producer.begin(timeout=1)
    slot.publish()
    with pytest.raises(framebus.Released):
        slot.publish()
    with pytest.raises(framebus.Released):
        slot.array
    worker.close()
    with pytest.raises(framebus.Released, match="closed"):
        worker.claim(timeout=0)


def test_names_are_the_cores_vocabulary_and_the_stubs_agree():
    import typing

    stubs = (ROOT / "bindings/python/python/framebus/_framebus.pyi").read_text()
    namespace: dict = {}
    literals = "\n".join(line for line in stubs.splitlines() if "= Literal[" in line)
    exec("from typing import Literal\n" + literals, namespace)
    assert list(typing.get_args(namespace["Format"])) == framebus.PIXEL_FORMATS
    assert list(typing.get_args(namespace["PatternName"])) == framebus.PATTERNS
    assert list(typing.get_args(namespace["PolicyName"])) == framebus.POLICIES
    assert list(typing.get_args(namespace["KindName"])) == framebus.CONSUMER_KINDS
    assert list(typing.get_args(namespace["SkipCauseName"])) == framebus.SKIP_CAUSES
    # Names out are canonical; names in may use `_` for `-` (the spelling before step 9).
    seg = framebus.create(unique("vocab"), 4, 4, format="gray", pattern="work_queue", policy="drop_oldest")
    assert (seg.format, seg.pattern, seg.policy) == ("gray8", "work-queue", "drop-oldest")
    assert seg.worker().kind == "worker"


def test_results_come_back_in_frame_order_with_causes_and_an_end():
    seg = framebus.create(unique("results"), 16, 1, format="gray8", slots=4, results=8, result_max=64)
    producer, a, b = seg.producer(), seg.worker(), seg.worker()
    reader = seg.reader()
    for _ in range(3):
        producer.write(np.zeros((1, 16), np.uint8))
    f0, f1, f2 = a.claim(timeout=1), b.claim(timeout=1), a.claim(timeout=1)
    assert reader.next(timeout=0) is None, "frame 0 has no result yet"
    assert f1.post(b"one") is True
    assert f0.post(b'{"boxes": []}') is True
    for f in (f0, f1, f2):  # f2 is released without a result
        f.release()
    got = [reader.next(timeout=1) for _ in range(3)]
    assert [(r.seq, r.data, r.skipped) for r in got] == [
        (0, b'{"boxes": []}', None),
        (1, b"one", None),
        (2, None, "no-result"),
    ]
    # A deadline: the iterator gives up on a frame whose result does not come in time.
    producer.write(np.zeros((1, 16), np.uint8))
    f3 = a.claim(timeout=1)
    with pytest.raises(framebus.Busy):
        seg.reader()  # the one attached above is the only one
    reader.skip_head()
    assert f3.post(b"too late") is False
    f3.release()
    assert seg.stats()["late_results"] == 1
    producer.write(np.zeros((1, 16), np.uint8))
    f4 = b.claim(timeout=1)
    f4.post(b"four")
    f4.release()
    producer.finish()
    rest = [(r.seq, r.skipped or r.data) for r in reader]
    assert rest == [(3, "deadline"), (4, b"four")], "iteration ends at the end of the stream"
    # The workers see the end at once: claim raises it, iteration stops there.
    with pytest.raises(framebus.EndOfStream, match="stream ended"):
        a.claim(timeout=5)
    assert list(b) == []


def test_a_worker_iterates_until_the_producer_finishes():
    seg = framebus.create(unique("iter"), 8, 1, format="gray8", slots=4)
    producer, w = seg.producer(), seg.worker()
    for i in range(3):
        producer.write(np.full((1, 8), i, np.uint8))
    producer.finish()
    seen = []
    for frame in w:
        seen.append((frame.seq, int(frame.array[0, 0])))
        frame.release()
    assert seen == [(0, 0), (1, 1), (2, 2)], "every frame, then the end"


def test_a_result_larger_than_the_segment_allows_is_refused():
    seg = framebus.create(unique("big"), 8, 1, format="gray8", slots=2, results=2, result_max=4)
    producer, w = seg.producer(), seg.worker()
    producer.write(np.zeros((1, 8), np.uint8))
    f = w.claim(timeout=1)
    with pytest.raises(ValueError, match="exceeds the segment's 4-byte maximum"):
        f.post(b"12345")
    f.release()
    plain = framebus.create(unique("plain"), 8, 1, format="gray8", slots=2)
    with pytest.raises(framebus.Error, match="no results area"):
        plain.reader()


def test_drop_policies_return_none_and_count():
    seg = framebus.create(unique("drops"), 8, 8, format="gray8", slots=2, policy="drop_newest")
    producer = seg.producer()
    seqs = [producer.write(np.full((8, 8), i, np.uint8)) for i in range(4)]
    assert seqs == [0, 1, None, None]
    assert seg.stats()["dropped_newest"] == 2


def test_waiting_releases_the_gil():
    seg = framebus.create(unique("gil"), 8, 8, format="gray8", slots=2)
    producer, worker = seg.producer(), seg.worker()
    got = []
    t = threading.Thread(target=lambda: got.append(worker.claim(timeout=20)))
    t.start()
    time.sleep(0.05)
    # If the waiting claim held the GIL, this thread could not publish until it timed out.
    producer.write(np.full((8, 8), 3, np.uint8))
    t.join(30)
    assert got and got[0] is not None and got[0].seq == 0
    got[0].release()


def test_an_array_keeps_its_frame_and_slot_alive_until_it_is_gone():
    seg = framebus.create(unique("gc"), 8, 8, format="gray8", slots=2)
    producer, worker = seg.producer(), seg.worker()
    producer.write(np.full((8, 8), 5, np.uint8))
    arr = worker.claim(timeout=1).array  # the Frame itself is dropped at once...
    gc.collect()
    assert worker.held == 1  # ...but the array is its base, so the slot stays held
    assert arr.sum() == 5 * 64
    del arr
    gc.collect()
    assert worker.held == 0  # the last view went away: the slot went back


def test_closing_a_consumer_invalidates_its_frames_but_keeps_their_memory():
    seg = framebus.create(unique("close"), 8, 8, format="gray8", slots=2)
    seg.producer().write(np.full((8, 8), 4, np.uint8))
    with framebus.open(seg.name).worker() as worker:  # the opened Segment object is gone at once
        frame = worker.claim(timeout=1)
        img = frame.array
    # The consumer is closed (its frame went back), but the array's memory is still mapped.
    assert int(img.sum()) == 4 * 64
    with pytest.raises(framebus.Released, match="closed"):
        frame.array
    with pytest.raises(framebus.Released):
        frame.tobytes()
    frame.release()  # idempotent, and never raises


def test_other_threads_release_frames_while_a_claim_waits():
    from concurrent.futures import ThreadPoolExecutor

    n = 300
    seg = framebus.create(unique("pool"), 16, 16, format="gray8", slots=3)
    producer, worker = seg.producer(), seg.worker()
    feeder = threading.Thread(target=lambda: [producer.write(np.full((16, 16), i % 256, np.uint8), timeout=20) for i in range(n)])
    feeder.start()
    seen = []

    def process(frame):
        with frame:  # released from a pool thread while the main thread waits in claim()
            assert int(frame.array[0, 0]) == frame.seq % 256
            seen.append(frame.seq)

    with ThreadPoolExecutor(4) as pool:
        for _ in range(n):
            frame = worker.claim(timeout=20)
            assert frame is not None, f"stalled after {len(seen)} frames"
            pool.submit(process, frame)
    feeder.join(20)
    assert sorted(seen) == list(range(n))


def test_a_signal_handler_can_close_a_consumer_that_is_waiting():
    seg = framebus.create(unique("signal"), 8, 8, format="gray8", slots=2)
    worker = seg.worker()
    old = signal.signal(signal.SIGALRM, lambda *_: worker.close())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(framebus.Released, match="closed"):
            worker.claim()  # no timeout: only the handler's close() ends it
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_a_slot_dropped_unpublished_is_given_back():
    seg = framebus.create(unique("orphan"), 8, 8, format="gray8", slots=1)
    producer = seg.producer()
    slot = producer.begin(timeout=1)
    view = slot.array
    del slot, view
    gc.collect()
    with producer.begin(timeout=1) as again:  # the only slot came back
        again.array[:] = 1
    assert seg.stats()["published"] == 1 and seg.stats()["next_seq"] == 1

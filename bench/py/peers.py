"""The Python ways of moving frames between processes, measured like framebus-bench measures
its rows: one-way latency (the sender stamps time.monotonic_ns(), the receiver subtracts on
receipt and acknowledges, so nothing queues), then throughput (frames back to back).

  mp.Queue      multiprocessing.Queue of numpy arrays (pickled through a pipe by a feeder thread)
  mp.Pipe       multiprocessing.Pipe, conn.send(array) (pickled)
  shm ring      multiprocessing.shared_memory ring of slots + a Queue of slot indices: the
                frame is copied into a slot (np.copyto), the receiver views it without a copy
  framebus      the framebus package (when importable): producer.write(frame) copies the
                frame into a slot, a worker process reads it as a numpy view of the slot
  framebus in place  the same, but the frame is made in the slot (a decoder writing into
                slot.array): nothing is copied

Prints one JSON object per (approach, size) on stdout. Usage: peers.py [--quick]
"""
import json
import multiprocessing as mp
import sys
import time
from multiprocessing import shared_memory

import numpy as np

try:
    import framebus
except ImportError:  # the rows are left out; `cargo xtask python` builds the package
    framebus = None

SIZES = [("64 B", (1, 64, 1)), ("720p", (720, 1280, 3)), ("1080p", (1080, 1920, 3))]
SLOTS = 4


def stamp(arr, i):
    flat = arr.reshape(-1)
    flat[:16] = np.frombuffer(np.array([time.monotonic_ns(), i], dtype="<u8").tobytes(), dtype=np.uint8)


def read_stamp(arr):
    t0, i = np.frombuffer(arr.reshape(-1)[:16].tobytes(), dtype="<u8")
    return int(t0), int(i)


def queue_consumer(q, acks, n, lat, out):
    out.put("ready")
    lats = []
    for _ in range(n):
        arr = q.get()
        t0, i = read_stamp(arr)
        if lat:
            lats.append(time.monotonic_ns() - t0)
            acks.put(i)
    out.put((lats, time.monotonic_ns()))


def pipe_consumer(conn, n, lat, out):
    out.put("ready")
    lats = []
    for _ in range(n):
        arr = conn.recv()
        t0, i = read_stamp(arr)
        if lat:
            lats.append(time.monotonic_ns() - t0)
            conn.send(i)
    out.put((lats, time.monotonic_ns()))


def shm_consumer(name, shape, q, acks, n, lat, out):
    shm = shared_memory.SharedMemory(name=name)
    ring = np.ndarray((SLOTS,) + shape, dtype=np.uint8, buffer=shm.buf)
    out.put("ready")
    lats = []
    for _ in range(n):
        k = q.get()
        t0, i = read_stamp(ring[k])  # a view: no copy of the frame
        if lat:
            lats.append(time.monotonic_ns() - t0)
        acks.put(k)  # the slot is free again (also the ack)
    del ring
    shm.close()
    out.put((lats, time.monotonic_ns()))


def framebus_consumer(name, acks, n, lat, out):
    worker = framebus.open(name).worker()
    out.put("ready")
    lats = []
    for _ in range(n):
        with worker.claim() as frame:
            t0, i = read_stamp(frame.array)  # a view of the slot: no copy of the frame
        if lat:
            lats.append(time.monotonic_ns() - t0)
            acks.put(i)
    out.put((lats, time.monotonic_ns()))


def framebus_segment(shape):
    h, w, c = shape
    name = f"bench-py-{time.monotonic_ns()}"
    return framebus.create(name, w, h, format="bgr24" if c == 3 else "gray8", slots=SLOTS)


def run(approach, shape, n, lat):
    frame = np.full(shape, 7, dtype=np.uint8)
    out = mp.Queue()
    if approach == "mp.Queue":
        q, acks = mp.Queue(maxsize=SLOTS), mp.Queue()
        p = mp.Process(target=queue_consumer, args=(q, acks, n, lat, out))
        p.start()
        out.get()  # the consumer is up (numpy imported, queues open): start the clock now
        start = time.monotonic_ns()
        for i in range(n):
            stamp(frame, i)
            q.put(frame)
            if lat:
                acks.get()
    elif approach == "mp.Pipe":
        a, b = mp.Pipe()
        p = mp.Process(target=pipe_consumer, args=(b, n, lat, out))
        p.start()
        out.get()  # the consumer is up (numpy imported, queues open): start the clock now
        start = time.monotonic_ns()
        for i in range(n):
            stamp(frame, i)
            a.send(frame)
            if lat:
                a.recv()
    elif approach.startswith("framebus"):
        seg = framebus_segment(shape)
        frame = frame.reshape(seg.shape)
        acks = mp.Queue()
        p = mp.Process(target=framebus_consumer, args=(seg.name, acks, n, lat, out))
        p.start()
        out.get()
        producer = seg.producer()
        start = time.monotonic_ns()
        for i in range(n):
            if approach == "framebus":
                stamp(frame, i)
                producer.write(frame)  # the decoded frame copied into a slot
            else:
                with producer.begin() as slot:
                    stamp(slot.array, i)  # the frame made in the slot: no copy
            if lat:
                acks.get()
    else:
        shm = shared_memory.SharedMemory(create=True, size=SLOTS * frame.nbytes)
        ring = np.ndarray((SLOTS,) + shape, dtype=np.uint8, buffer=shm.buf)
        q, acks = mp.Queue(), mp.Queue()
        # Latency: one slot in play, so each frame waits for the previous one's ack (no queueing).
        for k in range(SLOTS if not lat else 1):
            acks.put(k)
        p = mp.Process(target=shm_consumer, args=(shm.name, shape, q, acks, n, lat, out))
        p.start()
        out.get()  # the consumer is up (numpy imported, queues open): start the clock now
        start = time.monotonic_ns()
        for i in range(n):
            k = acks.get()  # a free slot
            stamp(frame, i)
            np.copyto(ring[k], frame)  # the decoded frame copied into shared memory
            q.put(k)
    lats, end = out.get()
    p.join()
    if approach == "shm ring":
        del ring
        shm.close()
        shm.unlink()
    return lats, n / max((end - start) / 1e9, 1e-9)


def pct(v, q):
    v = sorted(v)
    return float(v[int((len(v) - 1) * q)]) if v else float("nan")


def main():
    quick = "--quick" in sys.argv
    if framebus is None:
        print("peers.py: the framebus package is not importable here: its rows are left out (cargo xtask python builds it)", file=sys.stderr)
    for label, shape in SIZES:
        big = shape[0] * shape[1] * shape[2] > 1 << 20
        n = 20 if quick else (100 if big else 2000)
        approaches = ["mp.Queue", "mp.Pipe", "shm ring"] + (["framebus", "framebus in place"] if framebus else [])
        for approach in approaches:
            lats, _ = run(approach, shape, n, True)
            lats = lats[5:]  # the first frames pay for first-touch page faults: not counted
            _, fps = run(approach, shape, n, False)
            row = {
                "transport": f"Python {approach}",
                "size": label,
                "bytes": int(np.prod(shape)),
                "latency_ns": {"p50": pct(lats, 0.5), "p99": pct(lats, 0.99), "p999": pct(lats, 0.999)},
                "samples": lats,
                "frames_per_s": fps,
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

"""The Python inference service of framebus's seed users, twice: decode -> N worker processes
-> results in frame order, once with multiprocessing.Queue (what they run today: every frame
pickled through a pipe) and once with framebus (the decoder writes into shared slots, the
workers read them in place).

    python examples/python/mp_pipeline.py                        # both, bundled 720p clip
    python examples/python/mp_pipeline.py --transport framebus --workers 4 --frames 500

The "model" is the same in both: an 8 x 8 grid of mean luminance (cv2.resize with INTER_AREA
on the grey image) and the count of cells that changed against the previous frame the worker
saw. Frames are decoded as fast as OpenCV can (no pacing), the queue and the segment both hold
--slots frames, so the table shows what each transport costs on top of decoding and the model.
Exits 1 if a result is missing or out of order.
"""

import argparse
import heapq
import multiprocessing as mp
import os
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

import framebus

CLIP = Path(__file__).resolve().parents[2] / "harness" / "media" / "bbb-720p25.mp4"
END = 1


def model(img, prev):
    """8 x 8 mean-luminance grid and the number of cells that moved by more than 8 levels."""
    grid = cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (8, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    changed = 64 if prev is None else int(np.count_nonzero(np.abs(grid - prev) > 8))
    return grid, changed


def queue_worker(frames, results):
    prev = None
    while True:
        item = frames.get()
        if item is None:
            return
        seq, capture_ns, img = item  # unpickled: a private copy of the frame
        prev, changed = model(img, prev)
        results.put((seq, capture_ns, changed))


def framebus_worker(name, results):
    worker = framebus.open(name).worker()
    prev = None
    while True:
        with worker.claim() as frame:
            if frame.flags & END:
                return
            prev, changed = model(frame.array, prev)  # in place: the decoder's own bytes
            results.put((frame.seq, frame.capture_ns, changed))


def collect(results, n, out):
    """Puts results back in frame order; records latency capture -> ordered result."""
    heap, want, lat = [], 0, []
    while want < n:
        seq, capture_ns, _changed = results.get()
        heapq.heappush(heap, (seq, capture_ns))
        while heap and heap[0][0] == want:
            _, c = heapq.heappop(heap)
            lat.append(time.monotonic_ns() - c)
            want += 1
    out["latency_ns"] = lat


def run(transport, clip, workers, n, slots):
    results = mp.Queue()
    out = {}
    collector = threading.Thread(target=collect, args=(results, n, out))
    cap = cv2.VideoCapture(str(clip))
    ok, first = cap.read()
    if not ok:
        sys.exit(f"cannot decode {clip}")
    h, w = first.shape[:2]
    seg = None
    if transport == "queue":
        frames = mp.Queue(maxsize=slots)
        procs = [mp.Process(target=queue_worker, args=(frames, results)) for _ in range(workers)]
    else:
        seg = framebus.create(f"mp-pipeline-{os.getpid()}", w, h, format="bgr24", slots=slots)
        procs = [mp.Process(target=framebus_worker, args=(seg.name, results)) for _ in range(workers)]
        producer = seg.producer()
    for p in procs:
        p.start()
    collector.start()
    in_place = 0
    start = time.monotonic()
    for seq in range(n):
        if transport == "queue":
            ok, img = cap.read()
            if not ok:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, img = cap.read()
            frames.put((seq, time.monotonic_ns(), img))
        else:
            with producer.begin() as slot:
                dst = slot.array
                ok, img = cap.read(dst)  # OpenCV decodes into the slot when shape and type fit
                if not ok:
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    ok, img = cap.read(dst)
                if img.ctypes.data == dst.ctypes.data:
                    in_place += 1
                else:
                    np.copyto(dst, img)
                slot.publish(capture_ns=time.monotonic_ns())
    collector.join()
    wall = time.monotonic() - start
    for _ in procs:
        if transport == "queue":
            frames.put(None)
        else:
            producer.write(np.zeros(seg.shape, np.uint8), flags=END)
    for p in procs:
        p.join()
    lat = np.array(out["latency_ns"]) / 1e6
    return {
        "transport": transport,
        "frames": len(lat),
        "fps": len(lat) / wall,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "in_place": in_place,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transport", choices=["queue", "framebus", "both"], default="both")
    ap.add_argument("--video", default=str(CLIP))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--slots", type=int, default=8)
    args = ap.parse_args()
    mp.set_start_method("spawn")  # as on Windows and macOS; no inherited state
    rows = []
    for t in (["queue", "framebus"] if args.transport == "both" else [args.transport]):
        rows.append(run(t, args.video, args.workers, args.frames, args.slots))
    print(f"{'transport':<10} {'frames':>6} {'fps':>7} {'latency p50':>12} {'p99':>8}  frames decoded into the slot")
    for r in rows:
        print(
            f"{r['transport']:<10} {r['frames']:>6} {r['fps']:>7.1f} {r['p50']:>9.1f} ms {r['p99']:>5.1f} ms"
            f"  {r['in_place'] if r['transport'] == 'framebus' else '-'}"
        )
    if any(r["frames"] != args.frames for r in rows):
        sys.exit("a result is missing")


if __name__ == "__main__":
    main()

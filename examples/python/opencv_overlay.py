"""Draws a running simulation's results, in frame order, over its live video with OpenCV.

    cargo xtask simulate --name demo --duration 60 &
    python examples/python/opencv_overlay.py demo --show               # a window
    python examples/python/opencv_overlay.py demo --out overlay.mp4    # headless: a video file

Two subscriptions, both zero copy:
  demo.out  the collector's results in frame order (broadcast; one 256-byte record per frame:
            ten little-endian u64 -- seq, worker, claim_start_ns, claim_ns, done_ns,
            sent_checksum, seen_checksum, changed_cells, mean_luma, call_ns; flags bit 0 set
            when the frame was dropped and has no result)
  demo      the decoded frames (a latest reader: the newest frame, never holding up workers)
"""

import argparse
import struct
import sys
import time

import cv2
import numpy as np

import framebus

RECORD = struct.Struct("<10Q")
SKIPPED = 1


def open_when_ready(name, timeout):
    """The segment `name`, waiting for the simulation to create it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return framebus.open(name)
        except framebus.NotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def draw(img, rec, latency_ms, dropped):
    seq, worker, _cs, _c, _d, sent, seen, changed, luma, call_ns = rec
    h, w = img.shape[:2]
    for k in range(1, 8):  # the 8 x 8 grid the model compares frame to frame
        cv2.line(img, (w * k // 8, 0), (w * k // 8, h), (80, 80, 80), 1)
        cv2.line(img, (0, h * k // 8), (w, h * k // 8), (80, 80, 80), 1)
    bar = int(w * changed / 64)
    cv2.rectangle(img, (0, h - 12), (bar, h), (0, 0, 255), -1)
    lines = [
        f"frame {seq}  worker {worker}  model {call_ns / 1e6:.0f} ms  latency {latency_ms:.0f} ms",
        f"changed cells {changed}/64  mean luma {luma}  dropped so far {dropped}",
        "checksum ok" if sent == seen else "CHECKSUM MISMATCH",
    ]
    for i, text in enumerate(lines):
        cv2.putText(img, text, (10, 28 + 26 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(img, text, (10, 28 + 26 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="the simulation's --name")
    ap.add_argument("--show", action="store_true", help="show a window (needs a display)")
    ap.add_argument("--out", help="write the annotated video here (mp4)")
    ap.add_argument("--frames", type=int, default=0, help="stop after this many results (0: until the run ends)")
    ap.add_argument("--wait", type=float, default=20, help="seconds to wait for the simulation to start")
    args = ap.parse_args()

    frames_seg = open_when_ready(args.name, args.wait)
    results = open_when_ready(args.name + ".out", args.wait).subscriber()
    latest = frames_seg.latest()
    writer = None
    if args.out:
        fps = 25
        writer = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*"mp4v"), fps, (frames_seg.width, frames_seg.height))
    shown = dropped = last = 0
    canvas = np.zeros((frames_seg.height, frames_seg.width, 3), np.uint8)
    while not args.frames or shown < args.frames:
        rec = results.claim(timeout=5)
        if rec is None:
            break  # the simulation ended
        with rec:
            values = RECORD.unpack_from(rec.array.tobytes(), 0)
            skipped, capture_ns = rec.flags & SKIPPED, rec.capture_ns
        if skipped:
            dropped += 1
            continue
        if values[0] < last:
            sys.exit(f"results out of order: {values[0]} after {last}")
        last = values[0]
        latency_ms = (time.monotonic_ns() - capture_ns) / 1e6
        frame = latest.claim(timeout=0)  # the newest decoded frame, if one is waiting
        if frame is not None:
            with frame:
                # The frame is read-only shared memory: draw on our own canvas.
                np.copyto(canvas, frame.array.reshape(canvas.shape))
        draw(canvas, values, latency_ms, dropped)
        if writer is not None:
            writer.write(canvas)
        if args.show:
            cv2.imshow(args.name, canvas)
            if cv2.waitKey(1) == 27:
                break
        shown += 1
    print(f"drew {shown} results in frame order (last frame {last}), {dropped} frames dropped upstream")
    if writer is not None:
        writer.release()
    latest.close()
    results.close()


if __name__ == "__main__":
    main()

"""The smallest useful framebus worker: claims frames until the end of the stream, computes
something from the pixels in place (their mean), posts it as the frame's result (JSON), and
releases the frame. Any number of these can run on one segment; the reader gets the results in
frame order (examples/c/ordered_pipeline.c reads them from C, `framebus run` from Rust).

    python3 minimal_worker.py SEGMENT [MODEL_MS]   # or FRAMEBUS_SEGMENT=... under `framebus run`

MODEL_MS (default 0) adds that much time per frame, standing in for a real model's.
"""

import json
import os
import sys
import time

import framebus


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FRAMEBUS_SEGMENT")
    if not name:
        sys.exit("usage: minimal_worker.py SEGMENT (or run it under `framebus run`)")
    model_s = float(sys.argv[2]) / 1e3 if len(sys.argv) > 2 else 0.0
    with framebus.open(name).worker() as worker:
        print("ready", flush=True)
        for frame in worker:
            mean = float(frame.array.mean())  # the slot itself, no copy
            time.sleep(model_s)
            frame.post(json.dumps({"seq": frame.seq, "mean": round(mean, 2), "pid": os.getpid()}).encode())
            frame.release()


if __name__ == "__main__":
    main()

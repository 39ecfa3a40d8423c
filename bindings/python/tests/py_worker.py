"""A Python worker process for the cross-language tests.

    py_worker.py NAME            claim until idle for 2 s after the first frame, checking
                                 every byte against framebus-peer's pattern; print
                                 "count seq_sum" and exit 0
    py_worker.py NAME --hold N   claim N frames, print "held N", then sleep until killed
"""

import sys
import time

import numpy as np

import framebus


def main():
    seg = framebus.open(sys.argv[1])
    worker = seg.worker()
    if sys.argv[2:3] == ["--hold"]:
        held = [worker.claim(timeout=10) for _ in range(int(sys.argv[3]))]
        assert all(f is not None for f in held)
        print(f"held {len(held)}", flush=True)
        time.sleep(3600)
        return
    print("ready", flush=True)
    ramp = np.arange(seg.frame_size, dtype=np.uint64) * 7
    count = total = 0
    timeout = 30.0
    while True:
        frame = worker.claim(timeout=timeout)
        if frame is None:
            break
        with frame:
            want = ((frame.seq * 31 + ramp) % 251).astype(np.uint8)
            got = frame.array.reshape(-1)
            if not np.array_equal(got, want):
                bad = int(np.flatnonzero(got != want)[0])
                sys.exit(f"torn frame: seq {frame.seq} byte {bad}")
            count += 1
            total += frame.seq
        timeout = 2.0
    print(count, total, flush=True)


if __name__ == "__main__":
    main()

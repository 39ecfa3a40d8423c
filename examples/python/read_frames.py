"""Reads frames that `framebus producer` decodes, in place (no copy):

    framebus producer --video harness/media/bbb-720p25.mp4 --segment cam0 --create &
    python examples/python/read_frames.py cam0
"""
import sys

import framebus

seg = framebus.open(sys.argv[1] if len(sys.argv) > 1 else "cam0")
worker = seg.worker()
for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 50):
    with worker.claim(timeout=5) as frame:
        img = frame.array  # H x W x 3 uint8, a view of the slot in shared memory
        inside = seg.address <= img.ctypes.data < seg.address + seg.size
        print(f"frame {frame.seq}: {img.shape} mean {img.mean():.1f} zero-copy={inside}")

"""A framebus worker with a real model: OpenCV's Haar face detector (its weights ship inside
the `opencv-python-headless` 4.x wheel, `cv2.data.haarcascades`; 5.x dropped them).

It reads each frame in place (the slot's numpy view: no copy), posts its detections as JSON, and
releases the frame; the runtime reads the results back in frame order. Started by
`framebus run` (examples/pipelines/faces.toml), which tells it the segment through
FRAMEBUS_SEGMENT; it stops at the end of the stream.

    framebus run examples/pipelines/faces.toml            # JSON Lines on stdout
    pip install "opencv-python-headless>=4.8,<5" numpy   # what it needs, besides framebus
"""

import json
import os
import sys
import time

import framebus

try:
    import cv2
except ImportError:
    sys.exit("face_worker: needs OpenCV: pip install 'opencv-python-headless>=4.8,<5'")


def detector():
    path = os.path.join(getattr(cv2, "data", None) and cv2.data.haarcascades or "", "haarcascade_frontalface_default.xml")
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        sys.exit(
            f"face_worker: no Haar cascade at {path!r}: OpenCV {cv2.__version__} does not ship them "
            "(5.x dropped cv2.data); pip install 'opencv-python-headless>=4.8,<5'"
        )
    return cascade


def main():
    name = os.environ.get("FRAMEBUS_SEGMENT") or (sys.argv[1] if len(sys.argv) > 1 else None)
    if not name:
        sys.exit("face_worker: no segment: run it under `framebus run`, or give the segment name")
    index = int(os.environ.get("FRAMEBUS_WORKER", "0"))
    cascade = detector()
    seg = framebus.open(name)
    with seg.worker() as worker:
        for frame in worker:  # until the end of the stream
            t = time.perf_counter()
            # The slot itself, as a (height, width, 3) BGR view: OpenCV reads it in place.
            gray = cv2.cvtColor(frame.array, cv2.COLOR_BGR2GRAY)
            small = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
            found = cascade.detectMultiScale(small, scaleFactor=1.2, minNeighbors=5, minSize=(24, 24))
            faces = [[int(v) * 2 for v in box] for box in found]
            result = {"worker": index, "faces": faces, "ms": round((time.perf_counter() - t) * 1e3, 1)}
            frame.post(json.dumps(result).encode())
            frame.release()


if __name__ == "__main__":
    main()

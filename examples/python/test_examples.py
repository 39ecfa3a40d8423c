"""Runs the examples briefly against the real binaries (`cargo xtask python` runs this file)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import framebus

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CLIP = ROOT / "harness" / "media" / "bbb-720p25.mp4"


def framebus_bin():
    if os.environ.get("FRAMEBUS_BIN"):
        return os.environ["FRAMEBUS_BIN"]
    for profile in ("release", "checked", "debug"):
        if (ROOT / "target" / profile / "framebus").exists():
            return str(ROOT / "target" / profile / "framebus")
    pytest.fail("framebus binary not found: set FRAMEBUS_BIN or cargo build --release -p framebus-harness")


def run(*args, timeout=120):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_read_frames_reads_what_framebus_producer_decodes():
    name = f"ex-read-{os.getpid()}"
    prod = subprocess.Popen([framebus_bin(), "producer", "--video", str(CLIP), "--segment", name, "--create",
                             "--frames", "400"], stdout=subprocess.PIPE, text=True)
    try:
        assert prod.stdout.readline().strip() == "ready"
        r = run(HERE / "read_frames.py", name, 10)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert len(lines) == 10 and all("(720, 1280, 3)" in l and "zero-copy=True" in l for l in lines), r.stdout
    finally:
        prod.terminate()  # Ctrl-C-like: the producer removes the segment it created
        prod.wait(timeout=10)
    assert not Path(f"/dev/shm/framebus.{name}").exists()


def test_opencv_overlay_draws_the_ordered_results_of_a_simulation(tmp_path):
    name = f"ex-overlay-{os.getpid()}"
    sim = subprocess.Popen([framebus_bin(), "simulate", "--name", name, "--duration", "4", "--quiet",
                            "--workers", "2", "--profile", "gpu"], stdout=subprocess.DEVNULL)
    try:
        out = tmp_path / "overlay.mp4"
        r = run(HERE / "opencv_overlay.py", name, "--out", out, "--frames", "30")
        assert r.returncode == 0, r.stderr
        assert "drew 30 results in frame order" in r.stdout
        import cv2

        cap = cv2.VideoCapture(str(out))
        n = 0
        while cap.read()[0]:
            n += 1
        assert n == 30
    finally:
        assert sim.wait(timeout=60) == 0


def test_mp_pipeline_runs_both_transports():
    r = run(HERE / "mp_pipeline.py", "--frames", "60", "--workers", "2")
    assert r.returncode == 0, r.stderr
    rows = {l.split()[0]: l.split() for l in r.stdout.splitlines()[1:]}
    assert rows["queue"][1] == "60" and rows["framebus"][1] == "60"
    assert rows["framebus"][-1] == "60", "OpenCV should decode every frame straight into its slot"


def framebus_run(*args, timeout=300, kill_worker_after=None):
    """Runs `framebus run ARGS` with this interpreter first on PATH (the workers' `python3`);
    optionally SIGKILLs one face worker after `kill_worker_after` seconds. Returns
    (returncode, stderr, the JSON Lines as dicts)."""
    import json
    import signal
    import tempfile

    out = Path(tempfile.mkdtemp()) / "results.jsonl"
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    p = subprocess.Popen(
        [framebus_bin(), "run", *map(str, args), "--jsonl", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if kill_worker_after is not None:
        time.sleep(kill_worker_after)
        pids = subprocess.run(["pgrep", "-P", str(p.pid), "-f", "face_worker.py"], capture_output=True, text=True)
        victims = pids.stdout.split()
        assert victims, "no face worker running under framebus run"
        os.kill(int(victims[0]), signal.SIGKILL)
    _, err = p.communicate(timeout=timeout)
    lines = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return p.returncode, err, lines


def mosquitto(port):
    """A real broker on 127.0.0.1:port (Debian's mosquitto), or None when it is not installed
    outside CI."""
    import shutil
    import socket
    import tempfile

    if not (shutil.which("mosquitto") and shutil.which("mosquitto_sub")):
        if os.environ.get("CI") == "true":
            pytest.fail("mosquitto is missing: apt-get install mosquitto mosquitto-clients")
        return None
    conf = Path(tempfile.mkdtemp()) / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return broker
        except OSError:
            time.sleep(0.02)
    broker.kill()
    pytest.fail("mosquitto did not start")


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_framebus_run_runs_the_face_detector_workers_and_writes_one_ordered_line_per_frame():
    # The same pipeline to a real MQTT broker too, when there is one: a real subscriber checks
    # it got the very lines the JSON Lines file has.
    port = free_port()
    broker = mosquitto(port)
    extra, sub = [], None
    if broker:
        extra = ["--mqtt", f"127.0.0.1:{port}", "--mqtt-topic", "cam/faces"]
        sub = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", "cam/faces", "-q", "1", "-C", "132", "-W", "120"],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)  # subscribed before the first frame (it connects within milliseconds)
    try:
        code, err, lines = framebus_run(ROOT / "examples" / "pipelines" / "faces.toml", *extra)
        received = sub.communicate(timeout=60)[0].splitlines() if sub else None
    finally:
        if broker:
            broker.kill()
    assert code == 0, err
    assert [line["seq"] for line in lines] == list(range(132)), "every frame of the clip, in order"
    assert all(isinstance(line["result"]["faces"], list) for line in lines), lines[:3]
    assert {line["result"]["worker"] for line in lines} == {0, 1}, "both workers took frames"
    for line in lines:
        for box in line["result"]["faces"]:
            x, y, w, h = box
            assert 0 <= x and 0 <= y and x + w <= 1280 and y + h <= 720 and w > 0, box
    assert "132 frames in, 132 results out, 0 skipped" in err, err
    if received is not None:
        import json

        assert [json.loads(m) for m in received] == lines, "MQTT carried every line, in frame order"
        assert "MQTT 132 messages, 132 delivered, 0 lost" in err, err


def test_a_worker_killed_mid_run_is_restarted_and_its_frame_reported_lost():
    code, err, lines = framebus_run(ROOT / "examples" / "pipelines" / "faces.toml", kill_worker_after=3)
    assert code == 0, err
    assert "died (signal: 9 (SIGKILL))" in err and "restarted" in err, err
    assert [line["seq"] for line in lines] == list(range(132)), "one line per frame, in order, still"
    lost = [line for line in lines if "skipped" in line]
    assert all(line["skipped"] == "worker-died" for line in lost), lost
    assert len(lost) <= 1, "at most the frame the killed worker held"


def c_library():
    for profile in ("release", "checked"):
        lib = ROOT / "target" / profile / "libframebus.a"
        if lib.exists():
            return lib
    pytest.fail("libframebus.a not found: cargo build --release -p framebus-c")


def test_a_c_producer_python_workers_and_results_read_in_order_from_c(tmp_path):
    """The seed users' shape (seed 004): a C producer, Python model processes, and the results
    read back in frame order in C; one Python worker is SIGKILLed mid-stream and the C reader
    is told which frame it lost, instead of waiting on it."""
    import shutil
    import signal

    cc = os.environ.get("CC") or shutil.which("cc")
    if not cc:
        if os.environ.get("CI") == "true":
            pytest.fail("no C compiler: apt-get install gcc")
        pytest.skip("no C compiler (apt-get install gcc)")
    exe = tmp_path / "ordered_pipeline"
    subprocess.run(
        [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-pthread", "-I", str(ROOT / "bindings/c/include"),
         str(ROOT / "examples/c/ordered_pipeline.c"), str(c_library()), "-lpthread", "-ldl", "-lm", "-o", str(exe)],
        check=True,
    )
    name = f"seed004-{os.getpid()}"
    frames = 400
    c = subprocess.Popen([str(exe), name, str(frames), "320", "240"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert c.stdout.readline().strip() == f"created {name}"
        workers = [
            subprocess.Popen([sys.executable, str(HERE / "minimal_worker.py"), name, "5"], stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        for w in workers:
            assert w.stdout.readline().strip() == "ready"
        c.stdin.write("go\n")
        c.stdin.flush()
        # Kill one worker mid-stream: once 100 of the 400 frames were claimed.
        seg = framebus.open(name)
        t = time.monotonic()
        while seg.stats()["delivered"] < 100:
            assert time.monotonic() - t < 30, "the workers never got going"
            time.sleep(0.005)
        os.kill(workers[0].pid, signal.SIGKILL)
        out, _ = c.communicate(timeout=120)
        assert c.returncode == 0, out
        assert workers[1].wait(timeout=20) == 0, "the other worker left at the end of the stream"
    finally:
        for p in [c, *workers]:
            if p.poll() is None:
                p.kill()
    lines = out.splitlines()
    assert lines[-1].startswith("in order: "), lines[-1]
    per_frame = lines[:-1]
    assert [int(l.split()[1]) for l in per_frame] == list(range(frames)), "one line per frame, in order"
    import json

    results = [json.loads(l.split(" ", 3)[3]) for l in per_frame if l.split()[2] == "result"]
    assert all(r["mean"] == r["seq"] % 251 for r in results), "each result is its own frame's"
    skipped = [l for l in per_frame if l.split()[2] == "skipped"]
    assert all(l.endswith("skipped worker-died") for l in skipped), skipped
    assert len(skipped) <= 1, "at most the frame the killed worker held"
    assert {r["pid"] for r in results} == {workers[0].pid, workers[1].pid}, "both worked before the kill"

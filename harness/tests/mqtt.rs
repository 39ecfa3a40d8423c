//! The MQTT sink against a real broker: Debian's `mosquitto`, started here on 127.0.0.1 and a
//! free port, with a real subscriber (`mosquitto_sub`, package `mosquitto-clients`) checking
//! every message; and the broker down at the start, or going away mid-run and coming back.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

const CLIP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/media/bbb-720p25.mp4");
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Whether `prog` is installed; outside CI a missing one skips the test (naming the package),
/// under `CI=true` it fails it.
fn have(prog: &str, package: &str) -> bool {
    let found =
        Command::new("sh").args(["-c", &format!("command -v {prog}")]).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{prog} is missing: apt-get install {package}");
        eprintln!("SKIPPED: {prog} is not installed (apt-get install {package})");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("framebus-mqtttest-{}-{name}", std::process::id()))
}

/// A broker on 127.0.0.1:`port`, killed when dropped.
struct Broker(Child);

impl Broker {
    fn start(port: u16) -> Broker {
        let conf = tmp(&format!("mosquitto-{port}.conf"));
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\n")).unwrap();
        let child =
            Command::new("mosquitto").arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t.elapsed() < Duration::from_secs(10), "mosquitto did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker(child)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A subscriber to `topic`, collecting every message's payload until it is stopped.
struct Subscriber {
    child: Child,
    got: std::sync::Arc<Mutex<Vec<String>>>,
}

impl Subscriber {
    fn start(port: u16, topic: &str) -> Subscriber {
        // Line-buffered (coreutils' stdbuf): a pipe would otherwise hold its output back.
        let mut child = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", topic, "-q", "1", "-d"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let got = std::sync::Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let g = got.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                // `-d` prints the protocol exchange; the payloads are the lines that are JSON.
                if line.contains("SUBACK") {
                    let _ = tx.send(());
                } else if line.starts_with('{') {
                    g.lock().unwrap().push(line);
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10)).expect("mosquitto_sub subscribed");
        Subscriber { child, got }
    }

    /// Stops once `want` messages came (or, with `None`, once none came for 300 ms), at most 10 s.
    fn stop(mut self, want: Option<usize>) -> Vec<String> {
        let t = Instant::now();
        let (mut seen, mut quiet_since) = (0, Instant::now());
        while t.elapsed() < Duration::from_secs(10) {
            let n = self.got.lock().unwrap().len();
            if want.is_some_and(|w| n >= w) || (want.is_none() && quiet_since.elapsed() > Duration::from_millis(300)) {
                break;
            }
            if n != seen {
                (seen, quiet_since) = (n, Instant::now());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let g = self.got.lock().unwrap();
        g.clone()
    }
}

/// `framebus run` of the bundled clip's first `frames` with stub workers, to MQTT at `port`.
fn run(port: u16, topic: &str, frames: u32, jsonl: &Path) -> (bool, String) {
    let name = format!("mq{}{}", std::process::id(), topic.replace('/', ""));
    let o = Command::new(env!("CARGO_BIN_EXE_framebus"))
        .args([
            "run",
            "--name",
            &name,
            "--video",
            CLIP,
            "--frames",
            &frames.to_string(),
            "--workers",
            "2",
            "--profile",
            "custom:5,1,0",
        ])
        .args(["--jsonl", jsonl.to_str().unwrap(), "--mqtt", &format!("127.0.0.1:{port}"), "--mqtt-topic", topic])
        .output()
        .unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Waits until the pipeline's segment `name` has published `n` frames (at most 30 s).
fn wait_published(name: &str, n: u64) {
    let t = Instant::now();
    while !framebus_platform::SharedSegment::open(name).is_ok_and(|s| s.segment().stats().write_pos >= n) {
        assert!(t.elapsed() < Duration::from_secs(30), "{name} never published {n} frames");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn seqs(lines: &[String]) -> Vec<u64> {
    lines.iter().map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap()).collect()
}

#[test]
fn every_frame_reaches_a_real_subscriber_in_order_as_its_json_line() {
    if !have("mosquitto", "mosquitto") || !have("mosquitto_sub", "mosquitto-clients") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let port = free_port();
    let _broker = Broker::start(port);
    let sub = Subscriber::start(port, "cam/ordered");
    let jsonl = tmp("ordered.jsonl");
    let (ok, err) = run(port, "cam/ordered", 60, &jsonl);
    assert!(ok, "{err}");
    let got = sub.stop(Some(60));
    let lines: Vec<String> = std::fs::read_to_string(&jsonl).unwrap().lines().map(String::from).collect();
    let _ = std::fs::remove_file(&jsonl);
    assert_eq!(seqs(&lines), (0..60).collect::<Vec<_>>(), "{err}");
    assert_eq!(got, lines, "the subscriber got every frame's line, in frame order: {err}");
    assert!(err.contains("MQTT 60 messages, 60 delivered, 0 lost"), "{err}");
}

#[test]
fn a_broker_that_is_down_loses_its_messages_counted_and_nothing_else() {
    if !have("mosquitto", "mosquitto") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let jsonl = tmp("down.jsonl");
    let (ok, err) = run(free_port(), "cam/down", 30, &jsonl);
    let lines = std::fs::read_to_string(&jsonl).unwrap().lines().count();
    let _ = std::fs::remove_file(&jsonl);
    assert!(ok, "the pipeline does not need the broker: {err}");
    assert_eq!(lines, 30, "JSON Lines still has every frame: {err}");
    assert!(err.contains("unreachable") && err.contains("retries with backoff"), "{err}");
    assert!(err.contains("MQTT 30 messages, 0 delivered, 30 lost"), "{err}");
}

#[test]
fn a_broker_that_goes_away_and_comes_back_gets_the_rest_and_the_gap_is_counted() {
    if !have("mosquitto", "mosquitto") || !have("mosquitto_sub", "mosquitto-clients") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let port = free_port();
    let broker = Broker::start(port);
    let jsonl = tmp("away.jsonl");
    let run = {
        let jsonl = jsonl.clone();
        std::thread::spawn(move || run(port, "cam/away", 150, &jsonl)) // 6 s at 25 fps
    };
    // The broker goes away once 30 frames are out, and comes back at 70 (of 150).
    let name = format!("mq{}camaway", std::process::id());
    wait_published(&name, 30);
    drop(broker);
    wait_published(&name, 70);
    let _back = Broker::start(port);
    let sub = Subscriber::start(port, "cam/away");
    let (ok, err) = run.join().unwrap();
    let got = sub.stop(None);
    let lines = std::fs::read_to_string(&jsonl).unwrap().lines().count();
    let _ = std::fs::remove_file(&jsonl);
    assert!(ok, "{err}");
    assert_eq!(lines, 150, "{err}");
    assert!(err.contains("unreachable") && err.contains("is back"), "the link's changes are said: {err}");
    let line = err.lines().find(|l| l.contains("MQTT 150 messages")).unwrap_or_else(|| panic!("{err}"));
    let n: Vec<u64> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    let (delivered, lost) = (n[1], n[2]);
    assert_eq!(delivered + lost, 150, "{line}");
    assert!(delivered > 0 && !got.is_empty(), "messages after the broker came back arrived: {line}");
    let s = seqs(&got);
    assert!(s.windows(2).all(|w| w[0] <= w[1]), "in frame order (QoS 1 may repeat one): {s:?}");
    assert!(*s.last().unwrap() >= 140, "the last frames arrived: {s:?}");
}

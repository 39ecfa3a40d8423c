//! `--metrics ADDR`: the pipeline's counters in the Prometheus / OpenMetrics text exposition
//! (the `prometheus-client` crate encodes it), served over HTTP on `ADDR` (`tiny_http`) at
//! `/metrics` while the pipeline runs.
//!
//! | metric | type | from |
//! |---|---|---|
//! | `framebus_frames_issued_total` | counter | sequence numbers the source issued (`next_seq`) |
//! | `framebus_frames_published_total` | counter | frames published (`write_pos`) |
//! | `framebus_frames_dropped_total{policy}` | counter | dropped by the overflow policy (`drop-oldest`, `drop-newest`) |
//! | `framebus_results_total` | counter | results delivered in frame order |
//! | `framebus_frames_skipped_total{cause}` | counter | frames without a result, by skip cause |
//! | `framebus_results_late_total` | counter | results after their frame was skipped, and posts given up |
//! | `framebus_frames_reclaimed_total` | counter | frames taken back from dead consumers |
//! | `framebus_frames_redelivered_total` | counter | of those, frames given once more to another worker |
//! | `framebus_worker_frames_total{worker}` | counter | frames each worker claimed (its consumer line) |
//! | `framebus_restarts_total{process}` | counter | processes restarted after they died |
//! | `framebus_slots{state}` | gauge | slots by state now: `free`, `writing`, `ready`, `taken` |

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use framebus_platform::core::{ConsumerKind, EntryStatus, SkipCause, Vocabulary};
use framebus_platform::SharedSegment;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::reader::Sink;
use super::supervise::Procs;
use crate::Res;

type Labels = Vec<(String, String)>;

/// The pipeline's metrics (cheap to clone: every handle shares its value).
#[derive(Clone, Default)]
pub struct Metrics {
    issued: Counter,
    published: Counter,
    dropped: Family<Labels, Counter>,
    results: Counter,
    skipped: Family<Labels, Counter>,
    late: Counter,
    reclaimed: Counter,
    redelivered: Counter,
    worker_frames: Family<Labels, Counter>,
    restarts: Family<Labels, Counter>,
    slots: Family<Labels, Gauge>,
    /// What each counter fed from an absolute value last saw, to add only the difference.
    last: Arc<Mutex<BTreeMap<String, u64>>>,
    /// Each worker's lives, so that its count stays monotonic across restarts.
    lives: Arc<Mutex<BTreeMap<String, Lives>>>,
}

fn labels(k: &str, v: &str) -> Labels {
    vec![(k.to_string(), v.to_string())]
}

impl Metrics {
    /// The registry, with every metric described.
    fn registry(&self) -> Registry {
        let mut r = Registry::default();
        r.register("framebus_frames_issued", "Sequence numbers the source issued", self.issued.clone());
        r.register("framebus_frames_published", "Frames published into the segment", self.published.clone());
        r.register("framebus_frames_dropped", "Frames dropped by the overflow policy", self.dropped.clone());
        r.register("framebus_results", "Results delivered in frame order", self.results.clone());
        r.register("framebus_frames_skipped", "Frames without a result, by cause", self.skipped.clone());
        r.register(
            "framebus_results_late",
            "Results after their frame was skipped, and posts given up",
            self.late.clone(),
        );
        r.register(
            "framebus_frames_reclaimed",
            "Frames taken back from consumers whose process died",
            self.reclaimed.clone(),
        );
        r.register(
            "framebus_frames_redelivered",
            "Frames a dead worker held, given to another worker",
            self.redelivered.clone(),
        );
        r.register("framebus_worker_frames", "Frames each worker claimed", self.worker_frames.clone());
        r.register("framebus_restarts", "Processes restarted after they died", self.restarts.clone());
        r.register("framebus_slots", "Slots by state now", self.slots.clone());
        r
    }

    /// Moves `counter` up to the absolute value `now` (counters only go up).
    fn advance(&self, key: &str, counter: &Counter, now: u64) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let seen = last.entry(key.to_string()).or_default();
        if now > *seen {
            counter.inc_by(now - *seen);
            *seen = now;
        }
    }

    /// Reads the segment's counters and the processes' restarts (the runtime's tick).
    pub fn update(&self, seg: &SharedSegment, procs: &Procs) {
        let s = seg.segment();
        let st = s.stats();
        self.advance("issued", &self.issued, st.next_seq);
        self.advance("published", &self.published, st.write_pos);
        self.advance(
            "dropped-oldest",
            &self.dropped.get_or_create(&labels("policy", "drop-oldest")),
            st.dropped_oldest,
        );
        self.advance(
            "dropped-newest",
            &self.dropped.get_or_create(&labels("policy", "drop-newest")),
            st.dropped_newest,
        );
        let (late, overflow) = s.result_counts();
        self.advance("late", &self.late, late + overflow);
        self.advance("reclaimed", &self.reclaimed, st.reclaimed);
        self.advance("redelivered", &self.redelivered, st.redelivered);
        let census = s.census();
        for (state, n) in
            [("free", census.free), ("writing", census.writing), ("ready", census.ready), ("taken", census.taken)]
        {
            self.slots.get_or_create(&labels("state", state)).set(i64::from(n));
        }
        // Each worker's own count, found by its pid in the consumer table.
        for (key, pid) in procs.pids() {
            for i in 0..s.layout().spec.max_consumers {
                let e = s.entry_state(i);
                if e.status == EntryStatus::Alive
                    && e.kind == Some(ConsumerKind::Worker)
                    && s.entry_owner(i).0 as u32 == pid
                {
                    let (delivered, ..) = s.entry_counters(i);
                    // A restarted worker's count starts again: keep the counter monotonic.
                    let total = self.carry(&key, i, e.gen, delivered);
                    self.advance(
                        &format!("worker {key}"),
                        &self.worker_frames.get_or_create(&labels("worker", &key)),
                        total,
                    );
                }
            }
        }
        for (key, n) in procs.restarts() {
            self.advance(&format!("restarts {key}"), &self.restarts.get_or_create(&labels("process", &key)), n);
        }
    }

    /// A worker's frames over all its lives: the counts of its earlier entries plus this one's.
    fn carry(&self, key: &str, entry: u32, gen: u64, now: u64) -> u64 {
        let mut lives = self.lives.lock().unwrap_or_else(|e| e.into_inner());
        let l = lives.entry(key.to_string()).or_default();
        if l.life != (entry, gen) {
            // A new life: what the last one counted becomes part of the base.
            l.base += l.current;
            l.life = (entry, gen);
        }
        l.current = now;
        l.base + now
    }
}

/// One worker's current life (its consumer entry and generation), and what its earlier lives
/// counted.
#[derive(Default)]
struct Lives {
    life: (u32, u64),
    base: u64,
    current: u64,
}

/// Counts the ordered results and skips (a sink beside the others).
pub struct Counting(pub Metrics);

impl Sink for Counting {
    fn result(&mut self, _: u64, _: u64, _: &[u8], _: u64) -> Res<()> {
        self.0.results.inc();
        Ok(())
    }
    fn skipped(&mut self, _: u64, cause: SkipCause, _: u64) -> Res<()> {
        self.0.skipped.get_or_create(&labels("cause", cause.name())).inc();
        Ok(())
    }
}

/// Serves `/metrics` on `addr` until `stop` is raised (a thread; the server lives with it).
///
/// # Errors
/// The address cannot be bound (in use, not local, not an address).
pub fn serve(addr: &str, m: Metrics, stop: Arc<AtomicU64>) -> Res<std::thread::JoinHandle<()>> {
    let server = tiny_http::Server::http(addr).map_err(|e| {
        format!("--metrics {addr}: cannot listen there ({e}); give a free HOST:PORT, e.g. 127.0.0.1:9464")
    })?;
    let registry = m.registry();
    Ok(std::thread::spawn(move || {
        while stop.load(Ordering::SeqCst) == 0 {
            let Ok(Some(req)) = server.recv_timeout(Duration::from_millis(100)) else { continue };
            let response = if req.url() == "/metrics" {
                let mut body = String::new();
                let _ = prometheus_client::encoding::text::encode(&mut body, &registry);
                let ct = tiny_http::Header::from_bytes(
                    &b"Content-Type"[..],
                    &b"application/openmetrics-text; version=1.0.0; charset=utf-8"[..],
                )
                .expect("a valid header");
                tiny_http::Response::from_string(body).with_header(ct)
            } else {
                tiny_http::Response::from_string("framebus: the metrics are at /metrics\n").with_status_code(404)
            };
            let _ = req.respond(response);
        }
    }))
}

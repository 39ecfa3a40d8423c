//! The collector role: puts the workers' results back in frame order with a bounded reorder
//! window, checks order and integrity for every frame, and measures latency and drops.
//!
//! It knows exactly which sequence numbers to expect: the producer sends an event for every
//! frame it published or dropped, so a producer drop is marked in the window at once (no
//! waiting), and only a frame lost after publishing (a dead worker) waits out the deadline.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use framebus_platform::core::reorder::{Rejected, Released, ReorderWindow, SkipReason};
use framebus_platform::core::{Consumer, ConsumerKind};
use framebus_platform::wait::WaitError;
use framebus_platform::{is_alive, now_ns, wait, SharedSegment};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::wire::{DropCause, Event, Outcome, RECORD_BYTES};
use super::{peak_rss_bytes, Res};

/// Results the reorder window can hold while an earlier one is missing.
pub const WINDOW: usize = 1024;

/// What the collector is asked to do.
#[derive(Clone, Debug)]
pub struct CollectorArgs {
    /// events segment (from the producer)
    pub events: String,
    /// results segments, one per worker
    pub results: Vec<String>,
    /// how long a later result waits for a missing one before it is given up, ms
    pub deadline_ms: u64,
}

/// Percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct LatencyMs {
    /// median
    pub p50: f64,
    /// 90th percentile
    pub p90: f64,
    /// 99th percentile
    pub p99: f64,
    /// largest
    pub max: f64,
}

/// Percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct TransportUs {
    /// median
    pub p50: f64,
    /// 99th percentile
    pub p99: f64,
}

/// One point of the timeline (for the plot): when a frame left the window, and its latency.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Point {
    /// seconds since the first frame was due
    pub t_s: f64,
    /// capture → ordered result, ms (None for a skipped frame)
    pub latency_ms: Option<f64>,
    /// frames dropped or lost so far
    pub dropped: u64,
}

/// What the collector reports at exit.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CollectorReport {
    /// sequence numbers issued by the producer
    pub frames_in: u64,
    /// frames published
    pub published: u64,
    /// results released in order
    pub frames_out: u64,
    /// frames that produced no result, by cause (`drop_oldest`, `drop_newest`, `lost_deadline`,
    /// `window_overflow`)
    pub dropped: BTreeMap<String, u64>,
    /// results that arrived after their frame was given up
    pub late_results: u64,
    /// released results not strictly after the previous one (must be 0)
    pub order_violations: u64,
    /// results whose in-place checksum differs from the producer's (must be 0)
    pub integrity_failures: u64,
    /// results for frames the producer never announced, or twice (must be 0)
    pub unexpected_results: u64,
    /// capture → ordered result
    pub latency_ms: LatencyMs,
    /// publish → claimed, when a worker was already waiting (the transport's own cost)
    pub transport_us: TransportUs,
    /// publish → a worker started on it (time queued in the segment)
    pub queue_ms: LatencyMs,
    /// the model call alone, per frame
    pub model_ms: LatencyMs,
    /// a worker's whole time on a frame (claim → result sent: the call and its overhead)
    pub service_ms: LatencyMs,
    /// seconds from the first frame due to the last frame out
    pub span_s: f64,
    /// results per worker
    pub per_worker: Vec<u64>,
    /// the timeline (at most a few thousand points)
    pub timeline: Vec<Point>,
    /// peak resident memory of this process
    pub peak_rss_bytes: u64,
}

struct Pending {
    capture_ns: u64,
    publish_ns: u64,
    checksum: u64,
}

fn percentiles_ms(h: &Histogram<u64>) -> LatencyMs {
    let q = |v: u64| v as f64 / 1e3; // recorded in µs
    if h.is_empty() {
        return LatencyMs::default();
    }
    LatencyMs {
        p50: q(h.value_at_quantile(0.5)),
        p90: q(h.value_at_quantile(0.9)),
        p99: q(h.value_at_quantile(0.99)),
        max: q(h.max()),
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Claims one record from `c` without waiting; `None` when there is none.
fn take(c: &mut Consumer<'_>) -> Res<Option<[u8; RECORD_BYTES as usize]>> {
    match wait::claim_spinning(c, Duration::ZERO, 0) {
        Ok(f) => {
            let mut b = [0u8; RECORD_BYTES as usize];
            c.read(&f, 0, &mut b)?;
            wait::release(c, f)?;
            Ok(Some(b))
        }
        Err(WaitError::TimedOut) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Runs the collector until every sequence number the producer issued is accounted for.
///
/// # Errors
/// Segment failures; a producer or all workers gone for good before the end.
pub fn run(a: &CollectorArgs) -> Res<CollectorReport> {
    let events_seg = SharedSegment::open(&a.events)?;
    let result_segs = a.results.iter().map(|n| SharedSegment::open(n)).collect::<Result<Vec<_>, _>>()?;
    let mut events = events_seg.register(ConsumerKind::Worker)?;
    let mut results = result_segs.iter().map(|s| s.register(ConsumerKind::Worker)).collect::<Result<Vec<_>, _>>()?;
    let mut window: ReorderWindow<Outcome, WINDOW> = ReorderWindow::new(0, a.deadline_ms * 1_000_000);
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut early: HashMap<u64, Outcome> = HashMap::new();
    let mut r = CollectorReport { per_worker: vec![0; results.len()], ..CollectorReport::default() };
    let (mut lat, mut transport, mut queue) = (histogram(), histogram(), histogram());
    let (mut model, mut service) = (histogram(), histogram());
    let mut end: Option<u64> = None;
    let mut last_out: Option<u64> = None;
    let mut first_capture: Option<u64> = None;
    let mut dropped_total = 0u64;
    let mut idle_since = Instant::now();
    let count = |r: &mut CollectorReport, key: &str| *r.dropped.entry(key.to_string()).or_default() += 1;
    println!("ready");
    loop {
        let mut progressed = false;
        let now = now_ns();
        let mut out: Vec<Released<Outcome>> = Vec::new();
        let mut arrived: Vec<Outcome> = Vec::new();
        while let Some(b) = take(&mut events)? {
            progressed = true;
            match Event::decode(&b) {
                Some(Event::Published { seq, capture_ns, publish_ns, checksum, .. }) => {
                    first_capture.get_or_insert(capture_ns);
                    r.published += 1;
                    pending.insert(seq, Pending { capture_ns, publish_ns, checksum });
                    // A fast worker's result can overtake the producer's event about the frame.
                    arrived.extend(early.remove(&seq));
                }
                Some(Event::Dropped { seq, cause, .. }) => {
                    count(&mut r, if cause == DropCause::Oldest { "drop_oldest" } else { "drop_newest" });
                    pending.remove(&seq);
                    window.skip(seq, now, |x| out.push(x));
                }
                Some(Event::End { next_seq }) => end = Some(next_seq),
                None => return Err("garbled event record from the producer".into()),
            }
        }
        for (k, c) in results.iter_mut().enumerate() {
            while let Some(b) = take(c)? {
                progressed = true;
                let o = Outcome::decode(&b).ok_or("garbled result record from a worker")?;
                r.per_worker[k] += 1;
                if pending.contains_key(&o.seq) {
                    arrived.push(o);
                } else if early.insert(o.seq, o).is_some() {
                    r.unexpected_results += 1;
                }
            }
        }
        for o in arrived {
            let p = &pending[&o.seq];
            if o.seen_checksum != p.checksum || o.sent_checksum != p.checksum {
                r.integrity_failures += 1;
            }
            // Transport: from the later of publish and "worker ready" to claimed.
            transport.saturating_record(o.claim_ns.saturating_sub(p.publish_ns.max(o.claim_start_ns)) / 1_000);
            queue.saturating_record(o.claim_start_ns.max(p.publish_ns).saturating_sub(p.publish_ns) / 1_000);
            model.saturating_record(o.call_ns / 1_000);
            service.saturating_record(o.done_ns.saturating_sub(o.claim_ns) / 1_000);
            match window.insert(o.seq, o, now, |x| out.push(x)) {
                Ok(()) => {}
                Err(Rejected::Late(..)) => r.late_results += 1,
                Err(Rejected::Duplicate(..)) => r.unexpected_results += 1,
            }
        }
        window.poll(now, |x| out.push(x));
        for x in out {
            let seq = match &x {
                Released::Frame(s, _) | Released::Skipped(s, _) => *s,
            };
            if last_out.is_some_and(|l| seq <= l) {
                r.order_violations += 1;
            }
            last_out = Some(seq);
            let t_s = first_capture.map_or(0.0, |f| now.saturating_sub(f) as f64 / 1e9);
            let latency_ms = match x {
                Released::Frame(seq, _) => {
                    r.frames_out += 1;
                    let p = pending.remove(&seq).expect("a released result had a pending entry");
                    let l = now.saturating_sub(p.capture_ns);
                    lat.saturating_record(l / 1_000);
                    Some(l as f64 / 1e6)
                }
                Released::Skipped(seq, reason) => {
                    dropped_total += 1;
                    if reason != SkipReason::Marked {
                        // Published but no result in time: a worker died or stalled.
                        count(&mut r, if reason == SkipReason::Overflow { "window_overflow" } else { "lost_deadline" });
                        pending.remove(&seq);
                    }
                    None
                }
            };
            r.timeline.push(Point { t_s, latency_ms, dropped: dropped_total });
        }
        if let Some(e) = end {
            if window.next_seq() >= e {
                r.frames_in = e;
                r.unexpected_results += early.len() as u64;
                break;
            }
        }
        if progressed {
            idle_since = Instant::now();
        } else {
            // Nothing arrived: the producer and every worker gone means nothing more will.
            let gone = |s: &SharedSegment| {
                let t = s.segment().producer_token();
                t == 0 || !is_alive(t)
            };
            if gone(&events_seg) && result_segs.iter().all(gone) && idle_since.elapsed() > Duration::from_secs(1) {
                // Give up on what is missing, so the report still accounts for every frame.
                let mut out = Vec::new();
                while window.waiting() > 0 || end.is_some_and(|e| window.next_seq() < e) {
                    window.force_head(|x| out.push(x));
                }
                for x in out {
                    if let Released::Skipped(seq, _) = x {
                        count(&mut r, "lost_deadline");
                        pending.remove(&seq);
                    } else if let Released::Frame(seq, _) = x {
                        r.frames_out += 1;
                        pending.remove(&seq);
                    }
                }
                r.frames_in = end.unwrap_or(window.next_seq());
                if end.is_none() {
                    return Err("the producer and every worker exited before the producer's end event".into());
                }
                break;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    r.latency_ms = percentiles_ms(&lat);
    r.queue_ms = percentiles_ms(&queue);
    r.model_ms = percentiles_ms(&model);
    r.service_ms = percentiles_ms(&service);
    let t = percentiles_ms(&transport);
    r.transport_us = TransportUs { p50: t.p50 * 1e3, p99: t.p99 * 1e3 };
    r.span_s = first_capture.map_or(0.0, |f| now_ns().saturating_sub(f) as f64 / 1e9);
    if r.timeline.len() > 4000 {
        let step = r.timeline.len().div_ceil(4000);
        r.timeline = r.timeline.iter().step_by(step).copied().collect();
    }
    r.peak_rss_bytes = peak_rss_bytes();
    Ok(r)
}

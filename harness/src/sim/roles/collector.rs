//! The collector role: puts the workers' results back in frame order with a bounded reorder
//! window, checks order and integrity for every frame, and measures latency and drops.
//!
//! It knows exactly which sequence numbers to expect: the producer sends an event for every
//! frame it published or dropped, so a producer drop is marked in the window at once (no
//! waiting), and only a frame lost after publishing (a dead worker) waits out the deadline.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use framebus_platform::core::reorder::{Rejected, Released, ReorderWindow, SkipReason};
use framebus_platform::now_ns;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::sim::channel::{Channel, RecordRx, RecordTx, Tag};
use crate::sim::wire::{DropCause, Event, Outcome, OUT_SKIPPED, RECORD_BYTES};
use crate::sim::{peak_rss_bytes, Res};

/// Results the reorder window can hold while an earlier one is missing.
pub const WINDOW: usize = 1024;

/// Role: restore frame order, check and measure (started by `simulate`).
#[derive(Clone, Debug, PartialEq, clap::Args, Serialize)]
pub struct Args {
    /// Events channel from the producer.
    #[arg(long)]
    pub events: String,
    /// Results channels, comma-separated, one per worker.
    #[arg(long, value_delimiter = ',')]
    pub results: Vec<String>,
    /// How long a later result waits for a missing one before it is given up, ms.
    #[arg(long, default_value_t = 5000)]
    pub deadline_ms: u64,
    /// Publish the ordered results into this (existing, broadcast) channel.
    #[arg(long)]
    pub out: Option<String>,
    /// Write the report (JSON) here instead of stdout.
    #[arg(long)]
    pub report: Option<PathBuf>,
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
    /// a worker reported a frame not after its previous one (work-queue claims follow publish
    /// order; must be 0)
    pub worker_order_violations: u64,
    /// capture → ordered result
    pub latency_ms: LatencyMs,
    /// publish → claimed, when a worker was already waiting (the transport's own cost)
    pub transport_us: TransportUs,
    /// frames that had a worker waiting (the samples behind `transport_us`)
    pub transport_samples: u64,
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

/// Sequence numbers remembered as released with a result, to tell a late result (its frame was
/// given up) from a duplicate (its frame already has one). A fixed ring: duplicates further
/// back than this are reported as late.
const RELEASED_RING: usize = 4096;

/// Everything the collector tracks; every release goes through [`State::emit`].
struct State {
    window: ReorderWindow<Outcome, WINDOW>,
    deadline_ns: u64,
    /// Published frames not yet released or given up.
    pending: HashMap<u64, Pending>,
    /// Results that overtook their frame's Published event.
    early: HashMap<u64, Outcome>,
    /// Producer drops too far ahead for the window; applied as it advances.
    deferred_skips: BTreeSet<u64>,
    released: Box<[u64; RELEASED_RING]>,
    last_out: Option<u64>,
    /// Last sequence number each worker reported (work-queue claims are in publish order).
    last_by_worker: Vec<Option<u64>>,
    first_capture: Option<u64>,
    dropped_total: u64,
    end: Option<u64>,
    r: CollectorReport,
    lat: Histogram<u64>,
    transport: Histogram<u64>,
    queue: Histogram<u64>,
    model: Histogram<u64>,
    service: Histogram<u64>,
    /// Released frames in order, for the ordered output (`--out`): (outcome, capture time,
    /// skipped); `None` when nobody publishes them.
    outbox: Option<Vec<(Outcome, u64, bool)>>,
}

impl State {
    fn count(&mut self, key: &str) {
        *self.r.dropped.entry(key.to_string()).or_default() += 1;
    }

    fn on_event(&mut self, e: Event, now: u64) {
        match e {
            Event::Published { seq, capture_ns, publish_ns, checksum, .. } => {
                self.first_capture.get_or_insert(capture_ns);
                self.r.published += 1;
                self.pending.insert(seq, Pending { capture_ns, publish_ns, checksum });
                // A fast worker's result can overtake the producer's event about the frame.
                if let Some(o) = self.early.remove(&seq) {
                    self.on_outcome(o, now);
                }
            }
            Event::Dropped { seq, cause, .. } => {
                if seq < self.window.next_seq() {
                    // Already given up on by the deadline (and counted there): count once.
                    self.pending.remove(&seq);
                    return;
                }
                self.count(if cause == DropCause::Oldest { "drop_oldest" } else { "drop_newest" });
                self.pending.remove(&seq);
                if seq >= self.window.next_seq() + WINDOW as u64 {
                    // Skipping it now would force frames still being worked on out of the window.
                    self.deferred_skips.insert(seq);
                } else {
                    let mut out = Vec::new();
                    self.window.skip(seq, now, |x| out.push(x));
                    self.emit_all(out, now);
                }
            }
            Event::End { next_seq } => self.end = Some(next_seq),
        }
    }

    fn on_result(&mut self, o: Outcome, now: u64) {
        let k = o.worker as usize;
        if let Some(slot) = self.r.per_worker.get_mut(k) {
            *slot += 1;
            if self.last_by_worker[k].is_some_and(|l| o.seq <= l) {
                self.r.worker_order_violations += 1;
            }
            self.last_by_worker[k] = Some(o.seq);
        } else {
            self.r.unexpected_results += 1;
            return;
        }
        if self.pending.contains_key(&o.seq) {
            self.on_outcome(o, now);
        } else if o.seq < self.window.next_seq() {
            self.reject(o.seq);
        } else if self.early.insert(o.seq, o).is_some() {
            self.r.unexpected_results += 1;
        }
    }

    /// A result for a frame already out of the window: late if the frame was given up,
    /// a duplicate if it was released with a result.
    fn reject(&mut self, seq: u64) {
        if self.released[(seq % RELEASED_RING as u64) as usize] == seq.wrapping_add(1) {
            self.r.unexpected_results += 1;
        } else {
            self.r.late_results += 1;
        }
    }

    fn on_outcome(&mut self, o: Outcome, now: u64) {
        let p = &self.pending[&o.seq];
        if o.seen_checksum != p.checksum || o.sent_checksum != p.checksum {
            self.r.integrity_failures += 1;
        }
        if o.claim_start_ns <= p.publish_ns {
            // The worker was already waiting: publish → claimed is the transport's own cost.
            self.transport.saturating_record(o.claim_ns.saturating_sub(p.publish_ns) / 1_000);
            self.r.transport_samples += 1;
        }
        self.queue.saturating_record(o.claim_start_ns.max(p.publish_ns).saturating_sub(p.publish_ns) / 1_000);
        self.model.saturating_record(o.call_ns / 1_000);
        self.service.saturating_record(o.done_ns.saturating_sub(o.claim_ns) / 1_000);
        let seq = o.seq;
        let mut out = Vec::new();
        match self.window.insert(seq, o, now, |x| out.push(x)) {
            Ok(()) => {}
            Err(Rejected::Late(..)) => self.reject(seq),
            Err(Rejected::Duplicate(..)) => self.r.unexpected_results += 1,
        }
        self.emit_all(out, now);
    }

    fn emit_all(&mut self, out: Vec<Released<Outcome>>, now: u64) {
        for x in out {
            self.emit(x, now);
        }
        // The window moved: producer drops that were too far ahead may fit now.
        while let Some(&seq) = self.deferred_skips.first() {
            if seq >= self.window.next_seq() + WINDOW as u64 {
                break;
            }
            self.deferred_skips.remove(&seq);
            let mut more = Vec::new();
            self.window.skip(seq, now, |x| more.push(x));
            for x in more {
                self.emit(x, now);
            }
        }
    }

    /// The one place a sequence number leaves the window.
    fn emit(&mut self, x: Released<Outcome>, now: u64) {
        let seq = match &x {
            Released::Frame(s, _) | Released::Skipped(s, _) => *s,
        };
        if self.last_out.is_some_and(|l| seq <= l) {
            self.r.order_violations += 1;
        }
        self.last_out = Some(seq);
        let t_s = self.first_capture.map_or(0.0, |f| now.saturating_sub(f) as f64 / 1e9);
        let latency_ms = match x {
            Released::Frame(seq, o) => {
                self.r.frames_out += 1;
                self.released[(seq % RELEASED_RING as u64) as usize] = seq.wrapping_add(1);
                let p = self.pending.remove(&seq).expect("a result enters the window only with its Published event");
                if let Some(outbox) = &mut self.outbox {
                    outbox.push((o, p.capture_ns, false));
                }
                let l = now.saturating_sub(p.capture_ns);
                self.lat.saturating_record(l / 1_000);
                Some(l as f64 / 1e6)
            }
            Released::Skipped(seq, reason) => {
                self.dropped_total += 1;
                if let Some(outbox) = &mut self.outbox {
                    outbox.push((Outcome { seq, ..Outcome::default() }, 0, true));
                }
                if reason != SkipReason::Marked {
                    // Published but no result in time: a worker died or stalled.
                    self.count(if reason == SkipReason::Overflow { "window_overflow" } else { "lost_deadline" });
                    self.pending.remove(&seq);
                }
                None
            }
        };
        self.r.timeline.push(Point { t_s, latency_ms, dropped: self.dropped_total });
    }

    /// Gives up on the head when it is missing for longer than the deadline after its publish,
    /// even with no later result waiting (the last frames of a run, or a stuck worker).
    fn expire_head(&mut self, now: u64) {
        loop {
            let head = self.window.next_seq();
            if self.end.is_none_or(|e| head >= e) {
                return;
            }
            let expired = match self.pending.get(&head) {
                Some(p) => now.saturating_sub(p.publish_ns) > self.deadline_ns,
                None => false,
            };
            if !expired {
                return;
            }
            let mut out = Vec::new();
            self.window.force_head(|x| out.push(x));
            self.emit_all(out, now);
        }
    }

    fn done(&self) -> bool {
        self.end.is_some_and(|e| self.window.next_seq() >= e)
    }
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

/// Publishes the frames released in order into the output channel (broadcast, drop-oldest:
/// a slow viewer loses records, never stalls the pipeline).
fn publish_out(tx: &mut RecordTx<'_>, outbox: &mut Vec<(Outcome, u64, bool)>) -> Res<()> {
    for (o, capture_ns, skipped) in outbox.drain(..) {
        let mut b = [0u8; RECORD_BYTES as usize];
        o.encode(&mut b);
        let flags = if skipped { OUT_SKIPPED } else { 0 };
        // Under DropOldest a record held by every viewer is dropped (counted in the segment).
        tx.send(&b, Tag { capture_ns, flags }, Duration::ZERO).map_err(|e| format!("ordered output: {e}"))?;
    }
    Ok(())
}

/// Runs the collector until every sequence number the producer issued is accounted for.
///
/// # Errors
/// Segment failures; a producer or all workers gone for good before the end.
pub fn run(a: &Args) -> Res<CollectorReport> {
    let events_ch = Channel::open(&a.events)?;
    let result_chs = a.results.iter().map(|n| Channel::open(n)).collect::<Res<Vec<_>>>()?;
    let mut events = events_ch.receiver()?;
    let mut results = result_chs.iter().map(Channel::receiver).collect::<Res<Vec<RecordRx<'_>>>>()?;
    let deadline_ns = a.deadline_ms.saturating_mul(1_000_000);
    let mut st = State {
        window: ReorderWindow::new(0, deadline_ns),
        deadline_ns,
        pending: HashMap::new(),
        early: HashMap::new(),
        deferred_skips: BTreeSet::new(),
        released: Box::new([0; RELEASED_RING]),
        last_out: None,
        last_by_worker: vec![None; results.len()],
        first_capture: None,
        dropped_total: 0,
        end: None,
        r: CollectorReport { per_worker: vec![0; results.len()], ..CollectorReport::default() },
        lat: histogram(),
        transport: histogram(),
        queue: histogram(),
        model: histogram(),
        service: histogram(),
        outbox: a.out.as_ref().map(|_| Vec::new()),
    };
    let out_ch = a.out.as_deref().map(Channel::open).transpose()?;
    let mut out_producer = out_ch.as_ref().map(Channel::sender).transpose()?;
    let mut idle_since = Instant::now();
    let mut last_look = false;
    super::ready();
    loop {
        let mut progressed = false;
        let now = now_ns();
        // Bounded per round, so a flood on one channel cannot starve the others.
        for _ in 0..256 {
            let Some(b) = events.take()? else { break };
            progressed = true;
            let e = Event::decode(&b).ok_or("garbled event record from the producer")?;
            st.on_event(e, now);
        }
        for c in &mut results {
            for _ in 0..256 {
                let Some(b) = c.take()? else { break };
                progressed = true;
                let o = Outcome::decode(&b).ok_or("garbled result record from a worker")?;
                st.on_result(o, now);
            }
        }
        let mut out = Vec::new();
        st.window.poll(now, |x| out.push(x));
        st.emit_all(out, now);
        st.expire_head(now);
        if let (Some(p), Some(outbox)) = (&mut out_producer, &mut st.outbox) {
            publish_out(p, outbox)?;
        }
        if st.done() {
            break;
        }
        if progressed {
            idle_since = Instant::now();
            last_look = false;
            continue;
        }
        // Nothing arrived: the producer and every worker gone means nothing more will — after
        // one more look, for what they published just before leaving.
        if events_ch.sender_gone()
            && result_chs.iter().all(Channel::sender_gone)
            && idle_since.elapsed() > Duration::from_millis(200)
        {
            if !last_look {
                last_look = true;
                continue;
            }
            let Some(e) = st.end else {
                return Err("the producer and every worker exited before the producer's end event".into());
            };
            // Give up on what is missing, so the report still accounts for every frame.
            while st.window.next_seq() < e {
                let mut out = Vec::new();
                st.window.force_head(|x| out.push(x));
                st.emit_all(out, now_ns());
            }
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let mut r = st.r;
    r.frames_in = st.end.unwrap_or(0);
    r.unexpected_results += st.early.len() as u64;
    r.latency_ms = percentiles_ms(&st.lat);
    r.queue_ms = percentiles_ms(&st.queue);
    r.model_ms = percentiles_ms(&st.model);
    r.service_ms = percentiles_ms(&st.service);
    let t = percentiles_ms(&st.transport);
    r.transport_us = TransportUs { p50: t.p50 * 1e3, p99: t.p99 * 1e3 };
    r.span_s = st.first_capture.map_or(0.0, |f| now_ns().saturating_sub(f) as f64 / 1e9);
    if r.timeline.len() > 4000 {
        let step = r.timeline.len().div_ceil(4000);
        r.timeline = r.timeline.iter().step_by(step).copied().collect();
    }
    r.peak_rss_bytes = peak_rss_bytes();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orchestrators_command_line_parses_back_to_the_same_args() {
        let mut a = Args {
            events: "sim1.ev".into(),
            results: vec!["sim1.r0".into(), "sim1.r1".into(), "sim1.r2".into()],
            deadline_ms: 1234,
            out: Some("sim1.out".into()),
            report: Some("/tmp/collector.json".into()),
        };
        super::super::round_trip(&a);
        a = Args { results: vec!["one".into()], deadline_ms: 5000, out: None, report: None, ..a };
        super::super::round_trip(&a);
    }
}

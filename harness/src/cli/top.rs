//! `framebus top NAME`: a live view of a pipeline from its segment alone — any process may open
//! it, so `top` needs nothing from the runtime: frames in and out per second, drops by policy,
//! late results, frames reclaimed from dead workers, each worker's rate and how busy it is,
//! slots by state, the reader and the end of the stream.
//!
//! A worker's *busy* share is sampled: the fraction of looks (50 a second) at which its entry
//! held a frame. Latency and skip causes are the reader's (the runtime's `--metrics`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use framebus_platform::core::{ConsumerKind, EntryStatus, Vocabulary};
use framebus_platform::{is_alive, SharedSegment};

use crate::Res;

/// Options of `framebus top`.
#[derive(Clone, Debug, clap::Args)]
pub struct TopArgs {
    /// The segment (as `framebus ls` lists it).
    pub name: String,
    /// Seconds between two screens.
    #[arg(long, default_value_t = 1.0, value_name = "S")]
    pub interval: f64,
    /// Print one screen after one interval and exit (for scripts and logs).
    #[arg(long)]
    pub once: bool,
}

/// One worker entry's samples over an interval.
#[derive(Default)]
struct Worker {
    pid: u32,
    looks: u32,
    busy: u32,
    held: u16,
    delivered: u64,
    /// its count and the time at the first look of the interval, and the last look's time
    first: Option<(u64, Instant)>,
    last: Option<Instant>,
}

/// Counters read at one instant.
#[derive(Clone, Copy)]
struct Snap {
    t: Instant,
    next_seq: u64,
    published: u64,
    read_head: u64,
    dropped_oldest: u64,
    dropped_newest: u64,
}

fn snap(seg: &SharedSegment) -> Snap {
    let s = seg.segment();
    let st = s.stats();
    Snap {
        t: Instant::now(),
        next_seq: st.next_seq,
        published: st.write_pos,
        read_head: s.reader_position().1,
        dropped_oldest: st.dropped_oldest,
        dropped_newest: st.dropped_newest,
    }
}

/// Runs `framebus top`.
///
/// # Errors
/// The segment cannot be opened, or a bad interval.
pub fn run(a: &TopArgs) -> Res<()> {
    if !(a.interval.is_finite() && (0.05..=3600.0).contains(&a.interval)) {
        return Err(format!("--interval {}: use 0.05 to 3600 seconds", a.interval).into());
    }
    let shared = SharedSegment::open(&a.name)?;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut before = snap(&shared);
    loop {
        let mut workers: BTreeMap<(u32, u64), Worker> = BTreeMap::new();
        let until = Instant::now() + Duration::from_secs_f64(a.interval);
        while Instant::now() < until {
            look(&shared, &mut workers);
            std::thread::sleep(Duration::from_millis(20));
        }
        let now = snap(&shared);
        if tty && !a.once {
            print!("\x1b[2J\x1b[H");
        }
        print!("{}", screen(&a.name, &shared, &before, &now, &workers));
        before = now;
        if a.once {
            return Ok(());
        }
    }
}

/// One look at every worker entry.
fn look(shared: &SharedSegment, workers: &mut BTreeMap<(u32, u64), Worker>) {
    let s = shared.segment();
    for i in 0..s.layout().spec.max_consumers {
        let e = s.entry_state(i);
        if e.status != EntryStatus::Alive || e.kind != Some(ConsumerKind::Worker) {
            continue;
        }
        let w = workers.entry((i, e.gen)).or_default();
        w.pid = s.entry_owner(i).0 as u32;
        w.looks += 1;
        w.busy += u32::from(e.holds > 0);
        w.held = e.holds;
        w.delivered = s.entry_counters(i).0;
        w.first.get_or_insert((w.delivered, Instant::now()));
        w.last = Some(Instant::now());
    }
}

fn rate(a: u64, b: u64, dt: f64) -> f64 {
    b.saturating_sub(a) as f64 / dt.max(1e-9)
}

fn screen(name: &str, shared: &SharedSegment, a: &Snap, b: &Snap, workers: &BTreeMap<(u32, u64), Worker>) -> String {
    use std::fmt::Write as _;
    let s = shared.segment();
    let l = s.layout();
    let dt = b.t.duration_since(a.t).as_secs_f64();
    let mut o = String::new();
    let g = l.spec.geometry;
    let _ = writeln!(
        o,
        "framebus top {name}: {}x{} {}, {} slots, {}, {}{}",
        g.width,
        g.height,
        g.format.name(),
        l.spec.slot_count,
        l.spec.pattern.name(),
        l.spec.policy.name(),
        if s.has_results() { format!(", results ({} cells)", l.spec.result_cells) } else { String::new() }
    );
    let owner = s.producer_token();
    let _ = writeln!(
        o,
        "  producer   {}",
        if owner == 0 {
            "none attached".to_string()
        } else {
            format!("pid {} ({})", owner as u32, if is_alive(owner) { "alive" } else { "dead" })
        }
    );
    let _ = writeln!(
        o,
        "  frames     in {:.1}/s  published {:.1}/s  results out {:.1}/s   (totals: in {}, published {}, out {})",
        rate(a.next_seq, b.next_seq, dt),
        rate(a.published, b.published, dt),
        rate(a.read_head, b.read_head, dt),
        b.next_seq,
        b.published,
        b.read_head
    );
    let st = s.stats();
    let (late, overflow) = s.result_counts();
    let _ = writeln!(
        o,
        "  dropped    oldest {:.1}/s ({})  newest {:.1}/s ({})   late results {}  lost to a full window {}  reclaimed from dead consumers {}",
        rate(a.dropped_oldest, b.dropped_oldest, dt),
        b.dropped_oldest,
        rate(a.dropped_newest, b.dropped_newest, dt),
        b.dropped_newest,
        late,
        overflow,
        st.reclaimed
    );
    let c = s.census();
    let _ = writeln!(o, "  slots      free {}  writing {}  ready {}  taken {}", c.free, c.writing, c.ready, c.taken);
    let _ = writeln!(
        o,
        "  workers    {:>5} {:>8} {:>9} {:>6} {:>5} {:>9}",
        "entry", "pid", "frames/s", "busy", "held", "frames"
    );
    if workers.is_empty() {
        let _ = writeln!(o, "             (none registered)");
    }
    for ((entry, _), w) in workers {
        // Between its first and last look of the interval.
        let r = match (w.first, w.last) {
            (Some((n, t0)), Some(t1)) if t1 > t0 => rate(n, w.delivered, t1.duration_since(t0).as_secs_f64()),
            _ => 0.0,
        };
        let busy = f64::from(w.busy) / f64::from(w.looks.max(1)) * 100.0;
        let _ =
            writeln!(o, "             {entry:>5} {:>8} {r:>9.1} {busy:>5.0}% {:>5} {:>9}", w.pid, w.held, w.delivered);
    }
    if s.has_results() {
        let (reader, head) = s.reader_position();
        let _ = writeln!(
            o,
            "  reader     {}  next frame {head}  stream {}",
            if reader == 0 {
                "none attached".to_string()
            } else {
                format!("pid {} ({})", reader as u32, if is_alive(reader) { "alive" } else { "dead" })
            },
            s.end_seq().map_or("open".to_string(), |e| format!("ended at {e}"))
        );
    }
    o
}

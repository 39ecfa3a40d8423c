//! Crash at any instant: worker and producer processes killed with SIGKILL at random points of
//! claim / read / release / publish, many times over. After every kill the survivors go on,
//! every slot is accounted for once the dead process is reaped, no frame reaches two workers,
//! no sequence number is issued twice, and no consumer ever sees a torn frame.
//!
//! Seeded: the seed is printed; `FRAMEBUS_CRASH_SEED=N` replays a run, `FRAMEBUS_CRASH_TRIALS=N`
//! changes the number of kills (default 200 per test).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use framebus_core::segment::EntryStatus;
use framebus_core::ConsumerKind;
use framebus_platform::{is_alive, wait, CreateOptions, SharedSegment};

use crate::util::{pattern, produce, spec, unique, Peer};

/// xorshift64*: small, seedable, good enough to place kills.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

fn params(test: &str) -> (Rng, u64) {
    let seed = std::env::var("FRAMEBUS_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_f00d);
    let trials = std::env::var("FRAMEBUS_CRASH_TRIALS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    eprintln!("{test}: seed {seed} ({trials} kills); replay with FRAMEBUS_CRASH_SEED={seed}");
    (Rng(seed | 1), trials)
}

/// Busy-waits `us` microseconds: lands the kill somewhere inside the victim's loop.
fn spin(us: u64) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_micros(us) {
        std::hint::spin_loop();
    }
}

/// Polls `cond` until it holds or `what` is reported as stuck after 20 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(20), "stuck: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn workers_killed_at_any_instant_leak_no_slot_and_duplicate_no_frame() {
    let (mut rng, trials) = params("workers_killed_at_any_instant");
    let name = unique("crashw");
    let slots = 4;
    let shared = SharedSegment::create(&name, &spec(slots), CreateOptions::default()).unwrap();
    let seg = shared.segment();
    let mut p = shared.attach_producer().unwrap();
    let dir = std::env::temp_dir().join(format!("framebus-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = |who: &str| dir.join(who).to_string_lossy().into_owned();
    let mut logs = vec![log("survivor")];
    let mut survivor = Peer::spawn(&["churn", &name, &logs[0]]);
    assert_eq!(survivor.line(), "ready");
    for t in 0..trials {
        let victim_log = log(&format!("victim-{t}"));
        let mut victim = Peer::spawn(&["churn", &name, &victim_log]);
        assert_eq!(victim.line(), "ready");
        logs.push(victim_log.clone());
        // Feed frames until the victim has taken one: it is running and competing for frames.
        let since = Instant::now();
        while std::fs::metadata(&victim_log).map_or(0, |m| m.len()) == 0 {
            produce(&mut p, &seg, 1);
            assert!(since.elapsed() < Duration::from_secs(20), "trial {t}: the victim never got a frame");
            std::thread::yield_now();
        }
        // The kill comes from another thread while frames keep flowing, so it lands inside
        // the victim's claim, read or release as often as between them.
        let burst = 20 + rng.below(60);
        let delay = rng.below(400);
        let killer = std::thread::spawn(move || {
            spin(delay);
            victim.child.kill().unwrap(); // SIGKILL: mid-claim, mid-read, mid-release, anywhere
            let status = victim.child.wait().unwrap();
            // It must have died of the kill: a victim that found a torn frame, lost order or was
            // evicted exits with an error first, and that is a failure, not a crash.
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "trial {t}: the victim failed on its own: {status}");
        });
        // Under Block: a slot the dead worker still held would stall this, until the
        // producer's own wait for space reaps it (`wait::REAP_INTERVAL`). Nobody else reaps.
        produce(&mut p, &seg, burst);
        killer.join().unwrap();
        // Whether the producer needed to reap or not, one more pass leaves only the living.
        shared.reap();
        let entries: Vec<_> = (0..seg.layout().spec.max_consumers)
            .filter(|&i| seg.entry_state(i).status != EntryStatus::Free)
            .map(|i| (i, is_alive(seg.entry_owner(i).0)))
            .collect();
        assert_eq!(entries.len(), 1, "trial {t}: only the survivor's entry is left: {entries:?}");
        assert!(entries[0].1, "trial {t}: and it is alive");
        // The survivor drains what is left; then every slot is free again.
        eventually(&format!("trial {t}: the survivor drains the queue ({:?})", seg.census()), || {
            let (s, c) = (seg.stats(), seg.census());
            s.claim_cursor == s.write_pos && c.free == slots
        });
        // Published = delivered + dropped, except frames a victim took (slot CAS) but died before
        // counting: those come back through reclaim, which counts every hold it clears.
        let s = seg.stats();
        let accounted = s.delivered + s.dropped_oldest;
        assert!(
            accounted <= s.write_pos && s.write_pos - accounted <= s.reclaimed,
            "trial {t}: published = delivered + dropped (+ reclaimed from the dead) ({s:?})"
        );
    }
    drop(survivor);
    // No frame reached two workers. Frames a victim claimed but had not logged when it died
    // (at most one per kill) are the only ones missing from the logs.
    let mut seen = HashSet::new();
    let mut busy_victims = 0;
    for (k, l) in logs.iter().enumerate() {
        let bytes = std::fs::read(l).unwrap_or_default();
        busy_victims += usize::from(k > 0 && !bytes.is_empty());
        assert_eq!(bytes.len() % 8, 0, "{l}: a torn log record");
        for c in bytes.chunks_exact(8) {
            let seq = u64::from_le_bytes(c.try_into().unwrap());
            assert!(seen.insert(seq), "frame {seq} delivered twice");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let s = seg.stats();
    assert!(s.write_pos - s.delivered <= s.reclaimed, "every published frame was claimed by some worker ({s:?})");
    let missing = s.delivered - seen.len() as u64;
    assert!(missing <= trials, "{missing} claimed frames unaccounted for after {trials} kills");
    eprintln!("{busy_victims} of {trials} victims had processed frames; {missing} died holding one");
    assert_eq!(busy_victims as u64, trials, "every victim was killed while taking part");
}

#[test]
fn producers_killed_at_any_instant_never_tear_or_reissue_a_frame() {
    let (mut rng, trials) = params("producers_killed_at_any_instant");
    let name = unique("crashp");
    let slots = 4;
    let shared = SharedSegment::create(&name, &spec(slots), CreateOptions::default()).unwrap();
    let seg = shared.segment();
    let mut worker = shared.register(ConsumerKind::Worker).unwrap();
    let len = seg.layout().planes.frame_size as usize;
    let mut buf = vec![0u8; len];
    let mut last: Option<u64> = None;
    let mut take = |worker: &mut framebus_core::Consumer<'_>, what: &str| {
        let f = wait::claim(worker, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{what}: {e}"));
        worker.read(&f, 0, &mut buf).unwrap();
        if let Some(i) = buf.iter().enumerate().position(|(i, b)| *b != pattern(f.seq, i)) {
            panic!("{what}: torn frame {} at byte {i}", f.seq);
        }
        assert!(last.is_none_or(|l| f.seq > l), "{what}: seq {} after {last:?}: reissued or out of order", f.seq);
        last = Some(f.seq);
        wait::release(worker, f).unwrap();
    };
    for t in 0..trials {
        // Each new producer takes over from the one killed before it.
        let mut producer = Peer::spawn(&["spew", &name]);
        assert_eq!(producer.line(), "ready");
        for _ in 0..1 + rng.below(20) {
            take(&mut worker, &format!("trial {t}"));
        }
        spin(rng.below(300));
        producer.child.kill().unwrap(); // mid-begin, mid-write, mid-publish, or waiting for space
        producer.child.wait().unwrap();
    }
    // A last takeover, in this process: the census is exact now that nobody else runs.
    let mut p = shared.attach_producer().unwrap();
    let c = seg.census();
    assert_eq!(c.writing, 0, "the takeover recovered every slot a dead producer was writing: {c:?}");
    assert_eq!(c.free + c.ready + c.taken, slots, "{c:?}");
    let s = seg.stats();
    assert_eq!(s.next_seq, s.write_pos + s.dropped_newest, "every sequence number published or dropped: {s:?}");
    assert_eq!(s.epoch, trials + 1, "one epoch per producer");
    // The frames still queued, then a new one, arrive intact and in order.
    for _ in 0..c.ready {
        take(&mut worker, "queued before the last takeover");
    }
    produce(&mut p, &seg, 1);
    take(&mut worker, "after the last takeover");
}

#[test]
fn a_producer_waiting_for_space_reaps_a_dead_worker_by_itself() {
    let name = unique("selfreap");
    let shared = SharedSegment::create(&name, &spec(2), CreateOptions::default()).unwrap();
    let seg = shared.segment();
    let mut p = shared.attach_producer().unwrap();
    produce(&mut p, &seg, 2);
    let mut holder = Peer::spawn(&["hold", &name, "2"]);
    assert_eq!(holder.line(), "held 2");
    holder.child.kill().unwrap();
    holder.child.wait().unwrap();
    // Nobody calls reap: the producer, waiting for space under Block, finds the dead holder
    // itself (within `wait::REAP_INTERVAL`) and gets both slots back.
    produce(&mut p, &seg, 2);
    assert_eq!(seg.stats().reclaimed, 2);
    assert_eq!(seg.census().ready, 2);
}

#[test]
fn a_dead_worker_holding_some_slots_is_reaped_by_publishing_alone() {
    // DropNewest: the producer never waits for space, and a live worker keeps two slots moving,
    // so only the reaping inside `wait::publish` can bring the dead worker's two slots back.
    let name = unique("partial");
    let spec = spec(4).with_policy(framebus_core::OverflowPolicy::DropNewest);
    let shared = SharedSegment::create(&name, &spec, CreateOptions::default()).unwrap();
    let seg = shared.segment();
    let mut p = shared.attach_producer().unwrap();
    produce(&mut p, &seg, 2);
    let mut holder = Peer::spawn(&["hold", &name, "2"]);
    assert_eq!(holder.line(), "held 2");
    holder.child.kill().unwrap();
    holder.child.wait().unwrap();
    let mut worker = shared.register(ConsumerKind::Worker).unwrap();
    let since = Instant::now();
    while seg.stats().reclaimed < 2 {
        produce(&mut p, &seg, 1);
        if let Ok(f) = worker.claim() {
            worker.release(f).unwrap();
        }
        assert!(since.elapsed() < Duration::from_secs(20), "the dead worker's slots never came back");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A work queue and a broadcast (Block) segment with a small consumer table, the producer of the
/// broadcast one attached here: the stage of the consumer-table kill trials.
struct Tables {
    queue: SharedSegment,
    broadcast: SharedSegment,
}

const TABLE: u32 = 4;
/// Many slots: `unregister` sweeps every slot for holds, so its kill window is wide.
const SLOTS: u32 = 1024;

impl Tables {
    fn new(tag: &str) -> Tables {
        let make = |pattern| {
            let spec = spec(SLOTS).with_pattern(pattern).with_max_consumers(TABLE);
            SharedSegment::create(&unique(tag), &spec, CreateOptions::default()).unwrap()
        };
        Tables { queue: make(framebus_core::Pattern::WorkQueue), broadcast: make(framebus_core::Pattern::Broadcast) }
    }

    /// The segment and peer arguments for trial `t` (workers and subscribers take turns).
    fn pick(&self, t: u64) -> (&SharedSegment, &'static str) {
        if t % 2 == 0 {
            (&self.queue, "worker")
        } else {
            (&self.broadcast, "subscriber")
        }
    }

    /// After a kill and one reap: every entry of both tables is FREE (nobody else is
    /// registered), a broadcast producer under Block is not pinned by a dead subscriber (it
    /// publishes more frames than there are slots), and a full table still registers.
    fn check(&self, what: &str) {
        for s in [&self.queue, &self.broadcast] {
            s.reap();
            let seg = s.segment();
            for i in 0..TABLE {
                let e = seg.entry_state(i);
                let (owner, _) = seg.entry_owner(i);
                assert!(
                    e.status == EntryStatus::Free || is_alive(owner),
                    "{what}: entry {i} of {} stuck after reap: {e:?}, owner {owner:#x} (dead)",
                    s.name()
                );
            }
        }
        let seg = self.broadcast.segment();
        let mut p = self.broadcast.attach_producer().unwrap();
        for k in 0..=seg.layout().spec.slot_count {
            match p.begin() {
                Ok(slot) => {
                    slot.publish(framebus_core::FrameMeta::default());
                }
                Err(e) => panic!("{what}: broadcast producer pinned at frame {k} with no live subscriber: {e}"),
            }
        }
    }
}

/// Spawns `framebus-peer ARGS` and waits for it to die of SIGKILL.
fn killed(args: &[&str], what: &str) {
    use std::os::unix::process::ExitStatusExt;
    let mut peer = Peer::spawn(args);
    let status = peer.child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{what}: the peer failed on its own: {status}");
}

/// Findings 4 and 5 of the 2026-12 protocol review, at exact kill points: a worker or a
/// subscriber killed after any step of `register`, or of `unregister`, leaves nothing that one
/// reap cannot finish: every entry FREE, the broadcast producer free to publish, and after
/// four times the table size of kills a full table still registers. The step is drawn from the
/// seed, so a failing trial replays with `FRAMEBUS_CRASH_SEED`.
#[test]
fn consumers_killed_inside_register_or_unregister_leave_no_stuck_entry() {
    use framebus_core::segment::fault::{REGISTER_STEPS, UNREGISTER_STEPS};
    let (mut rng, trials) = params("killed_inside_register_or_unregister");
    let tables = Tables::new("killreg");
    for (op, steps) in [("register", REGISTER_STEPS), ("unregister", UNREGISTER_STEPS)] {
        for t in 0..trials {
            let (s, kind) = tables.pick(t);
            let step = 1 + rng.below(u64::from(steps));
            let what = format!("{op} trial {t}: {kind} killed after step {step}");
            killed(&["die-in", op, kind, s.name(), &step.to_string()], &what);
            tables.check(&what);
        }
    }
    for s in [&tables.queue, &tables.broadcast] {
        let kind = if s.segment().layout().spec.pattern == framebus_core::Pattern::WorkQueue {
            ConsumerKind::Worker
        } else {
            ConsumerKind::Subscriber
        };
        let all: Vec<_> = (0..TABLE).map(|_| s.register(kind).expect("the table has room for every entry")).collect();
        drop(all);
    }
}

/// The same at any instant: a process registering and unregistering in a loop is SIGKILLed
/// after a random 0-400 µs, wherever it is (in `register`, in `unregister`, between them).
#[test]
fn consumers_killed_at_any_instant_of_register_or_unregister_leave_no_stuck_entry() {
    let (mut rng, trials) = params("killed_at_any_instant_of_register_or_unregister");
    let tables = Tables::new("killany");
    for t in 0..trials {
        let (s, kind) = tables.pick(t);
        let mut victim = Peer::spawn(&["entries", kind, s.name()]);
        assert_eq!(victim.line(), "ready");
        spin(rng.below(400));
        victim.child.kill().unwrap();
        use std::os::unix::process::ExitStatusExt;
        let status = victim.child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "trial {t}: the victim failed on its own: {status}");
        tables.check(&format!("trial {t} ({kind})"));
    }
}

/// Finding 6: a consumer killed while asleep in `wait::claim` does not leave its waiter
/// announcement behind: once it is reaped, publishing makes no wake-up call (invariant 4: a
/// system call only when someone sleeps).
#[test]
fn a_consumer_killed_asleep_leaves_no_waiter_behind() {
    let name = unique("sleeper");
    let spec = spec(4).with_policy(framebus_core::OverflowPolicy::DropOldest);
    let shared = SharedSegment::create(&name, &spec, CreateOptions::default()).unwrap();
    let seg = shared.segment();
    let mut p = shared.attach_producer().unwrap();
    let mut sleeper = Peer::spawn(&["sleep", &name]);
    assert_eq!(sleeper.line(), "ready");
    let (_, waiters) = seg.frame_wake_words();
    eventually("the worker falls asleep", || waiters.load(framebus_core::sync::Ordering::Acquire) & 0xFFFF != 0);
    sleeper.child.kill().unwrap();
    sleeper.child.wait().unwrap();
    assert_eq!(shared.reap().len(), 1, "the dead sleeper is reaped");
    let mut wakes = 0;
    for _ in 0..100 {
        let slot = p.begin().unwrap();
        wakes += u32::from(slot.publish(framebus_core::FrameMeta::default()).wake);
    }
    assert_eq!(
        wakes,
        0,
        "after the sleeper's death and reap: waiters word {:#x}, {wakes} of 100 publishes asked for a wake-up",
        waiters.load(framebus_core::sync::Ordering::Acquire)
    );
}

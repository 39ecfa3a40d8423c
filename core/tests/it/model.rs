//! Proptest state machines: random sequences of publish / claim / release / consumer death /
//! registration / death inside `register` or `unregister` / reap run against the real segment
//! and against a plain sequential model (`BTreeMap` of live frames), checking after every step
//! that both agree on every outcome, that every slot is accounted for, that order holds, that
//! published = delivered + dropped, and that every table entry is free, live, or left by a
//! process that died inside the table protocol (and is freed by the next reap).
use std::collections::{BTreeMap, BTreeSet};

use crate::util::{cases, check, publish, segment, spec};
use framebus_core::segment::fault::{REGISTER_STEPS, UNREGISTER_STEPS};
use framebus_core::segment::{ClaimError, EntryStatus, Reclaim};
use framebus_core::*;
use proptest::prelude::*;

const LEN: usize = 16;

#[derive(Clone, Debug)]
enum Op {
    Publish,
    Claim(usize),
    Release(usize, usize),
    Kill(usize),
    Register,
    /// A new process dies after step N of `register`.
    KillInRegister(u32),
    /// Consumer c releases what it holds, then dies after step N of `unregister`.
    KillInUnregister(usize, u32),
    /// Reap with the real liveness of the test's processes.
    Reap,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => Just(Op::Publish),
        4 => (0..4usize).prop_map(Op::Claim),
        3 => (0..4usize, 0..4usize).prop_map(|(c, i)| Op::Release(c, i)),
        1 => (0..4usize).prop_map(Op::Kill),
        1 => Just(Op::Register),
        1 => (1..=REGISTER_STEPS).prop_map(Op::KillInRegister),
        1 => (0..4usize, 1..=UNREGISTER_STEPS).prop_map(|(c, k)| Op::KillInUnregister(c, k)),
        1 => Just(Op::Reap),
    ];
    proptest::collection::vec(op, 1..80)
}

#[derive(Debug, Default)]
struct LiveFrame {
    seq: u64,
    taken: bool,
    holders: BTreeSet<usize>,
}

/// The sequential model: the rules of DESIGN.md written as plainly as possible.
#[derive(Debug)]
struct Model {
    pattern: Pattern,
    policy: OverflowPolicy,
    slots: usize,
    ring: u64,
    free: usize,
    live: BTreeMap<u64, LiveFrame>, // by publish position
    write_pos: u64,
    next_seq: u64,
    dropped_oldest: u64,
    dropped_newest: u64,
    delivered: u64,
    /// Consumer slot in the test -> (table index, cursor, last seq claimed).
    consumers: Vec<Option<(usize, u64, Option<u64>)>>,
    /// Entries left by processes killed inside `register` / `unregister`, until a reap: the
    /// cursor of each one that already counts as a subscriber (killed after step 4).
    zombies: Vec<Option<u64>>,
}

impl Model {
    fn min_cursor(&self) -> u64 {
        match self.pattern {
            Pattern::WorkQueue => 0,
            Pattern::Broadcast => {
                let live = self.consumers.iter().flatten().map(|c| c.1);
                live.chain(self.zombies.iter().flatten().copied()).min().unwrap_or(u64::MAX)
            }
        }
    }

    /// Returns Ok(seq) or the error the real producer must give.
    fn publish(&mut self) -> Result<u64, BeginError> {
        if self.free == 0 {
            let min = self.min_cursor();
            let victim = self
                .live
                .iter()
                .find(|(pos, f)| {
                    !f.taken && f.holders.is_empty() && (**pos < min || self.policy == OverflowPolicy::DropOldest)
                })
                .map(|(pos, _)| *pos);
            match victim {
                Some(pos) => {
                    if pos >= min {
                        self.dropped_oldest += 1;
                    }
                    self.live.remove(&pos);
                }
                None if self.policy == OverflowPolicy::Block => return Err(BeginError::Full),
                None => {
                    self.dropped_newest += 1;
                    self.next_seq += 1;
                    return Err(BeginError::DroppedNewest { seq: self.next_seq - 1 });
                }
            }
        } else {
            self.free -= 1;
        }
        let seq = self.next_seq;
        self.live.insert(self.write_pos, LiveFrame { seq, ..LiveFrame::default() });
        self.write_pos += 1;
        self.next_seq += 1;
        Ok(seq)
    }

    fn claim(&mut self, c: usize) -> Option<u64> {
        let (idx, cursor, _) = self.consumers[c]?;
        match self.pattern {
            Pattern::WorkQueue => {
                let (_, f) = self.live.iter_mut().find(|(_, f)| !f.taken)?;
                f.taken = true;
                f.holders.insert(idx);
                self.delivered += 1;
                Some(f.seq)
            }
            Pattern::Broadcast => {
                let mut k = cursor.max(self.write_pos.saturating_sub(self.ring));
                let mut got = None;
                while k < self.write_pos {
                    k += 1;
                    if let Some(f) = self.live.get_mut(&(k - 1)) {
                        f.holders.insert(idx);
                        got = Some(f.seq);
                        break;
                    }
                }
                self.consumers[c].as_mut().unwrap().1 = k;
                got
            }
        }
    }

    fn release(&mut self, idx: usize, pos: u64) {
        let f = self.live.get_mut(&pos).expect("model: released frame is live");
        assert!(f.holders.remove(&idx));
        if f.taken && f.holders.is_empty() {
            self.live.remove(&pos);
            self.free += 1;
        }
    }
}

fn run(pattern: Pattern, policy: OverflowPolicy, slots: u32, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let (_mem, seg) = segment(spec(slots, LEN as u32).with_pattern(pattern).with_policy(policy).with_max_consumers(4));
    let mut producer = seg.attach_producer(1).unwrap();
    let kind = if pattern == Pattern::WorkQueue { ConsumerKind::Worker } else { ConsumerKind::Subscriber };
    let mut model = Model {
        pattern,
        policy,
        slots: slots as usize,
        ring: u64::from(seg.layout().ring_capacity),
        free: slots as usize,
        live: BTreeMap::new(),
        write_pos: 0,
        next_seq: 0,
        dropped_oldest: 0,
        dropped_newest: 0,
        delivered: 0,
        consumers: vec![None; 4],
        zombies: Vec::new(),
    };
    let mut real: Vec<Option<Consumer<'static>>> = (0..4).map(|_| None).collect();
    let mut held: Vec<Vec<Frame>> = (0..4).map(|_| Vec::new()).collect();
    // Every registration is a new process (a token never reissued); `live` is the liveness
    // the platform would report.
    let mut tokens: Vec<u64> = vec![0; 4];
    let mut next_token = 100u64;
    let live = |tokens: &Vec<u64>, real: &Vec<Option<Consumer<'static>>>, t: u64| {
        (0..4).any(|c| real[c].is_some() && tokens[c] == t)
    };
    let register = |real: &mut Vec<Option<Consumer<'static>>>,
                    tokens: &mut Vec<u64>,
                    next_token: &mut u64,
                    model: &mut Model|
     -> Result<(), TestCaseError> {
        if let Some(c) = (0..4).find(|&c| real[c].is_none()) {
            *next_token += 1;
            let t = *next_token;
            let snapshot = tokens.clone();
            let alive = |x| (0..4).any(|k| real[k].is_some() && snapshot[k] == x);
            let r = seg.register_with(kind, t, alive);
            let used = model.consumers.iter().flatten().count() + model.zombies.len();
            match r {
                Ok(consumer) => {
                    prop_assert!(used < 4, "registered into a full table");
                    model.consumers[c] = Some((consumer.index() as usize, model.write_pos, None));
                    real[c] = Some(consumer);
                    tokens[c] = t;
                }
                Err(e) => {
                    prop_assert_eq!(used, 4, "refused with room in the table: {}", e);
                }
            }
        }
        Ok(())
    };
    register(&mut real, &mut tokens, &mut next_token, &mut model)?;
    register(&mut real, &mut tokens, &mut next_token, &mut model)?;

    for op in ops {
        match op {
            Op::Publish => prop_assert_eq!(publish(&mut producer, LEN), model.publish()),
            Op::Claim(c) => {
                let expect = model.claim(c);
                let Some(consumer) = real[c].as_mut() else { continue };
                match consumer.claim() {
                    Ok(frame) => {
                        prop_assert_eq!(Some(frame.seq), expect);
                        check(consumer, &frame, LEN);
                        // Order: strictly increasing per consumer.
                        let last = &mut model.consumers[c].as_mut().unwrap().2;
                        prop_assert!(last.is_none_or(|l| l < frame.seq), "order violated");
                        *last = Some(frame.seq);
                        held[c].push(frame);
                    }
                    Err(e) => {
                        prop_assert_eq!(e, ClaimError::Empty);
                        prop_assert_eq!(expect, None);
                    }
                }
            }
            Op::Release(c, i) => {
                if held[c].is_empty() {
                    continue;
                }
                let n = held[c].len();
                let frame = held[c].remove(i % n);
                let consumer = real[c].as_mut().unwrap();
                model.release(consumer.index() as usize, frame.pos);
                consumer.release(frame).unwrap();
            }
            Op::Kill(c) => {
                let Some(consumer) = real[c].take() else { continue };
                let idx = consumer.index() as usize;
                let n = seg
                    .reclaim(consumer.index(), consumer.generation(), Reclaim::Dead { owner: tokens[c] })
                    .unwrap()
                    .cleared;
                prop_assert_eq!(n as usize, held[c].len());
                for frame in held[c].drain(..) {
                    model.release(idx, frame.pos);
                }
                model.consumers[c] = None;
            }
            Op::Register => register(&mut real, &mut tokens, &mut next_token, &mut model)?,
            Op::KillInRegister(step) => {
                next_token += 1;
                let alive = |x| live(&tokens, &real, x);
                let used = model.consumers.iter().flatten().count() + model.zombies.len();
                match seg.register_dying(kind, next_token, alive, step) {
                    Ok(died) => {
                        prop_assert!(died, "register ran past its last step");
                        if step >= 2 {
                            prop_assert!(used < 4, "claimed an entry in a full table");
                            let counts = step >= 4 && kind == ConsumerKind::Subscriber;
                            model.zombies.push(counts.then_some(model.write_pos));
                        }
                    }
                    Err(_) => prop_assert_eq!(used, 4, "refused with room in the table"),
                }
            }
            Op::KillInUnregister(c, step) => {
                let Some(mut consumer) = real[c].take() else { continue };
                let idx = consumer.index() as usize;
                for frame in held[c].drain(..) {
                    model.release(idx, frame.pos);
                    consumer.release(frame).unwrap();
                }
                prop_assert_eq!(consumer.unregister_dying(step), Ok(true));
                model.consumers[c] = None;
                model.zombies.push(None);
            }
            Op::Reap => {
                let alive = |x| live(&tokens, &real, x);
                let freed = seg.reap(alive, |_, _| {});
                prop_assert_eq!(freed as usize, model.zombies.len(), "reap frees exactly the dead processes' entries");
                model.zombies.clear();
            }
        }
        // The table: every entry free, live (naming its consumer's process), or a zombie.
        let mut entries_used = 0;
        for i in 0..4 {
            let e = seg.entry_state(i);
            if e.status == EntryStatus::Free {
                continue;
            }
            entries_used += 1;
            let owner = seg.entry_owner(i).0;
            if let Some(c) = (0..4).find(|&c| real[c].as_ref().is_some_and(|r| r.index() == i)) {
                let r = real[c].as_ref().unwrap();
                prop_assert_eq!((e.status, e.gen, owner), (EntryStatus::Alive, r.generation(), tokens[c]));
            } else {
                prop_assert!(!live(&tokens, &real, owner), "entry {} names live process {} but no consumer", i, owner);
            }
        }
        prop_assert_eq!(entries_used, model.consumers.iter().flatten().count() + model.zombies.len());

        // After every step: the real segment agrees with the model.
        let census = seg.census();
        let stats = seg.stats();
        let taken = model.live.values().filter(|f| f.taken).count() as u32;
        let ready = model.live.len() as u32 - taken;
        prop_assert_eq!(census.free as usize, model.free);
        prop_assert_eq!((census.ready, census.taken, census.writing), (ready, taken, 0));
        prop_assert_eq!(census.free + census.ready + census.taken, model.slots as u32, "every slot in one place");
        for (c, consumer) in real.iter().enumerate() {
            if let Some(consumer) = consumer {
                prop_assert_eq!(census.held_by[consumer.index() as usize] as usize, held[c].len());
            }
        }
        prop_assert_eq!(
            (stats.write_pos, stats.next_seq, stats.dropped_oldest, stats.dropped_newest),
            (model.write_pos, model.next_seq, model.dropped_oldest, model.dropped_newest)
        );
        prop_assert_eq!(stats.next_seq, stats.write_pos + stats.dropped_newest);
        match pattern {
            Pattern::WorkQueue => {
                // published = delivered + dropped + still ready
                prop_assert_eq!(stats.delivered, model.delivered);
                prop_assert_eq!(stats.write_pos, stats.delivered + stats.dropped_oldest + u64::from(ready));
            }
            Pattern::Broadcast => {
                for consumer in real.iter().flatten() {
                    let (delivered, skipped, cursor, joined) = seg.entry_counters(consumer.index());
                    prop_assert_eq!(cursor - joined, delivered + skipped, "per-subscriber conservation");
                    prop_assert!(cursor <= stats.write_pos);
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn work_queue_matches_model(policy in 0usize..3, slots in 1u32..6, ops in ops()) {
        run(Pattern::WorkQueue, [OverflowPolicy::Block, OverflowPolicy::DropOldest, OverflowPolicy::DropNewest][policy], slots, ops)?;
    }

    #[test]
    fn broadcast_matches_model(policy in 0usize..3, slots in 1u32..6, ops in ops()) {
        run(Pattern::Broadcast, [OverflowPolicy::Block, OverflowPolicy::DropOldest, OverflowPolicy::DropNewest][policy], slots, ops)?;
    }
}

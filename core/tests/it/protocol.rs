//! Deterministic scenarios of the slot protocol, one behaviour each.
use crate::util::{check, publish, segment, spec};
use framebus_core::segment::{ClaimError, Reclaim, ReclaimError, SlotKind};
use framebus_core::*;

const LEN: usize = 32;

#[test]
fn work_queue_delivers_each_frame_once_in_order() {
    let (_mem, seg) = segment(spec(4, LEN as u32));
    let mut p = seg.attach_producer(1).unwrap();
    let mut w1 = seg.register(ConsumerKind::Worker, 2).unwrap();
    let mut w2 = seg.register(ConsumerKind::Worker, 3).unwrap();
    for _ in 0..3 {
        publish(&mut p, LEN).unwrap();
    }
    let a = w1.claim().unwrap();
    let b = w2.claim().unwrap();
    let c = w1.claim().unwrap();
    assert_eq!((a.seq, b.seq, c.seq), (0, 1, 2));
    assert_eq!(w2.claim(), Err(ClaimError::Empty));
    check(&w1, &a, LEN);
    assert_eq!(seg.census().taken, 3);
    w1.release(a).unwrap();
    w2.release(b).unwrap();
    w1.release(c).unwrap();
    assert_eq!(seg.census().free, 4);
    let s = seg.stats();
    assert_eq!((s.write_pos, s.delivered, s.dropped_oldest, s.dropped_newest), (3, 3, 0, 0));
}

#[test]
fn block_policy_reports_full_and_loses_nothing() {
    let (_mem, seg) = segment(spec(2, LEN as u32));
    let mut p = seg.attach_producer(1).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 2).unwrap();
    publish(&mut p, LEN).unwrap();
    publish(&mut p, LEN).unwrap();
    assert_eq!(publish(&mut p, LEN), Err(BeginError::Full));
    let f = w.claim().unwrap();
    assert_eq!(publish(&mut p, LEN), Err(BeginError::Full), "a claimed slot is not free");
    w.release(f).unwrap();
    assert_eq!(publish(&mut p, LEN), Ok(2));
    assert_eq!(seg.stats().dropped_newest + seg.stats().dropped_oldest, 0);
}

#[test]
fn drop_oldest_reuses_the_oldest_unclaimed_frame_and_counts_it() {
    let (_mem, seg) = segment(spec(3, LEN as u32).with_policy(OverflowPolicy::DropOldest));
    let mut p = seg.attach_producer(1).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 2).unwrap();
    for _ in 0..3 {
        publish(&mut p, LEN).unwrap();
    }
    let held = w.claim().unwrap(); // seq 0 is claimed: not droppable
    assert_eq!(publish(&mut p, LEN), Ok(3)); // drops seq 1
    assert_eq!(seg.stats().dropped_oldest, 1);
    let next = w.claim().unwrap();
    assert_eq!(next.seq, 2, "the gap (seq 1) is visible to the consumer");
    check(&w, &next, LEN);
    // Everything held or ready and nothing droppable: the new frame is dropped instead.
    let _held2 = w.claim().unwrap();
    let held3 = held;
    assert_eq!(publish(&mut p, LEN), Err(BeginError::DroppedNewest { seq: 4 }));
    assert_eq!(seg.stats().dropped_newest, 1);
    w.release(held3).unwrap();
}

#[test]
fn drop_newest_skips_the_incoming_frame_and_consumes_its_seq() {
    let (_mem, seg) = segment(spec(2, LEN as u32).with_policy(OverflowPolicy::DropNewest));
    let mut p = seg.attach_producer(1).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 2).unwrap();
    publish(&mut p, LEN).unwrap();
    publish(&mut p, LEN).unwrap();
    assert_eq!(publish(&mut p, LEN), Err(BeginError::DroppedNewest { seq: 2 }));
    let a = w.claim().unwrap();
    w.release(a).unwrap();
    assert_eq!(publish(&mut p, LEN), Ok(3));
    let s = seg.stats();
    assert_eq!((s.next_seq, s.write_pos, s.dropped_newest), (4, 3, 1));
}

#[test]
fn broadcast_gives_every_frame_to_every_subscriber() {
    let (_mem, seg) = segment(spec(3, LEN as u32).with_pattern(Pattern::Broadcast));
    let mut p = seg.attach_producer(1).unwrap();
    let mut s1 = seg.register(ConsumerKind::Subscriber, 2).unwrap();
    let mut s2 = seg.register(ConsumerKind::Subscriber, 3).unwrap();
    for round in 0..10u64 {
        publish(&mut p, LEN).unwrap();
        for s in [&mut s1, &mut s2] {
            let f = s.claim().unwrap();
            assert_eq!(f.seq, round);
            check(s, &f, LEN);
            s.release(f).unwrap();
        }
    }
    assert_eq!(s1.counts(), (10, 0));
    assert_eq!(s2.counts(), (10, 0));
}

#[test]
fn broadcast_block_waits_for_the_slowest_subscriber() {
    let (_mem, seg) = segment(spec(2, LEN as u32).with_pattern(Pattern::Broadcast));
    let mut p = seg.attach_producer(1).unwrap();
    let mut fast = seg.register(ConsumerKind::Subscriber, 2).unwrap();
    let mut slow = seg.register(ConsumerKind::Subscriber, 3).unwrap();
    publish(&mut p, LEN).unwrap();
    publish(&mut p, LEN).unwrap();
    for _ in 0..2 {
        let f = fast.claim().unwrap();
        fast.release(f).unwrap();
    }
    assert_eq!(publish(&mut p, LEN), Err(BeginError::Full), "slow has not read frame 0");
    assert!(!p.has_space());
    let f = slow.claim().unwrap();
    assert_eq!(publish(&mut p, LEN), Err(BeginError::Full), "slow still holds frame 0");
    slow.release(f).unwrap();
    assert!(p.has_space());
    assert_eq!(publish(&mut p, LEN), Ok(2));
    assert_eq!(seg.stats().dropped_oldest, 0);
}

#[test]
fn broadcast_drop_oldest_shows_gaps_to_the_slow_subscriber() {
    let (_mem, seg) =
        segment(spec(2, LEN as u32).with_pattern(Pattern::Broadcast).with_policy(OverflowPolicy::DropOldest));
    let mut p = seg.attach_producer(1).unwrap();
    let mut slow = seg.register(ConsumerKind::Subscriber, 3).unwrap();
    for _ in 0..5 {
        publish(&mut p, LEN).unwrap();
    }
    let f = slow.claim().unwrap();
    assert_eq!(f.seq, 3, "frames 0..3 were recycled before the subscriber read them");
    slow.release(f).unwrap();
    assert_eq!(slow.counts(), (1, 3));
    assert_eq!(seg.stats().dropped_oldest, 3);
    let (delivered, skipped, cursor, joined) = seg.entry_counters(slow.index());
    assert_eq!(cursor - joined, delivered + skipped, "per-subscriber conservation");
}

#[test]
fn latest_reader_gets_the_newest_frame_and_counts_what_it_skipped() {
    let (_mem, seg) = segment(spec(4, LEN as u32));
    let mut p = seg.attach_producer(1).unwrap();
    let mut tap = seg.register(ConsumerKind::Latest, 2).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 3).unwrap();
    assert_eq!(tap.claim(), Err(ClaimError::Empty));
    for _ in 0..3 {
        publish(&mut p, LEN).unwrap();
    }
    let newest = tap.claim().unwrap();
    assert_eq!(newest.seq, 2);
    check(&tap, &newest, LEN);
    assert_eq!(tap.claim(), Err(ClaimError::Empty), "nothing newer yet");
    // The worker still gets every frame, including the one the tap holds.
    let frames: Vec<_> = (0..3).map(|_| w.claim().unwrap()).collect();
    assert_eq!(frames.iter().map(|f| f.seq).collect::<Vec<_>>(), [0, 1, 2]);
    for f in frames {
        w.release(f).unwrap();
    }
    assert_eq!(seg.slot_state(newest.slot).kind, SlotKind::Taken, "tap still holds it");
    tap.release(newest).unwrap();
    assert_eq!(seg.census().free, 4);
    assert_eq!(tap.counts(), (1, 2));
}

#[test]
fn registration_checks_pattern_and_table_size() {
    let (_mem, seg) = segment(spec(2, LEN as u32).with_max_consumers(2));
    assert!(matches!(seg.register(ConsumerKind::Subscriber, 1), Err(segment::RegisterError::WrongPattern { .. })));
    let _a = seg.register(ConsumerKind::Worker, 1).unwrap();
    let _b = seg.register(ConsumerKind::Latest, 2).unwrap();
    assert_eq!(seg.register(ConsumerKind::Worker, 3).unwrap_err(), segment::RegisterError::TableFull { max: 2 });
}

#[test]
fn producer_is_unique_and_a_takeover_recovers_its_slots() {
    let (_mem, seg) = segment(spec(3, LEN as u32));
    let mut p = seg.attach_producer(10).unwrap();
    assert_eq!(seg.attach_producer(11).unwrap_err(), segment::AttachError::Busy { owner: 10 });
    publish(&mut p, LEN).unwrap();
    // The producer "dies" holding a slot mid-write.
    let slot = p.begin().unwrap();
    std::mem::forget(slot);
    std::mem::forget(p);
    assert_eq!(seg.census().writing, 1);
    let mut p2 = seg.take_over_producer(11, 10).unwrap();
    assert_eq!(p2.epoch(), 2);
    assert_eq!(seg.census().writing, 0, "the dead producer's slot is free again");
    assert_eq!(publish(&mut p2, LEN), Ok(1), "sequence numbers continue");
    let mut w = seg.register(ConsumerKind::Worker, 3).unwrap();
    assert_eq!(w.claim().unwrap().epoch, 1);
    assert_eq!(w.claim().unwrap().epoch, 2);
}

#[test]
fn superseded_producer_stops() {
    let (_mem, seg) = segment(spec(2, LEN as u32));
    let mut old = seg.attach_producer(10).unwrap();
    let _new = seg.take_over_producer(11, 10).unwrap();
    assert_eq!(old.begin().unwrap_err(), BeginError::Superseded);
}

#[test]
fn reclaim_returns_a_dead_workers_slots_and_fences_its_late_release() {
    let (_mem, seg) = segment(spec(3, LEN as u32));
    let mut p = seg.attach_producer(1).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 2).unwrap();
    publish(&mut p, LEN).unwrap();
    publish(&mut p, LEN).unwrap();
    let a = w.claim().unwrap();
    let b = w.claim().unwrap();
    assert_eq!(seg.census().held_by[w.index() as usize], 2);
    // Not known dead: a consumer that holds frames may be reading them, so it is left alone.
    assert_eq!(seg.reclaim(w.index(), w.generation(), Reclaim::Idle), Err(ReclaimError::Holding { frames: 2 }));
    // The platform found its process dead.
    assert_eq!(seg.reclaim(w.index(), w.generation(), Reclaim::Dead { owner: 2 }).map(|r| r.cleared), Ok(2));
    assert_eq!(seg.census().free, 3);
    assert_eq!(seg.stats().reclaimed, 2);
    // The presumed-dead worker wakes up: every operation is refused and changes nothing.
    assert_eq!(w.release(a), Err(ClaimError::Evicted));
    assert_eq!(w.claim(), Err(ClaimError::Evicted));
    // A new worker reuses the entry (new generation); the stale handle still cannot touch it.
    let mut w2 = seg.register(ConsumerKind::Worker, 3).unwrap();
    assert_eq!(w2.index(), w.index());
    assert_ne!(w2.generation(), w.generation());
    publish(&mut p, LEN).unwrap();
    let c = w2.claim().unwrap();
    assert_eq!(w.release(b), Err(ClaimError::Evicted));
    assert_eq!(seg.census().held_by[w2.index() as usize], 1);
    assert_eq!(seg.reclaim(w.index(), w.generation(), Reclaim::Idle), Err(ReclaimError::Stale));
    w2.release(c).unwrap();
}

#[test]
fn release_of_a_frame_not_held_is_refused() {
    let (_mem, seg) = segment(spec(2, LEN as u32));
    let mut p = seg.attach_producer(1).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 2).unwrap();
    publish(&mut p, LEN).unwrap();
    let f = w.claim().unwrap();
    let forged = Frame { gen: f.gen + 1, ..f };
    assert_eq!(w.read(&forged, 0, &mut [0; 4]), Err(ClaimError::NotHeld), "a forged frame reads nothing");
    assert_eq!(w.payload_ptr(&forged), Err(ClaimError::NotHeld));
    assert_eq!(w.release(forged), Err(ClaimError::NotHeld));
    let out_of_range = Frame { slot: 99, pos: 0, seq: 0, epoch: 0, ..f };
    assert_eq!(w.read(&out_of_range, 0, &mut [0; 4]), Err(ClaimError::NotHeld));
    assert_eq!(w.release(out_of_range), Err(ClaimError::NotHeld));
    w.release(f).unwrap();
}

#[test]
fn metadata_travels_with_the_frame() {
    let (_mem, seg) = segment(spec(2, LEN as u32));
    let mut p = seg.attach_producer(1).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 2).unwrap();
    let meta = segment::FrameMeta {
        capture_ns: 11,
        pts_ns: 22,
        width: LEN as u32,
        height: 1,
        pixel_format: PixelFormat::Gray8 as u32,
        flags: 5,
        payload_len: 1 << 40, // hostile length: clamped on read
        checksum: Some(0xFEED),
    };
    p.begin().unwrap().publish(meta);
    let f = w.claim().unwrap();
    assert_eq!(f.meta, segment::FrameMeta { payload_len: LEN as u64, ..meta });
    w.release(f).unwrap();
}

#[test]
fn corrupt_control_words_give_errors_not_ub() {
    let (_mem, seg) = segment(spec(2, LEN as u32));
    let mut p = seg.attach_producer(1).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 2).unwrap();
    publish(&mut p, LEN).unwrap();
    let l = *seg.layout();
    // Scribble a ring cell pointing at slot 999 for position 0.
    let cell_off = l.control_offset + l.ctl_ring;
    let word = seg.region().base().as_ptr().wrapping_add(cell_off as usize) as *mut u64;
    // SAFETY: 8-aligned word inside the live heap region; no other thread runs.
    unsafe { word.write_volatile(999) };
    assert_eq!(w.claim(), Err(ClaimError::Corrupt));
    // A claim cursor ahead of write_pos.
    let cursor = seg.region().base().as_ptr().wrapping_add((l.control_offset + 3 * 128) as usize) as *mut u64;
    // SAFETY: as above.
    unsafe { cursor.write_volatile(1 << 50) };
    assert_eq!(w.claim(), Err(ClaimError::Corrupt));
}

/// Writes `v` into control word `rel` of the control area (simulating a crash or a peer).
fn poke(seg: &Segment<'_>, rel: u64, v: u64) {
    let off = seg.layout().control_offset + rel;
    let word = seg.region().base().as_ptr().wrapping_add(off as usize) as *mut u64;
    // SAFETY: an 8-aligned control word inside the live region; no other thread runs.
    unsafe { word.write_volatile(v) };
}

#[test]
fn takeover_after_a_crash_between_counters_never_reissues_a_sequence_number() {
    use framebus_core::layout::ctl;
    let (_mem, seg) = segment(spec(4, LEN as u32));
    let mut p = seg.attach_producer(10).unwrap();
    publish(&mut p, LEN).unwrap();
    publish(&mut p, LEN).unwrap();
    std::mem::forget(p);
    // The producer died after storing next_seq = 3 for seq 2 but before advancing write_pos.
    poke(&seg, ctl::NEXT_SEQ, 3);
    let mut p2 = seg.take_over_producer(11, 10).unwrap();
    let s = seg.stats();
    assert_eq!((s.next_seq, s.write_pos, s.dropped_newest), (3, 2, 1), "seq 2 counts as dropped");
    let mut slot = p2.begin().unwrap();
    slot.write(0, &[crate::util::pattern(3, 0)]);
    assert_eq!(slot.publish(segment::FrameMeta::default()).seq, 3, "seq 2 is not issued again");
}

#[test]
fn taking_over_from_oneself_is_refused() {
    let (_mem, seg) = segment(spec(2, LEN as u32));
    let _p = seg.attach_producer(10).unwrap();
    assert_eq!(seg.take_over_producer(10, 10).unwrap_err(), segment::AttachError::Busy { owner: 10 });
}

#[test]
fn reclaim_wakes_a_producer_sleeping_for_space() {
    let (_mem, seg) = segment(spec(1, LEN as u32).with_pattern(Pattern::Broadcast));
    let mut p = seg.attach_producer(1).unwrap();
    let idle = seg.register(ConsumerKind::Subscriber, 2).unwrap();
    publish(&mut p, LEN).unwrap();
    assert_eq!(publish(&mut p, LEN), Err(BeginError::Full), "the idle subscriber has not read frame 0");
    let (_, waiters) = seg.space_wake_words();
    waiters.store(1, sync::Ordering::SeqCst); // the producer announces that it sleeps
                                              // The subscriber holds nothing, so even a non-forced reclaim may drop it.
    let r = seg.reclaim(idle.index(), idle.generation(), Reclaim::Idle).unwrap();
    assert_eq!((r.cleared, r.wake), (0, true));
    assert!(p.has_space());
    assert_eq!(publish(&mut p, LEN), Ok(1));
}

#[test]
fn a_worker_far_behind_a_drop_oldest_producer_catches_up_in_one_claim() {
    let (_mem, seg) = segment(spec(4, LEN as u32).with_policy(OverflowPolicy::DropOldest));
    let mut p = seg.attach_producer(1).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 2).unwrap();
    // Far more than RETRY_LIMIT positions behind (few under Miri: only > ring_capacity matters).
    let n = if cfg!(miri) { 40 } else { 50_000 };
    for _ in 0..n {
        publish(&mut p, LEN).unwrap();
    }
    let f = w.claim().expect("one claim suffices however far behind");
    assert_eq!(f.seq, n - 4, "the oldest frame still in a slot");
    w.release(f).unwrap();
}

#[test]
fn hostile_counters_do_not_panic_the_producer_or_hang_a_worker() {
    use framebus_core::layout::ctl;
    let (_mem, seg) = segment(spec(2, LEN as u32));
    poke(&seg, ctl::WRITE_POS, u64::MAX);
    poke(&seg, ctl::NEXT_SEQ, u64::MAX);
    poke(&seg, ctl::DROPPED_NEWEST, u64::MAX);
    let mut p = seg.attach_producer(1).unwrap();
    let mut slot = p.begin().unwrap();
    slot.write(0, &[1]);
    let _ = slot.publish(segment::FrameMeta::default());
    let mut w = seg.register(ConsumerKind::Worker, 2).unwrap();
    // Whatever it returns, it returns (bounded), and it never hands out a slot out of range.
    if let Ok(f) = w.claim() {
        assert!(f.slot < 2);
        w.release(f).unwrap();
    }
}

#[test]
fn unregister_refuses_while_frames_are_held() {
    let (_mem, seg) = segment(spec(2, LEN as u32));
    let mut p = seg.attach_producer(1).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 2).unwrap();
    publish(&mut p, LEN).unwrap();
    let f = w.claim().unwrap();
    assert_eq!(seg.entry_state(w.index()).holds, 1);
    w.release(f).unwrap();
    assert_eq!(seg.entry_state(w.index()).holds, 0);
    assert_eq!(w.unregister().map(|r| r.cleared), Ok(0));
}

#[test]
fn might_have_frame_follows_each_consumer_kind() {
    let (_mem, seg) = segment(spec(4, LEN as u32).with_pattern(Pattern::Broadcast).with_max_consumers(3));
    let mut p = seg.attach_producer(1).unwrap();
    let mut sub = seg.register(ConsumerKind::Subscriber, 2).unwrap();
    let mut latest = seg.register(ConsumerKind::Latest, 3).unwrap();
    assert!(!sub.might_have_frame() && !latest.might_have_frame(), "nothing published yet");
    publish(&mut p, LEN).unwrap();
    assert!(sub.might_have_frame() && latest.might_have_frame());
    let f = sub.claim().unwrap();
    assert!(!sub.might_have_frame(), "the subscriber's cursor passed the only frame");
    assert!(latest.might_have_frame(), "each reader has its own cursor");
    sub.release(f).unwrap();
    let g = latest.claim().unwrap();
    assert!(!latest.might_have_frame());
    latest.release(g).unwrap();

    let (_mem, seg) = segment(spec(4, LEN as u32));
    let mut p = seg.attach_producer(1).unwrap();
    let (mut w1, w2) = (seg.register(ConsumerKind::Worker, 2).unwrap(), seg.register(ConsumerKind::Worker, 3).unwrap());
    publish(&mut p, LEN).unwrap();
    assert!(w2.might_have_frame());
    let f = w1.claim().unwrap();
    assert!(!w2.might_have_frame(), "workers share one claim cursor");
    w1.release(f).unwrap();
}

#[test]
fn a_drop_oldest_slot_names_the_frame_it_dropped_and_the_producer_token_shows_attachment() {
    let (_mem, seg) = segment(spec(2, LEN as u32).with_policy(OverflowPolicy::DropOldest));
    assert_eq!(seg.producer_token(), 0, "no producer yet");
    let mut p = seg.attach_producer(7).unwrap();
    assert_eq!(seg.producer_token(), 7);
    publish(&mut p, LEN).unwrap(); // seq 0
    publish(&mut p, LEN).unwrap(); // seq 1
    let fresh = p.begin().unwrap();
    assert!(fresh.dropped_oldest);
    assert_eq!(fresh.dropped_seq(), Some(0), "the oldest unclaimed frame is the one dropped");
    drop(fresh);
    let mut w = seg.register(ConsumerKind::Worker, 2).unwrap();
    let f = w.claim().unwrap();
    w.release(f).unwrap();
    let plain = p.begin().unwrap();
    assert_eq!(plain.dropped_seq(), None, "a free slot drops nothing");
    drop(plain);
    drop(p);
    assert_eq!(seg.producer_token(), 0, "dropping the producer detaches it");
}

#[test]
fn a_takeover_clears_the_space_waiters_a_dead_sleeping_producer_left() {
    let (_mem, seg) = segment(spec(1, LEN as u32));
    let mut p = seg.attach_producer(10).unwrap();
    publish(&mut p, LEN).unwrap();
    // The producer announces that it sleeps for space, then dies without retiring.
    let _ = seg.announce_space_sleeper();
    std::mem::forget(p);
    let (_, waiters) = seg.space_wake_words();
    assert_eq!(waiters.load(sync::Ordering::SeqCst), 1);
    let _p2 = seg.take_over_producer(11, 10).unwrap();
    assert_eq!(waiters.load(sync::Ordering::SeqCst), 0, "no wake-up calls for a sleeper that is gone");
    // A late retire (were the old producer alive after all) does not wrap the count.
    seg.retire_space_sleeper();
    assert_eq!(waiters.load(sync::Ordering::SeqCst), 0);
}

#[test]
fn a_detached_slot_resumes_only_on_its_own_producer_and_publishes_as_usual() {
    let (_mem, seg) = segment(spec(2, LEN as u32));
    let mut p = seg.attach_producer(1).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 2).unwrap();
    assert_eq!(p.next_seq(), 0);
    let pending = p.begin().unwrap().detach();
    assert_eq!(seg.census().writing, 1, "a detached slot stays the producer's");
    assert_eq!(w.claim(), Err(ClaimError::Empty));
    let mut slot = p.resume(pending).unwrap();
    let buf: Vec<u8> = (0..LEN).map(|i| crate::util::pattern(0, i)).collect();
    slot.write(0, &buf);
    let published = slot.publish(FrameMeta { payload_len: LEN as u64, ..FrameMeta::default() });
    assert_eq!((published.seq, p.next_seq()), (0, 1));
    let f = w.claim().unwrap();
    check(&w, &f, LEN);
    w.release(f).unwrap();

    // A resumed slot that is dropped goes back to FREE, as a WriteSlot always did.
    let pending = p.begin().unwrap().detach();
    assert_eq!(seg.slot_state(pending.slot()).kind, SlotKind::Writing);
    drop(p.resume(pending).unwrap());
    assert_eq!(seg.census().free, 2, "dropping a resumed slot gives it back");

    // Another producer (after a takeover: new epoch) cannot resume it.
    let pending = p.begin().unwrap().detach();
    drop(p);
    let mut p2 = seg.take_over_producer(3, 1).or_else(|_| seg.attach_producer(3)).unwrap();
    assert!(p2.resume(pending).is_err(), "a slot of an earlier epoch is not resumable");
}

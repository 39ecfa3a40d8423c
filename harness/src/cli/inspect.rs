//! `framebus inspect NAME`: everything a segment says about itself.

use framebus_core::segment::{EntryStatus, SlotKind};
use framebus_core::vocab::Vocabulary;
use framebus_platform::core as framebus_core;
use framebus_platform::{is_alive, SharedSegment};

/// Prints the header, counters, slots and consumer table of segment `name`.
///
/// # Errors
/// The segment cannot be opened (the message says how to find it).
pub fn run(name: &str) -> Result<(), framebus_platform::Error> {
    let shared = SharedSegment::open(name)?;
    let seg = shared.segment();
    let l = seg.layout();
    let c = shared.creator();
    let s = seg.stats();
    println!("segment {name} (/dev/shm/framebus.{name}), layout v{}", framebus_core::layout::LAYOUT_VERSION);
    println!("  creator     pid {} ({})", c.id as u32, if is_alive(c.id) { "alive" } else { "dead" });
    println!(
        "  size        {} bytes: header 4096, control {}, {} slots x {}",
        l.total_size, l.control_size, l.spec.slot_count, l.slot_stride
    );
    println!(
        "  frames      {}x{} {}, {} bytes; pattern {}, policy {}, {} consumers max",
        l.spec.geometry.width,
        l.spec.geometry.height,
        l.spec.geometry.format.name(),
        l.planes.frame_size,
        l.spec.pattern.name(),
        l.spec.policy.name(),
        l.spec.max_consumers
    );
    println!(
        "  counters    epoch {}  published {}  offered {}  dropped oldest {}  dropped newest {}  delivered {}  reclaimed {}",
        s.epoch, s.write_pos, s.next_seq, s.dropped_oldest, s.dropped_newest, s.delivered, s.reclaimed
    );
    if seg.has_results() {
        let (late, overflow) = seg.result_counts();
        println!(
            "  results     {} cells of {} bytes; end {}; late {late}  lost to a full window {overflow}",
            l.spec.result_cells,
            l.spec.result_max,
            seg.end_seq().map_or("open".to_string(), |e| format!("after seq {e}")),
        );
    }
    println!("  slots");
    for i in 0..l.spec.slot_count {
        let st = seg.slot_state(i);
        let kind = match st.kind {
            SlotKind::Free => "free",
            SlotKind::Writing => "writing",
            SlotKind::Ready => "ready",
            SlotKind::Taken => "taken",
        };
        println!("    {i:>4}  {kind:<8} gen {:<8} holders {:#06x}", st.gen, st.holders);
    }
    println!("  consumers");
    for i in 0..l.spec.max_consumers {
        let e = seg.entry_state(i);
        if e.status == EntryStatus::Free {
            continue;
        }
        let (owner, _) = seg.entry_owner(i);
        let (delivered, skipped, cursor, _) = seg.entry_counters(i);
        println!(
            "    {i:>4}  {:<10} pid {} ({})  holds {}  delivered {delivered}  skipped {skipped}  cursor {cursor}{}",
            e.kind.map_or("joining", |k| k.name()),
            owner as u32,
            if is_alive(owner) { "alive" } else { "dead: reclaimable" },
            e.holds,
            if e.status == EntryStatus::Reclaiming { "  [being reclaimed]" } else { "" }
        );
    }
    Ok(())
}

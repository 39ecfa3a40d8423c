//! The commands around segments and videos that are not roles: `ls`, `gc`, `inspect`, `top`,
//! `probe`.
//! Each is one function taking its parsed arguments; `main.rs` only dispatches.

pub mod inspect;
pub mod top;

use std::path::Path;

use framebus_platform::core::layout::fnv1a64;
use framebus_platform::core::PixelFormat;
use framebus_platform::SharedSegment;

use crate::Res;

/// `framebus ls`: every framebus segment on this machine, with its geometry and whether its
/// creator lives.
pub fn ls() -> Res<()> {
    let list = SharedSegment::list()?;
    if list.is_empty() {
        println!("no framebus segments");
        return Ok(());
    }
    println!("{:<32} {:>10} {:>6} {:>16} {:<8} creator", "name", "size", "slots", "geometry", "pattern");
    for info in list {
        match &info.header {
            Ok((l, c)) => println!(
                "{:<32} {:>9}M {:>6} {:>16} {:<8} {} ({})",
                info.name,
                l.total_size.div_ceil(1 << 20),
                l.spec.slot_count,
                format!("{}x{} {:?}", l.spec.geometry.width, l.spec.geometry.height, l.spec.geometry.format),
                format!("{:?}", l.spec.pattern),
                c.id as u32,
                if info.creator_alive { "alive" } else { "DEAD: `framebus gc` removes it" }
            ),
            Err(e) => println!("{:<32} unreadable: {e}", info.name),
        }
    }
    Ok(())
}

/// `framebus gc`: removes the segments whose creator is dead or whose header is unreadable
/// (`dry_run`: only says which).
pub fn gc(dry_run: bool) -> Res<()> {
    if dry_run {
        for info in SharedSegment::list()? {
            if !info.creator_alive {
                println!("would remove {}", info.name);
            }
        }
        return Ok(());
    }
    let removed = SharedSegment::gc()?;
    for n in &removed {
        println!("removed {n}");
    }
    println!("{} stale segment(s) removed", removed.len());
    Ok(())
}

/// `framebus probe VIDEO`: geometry and frame rate, then every frame decoded, with the speed
/// and a checksum of the decoded frames.
pub fn probe(path: &Path) -> Res<()> {
    let mut src = crate::video::open(path)?;
    let info = src.info();
    println!(
        "{}: {}x{} {}, {:.3} fps, {} frames",
        path.display(),
        info.width,
        info.height,
        src.codec(),
        info.fps,
        info.frames
    );
    let mut frame = vec![0u8; info.width as usize * info.height as usize * 3];
    let t = std::time::Instant::now();
    let (mut n, mut sum) = (0u64, fnv1a64(&[]));
    while src.next_frame(&mut frame, PixelFormat::Bgr24)? {
        n += 1;
        sum ^= fnv1a64(&frame[..frame.len().min(4096)]).rotate_left(n as u32 % 64);
    }
    let secs = t.elapsed().as_secs_f64();
    println!("decoded {n} frames to BGR24 in {secs:.2} s ({:.0} frames/s); checksum {sum:016x}", n as f64 / secs);
    Ok(())
}

//! A segment created by framebus, opened by name from Python's `multiprocessing.shared_memory`
//! and read with nothing but docs/LAYOUT.md (tests/py/read_segment.py).
use std::process::Command;

use framebus_platform::{CreateOptions, SharedSegment};

use crate::util::*;

fn python() -> Option<&'static str> {
    let ok = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    if ok {
        return Some("python3");
    }
    assert!(std::env::var("CI").ok().as_deref() != Some("true"), "python3 is required in CI (apt-get install python3)");
    eprintln!("SKIPPED python interop: python3 not found (install python3 to run it)");
    None
}

fn field(json: &str, key: &str) -> String {
    // Small flat-JSON lookup: `"key": value` up to the next comma or brace.
    let at = json.find(&format!("\"{key}\": ")).unwrap_or_else(|| panic!("{key} missing in {json}")) + key.len() + 4;
    json[at..].split([',', '}']).next().unwrap().trim().trim_matches('"').to_string()
}

#[test]
fn python_reads_a_framebus_segment_by_name_using_only_the_layout_doc() {
    let Some(py) = python() else { return };
    let name = unique("py");
    let shared = SharedSegment::create(&name, &spec(3), CreateOptions::default()).unwrap();
    let seg = shared.segment();
    let mut p = shared.attach_producer().unwrap();
    produce(&mut p, &seg, 2);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/read_segment.py");
    let out = Command::new(py).arg(script).arg(&name).output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    let json = String::from_utf8(out.stdout).unwrap();
    let l = seg.layout();
    assert_eq!(field(&json, "magic"), "FRAMEBUS");
    assert_eq!(field(&json, "version"), framebus_core::layout::LAYOUT_VERSION.to_string());
    assert_eq!(field(&json, "checksum_ok"), "true");
    assert_eq!(field(&json, "total_size"), l.total_size.to_string());
    assert_eq!(field(&json, "slot_count"), "3");
    assert_eq!((field(&json, "width"), field(&json, "height")), ("64".into(), "16".into()));
    assert_eq!(field(&json, "write_pos"), "2");
    assert_eq!(field(&json, "seq"), "0");
    assert_eq!(field(&json, "kind"), "2", "READY");
    let expect: Vec<String> = (0..8).map(|i| pattern(0, i).to_string()).collect();
    assert!(json.contains(&format!("\"first_bytes\": [{}]", expect.join(", "))), "{json}");
    // Python's resource tracker did not unlink the segment behind our back.
    assert!(SharedSegment::open(&name).is_ok(), "segment survived the Python process");
}

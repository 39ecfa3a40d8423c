//! With the `header` feature, regenerates `include/framebus.h` with cbindgen and compares it
//! with the committed file: a difference fails the build unless `FRAMEBUS_C_BLESS=1`, which
//! rewrites it (`cargo xtask cheader`). Without the feature (the default) nothing happens, so
//! building the library needs no cbindgen.

fn main() {
    println!("cargo:rerun-if-changed=src/lib.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    // A hand edit of the committed header must be compared again too.
    println!("cargo:rerun-if-changed=include/framebus.h");
    println!("cargo:rerun-if-env-changed=FRAMEBUS_C_BLESS");
    #[cfg(feature = "header")]
    regenerate();
}

#[cfg(feature = "header")]
fn regenerate() {
    use std::path::PathBuf;
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("read cbindgen.toml");
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen failed on src/lib.rs")
        .write(&mut fresh);
    let committed_path = dir.join("include/framebus.h");
    let committed = std::fs::read(&committed_path).unwrap_or_default();
    if committed != fresh {
        if std::env::var("FRAMEBUS_C_BLESS").as_deref() == Ok("1") {
            std::fs::write(&committed_path, fresh).expect("write include/framebus.h");
        } else {
            panic!("include/framebus.h differs from what cbindgen generates from src/lib.rs; run `cargo xtask cheader` and commit the result");
        }
    }
}

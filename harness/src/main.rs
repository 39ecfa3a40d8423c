//! The `framebus` command. Its roles (producer, worker, collector, ls, gc, inspect) arrive
//! with steps 2 and 3; until then it says so instead of pretending.

fn main() {
    let _ = framebus_platform::core::layout::LAYOUT_VERSION;
    eprintln!(
        "framebus: the runtime roles (producer, worker, collector, ls, gc, inspect) are not built yet.\n\
         What exists today is the core crate (framebus-core): see README.md, 'What exists'."
    );
    std::process::exit(2);
}

//! Delivery patterns: how a consumer of each kind picks its next frame. One file per pattern —
//! the room a new pattern goes into (with its row in `crate::vocab`, its arm in
//! `Consumer::claim` and `Consumer::might_have_frame`, and its loom model).

mod broadcast;
mod latest;
mod work;

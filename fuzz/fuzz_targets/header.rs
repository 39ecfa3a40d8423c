//! Header validation over arbitrary bytes: never panics; whatever is accepted re-encodes to
//! the same bytes. (Step 4 adds control-area and API-sequence targets.)
#![no_main]

use framebus_core::layout::{Layout, HEADER_USED};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER_USED + 8 {
        return;
    }
    let len = u64::from_le_bytes(data[..8].try_into().unwrap());
    let bytes: [u8; HEADER_USED] = data[8..8 + HEADER_USED].try_into().unwrap();
    if let Ok((layout, creator)) = Layout::decode_header(&bytes, len) {
        assert_eq!(layout.encode_header(&creator), bytes);
    }
});

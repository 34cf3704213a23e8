//! Any byte stream, cut at arbitrary points: the SSE decoder never panics and never holds more
//! than its cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_warden_core::mcp::sse::SseDecoder;

fuzz_target!(|data: &[u8]| {
    let (cut, stream) = data.split_first().map_or((1, data), |(c, s)| (usize::from(*c).max(1), s));
    let mut decoder = SseDecoder::new(4096);
    let mut events = Vec::new();
    for chunk in stream.chunks(cut) {
        if decoder.feed(chunk, &mut events).is_err() {
            return;
        }
    }
    let _ = decoder.feed(b"\n\n", &mut events);
    assert!(events.iter().all(|e| e.data.len() <= 4096));
});

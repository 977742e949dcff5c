//! Control socket messages: the request line the daemon reads (`Request`, JSON) and the reply
//! line the CLI reads (`ControlReply`).
//!
//! Checks: no panic; a request that parses survives a serialize/parse round trip unchanged
//! (what the CLI sends is what the daemon reads), and so does a reply's `ok` and message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd::daemon::control::{ControlReply, Request};

fuzz_target!(|data: &[u8]| {
    // The daemon reads at most 4096 bytes, one line, lossy-free (read_line needs UTF-8).
    let Ok(line) = std::str::from_utf8(&data[..data.len().min(4096)]) else {
        return;
    };
    let line = line.split_inclusive('\n').next().unwrap_or("");
    if let Ok(request) = serde_json::from_str::<Request>(line.trim()) {
        let text = serde_json::to_string(&request).unwrap();
        assert!(!text.contains('\n'), "a request is not one line: {text}");
        let again: Request = serde_json::from_str(&text).unwrap();
        assert_eq!(again, request);
    }
    if let Ok(reply) = serde_json::from_str::<ControlReply>(line.trim()) {
        let text = serde_json::to_string(&reply).unwrap();
        assert!(!text.contains('\n'), "a reply is not one line: {text}");
        let again: ControlReply = serde_json::from_str(&text).unwrap();
        assert_eq!((again.ok, again.message), (reply.ok, reply.message));
    }
});

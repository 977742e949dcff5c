//! [`ProbeError`]: why a probe failed, shared by every kind of probe (probe.rs, tcp.rs,
//! http.rs).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a probe failed. Messages are for the operator reading `vipd status` or the log.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no result within the {}ms timeout", .0.as_millis())]
    Timeout(Duration),
    #[error("resolving {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("connecting to {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("TLS handshake with {target}: {source}")]
    Tls {
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("{target}: {source}")]
    Io {
        target: String,
        #[source]
        source: io::Error,
    },
    #[error("{target}: malformed HTTP response: {reason}")]
    BadResponse { target: String, reason: String },
    #[error("{target}: HTTP status {code} {reason}, expected 2xx")]
    HttpStatus {
        target: String,
        code: u16,
        reason: String,
    },
    #[error("{}: does not exist", .0.display())]
    FileMissing(PathBuf),
    #[error("{}: {source}", .path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("starting {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("{program} {status}{}", fmt_stderr(.stderr))]
    ExitStatus {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("all_of: {0}")]
    AllOf(Box<ProbeError>),
    #[error("any_of: none good: {}", join_errors(.0))]
    AnyOf(Vec<ProbeError>),
}

fn fmt_stderr(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(", stderr: {stderr}")
    }
}

fn join_errors(errors: &[ProbeError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

//! Why a `[[check]]` table was refused: [`CheckError`] (the check and key at fault),
//! [`Problem`] (what is wrong with the key), [`ProbeConfigError`] (one probe table) and
//! [`TargetError`] (a URL or `host:port`). The messages are the operator's: each says what is
//! wrong and what would be accepted.

use std::ops::Range;
use std::path::PathBuf;

/// keepalived accepts weights in `-253..=253`: enough to move any priority across the whole
/// 1..=254 range, never enough to reach the owner value 255 by arithmetic alone.
pub const MAX_WEIGHT: i32 = 253;
/// Longest accepted check name; names end up in logs, metrics labels and `vipd status`.
pub const MAX_NAME_LEN: usize = 64;

/// A refused `[[check]]`: which check, which key, what is wrong, and where the value is when
/// the table kept its position (`span`, byte offsets in the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The name itself is unusable, so the message cannot name the check by it.
    #[error("[[check]] name = {0:?}: {rule}", rule = NameRule)]
    Name(String),
    #[error("[[check]] \"{check}\": {key}: {problem}")]
    Key {
        check: String,
        /// `probe`, `interval`, `all_of[1]`, ...
        key: String,
        /// Boxed: the variants carrying a URL or argv would make every `Result` large.
        problem: Box<Problem>,
        /// The value at fault, when known; otherwise the error belongs to the whole table.
        span: Option<Range<usize>>,
    },
}

/// What a name must look like (names end up in logs, metric labels and `vipd status`).
struct NameRule;

impl std::fmt::Display for NameRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "expected 1..={MAX_NAME_LEN} letters, digits, '_', '-' or '.'"
        )
    }
}

impl CheckError {
    /// The key at fault (`name` for an unusable name).
    pub fn key(&self) -> &str {
        match self {
            CheckError::Name(_) => "name",
            CheckError::Key { key, .. } => key,
        }
    }

    /// The message after the check's name: `key: what is wrong; what is accepted`.
    pub fn reason(&self) -> String {
        match self {
            CheckError::Name(name) => format!("name: {name:?}: {NameRule}"),
            CheckError::Key { key, problem, .. } => format!("{key}: {problem}"),
        }
    }

    /// Where the value at fault is written, when known.
    pub fn span(&self) -> Option<Range<usize>> {
        match self {
            CheckError::Name(_) => None,
            CheckError::Key { span, .. } => span.clone(),
        }
    }
}

/// What is wrong with one key of a check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("missing; set exactly one of http, tcp, file, exec, all_of, any_of")]
    NoProbe,
    #[error("{} are all set; a check has exactly one probe (use all_of / any_of to combine)", .0.join(", "))]
    ManyProbes(Vec<&'static str>),
    #[error("set it inside the all_of / any_of probe table it applies to")]
    InsecureOnComposite,
    #[error("empty; list at least one probe table")]
    EmptyComposite,
    #[error(transparent)]
    Probe(#[from] ProbeConfigError),
    /// Not in the configuration's duration syntax; the message is that syntax's.
    #[error("{0}")]
    Duration(String),
    /// An interval or timeout of zero: a probe must be given time to run.
    #[error("{0:?}: must be greater than zero")]
    ZeroDuration(String),
    #[error("0; expected 1 or more consecutive successes")]
    ZeroRise,
    #[error("0; expected 1 or more consecutive failures")]
    ZeroFall,
    #[error("{0} is out of range; expected -{max}..={max}", max = MAX_WEIGHT)]
    Weight(i32),
    #[error("defined twice; check names must be unique")]
    Duplicate,
    /// `hold_down` beyond the maximum.
    #[error("{text:?} is too long; {accepted}")]
    HoldDownTooLong { text: String, accepted: String },
    /// A non-zero `hold_down` not longer than the interval: results come one interval apart,
    /// so it would never hold a change back.
    #[error("{text:?} is not longer than the interval, so it would never hold a change back; {accepted}")]
    HoldDownTooShort { text: String, accepted: String },
}

/// Why one probe table (a check's own probe keys, or an entry of `all_of` / `any_of`) was
/// refused. Messages start with the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeConfigError {
    #[error("no probe key set; set exactly one of http, tcp, file, exec")]
    NoKey,
    #[error("{} are all set; set exactly one of http, tcp, file, exec", .0.join(", "))]
    ManyKeys(Vec<&'static str>),
    #[error("insecure: only applies to an https:// probe")]
    InsecureWithoutHttp,
    #[error("http = {url:?}: {problem}")]
    Http { url: String, problem: TargetError },
    #[error("tcp = {addr:?}: {problem}")]
    Tcp { addr: String, problem: TargetError },
    /// The daemon's working directory is not something an operator controls.
    #[error("file = {0:?}: relative path; expected an absolute path")]
    RelativeFile(PathBuf),
    #[error("exec = []: empty; expected [\"/absolute/program\", \"arg\", ...]")]
    EmptyExec,
    /// No PATH lookup: what runs must not depend on the environment vipd was started in.
    #[error("exec = {argv:?}: program {program:?} is not an absolute path; write e.g. \"/usr/bin/{program}\"")]
    RelativeProgram { argv: Vec<String>, program: String },
}

/// For callers that only show the message (e.g. as a located configuration error).
impl From<ProbeConfigError> for String {
    fn from(e: ProbeConfigError) -> String {
        e.to_string()
    }
}

/// What is wrong with an `http` URL or a `tcp` / URL `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("expected a URL starting with http:// or https://")]
    NotHttpUrl,
    /// Anything of this kind would end up verbatim in the request line or Host header.
    #[error("contains whitespace or control characters")]
    Whitespace,
    #[error("fragment (#...) not allowed; it is never sent to the server")]
    Fragment,
    #[error("user information (user@host) is not supported")]
    UserInfo,
    #[error(
        "https to {0:?} would not verify the server certificate; use a loopback host \
         (localhost, 127.0.0.1, ::1) or set insecure = true"
    )]
    Unverified(String),
    #[error("insecure = true only applies to https:// URLs")]
    InsecureHttp,
    #[error("unclosed '['; {0}")]
    UnclosedBracket(Expected),
    #[error("{host:?} inside [] is not an IPv6 address; {expected}")]
    NotIpv6 { host: String, expected: Expected },
    #[error("unexpected {rest:?} after ']'; {expected}")]
    AfterBracket { rest: String, expected: Expected },
    #[error("IPv6 address without brackets; {0}")]
    UnbracketedIpv6(Expected),
    #[error("empty host; {0}")]
    EmptyHost(Expected),
    #[error("{host:?} is not a host name or IP address; {expected}")]
    BadHost { host: String, expected: Expected },
    #[error("port {0:?}: expected 1..=65535")]
    Port(String),
    #[error("no port; {0}")]
    NoPort(Expected),
}

/// The accepted forms of an address, said at the end of a [`TargetError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A URL's authority: the port is optional.
    HostOptionalPort,
    /// A `tcp` target: the port is required.
    HostPort,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Expected::HostOptionalPort => "expected host, host:port or [IPv6]:port",
            Expected::HostPort => "expected host:port or [IPv6]:port, e.g. \"127.0.0.1:6443\"",
        })
    }
}

//! Probes: the I/O edge of health checking. Each returns a short success text (shown by
//! `vipd status`) or a [`ProbeError`] naming the target and what went wrong.
//!
//! Timeouts are not applied here: the monitor bounds every probe (composites as a whole) with the
//! check's `timeout`, and dropping a probe future on timeout cancels its I/O and kills an exec
//! probe's process group.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;

use tokio::io::AsyncReadExt;

use super::config::{CheckSpec, Probe};
use super::http;
pub use super::probe_error::ProbeError;
use super::tcp::tcp_connect;

/// Bytes of an exec probe's stderr kept for the error text.
const EXEC_STDERR_LIMIT: u64 = 512;

/// Runs probes. The monitor is generic over it so tests can drive it with scripted results
/// under tokio's paused clock.
pub trait Prober: Send + Sync + 'static {
    /// One probe of `check`, unbounded in time (the caller applies the timeout). Ok carries a
    /// short description of the success.
    fn probe(&self, check: &CheckSpec) -> impl Future<Output = Result<String, ProbeError>> + Send;
}

/// The real prober: network, file system and processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemProber;

impl Prober for SystemProber {
    fn probe(&self, check: &CheckSpec) -> impl Future<Output = Result<String, ProbeError>> + Send {
        run_probe(&check.probe)
    }
}

/// Runs one probe to completion. Composites run their members in order and stop at the first
/// member that decides the result, like the `&&` / `||` of the shell scripts they replace.
pub fn run_probe(
    probe: &Probe,
) -> Pin<Box<dyn Future<Output = Result<String, ProbeError>> + Send + '_>> {
    Box::pin(async move {
        match probe {
            Probe::Http(target) => http::get(target).await,
            Probe::Tcp(target) => tcp_connect(target)
                .await
                .map(|(addr, _)| format!("connected to {addr}")),
            Probe::File(path) => file_exists(path).await,
            Probe::Exec(argv) => exec(argv).await,
            Probe::AllOf(probes) => {
                let mut oks = Vec::with_capacity(probes.len());
                for p in probes {
                    oks.push(
                        run_probe(p)
                            .await
                            .map_err(|e| ProbeError::AllOf(Box::new(e)))?,
                    );
                }
                Ok(oks.join("; "))
            }
            Probe::AnyOf(probes) => {
                let mut errors = Vec::with_capacity(probes.len());
                for p in probes {
                    match run_probe(p).await {
                        Ok(ok) => return Ok(ok),
                        Err(e) => errors.push(e),
                    }
                }
                Err(ProbeError::AnyOf(errors))
            }
        }
    })
}

async fn file_exists(path: &std::path::Path) -> Result<String, ProbeError> {
    match tokio::fs::try_exists(path).await {
        Ok(true) => Ok(format!("{} exists", path.display())),
        Ok(false) => Err(ProbeError::FileMissing(path.to_path_buf())),
        Err(source) => Err(ProbeError::File {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Kills the probe's whole process group unless disarmed: a timed-out `sh -c` must not leave
/// its children running (keepalived kills the script's process group on timeout too).
struct ProcessGroupGuard(Option<i32>);

impl Drop for ProcessGroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // ESRCH (already gone) is the expected case when the group exited on its own.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

async fn exec(argv: &[String]) -> Result<String, ProbeError> {
    let (program, args) = match argv.split_first() {
        Some(split) => split,
        None => {
            return Err(ProbeError::Spawn {
                program: String::new(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "empty argv"),
            })
        }
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ProbeError::Spawn {
            program: program.clone(),
            source,
        })?;
    let mut guard = ProcessGroupGuard(child.id().and_then(|id| i32::try_from(id).ok()));
    let mut stderr = Vec::new();
    if let Some(pipe) = child.stderr.take() {
        // Read errors only lose diagnostic text; the exit status still decides.
        let _ = pipe.take(EXEC_STDERR_LIMIT).read_to_end(&mut stderr).await;
    }
    let status = child.wait().await.map_err(|source| ProbeError::Io {
        target: program.clone(),
        source,
    })?;
    guard.0 = None;
    if status.success() {
        return Ok(format!("{program} exited 0"));
    }
    let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
    Err(ProbeError::ExitStatus {
        program: program.clone(),
        status: describe_exit(status),
        stderr,
    })
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited {code}, expected 0"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => format!("ended with {status}"),
    }
}

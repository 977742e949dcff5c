//! Running `lab-hostile` (integration/src/bin/lab-hostile.rs) in a lab namespace and reading
//! its result, plus the daemon-side figures the soak scenarios record (open descriptors).

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::host::{Host, Proc};
use crate::topology::wait_until;

/// A `lab-hostile` process started by [`start`].
pub struct Hostile {
    proc: Proc,
    what: String,
}

/// Starts `lab-hostile ARGS...` in `host` (binary path from the test:
/// `env!("CARGO_BIN_EXE_lab-hostile")`) with an open-file limit of `nofile`, and waits until it
/// printed `ready` (its sockets are set up).
pub fn start(host: &Host, bin: &str, label: &str, nofile: u32, args: &[&str]) -> Result<Hostile> {
    let limit = format!("--nofile={nofile}:{nofile}");
    let mut argv = vec!["prlimit", limit.as_str(), bin];
    argv.extend_from_slice(args);
    let mut proc = host.spawn(label, &argv)?;
    let what = format!("lab-hostile {} in {}", args.join(" "), host.name());
    let ready = wait_until(Duration::from_secs(20), || {
        let log = proc.log();
        if log
            .lines()
            .any(|l| l == "ready" || l.starts_with("result "))
        {
            return Ok(Some(()));
        }
        if !proc.is_running() {
            bail!("{what} exited before it was ready: {log}");
        }
        Ok(None)
    })?;
    if ready.is_none() {
        bail!(
            "{what} was not ready within 20 s; see {}",
            proc.log_path().display()
        );
    }
    Ok(Hostile { proc, what })
}

impl Hostile {
    /// Waits up to `timeout` for the process to end and returns its `result` JSON.
    pub fn result(mut self, timeout: Duration) -> Result<Value> {
        let done = wait_until(timeout, || Ok((!self.proc.is_running()).then_some(())))?;
        if done.is_none() {
            self.proc.kill();
            bail!("{} did not finish within {timeout:?}", self.what);
        }
        let log = self.proc.log();
        let line = log
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("result "))
            .ok_or_else(|| anyhow!("{} printed no result: {log}", self.what))?;
        serde_json::from_str(line).with_context(|| format!("{}: result {line}", self.what))
    }
}

/// Open file descriptors of process `pid` (entries of /proc/PID/fd).
pub fn open_fds(pid: u32) -> Result<usize> {
    let dir = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&dir)
        .with_context(|| format!("reading {dir}"))?
        .count())
}

/// `name value` of a Prometheus text exposition (the first line for that series).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_reads_one_series_exactly() {
        let text = "# TYPE x counter\nvipd_dns_dropped_malformed_total 42\nvipd_dns_dropped_malformed_total_x 1\nvipd_vrrp_state{instance=\"api\"} 2\n";
        assert_eq!(metric(text, "vipd_dns_dropped_malformed_total"), Some(42.0));
        assert_eq!(metric(text, "vipd_vrrp_state{instance=\"api\"}"), Some(2.0));
        assert_eq!(metric(text, "vipd_nothing"), None);
    }
}

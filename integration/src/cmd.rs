//! Running `ip`, `tc`, `nft` and friends, inside a namespace or not, with errors that show the
//! command line and what it printed.

use std::process::{Command, Output};

use anyhow::{bail, Context, Result};

/// Runs `argv` and returns its stdout; fails with the full command line and its stderr.
pub fn run(argv: &[&str]) -> Result<String> {
    let output = output(argv)?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout)
        .with_context(|| format!("`{}` printed non-UTF-8", argv.join(" ")))
}

/// Runs `argv` inside network namespace `ns` (`ip netns exec`).
pub fn run_in(ns: &str, argv: &[&str]) -> Result<String> {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(argv);
    run(&full)
}

/// Runs `argv` and returns the raw output whatever the exit status (for probes that expect failure).
pub fn output(argv: &[&str]) -> Result<Output> {
    let (program, args) = argv.split_first().context("empty command line")?;
    Command::new(program).args(args).output().with_context(|| {
        format!(
            "cannot start `{}` (is it installed? run scripts/setup.sh)",
            argv.join(" ")
        )
    })
}

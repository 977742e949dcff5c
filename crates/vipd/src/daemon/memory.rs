//! Keeps the daemon's resident set small.
//!
//! Most of a Rust daemon's RSS is not heap but file-backed code pages. Start-up code (argument
//! parsing, TOML, interface discovery) runs once, and on every page fault in a file mapping the
//! kernel also maps the neighbouring pages that are already cached ("fault-around", 64 KiB), so
//! a 6 MB binary shows up as 4-5 MB resident although the steady-state loop uses a fraction.
//!
//! Once start-up is over, [`trim_code_residency`] unmaps the process's page-table entries for
//! its *executable* file mappings (`MADV_DONTNEED`). Code pages are never written, so a later
//! fault maps the very same page-cache page back; nothing else on the machine is affected.
//! Only `r-xp` mappings are touched: read-only data may hold relocated pages, which
//! `MADV_DONTNEED` would discard.

use std::ffi::c_void;
use std::ptr::NonNull;

use std::time::Duration;

use nix::sys::mman::{madvise, MmapAdvise};

/// How often the trim repeats after start-up. Each costs a few hundred minor page faults (well
/// under a millisecond); repeating it lets the resident set follow the code actually in use,
/// e.g. after an election moved this node from the Backup loop to the Master loop.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(30);

/// Drops this process's resident code pages; they fault back in as they run. Best effort: a failure only costs memory, so it is logged at debug level.
pub fn trim_code_residency() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut trimmed = 0usize;
    for (range, perms, path, private_dirty_kb) in mappings(&smaps) {
        // Only private executable file mappings (absolute path: [vdso] and the like are
        // skipped). Their pages are never written (W^X; Rust and Debian's libraries have no text
        // relocations), so the file holds exactly what is resident. Read-only data is left
        // alone: the dynamic loader writes relocations into RELRO pages before protecting them,
        // and the kernel's Private_Dirty cannot tell those apart on every system (some VMs
        // report even untouched text as private dirty).
        let _ = private_dirty_kb;
        if perms != "r-xp" || !path.starts_with('/') {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        let Some(addr) = NonNull::new(start as *mut c_void) else {
            continue;
        };
        // SAFETY: the range is one of this process's own private, read-only file mappings with
        // no private dirty page (per the kernel's smaps). Dropping its pages only makes the
        // next access map the identical page-cache page again.
        if let Err(e) =
            unsafe { madvise(addr, end.saturating_sub(start), MmapAdvise::MADV_DONTNEED) }
        {
            tracing::debug!("madvise(MADV_DONTNEED) on {range} failed: {e}");
        } else {
            trimmed += end.saturating_sub(start);
        }
    }
    tracing::debug!(
        "released resident pages of {} KiB of code mappings",
        trimmed / 1024
    );
}

/// (range, permissions, path, Private_Dirty in kB) of each mapping listed in smaps.
fn mappings(smaps: &str) -> Vec<(&str, &str, &str, Option<u64>)> {
    let mut out: Vec<(&str, &str, &str, Option<u64>)> = Vec::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some(value) = line.strip_prefix("Private_Dirty:") {
            if let Some(last) = out.last_mut() {
                last.3 = value.trim().trim_end_matches("kB").trim().parse().ok();
            }
        } else if first.contains('-') && !first.ends_with(':') {
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            out.push((first, perms, path, None));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaps_entries_carry_their_private_dirty_size() {
        let text = "\
55d0a000-55d0b000 r--p 00000000 fe:01 123 /usr/bin/vipd
Size:                  4 kB
Private_Dirty:         0 kB
55d0b000-55d0c000 r--p 00001000 fe:01 123 /usr/bin/vipd
Private_Dirty:         4 kB
7ffd1000-7ffd2000 r-xp 00000000 00:00 0 [vdso]
Private_Dirty:         0 kB
";
        let m = mappings(text);
        assert_eq!(
            m,
            vec![
                ("55d0a000-55d0b000", "r--p", "/usr/bin/vipd", Some(0)),
                ("55d0b000-55d0c000", "r--p", "/usr/bin/vipd", Some(4)),
                ("7ffd1000-7ffd2000", "r-xp", "[vdso]", Some(0)),
            ]
        );
    }

    #[test]
    fn trimming_keeps_the_process_working() {
        let before: Vec<u32> = (0..1000).collect();
        trim_code_residency();
        // Code and read-only data fault back in transparently.
        let after: Vec<u32> = (0..1000).collect();
        assert_eq!(before, after);
        assert_eq!(format!("{:?}", Some(42)), "Some(42)");
    }
}

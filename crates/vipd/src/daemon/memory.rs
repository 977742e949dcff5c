//! Keeps the daemon's resident set small.
//!
//! Most of a Rust daemon's RSS is not heap but file-backed pages of its own binary and of libc:
//! start-up code (argument parsing, TOML, interface discovery) and read-only data run or are read
//! once, and on every page fault in a file mapping the kernel also maps the neighbouring pages
//! that are already cached ("fault-around", 64 KiB). A 6 MB binary then shows up as 4-5 MB
//! resident although the steady-state loop uses a fraction of it.
//!
//! [`trim_code_residency`] unmaps this process's page-table entries (`MADV_DONTNEED`) for the
//! parts of loaded ELF objects that are never written: the read-only `PT_LOAD` segments, minus
//! every writable segment and every `PT_GNU_RELRO` range (relocated data the loader wrote before
//! protecting it), shrunk to whole pages. The list comes from the dynamic loader itself
//! (`dl_iterate_phdr`), so nothing is inferred from permissions. A page dropped this way is an
//! untouched copy of the file: the next access maps the same page-cache page again. Nothing else
//! on the machine is affected.

use std::ffi::{c_int, c_void, CStr};
use std::time::Duration;

/// How often the trim repeats after start-up. Each costs a few hundred minor page faults (well
/// under a millisecond); repeating it lets the resident set follow the code actually in use,
/// e.g. after an election moved this node from the Backup loop to the Master loop.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(30);

/// One entry of an ELF64 dynamic section (`Elf64_Dyn`; the libc crate does not define it).
#[repr(C)]
struct Elf64Dyn {
    d_tag: i64,
    d_val: u64,
}

// Dynamic section tags and flags (ELF gABI).
const DT_NULL: i64 = 0;
const DT_TEXTREL: i64 = 22;
const DT_FLAGS: i64 = 30;
const DF_TEXTREL: u64 = 0x4;

/// Address ranges `[start, end)` of one loaded object's segments.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Segments {
    /// Read-only `PT_LOAD` segments (mapped from the file, never writable).
    read_only: Vec<(usize, usize)>,
    /// Writable `PT_LOAD` segments and `PT_GNU_RELRO` ranges: possibly written.
    written: Vec<(usize, usize)>,
}

/// Releases resident pages of never-written parts of loaded objects; they fault back in as they
/// are used. Returns the number of bytes covered. Best effort: a failed `madvise` only costs
/// memory, so it is logged at debug level.
pub fn trim_code_residency() -> usize {
    let page = page_size();
    let mut released = 0;
    for (start, end) in trimmable(&loaded_segments(), page) {
        let Some(addr) = std::ptr::NonNull::new(start as *mut c_void) else {
            continue;
        };
        // SAFETY: [start, end) lies inside a read-only PT_LOAD segment of an object the dynamic
        // loader mapped from its file, on whole pages that share nothing with a writable segment
        // or a RELRO range (`trimmable`). Such pages are never written, so dropping them only
        // makes the next access map the identical page-cache page again.
        let result = unsafe {
            nix::sys::mman::madvise(addr, end - start, nix::sys::mman::MmapAdvise::MADV_DONTNEED)
        };
        match result {
            Ok(()) => released += end - start,
            Err(e) => tracing::debug!("madvise(MADV_DONTNEED) on {start:#x}-{end:#x} failed: {e}"),
        }
    }
    tracing::debug!(
        "released the resident pages of {} KiB of never-written mappings",
        released / 1024
    );
    released
}

/// Whole pages of read-only segments that touch no written range of any object.
fn trimmable(objects: &[Segments], page: usize) -> Vec<(usize, usize)> {
    let down = |a: usize| a & !(page - 1);
    let up = |a: usize| a.saturating_add(page - 1) & !(page - 1);
    let written: Vec<(usize, usize)> = objects
        .iter()
        .flat_map(|o| o.written.iter())
        .map(|&(s, e)| (down(s), up(e)))
        .collect();
    let mut out = Vec::new();
    for &(s, e) in objects.iter().flat_map(|o| o.read_only.iter()) {
        let (mut start, end) = (up(s), down(e));
        if start >= end {
            continue;
        }
        // Cut out every written range (rounded outwards to pages) that overlaps.
        let mut cuts: Vec<(usize, usize)> = written
            .iter()
            .copied()
            .filter(|&(ws, we)| ws < end && we > start)
            .collect();
        cuts.sort_unstable();
        for (ws, we) in cuts {
            if ws > start {
                out.push((start, ws.min(end)));
            }
            start = start.max(we);
            if start >= end {
                break;
            }
        }
        if start < end {
            out.push((start, end));
        }
    }
    out
}

fn page_size() -> usize {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(n)) if n > 0 => usize::try_from(n).unwrap_or(4096),
        _ => 4096,
    }
}

/// The segments of every object the dynamic loader has mapped (the executable, libc, ...),
/// except the vDSO, which is not backed by a file.
fn loaded_segments() -> Vec<Segments> {
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: the loader passes a valid `dl_phdr_info` for the duration of the call and
        // `data` is the `Vec` handed to `dl_iterate_phdr` below, not aliased elsewhere.
        let (info, objects) = unsafe { (&*info, &mut *(data as *mut Vec<Segments>)) };
        if !info.dlpi_name.is_null() {
            // SAFETY: a non-null `dlpi_name` is a NUL-terminated string owned by the loader.
            let name = unsafe { CStr::from_ptr(info.dlpi_name) }.to_bytes();
            if name.starts_with(b"linux-vdso") || name.starts_with(b"linux-gate") {
                return 0;
            }
        }
        // The dynamic-section walk below reads ELF64 entries.
        if info.dlpi_phdr.is_null() || cfg!(not(target_pointer_width = "64")) {
            return 0;
        }
        // SAFETY: `dlpi_phdr` points to `dlpi_phnum` program headers of this object.
        let headers =
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        let base = info.dlpi_addr as usize;
        // An object with text relocations has its read-only segments written by the loader:
        // leave the whole object alone (x86-64 toolchains refuse these in PIE; belt and braces).
        for h in headers.iter().filter(|h| h.p_type == libc::PT_DYNAMIC) {
            let dynamic = base.wrapping_add(h.p_vaddr as usize) as *const Elf64Dyn;
            let entries = h.p_memsz as usize / std::mem::size_of::<Elf64Dyn>();
            for i in 0..entries {
                // SAFETY: PT_DYNAMIC describes an array of `entries` Elf64_Dyn mapped in memory
                // (in a loaded segment of this object), terminated by DT_NULL.
                let entry = unsafe { &*dynamic.add(i) };
                match entry.d_tag {
                    DT_NULL => break,
                    DT_TEXTREL => return 0,
                    DT_FLAGS if entry.d_val & DF_TEXTREL != 0 => return 0,
                    _ => {}
                }
            }
        }
        let mut segments = Segments::default();
        for h in headers {
            let start = base.wrapping_add(h.p_vaddr as usize);
            let range = (start, start.wrapping_add(h.p_memsz as usize));
            if h.p_type == libc::PT_GNU_RELRO
                || (h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W != 0)
            {
                segments.written.push(range);
            } else if h.p_type == libc::PT_LOAD && h.p_filesz == h.p_memsz {
                // A read-only segment with memsz > filesz would have zero-filled (anonymous)
                // pages at its end; there are none in practice, and skipping keeps the rule
                // simple: only pages that are pure file content.
                segments.read_only.push(range);
            }
        }
        objects.push(segments);
        0
    }
    let mut objects: Vec<Segments> = Vec::new();
    // SAFETY: `visit` matches the callback signature and only touches `objects`.
    unsafe {
        libc::dl_iterate_phdr(
            Some(visit),
            &mut objects as *mut Vec<Segments> as *mut c_void,
        );
    }
    objects
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 0x1000;

    #[test]
    fn read_only_segments_are_shrunk_to_whole_pages() {
        let o = Segments {
            read_only: vec![(0x1010, 0x5010)],
            written: vec![],
        };
        assert_eq!(trimmable(&[o], PAGE), vec![(0x2000, 0x5000)]);
    }

    #[test]
    fn a_relro_range_inside_a_read_only_segment_is_cut_out_with_its_pages() {
        let o = Segments {
            read_only: vec![(0x0, 0x10000)],
            written: vec![(0x4100, 0x6100)],
        };
        assert_eq!(
            trimmable(&[o], PAGE),
            vec![(0x0, 0x4000), (0x7000, 0x10000)]
        );
    }

    #[test]
    fn a_page_shared_with_another_objects_writable_segment_is_kept() {
        let exe = Segments {
            read_only: vec![(0x10000, 0x13000)],
            written: vec![],
        };
        let lib = Segments {
            read_only: vec![],
            written: vec![(0x12800, 0x20000)],
        };
        assert_eq!(trimmable(&[exe, lib], PAGE), vec![(0x10000, 0x12000)]);
    }

    #[test]
    fn a_segment_smaller_than_a_page_is_left_alone() {
        let o = Segments {
            read_only: vec![(0x1100, 0x1f00)],
            written: vec![],
        };
        assert!(trimmable(&[o], PAGE).is_empty());
    }

    #[test]
    fn this_process_has_a_read_only_segment_and_a_relro_range() {
        let objects = loaded_segments();
        assert!(objects.iter().any(|o| !o.read_only.is_empty()));
        assert!(objects.iter().any(|o| !o.written.is_empty()));
    }

    #[test]
    fn trimming_keeps_the_process_working() {
        let text = format!("{:?}", (0..100).collect::<Vec<u32>>());
        assert!(trim_code_residency() > 0);
        // Code, read-only data and relocated data are all intact afterwards.
        assert_eq!(format!("{:?}", (0..100).collect::<Vec<u32>>()), text);
        assert_eq!("vipd".parse::<String>().ok().as_deref(), Some("vipd"));
        let boxed: Box<dyn Fn(u32) -> u32> = Box::new(|x| x + 1);
        assert_eq!(boxed(41), 42);
    }
}

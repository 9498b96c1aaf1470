//! A log file read through a memory map, for `scan`: the kernel's page cache is parsed in
//! place, without the copy `read` makes into a buffer of our own (a tenth of a scan's CPU
//! time), and without buffers handed between the scan's threads.
//!
//! A file mapped this way can shrink while it is read (`logrotate`'s `copytruncate`, an
//! operator's `: > kern.log`); a read of a page past its new end then raises `SIGBUS`, which
//! would end the process. A guard catches it: the pages from the faulting one to the end of
//! the map are replaced by zeros, the map remembers where its file was cut, and the scan reads
//! on and reports the file as truncated, as a read that meets the new end of the file does.

use std::fs::File;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use memmap2::{Mmap, UncheckedAdvice};

/// A regular file mapped read-only, guarded against being truncated while it is read.
#[derive(Debug)]
pub struct MappedFile {
    map: Mmap,
    /// The file, to ask its length again.
    file: File,
    /// This map's entry in [`GUARDED`].
    slot: usize,
}

/// One guarded map: where it starts and how long it is (0 when the entry is free), and the
/// offset of the first page found past the end of its file (`usize::MAX`: none).
struct Guarded {
    start: AtomicUsize,
    len: AtomicUsize,
    cut: AtomicUsize,
}

/// Maps guarded at once: a scan maps one file at a time; more than this are read instead.
const SLOTS: usize = 16;

#[allow(clippy::declare_interior_mutable_const)] // a template for the array, never shared
const FREE: Guarded = Guarded {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    cut: AtomicUsize::new(usize::MAX),
};

static GUARDED: [Guarded; SLOTS] = [FREE; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();
/// Whether the handler is in place (set once by [`INSTALL`]).
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// What `SIGBUS` did before the guard: restored for a fault that is not in a guarded map.
static mut PREVIOUS: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::zeroed();

/// The `SIGBUS` handler. Async-signal-safe: atomics, `mmap` and `sigaction` only.
extern "C" fn on_sigbus(_signal: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Relaxed);
    for guarded in &GUARDED {
        let start = guarded.start.load(Ordering::SeqCst);
        let len = guarded.len.load(Ordering::SeqCst);
        if len == 0 || addr < start || addr >= start + len {
            continue;
        }
        let from = addr & !(page - 1);
        let end = (start + len).next_multiple_of(page);
        // SAFETY: [from, end) lies within the guarded map, which its `MappedFile` owns until
        // it frees the entry; zero pages in place of file pages past the file's end.
        let zeros = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                end - from,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zeros != libc::MAP_FAILED {
            guarded.cut.fetch_min(from - start, Ordering::SeqCst);
            return; // the read is made again, and finds zeros
        }
    }
    // Not a guarded map: what SIGBUS did before, when the faulting read is made again.
    // SAFETY: PREVIOUS was written before the handler was installed.
    unsafe {
        libc::sigaction(
            libc::SIGBUS,
            (&raw const PREVIOUS).cast::<libc::sigaction>(),
            std::ptr::null_mut(),
        );
    }
}

/// Install the handler once per process; false when it could not be.
fn install() -> bool {
    INSTALL.call_once(|| {
        // SAFETY: sysconf and sigaction with valid arguments; PREVIOUS is written here only,
        // before the handler that reads it is in place.
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            if page > 0 {
                PAGE.store(page as usize, Ordering::Relaxed);
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            let previous = (&raw mut PREVIOUS).cast::<libc::sigaction>();
            if libc::sigaction(libc::SIGBUS, &action, previous) == 0 {
                INSTALLED.store(true, Ordering::SeqCst);
            }
        }
    });
    INSTALLED.load(Ordering::SeqCst)
}

impl MappedFile {
    /// Map `file` when it is a regular file that is not empty and the guard can watch it;
    /// `None` otherwise (a pipe, a `/proc` file, an empty file, too many maps at once): the
    /// caller reads it instead.
    pub fn open(file: File) -> Option<MappedFile> {
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() == 0 || !install() {
            return None;
        }
        // SAFETY: the map is read-only and private; what another process may do to the file
        // meanwhile is the guard's concern (truncation) or shows as other bytes (writes): the
        // bytes are parsed as untrusted input, nothing relies on them staying the same.
        let map = unsafe { memmap2::MmapOptions::new().map(&file) }.ok()?;
        if map.is_empty() {
            return None;
        }
        let start = map.as_ptr() as usize;
        let slot = GUARDED.iter().position(|g| {
            g.len
                .compare_exchange(0, map.len(), Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        })?;
        GUARDED[slot].cut.store(usize::MAX, Ordering::SeqCst);
        GUARDED[slot].start.store(start, Ordering::SeqCst);
        Some(MappedFile { map, file, slot })
    }

    /// The file's bytes as they were mapped (its length when it was opened).
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// How many bytes of the map the file still holds: its length now (a system call), at
    /// most the map's, and at most where a read found it cut. Bytes of the map past it may
    /// have read as zeros: a block read before this was asked and reaching past it is
    /// read again up to it.
    pub fn held(&self) -> usize {
        let cut = GUARDED[self.slot].cut.load(Ordering::SeqCst);
        let now = self.file.metadata().map_or(0, |m| m.len());
        cut.min(usize::try_from(now).unwrap_or(usize::MAX))
            .min(self.map.len())
    }

    /// The pages wholly inside `range` are read: let them go from this process's resident
    /// memory (the page cache keeps them; a later read maps them again). Keeps the scan's
    /// peak RSS to the blocks in flight instead of the whole file.
    pub fn release(&self, range: std::ops::Range<usize>) {
        let page = PAGE.load(Ordering::Relaxed);
        let base = self.map.as_ptr() as usize;
        let start = (base + range.start).next_multiple_of(page) - base;
        let end = ((base + range.end.min(self.map.len())) & !(page - 1)).saturating_sub(base);
        if end > start {
            // SAFETY: for a private read-only file map, dropping pages only makes the next
            // read fault them in again from the file; no `&[u8]` sees anything but its bytes.
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // The map goes after this (its field is dropped after `drop` returns): stop guarding
        // its addresses first.
        let guarded = &GUARDED[self.slot];
        guarded.start.store(0, Ordering::SeqCst);
        guarded.len.store(0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_file_cut_short_under_the_map_reads_as_zeros_past_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kern.log");
        let page = PAGE.load(Ordering::Relaxed).max(4096);
        let text: Vec<u8> = (0..5 * page).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&text)
            .unwrap();
        let file = File::open(&path).unwrap();
        let map = MappedFile::open(file).expect("a regular file maps");
        assert_eq!(map.bytes(), &text[..]);
        assert_eq!(map.held(), text.len());

        // Cut to a page and a half: the half page past the end reads as zeros (the kernel's
        // own rule for the last page), the pages after it fault and the guard steps in.
        let keep = page + page / 2;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(keep as u64)
            .unwrap();
        assert_eq!(map.held(), keep);
        let bytes = map.bytes();
        assert_eq!(&bytes[..keep], &text[..keep]);
        assert!(bytes[keep..].iter().all(|&b| b == 0), "zeros past the end");
        assert_eq!(GUARDED[map.slot].cut.load(Ordering::SeqCst), 2 * page);
        // Grown again: what was read as zeros stays cut.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&text[keep..])
            .unwrap();
        assert_eq!(map.held(), 2 * page);
        // The other maps are guarded as before.
        let other = MappedFile::open(File::open(&path).unwrap()).unwrap();
        assert_eq!(other.bytes(), &text[..]);
        assert_eq!(other.held(), text.len());
    }

    #[test]
    fn only_regular_files_that_hold_bytes_are_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.log");
        std::fs::File::create(&empty).unwrap();
        assert!(MappedFile::open(File::open(&empty).unwrap()).is_none());
        assert!(MappedFile::open(File::open("/proc/self/status").unwrap()).is_none());
        assert!(MappedFile::open(File::open(dir.path()).unwrap()).is_none());
    }

    #[test]
    fn released_pages_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kern.log");
        let text: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&text)
            .unwrap();
        let map = MappedFile::open(File::open(&path).unwrap()).unwrap();
        assert_eq!(map.bytes(), &text[..]);
        map.release(3..99_999);
        map.release(0..usize::MAX);
        assert_eq!(map.bytes(), &text[..]);
    }
}

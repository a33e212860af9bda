//! Mapped inputs that shrink: a `SIGBUS` becomes a flag, never a crash.
//!
//! Reading a page of a memory-mapped file past its current end raises
//! `SIGBUS` (another process truncated the file after it was mapped). Each
//! mapped input registers its address range here ([`Guard`]); one process
//! wide handler, for a fault inside a registered range, maps anonymous zero
//! pages over the rest of that range (`MAP_FIXED`), so the faulting read
//! goes on and reads zeros, and sets the range's flag. The job checks the
//! flag ([`Guard::faulted`]) before it commits any output or report, and
//! fails cleanly: what was read from the zero pages is never published.
//!
//! A fault outside every registered range goes to the handler that was
//! installed before (the Rust runtime's stack-overflow handler), or to the
//! default action. The common path costs nothing: no check per read.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::OnceLock;

/// How many mappings can be guarded at once (inputs open at the same
/// time: one per inventory thread, plus the writer's and a read-back).
const SLOTS: usize = 256;

struct Range {
    used: AtomicBool,
    start: AtomicUsize,
    end: AtomicUsize,
    faulted: AtomicBool,
    /// A private (copy-on-write) mapping holding pages changed in memory:
    /// not one whose pages may be handed back ([`is_mapped`]).
    private: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Range = Range {
    used: AtomicBool::new(false),
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
    private: AtomicBool::new(false),
};

static RANGES: [Range; SLOTS] = [FREE; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// The handler found in place when ours was installed.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// One registered mapping; unregistered when dropped (drop it before the
/// mapping is unmapped).
pub struct Guard {
    slot: usize,
}

impl Guard {
    /// Registers `bytes` (a read-only file mapping). `None` when the
    /// handler cannot be installed or every slot is taken: the caller then
    /// does not map the file.
    pub fn register(bytes: &[u8]) -> Option<Guard> {
        Guard::register_as(bytes, false)
    }

    /// [`Guard::register`] for a private copy-on-write file mapping whose
    /// pages were changed in memory (a metadata cache image put back,
    /// `crate::pipeline`): guarded alike, but never taken for a plain file
    /// mapping by [`is_mapped`] (handing its pages back would drop the
    /// changes).
    pub fn register_private(bytes: &[u8]) -> Option<Guard> {
        Guard::register_as(bytes, true)
    }

    fn register_as(bytes: &[u8], private: bool) -> Option<Guard> {
        if !*INSTALLED.get_or_init(install) {
            return None;
        }
        let start = bytes.as_ptr() as usize;
        let end = start.checked_add(bytes.len())?;
        for (slot, r) in RANGES.iter().enumerate() {
            if r.used.compare_exchange(false, true, SeqCst, SeqCst).is_ok() {
                r.faulted.store(false, SeqCst);
                r.private.store(private, SeqCst);
                r.end.store(end, SeqCst);
                r.start.store(start, SeqCst);
                return Some(Guard { slot });
            }
        }
        None
    }

    /// True once a read of the mapping faulted (the file shrank).
    pub fn faulted(&self) -> bool {
        RANGES
            .get(self.slot)
            .is_some_and(|r| r.faulted.load(SeqCst))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(r) = RANGES.get(self.slot) {
            r.start.store(0, SeqCst);
            r.end.store(0, SeqCst);
            r.used.store(false, SeqCst);
        }
    }
}

/// True if `bytes` lies wholly inside a registered mapping (so it is file
/// pages, not memory of the process: see [`crate::pipeline::release`]).
pub fn is_mapped(bytes: &[u8]) -> bool {
    let start = bytes.as_ptr() as usize;
    let Some(end) = start.checked_add(bytes.len()) else {
        return false;
    };
    RANGES.iter().any(|r| {
        r.used.load(SeqCst)
            && !r.private.load(SeqCst)
            && r.start.load(SeqCst) <= start
            && end <= r.end.load(SeqCst)
    })
}

/// The page size (4096 until the handler is installed).
pub fn page_size() -> usize {
    PAGE.load(SeqCst)
}

fn install() -> bool {
    // SAFETY: plain libc calls on zeroed, then filled, sigaction structs.
    unsafe {
        let page = libc::sysconf(libc::_SC_PAGESIZE);
        if let Ok(p) = usize::try_from(page) {
            if p.is_power_of_two() {
                PAGE.store(p, SeqCst);
            }
        }
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
            return false;
        }
        let _ = PREVIOUS.set(old);
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = on_sigbus as *const () as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut new.sa_mask);
        libc::sigaction(libc::SIGBUS, &new, std::ptr::null_mut()) == 0
    }
}

/// The signal handler: async-signal-safe (atomics, `mmap`, `sigaction`).
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = if info.is_null() {
        0
    } else {
        unsafe { (*info).si_addr() as usize }
    };
    let page = PAGE.load(SeqCst);
    for r in &RANGES {
        if !r.used.load(SeqCst) {
            continue;
        }
        let (start, end) = (r.start.load(SeqCst), r.end.load(SeqCst));
        if addr < start || addr >= end {
            continue;
        }
        let from = addr & !(page - 1);
        let to = end.saturating_add(page - 1) & !(page - 1);
        // A private mapping may be written to (a cache image put back while
        // it is still writable): its zero pages are writable too, or the
        // retried write would fault again (SIGSEGV).
        let prot = if r.private.load(SeqCst) {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: [from, to) lies inside the registered mapping (mappings
        // are page-aligned and span whole pages); replacing it with zero
        // pages keeps it valid until it is unmapped.
        let p = unsafe {
            libc::mmap(
                from as *mut c_void,
                to - from,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            r.faulted.store(true, SeqCst);
            return;
        }
        break;
    }
    chain(sig, info, ctx);
}

/// Not ours: the previous handler, or the default action (the faulting
/// instruction runs again and the process dies of the signal as before).
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    if let Some(old) = PREVIOUS.get() {
        let h = old.sa_sigaction;
        if h != libc::SIG_DFL && h != libc::SIG_IGN {
            // SAFETY: `h` is the handler the process had installed, called
            // the way it was registered (with or without SA_SIGINFO).
            unsafe {
                if old.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
                        std::mem::transmute(h);
                    f(sig, info, ctx);
                } else {
                    let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
                    f(sig);
                }
            }
            return;
        }
    }
    // SAFETY: resetting the disposition of SIGBUS to the default.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut dfl.sa_mask);
        libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A mapped file truncated to nothing reads as zeros and raises the
    /// flag instead of killing the process.
    #[test]
    fn truncated_mapping_faults_into_the_flag() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![7u8; 64 << 10]).unwrap();
        // SAFETY: test file, private to this test.
        let map = unsafe { memmap2::Mmap::map(&f).unwrap() };
        let g = Guard::register(&map).unwrap();
        assert_eq!(map[100], 7);
        assert!(!g.faulted());
        f.set_len(0).unwrap();
        let sum: u64 = map.iter().map(|&b| u64::from(b)).sum();
        assert_eq!(sum, 0);
        assert!(g.faulted());
        drop(g);
        drop(map);
    }

    /// A private (copy-on-write) mapping registered before it is written
    /// to: a write to a page the truncation removed raises the flag and
    /// lands in a writable zero page, instead of faulting again.
    #[test]
    fn truncated_private_mapping_takes_writes() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![7u8; 64 << 10]).unwrap();
        // SAFETY: test file, private to this test.
        let mut map = unsafe { memmap2::MmapOptions::new().map_copy(&f).unwrap() };
        let g = Guard::register_private(&map).unwrap();
        assert!(!is_mapped(&map));
        f.set_len(0).unwrap();
        map[40 << 10] = 9;
        assert!(g.faulted());
        assert_eq!(map[40 << 10], 9);
        drop(g);
        drop(map);
    }
}

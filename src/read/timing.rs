//! Where the time of the data path goes (`bench/run`'s data-heavy case):
//! nanoseconds spent decoding chunks (summed over threads), writing data
//! (the thread that owns libhdf5) and waiting for verification (that
//! thread, idle). Cheap counters, always on; printed by `salvage` on
//! stderr when `H5SALVAGE_TIMINGS` is set.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

pub static DECODE_NS: AtomicU64 = AtomicU64::new(0);
pub static WRITE_NS: AtomicU64 = AtomicU64::new(0);
pub static WAIT_NS: AtomicU64 = AtomicU64::new(0);

/// CPU time of the whole process (all threads, user + system) in seconds,
/// for benchmarks (`examples/decode_floor.rs`, `examples/carve_bench.rs`).
pub fn process_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Adds the time since `start` to `counter`.
pub fn add(counter: &AtomicU64, start: Instant) {
    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    counter.fetch_add(ns, Relaxed);
}

/// Times `f` into `counter`.
pub fn timed<T>(counter: &AtomicU64, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let t = f();
    add(counter, start);
    t
}

/// One line for stderr when `H5SALVAGE_TIMINGS` is set (else nothing):
/// `timings: decode_s=.. write_s=.. wait_s=.. threads=..`.
pub fn print_if_asked() {
    if std::env::var_os("H5SALVAGE_TIMINGS").is_none() {
        return;
    }
    let s = |c: &AtomicU64| c.load(Relaxed) as f64 / 1e9;
    eprintln!(
        "timings: decode_s={:.3} write_s={:.3} wait_s={:.3} threads={}",
        s(&DECODE_NS),
        s(&WRITE_NS),
        s(&WAIT_NS),
        rayon::current_num_threads()
    );
}

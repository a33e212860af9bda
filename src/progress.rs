//! Progress of long work, drawn on a terminal: a bar (or, for work without
//! a count, a spinner) on stderr with indicatif.
//!
//! The library only reports; nothing is drawn unless the command line
//! called [`enable`] (it does when stderr is a terminal and `--json` is not
//! given). Small jobs draw nothing: a bar appears only once the work has
//! run for [`DELAY`] (`H5SALVAGE_PROGRESS_DELAY_MS` overrides it), and a spinner only for inputs of [`SPIN_BYTES`] or
//! more. Python callers of the library get no progress output.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

static ENABLED: AtomicBool = AtomicBool::new(false);
/// One bar or spinner on the terminal at a time: the first made (the
/// outermost work, e.g. merge's bar over its inputs) holds the line, and
/// those made while it lives (salvage of one input, scans in worker
/// threads) draw nothing.
static HELD: AtomicBool = AtomicBool::new(false);

/// Takes the terminal line if progress is enabled and nobody holds it.
fn claim() -> bool {
    enabled()
        && HELD
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
}

fn release() {
    HELD.store(false, Ordering::Release);
}

/// Work shorter than this draws nothing.
pub const DELAY: Duration = Duration::from_millis(500);

/// [`DELAY`], or `H5SALVAGE_PROGRESS_DELAY_MS` when set (the tests set 0
/// so that a bar appears whatever the machine's speed).
fn delay() -> Duration {
    static D: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *D.get_or_init(|| {
        std::env::var("H5SALVAGE_PROGRESS_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(DELAY, Duration::from_millis)
    })
}
/// Inputs below this size get no spinner (they take well under a second).
pub const SPIN_BYTES: u64 = 16 << 20;

/// Turns progress drawing on or off for the whole process.
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A counted piece of work (objects written, inputs merged). Cleared from
/// the terminal when dropped.
pub struct Bar {
    total: u64,
    what: String,
    started: Instant,
    done: u64,
    shown: Mutex<Option<ProgressBar>>,
    active: bool,
}

impl Bar {
    /// `total` steps of `what` ("merging inputs").
    pub fn new(total: u64, what: &str) -> Bar {
        Bar {
            total,
            what: what.to_string(),
            started: Instant::now(),
            done: 0,
            shown: Mutex::new(None),
            active: total > 1 && claim(),
        }
    }

    /// Steps of `what` with no known total (objects written while a file
    /// is walked): the count is shown, without a bar.
    pub fn open_ended(what: &str) -> Bar {
        Bar {
            total: 0,
            what: what.to_string(),
            started: Instant::now(),
            done: 0,
            shown: Mutex::new(None),
            active: claim(),
        }
    }

    /// One more step done.
    pub fn inc(&mut self) {
        self.done += 1;
        if !self.active || self.started.elapsed() < delay() {
            return;
        }
        let Ok(mut shown) = self.shown.lock() else {
            return;
        };
        let pb = shown.get_or_insert_with(|| {
            let (pb, template) = match self.total {
                0 => (ProgressBar::new_spinner(), "{msg}: {pos} ({elapsed})"),
                n => (
                    ProgressBar::new(n),
                    "{msg} [{bar:40}] {pos}/{len} ({elapsed}, {eta} left)",
                ),
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                pb.set_style(style.progress_chars("=> "));
            }
            pb.set_message(self.what.clone());
            pb
        });
        pb.set_position(self.done);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Ok(Some(pb)) = self.shown.lock().map(|mut s| s.take()) {
            pb.finish_and_clear();
        }
        if self.active {
            release();
        }
    }
}

/// A spinner with a message for work that has no count (walking and
/// carving one file). Cleared when dropped.
pub struct Spinner(Option<ProgressBar>);

impl Spinner {
    /// `what` ("carving worker_3.h5") for an input of `bytes` bytes.
    pub fn new(what: &str, bytes: u64) -> Spinner {
        if bytes < SPIN_BYTES || !claim() {
            return Spinner(None);
        }
        let pb = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            pb.set_style(style);
        }
        pb.set_message(what.to_string());
        pb.enable_steady_tick(Duration::from_millis(120));
        Spinner(Some(pb))
    }

    /// Changes the message (the next stage of the same work).
    pub fn set(&self, what: &str) {
        if let Some(pb) = &self.0 {
            pb.set_message(what.to_string());
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(pb) = self.0.take() {
            pb.finish_and_clear();
            release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_drawn_unless_enabled() {
        let mut b = Bar::new(10, "x");
        for _ in 0..10 {
            b.inc();
        }
        assert!(b.shown.lock().unwrap().is_none());
        assert!(Spinner::new("y", u64::MAX).0.is_none());
    }
}

//! The pipeline of one input: opening it (read-only, never modified; a
//! changing input is noticed), then its inventory: walk, carve when the
//! walk found damage, [`crate::carve::combine`] the two, and the search for
//! chunks no index lists ([`scan_bytes`], [`scan_path`], [`Input::inventory`]).
//!
//! Small files (up to [`COPY_LIMIT`]) are read into memory, larger ones are
//! memory-mapped read-only (zero-copy). A file with a metadata cache image
//! gets the image's entries put back at their own addresses in memory
//! before anything reads it (a mapped one through a private copy-on-write
//! mapping: only the pages they land on are copied). A mapped file that
//! another process truncates while it is read would raise SIGBUS: the
//! mapping is registered with [`crate::sigbus`], which turns the fault into
//! zero pages and a flag.
//! [`Input::check_unchanged`] reports that flag, and also a file whose
//! size or modification time changed since it was opened (copied or
//! mapped): every job calls it before it commits an output or a report.
//!
//! Before reading, the file's lock is tested the way libhdf5 (1.10 and
//! later) takes it: a non-blocking shared `flock`, released at once. An
//! exclusive lock held by another process means a writer still has the
//! file open ([`Input::open_for_write`]): what is read is a snapshot.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use memmap2::{Mmap, MmapOptions};

use crate::follow::cache_image::Overlay;
use crate::inventory::{CacheImageInfo, Inventory, ObjectSink, Summary, Verdict};
use crate::sigbus::Guard;

/// Files up to this size are copied into memory instead of mapped. Larger
/// ones are mapped, and the stages hand pages they have read back to the
/// kernel ([`release`]): resident memory does not grow with the file
/// (issue 15: a copy made peak memory grow with the file even when its
/// metadata was small).
pub const COPY_LIMIT: u64 = 1 << 20;

/// What identifies the state of a file: a changed stamp means it was
/// written to (or replaced) since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub len: u64,
    pub mtime: (i64, i64),
}

impl Stamp {
    pub fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }
}

/// The input changed while it was read: nothing derived from it may be
/// published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputChanged {
    /// Its size when opened.
    pub was: u64,
    /// Its size now (`None`: it can no longer be examined).
    pub now: Option<u64>,
}

impl std::fmt::Display for InputChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.now {
            Some(n) => write!(
                f,
                "input changed while being read: it is now {n} bytes ({} when opened)",
                self.was
            ),
            None => write!(
                f,
                "input changed while being read: it can no longer be examined ({} bytes when opened)",
                self.was
            ),
        }
    }
}

impl std::error::Error for InputChanged {}

impl From<InputChanged> for io::Error {
    fn from(e: InputChanged) -> io::Error {
        io::Error::other(e)
    }
}

/// Hands the pages wholly inside `bytes` back to the kernel when `bytes`
/// lies in a mapped input (`MADV_DONTNEED` on a read-only shared file
/// mapping): they stay in the page cache, and a later read faults them in
/// again with the same contents (a file changed meanwhile is caught by
/// [`Input::check_unchanged`] as always). The data path calls it on chunks
/// it has written, so a job's resident memory does not grow with the data
/// it copies. Does nothing for an input read into memory.
pub fn release(bytes: &[u8]) {
    let page = crate::sigbus::page_size();
    let start = bytes.as_ptr() as usize;
    let Some(end) = start.checked_add(bytes.len()) else {
        return;
    };
    let from = start.saturating_add(page - 1) & !(page - 1);
    let to = end & !(page - 1);
    if to <= from || !crate::sigbus::is_mapped(bytes) {
        return;
    }
    // SAFETY: [from, to) is whole pages inside a live read-only file
    // mapping (checked above); MADV_DONTNEED on it only drops this
    // process's page-table entries, the contents read afterwards are the
    // file's, as before.
    unsafe {
        libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_DONTNEED);
    }
}

/// Asks the kernel to start reading the pages under `bytes` into the page
/// cache when `bytes` lies in a mapped input (`MADV_WILLNEED`: the reads
/// are started, not waited for), so that decoding threads reaching them
/// later do not each stop on a page fault that reads from disk. Changes
/// nothing that is read; does nothing for an input read into memory or
/// pages already cached.
pub fn read_ahead(bytes: &[u8]) {
    let page = crate::sigbus::page_size();
    let start = bytes.as_ptr() as usize;
    let Some(end) = start.checked_add(bytes.len()) else {
        return;
    };
    // Whole pages around the bytes: a mapping starts on a page and covers
    // the page its last byte is on.
    let from = start & !(page - 1);
    let Some(to) = end.checked_add(page - 1).map(|e| e & !(page - 1)) else {
        return;
    };
    if bytes.is_empty() || !crate::sigbus::is_mapped(bytes) {
        return;
    }
    // SAFETY: [from, to) is the whole pages of a live read-only file
    // mapping that hold `bytes` (checked above); MADV_WILLNEED only starts
    // reading the file's pages into the page cache.
    unsafe {
        libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_WILLNEED);
    }
}

/// Hands back, every [`BEHIND_STEP`] bytes, the pages a forward pass over
/// `bytes` has left behind (see [`release`]): a pass over a whole mapped
/// file (the signature pass, the chunk search) then holds a bounded number
/// of its pages resident instead of the file. Reading a released page
/// again only faults it in again: never a change of result.
pub struct Behind {
    mark: usize,
}

/// Bytes a forward pass leaves behind before [`Behind`] releases them.
pub const BEHIND_STEP: usize = 64 << 20;

impl Behind {
    /// Starts at `from` (an index into the bytes the pass walks).
    pub fn new(from: usize) -> Behind {
        Behind { mark: from }
    }

    /// The pass has reached `pos`: releases what lies behind it once that
    /// is at least [`BEHIND_STEP`] bytes.
    pub fn reached(&mut self, bytes: &[u8], pos: usize) {
        if pos >= self.mark.saturating_add(BEHIND_STEP) {
            if let Some(done) = bytes.get(self.mark..pos) {
                release(done);
            }
            self.mark = pos;
        }
    }
}

/// A forward search over the whole of `bytes` (a signature pass) run in
/// blocks of `step` bytes ([`BEHIND_STEP`] in use), each block's pages released once it is
/// searched (see [`release`]), so the pass holds a bounded number of pages
/// resident instead of the file (an input of one block keeps its pages: the
/// bound is the same). `search(slice, at, end)` searches `slice`
/// = `bytes[at..]` up to `end` plus `overlap` bytes (a match starting
/// before `end` is whole in it), reports the matches that start before
/// `end`, and returns where the next block starts: `end`, or the end of
/// its last match when that lies beyond (non-overlapping matches, as one
/// pass over the whole would give), or `Break` to stop.
pub fn in_blocks(
    bytes: &[u8],
    step: usize,
    overlap: usize,
    mut search: impl FnMut(&[u8], usize, usize) -> std::ops::ControlFlow<(), usize>,
) {
    let mut at = 0usize;
    while at < bytes.len() {
        let end = at.saturating_add(step.max(1)).min(bytes.len());
        let stop = end.saturating_add(overlap).min(bytes.len());
        let next = search(&bytes[at..stop], at, end);
        // An input of one block is resident whole during the pass anyway:
        // handing its pages back would only make the next pass (and the
        // describing of what this one found) fault them in again.
        if bytes.len() > step {
            release(&bytes[at..end]);
        }
        match next {
            std::ops::ControlFlow::Break(()) => return,
            std::ops::ControlFlow::Continue(n) => at = n.max(end),
        }
    }
}

/// Objects a stage reads (walk) or writes (salvage) between two
/// [`release`]s of the whole input: headers and values lie all over a
/// file, and each page fault maps its neighbours too.
pub const RELEASE_EVERY: usize = 1024;

enum Bytes {
    Copied(Vec<u8>),
    /// The guard is dropped before the map (see [`Input`]'s `Drop`).
    Mapped(Option<Guard>, Mmap),
}

/// The bytes of one input file, with what is needed to tell whether it
/// changed while it was read.
pub struct Input {
    bytes: Bytes,
    file: File,
    opened: Stamp,
    open_for_write: bool,
    /// The file's metadata cache image, already applied to `bytes`.
    cache_image: Option<Overlay>,
}

/// `bytes` with the file's metadata cache image applied
/// ([`crate::walk::cache_image`]): the entries' images copied to their own
/// addresses, in memory. Bytes read into memory are changed in place; a
/// mapped file is mapped again privately (copy-on-write: only the pages
/// the entries land on are copied, the rest stay the file's pages). The
/// input file is never written.
fn with_cache_image(
    bytes: Bytes,
    file: &mut File,
    len: u64,
) -> io::Result<(Bytes, Option<Overlay>)> {
    let overlay = {
        let view: &[u8] = match &bytes {
            Bytes::Copied(v) => v,
            Bytes::Mapped(_, m) => m,
        };
        crate::walk::cache_image(view)
    };
    let Some(o) = overlay.as_ref().filter(|o| !o.relocations.is_empty()) else {
        return Ok((bytes, overlay));
    };
    let bytes = match bytes {
        Bytes::Copied(mut v) => {
            o.apply(&mut v);
            Bytes::Copied(v)
        }
        Bytes::Mapped(guard, map) => {
            drop(guard);
            drop(map);
            // SAFETY: a private mapping: the changes below stay in this
            // process's memory, the file is never written; a truncation by
            // another process is caught by the guard, registered before the
            // first write (its zero pages are writable for a private range).
            let mut private = unsafe { MmapOptions::new().map_copy(&*file)? };
            let guard = Guard::register_private(&private);
            // The file as long as when opened, now that it is mapped: a
            // shorter one (truncated meanwhile) is read into memory instead
            // (and reported changed by `check_unchanged`).
            let whole = file.metadata().is_ok_and(|m| m.len() >= len);
            match guard.filter(|_| whole) {
                Some(g) => {
                    o.apply(&mut private);
                    Bytes::Mapped(Some(g), private.make_read_only()?)
                }
                None => {
                    drop(private);
                    let mut v = read_all(file, len)?;
                    o.apply(&mut v);
                    Bytes::Copied(v)
                }
            }
        }
    };
    Ok((bytes, overlay))
}

/// The first `len` bytes of `file` (from its start), in memory.
fn read_all(file: &mut File, len: u64) -> io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(0))?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(usize::try_from(len).map_err(io::Error::other)?)
        .map_err(io::Error::other)?;
    file.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

impl Input {
    /// Opens `path` read-only.
    pub fn open(path: &Path) -> io::Result<Input> {
        let mut file = File::open(path)?;
        let open_for_write = locked_by_writer(&file);
        let opened = Stamp::of(&file.metadata()?);
        let len = opened.len;
        let bytes = if len <= COPY_LIMIT {
            // Bounded by the cap above; a file that grew since is read to
            // its stamp's length only (and then reported as changed).
            let mut buf = Vec::with_capacity(len as usize);
            (&mut file).take(len).read_to_end(&mut buf)?;
            Bytes::Copied(buf)
        } else {
            // SAFETY: the map is read-only; a truncation by another process
            // is caught by the guard (module note).
            match unsafe { Mmap::map(&file) } {
                Ok(map) => match Guard::register(&map) {
                    Some(g) => Bytes::Mapped(Some(g), map),
                    None => {
                        drop(map);
                        Bytes::Copied(read_all(&mut file, len)?)
                    }
                },
                // Some file systems cannot be mapped (FUSE with direct_io):
                // read the file instead.
                Err(_) => Bytes::Copied(read_all(&mut file, len)?),
            }
        };
        let (bytes, cache_image) = with_cache_image(bytes, &mut file, len)?;
        let input = Input {
            bytes,
            file,
            opened,
            open_for_write,
            cache_image,
        };
        test_pause();
        Ok(input)
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Copied(v) => v,
            Bytes::Mapped(_, m) => m,
        }
    }

    /// The inventory of the bytes (see [`scan_bytes`]), marked
    /// `open_for_write` when a writer held the file; an error when the
    /// file changed while it was read (the walk's result is then not
    /// carved further: the bytes are no longer the file's).
    pub fn inventory(&self, file: &str, mode: CarveMode) -> Result<Inventory, InputChanged> {
        self.inventory_with(file, mode, &crate::carve::chunks::Options::default())
    }

    /// [`Input::inventory`] with options for the search for chunks no
    /// index lists.
    pub fn inventory_with(
        &self,
        file: &str,
        mode: CarveMode,
        chunks: &crate::carve::chunks::Options,
    ) -> Result<Inventory, InputChanged> {
        self.inventory_into(file, mode, chunks, None)
    }

    /// [`Input::inventory_with`] handing the walk's objects to `sink` one
    /// by one where it can ([`scan_prepared`]); the inventory keeps the
    /// others.
    pub fn inventory_streamed(
        &self,
        file: &str,
        mode: CarveMode,
        chunks: &crate::carve::chunks::Options,
        sink: &mut dyn ObjectSink,
    ) -> Result<Inventory, InputChanged> {
        self.inventory_into(file, mode, chunks, Some(sink))
    }

    fn inventory_into(
        &self,
        file: &str,
        mode: CarveMode,
        chunks: &crate::carve::chunks::Options,
        sink: Option<&mut dyn ObjectSink>,
    ) -> Result<Inventory, InputChanged> {
        let changed = || self.check_unchanged().is_err();
        let overlay = self.cache_image.as_ref();
        let mut inv = scan_prepared(file, self.bytes(), mode, chunks, &changed, overlay, sink);
        inv.open_for_write = self.open_for_write;
        self.check_unchanged()?;
        Ok(inv)
    }

    /// Another process held libhdf5's exclusive lock on the file when it
    /// was opened: a writer still had it open, and what is read is a
    /// snapshot.
    pub fn open_for_write(&self) -> bool {
        self.open_for_write
    }

    /// The file is as it was when opened: no read of it faulted, and its
    /// size and modification time are the same. Call before committing
    /// anything derived from [`Input::bytes`].
    pub fn check_unchanged(&self) -> Result<(), InputChanged> {
        let faulted = matches!(&self.bytes, Bytes::Mapped(Some(g), _) if g.faulted());
        let now = self.file.metadata().ok().map(|m| Stamp::of(&m));
        if faulted || now != Some(self.opened) {
            return Err(InputChanged {
                was: self.opened.len,
                now: now.map(|s| s.len),
            });
        }
        Ok(())
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        // Unregister the range before the mapping goes away.
        if let Bytes::Mapped(g, _) = &mut self.bytes {
            drop(g.take());
        }
    }
}

/// True when another process holds an exclusive `flock` on the file (as
/// libhdf5 does on a file it opened for writing): a shared lock is
/// requested without waiting and released at once.
fn locked_by_writer(f: &File) -> bool {
    let fd = f.as_raw_fd();
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(fd, libc::LOCK_SH | libc::LOCK_NB) };
    if rc == 0 {
        // SAFETY: as above.
        unsafe { libc::flock(fd, libc::LOCK_UN) };
        return false;
    }
    io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK)
}

/// Test hook (debug builds only): with `H5SALVAGE_TEST_PAUSE_AFTER_OPEN`
/// set to a path, the first file opened (the Nth with
/// `H5SALVAGE_TEST_PAUSE_AT_OPEN=N`) creates that file, then waits (up to
/// two minutes) until it is removed: a test changes the input in between,
/// deterministically.
fn test_pause() {
    #[cfg(debug_assertions)]
    {
        static OPENED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let Some(flag) = std::env::var_os("H5SALVAGE_TEST_PAUSE_AFTER_OPEN") else {
            return;
        };
        let nth = std::env::var("H5SALVAGE_TEST_PAUSE_AT_OPEN")
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(1);
        if OPENED.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 != nth {
            return;
        }
        let flag = std::path::PathBuf::from(flag);
        if std::fs::write(&flag, std::process::id().to_string()).is_err() {
            return;
        }
        for _ in 0..12_000 {
            if !flag.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// When to carve (search the whole file for structures by signature).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CarveMode {
    /// Walk from the superblock; carve too when the walk finds anything
    /// wrong (a healthy file is not carved).
    #[default]
    Auto,
    /// Walk only.
    Never,
    /// Carve only, ignoring the superblock's root.
    Only,
}

/// The inventory of one file's bytes: walk, carve, or both merged.
pub fn scan_bytes(file: &str, bytes: &[u8], mode: CarveMode) -> Inventory {
    scan_bytes_with(file, bytes, mode, &crate::carve::chunks::Options::default())
}

/// [`scan_bytes`], then (unless `mode` is `Never` or the walk found nothing
/// wrong) the search for chunks no index lists
/// ([`crate::carve::chunks::recover`]) with `chunks`' templates and rules.
pub fn scan_bytes_with(
    file: &str,
    bytes: &[u8],
    mode: CarveMode,
    chunks: &crate::carve::chunks::Options,
) -> Inventory {
    scan_bytes_unless(file, bytes, mode, chunks, &|| false)
}

/// [`scan_bytes_with`], skipping the carving passes when `stop()` says the
/// bytes are no longer worth reading (the input changed after the walk).
fn scan_bytes_unless(
    file: &str,
    bytes: &[u8],
    mode: CarveMode,
    chunks: &crate::carve::chunks::Options,
    stop: &dyn Fn() -> bool,
) -> Inventory {
    let overlay = crate::walk::cache_image(bytes);
    match overlay.as_ref().filter(|o| !o.relocations.is_empty()) {
        Some(o) => {
            let mut patched = bytes.to_vec();
            o.apply(&mut patched);
            scan_prepared(file, &patched, mode, chunks, stop, Some(o), None)
        }
        None => scan_prepared(file, bytes, mode, chunks, stop, overlay.as_ref(), None),
    }
}

/// [`scan_bytes_unless`] of bytes the file's metadata cache image
/// `overlay` (if it has one) was applied to: it is recorded in the
/// inventory before carving is decided, and the carver skips the images
/// of the relocated entries in the block (they are at their own addresses
/// then; the block's other entries are carved like any other bytes).
///
/// With a `sink`, the walk hands its objects to it
/// ([`crate::walk::walk_streamed`]) unless the metadata cache image
/// relocated entries (whose check needs every object); a walk that found
/// damage in `Auto` mode is made again whole for the carver, the sink
/// told to forget what it got.
fn scan_prepared(
    file: &str,
    bytes: &[u8],
    mode: CarveMode,
    chunks: &crate::carve::chunks::Options,
    stop: &dyn Fn() -> bool,
    overlay: Option<&Overlay>,
    sink: Option<&mut dyn ObjectSink>,
) -> Inventory {
    let record = |mut inv: Inventory| {
        if let Some(o) = overlay {
            CacheImageInfo::record(o, &mut inv);
        }
        inv
    };
    // The relocated entries' images in the block (sorted by place, as
    // `relocate` leaves them): copies of what lies at their homes now.
    let copies: Vec<(u64, u64)> = overlay
        .map(|o| o.relocations.iter().map(|r| (r.from, r.len)).collect())
        .unwrap_or_default();
    // Every signature, found once for the carver and the passes after it.
    let hits = std::cell::OnceCell::new();
    let hits = || {
        hits.get_or_init(|| crate::carve::find_signatures(bytes))
            .as_slice()
    };
    let carve = || crate::carve::carve_except_with(file, bytes, &copies, hits());
    let mut sink = sink.filter(|_| copies.is_empty());
    // A streamed walk keeps each object's header spans and raw data
    // extents (relative to a base known after the walk): raw data over
    // another object's bytes ([`crate::inventory::check_data_overlaps`])
    // needs every object, so such a walk is made again whole.
    let walk = |sink: Option<&mut (dyn ObjectSink + '_)>| {
        let Some(s) = sink else {
            return record(crate::walk::walk(file, bytes));
        };
        let mut spans = crate::inventory::StreamedSpans::default();
        let mut n = 0usize;
        let inv = crate::walk::walk_streamed(file, bytes, &mut |o| {
            spans.push(&o, n);
            n += 1;
            s.object(o)
        });
        let shared = crate::inventory::overlap_base(&inv).is_some_and(|base| {
            spans.push_metadata(&inv.metadata, n);
            spans.any_overlap(base)
        });
        if shared {
            s.clear();
            return record(crate::walk::walk(file, bytes));
        }
        record(inv)
    };
    let spin = crate::progress::Spinner::new(&format!("scanning {file}"), bytes.len() as u64);
    let (mut inv, carved) = match mode {
        CarveMode::Only => (record(carve()), true),
        CarveMode::Never => (walk(sink), false),
        CarveMode::Auto => {
            let mut walked = walk(sink.as_deref_mut());
            if walked.verdict() == Verdict::Healthy || bytes.is_empty() || stop() {
                (walked, false)
            } else {
                if walked.streamed != Summary::default() {
                    if let Some(s) = sink {
                        s.clear();
                    }
                    walked = walk(None);
                }
                spin.set(&format!("carving {file}"));
                (crate::carve::combine(walked, carve()), true)
            }
        }
    };
    if carved {
        // Index records the stale root does not reach first: the positions
        // they prove anchor the search for chunks no record lists.
        crate::carve::chunk_records::extend_with(bytes, &mut inv, hits());
        if !bytes.is_empty() && inv.verdict() != Verdict::NotHdf5 && !stop() {
            crate::carve::chunks::recover(&mut inv, bytes, chunks);
        }
    }
    crate::inventory::check_relocated(&mut inv);
    crate::inventory::check_data_overlaps(&mut inv);
    inv.zeroed_ranges = crate::inventory::zeroed_ranges(bytes);
    inv
}

/// Opens and walks one file (no carving).
pub fn scan_path(path: &Path) -> io::Result<Inventory> {
    scan_path_with(path, CarveMode::Never)
}

/// Opens one file and builds its inventory with `mode`. An input that
/// changed while it was read is an error ([`InputChanged`] inside the
/// `io::Error`), never an inventory.
pub fn scan_path_with(path: &Path, mode: CarveMode) -> io::Result<Inventory> {
    let input = Input::open(path)?;
    Ok(input.inventory(&path.display().to_string(), mode)?)
}

/// [`scan_path_chunks`] handing the walk's objects to `sink` one by one
/// where it can ([`Input::inventory_streamed`]).
pub fn scan_path_streamed(
    path: &Path,
    mode: CarveMode,
    chunks: &crate::carve::chunks::Options,
    sink: &mut dyn ObjectSink,
) -> io::Result<Inventory> {
    let input = Input::open(path)?;
    Ok(input.inventory_streamed(&path.display().to_string(), mode, chunks, sink)?)
}

/// [`scan_path_with`] with options for the chunk search.
pub fn scan_path_chunks(
    path: &Path,
    mode: CarveMode,
    chunks: &crate::carve::chunks::Options,
) -> io::Result<Inventory> {
    let input = Input::open(path)?;
    Ok(input.inventory_with(&path.display().to_string(), mode, chunks)?)
}

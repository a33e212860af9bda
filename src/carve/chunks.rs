//! Chunks that no index record lists (issue 13, item 2): the chunks a killed
//! appending writer evicted from its chunk cache before any index, header or
//! heap describing them reached the disk.
//!
//! A deflated chunk frames itself: it is one complete zlib stream (RFC 1950:
//! header, deflate data, Adler-32 of the output), optionally followed by the
//! Fletcher-32 of the stream (spec IV.A.2.l, filter 3). The search is in
//! three steps, each a separate function:
//!
//! 1. [`Claimed`]: every byte range the inventory already explains (object
//!    headers, indexed chunks, contiguous data) is skipped.
//! 2. [`find_streams`]: the allocation-chain walk. libhdf5 allocates each
//!    evicted chunk at the end of the file, so the next chunk usually starts
//!    where the last one ended: after a stream, the next candidate is its
//!    end (past a matching Fletcher-32); only when nothing starts there is
//!    the gap scanned for the next zlib header (`78 xx`, the header
//!    libhdf5's `compress2` writes). Each candidate is inflated through
//!    [`crate::read::filters::inflate_into`], never past a cap, and kept
//!    only if its stream is complete and its Adler-32 matches.
//! 3. [`place_by_order`]: which of the found chunks a dataset can take, by
//!    allocation order, and which are left for `/lost+found`, with typed
//!    reasons ([`Stray`]). [`recover`] ties them to the inventory: templates
//!    (the dataset's own stale header, or `--template FILE`) give the chunk
//!    size, element type and filters; placement happens only where it is
//!    unambiguous.
//!
//! Unfiltered chunks carry no framing: they are cut from the allocation
//! chain past the stored end of file, only where the zero runs between
//! them have exactly one reading as metadata sizes, alone or together
//! down to the stored end of file ([`raw_chain`], section note below), and
//! are marked unverified wherever they go.

use std::collections::BTreeMap;

use crate::follow::Image;
use crate::format::is_undefined;
use crate::format::message::data_layout::{ChunkIndex, LayoutClass};
use crate::format::message::filter_pipeline::{DEFLATE, FLETCHER32, SHUFFLE};
use crate::inventory::{
    ChunkRef, ChunkSearch, Dataset, Inventory, ObjectKind, PlacedChunks, Problem, ProblemKind,
    Status, StrayChunks,
};
use crate::read::filters;

/// Most streams kept from one file (memory stays bounded by this count).
pub const MAX_STREAMS: usize = 10_000_000;

/// A zlib stream found in unclaimed space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    /// Absolute file offset of its first byte.
    pub offset: u64,
    /// Length of the zlib stream itself.
    pub stream_len: u64,
    /// Stored length: the stream, plus 4 when a Fletcher-32 follows.
    pub stored_len: u64,
    /// Size of its inflated bytes.
    pub inflated_len: u64,
    /// The 4 bytes after the stream are its Fletcher-32 checksum.
    pub fletcher32: bool,
}

impl Stream {
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.stored_len)
    }
}

/// True if `cmf`, `flg` are a zlib header (RFC 1950 2.2): deflate with a
/// window of at most 32 KiB, no preset dictionary, check bits right.
pub fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8
        && cmf >> 4 <= 7
        && flg & 0x20 == 0
        && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

/// Frames the zlib stream at `at` (absolute): Some((stream length,
/// Fletcher-32 follows, output length)) when a complete stream starts
/// there whose output is at most `cap` bytes and, with `exact`, exactly
/// `cap`. Only lengths are kept: `out` is the streaming decoder's scratch,
/// used when the whole-buffer one ([`filters::frame_zlib`]) rejects the
/// bytes (on `None` it holds what that decoder produced: the work the
/// search's budget counts). Pure: reads `bytes` only.
pub fn frame_deflate(
    bytes: &[u8],
    at: usize,
    cap: usize,
    exact: bool,
    d: &mut flate2::Decompress,
    out: &mut Vec<u8>,
) -> Option<(usize, bool, usize)> {
    out.clear();
    let (&cmf, &flg) = (bytes.get(at)?, bytes.get(at.checked_add(1)?)?);
    if !is_zlib_header(cmf, flg) {
        return None;
    }
    let rest = bytes.get(at..)?;
    let (len, produced) = match filters::frame_zlib(rest, cap) {
        Some(framed) => framed,
        None => {
            let len = filters::inflate_into(d, rest, cap, out).ok()?;
            (len, out.len())
        }
    };
    if exact && produced != cap {
        return None;
    }
    let fletcher = rest
        .get(..len.checked_add(4)?)
        .is_some_and(|s| filters::verify_fletcher32(s).is_ok());
    Some((len, fletcher, produced))
}

/// Absolute byte ranges the inventory already explains, merged.
#[derive(Clone, Debug, Default)]
pub struct Claimed {
    /// start -> end, non-overlapping, not touching.
    spans: BTreeMap<u64, u64>,
    /// Spans added since the last `seal` (a vector: one insertion into the
    /// map per span cost more than the rest of the chunk search on files
    /// of many small objects).
    added: Vec<(u64, u64)>,
}

impl Claimed {
    pub fn add(&mut self, start: u64, end: u64) {
        if end > start {
            self.added.push((start, end));
        }
    }

    /// Merges overlapping and touching spans (call after the last `add`).
    pub fn seal(&mut self) {
        let mut all = std::mem::take(&mut self.added);
        all.extend(std::mem::take(&mut self.spans));
        all.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(all.len());
        for (s, e) in all {
            match merged.last_mut() {
                Some((_, me)) if s <= *me => *me = (*me).max(e),
                _ => merged.push((s, e)),
            }
        }
        self.spans = merged.into_iter().collect();
    }

    /// The end of the span covering `pos`, if one does.
    pub fn covering(&self, pos: u64) -> Option<u64> {
        self.spans
            .range(..=pos)
            .next_back()
            .filter(|(_, &e)| e > pos)
            .map(|(_, &e)| e)
    }

    /// True if `[start, end)` meets a claimed span.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.covering(start).is_some()
            || self
                .spans
                .range(start..end)
                .next()
                .is_some_and(|(&s, _)| s < end)
    }

    /// The start of the span covering `pos`, if one does.
    pub fn start_of(&self, pos: u64) -> Option<u64> {
        self.spans
            .range(..=pos)
            .next_back()
            .filter(|(_, &e)| e > pos)
            .map(|(&s, _)| s)
    }

    /// The end of the last span that ends at or before `pos` (None when
    /// a span covers `pos - 1` or none ends before it).
    fn prev_end(&self, pos: u64) -> Option<u64> {
        self.spans
            .range(..pos)
            .next_back()
            .map(|(_, &e)| e)
            .filter(|&e| e <= pos)
    }

    /// The start of the first span at or after `pos`.
    fn next_start(&self, pos: u64) -> Option<u64> {
        self.spans.range(pos..).next().map(|(&s, _)| s)
    }

    /// Everything the inventory's objects occupy: header spans, indexed
    /// chunks, contiguous data (absolute offsets).
    pub fn of(inv: &Inventory, image: &Image) -> Claimed {
        let (mut c, data) = Claimed::split_of(inv, image);
        c.added.extend(data.added);
        c.added.extend(data.spans);
        c.seal();
        c
    }

    /// [`Claimed::of`] in two parts, not sealed: metadata (object header
    /// spans) and data (indexed chunks, contiguous data).
    fn split_of(inv: &Inventory, image: &Image) -> (Claimed, Claimed) {
        let mut c = Claimed::default();
        let mut data = Claimed::default();
        // A metadata cache image block holds metadata, never chunks.
        if let Some((s, l)) = inv.cache_image.and_then(|ci| ci.block) {
            c.add(s, s.saturating_add(l));
        }
        let mut d = flate2::Decompress::new(true);
        let mut out = Vec::new();
        for o in inv.objects.iter().filter(|o| o.hard_link_of.is_none()) {
            for &(s, e) in &o.header_spans {
                c.add(s, e);
            }
            let Some(ds) = &o.dataset else { continue };
            let mut add = |addr: u64, len: u64| {
                if let Some(abs) = image.absolute(addr).filter(|_| !is_undefined(addr)) {
                    data.add(abs, abs.saturating_add(len));
                }
            };
            match &ds.layout.class {
                LayoutClass::Contiguous { address, size } => {
                    add(*address, size.or(ds.coverage.bytes_present).unwrap_or(0));
                }
                LayoutClass::Chunked { .. } => {
                    // The dataset's last chunk (by address and by offset)
                    // may have been rewritten in place since its record was
                    // written (a newer, longer version at the same
                    // address): if its record no longer frames, it is not
                    // claimed and the search sees what is there now. Only
                    // those two are inflated here.
                    let sig = signature(ds);
                    let last_addr = ds.chunks.iter().map(|c| c.address).max();
                    let last_off = ds.chunks.iter().map(|c| c.offset.first().copied()).max();
                    for ch in &ds.chunks {
                        let tail = Some(ch.address) == last_addr
                            || Some(ch.offset.first().copied()) == last_off;
                        let stale = tail
                            && sig.is_some_and(|(n, fletcher)| {
                                ch.filter_mask == 0
                                    && !frames(image, ch, n, fletcher, &mut d, &mut out)
                            });
                        if !stale {
                            add(ch.address, ch.size);
                        }
                    }
                }
                _ => {}
            }
        }
        (c, data)
    }
}

/// True if the indexed chunk `ch` is one complete zlib stream of `inflated`
/// bytes (plus its Fletcher-32), exactly as long as its record says.
fn frames(
    image: &Image,
    ch: &ChunkRef,
    inflated: u64,
    fletcher: bool,
    d: &mut flate2::Decompress,
    out: &mut Vec<u8>,
) -> bool {
    let (Some(abs), Ok(cap)) = (image.absolute(ch.address), usize::try_from(inflated)) else {
        return false;
    };
    let Ok(at) = usize::try_from(abs) else {
        return false;
    };
    let end = at.saturating_add(usize::try_from(ch.size).unwrap_or(usize::MAX));
    let Some(stored) = image.bytes.get(at..end) else {
        return false;
    };
    frame_deflate(stored, 0, cap, true, d, out)
        .is_some_and(|(n, f, _)| n as u64 + if fletcher && f { 4 } else { 0 } == ch.size)
}

/// Largest stream output searched for without a template asking for more.
pub const SEARCH_CAP: usize = 16 << 20;

/// Output of failed inflate attempts allowed per byte of file (plus
/// [`WASTE_BASE`]): hostile bytes full of almost-streams cannot make the
/// search quadratic.
const WASTE_PER_BYTE: u64 = 4;
const WASTE_BASE: u64 = 256 << 20;

/// Files smaller than this are searched by one thread.
const PARALLEL_MIN: usize = 32 << 20;
/// Most threads of one search.
const MAX_THREADS: usize = 16;

/// Finds every complete zlib stream in unclaimed space by walking the
/// allocation chain (module note), inflating each at most to `cap` bytes.
/// Returns them in file order (at most [`MAX_STREAMS`]), and whether the
/// whole file was searched (false: the budget for failed attempts ran
/// out at the returned offset).
///
/// Parallel over cores: the file is cut into one segment per thread and
/// each is walked from its start. The walk from a position depends on that
/// position only, so once the chain walked from the previous segment's
/// last stream reaches a stream start the segment's walk found, the rest
/// of that walk is what one thread would have found; until then the chain
/// is walked on here ([`stitch`]). The result equals the one-thread walk
/// (the budget for failed attempts is shared out per segment).
pub fn find_streams(bytes: &[u8], claimed: &Claimed, cap: usize) -> (Vec<Stream>, Option<u64>) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
        .min(bytes.len() / PARALLEL_MIN)
        .max(1);
    search(bytes, claimed, cap, threads)
}

/// [`find_streams`] with `threads` segments.
fn search(
    bytes: &[u8],
    claimed: &Claimed,
    cap: usize,
    threads: usize,
) -> (Vec<Stream>, Option<u64>) {
    let budget = (bytes.len() as u64)
        .saturating_mul(WASTE_PER_BYTE)
        .saturating_add(WASTE_BASE);
    let len = bytes.len() as u64;
    if threads <= 1 {
        let w = walk(bytes, claimed, cap, 0, |_| false, budget);
        return (w.streams, w.stopped);
    }
    // cuts[k]..cuts[k + 1] is segment k.
    let cuts: Vec<u64> = (0..threads as u64)
        .map(|k| len / threads as u64 * k)
        .chain(std::iter::once(len))
        .collect();
    let share = budget / threads as u64;
    let walks: Vec<Walk> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let (from, to) = (cuts[k], cuts[k + 1]);
                scope.spawn(move || walk(bytes, claimed, cap, from, |p| p >= to, share))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    stitch(bytes, claimed, cap, &cuts, walks, share)
}

/// Joins the per-segment walks of [`find_streams`] into the one-thread
/// chain: segment `k`'s walk is taken from the first of its stream starts
/// the chain reaches; before that (and for segments the chain jumps over)
/// the chain is walked here.
fn stitch(
    bytes: &[u8],
    claimed: &Claimed,
    cap: usize,
    cuts: &[u64],
    walks: Vec<Walk>,
    budget: u64,
) -> (Vec<Stream>, Option<u64>) {
    let mut walks = walks.into_iter();
    let Some(first) = walks.next() else {
        return (Vec::new(), None);
    };
    let mut out = first.streams;
    if first.stopped.is_some() {
        return (out, first.stopped);
    }
    let mut pos = first.end;
    for (k, w) in walks.enumerate().map(|(i, w)| (i + 1, w)) {
        let to = cuts[k + 1];
        if pos >= to {
            continue;
        }
        let starts: Vec<u64> = w.streams.iter().map(|s| s.offset).collect();
        let on = walk(
            bytes,
            claimed,
            cap,
            pos,
            |p| p >= to || starts.binary_search(&p).is_ok(),
            budget,
        );
        out.extend(on.streams);
        if on.stopped.is_some() {
            return (out, on.stopped);
        }
        pos = on.end;
        if let Ok(i) = starts.binary_search(&pos) {
            out.extend(w.streams.into_iter().skip(i));
            if w.stopped.is_some() {
                return (out, w.stopped);
            }
            pos = w.end;
        }
        if out.len() >= MAX_STREAMS {
            break;
        }
    }
    out.truncate(MAX_STREAMS);
    (out, None)
}

/// One walk of the allocation chain: the streams found, where it stopped
/// for lack of budget, and the position it ended at.
#[derive(Default)]
struct Walk {
    streams: Vec<Stream>,
    stopped: Option<u64>,
    end: u64,
}

/// Walks the chain from `from` until `done(position)` or the end of the
/// file (see [`find_streams`]).
fn walk(
    bytes: &[u8],
    claimed: &Claimed,
    cap: usize,
    from: u64,
    done: impl Fn(u64) -> bool,
    budget: u64,
) -> Walk {
    let mut found = Vec::new();
    let mut wasted: u64 = 0;
    let mut d = flate2::Decompress::new(true);
    let mut out = Vec::new();
    let len = bytes.len() as u64;
    let mut pos: u64 = from;
    let mut behind = crate::pipeline::Behind::new(usize::try_from(from).unwrap_or(usize::MAX));
    while pos < len && found.len() < MAX_STREAMS && !done(pos) {
        behind.reached(bytes, usize::try_from(pos).unwrap_or(usize::MAX));
        if let Some(end) = claimed.covering(pos) {
            pos = end;
            continue;
        }
        let at = usize::try_from(pos).unwrap_or(usize::MAX);
        let waste = match frame_deflate(bytes, at, cap, false, &mut d, &mut out) {
            Some((n, fletcher, produced)) => {
                let stored = n as u64 + if fletcher { 4 } else { 0 };
                if produced > 0 && !claimed.overlaps(pos, pos.saturating_add(stored)) {
                    found.push(Stream {
                        offset: pos,
                        stream_len: n as u64,
                        stored_len: stored,
                        inflated_len: produced as u64,
                        fletcher32: fletcher,
                    });
                    pos = pos.saturating_add(stored);
                    continue;
                }
                produced
            }
            None => out.len(),
        };
        wasted = wasted.saturating_add(waste as u64);
        if wasted > budget {
            return Walk {
                streams: found,
                stopped: Some(pos),
                end: pos,
            };
        }
        // Resync: the next zlib header in this gap, or the gap's end.
        let gap_end = claimed.next_start(pos.saturating_add(1)).unwrap_or(len);
        let from = at.saturating_add(1);
        let to = usize::try_from(gap_end)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let next = bytes
            .get(from..to)
            .and_then(|g| {
                memchr::memchr_iter(0x78, g)
                    .find(|&i| g.get(i + 1).is_some_and(|&f| is_zlib_header(0x78, f)))
            })
            .map(|i| (from + i) as u64);
        pos = next.unwrap_or(gap_end.max(pos.saturating_add(1)));
    }
    Walk {
        streams: found,
        stopped: None,
        end: pos,
    }
}

pub use crate::inventory::StrayReason as Stray;

/// A chunk whose position (index along the first dimension, in chunks)
/// an index record proves, at an absolute file offset, with the stored
/// length the record gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub offset: u64,
    pub index: u64,
    pub len: u64,
}

/// Where one found chunk goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot {
    /// At this chunk index along the first dimension.
    At(u64),
    /// A newer version of the indexed chunk at this index: found at the
    /// address its record gives but longer (rewritten in place after the
    /// record was written), or the next chunk after a partly filled last
    /// indexed chunk whose leading rows it repeats.
    Replaces(u64),
    Left(Stray),
}

/// Places found chunks `(absolute offset, stored length)`, ascending, of
/// one appending dataset by allocation order, given the chunks whose index
/// is proven.
///
/// Rules: the proven chunks must be in allocation order (index increasing
/// with file offset). A found chunk at the address of a proven one but
/// longer than its record is a newer version of it. The other found chunks
/// between two proven ones must be exactly as many as the indices missing
/// between them, and take them in order; after the last proven chunk (from
/// index 0 without any) found chunks take consecutive indices. When the
/// last proven chunk was partly filled (`partial_tail`) and was not
/// rewritten in place, the first found chunk after it must be a newer
/// version of it (`newer(i)` on its position in `found`), which replaces
/// it. From the first inconsistency on, nothing more is placed by order.
pub fn place_by_order(
    anchors: &[Anchor],
    found: &[(u64, u64)],
    partial_tail: bool,
    newer: &mut dyn FnMut(usize) -> bool,
) -> Vec<Slot> {
    let mut a = anchors.to_vec();
    a.sort_by_key(|x| x.offset);
    let in_order = |a: &[Anchor]| a.windows(2).all(|w| w[1].index > w[0].index);
    // The partly filled last proven chunk was allocated at the flush, when
    // a block freed earlier (an older flush's partly filled chunk, since
    // rewritten elsewhere) could take it: it may stand out of file order.
    // It is then left out of the order check and must directly follow the
    // other proven chunks; found chunks after them start with its newer
    // version (the `partial_tail` check below).
    let top = a.iter().copied().max_by_key(|x| x.index);
    let ordered: Vec<Anchor> = if in_order(&a) {
        a.clone()
    } else {
        let others: Vec<Anchor> = a.iter().copied().filter(|x| Some(*x) != top).collect();
        let follows = top.is_some_and(|t| {
            others
                .last()
                .is_some_and(|l| l.index.checked_add(1) == Some(t.index))
        });
        if !(partial_tail && follows && in_order(&others)) {
            return vec![Slot::Left(Stray::ProvenOutOfOrder); found.len()];
        }
        others
    };
    let aside = top.filter(|_| ordered.len() < a.len());
    let in_place = |f: &(u64, u64)| {
        a.binary_search_by_key(&f.0, |x| x.offset)
            .ok()
            .and_then(|k| a.get(k))
            .filter(|x| f.1 > x.len)
            .map(|x| x.index)
    };
    let mut slots: Vec<Option<Slot>> = found
        .iter()
        .map(|f| in_place(f).map(Slot::Replaces))
        .collect();
    let renewed_tail = top.is_some_and(|l| slots.contains(&Some(Slot::Replaces(l.index))));
    let rest: Vec<usize> = (0..found.len()).filter(|&i| slots[i].is_none()).collect();
    let mut broken: Option<Stray> = None;
    let mut r = 0;
    let mut prev: Option<u64> = None;
    for an in &ordered {
        let start = r;
        while r < rest.len() && found[rest[r]].0 < an.offset {
            r += 1;
        }
        let seg = r - start;
        // No index follows u64::MAX (duplicate or hostile records).
        let first = prev.map_or(Some(0), |p| p.checked_add(1));
        if broken.is_none()
            && seg > 0
            && first.is_none_or(|f| seg as u64 != an.index.saturating_sub(f))
        {
            broken = Some(Stray::OrderInconsistent);
        }
        let first = first.unwrap_or(u64::MAX);
        for (k, &i) in rest[start..r].iter().enumerate() {
            slots[i] = Some(match &broken {
                Some(why) => Slot::Left(why.clone()),
                None => Slot::At(first + k as u64),
            });
        }
        prev = Some(an.index);
    }
    if let Some(t) = aside {
        prev = Some(t.index);
    }
    let mut next = prev.map_or(Some(0), |p| p.checked_add(1));
    if broken.is_none() && partial_tail && !renewed_tail && r < rest.len() {
        match prev {
            Some(p) if newer(rest[r]) => {
                slots[rest[r]] = Some(Slot::Replaces(p));
                r += 1;
            }
            _ => broken = Some(Stray::PartialTail),
        }
    }
    for &i in &rest[r..] {
        slots[i] = Some(match &broken {
            Some(why) => Slot::Left(why.clone()),
            None => match next {
                Some(n) => {
                    next = n.checked_add(1);
                    Slot::At(n)
                }
                None => Slot::Left(Stray::OrderInconsistent),
            },
        });
    }
    slots
        .into_iter()
        .map(|s| s.unwrap_or(Slot::Left(Stray::OrderInconsistent)))
        .collect()
}

/// A dataset description that found chunks can be matched against.
#[derive(Clone, Debug)]
pub struct Template {
    /// Path of the dataset it describes (in the input, or in the template
    /// file when the input lacks it).
    pub path: String,
    pub dataset: Dataset,
    /// `Some(file)` when taken from another file.
    pub from: Option<String>,
}

/// Chunk signature: inflated chunk size, Fletcher-32 present. Only
/// pipelines of shuffle, deflate and Fletcher-32 with deflate are
/// searched (the chunk must frame itself); element types with addresses
/// (variable-length, references) are not: their bytes point into a file.
fn signature(ds: &Dataset) -> Option<(u64, bool)> {
    let LayoutClass::Chunked { dims, .. } = &ds.layout.class else {
        return None;
    };
    // Asked of every dataset, several times: the filter ids are looked at
    // where they are (no list is built).
    let filters = &ds.filters.as_ref()?.filters;
    let has = |id: u16| filters.iter().any(|f| f.id == id);
    if !has(DEFLATE)
        || filters
            .iter()
            .any(|f| ![DEFLATE, SHUFFLE, FLETCHER32].contains(&f.id))
    {
        return None;
    }
    if ds.datatype.is_variable_length() || ds.datatype.contains_reference() {
        return None;
    }
    let bytes = ds.chunk_bytes(dims)?;
    (bytes > 0).then_some((bytes, has(FLETCHER32)))
}

/// Options of the search.
#[derive(Clone, Debug)]
pub struct Options {
    /// Place chunks by allocation order (off: `--no-infer`).
    pub infer: bool,
    /// Descriptions from other files (`--template FILE`, merge siblings).
    pub templates: Vec<Template>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            infer: true,
            templates: Vec::new(),
        }
    }
}

impl Options {
    /// Options whose templates are the chunked, deflated datasets of the
    /// healthy files `paths` (`--template FILE`); `infer`: place chunks by
    /// allocation order. An error names a file that cannot be read or
    /// holds no such dataset.
    pub fn from_templates(paths: &[std::path::PathBuf], infer: bool) -> Result<Options, String> {
        let mut templates = Vec::new();
        for t in paths {
            let inv = crate::pipeline::scan_path_with(t, crate::pipeline::CarveMode::Auto)
                .map_err(|e| format!("{}: {e}", t.display()))?;
            let found = templates_of(&inv, &t.display().to_string());
            if found.is_empty() {
                return Err(format!(
                    "{}: template has no chunked, deflated or unfiltered dataset",
                    t.display()
                ));
            }
            templates.extend(found);
        }
        Ok(Options { infer, templates })
    }
}

/// The chunked datasets of an inventory that can serve as templates.
pub fn templates_of(inv: &Inventory, from: &str) -> Vec<Template> {
    inv.objects
        .iter()
        .filter(|o| o.hard_link_of.is_none() && o.kind == ObjectKind::Dataset)
        .filter(|o| o.status != Status::Lost && !o.header_checksum_failed())
        .filter(|o| !never_written(inv, o))
        .filter_map(|o| {
            let ds = o.dataset.as_ref()?;
            signature(ds).or(raw_signature(ds).map(|n| (n, false)))?;
            // Its chunks and extent say nothing about another file.
            Some(Template {
                path: o.path.clone(),
                dataset: without_chunks(ds),
                from: Some(from.to_string()),
            })
        })
        .collect()
}

/// Searches `bytes` for chunks no index lists and records in `inv` where
/// each went: placed by allocation order into a dataset (its chunks and
/// extent grow), or left as stray chunks for `/lost+found`.
pub fn recover(inv: &mut Inventory, bytes: &[u8], opts: &Options) {
    let image = inv.image(bytes);
    let claimed = Claimed::of(inv, &image);
    let largest = opts
        .templates
        .iter()
        .filter_map(|t| signature(&t.dataset))
        .chain(
            inv.objects
                .iter()
                .filter_map(|o| signature(o.dataset.as_ref()?)),
        )
        .filter_map(|(n, _)| usize::try_from(n).ok())
        .max()
        .unwrap_or(0);
    let cap = largest.max(SEARCH_CAP).min(filters::max_chunk_bytes());
    let (streams, stopped) = find_streams(bytes, &claimed, cap);
    if let Some(at) = stopped {
        inv.problems.push(Problem::new(
            ProblemKind::LimitExceeded,
            Some(at),
            "chunk search",
            "stopped: too many almost-complete zlib streams (hostile or unusual bytes); \
             chunks past this offset were not searched",
        ));
    }
    let mut search = ChunkSearch {
        streams_found: streams.len() as u64,
        ..ChunkSearch::default()
    };
    let stream_spans: Vec<(u64, u64)> = streams.iter().map(|s| (s.offset, s.end())).collect();
    // Streams per signature, in file order.
    let mut groups: BTreeMap<(u64, bool), Vec<Stream>> = BTreeMap::new();
    for s in streams {
        groups
            .entry((s.inflated_len, s.fletcher32))
            .or_default()
            .push(s);
    }
    // What each signature's candidates are, taken before any chunk is
    // placed: a group with one candidate gets its template, a group with
    // none or several only their paths and the first one's layout.
    let mut srcs = candidate_sources(inv, opts, signature);
    let plans: Vec<Plan> = groups
        .keys()
        .map(|sig| {
            let found = srcs.remove(sig).unwrap_or_default();
            match found.as_slice() {
                [one] => one
                    .template(inv, opts)
                    .map_or(Plan::Stray(Stray::NoTemplate, Vec::new(), None), |t| {
                        Plan::Place(Box::new(t))
                    }),
                [] => Plan::Stray(Stray::NoTemplate, Vec::new(), None),
                [first, ..] => {
                    let names: Vec<String> = found
                        .iter()
                        .map(|c| c.path(inv, opts).to_string())
                        .collect();
                    let layout = first.layout(inv, opts).map(Box::new);
                    Plan::Stray(Stray::SeveralDatasets(names.clone()), names, layout)
                }
            }
        })
        .collect();
    for ((sig, group), plan) in groups.into_iter().zip(plans) {
        let t = match plan {
            Plan::Place(t) => *t,
            Plan::Stray(reason, names, layout) => {
                search
                    .stray
                    .push(stray(reason, names, layout.map(|d| *d), sig, &group));
                continue;
            }
        };
        // A foreign template lists no chunk: placing from chunk 0 needs the
        // input to prove the dataset did not exist at the stored end of file.
        if foreign_unproven(inv, image.bytes, &t) {
            let names = vec![t.path.clone()];
            let st = stray(Stray::ForeignUnproven, names, Some(t.dataset), sig, &group);
            search.stray.push(st);
            continue;
        }
        place_group(inv, &image, t, sig, &group, opts.infer, false, &mut search);
    }
    recover_unfiltered(inv, &image, opts, &stream_spans, &mut search);
    inv.chunk_search = Some(search);
}

/// Datasets that found chunks of each signature `sig` can belong to: the
/// input's own (possibly stale) headers first, then templates for paths
/// the input does not have (their chunks and extent cleared).
fn candidates<K: Ord>(
    inv: &Inventory,
    opts: &Options,
    sig: impl Fn(&Dataset) -> Option<K>,
) -> BTreeMap<K, Vec<Template>> {
    candidate_sources(inv, opts, sig)
        .into_iter()
        .map(|(k, v)| (k, v.iter().filter_map(|c| c.template(inv, opts)).collect()))
        .collect()
}

/// What becomes of the streams of one signature, decided before any chunk
/// is placed: placed with the one candidate's template, or stray (why, the
/// candidates' paths, the first one's layout).
enum Plan {
    Place(Box<Template>),
    Stray(Stray, Vec<String>, Option<Box<Dataset>>),
}

/// Where a [`candidates`] entry comes from: an object of the input or a
/// template of [`Options`] (by index), so that a signature with many
/// candidates costs no copy of their datasets.
#[derive(Clone, Copy)]
enum Candidate {
    Own(usize),
    Foreign(usize),
}

impl Candidate {
    fn path<'a>(self, inv: &'a Inventory, opts: &'a Options) -> &'a str {
        match self {
            Candidate::Own(i) => &inv.objects[i].path,
            Candidate::Foreign(i) => &opts.templates[i].path,
        }
    }

    /// The template [`candidates`] lists for it (`Own` is only made for
    /// an object with a dataset).
    fn template(self, inv: &Inventory, opts: &Options) -> Option<Template> {
        match self {
            Candidate::Own(i) => {
                let o = &inv.objects[i];
                Some(Template {
                    path: o.path.clone(),
                    dataset: Dataset::clone(o.dataset.as_deref()?),
                    from: None,
                })
            }
            Candidate::Foreign(i) => {
                // Another file's chunks and extent say nothing about these.
                let mut t = opts.templates[i].clone();
                t.dataset.chunks.clear();
                if let Some(d0) = t.dataset.dataspace.dims.first_mut() {
                    *d0 = 0;
                }
                Some(t)
            }
        }
    }

    /// What a stray stack keeps of it: its template without the chunk
    /// list (which says nothing about stray chunks).
    fn layout(self, inv: &Inventory, opts: &Options) -> Option<Dataset> {
        match self {
            Candidate::Own(i) => Some(without_chunks(inv.objects[i].dataset.as_deref()?)),
            Candidate::Foreign(_) => self.template(inv, opts).map(|t| t.dataset),
        }
    }
}

/// A copy of `ds` without its chunk list, which is not copied.
fn without_chunks(ds: &Dataset) -> Dataset {
    let Dataset {
        datatype,
        dataspace,
        layout,
        filters,
        fill_value,
        external_files,
        chunks: _,
        coverage,
        beyond_index,
    } = ds;
    Dataset {
        datatype: datatype.clone(),
        dataspace: dataspace.clone(),
        layout: layout.clone(),
        filters: filters.clone(),
        fill_value: fill_value.clone(),
        external_files: *external_files,
        chunks: Vec::new(),
        coverage: coverage.clone(),
        beyond_index: beyond_index.clone(),
    }
}

/// [`candidates`] as [`Candidate`]s.
fn candidate_sources<K: Ord>(
    inv: &Inventory,
    opts: &Options,
    sig: impl Fn(&Dataset) -> Option<K>,
) -> BTreeMap<K, Vec<Candidate>> {
    let mut cands: BTreeMap<K, Vec<Candidate>> = BTreeMap::new();
    for (i, o) in inv.objects.iter().enumerate() {
        if o.hard_link_of.is_some() {
            continue;
        }
        let Some(ds) = &o.dataset else { continue };
        if o.status == Status::Lost || o.header_checksum_failed() || never_written(inv, o) {
            continue;
        }
        if let Some(k) = sig(ds) {
            cands.entry(k).or_default().push(Candidate::Own(i));
        }
    }
    for (i, t) in opts.templates.iter().enumerate() {
        if inv.object(&t.path).is_some() {
            continue;
        }
        if let Some(k) = sig(&t.dataset) {
            let v = cands.entry(k).or_default();
            if !v.iter().any(|x| x.path(inv, opts) == t.path) {
                v.push(Candidate::Foreign(i));
            }
        }
    }
    cands
}

/// The search for unfiltered chunks (section note below): past the stored
/// end of file only, one chunk size only, placed by allocation order only
/// when the chain is complete and the index proves every earlier chunk.
fn recover_unfiltered(
    inv: &mut Inventory,
    image: &Image,
    opts: &Options,
    stream_spans: &[(u64, u64)],
    search: &mut ChunkSearch,
) {
    // Only space allocated after the superblock was last written, in a
    // file the writer did not close (a version-3 superblock whose "open for
    // write" flag is clear was closed: what lies past its end is not its
    // allocations); whitespace a text tool appended is not searched.
    let Some(sb) = &inv.superblock else { return };
    if sb.version >= 3 && !sb.open_for_write() {
        return;
    }
    let r0 = sb.stored_file_size();
    let bytes = image.bytes;
    let tail = usize::try_from(r0).ok().and_then(|r| bytes.get(r..));
    if tail.is_none_or(|t| t.is_empty() || t.iter().all(u8::is_ascii_whitespace)) {
        return;
    }
    let mut cands = candidates(inv, opts, raw_signature);
    let size = match cands.keys().collect::<Vec<_>>().as_slice() {
        [] => return,
        [one] => **one,
        many => {
            search.unfiltered_stopped = Some((
                r0,
                format!(
                    "unfiltered datasets of several chunk sizes ({many:?} bytes): their chunks \
                     cannot be told apart in the allocation chain; not searched"
                ),
            ));
            return;
        }
    };
    let mut templates = cands.remove(&size).unwrap_or_default();
    let dss: Vec<&Dataset> = templates.iter().map(|t| &t.dataset).collect();
    let so = u64::from(image.sizes.offset());
    let Some(holes) = hole_sizes(&dss, so) else {
        search.unfiltered_stopped = Some((
            r0,
            format!(
                "more than {MAX_HOLE_BASES} metadata sizes: which zero runs are holes \
                 cannot be bounded; not searched"
            ),
        ));
        return;
    };
    let esize = dss
        .iter()
        .map(|d| u64::from(d.datatype.size))
        .min()
        .unwrap_or(1);
    let (mut structures, mut fixed) = Claimed::split_of(inv, image);
    // Index nodes whose records were carved (a node is written whole, its
    // unused records zero).
    for ds in inv.objects.iter().filter_map(|o| o.dataset.as_ref()) {
        for r in &ds.beyond_index.records {
            if let Some(n) = node_size(ds, r.structure, so) {
                structures.add(r.at, r.at.saturating_add(n));
            }
        }
    }
    proven_structures(inv, image, &dss, r0, &mut structures);
    for &(s, e) in stream_spans {
        fixed.add(s, e);
    }
    structures.seal();
    fixed.seal();
    let chain = raw_chain(bytes, r0, size, esize, &holes, &structures, &fixed);
    search.unfiltered_found = chain.pieces.len() as u64;
    search.unfiltered_stopped = chain.stopped.clone();
    if chain.pieces.is_empty() {
        return;
    }
    let group: Vec<Stream> = chain
        .pieces
        .iter()
        .map(|&offset| Stream {
            offset,
            stream_len: size,
            stored_len: size,
            inflated_len: size,
            fletcher32: false,
        })
        .collect();
    let sig = (size, false);
    if templates.len() != 1 {
        let names: Vec<String> = templates.iter().map(|t| t.path.clone()).collect();
        let mut st = stray(
            Stray::SeveralDatasets(names.clone()),
            names,
            templates.into_iter().next().map(|t| t.dataset),
            sig,
            &group,
        );
        st.unfiltered = true;
        search.stray.push(st);
        return;
    }
    let t = templates.remove(0);
    // Every chunk allocated before the stored end of file (when the header
    // was last written: its extent covered them) must lie at or below the
    // last chunk the index proves, else how many precede the found ones is
    // unknown. Gaps between proven chunks are checked by `place_by_order`.
    let c0 = match &t.dataset.layout.class {
        LayoutClass::Chunked { dims, .. } => dims.first().copied().unwrap_or(0).max(1),
        _ => 1,
    };
    let proven_end = t
        .dataset
        .chunks
        .iter()
        .filter(|c| c.present)
        .filter_map(|c| c.offset.first().map(|&o| o / c0 + 1))
        .max()
        .unwrap_or(0);
    let stored_end = t
        .dataset
        .dataspace
        .dims
        .first()
        .map_or(0, |&d| d.div_ceil(c0));
    // Or the last chunk the index proves was allocated past the stored end
    // of file (after the superblock was written): an appender allocates its
    // chunks in position order, so every chunk allocated before then lies
    // below it, in a gap between proven chunks whose count `place_by_order`
    // checks (a version-2 B-tree whose node splits lost records, with a
    // header evicted after the flush, proves fewer chunks than its extent).
    let last_after_r0 = t
        .dataset
        .chunks
        .iter()
        .filter(|c| c.present)
        .max_by_key(|c| c.offset.first().copied().unwrap_or(0))
        .is_some_and(|c| {
            !is_undefined(c.address) && image.absolute(c.address).is_some_and(|a| a >= r0)
        });
    let all_proven = proven_end >= stored_end || last_after_r0;
    // Another file's template says nothing about how many chunks the input
    // had before `r0`: placing from chunk 0 needs the input to prove the
    // dataset did not exist then.
    let foreign_unproven = foreign_unproven(inv, bytes, &t);
    if foreign_unproven && chain.complete {
        search.unfiltered_stopped = Some((
            r0,
            format!(
                "{}: described by a template from another file, but no group the input read \
                 whole shows it absent at the stored end of file: how many chunks precede the \
                 found ones is unknown",
                t.path
            ),
        ));
    }
    if !chain.complete || !all_proven || foreign_unproven {
        let why = if chain.start_unproven {
            Stray::StartUnproven
        } else {
            Stray::ChainBroken
        };
        let mut st = stray(why, vec![t.path.clone()], Some(t.dataset), sig, &group);
        st.unfiltered = true;
        search.stray.push(st);
        return;
    }
    place_group(inv, image, t, sig, &group, opts.infer, true, search);
}

/// Adds to `structures` the index structures past `r0` whose whole
/// allocated span is proven, so that the unfiltered chain reads them (and
/// the unused, zero tail of a node) as part of a hole:
///
/// - every node of a dataset's version-1 B-tree chunk index that the walk
///   from its root reads and accepts, and every `TREE` past `r0` tied to
///   those by sibling pointers as the carve ties leaves
///   ([`super::chunk_records::tied_v1_nodes`]; spec III.A.1: a node is
///   allocated at its full size for 2K entries, K = 32, however many it
///   uses);
/// - every `EADB` past `r0` that names the extensible array header the
///   layout of a dataset of `dss` or of the input names and verifies its
///   checksum at the size that array's creation parameters give its block
///   offset (spec VII.D), pages included
///   ([`follow::extensible_array::proven_data_block_spans`]). The parameters
///   come from the `EAHD` when it is on disk with a valid checksum, else
///   from the layout message for unfiltered chunks (one address per
///   element; a template's layout names the header address the writer
///   gives every run of the same program). A hit that names another header
///   or fails its checksum claims nothing.
fn proven_structures(
    inv: &Inventory,
    image: &Image,
    dss: &[&Dataset],
    r0: u64,
    structures: &mut Claimed,
) {
    use crate::follow::extensible_array::{proven_data_block_spans, unfiltered_header};
    use crate::format::extensible_array::{parse_header, HEADER};
    let so = u64::from(image.sizes.offset());
    let own: Vec<&Dataset> = inv
        .objects
        .iter()
        .filter(|o| o.hard_link_of.is_none())
        .filter_map(|o| o.dataset.as_deref())
        .collect();
    // The v1 B-tree node size assumes K = 32, the default, as
    // [`hole_sizes`] does; libhdf5 writes a version-1 superblock only to
    // store another (spec II.A "Indexed Storage Internal Node K").
    let k32 = inv.superblock.as_ref().is_none_or(|sb| sb.version != 1);
    let Some(tail) = usize::try_from(r0).ok().and_then(|r| image.bytes.get(r..)) else {
        return;
    };
    let hits = super::signatures::find_signatures(tail);
    let of = |k: super::signatures::Kind| -> Vec<u64> {
        hits.iter()
            .filter(|h| h.kind == k)
            .map(|h| r0.saturating_add(h.offset))
            .collect()
    };
    let tree = of(super::signatures::Kind::Tree);
    for o in inv
        .objects
        .iter()
        .filter(|o| o.hard_link_of.is_none() && k32)
    {
        let Some(ds) = &o.dataset else { continue };
        let LayoutClass::Chunked {
            index: ChunkIndex::BtreeV1 { address },
            ..
        } = &ds.layout.class
        else {
            continue;
        };
        let Some(n) = node_size(ds, "TREE", so) else {
            continue;
        };
        if is_undefined(*address) {
            continue;
        }
        let rank = ds.dataspace.dims.len();
        let walked = crate::follow::btree_v1::chunk_nodes(image, *address, rank);
        let tied = super::chunk_records::tied_v1_nodes(image, o, &tree);
        // A node may start before `r0` and end past it (the aggregator
        // grew at the end of the file after the superblock was written).
        for a in walked.into_iter().chain(tied) {
            if let Some(abs) = image.absolute(a) {
                let end = abs.saturating_add(n);
                if end > r0 {
                    structures.add(abs, end);
                }
            }
        }
    }
    let arrays: Vec<&Dataset> = own
        .iter()
        .chain(dss)
        .copied()
        .filter(|ds| {
            matches!(
                ds.layout.class,
                LayoutClass::Chunked {
                    index: ChunkIndex::ExtensibleArray { .. },
                    ..
                }
            )
        })
        .collect();
    let eadb = of(super::signatures::Kind::Eadb);
    if arrays.is_empty() || eadb.is_empty() {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    for ds in arrays {
        let LayoutClass::Chunked {
            index: index @ ChunkIndex::ExtensibleArray { address, .. },
            ..
        } = &ds.layout.class
        else {
            continue;
        };
        if is_undefined(*address) {
            continue;
        }
        let on_disk = image.absolute(*address).and_then(|at| {
            let h = parse_header(image.at(HEADER, *address).ok()?, at, image.sizes).ok()?;
            h.checksum_ok.then_some(h)
        });
        let Some(header) = on_disk
            .or_else(|| raw_signature(ds).and_then(|_| unfiltered_header(image.sizes, index)))
        else {
            continue;
        };
        if !seen.insert((*address, header.client_id, header.element_size)) {
            continue;
        }
        for (s, len) in proven_data_block_spans(image, *address, &header, &eadb) {
            structures.add(s, s.saturating_add(len));
        }
    }
}

/// Whether `t` comes from another file and the input does not prove its
/// dataset absent when the superblock was last written: then how many of
/// its chunks precede the found ones is unknown (its own index, which could
/// tell, is not read).
fn foreign_unproven(inv: &Inventory, bytes: &[u8], t: &Template) -> bool {
    let r0 = inv.superblock.as_ref().map(|sb| sb.stored_file_size());
    t.from.is_some()
        && !absent_when_stored(inv, &t.path)
        && !r0.is_some_and(|r0| nothing_stored(inv, bytes, r0))
}

/// Whether the input proves `path` did not exist when its superblock was
/// last written: the nearest group above it that the input has was found
/// by the walk and read whole (intact), and lists nothing under that name.
fn absent_when_stored(inv: &Inventory, path: &str) -> bool {
    let mut child = path.trim_end_matches('/');
    while let Some(i) = child.rfind('/') {
        if inv.object(child).is_some() || inv.links.iter().any(|l| l.path == child) {
            return false;
        }
        let parent = if i == 0 { "/" } else { &child[..i] };
        if let Some(g) = inv.object(parent) {
            return g.kind == ObjectKind::Group
                && g.origin == crate::inventory::Origin::Walk
                && g.status == Status::Intact;
        }
        if parent == "/" {
            return false;
        }
        child = parent;
    }
    false
}

/// Whether the stored file is the superblock and nothing else ever written:
/// it ends within libhdf5's first metadata aggregator block (no raw data
/// was allocated before `r0`) and every byte from the root group's header
/// address to `r0` is zero (that header never reached the disk). No dataset
/// had a chunk before `r0`, whatever the root group would have listed.
/// (A writer that shrank or disabled the metadata block and wrote an
/// all-zero chunk there before the superblock is not told apart.)
fn nothing_stored(inv: &Inventory, bytes: &[u8], r0: u64) -> bool {
    let Some(sb) = &inv.superblock else {
        return false;
    };
    let Some(root) = sb.root_address.and_then(|a| sb.base_address.checked_add(a)) else {
        return false;
    };
    r0.saturating_sub(sb.offset) <= META_BLOCK
        && root < r0
        && usize::try_from(root)
            .ok()
            .zip(usize::try_from(r0).ok())
            .and_then(|(a, b)| bytes.get(a..b))
            .is_some_and(|z| z.iter().all(|&b| b == 0))
}

// ---------------------------------------------------------------------
// Unfiltered chunks (issue 13, item 2, no filter pipeline).
//
// An unfiltered chunk carries no framing and no checksum: it is just
// `chunk size` bytes. They are cut from the allocation chain under a model
// of libhdf5's allocator, checked where the bytes allow, and searched only
// where that model holds:
//
// * only past the superblock's stored end of file (space allocated after
//   the superblock was last written: the writer did not close the file; a
//   closed file, healthy or not, has no such space, so the freed chunks of
//   a deleted dataset are never searched);
// * libhdf5 allocates each evicted chunk at the end of the file; between
//   chunks lie only metadata allocations (index nodes, aggregator blocks)
//   that are never written before a flush (all zero bytes) or are carved
//   structures; their sizes are known from the dataset's index ([`hole_sizes`]);
// * the end of the file is the end of the last write, a chunk boundary.
//
// [`raw_chain`] walks back from the end of the file: at each boundary the
// run of zero bytes before it is read as `k` all-zero chunks then one hole
// size `h` (0 included), leaving fewer than one element's bytes of zeros at
// the end of the chunk before it (its last element has a non-zero byte);
// each reading less than an element below the shortest such one (the chunk
// before may end with a zero element) is a reading too. Where exactly one
// reading fits, a hole alone (k = 0), the walk goes on. Where several do
// (two hole sizes less than an element apart: PyTables' 408-byte records
// between 2048-byte aggregator blocks and 2096-byte version-1 B-tree nodes,
// spec III.A.1, K = 32, rank 1; or all-zero chunks), each is followed as a
// branch by the same rules. A contradiction refutes its reading (a piece
// before `r0` or over a known structure or allocation, the chain ending
// inside one, and a piece holding a hole's zeros: 2 KiB in a row, a
// stated residual risk); a rule true chunks can meet too (a chunk after
// zeros starting with a zero element, a zero run no reading explains, a
// metadata signature in a piece) refutes nothing: the search stops at the
// first fork ([`Step::Unresolved`]). A reading shifted by less than an element
// keeps its shift until the next hole of the true chain, where its piece
// holds that hole's zeros, or until `r0`, where its first piece starts
// before it or leaves zeros that are not a metadata size. A branch survives
// only by reaching `r0` *exactly*: only zero bytes from `r0` to its first
// piece, exactly one hole size, shorter than a chunk (the first allocation
// after the superblock was written starts at `r0`, spec II.A "End of File
// Address"; no chunk end lies before it, so no element slack applies).
// The pieces are taken only when exactly one path survives, with no
// all-zero chunk, and no other path reaches `r0` at all (one that reaches
// it inexactly may be the true one: an h5py libver-earliest writer's first
// chunk lies 1968 bytes after `r0`); two paths meeting at one boundary are
// two. When the only path that reaches `r0` reaches it inexactly, its
// pieces are the cut but the chain is not complete (never placed by
// order: /lost+found). Otherwise the chain stops at its first ambiguous
// run, as without branches. Where no run forks, the zero run from `r0` to
// the first piece is read as strictly as a hole: shorter than a chunk, any
// size is accepted (no all-zero chunk fits); a chunk or longer, it must
// have exactly one reading, a hole alone (k = 0), else all-zero chunks (a
// writer's first rows of zeros) may lie there: the pieces are cut, not
// placed ([`RawChain::start_unproven`], /lost+found). Paths are expanded from the end of the file down, highest
// boundary first, so paths meeting at a boundary are merged before it is
// walked (each boundary once); at most [`MAX_BRANCHES`] boundaries are
// followed at once and a run with [`MAX_READINGS`] readings is not
// followed (the chain stops at its first ambiguous run). A chunk whose last
// element is zero, a zero run no reading explains, or readings no single
// path resolves stop the chain (nothing is guessed). The pieces are then
// placed by the same allocation-order rules as compressed chunks, only
// when the chain reaches back to the stored end of file and the index
// proves every earlier chunk.

/// Metadata signatures a piece must not contain (a written structure in
/// what the chain would take for a chunk stops it).
const META_SIGNATURES: [&[u8; 4]; 20] = [
    b"TREE", b"HEAP", b"SNOD", b"OHDR", b"OCHK", b"GCOL", b"FRHP", b"FHDB", b"FHIB", b"FSHD",
    b"FSSE", b"BTHD", b"BTIN", b"BTLF", b"EAHD", b"EAIB", b"EASB", b"EADB", b"FAHD", b"FADB",
];

/// libhdf5's default metadata (and small raw data) aggregator block size.
pub const META_BLOCK: u64 = 2048;

/// Hole sizes are sums of up to this many base sizes ...
const MAX_HOLE_SUMS: usize = 3;
/// ... of at most this many distinct base sizes (bounded: many templates).
const MAX_HOLE_BASES: usize = 64;

/// Byte size of an unfiltered chunk of `ds`: chunked, no filter pipeline,
/// a fixed-size type without addresses.
pub(super) fn raw_signature(ds: &Dataset) -> Option<u64> {
    let LayoutClass::Chunked { dims, .. } = &ds.layout.class else {
        return None;
    };
    if ds.filters.as_ref().is_some_and(|f| !f.filters.is_empty()) {
        return None;
    }
    if ds.datatype.is_variable_length() || ds.datatype.contains_reference() {
        return None;
    }
    ds.chunk_bytes(dims).filter(|&b| b > 0)
}

/// netCDF-4 convention (netCDF-C `libhdf5`, "dimension without a
/// variable"): a netCDF dimension that has no coordinate variable is kept
/// as an HDF5 dimension scale whose `NAME` attribute starts with this text
/// (then the length, `%10d`); netCDF-C creates it (chunks of one element
/// when the dimension is unlimited, default allocation time) and never
/// writes its raw data.
const NC_DIM_WITHOUT_VARIABLE: &[u8] = b"This is a netCDF dimension but not a netCDF variable.";

/// Whether object `o` of `inv` provably never had a chunk written, from its
/// own recorded attributes: a netCDF-4 dimension without a variable
/// (`CLASS` = "DIMENSION_SCALE", `NAME` starting with
/// [`NC_DIM_WITHOUT_VARIABLE`]) in a file the netCDF-C library wrote (the
/// root group's `_NCProperties` lists a `netcdf=` version), whose space is
/// not allocated early (an early allocation would put chunks of fill value
/// on disk). Such a dataset takes no part in the unfiltered chunk search:
/// its chunk size is not a size the allocation chain can hold. Decided on
/// typed attribute values (fixed-length strings), never on messages.
fn never_written(inv: &Inventory, o: &crate::inventory::Object) -> bool {
    use crate::format::message::fill_value::alloc_time;
    let text = |o: &crate::inventory::Object, name: &str| -> Option<Vec<u8>> {
        let a = o.attributes.iter().find(|a| a.name == name)?;
        let dt = a.message.datatype.as_ref()?;
        if !matches!(
            dt.class,
            crate::format::message::datatype::DatatypeClass::String { .. }
        ) || !a.message.value_is_exact()
        {
            return None;
        }
        let v = &a.message.value;
        let end = v
            .iter()
            .rposition(|&b| b != 0 && b != b' ')
            .map_or(0, |i| i + 1);
        Some(v[..end].to_vec())
    };
    let Some(ds) = &o.dataset else { return false };
    let early = ds
        .fill_value
        .as_ref()
        .is_some_and(|f| f.space_allocation_time == alloc_time::EARLY);
    let by_netcdf_c = inv
        .object("/")
        .and_then(|r| text(r, "_NCProperties"))
        .is_some_and(|p| {
            p.split(|&b| b == b',')
                .any(|kv| kv.starts_with(b"netcdf=") && kv.len() > 7)
        });
    !early
        && by_netcdf_c
        && text(o, "CLASS").as_deref() == Some(b"DIMENSION_SCALE".as_slice())
        && text(o, "NAME").is_some_and(|n| n.starts_with(NC_DIM_WITHOUT_VARIABLE))
}

/// Size of a chunk-index node `structure` of `ds` whose size the layout
/// gives: a version-1 B-tree node (K = 32, spec III.A.1) or a version-2
/// B-tree node (spec III.A.2).
fn node_size(ds: &Dataset, structure: &str, so: u64) -> Option<u64> {
    let LayoutClass::Chunked { dims, index, .. } = &ds.layout.class else {
        return None;
    };
    match (index, structure) {
        (ChunkIndex::BtreeV1 { .. }, "TREE") => {
            let (k, rank) = (32u64, dims.len() as u64 + 1);
            Some(8 + 2 * so + (2 * k + 1) * (8 + 8 * rank) + 2 * k * so)
        }
        (ChunkIndex::BtreeV2 { node_size, .. }, "BTLF" | "BTIN") => Some(u64::from(*node_size)),
        _ => None,
    }
}

/// Sizes a run of never-written metadata between two chunks can have for
/// datasets `dss` (offsets of `so` bytes): whole aggregator blocks, the
/// chunk index's own nodes when they are larger (a version-1 B-tree node
/// of K = 32, spec III.A.1; a version-2 B-tree node; extensible-array data
/// blocks of 2048 bytes or more, spec VII.B), and sums of up to three.
/// `None` past [`MAX_HOLE_BASES`] base sizes: dropping some could turn an
/// ambiguous zero run into an accepted one.
pub fn hole_sizes(dss: &[&Dataset], so: u64) -> Option<Vec<u64>> {
    let mut base = vec![META_BLOCK];
    for ds in dss {
        let LayoutClass::Chunked { index, .. } = &ds.layout.class else {
            continue;
        };
        base.extend(node_size(ds, "TREE", so));
        base.extend(node_size(ds, "BTLF", so));
        if let ChunkIndex::ExtensibleArray {
            max_bits,
            min_elements,
            page_bits,
            ..
        } = index
        {
            let off = u64::from(max_bits.div_ceil(8));
            let page = 1u64 << (*page_bits).min(24);
            let mut n = u64::from(*min_elements).max(1);
            while n <= page {
                let size = 4 + 1 + 1 + so + off + n * so + 4;
                if size >= META_BLOCK {
                    base.push(size);
                }
                n *= 2;
            }
        }
    }
    base.sort_unstable();
    base.dedup();
    if base.len() > MAX_HOLE_BASES {
        return None;
    }
    let mut sums = base.clone();
    let mut last = base.clone();
    for _ in 1..MAX_HOLE_SUMS {
        let next: Vec<u64> = last
            .iter()
            .flat_map(|a| base.iter().map(move |b| a + b))
            .collect();
        sums.extend(&next);
        last = next;
    }
    sums.sort_unstable();
    sums.dedup();
    Some(sums)
}

/// The allocation chain of unfiltered chunks walked back from the end of
/// `bytes` down to `r0` (see the section note).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawChain {
    /// Absolute offsets of the chunks found, in file order.
    pub pieces: Vec<u64>,
    /// The chain reached `r0` (only zero bytes, structures and known
    /// allocations before its first chunk).
    pub complete: bool,
    /// Where and why it stopped, when not complete.
    pub stopped: Option<(u64, String)>,
    /// It reached `r0` on a single path, but the zero run before its first
    /// piece is a chunk or longer and not exactly one metadata size: the
    /// pieces are cut, how many all-zero chunks precede them is unknown.
    pub start_unproven: bool,
}

/// Walks the chain of unfiltered chunks of `size` bytes (elements of
/// `esize` bytes) from the end of `bytes` back to `r0`; `holes` (sorted)
/// are the sizes of metadata allocations ([`hole_sizes`]). `structures`:
/// metadata the inventory explains (part of a hole); `fixed`: other known
/// allocations (indexed chunks, zlib streams), whose ends are boundaries.
/// A zero run with several readings is followed in each ([`Branches`]).
pub fn raw_chain(
    bytes: &[u8],
    r0: u64,
    size: u64,
    esize: u64,
    holes: &[u64],
    structures: &Claimed,
    fixed: &Claimed,
) -> RawChain {
    let esize = esize.max(1);
    let walk = RawWalk {
        bytes,
        r0,
        size,
        esize,
        holes,
        structures,
        fixed,
        // One pass over each piece for every signature.
        signatures: aho_corasick::AhoCorasick::new(META_SIGNATURES.iter().map(|s| &s[..])).ok(),
        min_hole: holes.first().copied().unwrap_or(META_BLOCK).max(esize),
    };
    Branches::default().search(&walk, bytes.len() as u64)
}

/// A chunk boundary of the walk: its offset, and whether a piece of the
/// chain starts there (not the end of the file or a known allocation).
type Boundary = (u64, bool);

/// Why a reading has no piece ([`RawWalk::edge`]), at an offset.
enum Refusal {
    /// A contradiction with what is known (a piece before `r0`, over a
    /// known structure or allocation; a piece holding a hole's zeros, a
    /// stated residual risk): the reading is false.
    Hard(u64, String),
    /// Bytes a true chunk can hold too (a metadata signature): the reading
    /// is not proven, nor refuted.
    Ambiguous(u64, String),
}

/// What the walk finds before one boundary ([`RawWalk::step`]).
enum Step {
    /// Only zero bytes and known structures lie between `r0` and it;
    /// `exact`: they are exactly one metadata size (or nothing), shorter
    /// than a chunk; `unproven`: why they may hold all-zero chunks (a
    /// chunk or more, not exactly one reading with none).
    End {
        exact: bool,
        unproven: Option<String>,
    },
    /// A contradiction stops the chain there (where, why): after a fork,
    /// it refutes the path (the chain ends inside a known allocation or
    /// structure, a piece would lie before `r0` or over one).
    Stop(u64, String),
    /// The bytes there have no reading the model proves (too many
    /// readings, a zero run no reading explains, a chunk starting with a
    /// zero element, a piece holding a metadata signature): true chunks
    /// can do that, so after a fork it refutes nothing and the search
    /// stops at the first fork.
    Unresolved(u64, String),
    /// One reading, a hole alone: where it leads.
    One(Edge),
    /// Several readings (or all-zero chunks): those no rule stops.
    Fork {
        /// Start of the zero run.
        q: u64,
        why: String,
        edges: Vec<Edge>,
    },
}

/// One reading of a zero run: the boundary it leads to, the piece that
/// starts there (none when a known allocation ends there), and whether it
/// reads all-zero chunks (never taken: a chunk of zeros or a hole).
struct Edge {
    next: Boundary,
    piece: Option<u64>,
    zero_chunks: bool,
}

/// The walk's model of the bytes past `r0` ([`raw_chain`]'s arguments).
struct RawWalk<'a> {
    bytes: &'a [u8],
    r0: u64,
    size: u64,
    esize: u64,
    holes: &'a [u64],
    structures: &'a Claimed,
    fixed: &'a Claimed,
    signatures: Option<aho_corasick::AhoCorasick>,
    /// A zero run this long inside a piece could hide a hole.
    min_hole: u64,
}

impl RawWalk<'_> {
    /// The readings of the zero run before the boundary `b`, by the rules
    /// of the section note; pure (depends on `b` only).
    fn step(&self, (mut pos, mut after_piece): Boundary) -> Step {
        let (r0, size, esize) = (self.r0, self.size, self.esize);
        let (structures, fixed) = (self.structures, self.fixed);
        loop {
            if pos <= r0 {
                return Step::End {
                    exact: true,
                    unproven: None,
                };
            }
            // A known allocation ending here: the boundary before it is its start.
            let Some(e) = fixed.covering(pos - 1) else {
                break;
            };
            if e != pos {
                return Step::Stop(pos, "the chain ends inside a known allocation".into());
            }
            pos = fixed.start_of(pos - 1).unwrap_or(r0);
            after_piece = false;
        }
        if structures.covering(pos - 1).is_some_and(|e| e > pos) {
            return Step::Stop(pos, "the chain ends inside a known structure".into());
        }
        // The run of zero bytes and known structures before `pos`; the
        // longest stretch of zeros between them (or `pos`, or `r0`).
        let mut q = pos;
        let (mut gap_end, mut max_gap, mut via_structure) = (pos, 0u64, false);
        while q > r0 {
            if let Some(s) = structures.start_of(q - 1) {
                max_gap = max_gap.max(gap_end - q);
                via_structure = true;
                q = s.max(r0);
                gap_end = q;
                continue;
            }
            if fixed.covering(q - 1).is_some() {
                break;
            }
            let lim = [structures.prev_end(q), fixed.prev_end(q)]
                .into_iter()
                .flatten()
                .fold(r0, u64::max);
            let run = self.bytes.get(lim as usize..q as usize).unwrap_or(&[]);
            match run.iter().rposition(|&b| b != 0) {
                Some(i) => {
                    q = lim + i as u64 + 1;
                    break;
                }
                None => q = lim,
            }
        }
        let z = pos - q;
        // The chunk after a hole (or after the zeros that reach `r0`) must
        // start with an element that is not all zero: else its start, and
        // every position before it, could be off by that element.
        let leads_zero = z > 0
            && after_piece
            && self
                .bytes
                .get(pos as usize..(pos + esize) as usize)
                .is_none_or(|e| e.iter().all(|&b| b == 0));
        if leads_zero {
            return Step::Unresolved(
                pos,
                format!("the chunk at {pos:#x}, after zero bytes, starts with a zero element"),
            );
        }
        if q <= r0 {
            // The first allocation after the superblock was written starts
            // at `r0` (spec II.A "End of File Address"): no chunk end, so
            // the run is read with no element slack. `exact` (after a fork):
            // exactly one metadata size, shorter than a chunk (no all-zero
            // chunk fits, even beside a metadata block of a size the model
            // lacks). On a single path, a run of a chunk or more must have
            // exactly one reading, a hole alone (k = 0), as in the middle of
            // the chain: else all-zero chunks may lie there (a writer's first
            // rows of zeros) and every position after them is unknown.
            // Known structures (proven spans, e.g. the chunk index's root
            // node straddling `r0`) with every zero stretch around them
            // shorter than a chunk: no all-zero chunk fits anywhere in the
            // run, and its length is what those spans make it.
            if via_structure && max_gap.max(gap_end.saturating_sub(r0)) < size {
                return Step::End {
                    exact: true,
                    unproven: None,
                };
            }
            let one = readings(self.holes, size, z, z);
            let unproven = (z >= size && one != [(0, z)]).then(|| {
                format!(
                    "{z} zero bytes from the stored end of file {r0:#x} to the first chunk                      at {pos:#x}: a chunk or more, and not exactly one metadata size                      (readings (all-zero chunks, metadata size): {one:?}): all-zero chunks                      may lie there, how many is unknown: cut, not placed"
                )
            });
            return Step::End {
                exact: z < size && one == [(0, z)],
                unproven,
            };
        }
        if pos == self.bytes.len() as u64 && z > 0 && !via_structure {
            return self.last_piece(pos, z);
        }
        let pinned = fixed.covering(q - 1).is_some();
        // Every reading of the run: `k` all-zero chunks then one hole (0
        // included). It must equal `z` when pinned, else leave fewer than an
        // element's zero bytes at the end of the chunk before (`fit`); each
        // reading within an element below the shortest of those is one too
        // (`all`: the chunk before may end with a zero element).
        let lo = if pinned {
            z
        } else {
            (z + 1).saturating_sub(esize)
        };
        let fit = readings(self.holes, size, lo, z);
        let Some(least) = fit.iter().map(|&(k, h)| k * size + h).min() else {
            return Step::Unresolved(
                q,
                format!(
                    "{z} zero bytes before {pos:#x} match no metadata size \
                     (or a chunk ends with a zero element)"
                ),
            );
        };
        let all = if pinned {
            fit.clone()
        } else {
            readings(self.holes, size, (least + 1).saturating_sub(esize), z)
        };
        if all.len() >= MAX_READINGS {
            return Step::Unresolved(
                q,
                format!(
                    "{z} zero bytes before {pos:#x} fit {MAX_READINGS} or more readings \
                     (all-zero chunks, metadata size): {all:?}"
                ),
            );
        }
        let why = if fit.len() > 1 || fit[0].0 > 0 {
            format!(
                "{z} zero bytes before {pos:#x} fit several readings \
                 (all-zero chunks, metadata size): {fit:?}"
            )
        } else if all.len() > 1 {
            format!(
                "{z} zero bytes before {pos:#x}: readings (all-zero chunks, metadata size) \
                 within an element of each other: {all:?}"
            )
        } else {
            return match self.edge(pos, q, pinned, 0, all[0].1) {
                Ok(e) => Step::One(e),
                Err(Refusal::Hard(at, why)) => Step::Stop(at, why),
                Err(Refusal::Ambiguous(at, why)) => Step::Unresolved(at, why),
            };
        };
        let mut edges = Vec::new();
        for &(k, h) in &all {
            match self.edge(pos, q, pinned, k, h) {
                Ok(e) => edges.push(e),
                // A contradiction refutes the reading ...
                Err(Refusal::Hard(..)) => {}
                // ... an ambiguity does not: it may be the true one.
                Err(Refusal::Ambiguous(at, stop)) => {
                    return Step::Unresolved(q, format!("{why}; one stops at {at:#x}: {stop}"));
                }
            }
        }
        Step::Fork { q, why, edges }
    }

    /// Where the reading (`k` all-zero chunks, hole `h`) of the zero run
    /// `[q, pos)` leads: the piece before it, checked, or why there is none.
    fn edge(&self, pos: u64, q: u64, pinned: bool, k: u64, h: u64) -> Result<Edge, Refusal> {
        let zero_chunks = k > 0;
        if pinned {
            // The run fills the space after the known allocation exactly.
            return Ok(Edge {
                next: (q, false),
                piece: None,
                zero_chunks,
            });
        }
        let start = self.piece(pos - k * self.size - h, 0)?;
        Ok(Edge {
            next: (start, true),
            piece: Some(start),
            zero_chunks,
        })
    }

    /// The piece ending at `end`, checked: its start, or why there is no
    /// piece there. Its last `tail` bytes are the zero tail the end of the
    /// file explains ([`RawWalk::last_piece`]), not a hole.
    fn piece(&self, end: u64, tail: u64) -> Result<u64, Refusal> {
        let Some(start) = end.checked_sub(self.size).filter(|&s| s >= self.r0) else {
            return Err(Refusal::Hard(
                end,
                "a chunk would start before the stored end of file".into(),
            ));
        };
        if self.structures.overlaps(start, end) || self.fixed.overlaps(start, end) {
            return Err(Refusal::Hard(
                start,
                "a chunk would overlap a known structure or allocation".into(),
            ));
        }
        let piece = &self.bytes[start as usize..end as usize];
        if self.signatures.as_ref().is_none_or(|a| a.is_match(piece)) {
            return Err(Refusal::Ambiguous(
                start,
                "the bytes before hold a metadata signature".into(),
            ));
        }
        // A long zero run inside could hide a hole (a chunk shifted by it):
        // refutes the reading (how a shifted reading dies at the next true
        // hole; residual risk: a true chunk holding that many zeros).
        let min_hole = self.min_hole;
        let body = &piece[..piece.len().saturating_sub(tail as usize)];
        if body
            .split(|&b| b != 0)
            .any(|run| run.len() as u64 >= min_hole)
        {
            return Err(Refusal::Hard(
                start,
                format!("the chunk at {start:#x} holds {min_hole} or more zero bytes in a row (a hole?)"),
            ));
        }
        Ok(start)
    }

    /// The zero run of `z` bytes before the end of the file `end`: the
    /// zero tail of the last chunk, never a hole. The end of the file is
    /// the end of the last write: a file grows only by writes, or by
    /// libhdf5's truncate to its end of allocation at a flush or close,
    /// after which its superblock stores that end (spec II.A "End of File
    /// Address": `r0`), so past `r0` no never-written allocation can end
    /// the file. An appender whose chunk is larger than its chunk cache
    /// writes the partly filled last chunk whole at every step, its
    /// unwritten rows the fill value (zero): the last piece is `[end -
    /// size, end)`, one reading. A run of a chunk or more: all-zero
    /// chunks, how many unknown: the chain stops.
    fn last_piece(&self, end: u64, z: u64) -> Step {
        if z >= self.size {
            return Step::Unresolved(
                end - z,
                format!(
                    "the last {z} bytes of the file are zero, a chunk or more: written \
                     all-zero chunks cannot be counted"
                ),
            );
        }
        match self.piece(end, z) {
            Ok(start) => Step::One(Edge {
                next: (start, true),
                piece: Some(start),
                zero_chunks: false,
            }),
            Err(Refusal::Hard(at, why)) => Step::Stop(at, why),
            Err(Refusal::Ambiguous(at, why)) => Step::Unresolved(at, why),
        }
    }
}

/// The paths from the end of the file to one boundary: how many (2 =
/// several), the first piece of the one path (in `Branches::offsets`),
/// whether one reads all-zero chunks.
#[derive(Clone, Copy, Debug)]
struct Paths {
    n: u8,
    tip: u32,
    zero: bool,
}

impl Paths {
    fn merge(self, o: Paths) -> Paths {
        Paths {
            n: self.n.saturating_add(o.n).min(2),
            tip: self.tip,
            zero: self.zero || o.zero,
        }
    }
}

/// No piece (the path from the end of the file has none yet).
const NO_PIECE: u32 = u32::MAX;

/// Most boundaries followed at once; past it the chain stops at its first
/// fork.
const MAX_BRANCHES: usize = 16;

/// The search over every reading ([`raw_chain`], section note): boundaries
/// are expanded from the end of the file down, highest first, so the paths
/// that meet at one are merged before it is expanded (each boundary is
/// walked once, whatever the number of paths to it).
#[derive(Default)]
struct Branches {
    /// Every piece cut, with the index of the piece after it on its path
    /// (toward the end of the file; [`NO_PIECE`] for the last).
    offsets: Vec<u64>,
    parents: Vec<u32>,
    /// Boundaries reached and not yet expanded.
    live: BTreeMap<Boundary, Paths>,
    /// The first zero run with several readings: where, why, the path to it.
    first_fork: Option<(u64, String, u32)>,
    /// Paths that reached `r0` exactly / otherwise.
    exact: Option<Paths>,
    inexact: Option<Paths>,
}

impl Branches {
    fn search(mut self, walk: &RawWalk, eof: u64) -> RawChain {
        let start = Paths {
            n: 1,
            tip: NO_PIECE,
            zero: false,
        };
        self.live.insert((eof, false), start);
        while let Some((mut at, mut paths)) = self.live.pop_last() {
            loop {
                if self.offsets.len() >= MAX_STREAMS {
                    return match self.first_fork {
                        None => self.chain(paths.tip, false, None),
                        Some(_) => self.at_fork("; too many pieces"),
                    };
                }
                let next = match walk.step(at) {
                    Step::End { exact, unproven } => {
                        if self.first_fork.is_none() {
                            let Some(why) = unproven else {
                                return self.chain(paths.tip, true, None);
                            };
                            let mut c = self.chain(paths.tip, false, Some((walk.r0, why)));
                            c.start_unproven = true;
                            return c;
                        }
                        let end = if exact {
                            &mut self.exact
                        } else {
                            &mut self.inexact
                        };
                        *end = Some(end.map_or(paths, |e| e.merge(paths)));
                        None
                    }
                    Step::Stop(pos, why) => {
                        if self.first_fork.is_none() {
                            return self.chain(paths.tip, false, Some((pos, why)));
                        }
                        // A contradiction refutes the reading (an ambiguity
                        // is `Unresolved`: it may be the true one).
                        None
                    }
                    Step::Unresolved(pos, why) => {
                        return match self.first_fork {
                            None => self.chain(paths.tip, false, Some((pos, why))),
                            Some(_) => self.at_fork(&format!("; then {why}")),
                        };
                    }
                    Step::One(e) => Some(self.extend(paths, &e)),
                    Step::Fork { q, why, edges } => {
                        if self.first_fork.is_none() {
                            self.first_fork = Some((q, why, paths.tip));
                        }
                        for e in &edges {
                            let (b, p) = self.extend(paths, e);
                            self.add(b, p);
                        }
                        if self.live.len() > MAX_BRANCHES {
                            return self.at_fork(&format!(
                                "; more than {MAX_BRANCHES} readings followed at once"
                            ));
                        }
                        None
                    }
                };
                if let Some(note) = self.hopeless(next.map(|n| n.1)) {
                    return self.at_fork(note);
                }
                match next {
                    // Go on in place while no other path can reach it.
                    Some((b, p)) if self.live.last_key_value().is_none_or(|(k, _)| k.0 < b.0) => {
                        (at, paths) = (b, p);
                    }
                    Some((b, p)) => {
                        self.add(b, p);
                        break;
                    }
                    None => break,
                }
            }
        }
        match (self.exact, self.inexact) {
            (Some(p), None) if p.n == 1 && !p.zero => self.chain(p.tip, true, None),
            // One cut, but its start is not proven: for /lost+found only.
            (None, Some(p)) if p.n == 1 && !p.zero => {
                let (at, why, _) = self.first_fork.clone().unwrap_or_default();
                let why = format!(
                    "{why}; the only reading reaches the stored end of file, not exactly one \
                     metadata size (shorter than a chunk) after it: cut, not placed"
                );
                self.chain(p.tip, false, Some((at, why)))
            }
            (exact, inexact) => {
                let why = match (exact, inexact) {
                    (None, None) => "; no reading reaches the stored end of file",
                    (Some(_), Some(_)) => {
                        "; one reading reaches the stored end of file exactly, another not"
                    }
                    (Some(p), None) | (None, Some(p)) if p.n > 1 => {
                        "; two or more readings reach the stored end of file"
                    }
                    _ => "; the only reading that reaches the stored end of file reads all-zero chunks",
                };
                self.at_fork(why)
            }
        }
    }

    /// Why no path can be taken any more (after a fork; `current`: the
    /// path being followed, not in `live`), if none can: two or more
    /// reached `r0` (exactly or not), or one with all-zero chunks, or
    /// none did and every path left reads all-zero chunks.
    fn hopeless(&self, current: Option<Paths>) -> Option<&'static str> {
        self.first_fork.as_ref()?;
        let taken = |p: Option<Paths>| p.is_some_and(|p| p.n > 1 || p.zero);
        if taken(self.exact)
            || taken(self.inexact)
            || self.exact.is_some() && self.inexact.is_some()
        {
            return Some(
                "; two or more readings reach the stored end of file (or one with all-zero chunks)",
            );
        }
        let none = self.exact.is_none() && self.inexact.is_none();
        if none && current.iter().chain(self.live.values()).all(|p| p.zero) {
            return Some("; no reading without all-zero chunks reaches the stored end of file");
        }
        None
    }

    /// `p` with the edge `e` taken, and where it leads.
    fn extend(&mut self, mut p: Paths, e: &Edge) -> (Boundary, Paths) {
        p.zero |= e.zero_chunks;
        if let Some(at) = e.piece {
            self.offsets.push(at);
            self.parents.push(p.tip);
            p.tip = (self.offsets.len() - 1) as u32;
        }
        (e.next, p)
    }

    fn add(&mut self, b: Boundary, p: Paths) {
        let v = self.live.get(&b).map_or(p, |o| o.merge(p));
        self.live.insert(b, v);
    }

    /// The chain stopped at the first fork, with `note` on its reason.
    fn at_fork(&self, note: &str) -> RawChain {
        match &self.first_fork {
            Some((at, why, tip)) => self.chain(*tip, false, Some((*at, format!("{why}{note}")))),
            None => self.chain(NO_PIECE, false, None),
        }
    }

    /// The pieces of the path whose first piece is `tip`, in file order.
    fn chain(&self, tip: u32, complete: bool, stopped: Option<(u64, String)>) -> RawChain {
        let mut pieces = Vec::new();
        let mut i = tip;
        while let Some(&at) = self.offsets.get(i as usize) {
            pieces.push(at);
            i = self.parents[i as usize];
        }
        RawChain {
            pieces,
            complete,
            stopped,
            start_unproven: false,
        }
    }
}

/// The readings of a run of zero bytes whose length lies in `[a, b]`: `k`
/// all-zero chunks of `size` bytes followed by one hole of `holes` (sorted)
/// or none, as `(k, hole)`; at most [`MAX_READINGS`] (enough to refuse).
fn readings(holes: &[u64], size: u64, a: u64, b: u64) -> Vec<(u64, u64)> {
    let size = size.max(1);
    let mut out = Vec::new();
    for h in std::iter::once(0).chain(holes.iter().copied()) {
        if h > b {
            break;
        }
        let mut k = (b - h) / size;
        while k.saturating_mul(size).saturating_add(h) >= a && out.len() < MAX_READINGS {
            out.push((k, h));
            let Some(next) = k.checked_sub(1) else { break };
            k = next;
        }
        if out.len() >= MAX_READINGS {
            break;
        }
    }
    out
}

/// Readings of one zero run listed at most (two already refuse it).
const MAX_READINGS: usize = 8;

fn stray(
    reason: Stray,
    candidates: Vec<String>,
    layout: Option<Dataset>,
    sig: (u64, bool),
    group: &[Stream],
) -> StrayChunks {
    StrayChunks {
        reason,
        candidates,
        // Its template's chunk list says nothing about stray chunks (and
        // would be held once per stack): dropped.
        layout: layout.map(|ds| Dataset {
            chunks: Vec::new(),
            ..ds
        }),
        inflated_len: sig.0,
        chunks: group.iter().map(|s| (s.offset, s.stored_len)).collect(),
        fletcher32: sig.1,
        unfiltered: false,
    }
}

/// Places one signature's streams into the one dataset that has it
/// (`unfiltered`: raw pieces of the unfiltered chain, marked unverified).
#[allow(clippy::too_many_arguments)]
fn place_group(
    inv: &mut Inventory,
    image: &Image,
    t: Template,
    sig: (u64, bool),
    group: &[Stream],
    infer: bool,
    unfiltered: bool,
    search: &mut ChunkSearch,
) {
    let names = vec![t.path.clone()];
    let stray = |why, names, layout, sig, group: &[Stream]| StrayChunks {
        unfiltered,
        ..stray(why, names, layout, sig, group)
    };
    if !infer {
        search
            .stray
            .push(stray(Stray::NoInfer, names, Some(t.dataset), sig, group));
        return;
    }
    let ds = &t.dataset;
    let LayoutClass::Chunked { dims: cdims, .. } = &ds.layout.class else {
        return;
    };
    let dims = &ds.dataspace.dims;
    let appendable = !dims.is_empty()
        && cdims.len() == dims.len()
        && cdims.first().is_some_and(|&c| c > 0)
        && cdims
            .iter()
            .zip(dims)
            .skip(1)
            .all(|(&c, &d)| c >= d && c > 0);
    if !appendable {
        search.stray.push(stray(
            Stray::NotAppendable,
            names,
            Some(t.dataset),
            sig,
            group,
        ));
        return;
    }
    let c0 = cdims[0];
    let expected = usize::try_from(sig.0).unwrap_or(usize::MAX);
    let decode = |stored: &[u8], mask: u32| {
        filters::reverse_pipeline(
            stored,
            ds.filters.as_ref(),
            mask,
            ds.datatype.size,
            expected,
        )
    };
    // Anchors: indexed chunks on the grid whose bytes lie in the file (the
    // record proves position and address even when the bytes there were
    // since rewritten).
    let mut anchors = Vec::new();
    for c in &ds.chunks {
        let on_grid = c.offset.first().is_some_and(|&o| o % c0 == 0)
            && c.offset.iter().skip(1).all(|&o| o == 0);
        let Some(abs) = image.absolute(c.address) else {
            continue;
        };
        if !on_grid || !c.present || !image.contains(c.address, c.size) {
            continue;
        }
        anchors.push(Anchor {
            offset: abs,
            index: c.offset[0] / c0,
            len: c.size,
        });
    }
    let listed: std::collections::HashSet<u64> = ds
        .chunks
        .iter()
        .filter_map(|c| c.offset.first().map(|&o| o / c0))
        .collect();
    let last = anchors.iter().max_by_key(|a| a.index).copied();
    // The last record's bytes as it wrote them: only while they still frame
    // exactly as long as it says (the inflater ignores bytes after a
    // stream's end: a shorter chunk that took the freed block would decode
    // as its old content). Otherwise it is stale (`stale_tail` below).
    let mut d = flate2::Decompress::new(true);
    let mut out = Vec::new();
    let last_frames = !unfiltered
        && last.is_some_and(|l| {
            ds.chunks.iter().any(|c| {
                c.present
                    && c.filter_mask == 0
                    && image.absolute(c.address) == Some(l.offset)
                    && c.offset.first().map(|&o| o / c0) == Some(l.index)
                    && frames(image, c, sig.0, sig.1, &mut d, &mut out)
            })
        });
    let tail: Option<(u64, Vec<u8>)> = last.filter(|_| last_frames).and_then(|l| {
        let lo = usize::try_from(l.offset).ok()?;
        let stored = image
            .bytes
            .get(lo..lo.checked_add(usize::try_from(l.len).ok()?)?)?;
        Some((l.index, decode(stored, 0).ok()?))
    });
    // The last indexed chunk reaches past the stored extent: partly filled.
    let stored0 = dims[0];
    // (An unfiltered chunk is rewritten in place: its record stays right.)
    let partial_tail =
        !unfiltered && last.is_some_and(|l| l.index.saturating_add(1).saturating_mul(c0) > stored0);
    // But libhdf5 can write a later chunk while that partly filled one is
    // still dirty in its cache: its rows past the stored extent are then the
    // fill value written with the header, not data. Not proven: named.
    let unproven = last
        .filter(|_| unfiltered)
        .map(|l| (stored0, l.index.saturating_add(1).saturating_mul(c0)))
        .filter(|&(a, b)| b > a);
    let row_bytes = cdims
        .iter()
        .skip(1)
        .try_fold(u64::from(ds.datatype.size), |a, &d| a.checked_mul(d))
        .unwrap_or(0);
    // Older versions of a proven chunk: an SWMR writer never frees a
    // chunk's old version, so the partly filled one a flush wrote stays in
    // the file before the whole one. A found stream before a proven chunk
    // (in file order) whose rows up to its last non-zero byte are the
    // leading rows of the next proven chunk, the rest zero (the fill value
    // of rows not yet written then), is that chunk's older version, not a
    // chunk of its own: left out of the order, to /lost+found. Only in a
    // gap that holds no position (between proven chunks i and i + 1, or
    // before a proven chunk 0): elsewhere a dropped stream could balance a
    // wrong count. Never for unfiltered chunks (rewritten in place).
    let mut by_offset = anchors.clone();
    by_offset.sort_by_key(|x| x.offset);
    let decoded = |offset: u64, len: u64| -> Option<Vec<u8>> {
        let lo = usize::try_from(offset).ok()?;
        let stored = image
            .bytes
            .get(lo..lo.checked_add(usize::try_from(len).ok()?)?)?;
        decode(stored, 0).ok()
    };
    let rb = usize::try_from(row_bytes).unwrap_or(0);
    // The proven chunk last decoded (streams come in file order).
    let mut cache: Option<(usize, Option<Vec<u8>>)> = None;
    let mut older_version = |s: &Stream| -> bool {
        let k = by_offset.partition_point(|x| x.offset <= s.offset);
        let Some(next) = by_offset.get(k) else {
            return false;
        };
        let first = k
            .checked_sub(1)
            .map_or(Some(0), |j| by_offset[j].index.checked_add(1));
        if unfiltered || first != Some(next.index) {
            return false;
        }
        if cache.as_ref().is_none_or(|(c, _)| *c != k) {
            cache = Some((k, decoded(next.offset, next.len)));
        }
        let (Some(old), Some((_, Some(new)))) = (decoded(s.offset, s.stored_len), &cache) else {
            return false;
        };
        let used = old
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| (i / rb.max(1) + 1) * rb);
        rb > 0
            && used > 0
            && used < old.len()
            && old.len() == new.len()
            && old[..used] == new[..used]
    };
    let (older, group): (Vec<Stream>, Vec<Stream>) = group.iter().partition(|s| older_version(s));
    let group = &group[..];
    let offsets: Vec<(u64, u64)> = group.iter().map(|s| (s.offset, s.stored_len)).collect();
    // The partly filled last chunk rewritten after the flush where its
    // record points: its recorded bytes no longer frame (libhdf5 frees a
    // chunk's old version right before allocating the new one, which then
    // reuses the freed block). A found stream starting at that address is
    // its newer version, unless a later found stream is longer than the
    // record (a new version too long for the freed block went elsewhere,
    // and a later chunk could have taken the block).
    let stale_tail = last.filter(|l| {
        tail.is_none()
            && group
                .iter()
                .filter(|g| g.offset > l.offset)
                .all(|g| g.stored_len <= l.len)
    });
    let mut newer = |i: usize| -> bool {
        let Some(s) = group.get(i) else {
            return false;
        };
        if let Some(l) = stale_tail {
            return s.offset == l.offset;
        }
        let Some((ti, old)) = &tail else {
            return false;
        };
        // The record's own bytes frame: a stream there is not a newer one.
        if last.is_some_and(|l| s.offset == l.offset) {
            return false;
        }
        let rows = stored0.saturating_sub(ti * c0);
        let n = usize::try_from(rows.saturating_mul(row_bytes)).unwrap_or(usize::MAX);
        let lo = usize::try_from(s.offset).unwrap_or(usize::MAX);
        let hi = usize::try_from(s.end()).unwrap_or(usize::MAX);
        let Some(stored) = image.bytes.get(lo..hi) else {
            return false;
        };
        match decode(stored, 0) {
            Ok(new) => n > 0 && new.get(..n).is_some_and(|p| Some(p) == old.get(..n)),
            Err(_) => false,
        }
    };
    let slots = place_by_order(&anchors, &offsets, partial_tail, &mut newer);
    let max0 = ds
        .dataspace
        .max_dims
        .as_ref()
        .and_then(|m| m.first().copied())
        .unwrap_or(stored0);
    // A file its writer closed has final extents: a chunk no index lists
    // is not an append the header missed but another object's (its header
    // lost), never placed past the stored extent (a zeroed page took the
    // header of anndata's layers/counts/indptr, whose chunk was placed as
    // rows 301.. of raw/X/indptr, the one dataset of that chunk size left).
    let closed = inv.superblock.as_ref().is_some_and(|sb| {
        sb.stored_file_size() == image.bytes.len() as u64 && !sb.open_for_write()
    });
    let mut placed: Vec<(u64, &Stream, bool)> = Vec::new();
    let mut left: Vec<(Stray, Stream)> = Vec::new();
    for (slot, s) in slots.into_iter().zip(group) {
        match slot {
            Slot::At(i) | Slot::Replaces(i) if i.checked_mul(c0).is_none_or(|o| o >= max0) => {
                left.push((Stray::BeyondMaxShape, *s));
            }
            Slot::At(i) | Slot::Replaces(i)
                if closed && i.checked_mul(c0).is_none_or(|o| o >= stored0) =>
            {
                left.push((Stray::BeyondClosedExtent, *s));
            }
            // The index lists that position elsewhere (bytes outside the
            // file): order and record disagree.
            Slot::At(i) if listed.contains(&i) => left.push((Stray::OrderInconsistent, *s)),
            Slot::At(i) => placed.push((i, s, false)),
            Slot::Replaces(i) => placed.push((i, s, true)),
            Slot::Left(why) => left.push((why, *s)),
        }
    }
    left.extend(older.into_iter().map(|s| (Stray::OlderVersion, s)));
    // Left chunks, one stack per reason.
    let mut by_reason: Vec<(Stray, Vec<Stream>)> = Vec::new();
    for (why, s) in left {
        match by_reason.iter_mut().find(|(w, _)| *w == why) {
            Some((_, v)) => v.push(s),
            None => by_reason.push((why, vec![s])),
        }
    }
    for (why, v) in by_reason {
        search
            .stray
            .push(stray(why, names.clone(), Some(t.dataset.clone()), sig, &v));
    }
    if placed.is_empty() {
        return;
    }
    let path = t.path.clone();
    apply(inv, image, t, placed, c0, unfiltered, search);
    if let (Some((a, b)), Some(p)) = (unproven, search.placed.last_mut()) {
        if p.path == path {
            p.rule.push_str(&format!(
                "; rows {a}..{b} along dimension 0 are read from the partly filled last \
                 indexed chunk as it is on disk: libhdf5 may have written the chunks after it \
                 while it was still dirty, so they may be its fill value, not data (unproven)"
            ));
        }
    }
}

/// Adds placed chunks to the dataset (creating it from its template when
/// the input lacks it) and grows its extent.
fn apply(
    inv: &mut Inventory,
    image: &Image,
    t: Template,
    placed: Vec<(u64, &Stream, bool)>,
    c0: u64,
    unfiltered: bool,
    search: &mut ChunkSearch,
) {
    let idx = match inv
        .objects
        .iter()
        .position(|o| o.path == t.path && o.hard_link_of.is_none())
    {
        Some(i) => i,
        None => {
            let mut o = crate::inventory::Object::new(t.path.clone(), crate::format::UNDEFINED);
            o.kind = ObjectKind::Dataset;
            o.origin = crate::inventory::Origin::Carve;
            let mut ds = t.dataset.clone();
            ds.chunks.clear();
            if let Some(d0) = ds.dataspace.dims.first_mut() {
                *d0 = 0;
            }
            ds.coverage = crate::inventory::Coverage {
                chunks_total: Some(0),
                chunks_present: Some(0),
                index_complete: true,
                ..Default::default()
            };
            o.dataset = Some(Box::new(ds));
            let from = t.from.clone().unwrap_or_default();
            o.damage(
                Status::Partial,
                Problem::new(
                    ProblemKind::Inferred,
                    None,
                    "dataset header",
                    format!(
                        "not on disk: type, chunk shape and filters taken from the template {} in {from}",
                        t.path
                    ),
                ),
            );
            inv.objects.push(o);
            inv.objects.len() - 1
        }
    };
    let o = &mut inv.objects[idx];
    let Some(ds) = o.dataset.as_mut() else { return };
    let stored_dims = ds.dataspace.dims.clone();
    let rank = stored_dims.len();
    let mut record = PlacedChunks {
        path: o.path.clone(),
        stored_dims: stored_dims.clone(),
        rule: String::new(),
        template: t.from.as_ref().map(|f| format!("{} in {f}", t.path)),
        chunks: Vec::new(),
    };
    let mut replaced = 0;
    for (i, s, replaces) in placed {
        let mut offset = vec![0u64; rank];
        offset[0] = i * c0;
        if replaces {
            replaced += 1;
        }
        ds.chunks.retain(|c| c.offset != offset);
        let Some(addr) = s.offset.checked_sub(image.base) else {
            continue;
        };
        ds.chunks.push(ChunkRef {
            offset: offset.clone(),
            address: addr,
            size: s.stored_len,
            filter_mask: 0,
            present: true,
        });
        record.chunks.push((offset, s.offset));
    }
    // Chunks that start inside the stored extent do not grow it (the
    // stored shape may be current: a damaged index, not a stale header).
    let end = record
        .chunks
        .iter()
        .filter(|(off, _)| off[0] >= stored_dims.first().copied().unwrap_or(0))
        .filter_map(|(off, _)| off[0].checked_add(c0))
        .max()
        .unwrap_or(0);
    if let Some(d0) = ds.dataspace.dims.first_mut() {
        *d0 = (*d0).max(end);
    }
    if let Some(m) = ds.dataspace.max_dims.as_mut().and_then(|m| m.first_mut()) {
        if !is_undefined(*m) {
            *m = (*m).max(ds.dataspace.dims[0]);
        }
    }
    ds.coverage.chunks_total = Some(ds.chunks.len() as u64);
    ds.coverage.chunks_present = Some(ds.chunks.iter().filter(|c| c.present).count() as u64);
    record.rule = format!(
        "allocation order: {} chunk(s) no index lists, in file order, placed after the \
         chunks the index proves (from chunk 0 when it proves none), one chunk of {c0} \
         along dimension 0 each{}; extent {:?} -> {:?}",
        record.chunks.len(),
        if replaced > 0 {
            "; a found chunk longer than an index record at the same address, or \
             repeating the leading rows of a partly filled last indexed chunk, or \
             starting where that chunk's record points when the recorded bytes no \
             longer decode (rewritten there) and no later found chunk is longer than \
             the record, replaces it (a newer version)"
        } else {
            ""
        },
        stored_dims,
        ds.dataspace.dims
    );
    if unfiltered {
        record.rule = format!(
            "UNVERIFIED unfiltered chunks (no framing, no checksum: the bytes are as found, \
             their positions inferred): cut from the allocation chain walked back from the end \
             of the file to the stored end of file, the zero runs between chunks read as \
             metadata allocation sizes in exactly one way; {}",
            record.rule
        );
    }
    let grown = ds.dataspace.dims.clone();
    o.damage(
        Status::Partial,
        Problem::new(
            ProblemKind::Inferred,
            record.chunks.first().map(|c| c.1),
            "chunk",
            format!(
                "{} {}chunk(s) placed by allocation order, not by an index record (extent {:?}, stored {:?})",
                record.chunks.len(),
                if unfiltered { "unverified unfiltered " } else { "" },
                grown,
                stored_dims
            ),
        ),
    );
    search.placed.push(record);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn chunk(seed: u64, n: usize) -> Vec<u8> {
        (0..n as u64)
            .flat_map(|i| ((seed * 1000 + i) as f64).to_le_bytes())
            .collect()
    }

    #[test]
    fn zlib_headers() {
        assert!(is_zlib_header(0x78, 0x9c));
        assert!(is_zlib_header(0x78, 0x01));
        assert!(is_zlib_header(0x78, 0xda));
        assert!(!is_zlib_header(0x78, 0x00));
        assert!(!is_zlib_header(0x79, 0x9c));
        assert!(!is_zlib_header(0x78, 0xbb), "preset dictionary");
    }

    #[test]
    fn framing_is_exact_and_bounded() {
        let plain = chunk(3, 100);
        let z = zlib(&plain);
        let mut file = vec![0u8; 10];
        file.extend_from_slice(&z);
        file.extend_from_slice(&filters::fletcher32(&z).to_le_bytes());
        file.extend_from_slice(&[0x78, 0x9c, 1, 2, 3]);
        let mut d = flate2::Decompress::new(true);
        let mut out = Vec::new();
        assert_eq!(
            frame_deflate(&file, 10, plain.len(), true, &mut d, &mut out),
            Some((z.len(), true, plain.len()))
        );
        // Wrong expected size: no frame, and never more than the cap inflated.
        assert_eq!(
            frame_deflate(&file, 10, plain.len() - 1, true, &mut d, &mut out),
            None
        );
        assert!(out.len() <= plain.len());
        assert_eq!(
            frame_deflate(&file, 10, plain.len() + 1, true, &mut d, &mut out),
            None
        );
        // Not at a stream start, cut stream.
        assert_eq!(
            frame_deflate(&file, 11, 1 << 20, false, &mut d, &mut out),
            None
        );
        let cut = &file[..10 + z.len() - 1];
        assert_eq!(
            frame_deflate(cut, 10, plain.len(), true, &mut d, &mut out),
            None
        );
    }

    #[test]
    fn chain_walk_finds_streams_skipping_claimed_spans() {
        let mut file = vec![0u8; 2048];
        let mut expect = Vec::new();
        for k in 0..5u64 {
            let z = zlib(&chunk(k, 64));
            expect.push((file.len() as u64, z.len() as u64));
            file.extend_from_slice(&z);
            if k == 2 {
                file.extend_from_slice(&[0x78, 0x9c, 0, 0, 0, 0x55]); // junk header
            }
        }
        // A claimed span holding a stream: skipped.
        let claimed_at = file.len() as u64;
        let z = zlib(&chunk(9, 64));
        file.extend_from_slice(&z);
        let mut c = Claimed::default();
        c.add(claimed_at, claimed_at + z.len() as u64);
        c.add(0, 96);
        c.seal();
        let (found, stopped) = find_streams(&file, &c, 1 << 20);
        assert_eq!(stopped, None);
        let got: Vec<(u64, u64)> = found.iter().map(|s| (s.offset, s.stored_len)).collect();
        assert_eq!(got, expect);
        assert!(found.iter().all(|s| s.inflated_len == 512 && !s.fletcher32));
    }

    #[test]
    fn parallel_search_equals_one_thread() {
        // Streams of varied lengths, junk between some, a claimed span,
        // a truncated stream: every cut of the file into segments must
        // give the one-thread chain exactly.
        let mut file = vec![0u8; 300];
        for k in 0..60u64 {
            let n = 16 + (k as usize * 37) % 400;
            file.extend_from_slice(&zlib(&chunk(k, n)));
            if k % 7 == 3 {
                file.extend_from_slice(&[0x78, 0x9c, 1, 2, 3, 0x78, 0xda]);
            }
            if k == 30 {
                let z = zlib(&chunk(99, 200));
                file.extend_from_slice(&z[..z.len() / 2]);
            }
        }
        let mut c = Claimed::default();
        c.add(0, 96);
        c.add(5000, 5300);
        c.seal();
        let one = search(&file, &c, 1 << 20, 1);
        assert!(one.0.len() >= 50, "{}", one.0.len());
        for threads in 2..=9 {
            assert_eq!(
                search(&file, &c, 1 << 20, threads),
                one,
                "{threads} threads"
            );
        }
    }

    #[test]
    fn almost_streams_are_bounded() {
        // A zlib stream of 1 MiB of zeros without its end: every attempt
        // inflates 1 MiB and fails. 300 of them in 300 KiB: the budget for
        // failed attempts (4 bytes per file byte + 256 MiB) stops the
        // search before 300 MiB of work.
        let z = zlib(&vec![0u8; 1 << 20]);
        let cut = &z[..z.len() - 8];
        let mut file = Vec::new();
        for _ in 0..300 {
            file.extend_from_slice(cut);
        }
        let t = std::time::Instant::now();
        let (found, stopped) = find_streams(&file, &Claimed::default(), 16 << 20);
        assert!(found.is_empty());
        assert!(
            stopped.is_some(),
            "the budget for failed attempts did not stop it"
        );
        assert!(t.elapsed().as_secs() < 60, "{:?}", t.elapsed());
    }

    fn a(offset: u64, index: u64) -> Anchor {
        Anchor {
            offset,
            index,
            len: 5,
        }
    }

    fn f(offsets: &[u64]) -> Vec<(u64, u64)> {
        offsets.iter().map(|&o| (o, 5)).collect()
    }

    #[test]
    fn placement_by_order() {
        let mut never = |_: usize| false;
        // No anchors: from 0.
        assert_eq!(
            place_by_order(&[], &f(&[10, 20, 30]), false, &mut never),
            vec![Slot::At(0), Slot::At(1), Slot::At(2)]
        );
        // Gap filled exactly, then the tail.
        assert_eq!(
            place_by_order(&[a(5, 0), a(40, 3)], &f(&[10, 20, 50]), false, &mut never),
            vec![Slot::At(1), Slot::At(2), Slot::At(4)]
        );
        // A gap with nothing found is consistent (those chunks are missing).
        assert_eq!(
            place_by_order(&[a(5, 0), a(40, 3)], &f(&[50]), false, &mut never),
            vec![Slot::At(4)]
        );
        // One too many in a gap: that gap and everything after are left.
        let s = place_by_order(&[a(5, 0), a(40, 2)], &f(&[10, 20, 50]), false, &mut never);
        assert_eq!(s, vec![Slot::Left(Stray::OrderInconsistent); 3]);
        // One too few: the same.
        let s = place_by_order(&[a(5, 0), a(40, 3)], &f(&[10, 50]), false, &mut never);
        assert_eq!(s, vec![Slot::Left(Stray::OrderInconsistent); 2]);
        // Anchors out of order.
        let s = place_by_order(&[a(5, 3), a(40, 2)], &f(&[50]), false, &mut never);
        assert_eq!(s, vec![Slot::Left(Stray::ProvenOutOfOrder)]);
        // Partial tail: replaced by a newer version, or everything left.
        assert_eq!(
            place_by_order(&[a(5, 0), a(40, 1)], &f(&[50, 60]), true, &mut never),
            vec![Slot::Left(Stray::PartialTail); 2]
        );
        let mut first = |i: usize| i == 0;
        assert_eq!(
            place_by_order(&[a(5, 0), a(40, 1)], &f(&[50, 60]), true, &mut first),
            vec![Slot::Replaces(1), Slot::At(2)]
        );
        // Rewritten in place (same address, longer): a newer version of the
        // partly filled tail; what follows continues after it.
        assert_eq!(
            place_by_order(&[a(5, 0), a(40, 1)], &[(40, 9), (50, 5)], true, &mut never),
            vec![Slot::Replaces(1), Slot::At(2)]
        );
        // Same address, not longer: not a newer version; the tail check
        // still applies.
        assert_eq!(
            place_by_order(&[a(5, 0), a(40, 1)], &[(40, 5), (50, 5)], true, &mut never),
            vec![Slot::Left(Stray::PartialTail); 2]
        );
        // The partly filled tail in a block freed earlier (out of file
        // order), directly after the others: set aside, its newer version
        // follows the others.
        let mut first = |i: usize| i == 0;
        let tail_early = [a(10, 0), a(30, 1), a(20, 2)];
        assert_eq!(
            place_by_order(&tail_early, &f(&[40, 50]), true, &mut first),
            vec![Slot::Replaces(2), Slot::At(3)]
        );
        // ... its newer version missing: nothing placed.
        assert_eq!(
            place_by_order(&tail_early, &f(&[40, 50]), true, &mut never),
            vec![Slot::Left(Stray::PartialTail); 2]
        );
        // Not partly filled, or not directly after the others, or another
        // proven chunk out of order: nothing placed.
        for (anchors, partial) in [
            (&tail_early[..], false),
            (&[a(10, 0), a(30, 1), a(20, 3)][..], true),
            (&[a(10, 1), a(30, 0), a(20, 2)][..], true),
        ] {
            assert_eq!(
                place_by_order(anchors, &f(&[40]), partial, &mut first),
                vec![Slot::Left(Stray::ProvenOutOfOrder)]
            );
        }
    }
    /// An unfiltered chunk of `n` f64 rows like an appender's: its first
    /// bytes are zero (low mantissa bytes), its last is not.
    fn raw(seed: u64, n: usize) -> Vec<u8> {
        (0..n as u64)
            .flat_map(|i| (((seed << 24) + i) as f64 * 65536.0).to_le_bytes())
            .collect()
    }

    fn claimed(spans: &[(u64, u64)]) -> Claimed {
        let mut c = Claimed::default();
        for &(s, e) in spans {
            c.add(s, e);
        }
        c.seal();
        c
    }

    #[test]
    fn raw_chain_steps_over_metadata_holes() {
        // r0 = 100; 60 zero bytes (less than a chunk: a gap of unknown
        // size, no zero chunk fits), chunks A B, a 2048 hole, C, a 2616
        // hole, D E up to the end of the file.
        // 72-byte chunks: no count of them fills a hole (64 would: 32 all-zero
        // chunks read as a 2048 hole, ambiguous).
        let s = 72usize;
        let mut file = vec![7u8; 100];
        file.extend(vec![0u8; 60]);
        let mut expect = Vec::new();
        for (k, hole) in [(1u64, 0usize), (2, 0), (3, 2048), (4, 2616), (5, 0)] {
            file.extend(vec![0u8; hole]);
            expect.push(file.len() as u64);
            file.extend(raw(k, s / 8));
        }
        assert_eq!(file[expect[0] as usize], 0, "chunks start with zero bytes");
        let holes = [2048, 2616, 4096, 4664, 5232];
        let none = Claimed::default();
        let c = raw_chain(&file, 100, s as u64, 8, &holes, &none, &none);
        assert_eq!(c.pieces, expect);
        assert!(c.complete, "{:?}", c.stopped);
        // A hole size that is not a metadata size: the chain stops there
        // and keeps only what it proved after it.
        let c = raw_chain(&file, 100, s as u64, 8, &[2616], &none, &none);
        assert!(!c.complete);
        assert_eq!(c.pieces, expect[2..]);
        // Two sizes that both explain a zero run: stops (no guess).
        let c = raw_chain(&file, 100, s as u64, 8, &[2048, 2610, 2616], &none, &none);
        assert!(!c.complete);
        assert_eq!(c.pieces, expect[3..]);
    }

    #[test]
    fn raw_chain_reads_the_zero_run_at_r0_as_strictly_as_a_hole() {
        // r0 = 100, `z0` zero bytes, then chunks A B C (72 bytes, each
        // starting with a non-zero element) up to the end of the file.
        let s = 72usize;
        let holes = [2048, 2120, 4096];
        let none = Claimed::default();
        let file = |z0: usize, zero_first: bool| {
            let mut file = vec![7u8; 100];
            file.extend(vec![0u8; z0]);
            let mut at = Vec::new();
            for k in 1..=3u64 {
                at.push(file.len() as u64);
                let mut c = raw(k, s / 8);
                if zero_first && k == 1 {
                    c.fill(0);
                }
                file.extend(c);
            }
            (file, at)
        };
        let run = |z0: usize, zero_first: bool, holes: &[u64]| {
            let (f, at) = file(z0, zero_first);
            (raw_chain(&f, 100, s as u64, 8, holes, &none, &none), at)
        };
        // Shorter than a chunk: no zero chunk fits, any gap is accepted.
        let (c, at) = run(60, false, &holes);
        assert_eq!((&c.pieces, c.complete), (&at, true), "{:?}", c.stopped);
        assert!(!c.start_unproven);
        // A chunk or more, exactly one reading, a hole alone: accepted.
        let (c, at) = run(4096, false, &holes);
        assert_eq!((&c.pieces, c.complete), (&at, true), "{:?}", c.stopped);
        // The writer's first chunk all zero (its first rows zero): 60 + 72
        // zero bytes, no reading; cut, not complete (placing would put
        // every row one chunk early).
        let (c, at) = run(60, true, &holes);
        assert_eq!((&c.pieces, c.complete), (&at[1..].to_vec(), false));
        assert!(c.start_unproven, "{c:?}");
        let (at_r0, why) = c.stopped.expect("stopped");
        assert_eq!(at_r0, 100);
        assert!(why.contains("cut, not placed"), "{why}");
        // A zero chunk beside a metadata block: one reading, k = 1.
        let (c, at) = run(2048, true, &[2048, 4096]);
        assert_eq!((&c.pieces, c.complete), (&at[1..].to_vec(), false));
        assert!(c.start_unproven);
        // Two readings: a 2120 hole, or a zero chunk and a 2048 block.
        let (c, at) = run(2120, false, &holes);
        assert_eq!((&c.pieces, c.complete), (&at, false));
        assert!(c.start_unproven);
        // A chunk or more of no metadata size: an unknown gap could hide
        // zero chunks.
        let (c, at) = run(700, false, &holes);
        assert_eq!((&c.pieces, c.complete), (&at, false));
        assert!(c.start_unproven);
    }

    #[test]
    fn raw_chain_reads_zeros_at_the_end_of_the_file_as_the_last_chunks_tail() {
        // r0 = 100, 60 zero bytes, chunks A B, a 2048 hole, C, and D, the
        // partly filled last chunk (38 of 300 rows written, the other 262
        // rows zero: 2096 bytes, a version-1 B-tree node's size) ending the
        // file.
        let s = 2400usize;
        let holes = [2048, 2096];
        let none = Claimed::default();
        let file = |rows: usize| {
            let mut file = vec![7u8; 100];
            file.extend(vec![0u8; 60]);
            let mut at = Vec::new();
            for (k, hole) in [(1u64, 0usize), (2, 0), (3, 2048), (4, 0)] {
                file.extend(vec![0u8; hole]);
                at.push(file.len() as u64);
                let mut c = raw(k, s / 8);
                if k == 4 {
                    c[rows * 8..].fill(0);
                }
                file.extend(c);
            }
            (file, at)
        };
        let (f, at) = file(38);
        let c = raw_chain(&f, 100, s as u64, 8, &holes, &none, &none);
        assert_eq!((&c.pieces, c.complete), (&at, true), "{:?}", c.stopped);
        // Zero rows at the end of the file of a chunk or more: all-zero
        // chunks, how many cannot be told: nothing.
        let (f, _) = file(0);
        let c = raw_chain(&f, 100, s as u64, 8, &holes, &none, &none);
        assert_eq!((c.pieces.len(), c.complete), (0, false));
        assert!(c.stopped.unwrap().1.contains("the last 2400 bytes"));
        // The last piece must still pass every rule: a metadata signature
        // in it stops the chain.
        let (mut f, _) = file(38);
        let n = f.len();
        f[n - s + 8..n - s + 12].copy_from_slice(b"TREE");
        let c = raw_chain(&f, 100, s as u64, 8, &holes, &none, &none);
        assert_eq!((c.pieces.len(), c.complete), (0, false));
    }

    #[test]
    fn raw_chain_refuses_what_it_cannot_prove() {
        let s = 64usize;
        let holes = [2048];
        let none = Claimed::default();
        // The chunk before a hole ends with a zero element: its end, hence
        // the hole's size, is unknown.
        let mut a = raw(1, s / 8);
        a[s - 8..].fill(0);
        let mut file = vec![0u8; 100];
        file.extend(&a);
        file.extend(vec![0u8; 2048]);
        let last = file.len() as u64;
        file.extend(raw(2, s / 8));
        let c = raw_chain(&file, 0, s as u64, 8, &holes, &none, &none);
        assert_eq!((c.pieces, c.complete), (vec![last], false));
        // A zero chunk next to a hole: chunk or hole cannot be told.
        let mut file = vec![0u8; 100];
        file.extend(raw(1, s / 8));
        file.extend(vec![0u8; 2048 + s]);
        let last = file.len() as u64;
        file.extend(raw(2, s / 8));
        let c = raw_chain(&file, 0, s as u64, 8, &holes, &none, &none);
        assert_eq!((c.pieces, c.complete), (vec![last], false));
        // A metadata signature where a chunk would be: stops.
        let mut file = vec![0u8; 100];
        let mut b = raw(1, s / 8);
        b[20..24].copy_from_slice(b"TREE");
        file.extend(&b);
        let last = file.len() as u64;
        file.extend(raw(2, s / 8));
        let c = raw_chain(&file, 0, s as u64, 8, &holes, &none, &none);
        assert_eq!((c.pieces, c.complete), (vec![last], false));
        // Nothing past r0: nothing.
        let c = raw_chain(&file, file.len() as u64, s as u64, 8, &holes, &none, &none);
        assert_eq!((c.pieces.len(), c.complete), (0, true));
    }

    #[test]
    fn raw_chain_passes_known_allocations_and_structures() {
        // An indexed chunk (fixed) and a carved node (structure) inside a
        // 2048 hole: the chain passes both; a gap after a known allocation
        // must be exactly a metadata size.
        let s = 72usize;
        let mut file = vec![0u8; 100];
        let a = file.len() as u64;
        file.extend(raw(1, s / 8));
        let idx = file.len() as u64;
        file.extend(raw(2, s / 8));
        let node = file.len() as u64;
        file.extend(b"TREE");
        file.extend(vec![9u8; 96]);
        file.extend(vec![0u8; 2048 - 100]);
        let b = file.len() as u64;
        file.extend(raw(3, s / 8));
        let fixed = claimed(&[(idx, idx + s as u64)]);
        let st = claimed(&[(node, node + 100)]);
        let c = raw_chain(&file, 50, s as u64, 8, &[2048], &st, &fixed);
        assert_eq!(c.pieces, vec![a, b]);
        assert!(c.complete, "{:?}", c.stopped);
        // Without the structure claimed, the node's bytes stop it.
        let c = raw_chain(&file, 50, s as u64, 8, &[2048], &Claimed::default(), &fixed);
        assert_eq!((c.pieces, c.complete), (vec![b], false));
        // A gap after the indexed chunk that is no metadata size: stops.
        let c = raw_chain(&file, 50, s as u64, 8, &[2000], &st, &fixed);
        assert!(!c.complete);
    }

    #[test]
    fn raw_chain_catches_a_chunk_whose_zero_tail_completes_another_hole() {
        // B ends with 568 zero bytes before a 2048 hole: the 2616 zero
        // bytes also fit a 2616 hole (a B-tree node). Taking it shifts A
        // and B by 568 bytes; the shifted first chunk then starts with
        // zero elements after the leading zeros: the chain stops, nothing
        // is complete, so nothing is placed by order.
        let s = 1024usize;
        let mut file = vec![0u8; 3000];
        file.extend(raw(1, s / 8));
        let mut b = raw(2, s / 8);
        b[s - 568..].fill(0);
        file.extend(&b);
        file.extend(vec![0u8; 2048]);
        let c = file.len() as u64;
        file.extend(raw(3, s / 8));
        let none = Claimed::default();
        let chain = raw_chain(&file, 100, s as u64, 8, &[2048, 2616], &none, &none);
        assert!(!chain.complete, "{chain:?}");
        assert_eq!(chain.pieces.last(), Some(&c));
        // A long zero run inside a piece stops the chain too.
        let mut file = vec![0u8; 100];
        let mut a = raw(1, 4096 / 8);
        a[1000..3100].fill(0);
        file.extend(&a);
        let last = file.len() as u64;
        file.extend(raw(2, 4096 / 8));
        let chain = raw_chain(&file, 0, 4096, 8, &[2048], &none, &none);
        assert_eq!((chain.pieces, chain.complete), (vec![last], false));
    }

    #[test]
    fn hole_sizes_of_a_v1_btree_dataset() {
        // Rank 2 (keys of 3 offsets): 24 + 65 * 32 + 64 * 8 = 2616, what
        // libhdf5 allocates for each chunk B-tree node; with 2048 blocks
        // and sums of up to three.
        let ds = Dataset {
            datatype: crate::format::message::datatype::Datatype::unsigned(8),
            dataspace: crate::format::message::dataspace::Dataspace {
                version: 1,
                kind: crate::format::message::dataspace::DataspaceKind::Simple,
                dims: vec![0, 50],
                max_dims: None,
            },
            layout: crate::format::message::data_layout::DataLayout {
                version: 3,
                class: LayoutClass::Chunked {
                    dims: vec![64, 50],
                    element_size: Some(8),
                    flags: 0,
                    index: ChunkIndex::BtreeV1 { address: 0 },
                },
            },
            filters: None,
            fill_value: None,
            external_files: false,
            chunks: Vec::new(),
            coverage: Default::default(),
            beyond_index: Default::default(),
        };
        assert_eq!(raw_signature(&ds), Some(64 * 50 * 8));
        let h = hole_sizes(&[&ds], 8).expect("few sizes");
        for x in [2048, 2616, 4096, 4664, 5232, 6144, 7848] {
            assert!(h.contains(&x), "{x} in {h:?}");
        }
        assert_eq!(h.len(), 9);
        // More base sizes than the bound (extensible arrays of many element
        // widths): no sizes at all rather than some dropped.
        let eas: Vec<Dataset> = (1..=8u8)
            .map(|w| {
                let mut d = ds.clone();
                if let LayoutClass::Chunked { index, .. } = &mut d.layout.class {
                    *index = ChunkIndex::ExtensibleArray {
                        address: 0,
                        max_bits: w * 8,
                        index_elements: 4,
                        min_pointers: 4,
                        min_elements: 16,
                        page_bits: 24,
                    };
                }
                d
            })
            .collect();
        let refs: Vec<&Dataset> = eas.iter().collect();
        assert_eq!(hole_sizes(&refs, 8), None);
        assert!(hole_sizes(&refs[..1], 8).is_some());
    }

    #[test]
    fn raw_chain_refuses_zero_chunks_read_as_a_hole() {
        let s = 1024usize;
        let mut file = vec![7u8; 100];
        let mut expect = vec![];
        expect.push(file.len() as u64);
        file.extend(raw(1, s / 8));
        expect.push(file.len() as u64);
        file.extend(vec![0u8; s]);
        expect.push(file.len() as u64);
        file.extend(vec![0u8; s]);
        expect.push(file.len() as u64);
        file.extend(raw(2, s / 8));
        let none = Claimed::default();
        let c = raw_chain(&file, 100, s as u64, 8, &[2048, 2616], &none, &none);
        assert!(
            !c.complete || c.pieces == expect,
            "two zero chunks: {c:?} expect {expect:?}"
        );
    }

    #[test]
    fn raw_chain_refuses_a_zero_chunk_of_hole_size() {
        let s = 2048usize;
        let mut file = vec![7u8; 100];
        let mut expect = vec![];
        for k in 0..3 {
            expect.push(file.len() as u64);
            if k == 1 {
                file.extend(vec![0u8; s]);
            } else {
                file.extend(raw(k + 1, s / 8));
            }
        }
        let none = Claimed::default();
        let c = raw_chain(&file, 100, s as u64, 8, &[2048, 2616], &none, &none);
        assert!(
            !c.complete || c.pieces == expect,
            "zero chunk: {c:?} expect {expect:?}"
        );
    }

    #[test]
    fn raw_chain_refuses_readings_within_an_element() {
        // holes 2048 and 2070 (extensible-array data block), 32-byte records
        let s = 4096usize;
        let chunk = |seed: u8, tz: usize| {
            let mut v: Vec<u8> = (0..s)
                .map(|i| ((i % 251) as u8).wrapping_add(seed) | 1)
                .collect();
            v[s - tz..].fill(0);
            v
        };
        let mut file = vec![7u8; 100];
        file.extend(vec![0u8; 2048]);
        let mut expect = vec![];
        expect.push(file.len() as u64);
        file.extend(chunk(1, 24));
        file.extend(vec![0u8; 2048]);
        expect.push(file.len() as u64);
        file.extend(chunk(2, 40));
        file.extend(vec![0u8; 2048]);
        expect.push(file.len() as u64);
        file.extend(chunk(3, 0));
        let none = Claimed::default();
        let c = raw_chain(
            &file,
            100,
            s as u64,
            32,
            &[2048, 2070, 4096, 4118, 4140],
            &none,
            &none,
        );
        assert!(
            !c.complete || c.pieces == expect,
            "shifted: {c:?} expect {expect:?}"
        );
    }

    /// A chunk of 64 PyTables-like records `(row int64, x float64[50])`
    /// (408 bytes each, 26112 in all): rows from `first`, every element
    /// non-zero.
    fn records(first: u64) -> Vec<u8> {
        (first..first + 64)
            .flat_map(|r| {
                let mut v = (r + 1).to_le_bytes().to_vec();
                v.extend((0..50u64).flat_map(|c| (((r << 16) + c + 1) as f64).to_le_bytes()));
                v
            })
            .collect()
    }

    /// PyTables' hole sizes (2048-byte blocks, 2096-byte rank-1 version-1
    /// B-tree nodes) and their sums.
    const PT_HOLES: [u64; 9] = [2048, 2096, 4096, 4144, 4192, 6144, 6192, 6240, 6288];

    #[test]
    fn raw_chain_follows_both_readings_of_close_holes() {
        // r0 = 100, a 2096 node, chunks 0..2, a node, 3..5, two nodes, 6, EOF.
        // Each run of 2096 zeros also reads as a 2048 hole after a chunk
        // ending in 48 zero bytes (less than a 408-byte record); that
        // reading shifts every earlier chunk by 48 bytes, and its piece
        // then holds the zeros of the next node: only the true path
        // reaches r0.
        let s = 64 * 408;
        let mut file = vec![7u8; 100];
        let mut expect = vec![];
        let mut row = 0;
        for hole in [2096usize, 0, 0, 2096, 0, 0, 4192] {
            file.extend(vec![0u8; hole]);
            expect.push(file.len() as u64);
            file.extend(records(row));
            row += 64;
        }
        let none = Claimed::default();
        let c = raw_chain(&file, 100, s, 408, &PT_HOLES, &none, &none);
        assert_eq!((&c.pieces, c.complete), (&expect, true), "{:?}", c.stopped);
        // With the node size alone there is no fork: the same chain.
        let one = raw_chain(&file, 100, s, 408, &[2096, 4192], &none, &none);
        assert_eq!(one, c);
    }

    #[test]
    fn raw_chain_refuses_two_paths_to_r0() {
        // A 2048 block, chunks 0..2, a 2096 node, chunk 3. The first 48
        // bytes of chunk 0 are zero: the path reading the node as a 2048
        // block shifts chunks 0..2 by 48 bytes and reaches r0 by 2096 zero
        // bytes, exactly, like the true one: two paths, nothing taken
        // before the run that forks.
        let s = 64 * 408;
        let build = |first_gap: usize, zero_head: usize| {
            let mut file = vec![7u8; 100];
            let mut starts = vec![];
            for (k, hole) in [first_gap, 0, 0, 2096].into_iter().enumerate() {
                file.extend(vec![0u8; hole]);
                starts.push(file.len());
                let mut c = records(64 * k as u64);
                if k == 0 {
                    c[..zero_head].fill(0);
                }
                file.extend(c);
            }
            (file, starts)
        };
        let none = Claimed::default();
        let (file, starts) = build(2048, 48);
        let c = raw_chain(&file, 100, s, 408, &PT_HOLES, &none, &none);
        assert!(!c.complete, "{c:?}");
        assert_eq!(c.pieces, vec![starts[3] as u64]);
        let (at, why) = c.stopped.expect("stopped");
        assert_eq!(at, starts[3] as u64 - 2096);
        assert!(why.contains("two or more readings reach"), "{why}");
        // The shifted path reaches r0 by 2144 zero bytes (no metadata
        // size): it may be the true one (a trimmed first block), refused.
        let (file, _) = build(2096, 48);
        let c = raw_chain(&file, 100, s, 408, &PT_HOLES, &none, &none);
        assert_eq!((c.pieces.len(), c.complete), (1, false), "{c:?}");
        assert!(c.stopped.unwrap().1.contains("two or more readings reach"));
        // Chunk 0 whole: the shifted path starts a piece before r0 and is
        // refuted; the true one is taken.
        let (file, starts) = build(2048, 0);
        let c = raw_chain(&file, 100, s, 408, &PT_HOLES, &none, &none);
        let expect: Vec<u64> = starts.iter().map(|&x| x as u64).collect();
        assert_eq!((c.pieces, c.complete), (expect, true), "{:?}", c.stopped);
        // The only path reaching r0 inexactly after a fork: its pieces,
        // not complete (never placed by order).
        let (mut file, starts) = build(2048, 0);
        file.splice(100..100, [0u8; 8]);
        let c = raw_chain(&file, 100, s, 408, &PT_HOLES, &none, &none);
        let expect: Vec<u64> = starts.iter().map(|&x| x as u64 + 8).collect();
        assert_eq!((c.pieces, c.complete), (expect, false));
        assert!(c.stopped.unwrap().1.contains("cut, not placed"));
    }

    /// Runs [`recover`] on `file` with one dataset `/d` of u64 rows,
    /// `dim0` rows, chunks of 100 rows deflated, whose index records are
    /// `recs` (chunk index, address, size); prints what it placed and left.
    fn search_u64_deflate(file: &[u8], dim0: u64, recs: &[(u64, u64, u64)]) -> ChunkSearch {
        use crate::inventory::Object;
        let mut o = Object::new("/d".into(), 0);
        o.kind = ObjectKind::Dataset;
        o.dataset = Some(Box::new(u64_deflate(dim0, recs)));
        let mut inv = Inventory::default();
        inv.objects.push(o);
        recover(&mut inv, file, &Options::default());
        let search = inv.chunk_search.take().unwrap();
        eprintln!(
            "placed {:?}",
            search.placed.iter().map(|p| &p.chunks).collect::<Vec<_>>()
        );
        eprintln!(
            "stray {:?}",
            search
                .stray
                .iter()
                .map(|s| (&s.reason, &s.chunks))
                .collect::<Vec<_>>()
        );
        search
    }

    /// A dataset of u64 rows, `dim0` rows, chunks of 100 rows deflated,
    /// whose index records are `recs` (chunk index, address, size).
    fn u64_deflate(dim0: u64, recs: &[(u64, u64, u64)]) -> Dataset {
        use crate::format::message::filter_pipeline::{Filter, FilterPipeline};
        Dataset {
            datatype: crate::format::message::datatype::Datatype::unsigned(8),
            dataspace: crate::format::message::dataspace::Dataspace {
                version: 1,
                kind: crate::format::message::dataspace::DataspaceKind::Simple,
                dims: vec![dim0],
                max_dims: Some(vec![u64::MAX]),
            },
            layout: crate::format::message::data_layout::DataLayout {
                version: 3,
                class: LayoutClass::Chunked {
                    dims: vec![100],
                    element_size: Some(8),
                    flags: 0,
                    index: ChunkIndex::BtreeV1 { address: 0 },
                },
            },
            filters: Some(FilterPipeline {
                version: 1,
                filters: vec![Filter {
                    id: DEFLATE,
                    name: None,
                    flags: 0,
                    client_data: vec![6],
                }],
            }),
            fill_value: None,
            external_files: false,
            chunks: recs
                .iter()
                .map(|&(k, at, len)| ChunkRef {
                    offset: vec![k * 100],
                    address: at,
                    size: len,
                    filter_mask: 0,
                    present: true,
                })
                .collect(),
            coverage: Default::default(),
            beyond_index: Default::default(),
        }
    }

    #[test]
    fn a_stray_stack_holds_its_template_without_the_chunk_list() {
        use crate::inventory::Object;
        // Two datasets of one signature, each with many indexed chunks
        // (past the end of the file), and one chunk no index lists: a
        // stack for several datasets, with the first one's layout.
        let recs: Vec<(u64, u64, u64)> = (0..5000).map(|k| (k, 1 << 40, 100)).collect();
        let mut file = vec![0u8; 64];
        file.extend_from_slice(&zlib(&chunk(7, 100)));
        file.extend_from_slice(&[0u8; 64]);
        let mut inv = Inventory::default();
        for path in ["/d", "/e"] {
            let mut o = Object::new(path.into(), 0);
            o.kind = ObjectKind::Dataset;
            o.dataset = Some(Box::new(u64_deflate(500_000, &recs)));
            inv.objects.push(o);
        }
        recover(&mut inv, &file, &Options::default());
        let search = inv.chunk_search.take().unwrap();
        let [st] = search.stray.as_slice() else {
            panic!("one stray stack expected: {:?}", search.stray);
        };
        assert!(matches!(st.reason, Stray::SeveralDatasets(_)));
        assert_eq!(st.chunks.len(), 1);
        let layout = st.layout.as_ref().expect("the first candidate's layout");
        assert!(matches!(layout.layout.class, LayoutClass::Chunked { .. }));
        assert!(layout.chunks.is_empty(), "{} chunks", layout.chunks.len());
        // The candidates themselves keep theirs.
        assert_eq!(inv.objects[0].dataset.as_ref().unwrap().chunks.len(), 5000);
        // A stack made from a template with chunks drops them too.
        let mut d = u64_deflate(500_000, &recs);
        d.beyond_index.indexed = 3;
        let st = stray(
            Stray::NoInfer,
            vec!["/d".into()],
            Some(d),
            (800, false),
            &[],
        );
        let layout = st.layout.unwrap();
        assert!(layout.chunks.is_empty());
        assert_eq!(layout.beyond_index.indexed, 3, "the rest is kept");
    }

    #[test]
    fn a_shorter_chunk_in_the_freed_block_of_a_partial_tail_is_not_its_newer_version() {
        let rows = |k: u64, n: u64, constant: bool| -> Vec<u8> {
            (0..100u64)
                .flat_map(|i| {
                    let v = if i >= n {
                        0
                    } else if constant {
                        1
                    } else {
                        (k * 100 + i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    };
                    v.to_le_bytes()
                })
                .collect()
        };
        // Chunks 0, 1 whole; chunk 2 partly filled (60 rows) at the flush:
        // the proven record. Then chunk 2 completed (longer: to the end of
        // the file), its old block freed and taken by chunk 3 (constant
        // rows, compresses short); then chunk 4.
        let c0 = zlib(&rows(0, 100, false));
        let c1 = zlib(&rows(1, 100, false));
        let old2 = zlib(&rows(2, 60, false));
        let new2 = zlib(&rows(2, 100, false));
        let c3 = zlib(&rows(3, 100, true));
        let c4 = zlib(&rows(4, 100, false));
        assert!(c3.len() < old2.len() && new2.len() > old2.len());
        let mut file = vec![7u8; 100];
        let mut recs = vec![];
        for (k, c) in [(0u64, &c0), (1, &c1)] {
            recs.push((k, file.len() as u64, c.len() as u64));
            file.extend(c.iter());
        }
        let a = file.len() as u64;
        recs.push((2, a, old2.len() as u64));
        let mut block = old2.clone();
        block[..c3.len()].copy_from_slice(&c3);
        file.extend(block);
        let e1 = file.len() as u64;
        file.extend(new2.iter());
        let e2 = file.len() as u64;
        file.extend(c4.iter());
        let search = search_u64_deflate(&file, 260, &recs);
        eprintln!("A={a:#x} (chunk 3's bytes) E1={e1:#x} (chunk 2 whole) E2={e2:#x} (chunk 4)");
        for p in &search.placed {
            for (off, at) in &p.chunks {
                let right = match off[0] / 100 {
                    2 => e1,
                    3 => a,
                    4 => e2,
                    _ => u64::MAX,
                };
                assert_eq!(
                    *at,
                    right,
                    "WRONG: chunk at {at:#x} placed at position {}",
                    off[0] / 100
                );
            }
        }
    }

    #[test]
    fn an_older_version_does_not_balance_a_wrong_gap_count() {
        let rnd = |k: u64, i: u64| (k * 100 + i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let chunk = |k: u64, n: u64| -> Vec<u8> {
            (0..100u64)
                .flat_map(|i| (if i < n { rnd(k, i) } else { 0 }).to_le_bytes())
                .collect()
        };
        let w = rnd(3, 0);
        let sparse: Vec<u8> = (0..100u64)
            .flat_map(|i| (if i == 0 { w } else { 0 }).to_le_bytes())
            .collect();
        // Proven: chunk 0 and chunk 3. Between them in the file: an old,
        // freed, partly filled version of chunk 1 (60 rows), chunk 1,
        // chunk 2 (sparse: its only non-zero row equals chunk 3's row 0).
        let parts = [
            (Some(0u64), zlib(&chunk(0, 100))),
            (None, zlib(&chunk(1, 60))),
            (None, zlib(&chunk(1, 100))),
            (None, zlib(&sparse)),
            (Some(3), zlib(&chunk(3, 100))),
        ];
        let mut file = vec![7u8; 100];
        let mut recs = vec![];
        let mut at = vec![];
        for (k, c) in &parts {
            at.push(file.len() as u64);
            if let Some(k) = k {
                recs.push((*k, file.len() as u64, c.len() as u64));
            }
            file.extend(c.iter());
        }
        let search = search_u64_deflate(&file, 400, &recs);
        eprintln!("at {at:x?}");
        for p in &search.placed {
            for (off, a) in &p.chunks {
                let right = match off[0] / 100 {
                    1 => at[2],
                    2 => at[3],
                    _ => u64::MAX,
                };
                assert_eq!(
                    *a,
                    right,
                    "WRONG: chunk at {a:#x} placed at position {}",
                    off[0] / 100
                );
            }
        }
    }

    #[test]
    fn proven_chunks_at_the_largest_index_do_not_overflow() {
        let mut first = |i: usize| i == 0;
        let r = place_by_order(
            &[a(10, u64::MAX), a(20, u64::MAX)],
            &f(&[30]),
            true,
            &mut first,
        );
        assert_eq!(r, vec![Slot::Left(Stray::ProvenOutOfOrder)]);
        // No position follows the largest index.
        let r = place_by_order(&[a(10, u64::MAX)], &f(&[30]), false, &mut first);
        assert_eq!(r, vec![Slot::Left(Stray::OrderInconsistent)]);
        let r = place_by_order(&[a(30, u64::MAX)], &f(&[10]), false, &mut first);
        assert_eq!(r, vec![Slot::Left(Stray::OrderInconsistent)]);
    }

    /// r0 = 100 after 100 bytes of 7s, then for each `holes[k]` that many
    /// zero bytes and chunk k of [`records`] (`edit(k, chunk)` first); the
    /// file and the chunks' offsets.
    /// `raw_chain` over a PyTables-like file (408-byte records, 64 a chunk,
    /// r0 at 100, the holes of `PT_HOLES`, nothing known).
    fn pt_chain(file: &[u8]) -> RawChain {
        let none = Claimed::default();
        raw_chain(file, 100, 64 * 408, 408, &PT_HOLES, &none, &none)
    }

    /// A complete chain must be the true one.
    fn assert_not_shifted(c: &RawChain, starts: &[u64]) {
        assert!(
            !(c.complete && c.pieces != starts),
            "WRONG: shifted path accepted: {c:?} vs {starts:?}"
        );
    }

    fn pt_file(holes: &[usize], edit: impl Fn(usize, &mut [u8])) -> (Vec<u8>, Vec<u64>) {
        let mut file = vec![7u8; 100];
        let mut starts = vec![];
        for (k, &hole) in holes.iter().enumerate() {
            file.extend(vec![0u8; hole]);
            starts.push(file.len() as u64);
            let mut c = records(64 * k as u64);
            edit(k, &mut c);
            file.extend(c);
        }
        (file, starts)
    }

    #[test]
    fn a_chunk_leading_with_a_zero_record_after_a_fork_stops_the_search() {
        // r0, a 2096 node, C0, a 2048 block, C1 (first record zero), C2,
        // a 2096 node, C3, EOF: the true path dies at C1 (leads zero);
        // the shifted one (from the fork at the last node) re-aligns at
        // the 2048+48 run and reaches r0 exactly.
        let (file, starts) = pt_file(&[2096, 2048, 0, 2096], |k, c| {
            if k == 1 {
                c[..408].fill(0);
            }
        });
        assert_not_shifted(&pt_chain(&file), &starts);
    }

    #[test]
    fn a_first_chunk_leading_with_a_zero_record_is_not_refuted() {
        // r0, a 2048 block, chunks 0..2 (chunk 0's first record all zero),
        // a 2096 node, chunk 3, EOF.
        let (file, starts) = pt_file(&[2048, 0, 0, 2096], |k, c| {
            if k == 0 {
                c[..408].fill(0);
            }
        });
        assert_not_shifted(&pt_chain(&file), &starts);
    }

    #[test]
    fn a_metadata_signature_in_a_true_chunk_after_a_fork_stops_the_search() {
        // r0, a 2048 block, chunks 0..2, a 2096 node, chunk 3, EOF; chunk
        // 0's first 48 bytes are zero and chunk 1 starts with "TREE". The
        // reading of the node as a 2048 block shifts chunks 0..2 by 48
        // bytes (its chunk 1 misses the signature) and reaches r0 by 2096
        // zero bytes, exactly: were the signature a refutation, the true
        // path would die and the shifted one be taken alone.
        let (file, starts) = pt_file(&[2048, 0, 0, 2096], |k, c| match k {
            0 => c[..48].fill(0),
            1 => c[..4].copy_from_slice(b"TREE"),
            _ => {}
        });
        let c = pt_chain(&file);
        assert!(!c.complete, "{c:?} vs {starts:?}");
        assert_eq!(c.pieces, starts[3..], "{c:?}");
        let why = c.stopped.unwrap().1;
        assert!(why.contains("metadata signature"), "{why}");
    }

    #[test]
    fn raw_chain_does_not_follow_too_many_readings() {
        // Ten hole sizes 8 bytes apart, all within a 408-byte record of the
        // zero run: more readings than are followed, the chain stops there
        // (nothing is dropped to make one path the only one).
        let s = 64 * 408;
        let mut file = vec![7u8; 100];
        file.extend(vec![0u8; 2048]);
        file.extend(records(0));
        file.extend(vec![0u8; 2120]);
        let last = file.len() as u64;
        file.extend(records(64));
        let holes: Vec<u64> = (0..10).map(|i| 2048 + 8 * i).collect();
        let none = Claimed::default();
        let c = raw_chain(&file, 100, s, 408, &holes, &none, &none);
        assert_eq!((c.pieces, c.complete), (vec![last], false));
        assert_eq!(c.stopped.map(|x| x.0), Some(last - 2120));
    }

    #[test]
    fn foreign_template_needs_the_dataset_proven_absent() {
        use crate::inventory::{LinkEntry, LinkKind, Object, Origin};
        let group = |path: &str, status: Status, origin: Origin| {
            let mut o = Object::new(path.into(), 0);
            o.kind = ObjectKind::Group;
            o.status = status;
            o.origin = origin;
            o
        };
        let mut inv = Inventory::default();
        // No root group read: nothing proves the dataset new.
        assert!(!absent_when_stored(&inv, "/series0"));
        inv.objects.push(group("/", Status::Intact, Origin::Walk));
        assert!(absent_when_stored(&inv, "/series0"));
        // The root does not list /a: nothing under it existed either.
        assert!(absent_when_stored(&inv, "/a/series0"));
        // A link of that name: it existed.
        inv.links.push(LinkEntry {
            path: "/series0".into(),
            kind: LinkKind::Soft,
            target: "/x".into(),
            file: None,
        });
        assert!(!absent_when_stored(&inv, "/series0"));
        // A root not read whole, or carved: its listing proves nothing.
        for (st, or) in [
            (Status::Partial, Origin::Walk),
            (Status::Intact, Origin::Carve),
        ] {
            inv.objects[0] = group("/", st, or);
            assert!(!absent_when_stored(&inv, "/b"));
        }
        // A group below that was read whole decides for its members.
        inv.objects.push(group("/g", Status::Intact, Origin::Walk));
        assert!(absent_when_stored(&inv, "/g/series0"));
    }

    #[test]
    fn nothing_stored_only_for_a_bare_superblock() {
        let mut inv = Inventory::default();
        let mut bytes = vec![0u8; 4096];
        bytes[..8].copy_from_slice(b"\x89HDF\r\n\x1a\n");
        assert!(!nothing_stored(&inv, &bytes, 2048), "no superblock");
        inv.superblock = Some(crate::inventory::SuperblockInfo {
            offset: 0,
            version: 0,
            size_of_offsets: 8,
            size_of_lengths: 8,
            base_address: 0,
            eof_address: 2048,
            root_address: Some(0x60),
            status_flags: 0,
            checksum_ok: None,
        });
        assert!(nothing_stored(&inv, &bytes, 2048));
        // More than one metadata block stored: raw data may lie before r0.
        assert!(!nothing_stored(&inv, &bytes, 4096));
        // A root header (or anything) was written.
        bytes[0x60] = 1;
        assert!(!nothing_stored(&inv, &bytes, 2048));
    }
}

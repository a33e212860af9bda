//! The inventory: everything the walk (and later the carver) learned about one
//! file. It is the one type the stages share: `walk`/`carve` fill it, `report`
//! prints it, `read`/`write` turn it into a salvaged file. [`Inventory::image`]
//! makes the byte image its addresses refer to; [`Dataset::data_bytes`] and
//! [`Dataset::chunk_bytes`] are the one computation of a dataset's sizes.
//!
//! Addresses in objects are HDF5 addresses (relative to the superblock's base
//! address, as h5py and h5dump show them); offsets in [`Problem`]s are
//! absolute file offsets.

use serde::Serialize;

use crate::format::message::attribute::Attribute as AttributeMessage;
use crate::format::message::data_layout::DataLayout;
use crate::format::message::dataspace::Dataspace;
use crate::format::message::datatype::Datatype;
use crate::format::message::fill_value::FillValue;
use crate::format::message::filter_pipeline::FilterPipeline;

/// What one file holds, as far as it could be read.
#[derive(Debug, Default)]
pub struct Inventory {
    /// The file name as given by the user.
    pub file: String,
    /// Actual size in bytes.
    pub size: u64,
    pub superblock: Option<SuperblockInfo>,
    /// An HDF5 signature was found at 0, 512, 1024, ... (even if the
    /// superblock behind it could not be parsed).
    pub signature_found: bool,
    /// Every object reached, in visiting order (parents before children),
    /// except those handed to a consumer during the walk
    /// ([`crate::walk::walk_streamed`]).
    pub objects: Vec<Object>,
    /// The counts of the objects the walk handed to a consumer instead of
    /// keeping them in `objects` (`links` stays 0: links are kept).
    pub streamed: Summary,
    /// Soft, external and user-defined links (hard links lead to objects).
    pub links: Vec<LinkEntry>,
    /// File-level problems (superblock, truncation, unreachable root, ...).
    pub problems: Vec<Problem>,
    /// File-level oddities that lose nothing and do not make the file
    /// damaged (e.g. a few whitespace bytes after the stored end of file).
    pub notes: Vec<Problem>,
    /// What signature carving found, when it ran.
    pub carving: Option<CarveSummary>,
    /// Another process held the file open for writing (libhdf5's lock)
    /// when it was read: the inventory is of a snapshot.
    pub open_for_write: bool,
    /// No superblock: the base address and sizes carving inferred from the
    /// structures it found (`carve::base`); `None` when a superblock was
    /// found or carving did not run.
    pub inferred: Option<InferredBase>,
    /// Runs of whole all-zero 4 KiB pages, 4 KiB-aligned (absolute offset,
    /// length): often a destroyed page rather than data.
    pub zeroed_ranges: Vec<ZeroedRange>,
    /// Chunks no index record lists, found by their framing and placed by
    /// allocation order or left for `/lost+found` ([`crate::carve::chunks`]),
    /// when that search ran.
    pub chunk_search: Option<ChunkSearch>,
    /// The metadata cache image the superblock extension names, when it
    /// names one ([`CacheImageInfo::record`]).
    pub cache_image: Option<CacheImageInfo>,
    /// The metadata cache image's entries that were put at their own
    /// addresses in the bytes the inventory was made from
    /// ([`check_relocated`]).
    pub relocated: Vec<crate::follow::cache_image::Relocation>,
    /// The metadata structures the walk read, at their allocated sizes
    /// (absolute `[start, end)`, name; sorted, [`crate::follow::Known`]):
    /// no raw data may meet them ([`check_data_overlaps`]).
    pub metadata: Vec<crate::follow::MetaSpan>,
}

/// A consumer of the objects a walk hands over one by one instead of
/// keeping them ([`crate::pipeline::scan_path_streamed`]: scan's text
/// report), so that memory does not grow with the number of objects.
pub trait ObjectSink {
    /// One complete object.
    fn object(&mut self, o: Object);
    /// The objects handed over so far do not count: the inventory is made
    /// again, whole (a damaged file is carved, which needs every object).
    fn clear(&mut self);
}

/// A metadata cache image (`MDCI`, [`crate::follow::cache_image`]): where
/// its block lies and how many of its entries were read from it.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct CacheImageInfo {
    /// Absolute offset and length of the block (`None`: the message
    /// could not be read).
    pub block: Option<(u64, u64)>,
    /// Entries the block lists.
    pub entries: u64,
    /// Entries whose image was used at their own address.
    pub relocated: u64,
}

impl CacheImageInfo {
    /// Records `overlay` (already applied to the bytes the inventory was
    /// made from) in `inv`: its faults as problems, and a note saying
    /// where the metadata came from.
    pub fn record(overlay: &crate::follow::cache_image::Overlay, inv: &mut Inventory) {
        let info = CacheImageInfo {
            block: overlay.block,
            entries: overlay.entries as u64,
            relocated: overlay.relocations.len() as u64,
        };
        inv.problems.extend(overlay.problems.iter().cloned());
        if let Some((offset, length)) = info.block.filter(|_| info.relocated > 0) {
            inv.notes.push(Problem::new(
                ProblemKind::Note,
                Some(offset),
                crate::format::cache_image::STRUCTURE,
                format!(
                    "{} of {} metadata entries read from the cache image ({length} bytes), \
                     not from their own addresses (libhdf5 keeps them there)",
                    info.relocated, info.entries
                ),
            ));
        }
        inv.cache_image = Some(info);
        inv.relocated = overlay.relocations.clone();
    }
}

/// The rule that keeps a misplaced cache image entry from passing for a
/// value, applied once the inventory is complete. A relocation puts an
/// entry's image at the address the entry names; that address is covered
/// by the block's checksum only (an entry's own checksum covers its image,
/// not where it goes):
/// - a dataset whose raw data (contiguous extent or a chunk) meets a
///   relocated range read metadata bytes as its data: whichever of the two
///   is wrong, its data is not trusted (an `Overlap` problem, partial);
/// - an object whose header was read through a relocation from a block that
///   failed its checksum is unverified (an `Inferred` problem in the file's
///   list; salvage marks it `h5salvage_unverified`,
///   [`Object::read_through_unverified`]).
pub fn check_relocated(inv: &mut Inventory) {
    if inv.relocated.is_empty() {
        return;
    }
    let Some(base) = inv.superblock.as_ref().map(|s| s.base_address) else {
        return;
    };
    let meets = |r: &crate::follow::cache_image::Relocation, s: u64, e: u64| {
        s < r.home.saturating_add(r.len) && r.home < e
    };
    let mut file_problems = Vec::new();
    for o in &mut inv.objects {
        let unverified = o.read_through_unverified(&inv.relocated).is_some();
        if unverified {
            file_problems.push(Problem::new(
                ProblemKind::Inferred,
                Some(o.address),
                "object header",
                format!(
                    "{}: header read from a cache image entry of a block that fails its \
                     checksum (the entry verifies itself, its address is not verified)",
                    o.path
                ),
            ));
        }
        let Some(ds) = &o.dataset else {
            continue;
        };
        let mut extents: Vec<(u64, u64)> = ds.chunks.iter().map(|c| (c.address, c.size)).collect();
        if let crate::format::message::data_layout::LayoutClass::Contiguous { address, size } =
            &ds.layout.class
        {
            let n = size.or_else(|| ds.data_bytes()).unwrap_or(0);
            extents.push((*address, n));
        }
        let hit = extents.iter().find_map(|&(a, n)| {
            if crate::format::is_undefined(a) || n == 0 {
                return None;
            }
            let s = base.checked_add(a)?;
            let e = s.saturating_add(n);
            inv.relocated
                .iter()
                .find(|r| meets(r, s, e))
                .map(|r| (s, e, *r))
        });
        if let Some((s, e, r)) = hit {
            o.problems.push(Problem::new(
                ProblemKind::Overlap,
                Some(s),
                "raw data",
                format!(
                    "raw data {s:#x}..{e:#x} meets the range {:#x}..{:#x} a cache image entry \
                     was put at: one of the two addresses is wrong, the data is not trusted",
                    r.home,
                    r.home.saturating_add(r.len)
                ),
            ));
            if o.status == Status::Intact {
                o.status = Status::Partial;
            }
        }
    }
    inv.problems.extend(file_problems);
}

/// Every dataset's raw data must lie apart from every other object's raw
/// data and from all metadata: libhdf5 allocates file space once per
/// structure (spec III.G, free-space management hands a range to one owner).
/// A damaged address in a structure without a checksum (a v1 object
/// header's layout message, IV.A.2.i; a v1 B-tree node's child pointer,
/// III.A.1) makes a dataset read another object's bytes as its own, and
/// nothing else tells. Applied once the inventory is complete: raw data
/// (a contiguous extent or a present chunk) that meets another object's raw
/// data or header, or a metadata structure the walk read at its allocated
/// size ([`Inventory::metadata`]: a B-tree node's unused tail included),
/// gets a [`ProblemKind::SharedBytes`] problem (both sides when both are
/// raw data: which address is wrong cannot be told), and the object
/// becomes partial.
pub fn check_data_overlaps(inv: &mut Inventory) {
    let Some(base) = overlap_base(inv) else {
        return;
    };
    let mut spans: Vec<Span> = Vec::new();
    for (i, o) in inv.objects.iter().enumerate() {
        push_spans(&mut spans, o, i, base);
    }
    let n = inv.objects.len();
    push_metadata_spans(&mut spans, &inv.metadata, n);
    let mut found: Vec<Option<Problem>> = vec![None; n];
    for (me, other) in overlaps(&mut spans) {
        if found[me.2 as usize].is_some() {
            continue;
        }
        let with = match (inv.objects.get(other.2 as usize), other.3) {
            (Some(o), true) => format!("the raw data of {}", o.path),
            (Some(o), false) => format!("the object header of {}", o.path),
            (None, _) => {
                let what = inv
                    .metadata
                    .get((other.2 as usize).saturating_sub(n))
                    .map_or("metadata", |m| m.2);
                format!("the {what} the walk read")
            }
        };
        found[me.2 as usize] = Some(Problem::new(
            ProblemKind::SharedBytes,
            Some(me.0),
            "raw data",
            format!(
                "raw data {:#x}..{:#x} shares bytes with {with} ({:#x}..{:#x}): \
                 one of the two addresses is wrong, the data is not trusted",
                me.0, me.1, other.0, other.1
            ),
        ));
    }
    for (o, p) in inv.objects.iter_mut().zip(found) {
        if let Some(p) = p {
            o.problems.push(p);
            if o.status == Status::Intact {
                o.status = Status::Partial;
            }
        }
    }
}

/// (start, end, object index, raw data?), absolute offsets: what
/// [`check_data_overlaps`] compares. The index is a `u32` (24 bytes a
/// span instead of 32).
pub type Span = (u64, u64, u32, bool);

/// The base address raw data addresses are relative to, when known.
pub fn overlap_base(inv: &Inventory) -> Option<u64> {
    match (&inv.superblock, &inv.inferred) {
        (Some(s), _) => Some(s.base_address),
        (None, Some(i)) if i.confirmed => Some(i.base_address),
        _ => None,
    }
}

/// Adds object `o`'s (number `i`) header spans and raw data extents to
/// `spans` (see [`check_data_overlaps`]). Objects past the 2^32nd (far
/// beyond the walk's and the carver's caps) are not compared.
pub fn push_spans(spans: &mut Vec<Span>, o: &Object, i: usize, base: u64) {
    let Ok(i) = u32::try_from(i) else {
        return;
    };
    if o.status == Status::Lost || o.hard_link_of.is_some() {
        return;
    }
    spans.extend(o.header_spans.iter().map(|&(s, e)| (s, e, i, false)));
    let Some(ds) = &o.dataset else {
        return;
    };
    let mut extents: Vec<(u64, u64)> = ds
        .chunks
        .iter()
        .filter(|c| c.present)
        .map(|c| (c.address, c.size))
        .collect();
    if let crate::format::message::data_layout::LayoutClass::Contiguous { address, size } =
        &ds.layout.class
    {
        extents.push((*address, size.or_else(|| ds.data_bytes()).unwrap_or(0)));
    }
    for (a, n) in extents {
        if crate::format::is_undefined(a) || n == 0 {
            continue;
        }
        if let Some(s) = base.checked_add(a) {
            spans.push((s, s.saturating_add(n), i, true));
        }
    }
}

/// Adds the metadata structures `metadata` (absolute offsets) to `spans`,
/// numbered from `first` on (after the objects' numbers).
pub fn push_metadata_spans(
    spans: &mut Vec<Span>,
    metadata: &[crate::follow::MetaSpan],
    first: usize,
) {
    // Numbers past 2^32 (far beyond the walk's caps) are not compared,
    // as in [`push_spans`].
    spans.extend(
        (first..)
            .zip(metadata)
            .filter_map(|(i, &(s, e, _))| Some((s, e, u32::try_from(i).ok()?, false))),
    );
}

/// The pairs (raw data, what it meets) of `spans` (sorted here) whose
/// bytes meet: raw data of one object against another object's raw data
/// or header, each raw data side listed.
pub fn overlaps(spans: &mut Vec<Span>) -> Vec<(Span, Span)> {
    spans.retain(|s| s.0 < s.1);
    spans.sort_unstable();
    let mut out = Vec::new();
    // The span reaching furthest so far: any later span starting before
    // its end meets it.
    let mut reach: Option<Span> = None;
    for &cur in spans.iter() {
        let Some(prev) = reach else {
            reach = Some(cur);
            continue;
        };
        if cur.0 < prev.1 && cur.2 != prev.2 && (cur.3 || prev.3) {
            for (me, other) in [(cur, prev), (prev, cur)] {
                if me.3 {
                    out.push((me, other));
                }
            }
        }
        if cur.1 > prev.1 {
            reach = Some(cur);
        }
    }
    out
}

/// The spans of a streamed walk ([`crate::pipeline`]), kept until the walk
/// is over to tell whether [`check_data_overlaps`] of the whole inventory
/// could find anything (the walk is then made again whole). Compact: 16
/// bytes a span, and the touching spans of one object and kind (the
/// message frames of a continuation block, consecutive chunks) are one,
/// which changes nothing for [`StreamedSpans::any_overlap`].
#[derive(Debug, Default)]
pub struct StreamedSpans {
    /// (start, packed): the length in the low [`StreamedSpans::LEN_BITS`]
    /// bits, the object's number above, [`StreamedSpans::RAW`] for raw
    /// data. Raw data starts are relative to a base added at the end.
    spans: Vec<(u64, u64)>,
    /// An object's spans as [`push_spans`] lists them (reused).
    scratch: Vec<Span>,
    /// An object numbered past [`StreamedSpans::MAX_OWNER`], or a span
    /// longer than [`StreamedSpans::MAX_LEN`] (1 TiB: damaged addresses or
    /// sizes, never split: 2^64 bytes would be 2^24 pieces), was added: the
    /// answer is then "maybe".
    maybe: bool,
}

impl StreamedSpans {
    const LEN_BITS: u32 = 40;
    const MAX_LEN: u64 = (1 << Self::LEN_BITS) - 1;
    const MAX_OWNER: u64 = (1 << 23) - 1;
    const RAW: u64 = 1 << 63;

    /// Adds object `o`'s (number `i`) header spans and raw data extents
    /// (relative to the base, see [`StreamedSpans::any_overlap`]).
    pub fn push(&mut self, o: &Object, i: usize) {
        let Some(owner) = u64::try_from(i).ok().filter(|&n| n <= Self::MAX_OWNER) else {
            self.maybe = true;
            return;
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        push_spans(&mut scratch, o, i, 0);
        let first = self.spans.len();
        for &(start, end, _, raw) in &scratch {
            let kind = (owner << Self::LEN_BITS) | if raw { Self::RAW } else { 0 };
            self.add(first, start, end, kind);
        }
        self.scratch = scratch;
    }

    /// Adds the metadata structures the walk read (absolute offsets, as
    /// [`push_metadata_spans`] gives them to [`check_data_overlaps`]), all
    /// as one owner numbered `first` (after the objects): only raw data
    /// meeting them counts, never two structures meeting each other.
    pub fn push_metadata(&mut self, metadata: &[crate::follow::MetaSpan], first: usize) {
        let Some(owner) = u64::try_from(first).ok().filter(|&n| n <= Self::MAX_OWNER) else {
            self.maybe = true;
            return;
        };
        let kind = owner << Self::LEN_BITS;
        for &(start, end, _) in metadata {
            let first = self.spans.len();
            self.add(first, start, end, kind);
        }
    }

    /// Adds [start, end) of one object and kind (`kind`: its packed bits
    /// above the length), joined to an earlier span of the same object and
    /// kind (from index `first` on) that it meets or touches.
    fn add(&mut self, first: usize, start: u64, end: u64, kind: u64) {
        if start >= end {
            return;
        }
        if let Some(last) = self.spans[first..]
            .iter_mut()
            .rev()
            .find(|s| s.1 & !Self::MAX_LEN == kind)
        {
            let last_end = last.0.saturating_add(last.1 & Self::MAX_LEN);
            if start <= last_end && last.0 <= end {
                let (s, e) = (start.min(last.0), end.max(last_end));
                if e - s <= Self::MAX_LEN {
                    *last = (s, kind | (e - s));
                    return;
                }
            }
        }
        if end - start > Self::MAX_LEN {
            self.maybe = true;
            return;
        }
        self.spans.push((start, kind | (end - start)));
    }

    /// Whether raw data of one object meets another object's raw data or
    /// header, `base` added to raw data addresses (as [`check_data_overlaps`]
    /// compares them). Exact, so never "no" where [`overlaps`] finds a pair.
    pub fn any_overlap(mut self, base: u64) -> bool {
        if self.maybe {
            return true;
        }
        // In place (no second list): raw data moved by the base, then all
        // sorted by start.
        for (start, packed) in self.spans.iter_mut().filter(|s| s.1 & Self::RAW != 0) {
            let end = start
                .saturating_add(*packed & Self::MAX_LEN)
                .saturating_add(base);
            *start = start.saturating_add(base);
            *packed = (*packed & !Self::MAX_LEN) | (end - *start);
        }
        self.spans.sort_unstable_by_key(|s| s.0);
        // The two furthest ends of different objects so far, of all spans
        // and of raw data: a span meets an earlier one of another object
        // exactly when the furthest such end lies past its start.
        let mut all = Reach::default();
        let mut raw = Reach::default();
        for &(start, packed) in &self.spans {
            let len = packed & Self::MAX_LEN;
            if len == 0 {
                continue;
            }
            let (end, is_raw) = (start.saturating_add(len), packed & Self::RAW != 0);
            let owner = (packed & !Self::RAW) >> Self::LEN_BITS;
            if (is_raw && all.other_than(owner) > start) || raw.other_than(owner) > start {
                return true;
            }
            all.add(end, owner);
            if is_raw {
                raw.add(end, owner);
            }
        }
        false
    }
}

/// The furthest end of a set of spans, and the furthest of an object other
/// than that one's ((end, object), 0 when none).
#[derive(Default)]
struct Reach {
    first: (u64, u64),
    second: (u64, u64),
}

impl Reach {
    fn add(&mut self, end: u64, owner: u64) {
        if self.first.0 == 0 || owner == self.first.1 {
            self.first = (self.first.0.max(end), owner);
        } else if end > self.first.0 {
            self.second = self.first;
            self.first = (end, owner);
        } else if end > self.second.0 {
            self.second = (end, owner);
        }
    }

    /// The furthest end of a span of an object other than `owner`.
    fn other_than(&self, owner: u64) -> u64 {
        if self.first.0 > 0 && self.first.1 != owner {
            self.first.0
        } else {
            self.second.0
        }
    }
}

/// The base address (and sizes of offsets and lengths) of a file without a
/// superblock, as the carved structures confirm it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct InferredBase {
    pub base_address: u64,
    pub size_of_offsets: u8,
    pub size_of_lengths: u8,
    /// Structures with a pointer that lands where it should.
    pub structures: u64,
    /// Only this candidate is confirmed. When false (no candidate, or
    /// several), carving used it only to find metadata: no data at an
    /// address is written.
    pub confirmed: bool,
    /// Other base addresses the structures support about as well.
    pub rivals: Vec<u64>,
}

impl InferredBase {
    /// One line for reports and the output's `h5salvage_inferred`.
    pub fn describe(&self) -> String {
        if self.confirmed {
            format!(
                "base address inferred as {} (sizes of offsets/lengths {}/{}) from {} structures \
                 (superblock lost)",
                self.base_address, self.size_of_offsets, self.size_of_lengths, self.structures
            )
        } else if self.rivals.is_empty() {
            format!(
                "base address not confirmed by any structure (superblock lost): {} assumed for \
                 metadata only, no data read at an address",
                self.base_address
            )
        } else {
            format!(
                "base address ambiguous (superblock lost): {} and {:?} are confirmed alike; \
                 {} used for metadata only, no data read at an address",
                self.base_address, self.rivals, self.base_address
            )
        }
    }
}

/// A 4 KiB-aligned run of whole all-zero 4 KiB pages (the file's last,
/// partial page counts as whole: the disk block it sits in is).
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct ZeroedRange {
    /// Absolute file offset (a multiple of 4096).
    pub offset: u64,
    /// Bytes (a multiple of 4096, except for a run that ends at the end
    /// of the file).
    pub length: u64,
}

/// Size of a page for [`zeroed_ranges`].
pub const PAGE: usize = 4096;

/// The shortest trailing partial page [`zeroed_ranges`] counts on its own
/// (a disk sector).
const TAIL_MIN: usize = 512;

/// Every run of whole all-zero pages of `bytes`, the trailing partial page
/// included (from [`TAIL_MIN`] bytes, or continuing a run): a file's last page lies in a whole disk block, and a block
/// lost there reads as zeros up to the end of the file just as one inside
/// it does (a zeroed last page of a netCDF-4 file whose size is no
/// multiple of 4 KiB left the chunks in it trusted, zeros written as
/// recovered values). The pages of a mapped input are handed back to the
/// kernel block by block as they are checked ([`crate::pipeline::release`]):
/// the check reads every page, and resident memory must not grow with the
/// file.
pub fn zeroed_ranges(bytes: &[u8]) -> Vec<ZeroedRange> {
    // 1 MiB: the block's pages are resident until it is released (16 MiB
    // blocks made a scan's peak memory grow with the file up to that size).
    const BLOCK: usize = 256 * PAGE;
    let mut out: Vec<ZeroedRange> = Vec::new();
    for (b, block) in bytes.chunks(BLOCK).enumerate() {
        for (i, page) in block.chunks(PAGE).enumerate() {
            // 16 bytes at a time (a whole page: the one check every page of
            // the input takes); the file's last, partial page byte by byte.
            let mut words = page.chunks_exact(16);
            let tail = words.remainder();
            let zero = words.all(|w| u128::from_ne_bytes(w.try_into().unwrap_or([1; 16])) == 0)
                && tail.iter().all(|&x| x == 0);
            let offset = (b * BLOCK + i * PAGE) as u64;
            let length = page.len() as u64;
            // A short partial last page of zeros is weak evidence (padding,
            // unused entries, zero data end files too): it counts from a
            // disk sector up, or continuing a zeroed run.
            let weak =
                page.len() < TAIL_MIN && out.last().is_none_or(|r| r.offset + r.length != offset);
            if !zero || weak {
                continue;
            }
            match out.last_mut() {
                Some(r) if r.offset + r.length == offset => r.length += length,
                _ => out.push(ZeroedRange { offset, length }),
            }
        }
        crate::pipeline::release(block);
    }
    out
}

/// What the search for chunks no index lists found, and where each went
/// (issue 13, item 2; [`crate::carve::chunks`]).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChunkSearch {
    /// Complete zlib streams found in space no known structure or chunk
    /// claims.
    pub streams_found: u64,
    /// Unfiltered chunks cut from the allocation chain past the stored end
    /// of file (unverifiable bytes: no framing, no checksum).
    pub unfiltered_found: u64,
    /// Why the unfiltered chain stopped before the stored end of file
    /// (offset and reason), when it did.
    pub unfiltered_stopped: Option<(u64, String)>,
    /// Datasets that received chunks placed by allocation order.
    pub placed: Vec<PlacedChunks>,
    /// Chunks that could not be placed: written under `/lost+found`.
    pub stray: Vec<StrayChunks>,
}

impl ChunkSearch {
    /// The placement record of the dataset at `path`, if it got any.
    pub fn placed_in(&self, path: &str) -> Option<&PlacedChunks> {
        self.placed.iter().find(|p| p.path == path)
    }

    /// Stray chunks whose one candidate is the dataset at `path` (stacks
    /// several datasets could own are counted for none of them).
    pub fn stray_for(&self, path: &str) -> u64 {
        self.stray
            .iter()
            .filter(|s| s.candidates.len() == 1 && s.candidates[0] == path)
            .map(|s| s.chunks.len() as u64)
            .sum()
    }
}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Chunks given to one dataset by allocation order: they are also in its
/// `Dataset::chunks`, and its dataspace was grown to cover them.
#[derive(Clone, Debug, Serialize)]
pub struct PlacedChunks {
    /// The dataset's path.
    pub path: String,
    /// Its current dimensions as its header stored them (before growing).
    pub stored_dims: Vec<u64>,
    /// The rule that placed them, in words.
    pub rule: String,
    /// Where its description came from when its header is not in this
    /// file (`--template FILE` or a sibling's path), else None.
    pub template: Option<String>,
    /// (chunk offset, absolute file offset) of each chunk placed by order.
    pub chunks: Vec<(Vec<u64>, u64)>,
}

/// Why found chunks were not placed in a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrayReason {
    /// No dataset description has their inflated size and filters.
    NoTemplate,
    /// Several datasets have that chunk signature: which one they belong to
    /// cannot be told.
    SeveralDatasets(Vec<String>),
    /// Placement by allocation order is turned off (`--no-infer`).
    NoInfer,
    /// The dataset does not grow along its first dimension only (chunks
    /// tile other dimensions too, or its rank is 0).
    NotAppendable,
    /// The index's own chunks are not in allocation order: file order says
    /// nothing about positions.
    ProvenOutOfOrder,
    /// The chunks between two indexed chunks are not exactly those
    /// missing between them (a reused hole or an old version of a chunk):
    /// from there on, allocation order is not trusted.
    OrderInconsistent,
    /// The last indexed chunk was partly filled and the next found chunk
    /// is not a newer version of it: what follows cannot be placed.
    PartialTail,
    /// Placing them would exceed the dataset's maximum dimensions.
    BeyondMaxShape,
    /// Older versions of an indexed chunk (its leading rows, the rest the
    /// fill value): superseded, not chunks of their own.
    OlderVersion,
    /// Unfiltered chunks: the allocation chain from the end of the file
    /// could not be followed back to the stored end of file, or the index
    /// does not prove every chunk before them: how many chunks precede
    /// them is unknown.
    ChainBroken,
    /// Unfiltered chunks: the chain reached the stored end of file, but
    /// the zero bytes from it to the first chunk are a chunk or longer and
    /// not exactly one metadata size: all-zero chunks (a writer's first
    /// rows of zeros) may lie there, how many chunks precede them is
    /// unknown.
    StartUnproven,
    /// Described only by a template from another file, and the input does
    /// not prove the dataset absent when its superblock was last written:
    /// how many of its chunks precede the found ones is unknown.
    ForeignUnproven,
    /// The file looks closed by its writer (its stored end of file is its
    /// length, no open-for-write flag): the dataset's stored extent is taken
    /// as final, and allocation order would place them past it (they are
    /// taken as another object's, one whose header is lost). Superblocks
    /// before version 3 have no open-for-write flag: an appender killed
    /// after its last flush that wrote its new chunks only into space freed
    /// before it looks the same, and its rows go to /lost+found (placed
    /// less, never wrongly).
    BeyondClosedExtent,
}

impl std::fmt::Display for StrayReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StrayReason::NoTemplate => write!(f, "no dataset description (template) matches their inflated size and filters"),
            StrayReason::SeveralDatasets(p) => {
                let shown: Vec<&str> = p.iter().take(5).map(String::as_str).collect();
                let more = p.len().saturating_sub(shown.len());
                write!(
                    f,
                    "ambiguous: {} datasets have this chunk signature ({}{})",
                    p.len(),
                    shown.join(", "),
                    if more > 0 { format!(", and {more} more") } else { String::new() }
                )
            }
            StrayReason::NoInfer => write!(f, "placement by allocation order is off (--no-infer)"),
            StrayReason::NotAppendable => write!(f, "the dataset's chunks tile more than its first dimension: allocation order does not give positions"),
            StrayReason::ProvenOutOfOrder => write!(f, "the indexed chunks are not in allocation order"),
            StrayReason::OrderInconsistent => write!(f, "the found chunks do not fill the gaps between indexed chunks exactly: allocation order is not trusted from there on"),
            StrayReason::PartialTail => write!(f, "the last indexed chunk was partly filled and the next chunk on disk is not a newer version of it"),
            StrayReason::BeyondMaxShape => write!(f, "placing them would exceed the dataset's maximum shape"),
            StrayReason::OlderVersion => write!(f, "older versions of an indexed chunk (its leading rows, then zeros: written partly filled at a flush, superseded)"),
            StrayReason::ChainBroken => write!(f, "unfiltered chunks: the allocation chain could not be followed back to the last time the superblock was written (or the index does not prove every earlier chunk): how many chunks precede them is unknown"),
            StrayReason::StartUnproven => write!(f, "unfiltered chunks: the zero bytes from the stored end of file to the first chunk found are a chunk or longer and not exactly one metadata size: all-zero chunks may lie there, so how many chunks precede them is unknown"),
            StrayReason::BeyondClosedExtent => write!(f, "the file's stored end of file is its length and no open-for-write flag is set (as in a file its writer closed): the dataset's stored extent is taken as final, and allocation order would place them past it"),
            StrayReason::ForeignUnproven => write!(f, "described only by a template from another file, and the input does not show the dataset absent when its superblock was last written (no intact group without it, not a bare superblock): how many of its chunks precede them is unknown"),
        }
    }
}

/// Found chunks that are left under `/lost+found` as a stack.
#[derive(Clone, Debug, Serialize)]
pub struct StrayChunks {
    /// Why they were not placed in a dataset.
    #[serde(serialize_with = "display")]
    pub reason: StrayReason,
    /// Datasets (paths) they could belong to; empty without a template.
    pub candidates: Vec<String>,
    /// Element type, chunk shape and filter pipeline they decode with
    /// (a template's); None: only their inflated size is known.
    #[serde(skip)]
    pub layout: Option<Dataset>,
    /// Inflated size of each chunk in bytes.
    pub inflated_len: u64,
    /// Each chunk: absolute file offset and stored length (the zlib stream,
    /// plus its Fletcher-32 checksum when one follows).
    pub chunks: Vec<(u64, u64)>,
    /// A Fletcher-32 checksum follows each stream.
    pub fletcher32: bool,
    /// Unfiltered chunks cut from the allocation chain: each `chunks` entry
    /// is the raw chunk (stored length = chunk size), unverifiable.
    pub unfiltered: bool,
}

/// Counts from a carving pass (signature search without a trusted root).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CarveSummary {
    /// Signature hits per structure ("OHDR", "SNOD", "TREE", ...).
    pub hits: std::collections::BTreeMap<String, u64>,
    /// Hits that validated (checksum or structural checks) per structure.
    pub valid: std::collections::BTreeMap<String, u64>,
    /// Carved objects attached to a named path.
    pub attached: u64,
    /// Carved objects whose parent or name is unknown (under /lost+found).
    pub orphans: u64,
}

/// The superblock facts a report shows.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SuperblockInfo {
    /// Absolute file offset of the signature (0, 512, 1024, ...).
    pub offset: u64,
    pub version: u8,
    pub size_of_offsets: u8,
    pub size_of_lengths: u8,
    pub base_address: u64,
    /// Stored end-of-file address (absolute: the file size it claims).
    pub eof_address: u64,
    pub root_address: Option<u64>,
    pub status_flags: u32,
    /// v2/v3 only: whether the stored checksum matched.
    pub checksum_ok: Option<bool>,
}

impl SuperblockInfo {
    /// The facts of `sb`, found at absolute `offset`, whose addresses count
    /// from `base`.
    pub fn new(
        sb: &crate::format::superblock::Superblock,
        offset: u64,
        base: u64,
    ) -> SuperblockInfo {
        SuperblockInfo {
            offset,
            version: sb.version,
            size_of_offsets: sb.sizes.offset(),
            size_of_lengths: sb.sizes.length(),
            base_address: base,
            eof_address: sb.eof_address,
            root_address: sb.root_address(),
            status_flags: sb.status_flags,
            checksum_ok: sb.checksum_ok,
        }
    }

    /// File size the superblock claims. The stored end-of-file address
    /// counts from the start of the file, user block included (observed in
    /// h5py files with 512 and 4096-byte user blocks: it equals the size).
    pub fn stored_file_size(&self) -> u64 {
        self.eof_address
    }

    /// v3 consistency flag bit 0: a writer still had the file open.
    pub fn open_for_write(&self) -> bool {
        self.version >= 3 && self.status_flags & 0x1 != 0
    }

    /// The superblock shows the writer did not close the file: the "open
    /// for write" flag, or a file of `size` bytes longer than its stored
    /// end of file (written after the superblock was).
    pub fn unclosed(&self, size: u64) -> bool {
        self.open_for_write() || size > self.stored_file_size()
    }
}

/// A group, dataset or committed datatype, reached under `path`.
#[derive(Debug, Clone)]
pub struct Object {
    /// Absolute path, "/" for the root.
    pub path: String,
    pub kind: ObjectKind,
    /// Object header address (HDF5 address).
    pub address: u64,
    pub status: Status,
    pub problems: Vec<Problem>,
    pub attributes: Vec<Attribute>,
    /// Present when `kind` is `Dataset`. Boxed: most objects are groups,
    /// and an inline `Dataset` (424 bytes) made every `Object` 672 bytes to
    /// move, place and drop (carving holds one per header found).
    pub dataset: Option<Box<Dataset>>,
    /// Present when `kind` is `Datatype` (a committed datatype).
    pub datatype: Option<Datatype>,
    /// Set when this object was already reached under another path (a second
    /// hard link): the path of the first visit. Its contents are not repeated.
    pub hard_link_of: Option<String>,
    /// How it was found: by the walk from the superblock, or by carving.
    pub origin: Origin,
    /// Absolute byte ranges `[start, end)` of its object header: the
    /// prefix and chunk 0, and each message frame in continuation blocks.
    pub header_spans: Vec<(u64, u64)>,
    /// Header version (1: no checksum, 2: lookup3 checksummed), when read.
    pub header_version: Option<u8>,
    /// Groups: whether link creation order is tracked / indexed (Link Info
    /// message flags, spec IV.A.2.c). Members are then listed, and visited,
    /// in creation order.
    pub link_order: CreationOrder,
    /// Whether attribute creation order is tracked / indexed (Attribute
    /// Info message flags, spec IV.A.2.v). Attributes are then listed in
    /// creation order.
    pub attribute_order: CreationOrder,
    /// Datasets whose datatype message is shared: the header address of
    /// the committed datatype it names (spec IV.A.2.d, "shared" flag).
    pub committed_type: Option<u64>,
    /// Groups tracking link creation order: every member's name (hard,
    /// soft, external links alike; escaped as in their paths) in creation
    /// order, so the output can list them the same way.
    pub member_names: Vec<String>,
    /// Groups: the member names (escaped as in their paths) whose link
    /// gives the other character set than the name's bytes suggest (Link
    /// message flags bit 4 and charset, spec IV.A.2.g; symbol-table
    /// entries are ASCII): ASCII for a non-ASCII name, UTF-8 for an ASCII
    /// one. The writers give every other name UTF-8 when it is not ASCII,
    /// ASCII when it is: only the exceptions are kept.
    pub other_charset_names: Vec<String>,
    /// The times its header stores, as libhdf5 reports them (H5Oget_info:
    /// access, modification, change, birth): a version-2 header's with
    /// flag bit 5 (spec IV.A.1.b); for version 1, which libhdf5 takes as
    /// always tracking times, the modification time message (IV.A.2.s,
    /// IV.A.2.o) as the change time, the others 0. `None`: not stored.
    pub times: Option<[u32; 4]>,
}

impl Object {
    /// Why the object's header is unverified: it lies in a range a cache
    /// image entry from a block that failed its checksum was put at
    /// ([`check_relocated`]).
    pub fn read_through_unverified(
        &self,
        relocated: &[crate::follow::cache_image::Relocation],
    ) -> Option<String> {
        let r = relocated.iter().filter(|r| !r.verified).find(|r| {
            let end = r.home.saturating_add(r.len);
            self.header_spans
                .iter()
                .any(|&(s, e)| s < end && r.home < e)
        })?;
        Some(format!(
            "header read from the cache image entry put at {:#x}..{:#x}: the image block fails \
             its checksum, so the entry's address is not verified",
            r.home,
            r.home.saturating_add(r.len)
        ))
    }
}

/// Creation-order flags of a group's links or an object's attributes
/// (bit 0 tracked, bit 1 indexed, in the Link Info and Attribute Info
/// messages).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreationOrder {
    pub tracked: bool,
    pub indexed: bool,
}

/// How an object was found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    #[default]
    Walk,
    Carve,
}

impl Object {
    pub fn new(path: String, address: u64) -> Object {
        Object {
            path,
            kind: ObjectKind::Unknown,
            address,
            status: Status::Intact,
            problems: Vec::new(),
            attributes: Vec::new(),
            dataset: None,
            datatype: None,
            hard_link_of: None,
            origin: Origin::Walk,
            header_spans: Vec::new(),
            header_version: None,
            link_order: CreationOrder::default(),
            attribute_order: CreationOrder::default(),
            committed_type: None,
            member_names: Vec::new(),
            other_charset_names: Vec::new(),
            times: None,
        }
    }

    /// True if its object header (or a continuation block) failed its
    /// checksum: what the header says cannot be trusted.
    pub fn header_checksum_failed(&self) -> bool {
        self.problems
            .iter()
            .any(|p| p.kind == ProblemKind::HeaderChecksum)
    }

    /// Records a problem and lowers the status to at least `status`.
    pub fn damage(&mut self, status: Status, problem: Problem) {
        self.status = self.status.max(status);
        self.problems.push(problem);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Group,
    Dataset,
    Datatype,
    /// The header could not be read or says nothing recognizable.
    Unknown,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Group => "group",
            ObjectKind::Dataset => "dataset",
            ObjectKind::Datatype => "datatype",
            ObjectKind::Unknown => "unknown",
        }
    }
}

/// Health of an object, ordered from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Metadata and data all present and verified where the format allows.
    Intact,
    /// Some of its metadata or data is missing, fails a check, or is inconsistent.
    Partial,
    /// Its header is unreadable.
    Lost,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Intact => "intact",
            Status::Partial => "partial",
            Status::Lost => "lost",
        }
    }
}

/// What is wrong, as the stages decide on it: salvage, merge and the walk
/// test the kind of a [`Problem`], never the words of its message (which
/// may be reworded freely). Not part of the JSON report (every problem
/// there is `{offset, structure, message}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// A stored checksum (lookup3 or Fletcher-32) does not match the bytes.
    Checksum,
    /// An object header or one of its continuation blocks fails its
    /// checksum: nothing the header says is trusted
    /// ([`Object::header_checksum_failed`]).
    HeaderChecksum,
    /// The structure (or data) runs past the end of the bytes or the file.
    Truncated,
    /// The magic bytes are not there (or not the expected ones).
    BadSignature,
    /// A version the parser does not know.
    BadVersion,
    /// A field holds an illegal value, or one beyond a safety cap.
    BadValue,
    /// Malformed in another way (a parser's words say how).
    Malformed,
    /// A structure that should be there cannot be read or is absent (an
    /// object header, a message, a name in a heap, the root address).
    Unreadable,
    /// A limit of the walk or search was reached (objects, depth, bytes):
    /// what lies beyond was not visited.
    LimitExceeded,
    /// The object's own messages contradict each other (layout size vs
    /// dataspace and datatype, ...): which one is damaged cannot be told,
    /// so its data is not trusted ([`crate::walk::INCONSISTENT`]).
    Inconsistent,
    /// The extent was grown to cover chunks the index lists past the stored
    /// one ([`crate::walk::dataset::EXTENT_GROWN`]).
    ExtentGrown,
    /// Bytes claimed twice (a chunk over other structures, headers inside
    /// raw data): not trusted.
    Overlap,
    /// A dataset's raw data shares bytes with another object's raw data or
    /// with an object header ([`check_data_overlaps`]): one of the two
    /// addresses is wrong and which cannot be told; salvage writes the data
    /// marked `h5salvage_unverified`.
    SharedBytes,
    /// Two entries for one name or position: one is ignored or renamed.
    Duplicate,
    /// Evidence that fits several owners or targets: not used, or the
    /// choice is named.
    Ambiguous,
    /// Something recovered by inference rather than read from a verified
    /// structure (chunks placed by order, a template, records beyond the
    /// index root, an inferred base address, names from orphan blocks).
    Inferred,
    /// The writer did not close the file (open-for-write flag, data past the
    /// stored end of file).
    NotClosed,
    /// A feature h5salvage does not read (virtual or external storage,
    /// shared messages other than datatypes, ...).
    Unsupported,
    /// An oddity that loses nothing (listed under `notes`).
    Note,
}

impl From<&crate::format::ErrorKind> for ProblemKind {
    fn from(k: &crate::format::ErrorKind) -> ProblemKind {
        use crate::format::ErrorKind as E;
        match k {
            E::Truncated { .. } => ProblemKind::Truncated,
            E::BadSignature { .. } => ProblemKind::BadSignature,
            E::UnsupportedVersion(_) => ProblemKind::BadVersion,
            E::BadChecksum { .. } => ProblemKind::Checksum,
            E::BadValue { .. } => ProblemKind::BadValue,
            E::Invalid(_) => ProblemKind::Malformed,
        }
    }
}

/// One damaged structure: where, what it is, what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What is wrong, for decisions (not in the JSON report).
    #[serde(skip)]
    pub kind: ProblemKind,
    /// Absolute file offset, when known.
    pub offset: Option<u64>,
    /// The structure involved ("superblock", "SNOD", "object header", ...).
    pub structure: String,
    /// What is wrong, in words for the reader: never decided on.
    pub message: String,
}

impl Problem {
    pub fn new(
        kind: ProblemKind,
        offset: Option<u64>,
        structure: &str,
        message: impl Into<String>,
    ) -> Problem {
        Problem {
            kind,
            offset,
            structure: structure.to_string(),
            message: message.into(),
        }
    }
}

impl Problem {
    /// A parse error of an object header or its continuation blocks: a
    /// checksum failure there is [`ProblemKind::HeaderChecksum`].
    pub fn in_header(e: crate::format::Error) -> Problem {
        let mut p = Problem::from(e);
        if p.kind == ProblemKind::Checksum {
            p.kind = ProblemKind::HeaderChecksum;
        }
        p
    }
}

impl From<crate::format::Error> for Problem {
    fn from(e: crate::format::Error) -> Problem {
        Problem {
            kind: ProblemKind::from(&e.kind),
            offset: Some(e.offset),
            structure: e.structure.to_string(),
            message: e.kind.to_string(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{} at {:#x}: {}", self.structure, o, self.message),
            None => write!(f, "{}: {}", self.structure, self.message),
        }
    }
}

/// An attribute of an object, with its raw value bytes.
#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: String,
    pub message: AttributeMessage,
    /// Its creation order, where the object tracks it (the header message's
    /// creation order field, or the dense name index record's).
    pub creation_order: Option<u64>,
    /// Its datatype is a committed datatype: that type's header address.
    pub committed_type: Option<u64>,
    /// Problems with this attribute (e.g. a shared datatype that could not
    /// be resolved, or a vlen value whose heap object is missing).
    pub problems: Vec<Problem>,
}

/// What a dataset's header says and how much of its data is in the file.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub datatype: Datatype,
    pub dataspace: Dataspace,
    pub layout: DataLayout,
    pub filters: Option<FilterPipeline>,
    pub fill_value: Option<FillValue>,
    /// External storage (External Data Files message): the raw data lives in
    /// other files, which are not read.
    pub external_files: bool,
    /// Chunked datasets: every chunk the index lists (and, after carving,
    /// every chunk index records beyond the index root prove, see
    /// `beyond_index`).
    pub chunks: Vec<ChunkRef>,
    pub coverage: Coverage,
    /// What the file proves beyond the (possibly stale) index root and
    /// dataspace of a chunked dataset (issue 13: killed appending writers).
    pub beyond_index: BeyondIndex,
}

impl Dataset {
    /// Bytes of the whole dataset (elements x element size), if computable.
    pub fn data_bytes(&self) -> Option<u64> {
        self.dataspace
            .element_count()?
            .checked_mul(u64::from(self.datatype.size))
    }

    /// Bytes of one unfiltered chunk of `chunk_dims` elements, if computable.
    pub fn chunk_bytes(&self, chunk_dims: &[u64]) -> Option<u64> {
        chunk_dims
            .iter()
            .try_fold(u64::from(self.datatype.size), |a, &d| a.checked_mul(d))
    }
}

/// Chunks of a dataset found in index records its index root does not
/// reach, and the extent grown to cover them. Empty for a healthy file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BeyondIndex {
    /// Chunks the index reached from its root (before anything was added).
    pub indexed: u64,
    /// Chunks added to `Dataset::chunks` from records the root does not
    /// reach (each names its record).
    pub records: Vec<ChunkRecordFound>,
    /// Chunks the root's index listed but a newer record for the same
    /// position replaced (v1 B-tree: a leaf written before it was split).
    pub superseded: u64,
    /// The stored dataspace dims, when the extent was grown to cover the
    /// chunks the index lists; `None` when not grown.
    pub stored_dims: Option<Vec<u64>>,
}

/// One chunk added from an index record beyond the index root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChunkRecordFound {
    /// Element coordinates of the chunk (proven by the record).
    pub offset: Vec<u64>,
    /// The structure holding the record ("EADB", "TREE").
    pub structure: &'static str,
    /// Absolute file offset of that structure.
    pub at: u64,
    /// What ties the structure to this dataset.
    pub tie: Tie,
}

/// Why an index record is believed to belong to a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tie {
    /// The structure names the dataset's index header (`EADB`, `FADB`).
    Owner,
    /// A v1 B-tree node reached by sibling pointers from a node of the
    /// dataset's index.
    Sibling,
    /// The only dataset whose rank, chunk shape and chunk sizes fit the
    /// node, none of whose chunks another dataset claims.
    Unique,
    /// A v2 B-tree node (no owner field) that lists, at the same position,
    /// a chunk address the dataset's index lists, or shares one with such
    /// a node: a chunk address belongs to one dataset.
    SharedChunk,
    /// A v2 B-tree node reached by child pointers from the root its
    /// dataset's `BTHD` names (the root re-read with the record count its
    /// own checksum proves: the header's count is stale).
    Child,
    /// A v2 B-tree node of unfiltered chunks that several datasets fit,
    /// tied to the only one whose proven chunks it does not contradict
    /// (lists none of their positions at another address: unfiltered
    /// chunks never move).
    Consistent,
}

/// One stored chunk, as its index lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChunkRef {
    /// Element coordinates of the chunk's first element.
    pub offset: Vec<u64>,
    /// HDF5 address of the stored bytes.
    pub address: u64,
    /// Stored (possibly filtered) size in bytes.
    pub size: u64,
    /// Bit i set: filter i of the pipeline was skipped for this chunk.
    pub filter_mask: u32,
    /// The stored bytes lie entirely inside the file.
    pub present: bool,
}

/// How much of a dataset's raw data the file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Chunked: chunks listed by the index (None if the index was unreadable
    /// before anything was listed). Contiguous/compact: None.
    pub chunks_total: Option<u64>,
    /// Chunked: listed chunks whose bytes are inside the file.
    pub chunks_present: Option<u64>,
    /// Contiguous/compact: bytes the layout declares.
    pub bytes_expected: Option<u64>,
    /// Contiguous/compact: of those, bytes inside the file (a prefix).
    pub bytes_present: Option<u64>,
    /// The index was read completely (no unreadable node).
    pub index_complete: bool,
}

/// A link that is not a hard link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkEntry {
    pub path: String,
    /// "soft", "external" or "user_defined".
    pub kind: LinkKind,
    /// Soft and external: the target path. User-defined: "type N".
    pub target: String,
    /// External links: the target file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

word_enum! {
    /// The kind of a link that is not a hard link.
    pub enum LinkKind {
        Soft => "soft",
        External => "external",
        UserDefined => "user_defined",
    }
}

/// The overall judgement on a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Everything reachable is intact and nothing is wrong.
    Healthy,
    /// Something is wrong, but something was read.
    Damaged,
    /// A 0-byte file.
    Empty,
    /// No HDF5 signature and nothing HDF5-like found.
    NotHdf5,
    /// A signature but nothing could be read from it.
    Unreadable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Damaged => "damaged",
            Verdict::Empty => "empty",
            Verdict::NotHdf5 => "not_hdf5",
            Verdict::Unreadable => "unreadable",
        }
    }
}

/// Counts for the summary line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub groups: u64,
    pub datasets: u64,
    pub datatypes: u64,
    pub unknown: u64,
    pub intact: u64,
    pub partial: u64,
    pub lost: u64,
    pub links: u64,
    pub problems: u64,
}

impl Summary {
    /// Adds `o` to the counts (its kind, status and problems).
    pub fn count(&mut self, o: &Object) {
        match o.kind {
            ObjectKind::Group => self.groups += 1,
            ObjectKind::Dataset => self.datasets += 1,
            ObjectKind::Datatype => self.datatypes += 1,
            ObjectKind::Unknown => self.unknown += 1,
        }
        match o.status {
            Status::Intact => self.intact += 1,
            Status::Partial => self.partial += 1,
            Status::Lost => self.lost += 1,
        }
        self.problems += o.problems.len() as u64;
        self.problems += o
            .attributes
            .iter()
            .map(|a| a.problems.len() as u64)
            .sum::<u64>();
    }
}

impl Inventory {
    /// The byte image this inventory's addresses refer to: `bytes` (the
    /// file it was made from) with the superblock's base and sizes, or the
    /// inferred ones of a file without a superblock.
    ///
    /// The inventory of a file with a metadata cache image was made from its
    /// bytes with the image's entries put at their own addresses
    /// ([`crate::pipeline`]): `bytes` must be those (as
    /// [`crate::pipeline::Input::bytes`] are; [`Inventory::with_cache_image`]
    /// makes them from the file's own). Given the file's own bytes, where
    /// stale versions may lie at those addresses, the image is empty: every
    /// read fails, none reads a stale value.
    pub fn image<'a>(&self, bytes: &'a [u8]) -> crate::follow::Image<'a> {
        use crate::format::Sizes;
        let applied = self.relocated.iter().all(|r| {
            let at = |s: u64| {
                let s = usize::try_from(s).ok()?;
                bytes.get(s..s.checked_add(usize::try_from(r.len).ok()?)?)
            };
            at(r.home).is_some_and(|h| Some(h) == at(r.from))
        });
        let bytes = if applied { bytes } else { &bytes[..0] };
        let sb = self.superblock.as_ref();
        if let (None, Some(i)) = (sb, &self.inferred) {
            let sizes = Sizes::new(i.size_of_offsets, i.size_of_lengths).unwrap_or(Sizes::DEFAULT);
            return crate::follow::Image::new(bytes, i.base_address, sizes);
        }
        let sizes = sb
            .and_then(|s| Sizes::new(s.size_of_offsets, s.size_of_lengths).ok())
            .unwrap_or(Sizes::DEFAULT);
        crate::follow::Image::new(bytes, sb.map_or(0, |s| s.base_address), sizes)
    }

    /// `bytes` (the file's own) with the metadata cache image's entries
    /// put at their own addresses, as the inventory was made from them
    /// (a copy only when it has relocated entries not yet there).
    pub fn with_cache_image<'a>(&self, bytes: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        if self.relocated.is_empty() || !self.image(bytes).bytes.is_empty() {
            return std::borrow::Cow::Borrowed(bytes);
        }
        let mut v = bytes.to_vec();
        crate::follow::cache_image::apply(&self.relocated, &mut v);
        std::borrow::Cow::Owned(v)
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            links: self.links.len() as u64,
            problems: self.problems.len() as u64,
            ..self.streamed.clone()
        };
        s.problems += self.streamed.problems;
        for o in &self.objects {
            s.count(o);
        }
        s
    }

    pub fn verdict(&self) -> Verdict {
        if self.size == 0 {
            return Verdict::Empty;
        }
        let streamed = &self.streamed;
        let Some(_) = self.superblock else {
            return if !self.objects.is_empty() {
                Verdict::Damaged
            } else if self.signature_found {
                Verdict::Unreadable
            } else {
                Verdict::NotHdf5
            };
        };
        let chunks_found = self
            .chunk_search
            .as_ref()
            .is_some_and(|c| !c.placed.is_empty() || !c.stray.is_empty());
        let readable = self.objects.iter().any(|o| o.status != Status::Lost)
            || streamed.intact + streamed.partial > 0
            || chunks_found;
        if !readable {
            return Verdict::Unreadable;
        }
        let s = self.summary();
        if s.problems == 0 && s.partial == 0 && s.lost == 0 {
            Verdict::Healthy
        } else {
            Verdict::Damaged
        }
    }

    pub fn object(&self, path: &str) -> Option<&Object> {
        self.objects.iter().find(|o| o.path == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streamed walk's compact spans answer exactly whether raw data of
    /// one object meets another object's bytes (brute force over random
    /// spans, touching runs of one object joined, lengths split), so never
    /// "no" where [`overlaps`] (of the whole inventory) finds a pair.
    #[test]
    fn streamed_spans_tell_exactly_whether_anything_overlaps() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let (mut yes, mut no) = (0, 0);
        for round in 0..3000 {
            let base = [0, 512, u64::MAX - 40][round % 3];
            let mut compact = StreamedSpans::default();
            let mut all: Vec<Span> = Vec::new();
            let objects = 1 + next(6);
            for owner in 0..objects {
                let first = compact.spans.len();
                for _ in 0..next(5) {
                    let raw = next(3) == 0;
                    // Often touching the previous span of the object.
                    let start = match all.last() {
                        Some(l) if l.2 == owner as u32 && next(2) == 0 => l.1,
                        _ => next(200),
                    };
                    let end = start + next(30);
                    let kind = (owner << StreamedSpans::LEN_BITS)
                        | if raw { StreamedSpans::RAW } else { 0 };
                    compact.add(first, start, end, kind);
                    all.push((start, end, owner as u32, raw));
                }
            }
            let moved: Vec<Span> = all
                .iter()
                .map(|&(s, e, o, raw)| match raw {
                    true => (s.saturating_add(base), e.saturating_add(base), o, raw),
                    false => (s, e, o, raw),
                })
                .filter(|s| s.0 < s.1)
                .collect();
            let brute = moved.iter().enumerate().any(|(i, a)| {
                moved[i + 1..]
                    .iter()
                    .any(|b| a.2 != b.2 && (a.3 || b.3) && a.0 < b.1 && b.0 < a.1)
            });
            let swept = !overlaps(&mut moved.clone()).is_empty();
            let answer = compact.any_overlap(base);
            assert_eq!(answer, brute, "round {round}: {all:?} base {base}");
            assert!(answer || !swept, "round {round}");
            if answer {
                yes += 1
            } else {
                no += 1
            }
        }
        assert!(yes > 300 && no > 300, "{yes} overlapping, {no} apart");
        // Longer than a length field: "maybe" (the whole check decides),
        // in constant room however long (a fuzzed 2^64-byte extent was
        // split into 2^24 pieces and sorted).
        let mut long = StreamedSpans::default();
        long.add(0, 10, u64::MAX, StreamedSpans::RAW);
        long.add(0, 10, 10 + 3 * StreamedSpans::MAX_LEN, StreamedSpans::RAW);
        assert!(long.spans.is_empty());
        assert!(long.any_overlap(0));
        // Touching spans that would join past the limit stay two (one
        // object: no overlap).
        let mut long = StreamedSpans::default();
        long.add(0, 0, StreamedSpans::MAX_LEN, StreamedSpans::RAW);
        long.add(
            0,
            StreamedSpans::MAX_LEN,
            StreamedSpans::MAX_LEN + 1,
            StreamedSpans::RAW,
        );
        assert_eq!(long.spans.len(), 2);
        assert!(!long.any_overlap(0));
    }

    #[test]
    fn zeroed_ranges_are_aligned_runs_of_whole_pages() {
        let mut b = vec![1u8; 10 * PAGE + 100];
        b[PAGE..3 * PAGE].fill(0); // pages 1-2: one run
        b[5 * PAGE + 1..6 * PAGE].fill(0); // page 5 has one non-zero byte
        b[6 * PAGE..7 * PAGE - 1].fill(0); // page 6 ends with one
        b[8 * PAGE..10 * PAGE].fill(0); // pages 8 and 9
        let r = |offset: usize, pages: usize| ZeroedRange {
            offset: offset as u64,
            length: (pages * PAGE) as u64,
        };
        assert_eq!(zeroed_ranges(&b), vec![r(PAGE, 2), r(8 * PAGE, 2)]);
        // The trailing partial page zeroed too: the run reaches the end of
        // the file (alone, and after a zeroed whole page).
        b[10 * PAGE..].fill(0);
        let mut tail = r(8 * PAGE, 2);
        tail.length += 100;
        assert_eq!(zeroed_ranges(&b), vec![r(PAGE, 2), tail]);
        // Alone, 100 zero bytes are too short to count; 600 count.
        b[9 * PAGE] = 1;
        assert_eq!(zeroed_ranges(&b), vec![r(PAGE, 2), r(8 * PAGE, 1)]);
        let mut d = vec![1u8; 2 * PAGE + 600];
        d[2 * PAGE..].fill(0);
        let tail = ZeroedRange {
            offset: (2 * PAGE) as u64,
            length: 600,
        };
        assert_eq!(zeroed_ranges(&d), vec![tail]);
        d[2 * PAGE] = 1;
        assert_eq!(zeroed_ranges(&d), vec![]);
        // Unaligned zeros spanning two pages are no whole page.
        let mut c = vec![1u8; 3 * PAGE];
        c[PAGE / 2..PAGE / 2 + PAGE].fill(0);
        assert!(zeroed_ranges(&c).is_empty());
        assert!(zeroed_ranges(&[]).is_empty());
    }

    fn inv(size: u64) -> Inventory {
        Inventory {
            file: "f.h5".into(),
            size,
            ..Inventory::default()
        }
    }

    fn sb() -> SuperblockInfo {
        SuperblockInfo {
            offset: 0,
            version: 0,
            size_of_offsets: 8,
            size_of_lengths: 8,
            base_address: 0,
            eof_address: 100,
            root_address: Some(96),
            status_flags: 0,
            checksum_ok: None,
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(inv(0).verdict(), Verdict::Empty);
        assert_eq!(inv(10).verdict(), Verdict::NotHdf5);
        let mut i = inv(100);
        i.superblock = Some(sb());
        assert_eq!(i.verdict(), Verdict::Unreadable);
        i.objects.push(Object::new("/".into(), 96));
        assert_eq!(i.verdict(), Verdict::Healthy);
        i.objects[0].damage(
            Status::Partial,
            Problem::new(ProblemKind::Malformed, Some(1), "x", "y"),
        );
        assert_eq!(i.verdict(), Verdict::Damaged);
        i.objects[0].damage(
            Status::Intact,
            Problem::new(ProblemKind::Malformed, None, "x", "y"),
        );
        assert_eq!(
            i.objects[0].status,
            Status::Partial,
            "damage never raises the status"
        );
        i.objects[0].status = Status::Lost;
        assert_eq!(i.verdict(), Verdict::Unreadable);
        let mut j = inv(100);
        j.superblock = Some(sb());
        j.objects.push(Object::new("/".into(), 96));
        j.notes.push(Problem::new(
            ProblemKind::Note,
            None,
            "file",
            "2 newlines past the end",
        ));
        assert_eq!(j.verdict(), Verdict::Healthy, "notes do not damage");
        j.problems.push(Problem::new(
            ProblemKind::Truncated,
            None,
            "superblock",
            "truncated",
        ));
        assert_eq!(j.verdict(), Verdict::Damaged);
    }

    #[test]
    fn only_a_header_checksum_makes_the_header_untrusted() {
        let mismatch = crate::format::ErrorKind::BadChecksum {
            stored: 1,
            computed: 2,
        };
        let err = |structure| crate::format::Error::new(structure, 8, mismatch.clone());
        let mut o = Object::new("/d".into(), 0);
        o.damage(Status::Partial, Problem::from(err("FRHP")));
        assert_eq!(o.problems[0].kind, ProblemKind::Checksum);
        assert!(!o.header_checksum_failed());
        o.damage(Status::Partial, Problem::in_header(err("object header")));
        assert!(o.header_checksum_failed());
        // The words are not what decides.
        let mut q = Object::new("/e".into(), 0);
        q.damage(
            Status::Partial,
            Problem::new(
                ProblemKind::Malformed,
                None,
                "object header",
                "checksum mismatch",
            ),
        );
        assert!(!q.header_checksum_failed());
    }

    #[test]
    fn open_for_write_is_v3_bit0() {
        let mut s = sb();
        s.status_flags = 1;
        assert!(!s.open_for_write());
        s.version = 3;
        assert!(s.open_for_write());
        s.base_address = 512;
        assert_eq!(s.stored_file_size(), 100);
    }
}

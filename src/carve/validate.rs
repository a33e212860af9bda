//! Validation of signature hits with the format parsers: checksummed
//! structures must match their lookup3 checksum (spec III.H "checksum"),
//! the others must parse with a known version and addresses inside the file.

use std::collections::HashMap;

use crate::follow::Image;
use crate::format::message::kind;
use crate::format::{block_prefix, checksum_ok, signature_v0, MessageHeader, Sizes};
use crate::format::{
    btree_v1, btree_v2, extensible_array, fixed_array, fractal_heap, global_heap, is_undefined,
    local_heap, object_header, superblock, symbol_table_node,
};

use super::signatures::{Hit, Kind};

/// How far a carved structure can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Confidence {
    /// Parsed and its stored checksum matches.
    Checksummed,
    /// No checksum to test (or none found): parsed with a known version,
    /// sane counts and addresses inside the file.
    Structural,
}

/// Largest OCHK block searched for its checksum (continuation blocks are
/// small; libhdf5 never writes one larger than a header chunk).
const MAX_OCHK: usize = 1 << 16;

/// Smallest and largest direct block size tried for a `FHDB` whose heap
/// header is lost (h5py heaps start at 512 bytes).
const MIN_DIRECT_BLOCK: u64 = 512;
const MAX_DIRECT_BLOCK: u64 = 1 << 20;

/// The file is cut into regions of this size for [`HashBudget`].
const BUDGET_REGION: u64 = 1 << 20;
/// Bytes the hits starting in one region may hash guessing lengths (see
/// [`HashBudget`]), and, separately, hashing lengths their structure states.
const REGION_BUDGET: u64 = 16 << 20;
/// Bytes one hit may hash guessing its length: 16 damaged hits are needed
/// to exhaust a region. Covers an `OCHK` of [`MAX_OCHK`] framed in few
/// messages and a `FHDB` up to 256 KiB at heap offset 0 (both widths).
pub const HIT_BUDGET: u64 = 1 << 20;
/// Refused hits reported one by one (the rest are counted).
pub const MAX_REFUSED_LISTED: usize = 16;

/// Bytes the lookup3 checksum may cover while validating hits. Some hits
/// test a checksum at every candidate length, each test hashing all the
/// bytes before it: an `OCHK` at every message boundary (its length is
/// unknown until a checksum matches), a `FHDB` whose heap header is lost at
/// every block size from 512 bytes to 1 MiB. One hit can thus hash
/// megabytes, and hostile input (thousands of `FHDB` signatures before
/// zeros; fuzz target `carve_base`) made the whole validation quadratic in
/// the file. Each hit is charged to the 1 MiB region of the file where it
/// starts, and each region may hash [`REGION_BUDGET`] bytes (16 times its
/// size) guessing lengths, each hit at most [`HIT_BUDGET`] of them: the
/// total is linear in the file, hostile bytes in one region cannot starve
/// the others, and one damaged hit (an `OCHK` before zeros) cannot starve
/// its region. Tests of a length the structure states (an `OHDR`'s chunk
/// 0) are charged to a second allowance of [`REGION_BUDGET`] per region,
/// which the guessing cannot use up. Real structures hash about their own
/// size (their lengths are disjoint), far below the budget. A hit whose
/// tests the budget cut short is counted in `refused` and validated only
/// as far as it was tested.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashBudget {
    /// Region being charged (`offset / BUDGET_REGION`) and what it has left
    /// for guessed lengths, and for stated ones.
    region: Option<u64>,
    left: u64,
    stated_left: u64,
    /// What the current hit may still hash guessing lengths.
    hit_left: u64,
    /// Bytes hashed by the tests so far.
    pub spent: u64,
    /// Hits whose tests were cut short.
    pub refused: u64,
    /// The last cut was by the hit's own [`HIT_BUDGET`] (not its region's).
    pub cut_by_hit: bool,
}

impl HashBudget {
    /// Starts charging the hit at absolute `offset` (hits come in file
    /// order; a new region starts with full allowances, each hit with its
    /// own [`HIT_BUDGET`]).
    pub fn enter(&mut self, offset: u64) {
        let r = offset / BUDGET_REGION;
        if self.region != Some(r) {
            self.region = Some(r);
            self.left = REGION_BUDGET;
            self.stated_left = REGION_BUDGET;
        }
        self.hit_left = HIT_BUDGET;
    }

    /// Charges `n` bytes about to be hashed testing a guessed length;
    /// `false` (nothing charged) when the hit or its region cannot afford
    /// them.
    fn take(&mut self, n: u64) -> bool {
        if n > self.left || n > self.hit_left {
            self.cut_by_hit = n <= self.left;
            return false;
        }
        self.left -= n;
        self.hit_left -= n;
        self.spent = self.spent.saturating_add(n);
        true
    }

    /// Charges `n` bytes hashed over a length the structure states.
    fn take_stated(&mut self, n: u64) {
        self.stated_left = self.stated_left.saturating_sub(n);
        self.spent = self.spent.saturating_add(n);
    }
}

/// What [`validate_all`] found.
#[derive(Clone, Debug, Default)]
pub struct Validated {
    /// The hits that validate, in file order.
    pub valid: Vec<(Hit, Confidence)>,
    /// Checksummed `OCHK` hits by offset: [`ochk_frame`]'s answer.
    pub ochk: HashMap<u64, (usize, bool)>,
    /// `FHDB` hits whose checksum matched, by offset: the block size.
    pub fhdb: HashMap<u64, u64>,
    pub budget: HashBudget,
    /// The first [`MAX_REFUSED_LISTED`] hits the budget cut short, and
    /// whether by their own [`HIT_BUDGET`] (else by their region's).
    pub refused: Vec<(Hit, bool)>,
}

/// Validates every hit (in file order) under one [`HashBudget`].
pub fn validate_all(image: &Image, hits: &[Hit]) -> Validated {
    let mut out = Validated::default();
    for &h in hits {
        out.budget.enter(h.offset);
        out.budget.cut_by_hit = false;
        let refused = out.budget.refused;
        let checked = check(image, h, &mut out.budget);
        if out.budget.refused > refused && out.refused.len() < MAX_REFUSED_LISTED {
            out.refused.push((h, out.budget.cut_by_hit));
        }
        let Some((c, extent)) = checked else {
            continue;
        };
        match extent {
            Extent::Ochk(len, co) => {
                out.ochk.insert(h.offset, (len, co));
            }
            Extent::Fhdb(size) => {
                out.fhdb.insert(h.offset, size);
            }
            Extent::None => {}
        }
        out.valid.push((h, c));
    }
    out
}

/// Validates one hit against `image` (whose base turns the structure's
/// relative addresses into file offsets). `None`: not a usable structure.
/// The hit gets a region's [`HashBudget`] of its own; [`validate_all`]
/// shares one among the hits of a file.
pub fn validate(image: &Image, hit: Hit) -> Option<Confidence> {
    let mut budget = HashBudget::default();
    budget.enter(hit.offset);
    check(image, hit, &mut budget).map(|c| c.0)
}

/// What a checksum test found about a structure's extent.
enum Extent {
    None,
    /// `OCHK`: length with its checksum, creation-order message headers.
    Ochk(usize, bool),
    /// `FHDB`: the block size whose checksum matched.
    Fhdb(u64),
}

fn check(image: &Image, hit: Hit, budget: &mut HashBudget) -> Option<(Confidence, Extent)> {
    let at = hit.offset;
    let data = usize::try_from(at)
        .ok()
        .and_then(|o| image.bytes.get(o..))?;
    let plain = |c: Option<Confidence>| c.map(|c| (c, Extent::None));
    let sizes = image.sizes;
    let inside = |addr: u64| is_undefined(addr) || image.contains(addr, 1);
    let structural = |ok: bool| ok.then_some(Confidence::Structural);
    let checked = |ok: bool| ok.then_some(Confidence::Checksummed);
    let c = match hit.kind {
        Kind::Superblock => {
            let sb = superblock::parse(data, at).ok()?;
            match sb.checksum_ok {
                Some(ok) => checked(ok),
                None => Some(Confidence::Structural),
            }
        }
        Kind::Tree => {
            // Chunk trees need the dataset's rank: try the plausible ranks.
            let node_type = *data.get(4)?;
            let ranks: &[usize] = if node_type == btree_v1::NODE_TYPE_CHUNK {
                &[1, 2, 3, 4, 5, 6, 7, 8]
            } else {
                &[0]
            };
            let room = image.len().saturating_sub(image.base);
            structural(ranks.iter().any(|&r| {
                btree_v1::parse(data, at, sizes, Some(r))
                    .is_ok_and(|n| n.validate(room).is_empty() && n.entries_used > 0)
            }))
        }
        Kind::Snod => {
            let n = symbol_table_node::parse(data, at, sizes).ok()?;
            structural(
                !n.entries.is_empty()
                    && n.entries.iter().all(|e| {
                        !is_undefined(e.object_header_address) && inside(e.object_header_address)
                    }),
            )
        }
        Kind::Heap => {
            let h = local_heap::parse(data, at, sizes).ok()?;
            structural(image.contains(h.data_address, h.data_size))
        }
        Kind::Gcol => {
            let g = global_heap::parse(data, at, sizes).ok()?;
            structural(g.fault.is_none() && g.collection_size <= data.len() as u64)
        }
        Kind::Ohdr => {
            let (p, _) = parse_header_within(data, at, sizes, budget)?;
            checked(p.checksum_ok == Some(true))
        }
        Kind::Ochk => {
            let (len, co) = ochk_frame_within(data, budget)?;
            return Some((Confidence::Checksummed, Extent::Ochk(len, co)));
        }
        Kind::Frhp => {
            let h = fractal_heap::parse_header(data, at, sizes).ok()?;
            checked(h.checksum_ok)
        }
        Kind::Fhdb => {
            // Heap header unknown: h5py link heaps use 4-byte block offsets,
            // attribute heaps 5. A checksum (when the heap uses them) decides.
            let raws: Vec<_> = [4u8, 5]
                .iter()
                .filter_map(|&w| {
                    fractal_heap::parse_direct_block_standalone(data, at, sizes, w).ok()
                })
                .collect();
            if let Some(size) = direct_block_size(&raws, data, budget) {
                return Some((Confidence::Checksummed, Extent::Fhdb(size)));
            }
            structural(
                raws.iter()
                    .any(|r| !is_undefined(r.heap_header_address) && inside(r.heap_header_address)),
            )
        }
        Kind::Fhib | Kind::Fadb | Kind::Eaib | Kind::Easb | Kind::Eadb => {
            // The owner's header address must lie inside the file.
            let owner = block_owner(hit.kind, data, at, sizes)?;
            structural(!is_undefined(owner) && inside(owner))
        }
        Kind::Bthd => {
            let h = btree_v2::parse_header(data, at, sizes).ok()?;
            checked(h.checksum_ok)
        }
        Kind::Btin | Kind::Btlf => {
            // Version 0, then a record type the spec defines (III.A.2).
            let (rest, _) = signature_v0("v2 B-tree node", hit.kind.signature(), data, at).ok()?;
            structural(rest.first().is_some_and(|t| (1..=11).contains(t)))
        }
        Kind::Fahd => {
            let h = fixed_array::parse_header(data, at, sizes).ok()?;
            checked(h.checksum_ok)
        }
        Kind::Eahd => {
            let h = extensible_array::parse_header(data, at, sizes).ok()?;
            checked(h.checksum_ok)
        }
    };
    plain(c)
}

/// [`object_header::parse_header`] of the header at the start of `data`
/// (absolute offset `at`), from as many bytes as `budget` affords for
/// stated lengths: a chunk 0 reaching past them is neither framed nor
/// hashed (and the hit counts as refused). The bytes examined are charged.
pub fn parse_header_within(
    data: &[u8],
    at: u64,
    sizes: Sizes,
    budget: &mut HashBudget,
) -> Option<(object_header::HeaderPrefix, object_header::ChunkMessages)> {
    let afford = usize::try_from(budget.stated_left).unwrap_or(usize::MAX);
    let view = data.get(..afford).unwrap_or(data);
    let cut = view.len() < data.len();
    let Ok((p, chunk)) = object_header::parse_header(view, at, sizes) else {
        budget.refused += u64::from(cut);
        return None;
    };
    let end = p.end_abs().saturating_sub(at);
    budget.take_stated(end.min(view.len() as u64));
    if cut && end > view.len() as u64 && end <= data.len() as u64 {
        budget.refused += 1;
    }
    Some((p, chunk))
}

/// The owner's header address in the block of `kind` at the start of
/// `data`: version 0, then (after a client id 0 or 1 for the arrays) the
/// address (III.G, VII.A.2, VII.B.2). `None` for other kinds or when the
/// prefix does not parse.
pub fn block_owner(kind: Kind, data: &[u8], at: u64, sizes: Sizes) -> Option<u64> {
    let clients: &[Option<u8>] = match kind {
        Kind::Fhib | Kind::Fhdb => &[None],
        Kind::Fadb | Kind::Eaib | Kind::Easb | Kind::Eadb => &[Some(0), Some(1)],
        _ => return None,
    };
    clients
        .iter()
        .find_map(|&c| block_prefix("block", kind.signature(), data, at, sizes, c).ok())
        .map(|p| p.2)
}

/// The length (checksum included) of the `OCHK` block at the start of
/// `data`, found by framing its v2 messages (with and without creation
/// order fields) and testing the checksum after each message and after a
/// gap shorter than a message header.
pub fn ochk_checksum_len(data: &[u8]) -> Option<usize> {
    ochk_frame(data).map(|f| f.0)
}

/// [`ochk_checksum_len`] and whether the messages carry creation-order
/// fields (6-byte message headers). Hashes up to one hit's
/// [`HIT_BUDGET`]; [`validate_all`] keeps the answers for its hits.
pub fn ochk_frame(data: &[u8]) -> Option<(usize, bool)> {
    let mut budget = HashBudget::default();
    budget.enter(0);
    ochk_frame_within(data, &mut budget)
}

/// [`ochk_frame`] charging each checksum test to `budget`. The two
/// framings (4-byte message headers, or 6 with creation order) give two
/// ascending series of candidate lengths; they are tested together, in
/// ascending order, and the first length whose checksum matches is the
/// block's (the same length in both framings is hashed once and read
/// without creation order). Testing one framing to its end before the
/// other hashed megabytes on real files: a block with creation order,
/// misread with 4-byte headers, frames zeros after it as thousands of
/// empty messages (13-15 MB for one `OCHK` of a 23 KB netCDF-4 file).
pub fn ochk_frame_within(data: &[u8], budget: &mut HashBudget) -> Option<(usize, bool)> {
    let limit = data.len().min(MAX_OCHK);
    let mut plain = OchkFraming::new(data, limit, false);
    let mut ordered = OchkFraming::new(data, limit, true);
    let (mut p, mut o) = (plain.next(), ordered.next());
    loop {
        let (end, creation_order) = match (p, o) {
            (None, None) => return None,
            (Some(a), Some(b)) if a == b => {
                (p, o) = (plain.next(), ordered.next());
                (a, false)
            }
            (Some(a), b) if b.is_none_or(|b| a < b) => {
                p = plain.next();
                (a, false)
            }
            (_, Some(b)) => {
                o = ordered.next();
                (b, true)
            }
            (Some(_), None) => unreachable!("handled above"),
        };
        if end <= 4 || end.checked_add(4)? > data.len() {
            continue;
        }
        if !budget.take(end as u64) {
            budget.refused += 1;
            return None;
        }
        if checksum_ok(data, end) {
            return Some((end.checked_add(4)?, creation_order));
        }
    }
}

/// The candidate lengths of an `OCHK` block framed with one message header
/// form: after each message (up to 4096, within the first 64 KiB) and
/// after each gap shorter than a message header, ascending.
struct OchkFraming<'a> {
    data: &'a [u8],
    limit: usize,
    creation_order: bool,
    header_len: usize,
    /// Start of the current message, and the next gap to yield after it.
    pos: usize,
    gap: usize,
    messages: usize,
    done: bool,
}

impl<'a> OchkFraming<'a> {
    fn new(data: &'a [u8], limit: usize, creation_order: bool) -> Self {
        OchkFraming {
            data,
            limit,
            creation_order,
            header_len: MessageHeader::len(2, creation_order),
            pos: 4,
            gap: 0,
            messages: 0,
            done: false,
        }
    }
}

impl Iterator for OchkFraming<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.gap == self.header_len {
            // Past the gaps after this position: frame the next message.
            let next = self
                .data
                .get(self.pos..)
                .and_then(|d| MessageHeader::parse(d, 2, self.creation_order))
                .filter(|h| h.kind <= kind::MAX_KNOWN)
                .and_then(|h| self.pos.checked_add(h.total_len(2)));
            match next {
                Some(p) => (self.pos, self.gap) = (p, 0),
                None => self.done = true,
            }
        }
        if self.gap == 0 {
            if self.pos >= self.limit || self.messages >= 4096 {
                self.done = true;
            }
            self.messages += 1;
        }
        if self.done {
            return None;
        }
        let end = self.pos.checked_add(self.gap);
        self.gap += 1;
        if end.is_none() {
            self.done = true;
        }
        end
    }
}

/// The size of the direct block at the start of `data` whose heap header is
/// lost: the smallest power of two from 512 bytes to 1 MiB (and the bytes
/// left) at which one of the prefixes `raws` (one per block offset width)
/// has a matching checksum. A size is tried only if it divides the block
/// offset: in the doubling table (spec III.G) every block of size S lies at
/// a multiple of S (rows of S start at `width * S`, the width a power of
/// two). Each test is charged to `budget`.
fn direct_block_size(
    raws: &[fractal_heap::DirectBlockRaw],
    data: &[u8],
    budget: &mut HashBudget,
) -> Option<u64> {
    let limit = MAX_DIRECT_BLOCK.min(data.len() as u64);
    let mut size = MIN_DIRECT_BLOCK;
    while size <= limit {
        let block = data.get(..usize::try_from(size).ok()?)?;
        for raw in raws {
            if size < raw.prefix_size.saturating_add(4) || raw.block_offset % size != 0 {
                continue;
            }
            if !budget.take(size) {
                budget.refused += 1;
                return None;
            }
            if raw.checksum_matches(block) {
                return Some(size);
            }
        }
        size = size.checked_mul(2)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::lookup3;
    use crate::format::Sizes;

    fn hit(kind: Kind) -> Hit {
        Hit { offset: 0, kind }
    }

    #[test]
    fn ochk_found_by_framing() {
        let mut b = b"OCHK".to_vec();
        b.extend_from_slice(&[1, 4, 0, 0, 9, 9, 9, 9]); // dataspace, 4 bytes
        b.extend_from_slice(&[0, 2, 0, 0, 0, 0]); // NIL with 2 bytes
        let sum = lookup3::hashlittle(&b, 0);
        b.extend_from_slice(&sum.to_le_bytes());
        b.extend_from_slice(&[0xAA; 40]);
        assert_eq!(ochk_checksum_len(&b), Some(22));
        let img = Image::new(&b, 0, Sizes::DEFAULT);
        assert_eq!(
            validate(&img, hit(Kind::Ochk)),
            Some(Confidence::Checksummed)
        );
        b[6] ^= 1;
        assert_eq!(ochk_checksum_len(&b), None);
    }

    #[test]
    fn garbage_after_signatures_is_rejected() {
        for k in Kind::ALL {
            for tail in [&[0u8; 0][..], &[0xFF; 64], &[0; 64]] {
                let mut b = k.signature().to_vec();
                b.extend_from_slice(tail);
                let img = Image::new(&b, 0, Sizes::DEFAULT);
                // Never panics; all-0xFF addresses are undefined or outside.
                let v = validate(&img, hit(k));
                if tail.first() == Some(&0xFF) {
                    assert_eq!(v, None, "{k:?}");
                }
            }
        }
    }

    fn fixture(path: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn validate_file(bytes: &[u8]) -> Validated {
        let hits = crate::carve::find_signatures(bytes);
        validate_all(&Image::new(bytes, 0, Sizes::DEFAULT), &hits)
    }

    /// Hostile inputs of the fuzz target `carve_base` (tests/regressions/
    /// carve_base/): thousands of `FHDB` signatures before zeros (each
    /// tested at every block size up to the end of the file: 0.7 s in a
    /// release build, 5-6 s under ASan) and `OCHK` signatures before zeros
    /// (each framing thousands of empty messages: 14 s). The work is
    /// counted, not timed: at most one region's budget per MiB.
    #[test]
    fn hostile_hits_hash_within_the_budget() {
        for name in ["fhdb_zeros_200k.bin", "ochk_zeros_200k.bin"] {
            let bytes = fixture(&format!("tests/regressions/carve_base/{name}"));
            let v = validate_file(&bytes);
            let regions = (bytes.len() as u64).div_ceil(BUDGET_REGION);
            assert!(
                v.budget.spent <= regions * REGION_BUDGET,
                "{name}: {:?}",
                v.budget
            );
            assert!(v.budget.refused > 0, "{name}: the budget was not needed");
            let listed = v.budget.refused.min(MAX_REFUSED_LISTED as u64);
            assert_eq!(v.refused.len() as u64, listed, "{name}: listed");
            let inv = crate::carve::carve(name, &bytes);
            assert!(
                inv.problems
                    .iter()
                    .any(|p| p.kind == crate::inventory::ProblemKind::LimitExceeded),
                "{name}: the cut is reported"
            );
        }
    }

    /// Real files hash about their own size and are never cut short; the
    /// `OCHK` with creation order near the end of sohm_latest.h5 (which
    /// the framing without creation order ran off the file's end) is found.
    #[test]
    fn real_files_stay_far_below_the_budget() {
        for name in [
            "testdata/types/netcdf4.nc",
            "testdata/types/sohm_latest.h5",
            "testdata/rich_latest.h5",
            "testdata/huge_attrs_latest.h5",
            "testdata/chunked_heap_latest.h5",
        ] {
            let bytes = fixture(name);
            let v = validate_file(&bytes);
            assert_eq!(v.budget.refused, 0, "{name}");
            assert!(
                v.budget.spent <= 2 * bytes.len() as u64,
                "{name}: {} bytes hashed for {}",
                v.budget.spent,
                bytes.len()
            );
        }
        let sohm = validate_file(&fixture("testdata/types/sohm_latest.h5"));
        assert_eq!(sohm.ochk.get(&5511), Some(&(46, true)));
        assert_eq!(sohm.ochk.len(), 3);
    }

    /// Zeroed ranges are a main damage mode: an `OCHK` or root `FHDB`
    /// signature before zeros guesses lengths up to [`HIT_BUDGET`] (it
    /// hashed 16 MB and 4 MB, the whole region's budget after four), and
    /// the headers after it in the same MiB are still validated and carved.
    /// Each refused hit is reported at its offset.
    #[test]
    fn damaged_hits_before_zeros_leave_their_region_to_the_headers() {
        let file = fixture("testdata/rich_latest.h5");
        // A 512 KiB user block of damaged hits, then the file: the
        // superblock at 512 KiB, every header in the same MiB as the hits.
        let mut bytes = Vec::new();
        for sig in [b"FHDB", b"FHDB", b"OCHK", b"OCHK"] {
            bytes.extend_from_slice(sig);
            bytes.resize(bytes.len() + 60_000, 0);
        }
        bytes.resize(512 << 10, 0);
        bytes.extend_from_slice(&file);
        let v = validate_file(&bytes);
        let damaged: Vec<u64> = (0..4).map(|i| i * 60_004).collect();
        assert_eq!(v.budget.refused, 4, "{:?}", v.budget);
        assert_eq!(
            v.refused
                .iter()
                .map(|r| (r.0.offset, r.1))
                .collect::<Vec<_>>(),
            damaged.iter().map(|&at| (at, true)).collect::<Vec<_>>()
        );
        assert!(v.budget.spent <= 4 * HIT_BUDGET + 2 * bytes.len() as u64);
        let headers = |v: &Validated| {
            v.valid
                .iter()
                .filter(|(h, _)| h.kind == Kind::Ohdr)
                .map(|(h, _)| h.offset % (512 << 10))
                .collect::<Vec<_>>()
        };
        let healthy = validate_file(&file);
        assert!(headers(&healthy).len() > 10);
        assert_eq!(headers(&v), headers(&healthy));
        // Carved alike, the cut reported at each hit's offset.
        let paths = |inv: &crate::inventory::Inventory| {
            inv.objects
                .iter()
                .map(|o| o.path.clone())
                .collect::<Vec<_>>()
        };
        let inv = crate::carve::carve("padded", &bytes);
        assert_eq!(paths(&inv), paths(&crate::carve::carve("file", &file)));
        for at in damaged {
            assert!(
                inv.problems.iter().any(|p| p.offset == Some(at)
                    && p.kind == crate::inventory::ProblemKind::LimitExceeded),
                "{at}: {:?}",
                inv.problems
            );
        }
    }

    #[test]
    fn direct_block_size_is_its_checksummed_power_of_two() {
        // A 1024-byte block (width 4: 17-byte prefix, then the checksum of
        // the block with the checksum zeroed) at heap offset 2048.
        let mut b = b"FHDB\x00".to_vec();
        b.extend_from_slice(&0x60u64.to_le_bytes());
        b.extend_from_slice(&2048u32.to_le_bytes());
        b.resize(1024, 0x5A);
        b[17..21].fill(0);
        let sum = lookup3::hashlittle(&b, 0);
        b[17..21].copy_from_slice(&sum.to_le_bytes());
        b.extend_from_slice(&[0u8; 3000]);
        // The size found and the bytes hashed, both widths tried.
        let guess = |b: &[u8]| {
            let raws: Vec<_> = [4u8, 5]
                .iter()
                .filter_map(|&w| {
                    fractal_heap::parse_direct_block_standalone(b, 0, Sizes::DEFAULT, w).ok()
                })
                .collect();
            let mut budget = HashBudget::default();
            budget.enter(0);
            (direct_block_size(&raws, b, &mut budget), budget.spent)
        };
        assert_eq!(guess(&b), (Some(1024), 512 + 512 + 1024));
        // (512 with both widths, then 1024 with width 4, which matches.)
        // At heap offset 1536 only 512 divides it (in both widths): no
        // larger size is hashed.
        b[13..17].copy_from_slice(&1536u32.to_le_bytes());
        assert_eq!(guess(&b), (None, 512 + 512));
    }

    #[test]
    fn truncations_never_panic() {
        let mut b = b"OCHK".to_vec();
        b.extend_from_slice(&[1, 4, 0, 0, 9, 9, 9, 9]);
        for k in Kind::ALL {
            let mut full = k.signature().to_vec();
            full.extend_from_slice(&b);
            full.extend_from_slice(&[7u8; 64]);
            for n in 0..full.len() {
                let img = Image::new(&full[..n], 0, Sizes::DEFAULT);
                let _ = validate(&img, hit(k));
            }
        }
    }
}

//! Carving: finding HDF5 structures without a trusted root, for files whose
//! superblock or root group is lost or stale (a writer killed before it
//! flushed its metadata; see /work/shared/FORMAT.md, "What crashes leave
//! behind").
//!
//! 1. [`find_signatures`]: one pass for every metadata signature (an AVX2
//!    byte-set filter, or the Teddy SIMD searcher without AVX2; see
//!    [`signatures`]).
//! 2. [`validate`]: each hit is checked with the format parsers
//!    ([`Confidence::Checksummed`] or [`Confidence::Structural`]).
//! 3. Object headers: every `OHDR` with a good checksum, every address that
//!    a carved `SNOD` entry or a recovered link message names, and
//!    signature-less v1 headers found by a scan over every byte offset
//!    (prefilter `01 00` with memchr's memmem, then
//!    [`object_header::looks_like_v1_header`], then every chunk-0 message must
//!    decode and the header must describe a group, dataset or datatype).
//! 4. Every carved header is described with the walker's own functions
//!    (kind, attributes, dataset layout and chunks, group members), and the
//!    hierarchy is rebuilt bottom-up: members of a carved group keep their
//!    names, the superblock's root (when carved) is `/`, link messages from
//!    orphan fractal heap direct blocks name the root's members, and every
//!    object that is nobody's member becomes
//!    `/lost+found/<kind>_at_<hex address>`.
//!
//! Groups whose header is lost are rebuilt when their structures survive:
//! an orphan v1 message block with a symbol table message, a `SNOD` entry's
//! scratch pad (B-tree + heap), or a chain of orphan `OCHK` blocks holding
//! link messages (all marked partial, with a problem saying so).
//!
//! [`combine`] adds carved objects the walk did not reach to a walked
//! inventory.
//!
//! Killed h5py workers (testdata/killed_worker.py, tests/carve.rs): libver
//! earliest, 2500 configs completed, 2368 come back as
//! `/lost+found/group_at_0x...` with their five named datasets (2366 with
//! all six attributes); libver latest, 10000 completed, 8624 at
//! `/config_NNNN` and 735 more as lost+found groups rebuilt from `OCHK`
//! chains (their first header chunk, with the attributes, is lost). The
//! other 641 have no header on disk at all: libhdf5 still held them in its
//! metadata cache. Killed after 2500, the same cache-sized tail is 31%.
//! The names of 271 of the 735 rebuilt groups are on disk, in link
//! messages that point at the lost `OHDR`, but nothing on disk ties such a
//! name to a rebuilt group: the chain holds neither its header's address
//! nor its name. (The distance from header to first continuation block is
//! 619 bytes in 95% of intact groups, but dataset headers lie inside the
//! span that distance would give the lost headers, so it is not used.)
//! Those names are reported as a problem, with their lost addresses.

pub mod base;
pub mod chunk_records;
pub mod chunks;
pub mod links;
pub mod signatures;
pub mod validate;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::follow::Image;
use crate::format::message::{self, kind};
use crate::format::object_header;
use crate::format::superblock::{self, Superblock};
use crate::format::{is_undefined, MessageHeader};
use crate::inventory::{
    CarveSummary, InferredBase, Inventory, LinkEntry, LinkKind, Object, ObjectKind, Origin,
    Problem, ProblemKind, Status, SuperblockInfo,
};
use crate::walk::{self, child_path, read_object};

pub use signatures::{find_signatures, Hit, Kind};
pub use validate::{validate, Confidence};

/// Deepest nesting rebuilt below a root or a lost+found entry.
const MAX_DEPTH: usize = 512;
/// Most objects carved from one file.
const MAX_OBJECTS: usize = 5_000_000;
/// Largest v1 header accepted by the byte scan (libhdf5 writes small ones).
const MAX_SCAN_HEADER: u32 = 1 << 16;

/// Why an address is believed to hold an object header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Evidence {
    /// A carved SNOD entry or link message names it.
    referenced: bool,
    /// An `OHDR` whose checksum matches.
    checksummed: bool,
    /// Found by the v1 byte scan and passed its strict checks.
    scanned: bool,
}

/// One described object header, before it gets a path.
struct Carved {
    /// Boxed: the carved map moves its values when it grows.
    obj: Box<Object>,
    /// Hard-linked members: (name, header address).
    members: Vec<(String, u64)>,
    /// Other links: (name, kind, target, external file).
    links: Vec<(String, LinkKind, String, Option<String>)>,
    /// Fractal heap of its dense links, if it has one.
    link_heap: Option<u64>,
    /// B-tree address of its symbol table message, if it has one.
    symtab: Option<u64>,
    /// The header's prefix could be read (or, for a group whose header is
    /// lost, its messages or B-tree were found elsewhere).
    readable: bool,
    checksummed: bool,
    /// Its members may not all be carved yet: [`Carver::close_members`]
    /// has not taken them since they were set or added to.
    open: bool,
}

/// Carves `bytes` (the whole file) into an inventory of its own: every
/// object has `origin: Carve`, `inv.carving` holds the counts.
pub fn carve(file: &str, bytes: &[u8]) -> Inventory {
    carve_except(file, bytes, &[])
}

/// [`carve`], ignoring the signatures inside `skip` (absolute offset and
/// length, sorted, disjoint): the images of the metadata cache image
/// entries the pipeline already put at their own addresses
/// ([`crate::follow::cache_image`]): carved there they would be copies.
/// The block's other entries are carved like any other bytes.
pub fn carve_except(file: &str, bytes: &[u8], skip: &[(u64, u64)]) -> Inventory {
    carve_except_with(file, bytes, skip, &find_signatures(bytes))
}

/// [`carve_except`] given `hits`, every signature of `bytes`
/// ([`find_signatures`]; the pipeline's later passes use them too).
pub fn carve_except_with(file: &str, bytes: &[u8], skip: &[(u64, u64)], all: &[Hit]) -> Inventory {
    let mut inv = Inventory {
        file: file.to_string(),
        size: bytes.len() as u64,
        ..Inventory::default()
    };
    let kept: Vec<Hit>;
    let hits: &[Hit] = if skip.is_empty() {
        all
    } else {
        // `skip` is sorted and disjoint: the last range starting at or
        // before a hit is the only one that can hold it.
        kept = all
            .iter()
            .filter(|h| {
                let i = skip.partition_point(|&(s, _)| s <= h.offset);
                i == 0 || {
                    let (s, l) = skip[i - 1];
                    h.offset - s >= l
                }
            })
            .copied()
            .collect();
        &kept
    };
    let mut summary = CarveSummary {
        hits: count_kinds(hits.iter()),
        ..CarveSummary::default()
    };
    inv.signature_found = hits.iter().any(|h| h.kind == Kind::Superblock);
    // Signature-less v1 headers (absolute offsets): base-independent, so
    // found once, before the base is known.
    let v1_headers = scan_v1(bytes);
    let (base, sizes, leaf_k, root) = match best_superblock(bytes, hits) {
        Some((off, sb)) => {
            inv.superblock = Some(SuperblockInfo::new(&sb, off, off));
            let root = Some(sb.root.object_header_address()).filter(|a| !is_undefined(*a));
            (off, sb.sizes, sb.group_leaf_k, root)
        }
        None => {
            // No superblock: addresses are relative to a base the
            // structures must confirm (a user block moves it).
            let inf = base::infer(bytes, hits, &v1_headers);
            let info = InferredBase {
                base_address: inf.base,
                size_of_offsets: inf.sizes.offset(),
                size_of_lengths: inf.sizes.length(),
                structures: inf.structures,
                confirmed: inf.confirmed,
                rivals: inf.rivals.iter().map(|r| r.0).collect(),
            };
            if !hits.is_empty() {
                inv.problems.push(Problem::new(
                    ProblemKind::Inferred,
                    None,
                    "superblock",
                    info.describe(),
                ));
                inv.inferred = Some(info);
            }
            (inf.base, inf.sizes, None, None)
        }
    };
    let image = Image::new(bytes, base, sizes);

    let checked = validate::validate_all(&image, hits);
    summary.valid = count_kinds(checked.valid.iter().map(|(h, _)| h));
    for &(h, own) in &checked.refused {
        let whose = if own {
            format!(
                "the {} MiB one hit may hash guessing its length",
                validate::HIT_BUDGET >> 20
            )
        } else {
            "the hashing budget of the MiB of the file it starts in".to_string()
        };
        inv.problems.push(Problem::new(
            ProblemKind::LimitExceeded,
            Some(h.offset),
            h.kind.as_str(),
            format!("signature hit not fully validated: its checksum tests reached {whose}"),
        ));
    }
    if checked.budget.refused > 0 {
        inv.problems.push(Problem::new(
            ProblemKind::LimitExceeded,
            None,
            "carving",
            format!(
                "{} signature hit(s) not fully validated ({} listed above): their checksum \
                 tests reached the hashing budget of the hit or of the MiB of the file they \
                 start in ({} MiB hashed in all)",
                checked.budget.refused,
                checked.refused.len(),
                checked.budget.spent >> 20
            ),
        ));
    }
    let valid = checked.valid;

    let mut c = Carver {
        v1_headers,
        image,
        leaf_k,
        carved: BTreeMap::new(),
        problems: Vec::new(),
    };
    c.collect(&valid);
    c.headless_groups(&valid);
    c.headless_v2_groups(&valid, &checked.ochk);
    let root_links = c.orphan_links(&valid, root);
    let (objects, links) = c.place(root, root_links);
    summary.attached = objects
        .iter()
        .filter(|o| !o.path.starts_with(LOST_FOUND))
        .count() as u64;
    summary.orphans = (objects.len() as u64).saturating_sub(summary.attached);
    inv.objects = objects;
    inv.links = links;
    inv.problems.extend(c.problems);
    inv.carving = Some(summary);
    inv
}

const LOST_FOUND: &str = "/lost+found/";

/// How many of `hits` are of each kind (named as in reports; kinds without
/// a hit are left out), counted without a `String` per hit.
fn count_kinds<'a>(hits: impl Iterator<Item = &'a Hit>) -> BTreeMap<String, u64> {
    let mut n = [0u64; Kind::ALL.len()];
    for h in hits {
        if let Some(i) = Kind::ALL.iter().position(|&k| k == h.kind) {
            n[i] += 1;
        }
    }
    Kind::ALL
        .iter()
        .zip(n)
        .filter(|&(_, c)| c > 0)
        .map(|(k, c)| (k.as_str().to_string(), c))
        .collect()
}

/// The first superblock that parses, preferring one whose checksum (if it
/// has one) matches. Returns (absolute offset, superblock).
fn best_superblock(bytes: &[u8], hits: &[Hit]) -> Option<(u64, Superblock)> {
    let mut fallback = None;
    for h in hits.iter().filter(|h| h.kind == Kind::Superblock) {
        let Some(data) = usize::try_from(h.offset).ok().and_then(|o| bytes.get(o..)) else {
            continue;
        };
        if let Ok(sb) = superblock::parse(data, h.offset) {
            if sb.checksum_ok != Some(false) {
                return Some((h.offset, sb));
            }
            fallback.get_or_insert((h.offset, sb));
        }
    }
    fallback
}

/// Absolute offsets where the byte scan finds a v1 object header prefix
/// that passes [`object_header::looks_like_v1_header`].
fn scan_v1(bytes: &[u8]) -> Vec<u64> {
    scan_v1_in(bytes, crate::pipeline::BEHIND_STEP)
}

/// [`scan_v1`] in blocks of `step` bytes.
fn scan_v1_in(bytes: &[u8], step: usize) -> Vec<u64> {
    use std::ops::ControlFlow;
    let mut out = Vec::new();
    // `01 00` cannot overlap itself: one byte of overlap is exact.
    crate::pipeline::in_blocks(bytes, step, 1, |slice, at, end| {
        for pos in memchr::memmem::find_iter(slice, &[1u8, 0]).map(|p| at + p) {
            if pos >= end {
                break;
            }
            let Some(d) = bytes.get(pos..) else {
                continue;
            };
            // The prefix needs 16 bytes: none left after this position.
            let Ok((_, p)) = object_header::v1_prefix(d) else {
                return ControlFlow::Break(());
            };
            // A cheap filter before the full check (which also wants the 4
            // reserved bytes after the header size to be zero).
            if p.message_count == 0
                || p.ref_count == 0
                || p.ref_count > 1 << 16
                || !(8..=MAX_SCAN_HEADER).contains(&p.header_size)
                || p.header_size % 8 != 0
            {
                continue;
            }
            if object_header::looks_like_v1_header(d) {
                out.push(pos as u64);
            }
        }
        ControlFlow::Continue(end)
    });
    out
}

struct Carver<'a> {
    /// Absolute offsets of the v1 header prefixes [`scan_v1`] found.
    v1_headers: Vec<u64>,
    image: Image<'a>,
    leaf_k: Option<u16>,
    /// Described headers by relative address.
    carved: BTreeMap<u64, Carved>,
    /// File-level findings (choices between copies).
    problems: Vec<Problem>,
}

impl Carver<'_> {
    fn rel(&self, abs: u64) -> Option<u64> {
        abs.checked_sub(self.image.base)
    }

    /// Finds and describes every object header the evidence supports, then
    /// every member those headers name (closure).
    fn collect(&mut self, valid: &[(Hit, Confidence)]) {
        let mut evidence: BTreeMap<u64, Evidence> = BTreeMap::new();
        for &(h, conf) in valid {
            match h.kind {
                Kind::Ohdr if conf == Confidence::Checksummed => {
                    if let Some(r) = self.rel(h.offset) {
                        evidence.entry(r).or_default().checksummed = true;
                    }
                }
                Kind::Snod => {
                    let node = usize::try_from(h.offset)
                        .ok()
                        .and_then(|o| self.image.bytes.get(o..))
                        .and_then(|d| {
                            crate::format::symbol_table_node::parse(d, h.offset, self.image.sizes)
                                .ok()
                        });
                    for e in node.map(|n| n.entries).unwrap_or_default() {
                        if !is_undefined(e.object_header_address) {
                            evidence
                                .entry(e.object_header_address)
                                .or_default()
                                .referenced = true;
                        }
                    }
                }
                _ => {}
            }
        }
        for &abs in &self.v1_headers {
            if let Some(r) = self.rel(abs) {
                evidence.entry(r).or_default().scanned = true;
            }
        }
        // Headers with outside evidence first; their chunk 0 is then off
        // limits to scan-only candidates.
        let mut taken: BTreeMap<u64, u64> = BTreeMap::new();
        // Each description reads only the file: they run on all cores and
        // are taken in address order.
        let outside: Vec<(u64, bool)> = evidence
            .iter()
            .filter(|(_, ev)| ev.checksummed || ev.referenced)
            .map(|(&a, ev)| (a, ev.checksummed))
            .collect();
        // The end of a readable one's chunk 0 is taken where it was
        // described (its object is in that thread's cache).
        let described: Vec<Option<(Carved, Option<u64>)>> = {
            use rayon::prelude::*;
            let this = &*self;
            outside
                .par_iter()
                .map(|&(a, sum)| {
                    let c = this.describe(a, false, sum)?;
                    let end = if c.readable {
                        this.chunk0_end(&c)
                    } else {
                        None
                    };
                    Some((c, end))
                })
                .collect()
        };
        for ((addr, _), c) in outside.into_iter().zip(described) {
            if let Some((c, end)) = c {
                if let Some(end) = end {
                    taken.insert(addr, end);
                }
                self.carved.insert(addr, c);
            }
        }
        for (&addr, ev) in &evidence {
            if self.carved.len() >= MAX_OBJECTS {
                break;
            }
            if !ev.scanned || ev.checksummed || ev.referenced {
                continue;
            }
            if taken
                .range(..=addr)
                .next_back()
                .is_some_and(|(_, &e)| e > addr)
            {
                continue;
            }
            if let Some(c) = self.describe(addr, true, false) {
                if let Some(end) = self.chunk0_end(&c) {
                    taken.insert(addr, end);
                }
                self.carved.insert(addr, c);
            }
        }
        self.close_members();
    }

    /// Describes every member address named by a carved group that is not
    /// described yet (members whose header is unreadable are kept as such).
    fn close_members(&mut self) {
        // The members of an object closed before are all carved (or the
        // object cap was reached): only open objects' are looked up.
        let mut pending: Vec<u64> = Vec::new();
        for c in self.carved.values_mut() {
            if std::mem::take(&mut c.open) {
                pending.extend(c.members.iter().map(|m| m.1));
            }
        }
        pending.retain(|a| !self.carved.contains_key(a));
        while let Some(addr) = pending.pop() {
            if self.carved.contains_key(&addr) || self.carved.len() >= MAX_OBJECTS {
                continue;
            }
            let mut c = self
                .describe(addr, false, false)
                .unwrap_or_else(|| unreadable(addr));
            pending.extend(
                c.members
                    .iter()
                    .map(|m| m.1)
                    .filter(|a| !self.carved.contains_key(a)),
            );
            c.open = false;
            self.carved.insert(addr, c);
        }
    }

    /// Old-style groups whose header (chunk 0) is lost but whose group
    /// structures survive: (a) an orphan v1 message block (a continuation
    /// block libhdf5 evicted before chunk 0) holding a symbol table message
    /// that points at a `TREE` and a `HEAP` no carved group owns; (b) a
    /// `SNOD` entry whose scratch pad names such a B-tree and heap (cache
    /// type 1) for a header that is not on disk. Both are described as
    /// groups (members from the B-tree, attributes from the block) and marked
    /// partial.
    fn headless_groups(&mut self, valid: &[(Hit, Confidence)]) {
        let image = self.image;
        let sizes = image.sizes;
        let mut owned: BTreeSet<u64> = self.carved.values().filter_map(|c| c.symtab).collect();
        let sig_at =
            |addr: u64, sig: &[u8]| image.at("group", addr).is_ok_and(|d| d.starts_with(sig));
        let width = usize::from(sizes.offset());
        let body_len = 2 * width;
        let pattern = [0x11, 0x00, body_len as u8, 0, 0, 0, 0, 0];
        // The pattern cannot overlap itself (0x11 is not among its other
        // bytes): blocks overlapping by 7 bytes find what one pass would.
        let mut at = 0usize;
        'blocks: while at < image.bytes.len() {
            let end = at
                .saturating_add(crate::pipeline::BEHIND_STEP)
                .min(image.bytes.len());
            let stop = end.saturating_add(pattern.len() - 1).min(image.bytes.len());
            let block = &image.bytes[at..stop];
            let first = at;
            at = end;
            for pos in memchr::memmem::find_iter(block, &pattern).map(|p| first + p) {
                if pos >= end {
                    break;
                }
                if self.carved.len() >= MAX_OBJECTS {
                    break 'blocks;
                }
                let Some(rel) = (pos as u64).checked_sub(image.base) else {
                    continue;
                };
                let Some(body) = pos
                    .checked_add(8)
                    .and_then(|b| image.bytes.get(b..b.checked_add(body_len)?))
                else {
                    continue;
                };
                let Ok(st) = message::symbol_table::parse(body, pos as u64 + 8, sizes) else {
                    continue;
                };
                if owned.contains(&st.btree_address)
                    || self.carved.get(&rel).is_some_and(|c| c.readable)
                    || !sig_at(st.btree_address, b"TREE")
                    || !sig_at(st.heap_address, b"HEAP")
                {
                    continue;
                }
                let h = frame_v1_messages(&image, pos);
                if h.symbol_table.is_none() {
                    continue;
                }
                owned.insert(st.btree_address);
                let why = format!(
                    "object header lost: messages read from an orphan message block at {pos:#x} \
                 (chunk 0 never reached the disk)"
                );
                let c = self.headless(rel, h, why);
                self.carved.insert(rel, c);
            }
            // One block: resident whole anyway (as in `in_blocks`).
            if image.bytes.len() > crate::pipeline::BEHIND_STEP {
                crate::pipeline::release(&image.bytes[first..end]);
            }
        }
        for (hit, _) in valid.iter().filter(|(h, _)| h.kind == Kind::Snod) {
            let node = usize::try_from(hit.offset)
                .ok()
                .and_then(|o| image.bytes.get(o..))
                .and_then(|d| crate::format::symbol_table_node::parse(d, hit.offset, sizes).ok());
            for e in node.map(|n| n.entries).unwrap_or_default() {
                let superblock::Scratch::SymbolTable {
                    btree_address,
                    heap_address,
                } = e.scratch
                else {
                    continue;
                };
                let addr = e.object_header_address;
                if is_undefined(addr)
                    || self.carved.get(&addr).is_some_and(|c| c.readable)
                    || owned.contains(&btree_address)
                    || !sig_at(btree_address, b"TREE")
                    || !sig_at(heap_address, b"HEAP")
                    || self.carved.len() >= MAX_OBJECTS
                {
                    continue;
                }
                owned.insert(btree_address);
                let h = walk::HeaderContents {
                    symbol_table: Some(message::symbol_table::SymbolTable {
                        btree_address,
                        heap_address,
                    }),
                    ..Default::default()
                };
                let why = format!(
                    "object header lost: members read from the B-tree and heap named by the \
                     scratch pad of a symbol table entry in the SNOD at {:#x}",
                    hit.offset
                );
                let c = self.headless(addr, h, why);
                self.carved.insert(addr, c);
            }
        }
        self.close_members();
    }

    /// New-style groups whose `OHDR` is lost but whose continuation blocks
    /// (`OCHK`, checksummed) survive: the blocks are chained through their
    /// continuation messages; a chain whose first block no other block
    /// references and no carved header reads as its own, and whose link
    /// messages name members no carved group already lists, becomes a group
    /// at the first block's address.
    fn headless_v2_groups(
        &mut self,
        valid: &[(Hit, Confidence)],
        frames: &HashMap<u64, (usize, bool)>,
    ) {
        let image = self.image;
        let decode = |m: &object_header::RawMessage| {
            m.body(image.bytes)
                .and_then(|b| message::parse(m.kind, m.flags, b, m.body_offset, image.sizes).ok())
        };
        // Each block once: (relative address, messages, the blocks its
        // continuation messages name, length), sorted by address.
        type Block = (u64, Vec<object_header::RawMessage>, Vec<u64>, u64);
        let mut blocks: Vec<Block> = Vec::new();
        for (hit, conf) in valid {
            if hit.kind != Kind::Ochk || *conf != Confidence::Checksummed {
                continue;
            }
            let (Some(rel), Some(data)) = (
                self.rel(hit.offset),
                usize::try_from(hit.offset)
                    .ok()
                    .and_then(|o| image.bytes.get(o..)),
            ) else {
                continue;
            };
            let Some(&(len, co)) = frames.get(&hit.offset) else {
                continue;
            };
            let flags = if co { 0x04 } else { 0 };
            if let Ok(chunk) =
                object_header::parse_continuation_block(data, hit.offset, len as u64, 2, flags)
            {
                let next = chunk
                    .messages
                    .iter()
                    .filter(|m| m.kind == kind::CONTINUATION)
                    .filter_map(|m| match decode(m) {
                        Some(message::Message::Continuation(c)) => Some(c.address),
                        _ => None,
                    })
                    .collect();
                blocks.push((rel, chunk.messages, next, len as u64));
            }
        }
        if blocks.is_empty() {
            return;
        }
        // Stable: of two hits at one address the last is kept (as a map
        // insert would).
        blocks.sort_by_key(|b| b.0);
        blocks.reverse();
        blocks.dedup_by_key(|b| b.0);
        blocks.reverse();
        let block = |a: u64| {
            blocks
                .binary_search_by_key(&a, |b| b.0)
                .ok()
                .map(|i| &blocks[i])
        };
        let mut referenced: Vec<u64> = blocks.iter().flat_map(|b| b.2.iter().copied()).collect();
        referenced.sort_unstable();
        referenced.dedup();
        // The messages of the chain from `root`, in order (at most 64
        // blocks, each once); returns how many blocks it read.
        let chain = |root: u64, f: &mut dyn FnMut(&object_header::RawMessage)| -> usize {
            let mut queue = vec![root];
            let mut seen = BTreeSet::new();
            while let Some(b) = queue.pop() {
                if !seen.insert(b) || seen.len() > 64 {
                    continue;
                }
                let Some((_, msgs, next, _)) = block(b) else {
                    continue;
                };
                msgs.iter().for_each(&mut *f);
                queue.extend(next.iter().copied());
            }
            seen.len()
        };
        // The blocks a carved header read as its own continuation blocks
        // (its message frames lie in them; the reader follows continuation
        // messages, spec IV.A.2.q): such a chain is that header's, never a
        // group of its own, whatever links it holds. Chunk 0 (the first
        // span) is not a continuation block.
        let mut read = vec![false; blocks.len()];
        for c in self.carved.values() {
            // Frames of one block follow one another: one lookup per block.
            let mut last: Option<(u64, u64)> = None;
            for &(s, _) in c.obj.header_spans.iter().skip(1) {
                let Some(s) = self.rel(s) else { continue };
                if last.is_some_and(|(a, e)| a <= s && s < e) {
                    continue;
                }
                let i = blocks.partition_point(|b| b.0 <= s);
                if let Some(b) = i.checked_sub(1).and_then(|i| blocks.get(i)) {
                    let end = b.0.saturating_add(b.3);
                    if s < end {
                        read[i - 1] = true;
                        last = Some((b.0, end));
                    }
                }
            }
        }
        let claimed = self.claimed();
        for (i, &(root, ..)) in blocks.iter().enumerate() {
            if read[i]
                || referenced.binary_search(&root).is_ok()
                || self.carved.get(&root).is_some_and(|c| c.readable)
            {
                continue;
            }
            // Whether the chain is a group no carved group already lists
            // depends on its link messages only: the other messages are
            // decoded for the chains that are.
            let (mut links, mut claimed_link) = (false, false);
            chain(root, &mut |m| {
                // A link message `decode` would return, read in place (a
                // shared message decodes as such, not as a link).
                if m.kind != kind::LINK || claimed_link || m.flags & message::FLAG_SHARED != 0 {
                    return;
                }
                let Some(Ok(target)) = m
                    .body(image.bytes)
                    .map(|b| message::link::hard_target(b, m.body_offset, image.sizes))
                else {
                    return;
                };
                links = true;
                if let Some(address) = target {
                    claimed_link = claimed.binary_search(&address).is_ok();
                }
            });
            if !links || claimed_link {
                continue;
            }
            let mut h = walk::HeaderContents::default();
            let n = chain(root, &mut |m| {
                if let Some(d) = decode(m) {
                    absorb_group_message(&mut h, d);
                }
            });
            // Inserted at once (roots are distinct: nothing decided above
            // for another root reads this one's entry).
            if self.carved.len() >= MAX_OBJECTS {
                break;
            }
            let why = format!(
                "object header lost: links read from {n} orphan continuation block(s) (OCHK) \
                 starting at {:#x}",
                image.base.saturating_add(root)
            );
            let c = self.headless(root, h, why);
            self.carved.insert(root, c);
        }
        self.close_members();
    }

    /// Every address a readable carved group lists as a hard-linked member
    /// (sorted, unique: look up with `binary_search`).
    fn claimed(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .carved
            .values()
            .filter(|c| c.readable)
            .flat_map(|c| c.members.iter().map(|m| m.1))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// A group described from messages found without its header.
    fn headless(&self, addr: u64, h: walk::HeaderContents, why: String) -> Carved {
        let image = &self.image;
        let mut o = Object::new(String::new(), addr);
        o.origin = Origin::Carve;
        o.kind = ObjectKind::Group;
        o.damage(
            Status::Partial,
            Problem::new(
                ProblemKind::Unreadable,
                image.absolute(addr),
                "object header",
                why,
            ),
        );
        o.attributes = walk::object::attributes(image, &h, &mut o.problems);
        (o.link_order, o.attribute_order) = h.creation_orders();
        let mut m = walk::group::members(image, &h, "/", self.leaf_k, &mut o);
        o.member_names = std::mem::take(&mut m.names);
        o.other_charset_names = std::mem::take(&mut m.other_charset);
        Carved {
            obj: Box::new(o),
            members: m
                .hard
                .into_iter()
                .map(|(p, a)| (p.get(1..).unwrap_or_default().to_string(), a))
                .collect(),
            links: m
                .links
                .into_iter()
                .map(|l| {
                    (
                        l.path.get(1..).unwrap_or_default().to_string(),
                        l.kind,
                        l.target,
                        l.file,
                    )
                })
                .collect(),
            link_heap: None,
            symtab: h.symbol_table.as_ref().map(|s| s.btree_address),
            readable: true,
            checksummed: false,
            open: true,
        }
    }

    /// Relative end of a described header's chunk 0 (the first of its
    /// header spans, which the walk's reader records from the prefix).
    fn chunk0_end(&self, c: &Carved) -> Option<u64> {
        c.obj
            .header_spans
            .first()
            .and_then(|&(_, end)| self.rel(end))
    }

    /// Describes the object header at `addr` as the walk would. `strict`
    /// (byte-scan candidates only): every chunk-0 message must decode and the
    /// header must plausibly be a group, dataset or datatype; `None` if not.
    /// `summed`: validation matched the checksum of an `OHDR` at `addr`
    /// (the header is not parsed again to learn it).
    fn describe(&self, addr: u64, strict: bool, summed: bool) -> Option<Carved> {
        let image = &self.image;
        if strict && !strict_v1(image, addr) {
            return None;
        }
        let mut o = Object::new(String::new(), addr);
        o.origin = Origin::Carve;
        let contents = read_object(image, addr, &mut o);
        // Only version 2 headers have a checksum (IV.A.1.b).
        let checksummed = o.header_version == Some(2)
            && (summed
                || image
                    .at("object header", addr)
                    .ok()
                    .zip(image.absolute(addr))
                    .and_then(|(d, abs)| object_header::parse_header(d, abs, image.sizes).ok())
                    .is_some_and(|(p, _)| p.checksum_ok == Some(true)));
        let mut c = Carved {
            obj: Box::new(o),
            members: Vec::new(),
            links: Vec::new(),
            link_heap: None,
            symtab: contents
                .as_ref()
                .and_then(|h| h.symbol_table.as_ref())
                .map(|s| s.btree_address),
            readable: contents.is_some(),
            checksummed,
            open: true,
        };
        let Some(h) = contents else {
            return (!strict).then_some(c);
        };
        let o = &mut c.obj;
        o.kind = h.kind();
        if strict && !plausible(image, &h, o.kind) {
            return None;
        }
        o.attributes = walk::object::attributes(image, &h, &mut o.problems);
        // The link and attribute info messages say whether creation order
        // was tracked: the output tracks it too.
        (o.link_order, o.attribute_order) = h.creation_orders();
        match o.kind {
            ObjectKind::Group => {
                c.link_heap = h
                    .link_info
                    .as_ref()
                    .map(|l| l.fractal_heap_address)
                    .filter(|a| !is_undefined(*a));
                let mut m = walk::group::members(image, &h, "/", self.leaf_k, o);
                o.member_names = std::mem::take(&mut m.names);
                o.other_charset_names = std::mem::take(&mut m.other_charset);
                c.members = m
                    .hard
                    .into_iter()
                    .map(|(p, a)| (p.get(1..).unwrap_or_default().to_string(), a))
                    .collect();
                c.links = m
                    .links
                    .into_iter()
                    .map(|l| {
                        (
                            l.path.get(1..).unwrap_or_default().to_string(),
                            l.kind,
                            l.target,
                            l.file,
                        )
                    })
                    .collect();
            }
            ObjectKind::Dataset => {
                o.dataset = walk::dataset::describe(image, &h, o).map(Box::new);
                o.committed_type = h.datatype_committed;
                if strict && o.dataset.is_none() {
                    return None;
                }
            }
            ObjectKind::Datatype => o.datatype = h.datatype.clone(),
            ObjectKind::Unknown => {
                if strict {
                    return None;
                }
                o.damage(
                    Status::Partial,
                    Problem::new(
                        ProblemKind::Unreadable,
                        image.absolute(addr),
                        "object header",
                        "no message identifies it as a group, dataset or datatype",
                    ),
                );
            }
        }
        if o.attributes.iter().any(|a| !a.problems.is_empty()) || !o.problems.is_empty() {
            o.status = o.status.max(Status::Partial);
        }
        Some(c)
    }

    /// Link messages in direct blocks of fractal heaps that no readable heap
    /// header accounts for. Links of a carved group's heap are added to its
    /// members; links of an unclaimed heap are the root's when the root
    /// header is lost (returned as (name, address)); otherwise only their
    /// targets are carved.
    fn orphan_links(
        &mut self,
        valid: &[(Hit, Confidence)],
        root: Option<u64>,
    ) -> Vec<(String, u64)> {
        let starts: Vec<u64> = valid.iter().map(|(h, _)| h.offset).collect();
        let mut found = Vec::new();
        for (i, (h, _)) in valid.iter().enumerate() {
            if h.kind != Kind::Fhdb {
                continue;
            }
            let end = starts.get(i + 1).copied().unwrap_or(self.image.len());
            let carved = &self.carved;
            let image = self.image;
            let mut is_header = |a: u64| {
                carved.get(&a).is_some_and(|c| c.readable)
                    || image.at("object header", a).is_ok_and(|d| {
                        object_header::looks_like_v1_header(d) || d.starts_with(b"OHDR")
                    })
            };
            found.extend(links::scan_direct_block(
                &self.image,
                h.offset,
                end,
                &mut is_header,
            ));
        }
        let (found, dangling): (Vec<_>, Vec<_>) = found.into_iter().partition(|l| l.header);
        if found.is_empty() {
            return Vec::new();
        }
        // Describe targets not carved yet.
        for l in &found {
            if !self.carved.contains_key(&l.target) {
                if let Some(c) = self.describe(l.target, false, false) {
                    self.carved.insert(l.target, c);
                }
            }
        }
        let root_lost = root.is_none_or(|r| !self.carved.get(&r).is_some_and(|c| c.readable));
        let mut by_heap: BTreeMap<u64, Vec<links::OrphanLink>> = BTreeMap::new();
        for l in found {
            by_heap.entry(l.heap).or_default().push(l);
        }
        // Heap -> name -> candidate (target, offset of the link message).
        type Names = BTreeMap<String, Vec<(u64, u64)>>;
        let mut unclaimed: BTreeMap<u64, Names> = BTreeMap::new();
        // The first readable carved group (by address) using each heap.
        let mut owners: HashMap<u64, u64> = HashMap::new();
        for (&a, c) in &self.carved {
            if let Some(h) = c.link_heap.filter(|_| c.readable) {
                owners.entry(h).or_insert(a);
            }
        }
        for (heap, ls) in by_heap {
            let heap_ok = self
                .image
                .at("FRHP", heap)
                .ok()
                .and_then(|d| {
                    crate::format::fractal_heap::parse_header(
                        d,
                        self.image.base.saturating_add(heap),
                        self.image.sizes,
                    )
                    .ok()
                })
                .is_some_and(|h| h.checksum_ok);
            let owner = owners.get(&heap).copied();
            match owner {
                Some(_) if heap_ok => {} // the group read them through its heap
                Some(g) => {
                    if let Some(c) = self.carved.get_mut(&g) {
                        let mut added = 0u64;
                        for l in ls {
                            if !c.members.iter().any(|m| m.0 == l.name) {
                                c.members.push((l.name, l.target));
                                c.open = true;
                                added += 1;
                            }
                        }
                        c.obj.problems.push(Problem::new(
                            ProblemKind::Inferred,
                            self.image.absolute(heap),
                            "FRHP",
                            format!("{added} members recovered from orphan direct blocks of its link heap"),
                        ));
                    }
                }
                None if root_lost => {
                    let names = unclaimed.entry(heap).or_default();
                    for l in ls {
                        names.entry(l.name).or_default().push((l.target, l.at));
                    }
                }
                None => {}
            }
        }
        self.close_members();
        if root_lost {
            // Names whose header never reached the disk: reported, not
            // guessed onto anything (a rebuilt group has no trace of its
            // own name or header address).
            let mut lost: Vec<(&str, u64)> = dangling
                .iter()
                .filter(|l| !unclaimed.values().any(|n| n.contains_key(&l.name)))
                .filter(|l| self.image.at("object header", l.target).is_ok())
                .map(|l| (l.name.as_str(), l.target))
                .collect();
            lost.sort_unstable();
            lost.dedup_by_key(|l| l.0);
            if !lost.is_empty() {
                let shown: Vec<String> = lost
                    .iter()
                    .take(10)
                    .map(|(n, a)| format!("{n:?} -> {:#x}", self.image.base.saturating_add(*a)))
                    .collect();
                self.problems.push(Problem::new(
                    ProblemKind::Unreadable,
                    None,
                    "link",
                    format!(
                        "{} link message(s) in orphan fractal heap direct blocks name headers that \
                         are not on disk (lost objects, or groups rebuilt without their name under \
                         {LOST_FOUND}): {}{}",
                        lost.len(),
                        shown.join(", "),
                        if lost.len() > 10 { ", ..." } else { "" }
                    ),
                ));
            }
        }
        // At most one unclaimed heap can be the root's, and nothing on disk
        // says which: with several, each is rebuilt as a group of its own.
        let several = unclaimed.len() > 1;
        let mut out = Vec::new();
        for (heap, names) in unclaimed {
            let members = self.choose_links(names);
            if !several {
                out = members;
                continue;
            }
            if self.carved.contains_key(&heap) || self.carved.len() >= MAX_OBJECTS {
                continue;
            }
            let mut o = Object::new(String::new(), heap);
            o.origin = Origin::Carve;
            o.kind = ObjectKind::Group;
            o.damage(
                Status::Partial,
                Problem::new(
                    ProblemKind::Unreadable,
                    self.image.absolute(heap),
                    "object header",
                    format!(
                        "object header lost: {} members named by link messages in orphan \
                         direct blocks of the fractal heap at {:#x}; links of other such heaps \
                         were found too, so which group (the root or another) this was is not \
                         known",
                        members.len(),
                        self.image.base.saturating_add(heap)
                    ),
                ),
            );
            self.carved.insert(
                heap,
                Carved {
                    obj: Box::new(o),
                    members,
                    links: Vec::new(),
                    link_heap: Some(heap),
                    symtab: None,
                    readable: true,
                    checksummed: false,
                    open: true,
                },
            );
        }
        if !out.is_empty() {
            self.problems.push(Problem::new(
                ProblemKind::Unreadable,
                None,
                "root group",
                format!(
                    "root header lost: {} members named by link messages in orphan fractal heap direct blocks",
                    out.len()
                ),
            ));
        }
        out
    }

    /// One target per name among the candidates orphan direct blocks give
    /// (preferring a checksummed, readable header); a choice is reported.
    fn choose_links(&mut self, names: BTreeMap<String, Vec<(u64, u64)>>) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (name, mut cands) in names {
            cands.sort();
            cands.dedup_by_key(|c| c.0);
            let best = cands.iter().copied().max_by_key(|&(a, at)| {
                let c = self.carved.get(&a);
                (
                    c.is_some_and(|c| c.checksummed),
                    c.is_some_and(|c| c.readable && c.obj.kind != ObjectKind::Unknown),
                    std::cmp::Reverse(at),
                )
            });
            let Some((addr, _)) = best else { continue };
            if cands.len() > 1 {
                let others: Vec<String> = cands
                    .iter()
                    .filter(|c| c.0 != addr)
                    .map(|c| format!("{:#x}", c.0))
                    .collect();
                self.problems.push(Problem::new(
                    ProblemKind::Ambiguous,
                    None,
                    "link",
                    format!(
                        "orphan direct blocks link {name:?} to {addr:#x} and to {}: chose {addr:#x} \
                         (checksummed, readable header)",
                        others.join(", ")
                    ),
                ));
            }
            out.push((name, addr));
        }
        out
    }

    /// Gives every carved object its path and returns them parents first
    /// (each object is moved out of `carved`, which keeps its members).
    fn place(
        &mut self,
        root: Option<u64>,
        root_links: Vec<(String, u64)>,
    ) -> (Vec<Object>, Vec<LinkEntry>) {
        let claimed = self.claimed();
        // Lost+found candidates, decided before any object is moved out
        // (their paths are made when placed).
        let usable: Vec<(u64, ObjectKind)> = self
            .carved
            .iter()
            .filter(|(_, c)| c.readable && c.obj.kind != ObjectKind::Unknown)
            .map(|(&a, c)| (a, c.obj.kind))
            .collect();
        let lost = |a: u64, kind: ObjectKind| format!("{LOST_FOUND}{}_at_{a:#x}", kind.as_str());
        let root = root.filter(|r| self.carved.get(r).is_some_and(|c| c.readable));
        let n = self.carved.len();
        // Taken out of the map in address order (cheaper to take from than
        // a map to remove from); nothing reads `carved` after placing.
        let carved = std::mem::take(&mut self.carved)
            .into_iter()
            .map(|(a, c)| (a, Entry::Carved(c)))
            .collect();
        let mut p = Placer {
            carved,
            others: HashMap::new(),
            objects: Vec::with_capacity(n),
            links: Vec::new(),
            capped: false,
        };
        if let Some(r) = root {
            p.traverse("/".to_string(), r);
        }
        for (name, addr) in root_links {
            p.traverse(child_path("/", name.as_bytes()).0, addr);
        }
        for &(a, kind) in &usable {
            if claimed.binary_search(&a).is_err() && p.placed(a).is_none() {
                p.traverse(lost(a, kind), a);
            }
        }
        // Members of cycles nobody else reaches.
        for (a, kind) in usable {
            if p.placed(a).is_none() {
                p.traverse(lost(a, kind), a);
            }
        }
        (p.objects, p.links)
    }
}

/// A carved object while placing: still to place, or where it went.
enum Entry {
    Carved(Carved),
    /// Index in `objects` of its first placement.
    Placed(usize),
}

struct Placer {
    /// Objects are moved out as they are placed (each is placed once; later
    /// placements are hard links to the first). Sorted by address.
    carved: Vec<(u64, Entry)>,
    /// Addresses not in `carved` (members never described: the object cap)
    /// -> index of their first placement.
    others: HashMap<u64, usize>,
    objects: Vec<Object>,
    links: Vec<LinkEntry>,
    capped: bool,
}

impl Placer {
    /// Index in `objects` of the first placement of `addr`.
    fn placed(&self, addr: u64) -> Option<usize> {
        match self.carved.binary_search_by_key(&addr, |e| e.0) {
            Ok(i) => match self.carved[i].1 {
                Entry::Placed(at) => Some(at),
                Entry::Carved(_) => None,
            },
            Err(_) => self.others.get(&addr).copied(),
        }
    }

    /// Depth-first from one starting object, parents before children.
    fn traverse(&mut self, path: String, addr: u64) {
        let mut stack = vec![(path, addr, 0usize)];
        while let Some((path, addr, depth)) = stack.pop() {
            if self.objects.len() >= MAX_OBJECTS {
                self.capped = true;
                return;
            }
            let at = self.objects.len();
            // Placed once: taken out of `carved` (later visits are hard
            // links to this placement).
            let (taken, first) = match self.carved.binary_search_by_key(&addr, |e| e.0) {
                Ok(i) => match std::mem::replace(&mut self.carved[i].1, Entry::Placed(at)) {
                    Entry::Carved(c) => (Some(c), None),
                    Entry::Placed(f) => {
                        self.carved[i].1 = Entry::Placed(f);
                        (None, Some(f))
                    }
                },
                Err(_) => match self.others.get(&addr) {
                    Some(&f) => (None, Some(f)),
                    None => {
                        self.others.insert(addr, at);
                        (None, None)
                    }
                },
            };
            if let Some(first) = first {
                let Some(f) = self.objects.get(first) else {
                    continue;
                };
                let mut o = Object::new(path, addr);
                o.kind = f.kind;
                o.status = f.status;
                o.hard_link_of = Some(f.path.clone());
                o.origin = Origin::Carve;
                self.objects.push(o);
                continue;
            }
            let Some(c) = taken else {
                let mut o = *unreadable(addr).obj;
                o.path = path;
                self.objects.push(o);
                continue;
            };
            let Carved {
                obj,
                members,
                links,
                ..
            } = c;
            // Moved once, from its box into the output.
            self.objects.push(*obj);
            let Some(o) = self.objects.last_mut() else {
                continue;
            };
            if depth >= MAX_DEPTH && !members.is_empty() {
                o.damage(
                    Status::Partial,
                    Problem::new(
                        ProblemKind::LimitExceeded,
                        None,
                        "group",
                        format!("nesting deeper than {MAX_DEPTH} levels: members not placed"),
                    ),
                );
            } else {
                for (name, child) in members.iter().rev() {
                    let (p, bad) = child_path(&path, name.as_bytes());
                    if let Some(why) = bad {
                        o.problems
                            .push(Problem::new(ProblemKind::Malformed, None, "link", why));
                    }
                    stack.push((p, *child, depth + 1));
                }
            }
            for (name, kind, target, file) in links {
                self.links.push(LinkEntry {
                    path: child_path(&path, name.as_bytes()).0,
                    kind,
                    target,
                    file,
                });
            }
            o.path = path;
        }
    }
}

/// A member whose header could not be read.
fn unreadable(addr: u64) -> Carved {
    let mut o = Object::new(String::new(), addr);
    o.origin = Origin::Carve;
    o.status = Status::Lost;
    o.problems.push(Problem::new(
        ProblemKind::Unreadable,
        None,
        "object header",
        "unreadable",
    ));
    Carved {
        obj: Box::new(o),
        members: Vec::new(),
        links: Vec::new(),
        link_heap: None,
        symtab: None,
        readable: false,
        checksummed: false,
        open: true,
    }
}

/// Byte-scan acceptance: the v1 prefix passes `looks_like_v1_header`, its
/// reference count is at least 1 and every chunk-0 message decodes.
fn strict_v1(image: &Image, addr: u64) -> bool {
    let (Ok(data), Some(abs)) = (image.at("object header", addr), image.absolute(addr)) else {
        return false;
    };
    if !object_header::looks_like_v1_header(data) {
        return false;
    }
    let Ok((prefix, chunk)) = object_header::parse_header(data, abs, image.sizes) else {
        return false;
    };
    if prefix.version != 1 || chunk.error.is_some() || prefix.ref_count.unwrap_or(0) == 0 {
        return false;
    }
    chunk.messages.iter().all(|m| {
        m.kind == kind::NIL
            || m.body(image.bytes).is_some_and(|b| {
                message::parse(m.kind, m.flags, b, m.body_offset, image.sizes).is_ok()
            })
    })
}

/// Frames v1 messages (8-byte headers, sizes multiples of 8, reserved bytes
/// zero, spec IV.A.1.a) from absolute `pos` until one does not frame or
/// decode, keeping the group-related ones.
fn frame_v1_messages(image: &Image, pos: usize) -> walk::HeaderContents {
    let mut h = walk::HeaderContents::default();
    let mut q = pos;
    for _ in 0..4096 {
        if q.saturating_sub(pos) > 1 << 16 {
            break;
        }
        let Some(hdr) = image
            .bytes
            .get(q..)
            .and_then(|b| MessageHeader::parse(b, 1, false))
        else {
            break;
        };
        let (kind, size) = (hdr.kind, usize::from(hdr.size));
        if kind > kind::MAX_KNOWN || size % 8 != 0 || !hdr.reserved_zero {
            break;
        }
        let start = q + MessageHeader::len(1, false);
        let Some(body) = image
            .bytes
            .get(start..start.saturating_add(size))
            .filter(|b| b.len() == size)
        else {
            break;
        };
        if kind != kind::NIL {
            match message::parse(kind, hdr.flags, body, start as u64, image.sizes) {
                Ok(m) => absorb_group_message(&mut h, m),
                Err(_) => break,
            }
        }
        q = start + size;
    }
    h
}

/// Keeps the messages a group description uses.
fn absorb_group_message(h: &mut walk::HeaderContents, m: message::Message) {
    match m {
        message::Message::SymbolTable(s) => h.symbol_table = Some(s),
        message::Message::Attribute(a) => h.attributes.push(a),
        message::Message::AttributeInfo(a) => h.attribute_info = Some(a),
        message::Message::LinkInfo(l) => h.link_info = Some(l),
        message::Message::Link(l) => h.links.push(l),
        message::Message::GroupInfo(_) => h.has_group_info = true,
        _ => {}
    }
}

/// A byte-scan header must point at structures that exist: a symbol-table
/// group at a `TREE` and a `HEAP`, a dataset at its datatype, dataspace and
/// layout.
fn plausible(image: &Image, h: &walk::HeaderContents, kind: ObjectKind) -> bool {
    let sig_at = |addr: u64, sig: &[u8]| image.at("group", addr).is_ok_and(|d| d.starts_with(sig));
    match kind {
        ObjectKind::Group => match &h.symbol_table {
            Some(st) => sig_at(st.btree_address, b"TREE") && sig_at(st.heap_address, b"HEAP"),
            None => h.link_info.is_some() || !h.links.is_empty(),
        },
        ObjectKind::Dataset => h.datatype.is_some() && h.dataspace.is_some() && h.layout.is_some(),
        ObjectKind::Datatype => true,
        ObjectKind::Unknown => false,
    }
}

/// Adds to the walked inventory the carved objects it did not reach: objects
/// whose header address the walk visited are dropped (the walk's account
/// wins), carved paths below such an object are moved under the walk's path
/// for it, and paths that collide get a `~carved`, `~carved2`, ... suffix.
/// The walk's superblock and problems are kept; the carving summary and the
/// carver's file-level problems are added.
pub fn combine(walked: Inventory, carved: Inventory) -> Inventory {
    let mut out = walked;
    let mut walked_at: HashMap<u64, String> = HashMap::new();
    for o in &out.objects {
        walked_at.entry(o.address).or_insert_with(|| o.path.clone());
    }
    let mut rebase: HashMap<String, String> = HashMap::new();
    for o in &carved.objects {
        if let Some(w) = walked_at.get(&o.address) {
            if o.hard_link_of.is_none() {
                rebase.insert(o.path.clone(), w.clone());
            }
        }
    }
    let mut taken: HashSet<String> = out.objects.iter().map(|o| o.path.clone()).collect();
    taken.extend(out.links.iter().map(|l| l.path.clone()));
    taken.reserve(carved.objects.len() + carved.links.len());
    let data = walked_data(&out);
    let in_data = |a: u64| {
        data.range(..=a)
            .next_back()
            .is_some_and(|(_, &end)| a < end)
    };
    // Carved paths not added because the header is data (or a member name
    // comes from such a header); members outside the data are re-rooted.
    let mut dropped: BTreeSet<String> = BTreeSet::new();
    let mut in_data_headers: Vec<u64> = Vec::new();
    let mut renamed: HashMap<String, String> = HashMap::new();
    // Kept carved objects are compacted in their own vector (moving each
    // into the walked one touched as much fresh memory again); the walked
    // objects go first.
    let walked_objects = std::mem::take(&mut out.objects);
    let mut objects = carved.objects;
    objects.retain_mut(|o| {
        if walked_at.contains_key(&o.address) {
            return false;
        }
        if in_data(o.address) {
            if o.hard_link_of.is_none() {
                in_data_headers.push(o.address);
            }
            dropped.insert(o.path.clone());
            return false;
        }
        // Nothing dropped, re-rooted or renamed yet (a carve with no
        // walked object in common): paths stay as they are.
        let moved = !(dropped.is_empty() && renamed.is_empty() && rebase.is_empty());
        if moved && below(&o.path, &dropped, &renamed) {
            if o.hard_link_of.is_some() {
                dropped.insert(o.path.clone());
                return false;
            }
            let lost = format!("{LOST_FOUND}{}_at_{:#x}", o.kind.as_str(), o.address);
            renamed.insert(o.path.clone(), lost);
        }
        let orig = std::mem::take(&mut o.path);
        let (mut path, mut old) = if moved {
            (rebased(&orig, &rebase, &renamed), Some(orig))
        } else {
            (orig, None)
        };
        if taken.contains(&path) {
            let mut n = 1u32;
            let stem = path.clone();
            while taken.contains(&path) {
                path = if n == 1 {
                    format!("{stem}~carved")
                } else {
                    format!("{stem}~carved{n}")
                };
                n = n.saturating_add(1);
            }
            // Not moved: the path it came with is the stem.
            old.get_or_insert(stem);
        }
        if let Some(old) = old.filter(|old| *old != path) {
            renamed.insert(old, path.clone());
        }
        if moved {
            o.hard_link_of = o
                .hard_link_of
                .take()
                .map(|h| rebased(&h, &rebase, &renamed));
        }
        o.path = path.clone();
        taken.insert(path);
        true
    });
    out.objects = if walked_objects.len() >= objects.len() {
        let mut w = walked_objects;
        w.append(&mut objects);
        w
    } else {
        objects.splice(0..0, walked_objects);
        objects
    };
    for mut l in carved.links {
        if below(&l.path, &dropped, &renamed) {
            continue;
        }
        let path = rebased(&l.path, &rebase, &renamed);
        if taken.contains(&path) {
            continue;
        }
        l.path = path.clone();
        taken.insert(path);
        out.links.push(l);
    }
    if !in_data_headers.is_empty() {
        let shown: Vec<String> = in_data_headers
            .iter()
            .take(10)
            .map(|a| format!("{a:#x}"))
            .collect();
        out.problems.push(Problem::new(
            ProblemKind::Overlap,
            None,
            "carving",
            format!(
                "{} object header(s) found by carving lie inside the raw data of walked datasets \
                 (data that looks like HDF5, e.g. a file stored as a dataset): not added: {}{}",
                in_data_headers.len(),
                shown.join(", "),
                if in_data_headers.len() > 10 {
                    ", ..."
                } else {
                    ""
                }
            ),
        ));
    }
    out.problems.extend(carved.problems);
    out.carving = carved.carving;
    if out.superblock.is_none() {
        out.inferred = carved.inferred;
    }
    out
}

/// Raw data extents (relative start -> end) of the walked datasets:
/// contiguous data and present chunks.
fn walked_data(inv: &Inventory) -> BTreeMap<u64, u64> {
    let mut out: BTreeMap<u64, u64> = BTreeMap::new();
    let mut add = |start: u64, len: u64| {
        if len > 0 && !is_undefined(start) {
            let end = start.saturating_add(len);
            let e = out.entry(start).or_insert(end);
            *e = (*e).max(end);
        }
    };
    for o in inv.objects.iter().filter(|o| o.hard_link_of.is_none()) {
        let Some(ds) = &o.dataset else { continue };
        match &ds.layout.class {
            message::data_layout::LayoutClass::Contiguous { address, .. } => {
                add(*address, ds.coverage.bytes_present.unwrap_or(0));
            }
            message::data_layout::LayoutClass::Chunked { .. } => {
                for c in ds.chunks.iter().filter(|c| c.present) {
                    add(c.address, c.size);
                }
            }
            _ => {}
        }
    }
    // Overlapping extents (damaged layouts) are merged so that a lookup of
    // the last start at or before an address sees every extent covering it.
    let mut merged: BTreeMap<u64, u64> = BTreeMap::new();
    for (s, e) in out {
        match merged.iter_mut().next_back() {
            Some((_, me)) if s <= *me => *me = (*me).max(e),
            _ => {
                merged.insert(s, e);
            }
        }
    }
    merged
}

/// Whether the nearest ancestor of `path` that was dropped or re-rooted
/// was dropped.
fn below(path: &str, dropped: &BTreeSet<String>, renamed: &HashMap<String, String>) -> bool {
    let mut head = path;
    while let Some(i) = head.rfind('/').filter(|&i| i > 0) {
        head = &head[..i];
        if renamed.contains_key(head) {
            return false;
        }
        if dropped.contains(head) {
            return true;
        }
    }
    false
}

/// `path` with its longest moved ancestor replaced.
fn rebased(
    path: &str,
    rebase: &HashMap<String, String>,
    renamed: &HashMap<String, String>,
) -> String {
    let mut cut = path.len();
    loop {
        let head = path.get(..cut).unwrap_or_default();
        let tail = path.get(cut..).unwrap_or_default();
        if let Some(to) = renamed.get(head).or_else(|| rebase.get(head)) {
            if to == "/" {
                return if tail.is_empty() {
                    "/".to_string()
                } else {
                    tail.to_string()
                };
            }
            return format!("{to}{tail}");
        }
        match head.rfind('/') {
            Some(i) if i > 0 => cut = i,
            _ => return path.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The v1 header scan in blocks (pages released behind) finds what
    /// one pass finds, across every block border.
    #[test]
    fn v1_scan_in_blocks_is_one_pass() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/worker_earliest.h5");
        let bytes = std::fs::read(path).unwrap();
        let whole = scan_v1_in(&bytes, usize::MAX);
        assert!(!whole.is_empty());
        for step in [1, 2, 7, 4095, 65537] {
            assert_eq!(scan_v1_in(&bytes, step), whole, "step {step}");
        }
    }

    fn obj(path: &str, addr: u64, origin: Origin) -> Object {
        let mut o = Object::new(path.to_string(), addr);
        o.origin = origin;
        o
    }

    #[test]
    fn combine_keeps_walk_rebases_and_uniquifies() {
        let walked = Inventory {
            objects: vec![obj("/", 96, Origin::Walk), obj("/g", 800, Origin::Walk)],
            ..Inventory::default()
        };
        let carved = Inventory {
            objects: vec![
                obj("/lost+found/group_at_0x320", 800, Origin::Carve),
                obj("/lost+found/group_at_0x320/d", 900, Origin::Carve),
                obj("/g", 1000, Origin::Carve),
                obj("/lost+found/dataset_at_0x44c", 1100, Origin::Carve),
            ],
            carving: Some(CarveSummary::default()),
            ..Inventory::default()
        };
        let m = combine(walked, carved);
        let paths: Vec<&str> = m.objects.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/",
                "/g",
                "/g/d",
                "/g~carved",
                "/lost+found/dataset_at_0x44c"
            ]
        );
        assert!(m.carving.is_some());
        assert_eq!(m.objects[0].origin, Origin::Walk);
    }

    #[test]
    fn combine_drops_headers_inside_walked_data_and_reroots_their_members() {
        use crate::format::message::data_layout::DataLayout;
        use crate::format::message::dataspace::{Dataspace, DataspaceKind};
        use crate::format::message::datatype::{ByteOrder, Datatype, DatatypeClass};
        let mut blob = obj("/blob", 200, Origin::Walk);
        blob.kind = ObjectKind::Dataset;
        blob.dataset = Some(Box::new(crate::inventory::Dataset {
            datatype: Datatype {
                version: 1,
                size: 1,
                class: DatatypeClass::FixedPoint {
                    order: ByteOrder::LittleEndian,
                    lo_pad: false,
                    hi_pad: false,
                    signed: false,
                    bit_offset: 0,
                    precision: 8,
                },
            },
            dataspace: Dataspace {
                version: 1,
                kind: DataspaceKind::Simple,
                dims: vec![500],
                max_dims: None,
            },
            layout: DataLayout {
                version: 3,
                class: message::data_layout::LayoutClass::Contiguous {
                    address: 1000,
                    size: Some(500),
                },
            },
            filters: None,
            fill_value: None,
            external_files: false,
            chunks: Vec::new(),
            coverage: crate::inventory::Coverage {
                bytes_expected: Some(500),
                bytes_present: Some(500),
                index_complete: true,
                ..Default::default()
            },
            beyond_index: Default::default(),
        }));
        let walked = Inventory {
            objects: vec![obj("/", 96, Origin::Walk), blob],
            ..Inventory::default()
        };
        let mut real = obj("/lost+found/group_at_0x4b0/real", 3000, Origin::Carve);
        real.kind = ObjectKind::Group;
        let carved = Inventory {
            objects: vec![
                obj("/lost+found/group_at_0x4b0", 1200, Origin::Carve),
                obj("/lost+found/group_at_0x4b0/fake", 1300, Origin::Carve),
                real,
                obj("/lost+found/group_at_0x4b0/real/x", 3100, Origin::Carve),
            ],
            carving: Some(CarveSummary::default()),
            ..Inventory::default()
        };
        let m = combine(walked, carved);
        let paths: Vec<&str> = m.objects.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/",
                "/blob",
                "/lost+found/group_at_0xbb8",
                "/lost+found/group_at_0xbb8/x"
            ]
        );
        assert!(m.problems[0].message.contains("0x4b0, 0x514"));
    }

    #[test]
    fn rebased_paths() {
        let mut r = HashMap::new();
        r.insert("/lost+found/group_at_0x60".to_string(), "/".to_string());
        let none = HashMap::new();
        assert_eq!(rebased("/lost+found/group_at_0x60/a/b", &r, &none), "/a/b");
        assert_eq!(rebased("/lost+found/group_at_0x60", &r, &none), "/");
        assert_eq!(rebased("/x/y", &r, &none), "/x/y");
    }

    #[test]
    fn scans_never_panic_on_prefixes() {
        // A hand-built v1 dataset-less header prefix followed by junk, cut at
        // every length.
        let mut b = vec![1u8, 0, 1, 0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[0x11, 0, 0x10, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0xFF; 24]);
        for n in 0..b.len() {
            let inv = carve("p", &b[..n]);
            assert!(inv.objects.is_empty());
        }
    }
}

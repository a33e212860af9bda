//! The base address and the sizes of offsets and lengths of a file whose
//! superblock is lost, inferred from the carved structures themselves.
//!
//! Every HDF5 address is relative to the base address (spec II.A, "Base
//! Address"), which libhdf5 sets to the superblock's offset: 0, or 512,
//! 1024, 2048, ... after a user block (spec II.A: the superblock is searched
//! at 0 and at powers of two from 512). Without the superblock, carving
//! must not take addresses as file offsets: with a 512-byte user block every
//! contiguous dataset would be read 512 bytes too early.
//!
//! Each candidate (base, size of offsets, size of lengths) is tested against
//! claims the structures make about other structures:
//! - a local heap's data segment starts right after its header (III.D; what
//!   libhdf5 writes until the segment grows);
//! - a group B-tree node's children are `SNOD`s (leaves) or `TREE`s, its
//!   siblings `TREE`s (III.A.1);
//! - a symbol table entry points at an object header, its scratch pad at a
//!   `TREE` and a `HEAP` (III.C);
//! - in a checksummed `OHDR`/`OCHK` (whose framing does not depend on the
//!   sizes): a continuation message is exactly O + L bytes and points at an
//!   `OCHK`, a dataspace message has exactly the size its rank gives with L,
//!   a symbol table message is 2·O bytes and points at a `TREE` and a `HEAP`,
//!   hard links point at object headers, link and attribute info at `FRHP`s
//!   and `BTHD`s, chunk indexes at their header's signature (IV.A.2; version
//!   1 headers found by the byte scan count too, their message sizes padded
//!   to 8);
//! - fractal heap, fixed array and extensible array blocks name their
//!   header (`FRHP`, `FAHD`, `EAHD`), and checksummed headers (`FRHP`,
//!   `BTHD`, `FAHD`, `EAHD`) match their checksum only when read with the
//!   right sizes (III.G, III.A.2, VII).
//!
//! A candidate's score is the claims that hold minus those that fail. The
//! best candidate is *confirmed* when its score is positive, at least one
//! pointer lands where it should, no other candidate scores as well and no
//! other base read with the same sizes has half as many pointers landing
//! right (two HDF5 images in one file); otherwise nothing is chosen and
//! carving must not read data at any address it cannot check.

use crate::format::message::{self, data_layout, kind};
use crate::format::{
    btree_v1, btree_v2, extensible_array, fixed_array, fractal_heap, is_undefined, local_heap,
    object_header, symbol_table_node, Sizes,
};

use super::signatures::{Hit, Kind};
use super::validate;

/// Structures of each kind examined (evenly spread over the file): enough
/// to decide, bounded on files with millions of hits.
const SAMPLE_PER_KIND: usize = 512;
/// Claims kept from one structure (a B-tree node or SNOD has a few dozen).
const MAX_CLAIMS: usize = 256;

/// What the structures say about the base address and sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inference {
    /// The best candidate (0 and 8/8 when nothing was found).
    pub base: u64,
    pub sizes: Sizes,
    /// Structures with at least one claim holding for the best candidate.
    pub structures: u64,
    /// Claims holding / failing for the best candidate.
    pub held: u64,
    pub failed: u64,
    /// The best candidate is the only one the structures confirm.
    pub confirmed: bool,
    /// Candidates the structures confirm about as well (base, sizes, score):
    /// any scoring as well, or another base with the same sizes and at
    /// least half as many pointers landing right.
    pub rivals: Vec<(u64, Sizes, i64)>,
}

/// One claim a structure makes, for a given sizes candidate.
#[derive(Clone, Copy, Debug)]
enum Claim {
    /// The relative address holds one of these structures.
    Points(u64, Target),
    /// The relative address is the absolute offset (base = abs - addr).
    At { addr: u64, abs: u64 },
    /// Holds or fails whatever the base (a size or checksum check).
    Sizes(bool),
}

/// What a pointer must land on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Sig(&'static [u8; 4]),
    /// An `OHDR` or a version 1 object header prefix.
    Header,
}

/// Infers the base address and sizes from the signature hits of `bytes`
/// and the version 1 object headers found at `v1_headers` (absolute).
pub fn infer(bytes: &[u8], hits: &[Hit], v1_headers: &[u64]) -> Inference {
    let bases = candidate_bases(bytes.len() as u64);
    let mut sample = sample(hits);
    let step = v1_headers.len().div_ceil(SAMPLE_PER_KIND).max(1);
    sample.extend(v1_headers.iter().step_by(step).map(|&offset| Hit {
        offset,
        // Checked below with the v1 prefix, never as a signature.
        kind: Kind::Ohdr,
    }));
    // Headers and continuation blocks are framed once (framing does not
    // depend on the sizes), in file order under one hashing budget.
    sample.sort_by_key(|h| h.offset);
    let mut budget = validate::HashBudget::default();
    let framed: Vec<Option<Framed>> = sample
        .iter()
        .map(|h| {
            budget.enter(h.offset);
            frame(bytes, *h, &mut budget)
        })
        .collect();
    let mut scored: Vec<Scored> = Vec::new();
    for o in [8u8, 4, 2] {
        for l in [8u8, 4, 2] {
            let Ok(sizes) = Sizes::new(o, l) else {
                continue;
            };
            let claims: Vec<Vec<Claim>> = sample
                .iter()
                .zip(&framed)
                .map(|(h, f)| claims_of(bytes, *h, sizes, f.as_ref()))
                .filter(|c| !c.is_empty())
                .collect();
            for &base in &bases {
                let (mut held, mut failed, mut pointers, mut structures) = (0u64, 0u64, 0u64, 0);
                for cs in &claims {
                    let mut any = false;
                    for c in cs {
                        let (ok, pointer) = check(bytes, base, *c);
                        if ok {
                            held += 1;
                            pointers += u64::from(pointer);
                            any |= pointer;
                        } else {
                            failed += 1;
                        }
                    }
                    structures += u64::from(any);
                }
                let score = held as i64 - failed as i64;
                if pointers > 0 {
                    scored.push(Scored {
                        base,
                        sizes,
                        score,
                        held,
                        failed,
                        pointers,
                        structures,
                    });
                }
            }
        }
    }
    decide(scored)
}

/// One candidate's account.
#[derive(Clone, Copy, Debug)]
struct Scored {
    base: u64,
    sizes: Sizes,
    /// Claims held minus claims failed.
    score: i64,
    held: u64,
    failed: u64,
    /// Pointer claims (base-dependent) that held.
    pointers: u64,
    structures: u64,
}

/// The best-scoring candidate, confirmed unless another candidate scores as
/// well or another base, read with the same sizes, has at least half as
/// many pointers landing right.
fn decide(mut scored: Vec<Scored>) -> Inference {
    scored.sort_by_key(|s| std::cmp::Reverse(s.score));
    let Some(&best) = scored.first() else {
        return Inference {
            base: 0,
            sizes: Sizes::DEFAULT,
            structures: 0,
            held: 0,
            failed: 0,
            confirmed: false,
            rivals: Vec::new(),
        };
    };
    let rivals: Vec<(u64, Sizes, i64)> = scored
        .iter()
        .skip(1)
        .filter(|s| {
            // Another base read with the same sizes: a second image. (With
            // other sizes, short offsets alias: 2-byte offsets from base
            // 65536 reach the second 64 KiB of any file; such a reading
            // fails the size checks and must score as well to count.)
            s.score >= best.score
                || (s.base != best.base
                    && s.sizes == best.sizes
                    && s.pointers.saturating_mul(2) >= best.pointers)
        })
        .map(|s| (s.base, s.sizes, s.score))
        .collect();
    Inference {
        base: best.base,
        sizes: best.sizes,
        structures: best.structures,
        held: best.held,
        failed: best.failed,
        confirmed: best.score > 0 && rivals.is_empty(),
        rivals,
    }
}

/// 0 and every power of two from 512 below the file size.
fn candidate_bases(len: u64) -> Vec<u64> {
    let mut out = vec![0];
    let mut b = 512u64;
    while b < len {
        out.push(b);
        b = match b.checked_mul(2) {
            Some(n) => n,
            None => break,
        };
    }
    out
}

/// At most [`SAMPLE_PER_KIND`] hits of each kind, evenly spread.
fn sample(hits: &[Hit]) -> Vec<Hit> {
    let mut out = Vec::new();
    for k in Kind::ALL {
        let of: Vec<Hit> = hits.iter().copied().filter(|h| h.kind == k).collect();
        let step = of.len().div_ceil(SAMPLE_PER_KIND).max(1);
        out.extend(of.into_iter().step_by(step));
    }
    out
}

/// Whether claim `c` holds with base `base`; the second value says whether
/// it tested the base (a pointer) rather than only the sizes.
fn check(bytes: &[u8], base: u64, c: Claim) -> (bool, bool) {
    match c {
        Claim::Sizes(ok) => (ok, false),
        Claim::At { addr, abs } => (base.checked_add(addr) == Some(abs), true),
        Claim::Points(addr, target) => {
            let data = base
                .checked_add(addr)
                .and_then(|a| usize::try_from(a).ok())
                .and_then(|a| bytes.get(a..));
            let ok = data.is_some_and(|d| match target {
                Target::Sig(s) => d.starts_with(s),
                Target::Header => d.starts_with(b"OHDR") || object_header::looks_like_v1_header(d),
            });
            (ok, true)
        }
    }
}

/// The messages of a checksummed `OHDR` or `OCHK`, or of a version 1
/// header the strict byte scan accepted, and whether it is version 1.
type Framed = (Vec<object_header::RawMessage>, bool);

/// [`Framed`] for a sampled `OHDR` or `OCHK` hit.
fn frame(bytes: &[u8], hit: Hit, budget: &mut validate::HashBudget) -> Option<Framed> {
    let at = hit.offset;
    let data = usize::try_from(at).ok().and_then(|o| bytes.get(o..))?;
    match hit.kind {
        Kind::Ohdr => {
            let (p, chunk) = validate::parse_header_within(data, at, Sizes::DEFAULT, budget)?;
            let v1 = p.version == 1;
            (p.checksum_ok == Some(true) || (v1 && chunk.error.is_none()))
                .then_some((chunk.messages, v1))
        }
        Kind::Ochk => {
            let (len, co) = validate::ochk_frame_within(data, budget)?;
            let flags = if co { 0x04 } else { 0 };
            object_header::parse_continuation_block(data, at, len as u64, 2, flags)
                .ok()
                .map(|chunk| (chunk.messages, false))
        }
        _ => None,
    }
}

/// The claims the structure at `hit` makes when read with `sizes` (empty if
/// it does not parse that way); `framed`: its [`frame`].
fn claims_of(bytes: &[u8], hit: Hit, sizes: Sizes, framed: Option<&Framed>) -> Vec<Claim> {
    let at = hit.offset;
    let Some(data) = usize::try_from(at).ok().and_then(|o| bytes.get(o..)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let point = |out: &mut Vec<Claim>, addr: u64, t: Target| {
        if !is_undefined(addr) && out.len() < MAX_CLAIMS {
            out.push(Claim::Points(addr, t));
        }
    };
    match hit.kind {
        Kind::Heap => {
            if let Ok(h) = local_heap::parse(data, at, sizes) {
                let abs = at.saturating_add(local_heap::LocalHeap::header_size(sizes));
                out.push(Claim::At {
                    addr: h.data_address,
                    abs,
                });
            }
        }
        Kind::Tree => {
            // Chunk trees (node type 1) need the dataset's rank and do not
            // parse here.
            if let Ok(n) = btree_v1::parse(data, at, sizes, None) {
                let child = if n.level == 0 { b"SNOD" } else { b"TREE" };
                for c in n.children.iter().take(n.entries_used.into()) {
                    point(&mut out, *c, Target::Sig(child));
                }
                point(&mut out, n.left_sibling, Target::Sig(b"TREE"));
                point(&mut out, n.right_sibling, Target::Sig(b"TREE"));
            }
        }
        Kind::Snod => {
            if let Ok(n) = symbol_table_node::parse(data, at, sizes) {
                for e in &n.entries {
                    point(&mut out, e.object_header_address, Target::Header);
                    if let symbol_table_node::Scratch::SymbolTable {
                        btree_address,
                        heap_address,
                    } = e.scratch
                    {
                        point(&mut out, btree_address, Target::Sig(b"TREE"));
                        point(&mut out, heap_address, Target::Sig(b"HEAP"));
                    }
                }
            }
        }
        Kind::Ohdr | Kind::Ochk => {
            // A checksummed v2 header or continuation block, or a v1 header
            // the strict byte scan accepted.
            if let Some((messages, v1)) = framed {
                message_claims(bytes, messages, sizes, *v1, &mut out);
            }
        }
        Kind::Fhdb | Kind::Fhib | Kind::Fadb | Kind::Eaib | Kind::Easb | Kind::Eadb => {
            let owner = match hit.kind {
                Kind::Fhdb | Kind::Fhib => b"FRHP",
                Kind::Fadb => b"FAHD",
                _ => b"EAHD",
            };
            if let Some(a) = validate::block_owner(hit.kind, data, at, sizes) {
                point(&mut out, a, Target::Sig(owner));
            }
        }
        Kind::Frhp => {
            if let Ok(h) = fractal_heap::parse_header(data, at, sizes) {
                out.push(Claim::Sizes(h.checksum_ok));
            }
        }
        Kind::Bthd => {
            if let Ok(h) = btree_v2::parse_header(data, at, sizes) {
                out.push(Claim::Sizes(h.checksum_ok));
            }
        }
        Kind::Fahd => {
            if let Ok(h) = fixed_array::parse_header(data, at, sizes) {
                out.push(Claim::Sizes(h.checksum_ok));
            }
        }
        Kind::Eahd => {
            // A header too short for these sizes claims they are wrong.
            let ok = extensible_array::parse_header(data, at, sizes).is_ok_and(|h| h.checksum_ok);
            out.push(Claim::Sizes(ok));
        }
        Kind::Superblock | Kind::Gcol | Kind::Btin | Kind::Btlf => {}
    }
    out
}

/// Claims of the messages of one header chunk: v2 message sizes are exact,
/// v1 ones padded to a multiple of 8 (`padded`, IV.A.1.a).
fn message_claims(
    bytes: &[u8],
    msgs: &[object_header::RawMessage],
    sizes: Sizes,
    padded: bool,
    out: &mut Vec<Claim>,
) {
    let fits = |size: u64, want: u64| {
        if padded {
            size == want.div_ceil(8) * 8
        } else {
            size == want
        }
    };
    let (o, l) = (u64::from(sizes.offset()), u64::from(sizes.length()));
    for m in msgs {
        if out.len() >= MAX_CLAIMS {
            return;
        }
        if m.flags & message::FLAG_SHARED != 0 {
            continue;
        }
        let Some(body) = m.body(bytes) else { continue };
        let size = u64::from(m.size);
        match m.kind {
            kind::CONTINUATION => out.push(Claim::Sizes(fits(size, o + l))),
            kind::SYMBOL_TABLE => out.push(Claim::Sizes(fits(size, 2 * o))),
            kind::DATASPACE => {
                if let Some(want) = dataspace_size(body, l) {
                    out.push(Claim::Sizes(fits(size, want)));
                }
            }
            // Contiguous layout, versions 3 to 5: version, class, address
            // (O), size (L) (IV.A.2.i).
            kind::DATA_LAYOUT if matches!(body, [3..=5, 1, ..]) => {
                out.push(Claim::Sizes(fits(size, 2 + o + l)));
            }
            _ => {}
        }
        let Ok(msg) = message::parse(m.kind, m.flags, body, m.body_offset, sizes) else {
            continue;
        };
        let mut point = |addr: u64, t: Target| {
            if !is_undefined(addr) {
                out.push(Claim::Points(addr, t));
            }
        };
        match msg {
            message::Message::Continuation(c) => point(c.address, Target::Sig(b"OCHK")),
            message::Message::SymbolTable(s) => {
                point(s.btree_address, Target::Sig(b"TREE"));
                point(s.heap_address, Target::Sig(b"HEAP"));
            }
            message::Message::Link(link) => {
                if let message::link::LinkTarget::Hard { address } = link.target {
                    point(address, Target::Header);
                }
            }
            message::Message::LinkInfo(li) => {
                point(li.fractal_heap_address, Target::Sig(b"FRHP"));
                point(li.name_index_btree_address, Target::Sig(b"BTHD"));
            }
            message::Message::AttributeInfo(ai) => {
                point(ai.fractal_heap_address, Target::Sig(b"FRHP"));
                point(ai.name_index_btree_address, Target::Sig(b"BTHD"));
            }
            message::Message::DataLayout(d) => {
                if let data_layout::LayoutClass::Chunked { index, .. } = d.class {
                    match index {
                        data_layout::ChunkIndex::BtreeV1 { address } => {
                            point(address, Target::Sig(b"TREE"))
                        }
                        data_layout::ChunkIndex::FixedArray { address, .. } => {
                            point(address, Target::Sig(b"FAHD"))
                        }
                        data_layout::ChunkIndex::ExtensibleArray { address, .. } => {
                            point(address, Target::Sig(b"EAHD"))
                        }
                        data_layout::ChunkIndex::BtreeV2 { address, .. } => {
                            point(address, Target::Sig(b"BTHD"))
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

/// Exact size of a dataspace message body with lengths of `l` bytes (IV.A.2.b:
/// version 1 has an 8-byte prefix, version 2 a 4-byte one; then `rank`
/// dimensions, and as many maximum sizes if flag bit 0 is set).
fn dataspace_size(body: &[u8], l: u64) -> Option<u64> {
    let (&version, &rank, &flags) = (body.first()?, body.get(1)?, body.get(2)?);
    let prefix = match version {
        1 => 8,
        2 => 4,
        _ => return None,
    };
    let per = if flags & 1 != 0 { 2 } else { 1 };
    Some(prefix + u64::from(rank) * l * per)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Little-endian `v` in `w` bytes.
    fn le(v: u64, w: u8) -> Vec<u8> {
        v.to_le_bytes()[..usize::from(w)].to_vec()
    }

    /// A local heap header with its data segment right behind it, written
    /// at absolute `at` of a file whose base is `base`.
    fn heap(file: &mut Vec<u8>, at: usize, base: u64, o: u8, l: u8) {
        let hdr = 8 + 2 * usize::from(l) + usize::from(o);
        let mut h = b"HEAP\0\0\0\0".to_vec();
        h.extend(le(16, l));
        h.extend(le(8, l));
        h.extend(le((at + hdr) as u64 - base, o));
        h.extend([0u8; 16]);
        file.resize(file.len().max(at + h.len()), 0);
        file[at..at + h.len()].copy_from_slice(&h);
    }

    /// A symbol table node with one entry pointing at a v1 header at
    /// absolute `target`.
    fn snod(file: &mut Vec<u8>, at: usize, target: usize, base: u64, o: u8, l: u8) {
        let mut n = b"SNOD\x01\0\x01\0".to_vec();
        n.extend(le(0, l)); // name offset: a length, as libhdf5 writes it
        n.extend(le(target as u64 - base, o));
        n.extend([0u8; 24]);
        file.resize(file.len().max(at + n.len()), 0);
        file[at..at + n.len()].copy_from_slice(&n);
        // v1 header prefix with one modification time message.
        let mut v1 = vec![1u8, 0, 1, 0, 1, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0];
        v1.extend([0x12u8, 0, 8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        file.resize(file.len().max(target + v1.len()), 0);
        file[target..target + v1.len()].copy_from_slice(&v1);
    }

    fn infer_bytes(file: &[u8]) -> Inference {
        infer(file, &super::super::find_signatures(file), &[])
    }

    #[test]
    fn base_and_sizes_from_heaps_and_symbol_nodes() {
        for (base, o, l) in [
            (0u64, 8u8, 8u8),
            (512, 8, 8),
            (4096, 8, 8),
            (512, 4, 4),
            (1024, 4, 8),
            (0, 2, 4),
        ] {
            let mut f = vec![0u8; 8192];
            let b = base as usize;
            heap(&mut f, b + 1000, base, o, l);
            heap(&mut f, b + 2000, base, o, l);
            snod(&mut f, b + 3000, b + 3400, base, o, l);
            let inf = infer_bytes(&f);
            assert!(inf.confirmed, "{base} {o}/{l}: {inf:?}");
            assert_eq!(
                (inf.base, inf.sizes),
                (base, Sizes::new(o, l).unwrap()),
                "{inf:?}"
            );
            assert!(inf.structures >= 3, "{base} {o}/{l}: {inf:?}");
        }
    }

    #[test]
    fn nothing_to_go_on_is_unconfirmed() {
        let inf = infer_bytes(&[0u8; 4096]);
        assert!(!inf.confirmed);
        // Pointers that land nowhere confirm nothing either.
        let mut f = vec![0u8; 8192];
        let mut n = b"SNOD\x01\0\x01\0".to_vec();
        n.extend(le(0, 8));
        n.extend(le(5000, 8));
        f[100..100 + n.len()].copy_from_slice(&n);
        assert!(!infer_bytes(&f).confirmed);
    }

    #[test]
    fn two_bases_confirmed_is_ambiguous() {
        // Two HDF5 images in one file, one at 0 and one after 4096 bytes:
        // each confirms its own base equally well.
        let mut f = vec![0u8; 12288];
        heap(&mut f, 1000, 0, 8, 8);
        heap(&mut f, 1200, 0, 8, 8);
        heap(&mut f, 1400, 0, 8, 8);
        heap(&mut f, 4096 + 1000, 4096, 8, 8);
        heap(&mut f, 4096 + 1200, 4096, 8, 8);
        let inf = infer_bytes(&f);
        assert!(!inf.confirmed, "{inf:?}");
        assert_eq!(inf.base, 0);
        assert!(inf.rivals.iter().any(|r| r.0 == 4096), "{inf:?}");
    }

    #[test]
    fn candidate_bases_are_powers_of_two() {
        assert_eq!(candidate_bases(100), vec![0]);
        assert_eq!(candidate_bases(3000), vec![0, 512, 1024, 2048]);
    }
}

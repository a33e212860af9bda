//! One pass over the whole file for every HDF5 metadata signature (spec
//! III and IV: the 4-byte signatures of B-trees, heaps, object headers and
//! chunk indexes, and the 8-byte superblock signature at any offset).
//!
//! On x86-64 with AVX2 the search is [`Filter`] (two byte-set tests per
//! position, 32 positions at a time, then a table lookup; 0.65-0.75x a
//! one-pattern `memmem` on libver-latest files, where Teddy gave 0.5-0.6x:
//! bench/PROFILE.md "Session 10, carve"). Elsewhere it is aho-corasick's
//! packed (Teddy, SIMD) searcher over all 19 patterns at once. Measured
//! earlier on a 1 GiB in-memory buffer, release build, one core of this
//! machine: Teddy 12.0 GB/s on pseudo-random bytes with planted
//! signatures, 8.8-11.5 GB/s on killed-worker files repeated to 1 GiB (2.6 M
//! and 0.7 M hits); the default `AhoCorasick` automaton 0.4 GB/s on the same
//! real data; 19 separate `memchr::memmem` passes 0.86 GB/s; three
//! `memchr3` passes over the first bytes plus a compare 0.81 GB/s. Without
//! SIMD support the default automaton is used.

use std::sync::OnceLock;

use aho_corasick::packed;
use aho_corasick::AhoCorasick;

/// A metadata structure identified by its signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// v1 B-tree node (`TREE`, spec III.A.1).
    Tree,
    /// Symbol table node (`SNOD`, III.B).
    Snod,
    /// Local heap (`HEAP`, III.D).
    Heap,
    /// Global heap collection (`GCOL`, III.E).
    Gcol,
    /// v2 object header (`OHDR`, IV.A.1.b).
    Ohdr,
    /// v2 object header continuation block (`OCHK`).
    Ochk,
    /// Fractal heap header (`FRHP`, III.G).
    Frhp,
    /// Fractal heap direct block (`FHDB`).
    Fhdb,
    /// Fractal heap indirect block (`FHIB`).
    Fhib,
    /// v2 B-tree header (`BTHD`, III.A.2).
    Bthd,
    /// v2 B-tree internal node (`BTIN`).
    Btin,
    /// v2 B-tree leaf node (`BTLF`).
    Btlf,
    /// Fixed array header (`FAHD`, VII.A).
    Fahd,
    /// Fixed array data block (`FADB`).
    Fadb,
    /// Extensible array header (`EAHD`, VII.B).
    Eahd,
    /// Extensible array index block (`EAIB`).
    Eaib,
    /// Extensible array secondary block (`EASB`).
    Easb,
    /// Extensible array data block (`EADB`).
    Eadb,
    /// The 8-byte format signature of a superblock (II.A), at any offset.
    Superblock,
}

impl Kind {
    /// Every kind, in the order of [`Kind::signature`]'s patterns.
    pub const ALL: [Kind; 19] = [
        Kind::Tree,
        Kind::Snod,
        Kind::Heap,
        Kind::Gcol,
        Kind::Ohdr,
        Kind::Ochk,
        Kind::Frhp,
        Kind::Fhdb,
        Kind::Fhib,
        Kind::Bthd,
        Kind::Btin,
        Kind::Btlf,
        Kind::Fahd,
        Kind::Fadb,
        Kind::Eahd,
        Kind::Eaib,
        Kind::Easb,
        Kind::Eadb,
        Kind::Superblock,
    ];

    /// The bytes that start the structure.
    pub fn signature(self) -> &'static [u8] {
        match self {
            Kind::Tree => b"TREE",
            Kind::Snod => b"SNOD",
            Kind::Heap => b"HEAP",
            Kind::Gcol => b"GCOL",
            Kind::Ohdr => b"OHDR",
            Kind::Ochk => b"OCHK",
            Kind::Frhp => b"FRHP",
            Kind::Fhdb => b"FHDB",
            Kind::Fhib => b"FHIB",
            Kind::Bthd => b"BTHD",
            Kind::Btin => b"BTIN",
            Kind::Btlf => b"BTLF",
            Kind::Fahd => b"FAHD",
            Kind::Fadb => b"FADB",
            Kind::Eahd => b"EAHD",
            Kind::Eaib => b"EAIB",
            Kind::Easb => b"EASB",
            Kind::Eadb => b"EADB",
            Kind::Superblock => &crate::format::superblock::SIGNATURE,
        }
    }

    /// Name used in reports and in [`crate::inventory::CarveSummary`].
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Superblock => "superblock",
            k => std::str::from_utf8(k.signature()).unwrap_or("?"),
        }
    }
}

/// One signature found in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hit {
    /// Absolute file offset of the signature's first byte.
    pub offset: u64,
    pub kind: Kind,
}

enum Engine {
    /// x86-64 with AVX2: [`Filter`], then each candidate looked up.
    #[cfg(target_arch = "x86_64")]
    Filter(Box<Filter>),
    Teddy(packed::Searcher),
    Automaton(Option<AhoCorasick>),
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if std::env::var_os(TEDDY_ENV).is_none() {
            if let Some(f) = Filter::new() {
                return Engine::Filter(Box::new(f));
            }
        }
        let patterns: Vec<&[u8]> = Kind::ALL.iter().map(|k| k.signature()).collect();
        match packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(patterns.iter())
            .build()
        {
            Some(s) => Engine::Teddy(s),
            None => Engine::Automaton(AhoCorasick::new(&patterns).ok()),
        }
    })
}

/// Every signature in `bytes`, in file order, found in one pass. Signatures
/// do not overlap one another (no pattern is a prefix or suffix of another),
/// so the leftmost non-overlapping matches are all of them.
pub fn find_signatures(bytes: &[u8]) -> Vec<Hit> {
    find_signatures_in(bytes, crate::pipeline::BEHIND_STEP)
}

/// [`find_signatures`] in blocks of `step` bytes, each released once
/// searched ([`crate::pipeline::in_blocks`]): the same hits.
fn find_signatures_in(bytes: &[u8], step: usize) -> Vec<Hit> {
    // One byte less than the longest signature (the superblock's 8): a
    // match across a block border is whole in the block it starts in.
    let overlap = Kind::ALL
        .iter()
        .map(|k| k.signature().len())
        .max()
        .unwrap_or(1)
        - 1;
    let mut hits = Vec::new();
    let mut push = |pattern: usize, start: usize| {
        if let Some(&kind) = Kind::ALL.get(pattern) {
            hits.push(Hit {
                offset: start as u64,
                kind,
            });
        }
    };
    match engine() {
        #[cfg(target_arch = "x86_64")]
        Engine::Filter(f) => crate::pipeline::in_blocks(bytes, step, overlap, |slice, at, end| {
            let mut next = end;
            f.find(slice, |pattern, start, len| {
                if at + start >= end {
                    return std::ops::ControlFlow::Break(());
                }
                push(pattern, at + start);
                next = next.max(at + start + len);
                std::ops::ControlFlow::Continue(())
            });
            std::ops::ControlFlow::Continue(next)
        }),
        Engine::Teddy(s) => crate::pipeline::in_blocks(bytes, step, overlap, |slice, at, end| {
            hits_before(s.find_iter(slice), at, end, &mut push)
        }),
        Engine::Automaton(Some(ac)) => {
            crate::pipeline::in_blocks(bytes, step, overlap, |slice, at, end| {
                hits_before(ac.find_iter(slice), at, end, &mut push)
            })
        }
        Engine::Automaton(None) => {
            // Cannot happen with these fixed patterns; stay correct anyway.
            for (i, k) in Kind::ALL.iter().enumerate() {
                for at in memchr::memmem::find_iter(bytes, k.signature()) {
                    push(i, at);
                }
            }
            hits.sort();
        }
    }
    hits
}

/// Set (to anything): the signature pass uses aho-corasick's Teddy
/// searcher even where [`Filter`] could run (for comparisons).
const TEDDY_ENV: &str = "H5SALVAGE_TEDDY";

/// The signature pass on x86-64 with AVX2. Every signature's first and last
/// of its first four bytes are in two small byte sets; 32 positions at a
/// time are tested for both with nibble lookups (`vpshufb`, exact for these
/// sets up to high nibbles 8 apart: only more candidates, never fewer), and
/// each candidate's first four bytes are looked up in a table of the
/// signatures, then the rest of a longer signature compared.
/// The matches are Teddy's (leftmost, non-overlapping; no signature is a
/// prefix of another, so at most one starts at any offset).
#[cfg(target_arch = "x86_64")]
struct Filter {
    /// Nibble tables of the byte sets at [`FILTER_AT`]: a byte `b` may be
    /// in set `j` if `lo[j][b & 15] & hi[j][b >> 4] != 0`.
    lo: [[u8; 16]; FILTER_AT.len()],
    hi: [[u8; 16]; FILTER_AT.len()],
    /// Open addressing by the first four bytes (little-endian) of each
    /// signature: (those bytes, index into [`Kind::ALL`] + 1; 0 = empty).
    slots: [(u32, u8); 64],
}

/// Offsets into a signature whose byte sets [`Filter`] tests.
#[cfg(target_arch = "x86_64")]
const FILTER_AT: [usize; 2] = [0, 3];

#[cfg(target_arch = "x86_64")]
impl Filter {
    /// The filter, where this processor has AVX2 (`None` elsewhere): a
    /// `Filter` exists only where [`Filter::find`]'s AVX2 code may run.
    fn new() -> Option<Filter> {
        if !std::is_x86_feature_detected!("avx2") {
            return None;
        }
        let mut f = Filter {
            lo: [[0; 16]; FILTER_AT.len()],
            hi: [[0; 16]; FILTER_AT.len()],
            slots: [(0, 0); 64],
        };
        for (i, k) in Kind::ALL.iter().enumerate() {
            let sig = k.signature();
            for (j, &o) in FILTER_AT.iter().enumerate() {
                let b = sig[o];
                let bit = 1u8 << ((b >> 4) & 7);
                f.lo[j][usize::from(b & 15)] |= bit;
                f.hi[j][usize::from(b >> 4)] = bit;
            }
            let key = u32::from_le_bytes([sig[0], sig[1], sig[2], sig[3]]);
            let mut s = Self::slot(key);
            while f.slots[s].1 != 0 {
                s = (s + 1) % f.slots.len();
            }
            f.slots[s] = (key, i as u8 + 1);
        }
        Some(f)
    }

    fn slot(key: u32) -> usize {
        (key.wrapping_mul(0x9E37_79B1) >> 26) as usize
    }

    /// The index into [`Kind::ALL`] of the signature `w` starts with.
    #[inline]
    fn lookup(&self, w: &[u8]) -> Option<usize> {
        let key = u32::from_le_bytes(w.get(..4)?.try_into().ok()?);
        let mut s = Self::slot(key);
        loop {
            let (k, i) = self.slots[s];
            if i == 0 {
                return None;
            }
            if k == key {
                // The first four bytes matched: only a longer signature
                // (the superblock's) has more to compare.
                let i = usize::from(i - 1);
                let rest = Kind::ALL[i].signature().get(4..).unwrap_or_default();
                return (rest.is_empty() || w.get(4..).is_some_and(|t| t.starts_with(rest)))
                    .then_some(i);
            }
            s = (s + 1) % self.slots.len();
        }
    }

    /// Calls `f(pattern, start, length)` for each signature in `hay`, in
    /// order, non-overlapping, until it breaks.
    fn find(
        &self,
        hay: &[u8],
        mut f: impl FnMut(usize, usize, usize) -> std::ops::ControlFlow<()>,
    ) {
        let mut from = 0usize;
        let mut check = |pos: usize| -> std::ops::ControlFlow<()> {
            if pos < from {
                return std::ops::ControlFlow::Continue(());
            }
            match hay.get(pos..).and_then(|w| self.lookup(w)) {
                Some(i) => {
                    let len = Kind::ALL[i].signature().len();
                    from = pos + len;
                    f(i, pos, len)
                }
                None => std::ops::ControlFlow::Continue(()),
            }
        };
        // SAFETY: a `Filter` exists only where AVX2 is detected (`new`).
        let scanned = unsafe { self.scan_avx2(hay, &mut check) };
        if let Some(tail) = scanned {
            for pos in tail..hay.len() {
                if check(pos).is_break() {
                    return;
                }
            }
        }
    }

    /// Candidates of the positions whose 32-byte windows at every
    /// [`FILTER_AT`] offset lie inside `hay`, in order; returns the first
    /// position left to the caller (`None`: `check` broke).
    #[target_feature(enable = "avx2")]
    unsafe fn scan_avx2(
        &self,
        hay: &[u8],
        check: &mut impl FnMut(usize) -> std::ops::ControlFlow<()>,
    ) -> Option<usize> {
        use std::arch::x86_64::*;
        const W: usize = 32;
        let reach = FILTER_AT[FILTER_AT.len() - 1] + W;
        let table = |t: &[u8; 16]| {
            // SAFETY: 16 readable bytes, loaded unaligned.
            let x = unsafe { _mm_loadu_si128(t.as_ptr().cast()) };
            _mm256_broadcastsi128_si256(x)
        };
        let lo: [__m256i; FILTER_AT.len()] = std::array::from_fn(|j| table(&self.lo[j]));
        let hi: [__m256i; FILTER_AT.len()] = std::array::from_fn(|j| table(&self.hi[j]));
        let nib = _mm256_set1_epi8(0x0f);
        let zero = _mm256_setzero_si256();
        let mut i = 0usize;
        while i + reach <= hay.len() {
            let mut out = zero;
            for (j, &o) in FILTER_AT.iter().enumerate() {
                // SAFETY: i + o + 32 <= i + reach <= hay.len().
                let v = unsafe { _mm256_loadu_si256(hay.as_ptr().add(i + o).cast()) };
                let l = _mm256_shuffle_epi8(lo[j], _mm256_and_si256(v, nib));
                let h =
                    _mm256_shuffle_epi8(hi[j], _mm256_and_si256(_mm256_srli_epi16::<4>(v), nib));
                out = _mm256_or_si256(out, _mm256_cmpeq_epi8(_mm256_and_si256(l, h), zero));
            }
            let mut m = !(_mm256_movemask_epi8(out) as u32);
            while m != 0 {
                if check(i + m.trailing_zeros() as usize).is_break() {
                    return None;
                }
                m &= m - 1;
            }
            i += W;
        }
        Some(i)
    }
}

/// One block's matches `found` (its slice starts at `at`): each starting
/// before `end` is pushed as (pattern, absolute start); returns where the
/// next block starts (see [`crate::pipeline::in_blocks`]).
fn hits_before(
    found: impl Iterator<Item = aho_corasick::Match>,
    at: usize,
    end: usize,
    push: &mut impl FnMut(usize, usize),
) -> std::ops::ControlFlow<(), usize> {
    let mut next = end;
    for m in found {
        if at + m.start() >= end {
            break;
        }
        push(m.pattern().as_usize(), at + m.start());
        next = next.max(at + m.end());
    }
    std::ops::ControlFlow::Continue(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Searched in blocks (pages released behind), the hits are those of
    /// one pass, for signatures across every block border and signatures
    /// sharing bytes (`TREEAHD`: one pass reports `TREE` only).
    #[test]
    fn blocks_find_what_one_pass_finds() {
        let mut buf = Vec::new();
        for (i, k) in Kind::ALL.iter().enumerate() {
            buf.extend_from_slice(k.signature());
            buf.extend(std::iter::repeat_n(b'x', i % 3));
        }
        buf.extend_from_slice(b"TREEAHDxFHDBTHDxxEADBTLF");
        buf.extend_from_slice(&buf.clone());
        let whole = find_signatures_in(&buf, usize::MAX);
        assert!(whole.len() > 2 * Kind::ALL.len());
        for step in 1..=13 {
            assert_eq!(find_signatures_in(&buf, step), whole, "step {step}");
        }
    }

    #[test]
    fn finds_every_kind_at_any_offset() {
        let mut buf = vec![0u8; 3];
        let mut want = Vec::new();
        for (i, k) in Kind::ALL.iter().enumerate() {
            want.push(Hit {
                offset: buf.len() as u64,
                kind: *k,
            });
            buf.extend_from_slice(k.signature());
            buf.extend(std::iter::repeat_n(b'x', i % 5));
        }
        assert_eq!(find_signatures(&buf), want);
        // Back to back, and cut at the end.
        let b = b"TREESNODHEA";
        let got = find_signatures(b);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].offset, 4);
        assert!(find_signatures(b"").is_empty());
        assert!(find_signatures(b"TRE").is_empty());
    }

    /// [`Filter`] finds what aho-corasick's searchers find: signatures
    /// planted at every offset modulo 32 (the filter's block), overlapping
    /// one another, cut by the end, among bytes sharing the filter's byte
    /// sets (uppercase letters, `0x89`, `0xc9`: a high nibble 8 apart).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn filter_finds_what_the_automaton_finds() {
        // Without AVX2 there is no `Filter` (and Teddy does the search).
        let Some(f) = Filter::new() else {
            return;
        };
        let patterns: Vec<&[u8]> = Kind::ALL.iter().map(|k| k.signature()).collect();
        let ac = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(&patterns)
            .expect("automaton");
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let noise = b"TREESNODHEAPOCHKFDBEAIN\x89\xc9\x00\r\n\x1a";
        let mut found = 0usize;
        for round in 0..400 {
            let len = (rnd() % 300) as usize;
            let mut buf: Vec<u8> = (0..len)
                .map(|_| noise[(rnd() % noise.len() as u64) as usize])
                .collect();
            for _ in 0..(rnd() % 12) {
                let sig = Kind::ALL[(rnd() % Kind::ALL.len() as u64) as usize].signature();
                let at = (rnd() % (len as u64 + 1)) as usize;
                let n = sig.len().min(len - at);
                buf[at..at + n].copy_from_slice(&sig[..n]);
            }
            let want: Vec<(usize, usize, usize)> = ac
                .find_iter(&buf)
                .map(|m| (m.pattern().as_usize(), m.start(), m.len()))
                .collect();
            let mut got = Vec::new();
            f.find(&buf, |p, s, l| {
                got.push((p, s, l));
                std::ops::ControlFlow::Continue(())
            });
            assert_eq!(got, want, "round {round}: {buf:?}");
            found += got.len();
        }
        assert!(found > 1000, "{found}");
    }

    #[test]
    fn names() {
        assert_eq!(Kind::Ohdr.as_str(), "OHDR");
        assert_eq!(Kind::Superblock.as_str(), "superblock");
        assert_eq!(Kind::Superblock.signature().len(), 8);
    }
}

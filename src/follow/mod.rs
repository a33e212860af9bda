//! The following stage: everything that takes the file image and chases
//! addresses through it, shared by `crate::walk` (from the superblock) and
//! `crate::carve` (from structures found by signature).
//!
//! `crate::format` parses one structure from bytes (`(&[u8], Sizes) ->
//! struct`) and returns addresses; this stage decides nothing about what a
//! structure means for the inventory, it only reads what the addresses lead
//! to, with bounds (visited sets, depth and size limits, checked
//! arithmetic), and returns the structures together with every fault met.
//!
//! - [`Image`]: the mapped file and its base address; every read of an
//!   address goes through it.
//! - [`object_header`]: a header and its continuation blocks.
//! - [`btree_v1`], [`btree_v2`], [`fixed_array`], [`extensible_array`]: the
//!   traversals of B-trees and chunk indexes.
//! - [`fractal_heap`]: heap objects and the listing of direct blocks.
//! - [`local_heap`]: a local heap's data segment.
//! - [`cache_image`]: a metadata cache image's entries, put back at their
//!   own addresses.

use crate::format::sohm::SharedHeaps;
use crate::format::{is_undefined, Error, ErrorKind, Result, Sizes};

pub mod btree_v1;
pub mod btree_v2;
pub mod cache_image;
pub mod chunks;
pub mod dense;
pub mod extensible_array;
pub mod fixed_array;
pub mod fractal_heap;
pub mod local_heap;
pub mod object_header;
pub mod sohm;

/// The whole file as mapped bytes, with the superblock's base address.
///
/// All pointer chasing goes through [`Image::at`], which resolves a relative
/// address with checked arithmetic and never reads outside the file.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    pub bytes: &'a [u8],
    /// Absolute offset that HDF5 addresses are relative to (superblock base).
    pub base: u64,
    pub sizes: Sizes,
    /// The file's shared-object-header-message heaps (spec III.I), when
    /// its superblock extension names a table; empty otherwise.
    pub shared_heaps: SharedHeaps,
    /// Where the metadata structures read through this image are recorded
    /// ([`Known`]; the walk's only).
    pub known: Option<&'a Known>,
}

/// One metadata structure read: absolute `[start, end)` and its name.
pub type MetaSpan = (u64, u64, &'static str);

/// The metadata structures a walk read, each at its allocated size (a
/// version-1 B-tree node or `SNOD` with room for 2K entries, spec III.A.1,
/// III.B; a local heap's header and data segment, III.D; fractal heap,
/// version-2 B-tree, fixed and extensible array blocks, III.A.2, III.G,
/// VII; object header continuation blocks, IV.A): file space libhdf5 gave
/// to that structure alone (III.G), so raw data that meets it read
/// metadata as data ([`crate::inventory::check_data_overlaps`]).
#[derive(Debug, Default)]
pub struct Known {
    spans: std::sync::Mutex<Vec<MetaSpan>>,
    /// Whether the room past a node's entries is all zero, by (absolute
    /// address, bytes used, bytes allocated): a node reached again (trees
    /// shared by datasets, children listed twice) is not scanned again
    /// (principle 4: the room is up to megabytes with a large K, the
    /// visits are the input's).
    zero_tails: std::sync::Mutex<std::collections::HashMap<(u64, u64, u64), bool>>,
    /// Bytes of room scanned (tests).
    #[cfg(test)]
    pub(crate) scanned: std::sync::atomic::AtomicU64,
    /// Degrees of the file's version-1 B-trees, when known (superblock v0/v1
    /// fields, spec II.A, or a B-tree 'K' values message in the superblock
    /// extension, IV.A.2.t; libhdf5's defaults otherwise): a node or `SNOD`
    /// is recorded at its allocated size only with them, else at the size
    /// its entries use.
    pub k: Option<BtreeDegrees>,
}

/// The K values that size version-1 B-tree nodes and `SNOD`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BtreeDegrees {
    pub group_leaf: u16,
    pub group_internal: u16,
    pub chunk: u16,
}

impl BtreeDegrees {
    /// libhdf5's defaults (spec II.A: 4, 16, 32).
    pub const DEFAULT: BtreeDegrees = BtreeDegrees {
        group_leaf: 4,
        group_internal: 16,
        chunk: 32,
    };
}

impl BtreeDegrees {
    /// The file's K values: the superblock's (v0/v1, spec II.A; v0 has no
    /// indexed storage K: libhdf5 writes v1 for any other than 32), or for
    /// v2/v3 a B-tree 'K' values message in the superblock extension
    /// (IV.A.2.t; libhdf5's defaults without one). `None` when the
    /// extension cannot be read whole.
    pub fn of(image: &Image, sb: &crate::format::superblock::Superblock) -> Option<BtreeDegrees> {
        use crate::format::message::{btree_k, kind};
        if let (Some(leaf), Some(internal)) = (sb.group_leaf_k, sb.group_internal_k) {
            return Some(BtreeDegrees {
                group_leaf: leaf,
                group_internal: internal,
                chunk: sb.indexed_storage_k.unwrap_or(BtreeDegrees::DEFAULT.chunk),
            });
        }
        let Some(ext) = sb.extension_address.filter(|a| !is_undefined(*a)) else {
            return Some(BtreeDegrees::DEFAULT);
        };
        let (prefix, messages, errors) = object_header::read_all_messages(image, ext);
        if prefix.is_none() || !errors.is_empty() {
            return None;
        }
        let Some(m) = messages.iter().find(|m| m.kind == kind::BTREE_K) else {
            return Some(BtreeDegrees::DEFAULT);
        };
        let k = btree_k::parse(m.body(image.bytes)?, m.body_offset, image.sizes).ok()?;
        Some(BtreeDegrees {
            group_leaf: k.group_leaf_k,
            group_internal: k.group_internal_k,
            chunk: k.indexed_storage_internal_k,
        })
    }
}

impl Known {
    pub fn new(k: Option<BtreeDegrees>) -> Known {
        Known {
            k,
            ..Known::default()
        }
    }

    /// Whether the room `key` (see `zero_tails`) holds only zeros:
    /// `tail`'s answer, asked once per key when it is above 4 KiB (below,
    /// a scan costs no more than the node's own read, and libhdf5's
    /// default K values leave no more: nothing is kept for them).
    pub(crate) fn zero_tail(&self, key: (u64, u64, u64), tail: &[u8]) -> bool {
        if tail.len() <= 4096 {
            return tail.iter().all(|&b| b == 0);
        }
        if let Some(z) = self
            .zero_tails
            .lock()
            .ok()
            .and_then(|m| m.get(&key).copied())
        {
            return z;
        }
        #[cfg(test)]
        self.scanned
            .fetch_add(tail.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let zero = tail.iter().all(|&b| b == 0);
        if let Ok(mut m) = self.zero_tails.lock() {
            m.insert(key, zero);
        }
        zero
    }

    /// Records `[start, start + len)`; every few thousand records the list
    /// is sorted and touching spans of one structure merged, so that its
    /// size follows the file's metadata regions, not how often they are
    /// read.
    fn add(&self, structure: &'static str, start: u64, len: u64) {
        if len == 0 {
            return;
        }
        let Ok(mut v) = self.spans.lock() else {
            return;
        };
        v.push((start, start.saturating_add(len), structure));
        if v.len() >= 4096 && v.len().is_power_of_two() {
            merge_spans(&mut v);
        }
    }

    /// Every span recorded, sorted, touching spans of one structure merged.
    pub fn into_spans(self) -> Vec<MetaSpan> {
        let mut v = self.spans.into_inner().unwrap_or_else(|e| e.into_inner());
        merge_spans(&mut v);
        v.shrink_to_fit();
        v
    }
}

/// Sorts `v` and merges overlapping or touching spans of one structure.
fn merge_spans(v: &mut Vec<MetaSpan>) {
    v.sort_unstable();
    let mut out: Vec<MetaSpan> = Vec::with_capacity(v.len());
    // Per structure name (a dozen at most), its last span in `out`.
    let mut last: Vec<(&'static str, usize)> = Vec::new();
    for &(s, e, n) in v.iter() {
        match last.iter_mut().find(|l| l.0 == n) {
            Some(l) if s <= out[l.1].1 => out[l.1].1 = out[l.1].1.max(e),
            Some(l) => {
                l.1 = out.len();
                out.push((s, e, n));
            }
            None => {
                last.push((n, out.len()));
                out.push((s, e, n));
            }
        }
    }
    *v = out;
}

impl<'a> Image<'a> {
    pub fn new(bytes: &'a [u8], base: u64, sizes: Sizes) -> Image<'a> {
        Image {
            bytes,
            base,
            sizes,
            shared_heaps: SharedHeaps::default(),
            known: None,
        }
    }

    /// Records the metadata structure `structure` read at relative address
    /// `addr`, `len` bytes allocated to it ([`Known`]), when this image
    /// records.
    pub fn known(&self, structure: &'static str, addr: u64, len: u64) {
        if let (Some(k), Some(abs)) = (self.known, self.absolute(addr)) {
            k.add(structure, abs, len);
        }
    }

    /// Hands the pages of a mapped file read so far back to the kernel
    /// ([`crate::pipeline::release`]). Called by the listings whose nodes
    /// lie all over a file (B-trees, a large group's nodes and heap
    /// objects), before each node but the first (a small structure costs
    /// nothing, a release makes the next reads fault again): a fault may
    /// map a whole folio of the
    /// page cache (up to 2 MiB with large folios), so a few dozen such
    /// reads map most of a file and resident memory grows with it
    /// (issue 15).
    pub fn release(&self) {
        crate::pipeline::release(self.bytes);
    }

    /// Size of the file in bytes.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Absolute file offset of the relative address `addr`, if it is defined
    /// and does not overflow.
    pub fn absolute(&self, addr: u64) -> Option<u64> {
        if is_undefined(addr) {
            None
        } else {
            self.base.checked_add(addr)
        }
    }

    /// The bytes from relative address `addr` to the end of the file.
    /// `structure` names what is expected there, for the error.
    pub fn at(&self, structure: &'static str, addr: u64) -> Result<&'a [u8]> {
        let abs = self
            .absolute(addr)
            .ok_or_else(|| Error::bad_value(structure, addr, "address", addr))?;
        usize::try_from(abs)
            .ok()
            .and_then(|a| self.bytes.get(a..))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::new(
                    structure,
                    abs,
                    ErrorKind::Truncated {
                        needed: 1,
                        available: 0,
                    },
                )
            })
    }

    /// Exactly `len` bytes at relative address `addr`.
    pub fn slice(&self, structure: &'static str, addr: u64, len: u64) -> Result<&'a [u8]> {
        let data = self.at(structure, addr)?;
        match usize::try_from(len).ok().and_then(|l| data.get(..l)) {
            Some(s) => Ok(s),
            None => Err(Error::new(
                structure,
                self.base.saturating_add(addr),
                ErrorKind::Truncated {
                    needed: len,
                    available: data.len() as u64,
                },
            )),
        }
    }

    /// True if `[addr, addr+len)` lies entirely inside the file.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        self.absolute(addr)
            .and_then(|a| a.checked_add(len))
            .is_some_and(|end| end <= self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::UNDEFINED;

    #[test]
    fn image_never_reads_outside() {
        let bytes = [0u8; 16];
        let img = Image::new(&bytes, 4, Sizes::DEFAULT);
        assert_eq!(img.at("x", 0).unwrap().len(), 12);
        assert!(img.at("x", 12).is_err());
        assert!(img.at("x", UNDEFINED).is_err());
        assert!(img.at("x", u64::MAX - 2).is_err());
        assert!(img.slice("x", 8, 4).is_ok());
        assert!(img.slice("x", 8, 5).is_err());
        assert!(img.contains(0, 12));
        assert!(!img.contains(0, 13));
        assert!(!img.contains(u64::MAX - 8, 4));
    }

    #[test]
    fn known_spans_merge_per_structure() {
        let bytes = [0u8; 64];
        let known = Known::new(None);
        let mut img = Image::new(&bytes, 8, Sizes::DEFAULT);
        img.known("x", 0, 0);
        img.known("x", UNDEFINED, 4);
        img.known = Some(&known);
        img.known("a", 0, 8);
        img.known("a", 8, 8);
        img.known("b", 4, 8);
        img.known("a", 2, 2);
        img.known("a", 40, 8);
        img.known("a", 16, 0);
        assert_eq!(
            known.into_spans(),
            vec![(8, 24, "a"), (12, 20, "b"), (48, 56, "a")]
        );
    }
}

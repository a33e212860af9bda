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
}

impl<'a> Image<'a> {
    pub fn new(bytes: &'a [u8], base: u64, sizes: Sizes) -> Image<'a> {
        Image {
            bytes,
            base,
            sizes,
            shared_heaps: SharedHeaps::default(),
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
}

//! On-disk structures of the HDF5 file format, one module per structure.
//!
//! Every parser here is a pure function from bytes to a typed, owned struct
//! (HDF5 File Format Specification 4.0, `H5.format.4.0.dox`):
//! `(&[u8], at, Sizes) -> struct`. Parsers never chase pointers: they
//! return addresses, and `crate::follow` reads what the addresses lead to
//! (for `crate::walk` and `crate::carve`). Errors carry the file offset and
//! the structure's name.
//!
//! [`codec`] holds what every parser shares: [`Sizes`] and the field
//! readers, the `Reader` cursor, the typed [`Error`], the lookup3
//! checksum of a checksummed block ([`checksum`] and its wrappers: the one
//! place a checksum is checked) and the framing of object-header messages
//! ([`MessageHeader`]).
//!
//! Conventions shared by all modules:
//! - `data` is the slice that starts at the structure (it may run to the end of
//!   the file; parsers take only what they need), `at` is the structure's
//!   absolute file offset, used only for error messages.
//! - Variable-width fields go through [`Sizes`] ("size of offsets" and "size of
//!   lengths" from the superblock) and [`offset`] / [`length`].
//! - The undefined address (all bits set, at any width) is widened to
//!   [`UNDEFINED`].

pub mod codec;

pub use codec::{
    bad_checksum, block_prefix, checksum, checksum_matches, checksum_ok, checksum_zeroed,
    expect_signature, is_undefined, length, offset, signature_v0, truncated, uint, verify_checksum,
    widen_address, Error, ErrorKind, MessageHeader, Result, Sizes, UNDEFINED,
};

pub mod btree_v1;
pub mod btree_v2;
pub mod extensible_array;
pub mod fixed_array;
pub mod fractal_heap;
pub mod global_heap;
pub mod local_heap;
pub mod lookup3;
pub mod message;
pub mod object_header;
pub mod selection;
pub mod sohm;
pub mod superblock;
pub mod symbol_table_node;
pub mod vds;

/// Shared by the format modules' tests.
#[cfg(test)]
pub(crate) mod test_support {
    /// Bytes from hexadecimal digits (anything else, such as spaces and
    /// newlines, is skipped).
    pub fn hex(s: impl AsRef<str>) -> Vec<u8> {
        let s: String = s
            .as_ref()
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `v` followed by its lookup3 checksum: a checksummed block.
    pub fn seal(mut v: Vec<u8>) -> Vec<u8> {
        let c = super::lookup3::hashlittle(&v, 0);
        v.extend_from_slice(&c.to_le_bytes());
        v
    }

    /// Builders of version 2 B-tree fixtures (spec III.A.2), shared by the
    /// tests of `format::btree_v2` and `follow::btree_v2`.
    pub mod btree_v2 {
        use super::{hex, seal};
        use crate::format::btree_v2::Record;
        use crate::format::{lookup3, Sizes};

        /// lookup3 of `bytes`: fixture checksums and link name hashes.
        pub fn checksum(bytes: &[u8]) -> u32 {
            lookup3::hashlittle(bytes, 0)
        }

        pub const S: Sizes = Sizes::DEFAULT;

        pub fn header(
            t: u8,
            node_size: u32,
            rec: u16,
            depth: u16,
            root: u64,
            nroot: u16,
            total: u64,
        ) -> Vec<u8> {
            let mut b = b"BTHD\x00".to_vec();
            b.push(t);
            b.extend_from_slice(&node_size.to_le_bytes());
            b.extend_from_slice(&rec.to_le_bytes());
            b.extend_from_slice(&depth.to_le_bytes());
            b.extend_from_slice(&[100, 40]);
            b.extend_from_slice(&root.to_le_bytes());
            b.extend_from_slice(&nroot.to_le_bytes());
            b.extend_from_slice(&total.to_le_bytes());
            seal(b)
        }

        pub fn link_record(hash: u32, id: u8) -> Vec<u8> {
            let mut r = hash.to_le_bytes().to_vec();
            r.extend_from_slice(&[0, id, 0, 0, 0, 0x0e, 0]);
            r
        }

        pub fn leaf(t: u8, records: &[Vec<u8>]) -> Vec<u8> {
            let mut b = b"BTLF\x00".to_vec();
            b.push(t);
            for r in records {
                b.extend_from_slice(r);
            }
            seal(b)
        }

        /// Internal node with 1-byte record counts and (for depth > 1) `total_w`-byte totals.
        pub fn internal(
            t: u8,
            records: &[Vec<u8>],
            children: &[(u64, u64, Option<u64>)],
            total_w: usize,
        ) -> Vec<u8> {
            let mut b = b"BTIN\x00".to_vec();
            b.push(t);
            for r in records {
                b.extend_from_slice(r);
            }
            for &(addr, n, total) in children {
                b.extend_from_slice(&addr.to_le_bytes());
                b.push(n as u8);
                if let Some(t) = total {
                    b.extend_from_slice(&t.to_le_bytes()[..total_w]);
                }
            }
            seal(b)
        }

        pub fn file(len: usize, parts: &[(u64, &[u8])]) -> Vec<u8> {
            let mut f = vec![0u8; len];
            for (at, bytes) in parts {
                let at = *at as usize;
                f[at..at + bytes.len()].copy_from_slice(bytes);
            }
            f
        }

        pub fn hashes(records: &[Record]) -> Vec<u32> {
            records
                .iter()
                .map(|r| match r {
                    Record::LinkName { hash, .. } => *hash,
                    other => panic!("{other:?}"),
                })
                .collect()
        }

        pub fn unhex(parts: &[&str]) -> Vec<u8> {
            hex(parts.concat())
        }
    }

    /// Fixture builders shared by the tests of `format::btree_v1` and
    /// `follow::btree_v1`.
    pub mod btree_v1 {
        use crate::format::Sizes;
        use crate::format::UNDEFINED;

        pub const S: Sizes = Sizes::DEFAULT;

        pub fn header(node_type: u8, level: u8, entries: u16, left: u64, right: u64) -> Vec<u8> {
            let mut b = b"TREE".to_vec();
            b.push(node_type);
            b.push(level);
            b.extend_from_slice(&entries.to_le_bytes());
            b.extend_from_slice(&left.to_le_bytes());
            b.extend_from_slice(&right.to_le_bytes());
            b
        }

        pub fn chunk_key(b: &mut Vec<u8>, size: u32, mask: u32, offsets: &[u64]) {
            b.extend_from_slice(&size.to_le_bytes());
            b.extend_from_slice(&mask.to_le_bytes());
            for o in offsets {
                b.extend_from_slice(&o.to_le_bytes());
            }
        }

        /// A rank-1 chunk node with one key per (offset, size, child) entry and a
        /// final key at `end`.
        pub fn chunk_node(level: u8, entries: &[(u64, u32, u64)], end: u64) -> Vec<u8> {
            let mut b = header(1, level, entries.len() as u16, UNDEFINED, UNDEFINED);
            for &(off, size, child) in entries {
                chunk_key(&mut b, size, 0, &[off, 0]);
                b.extend_from_slice(&child.to_le_bytes());
            }
            chunk_key(&mut b, 0, 0, &[end, 0]);
            b
        }

        pub fn group_node(level: u8, entries: &[(u64, u64)], last: u64) -> Vec<u8> {
            let mut b = header(0, level, entries.len() as u16, UNDEFINED, UNDEFINED);
            for &(key, child) in entries {
                b.extend_from_slice(&key.to_le_bytes());
                b.extend_from_slice(&child.to_le_bytes());
            }
            b.extend_from_slice(&last.to_le_bytes());
            b
        }

        /// A zero-filled file of `len` bytes with `parts` copied in at their offsets.
        pub fn file(len: usize, parts: &[(u64, &[u8])]) -> Vec<u8> {
            let mut f = vec![0u8; len];
            for (at, bytes) in parts {
                let at = *at as usize;
                f[at..at + bytes.len()].copy_from_slice(bytes);
            }
            f
        }
    }

    /// Fixture builders shared by the tests of `format::fixed_array` and
    /// `follow::fixed_array`.
    pub mod fixed_array {
        use crate::format::test_support::seal;

        pub fn header_bytes(client: u8, entry: u8, page_bits: u8, n: u64, dblk: u64) -> Vec<u8> {
            let mut v = b"FAHD".to_vec();
            v.extend_from_slice(&[0, client, entry, page_bits]);
            v.extend_from_slice(&n.to_le_bytes());
            v.extend_from_slice(&dblk.to_le_bytes());
            seal(v)
        }

        pub fn filtered(addr: u64, size: u64, mask: u32) -> Vec<u8> {
            let mut v = addr.to_le_bytes().to_vec();
            v.extend_from_slice(&size.to_le_bytes());
            v.extend_from_slice(&mask.to_le_bytes());
            v
        }
    }

    /// Fixture builders shared by the tests of `format::extensible_array` and
    /// `follow::extensible_array`.
    pub mod extensible_array {
        use crate::format::test_support::seal;

        /// Header with 8-byte offsets/lengths: non-filtered, max bits 32,
        /// 4 index block elements, data block min 2, secondary min ptrs 2,
        /// page bits 2 (4 elements per page).
        pub fn header_bytes(client: u8, esize: u8, iblock: u64) -> Vec<u8> {
            let mut v = b"EAHD".to_vec();
            v.extend_from_slice(&[0, client, esize, 32, 4, 2, 2, 2]);
            for s in [0u64, 0, 0, 0, 40, 0] {
                v.extend_from_slice(&s.to_le_bytes());
            }
            v.extend_from_slice(&iblock.to_le_bytes());
            seal(v)
        }
    }

    /// The h5py fixtures of `testdata/` (generated by `testdata/generate.py`),
    /// when present, with the superblock's base (user block size).
    pub fn fixtures() -> Vec<(String, Vec<u8>, u64)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "h5") {
                let bytes = std::fs::read(&path).unwrap();
                let base = [0usize, 512, 1024, 2048, 4096, 8192]
                    .into_iter()
                    .find(|&b| bytes.get(b..b + 8) == Some(&b"\x89HDF\r\n\x1a\n"[..]));
                if let Some(base) = base {
                    out.push((path.display().to_string(), bytes, base as u64));
                }
            }
        }
        out
    }
}

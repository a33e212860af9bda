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
pub mod cache_image;
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

    /// Fixture builders shared by the tests of `format::fractal_heap` and
    /// `follow::fractal_heap`.
    pub mod fractal_heap {
        use crate::format::fractal_heap::*;
        use crate::format::lookup3;
        use crate::format::test_support::{hex, seal};
        use crate::format::{Sizes, UNDEFINED};

        // Fixtures written by h5py 3.16 / HDF5 2.0 (python3):
        //   with h5py.File('dense.h5', 'w', libver='latest') as f:
        //       g = f.create_group('g')
        //       for i in range(20): g.create_group('m%02d' % i)
        //       d = f.create_dataset('attrs', data=np.zeros(2))
        //       for i in range(20): d.attrs['a%02d' % i] = i
        //   with h5py.File('big.h5', 'w', libver='latest') as f:
        //       g = f.create_group('g')
        //       for i in range(2000): g['link%04d' % i] = h5py.SoftLink('/target/%d' % i)
        //   with h5py.File('huge.h5', 'w', libver='latest') as f:
        //       g = f.create_group('g')
        //       for i in range(6000):
        //           g['l%05d' % i] = h5py.SoftLink('/t/' + 'x' * 100 + str(i))

        // dense.h5: link heap header at 1629 (146 bytes).
        pub const DENSE_FRHP_1629: &str = "\
    46524850000700000002001000000000000000000000ffffffffffffffffd30000000000000015070000000000000002\
    000000000000000200000000000000000000000000001400000000000000000000000000000000000000000000000000\
    000000000000000000000000000004000002000000000000000001000000000020000100cd1f00000000000000008aa5\
    ad95";

        // dense.h5: its root direct block at 8141 (512 bytes; the last 208 are zero).
        pub const DENSE_FHDB_8141: &str = "\
    46484442005d060000000000000000000089b53d4d0100036d303036010000000000000100036d3031b9010000000000\
    000100036d30323c020000000000000100036d3033bf020000000000000100036d303442030000000000000100036d30\
    35c5030000000000000100036d303674040000000000000100036d303727050000000000000100036d3038da05000000\
    0000000100036d303967090000000000000100036d3130ea090000000000000100036d31316d0a000000000000010003\
    6d3132f00a0000000000000100036d3133730b0000000000000100036d3134f60b0000000000000100036d3135790c00\
    00000000000100036d3136fc0c0000000000000100036d31377f0d0000000000000100036d3138020e00000000000001\
    00036d3139850e000000000000000000";

        pub const D: Sizes = Sizes::DEFAULT;

        pub fn place(file: &mut Vec<u8>, at: usize, bytes: &[u8]) {
            if file.len() < at + bytes.len() {
                file.resize(at + bytes.len(), 0);
            }
            file[at..at + bytes.len()].copy_from_slice(bytes);
        }

        /// The dense.h5 link heap: header at 1629, root direct block at 8141.
        pub fn dense_file() -> Vec<u8> {
            let mut file = Vec::new();
            place(&mut file, 1629, &hex(DENSE_FRHP_1629));
            let mut block = hex(DENSE_FHDB_8141);
            block.resize(512, 0);
            place(&mut file, 8141, &block);
            file
        }

        // ---- Hand-built heaps -------------------------------------------------

        /// Geometry of the synthetic heaps: width 2, start 64, max direct 128,
        /// 16-bit heap (block offsets of 2 bytes), checksummed direct blocks.
        /// Direct rows: 0 (64), 1 (64), 2 (128); rows 3 (256) and 4 (512) hold
        /// indirect blocks of 2 and 3 rows.
        pub struct Geometry {
            pub width: u16,
            pub start: u64,
            pub max_direct: u64,
            pub bits: u16,
            pub flags: u8,
            pub id_len: u16,
            pub max_managed: u32,
            pub filter: Option<(u64, u32, Vec<u8>)>,
        }

        pub fn geometry() -> Geometry {
            Geometry {
                width: 2,
                start: 64,
                max_direct: 128,
                bits: 16,
                flags: 2,
                id_len: 5,
                max_managed: 100,
                filter: None,
            }
        }

        pub fn header_bytes(g: &Geometry, root: u64, rows: u16) -> Vec<u8> {
            let mut v = b"FRHP\0".to_vec();
            v.extend_from_slice(&g.id_len.to_le_bytes());
            let flen = g.filter.as_ref().map_or(0, |f| f.2.len() as u16);
            v.extend_from_slice(&flen.to_le_bytes());
            v.push(g.flags);
            v.extend_from_slice(&g.max_managed.to_le_bytes());
            v.extend_from_slice(&0u64.to_le_bytes()); // next huge id
            v.extend_from_slice(&UNDEFINED.to_le_bytes()); // huge btree
            v.extend_from_slice(&0u64.to_le_bytes()); // free space
            v.extend_from_slice(&UNDEFINED.to_le_bytes()); // free space manager
            for _ in 0..8 {
                v.extend_from_slice(&0u64.to_le_bytes());
            }
            v.extend_from_slice(&g.width.to_le_bytes());
            v.extend_from_slice(&g.start.to_le_bytes());
            v.extend_from_slice(&g.max_direct.to_le_bytes());
            v.extend_from_slice(&g.bits.to_le_bytes());
            v.extend_from_slice(&1u16.to_le_bytes());
            v.extend_from_slice(&root.to_le_bytes());
            v.extend_from_slice(&rows.to_le_bytes());
            if let Some((size, mask, info)) = &g.filter {
                v.extend_from_slice(&size.to_le_bytes());
                v.extend_from_slice(&mask.to_le_bytes());
                v.extend_from_slice(info);
            }
            seal(v)
        }

        /// A checksummed direct block of `size` bytes with `objects` at heap
        /// offsets relative to the block start.
        pub fn direct_bytes(
            header: u64,
            block_offset: u16,
            size: usize,
            objects: &[(usize, &[u8])],
        ) -> Vec<u8> {
            let mut v = b"FHDB\0".to_vec();
            v.extend_from_slice(&header.to_le_bytes());
            v.extend_from_slice(&block_offset.to_le_bytes());
            v.extend_from_slice(&[0; 4]);
            v.resize(size, 0);
            for (at, bytes) in objects {
                v[*at..*at + bytes.len()].copy_from_slice(bytes);
            }
            let c = lookup3::hashlittle(&v, 0);
            v[15..19].copy_from_slice(&c.to_le_bytes());
            v
        }

        pub fn indirect_bytes(
            header: u64,
            block_offset: u16,
            direct: &[u64],
            indirect: &[u64],
        ) -> Vec<u8> {
            let mut v = b"FHIB\0".to_vec();
            v.extend_from_slice(&header.to_le_bytes());
            v.extend_from_slice(&block_offset.to_le_bytes());
            for a in direct.iter().chain(indirect) {
                v.extend_from_slice(&a.to_le_bytes());
            }
            seal(v)
        }

        pub const U: u64 = UNDEFINED;

        pub const HDR: u64 = 0x100;

        pub const ROOT: u64 = 0x200;

        pub const CHILD: u64 = 0x600;

        /// Root indirect block (5 rows: 6 direct + 4 indirect entries) with a
        /// direct block at row 2 column 1 (heap offset 384) and a child indirect
        /// block at row 3 column 1 (heap offset 768, 2 rows) whose last direct
        /// block (heap offset 960) holds a second object.
        pub fn nested_file(root_indirect: [u64; 4]) -> Vec<u8> {
            let g = geometry();
            let mut file = Vec::new();
            place(&mut file, HDR as usize, &header_bytes(&g, ROOT, 5));
            place(
                &mut file,
                ROOT as usize,
                &indirect_bytes(HDR, 0, &[U, U, U, U, U, 0x400], &root_indirect),
            );
            place(
                &mut file,
                0x400,
                &direct_bytes(HDR, 384, 128, &[(19, b"first object")]),
            );
            place(
                &mut file,
                CHILD as usize,
                &indirect_bytes(HDR, 768, &[U, U, U, 0x800], &[]),
            );
            place(
                &mut file,
                0x800,
                &direct_bytes(HDR, 960, 64, &[(19, b"nested")]),
            );
            file
        }

        pub fn nested_header(file: &[u8]) -> FractalHeapHeader {
            parse_header(&file[HDR as usize..], HDR, D).unwrap()
        }
    }

    /// Fixture builders shared by the tests of `format::object_header` and
    /// `follow::object_header`.
    pub mod object_header {

        /// Root group header of an h5py (HDF5 2.0) default-format file, at 96:
        /// v1, 3 messages, chunk 0 holds only a continuation to 4152 (80 bytes).
        pub const H5PY_V1_ROOT: &str = "01000300010000001800000000000000\
            1000100000000000 3810000000000000 5000000000000000";

        /// The continuation block at 4152: symbol table (B-tree 136, heap 680)
        /// and an attribute "a".
        pub const H5PY_V1_BLOCK: &str = "1100100000000000 8800000000000000 a802000000000000\
            0c00300000000000 010002000c000800 6100000000000000 1008000008000000\
            0000400000000000 0100000000000000 0100000000000000";

        /// Root group header of an h5py libver='latest' file, at 48 (131 bytes):
        /// link info, group info, links "g" and "d", attribute info, a
        /// continuation to 0x242 (47 bytes) and a 14-byte NIL.
        pub const H5PY_V2_ROOT: &str =
            "4f48445202007802120000 0000ffffffffffffffffffffffffffffffff\
            0a02000100 00060c000001000167b300000000000000 060c00000100016436010000000000 00\
            151200040000ffffffffffffffffffffffffffffffff 1010000042020000000000002f00000000000000\
            000e0000 0000000000000000000000000000 c99dd364";

        /// Its OCHK block at 0x242: one 35-byte attribute message.
        pub const H5PY_V2_BLOCK: &str = "4f43484b0c230000030002000c000400006100100800000800000000\
            004000020000000100000000000000296d986d";

        pub fn v1_msg(kind: u16, body: &[u8]) -> Vec<u8> {
            assert_eq!(body.len() % 8, 0);
            let mut m = kind.to_le_bytes().to_vec();
            m.extend_from_slice(&(body.len() as u16).to_le_bytes());
            m.extend_from_slice(&[0, 0, 0, 0]);
            m.extend_from_slice(body);
            m
        }

        pub fn v1_header(count: u16, msgs: &[Vec<u8>]) -> Vec<u8> {
            let body: Vec<u8> = msgs.concat();
            let mut h = vec![1, 0];
            h.extend_from_slice(&count.to_le_bytes());
            h.extend_from_slice(&1u32.to_le_bytes());
            h.extend_from_slice(&(body.len() as u32).to_le_bytes());
            h.extend_from_slice(&[0; 4]);
            h.extend_from_slice(&body);
            h
        }

        pub fn cont_body(addr: u64, len: u64) -> Vec<u8> {
            let mut b = addr.to_le_bytes().to_vec();
            b.extend_from_slice(&len.to_le_bytes());
            b
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

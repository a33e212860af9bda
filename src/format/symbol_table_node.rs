//! Symbol table nodes (`SNOD`): the leaves of an old-style group's v1 B-tree.
//!
//! Implements spec III.B ("Disk Format: Level 1B - Group Symbol Table Nodes");
//! the entries (spec III.C) are parsed by `superblock::parse_symbol_table_entry`.
//! Nodes carry no checksum: only the valid entries (the "Number of Symbols"
//! field) are parsed; the unused slots up to 2K hold undefined bytes.

use nom::number::complete::{le_u16, le_u8};

use super::superblock::parse_symbol_table_entry;
pub use super::superblock::{Scratch, SymbolTableEntry};
use super::{expect_signature, Error, ErrorKind, Result, Sizes};

const STRUCTURE: &str = "symbol table node";

/// The symbol table node signature (spec III.B, "Signature").
pub const SIGNATURE: &[u8; 4] = b"SNOD";

/// Bytes before the first entry: signature, version, reserved, symbol count.
pub const PREFIX_SIZE: u64 = 8;

/// A symbol table node (spec III.B, "Layout: Symbol Table Node").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolTableNode {
    /// Version; only 1 is defined (spec III.B, "Version Number").
    pub version: u8,
    /// The valid entries, as many as "Number of Symbols" says (spec III.B,
    /// "Group Entries"; each described in spec III.C).
    pub entries: Vec<SymbolTableEntry>,
}

impl SymbolTableNode {
    /// True if the node holds more entries than a node of leaf K `leaf_k`
    /// can (2K, spec III.B, "Group Entries").
    pub fn exceeds_capacity(&self, leaf_k: u16) -> bool {
        self.entries.len() as u64 > 2 * u64::from(leaf_k)
    }
}

/// Bytes in one symbol table entry: name offset (size of lengths, as
/// libhdf5 writes it), header address, cache type, reserved, 16-byte
/// scratch pad (40 with 8-byte sizes).
pub fn entry_size(sizes: Sizes) -> u64 {
    super::superblock::symbol_table_entry_size(sizes) as u64
}

/// On-disk size of a node of a group with leaf K `leaf_k` (2K entries), for
/// carving: `8 + 2K * entry_size` (328 bytes for K = 4 and 8-byte offsets).
pub fn capacity_size(leaf_k: u16, sizes: Sizes) -> u64 {
    PREFIX_SIZE + 2 * u64::from(leaf_k) * entry_size(sizes)
}

/// Parses a symbol table node at the start of `data` (file offset `at`).
///
/// The leaf K is not known here, so the symbol count is checked only against
/// the bytes available: `count * entry_size` must fit in `data`. Rejects a
/// bad signature, a version other than 1, and truncation. Callers that know
/// K can test [`SymbolTableNode::exceeds_capacity`].
pub fn parse(data: &[u8], at: u64, sizes: Sizes) -> Result<SymbolTableNode> {
    expect_signature(STRUCTURE, at, data, SIGNATURE)?;
    let body = &data[SIGNATURE.len()..];
    let body_at = at.saturating_add(SIGNATURE.len() as u64);
    let prefix: nom::IResult<&[u8], (u8, u16)> = (|i| {
        let (i, version) = le_u8(i)?;
        let (i, _reserved) = le_u8(i)?;
        let (i, count) = le_u16(i)?;
        Ok((i, (version, count)))
    })(body);
    let (rest, (version, count)) =
        prefix.map_err(|e| Error::from_nom(STRUCTURE, body_at, body, e))?;
    if version != 1 {
        return Err(Error::new(
            STRUCTURE,
            body_at,
            ErrorKind::UnsupportedVersion(version),
        ));
    }
    let esize = entry_size(sizes);
    let needed = u64::from(count) * esize;
    if needed > rest.len() as u64 {
        return Err(Error::new(
            STRUCTURE,
            at,
            ErrorKind::Truncated {
                needed: PREFIX_SIZE + needed,
                available: data.len() as u64,
            },
        ));
    }
    let mut entries = Vec::with_capacity(usize::from(count));
    let mut pos = rest;
    let mut entry_at = at.saturating_add(PREFIX_SIZE);
    for _ in 0..count {
        let (entry, used) = parse_symbol_table_entry(pos, entry_at, sizes)?;
        entries.push(entry);
        pos = pos.get(used..).unwrap_or_default();
        entry_at = entry_at.saturating_add(used as u64);
    }
    Ok(SymbolTableNode { version, entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::test_support::hex;
    use crate::format::UNDEFINED;

    // Fixture generator (python3 + h5py 3.16 / HDF5 2.0, default libver):
    //   with h5py.File('old.h5', 'w') as f:
    //       g = f.create_group('grp'); g.create_group('a'); g.create_group('bb')
    //       g['d'] = np.arange(3)
    //       f.create_dataset('vs', data=np.array(['hello', 'world!', 'x'*20],
    //                        dtype=object), dtype=h5py.string_dtype())
    // The root group's SNOD is at 1504 (first 88 of its 328 bytes: 2 entries).
    const H5PY_SNOD_1504: &str = "\
534e4f44010002000800000000000000200300000000000001000000000000004803000000000000\
680500000000000010000000000000000017000000000000000000000000000000000000000000\
0000000000000000000000";

    fn entry(sizes: Sizes, name: u64, header: u64, cache: u32, pad: [u8; 16]) -> Vec<u8> {
        let o = usize::from(sizes.offset());
        let mut v = name.to_le_bytes()[..usize::from(sizes.length())].to_vec();
        v.extend_from_slice(&header.to_le_bytes()[..o]);
        v.extend_from_slice(&cache.to_le_bytes());
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(&pad);
        v
    }

    fn node(count: u16, entries: &[Vec<u8>]) -> Vec<u8> {
        let mut v = b"SNOD\x01\x00".to_vec();
        v.extend_from_slice(&count.to_le_bytes());
        for e in entries {
            v.extend_from_slice(e);
        }
        v
    }

    fn pad_addrs(a: u64, b: u64) -> [u8; 16] {
        let mut p = [0u8; 16];
        p[..8].copy_from_slice(&a.to_le_bytes());
        p[8..].copy_from_slice(&b.to_le_bytes());
        p
    }

    #[test]
    fn parses_all_cache_types() {
        let d = Sizes::DEFAULT;
        let mut link_pad = [0u8; 16];
        link_pad[..4].copy_from_slice(&40u32.to_le_bytes());
        let v = node(
            4,
            &[
                entry(d, 8, 0x320, 1, pad_addrs(0x348, 0x568)),
                entry(d, 16, 0x1700, 0, [0xAB; 16]),
                entry(d, 24, UNDEFINED, 2, link_pad),
                entry(d, 32, 0x900, 7, [7; 16]),
                // An unused slot: never read.
                vec![0xEE; 40],
            ],
        );
        let n = parse(&v, 1504, d).unwrap();
        assert_eq!(n.version, 1);
        assert_eq!(n.entries.len(), 4);
        assert_eq!(
            n.entries[0],
            SymbolTableEntry {
                name_offset: 8,
                object_header_address: 0x320,
                cache_type: 1,
                scratch: Scratch::SymbolTable {
                    btree_address: 0x348,
                    heap_address: 0x568
                }
            }
        );
        assert_eq!(n.entries[1].scratch, Scratch::None);
        assert_eq!(n.entries[2].object_header_address, UNDEFINED);
        assert_eq!(n.entries[2].scratch, Scratch::SymbolicLink { offset: 40 });
        assert_eq!(n.entries[3].scratch, Scratch::Unknown([7; 16]));
        assert!(!n.exceeds_capacity(2));
        assert!(n.exceeds_capacity(1));
    }

    #[test]
    fn four_byte_offsets() {
        let sz = Sizes::new(4, 4).unwrap();
        let mut pad = [0u8; 16];
        pad[..4].copy_from_slice(&0x100u32.to_le_bytes());
        pad[4..8].copy_from_slice(&[0xFF; 4]);
        let v = node(1, &[entry(sz, 8, 0x80, 1, pad)]);
        assert_eq!(entry_size(sz), 32);
        let n = parse(&v, 0, sz).unwrap();
        assert_eq!(
            n.entries[0].scratch,
            Scratch::SymbolTable {
                btree_address: 0x100,
                heap_address: UNDEFINED
            }
        );
        assert_eq!(capacity_size(4, sz), 8 + 8 * 32);
        assert_eq!(capacity_size(4, Sizes::DEFAULT), 328);
    }

    #[test]
    fn empty_node() {
        let n = parse(&node(0, &[]), 0, Sizes::DEFAULT).unwrap();
        assert!(n.entries.is_empty());
    }

    #[test]
    fn truncation_is_an_error_at_every_length() {
        let d = Sizes::DEFAULT;
        let v = node(
            2,
            &[
                entry(d, 8, 0x320, 1, pad_addrs(1, 2)),
                entry(d, 16, 0x1700, 0, [0; 16]),
            ],
        );
        assert!(parse(&v, 0, d).is_ok());
        for n in 0..v.len() {
            assert!(parse(&v[..n], 0, d).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn bad_signature_and_version() {
        let mut v = node(0, &[]);
        v[0] = b'T';
        assert!(matches!(
            parse(&v, 0, Sizes::DEFAULT).unwrap_err().kind,
            ErrorKind::BadSignature { .. }
        ));
        let mut v = node(0, &[]);
        v[4] = 0;
        assert_eq!(
            parse(&v, 0, Sizes::DEFAULT).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(0)
        );
    }

    #[test]
    fn hostile_count_is_checked_before_allocating() {
        let d = Sizes::DEFAULT;
        let v = node(u16::MAX, &[entry(d, 8, 0x320, 0, [0; 16])]);
        let e = parse(&v, 64, d).unwrap_err();
        assert_eq!(e.offset, 64);
        assert!(matches!(e.kind, ErrorKind::Truncated { needed, .. } if needed == 8 + 65535 * 40));
    }

    #[test]
    fn h5py_root_group_node() {
        let bytes = hex(H5PY_SNOD_1504);
        let n = parse(&bytes, 1504, Sizes::DEFAULT).unwrap();
        assert_eq!(n.entries.len(), 2);
        // "grp" at heap offset 8: a group, scratch pad caches its B-tree and heap.
        assert_eq!(n.entries[0].name_offset, 8);
        assert_eq!(n.entries[0].object_header_address, 800);
        assert_eq!(
            n.entries[0].scratch,
            Scratch::SymbolTable {
                btree_address: 840,
                heap_address: 1384
            }
        );
        // "vs" at heap offset 16: a dataset, nothing cached.
        assert_eq!(n.entries[1].name_offset, 16);
        assert_eq!(n.entries[1].object_header_address, 5888);
        assert_eq!(n.entries[1].cache_type, 0);
    }

    use crate::format::test_support::fixtures;

    #[test]
    fn testdata_fixtures_nodes_parse() {
        for (name, bytes, _) in fixtures() {
            for at in memchr::memmem::find_iter(&bytes, SIGNATURE) {
                let n = parse(&bytes[at..], at as u64, Sizes::DEFAULT).unwrap();
                assert!(!n.exceeds_capacity(4), "{name} SNOD at {at}");
            }
        }
    }
}

//! The superblock (spec II.A, "Disk Format: Level 0A - Format Signature and
//! Superblock"), versions 0 to 3, and the symbol table entry (spec III.C,
//! "Disk Format: Level 1C - Symbol Table Entry") that versions 0 and 1 embed for
//! the root group and that symbol table nodes (`SNOD`) are made of.
//!
//! The superblock sits at offset 0, 512, 1024, 2048, ... of the file (a user
//! block shifts it); [`find_signatures`] lists the candidates and [`parse`]
//! reads one. A version 2/3 superblock whose checksum does not match is still
//! returned, with `checksum_ok: Some(false)`: the caller reports it.

use nom::bytes::complete::take;
use nom::number::complete::{le_u16, le_u32, u8 as le_u8};
use nom::IResult;

use super::{checksum_ok, length, offset, Error, ErrorKind, Result, Sizes};

/// The 8-byte format signature `\x89HDF\r\n\x1a\n` (spec II.A, "Format Signature").
pub const SIGNATURE: [u8; 8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A];

const STRUCTURE: &str = "superblock";

/// Offsets 0, 512, 1024, 2048, ... (spec II.A: the superblock may only be at
/// these offsets) inside `file` where the 8-byte signature is present.
pub fn find_signatures(file: &[u8]) -> Vec<u64> {
    let mut found = Vec::new();
    let mut at: usize = 0;
    while let Some(window) = at
        .checked_add(SIGNATURE.len())
        .and_then(|end| file.get(at..end))
    {
        if window == SIGNATURE {
            found.push(at as u64);
        }
        at = match at {
            0 => 512,
            _ => match at.checked_mul(2) {
                Some(next) => next,
                None => break,
            },
        };
    }
    found
}

/// Where the root group starts (spec II.A, "Root Group Symbol Table Entry" for
/// versions 0/1, "Root Group Object Header Address" for versions 2/3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootPointer {
    /// Versions 0 and 1: the root group's full symbol table entry.
    SymbolTableEntry(SymbolTableEntry),
    /// Versions 2 and 3: the relative address of the root object header.
    ObjectHeader(u64),
}

impl RootPointer {
    /// Relative address of the root group's object header, whatever the version.
    pub fn object_header_address(&self) -> u64 {
        match self {
            RootPointer::SymbolTableEntry(e) => e.object_header_address,
            RootPointer::ObjectHeader(a) => *a,
        }
    }
}

/// A parsed superblock (spec II.A). Fields that a version does not store are `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// "Version Number of the Superblock": 0, 1, 2 or 3.
    pub version: u8,
    /// "Size of Offsets" and "Size of Lengths".
    pub sizes: Sizes,
    /// "Group Leaf Node K" (v0/1). The spec requires > 0; 0 is returned as is.
    pub group_leaf_k: Option<u16>,
    /// "Group Internal Node K" (v0/1). The spec requires > 0; 0 is returned as is.
    pub group_internal_k: Option<u16>,
    /// "Indexed Storage Internal Node K" (v1 only).
    pub indexed_storage_k: Option<u16>,
    /// "File Consistency Flags": 4 bytes in v0/1 (unused there), 1 byte in v2/3
    /// (meaningful in v3 only, see [`Superblock::open_for_write`]).
    pub status_flags: u32,
    /// "Base Address": absolute offset that all other addresses are relative to.
    /// In files with a user block it is normally the superblock's own offset.
    pub base_address: u64,
    /// "Address of Global Free Space Index" (v0/1; always undefined in practice).
    pub free_space_address: Option<u64>,
    /// "Superblock Extension Address" (v2/3; may be undefined).
    pub extension_address: Option<u64>,
    /// "End of File Address". Unlike other addresses it is absolute: in files
    /// with a user block it includes the user block (observed with h5py: it
    /// equals the file length, e.g. 12192 for a 512-byte user block and base 512).
    pub eof_address: u64,
    /// "Driver Information Block Address" (v0/1; may be undefined).
    pub driver_info_address: Option<u64>,
    /// The root group.
    pub root: RootPointer,
    /// "Superblock Checksum" (v2/3): whether it matched. `None` for v0/1.
    pub checksum_ok: Option<bool>,
    /// Bytes the superblock occupies, from the signature to the last field.
    pub size_on_disk: u64,
}

impl Superblock {
    /// Bit 0 of the v3 consistency flags: the file was open for writing and
    /// not closed cleanly (spec II.A, v2/3 "File Consistency Flags"). Always
    /// false for versions 0-2, where the field is unused.
    pub fn open_for_write(&self) -> bool {
        self.version >= 3 && self.status_flags & 0x01 != 0
    }

    /// Bit 2 of the v3 consistency flags: the file was open for SWMR writing.
    pub fn swmr(&self) -> bool {
        self.version >= 3 && self.status_flags & 0x04 != 0
    }

    /// The root group's object header address, if defined.
    pub fn root_address(&self) -> Option<u64> {
        Some(self.root.object_header_address()).filter(|a| !super::is_undefined(*a))
    }
}

/// Parses the superblock at the start of `data` (absolute file offset `at`).
///
/// Errors: bad signature, unknown version, illegal sizes (BadValue), truncation.
/// A v2/3 checksum mismatch is not an error: see `checksum_ok`.
pub fn parse(data: &[u8], at: u64) -> Result<Superblock> {
    let fail = |e| Error::from_nom(STRUCTURE, at, data, e);
    let sig = data.get(..SIGNATURE.len()).ok_or_else(|| {
        Error::new(
            STRUCTURE,
            at,
            ErrorKind::Truncated {
                needed: SIGNATURE.len() as u64,
                available: data.len() as u64,
            },
        )
    })?;
    if sig != SIGNATURE {
        return Err(Error::new(
            STRUCTURE,
            at,
            ErrorKind::BadSignature {
                expected: &SIGNATURE,
                found: sig.to_vec(),
            },
        ));
    }
    let version = *data.get(8).ok_or_else(|| {
        Error::new(
            STRUCTURE,
            at,
            ErrorKind::Truncated {
                needed: 9,
                available: data.len() as u64,
            },
        )
    })?;
    let (_, inner) = match version {
        0 | 1 => parse_v0_v1(data, version).map_err(fail)?,
        2 | 3 => parse_v2_v3(data, version).map_err(fail)?,
        v => {
            return Err(Error::new(
                STRUCTURE,
                at.saturating_add(8),
                ErrorKind::UnsupportedVersion(v),
            ))
        }
    };
    inner.map_err(|kind| Error::new(STRUCTURE, at, kind))
}

type Inner = std::result::Result<Superblock, ErrorKind>;

fn sizes_from(offset_size: u8, length_size: u8) -> std::result::Result<Sizes, ErrorKind> {
    Sizes::new(offset_size, length_size)
}

/// Versions 0 and 1 (spec II.A, "Layout: Superblock (Versions 0 and 1)").
fn parse_v0_v1(data: &[u8], version: u8) -> IResult<&[u8], Inner> {
    // Signature (8), superblock version, free-space version, root entry version,
    // reserved, shared header version.
    let (i, _) = take(13usize)(data)?;
    let (i, offset_size) = le_u8(i)?;
    let (i, length_size) = le_u8(i)?;
    let sizes = match sizes_from(offset_size, length_size) {
        Ok(s) => s,
        Err(kind) => return Ok((i, Err(kind))),
    };
    let (i, _reserved) = le_u8(i)?;
    let (i, group_leaf_k) = le_u16(i)?;
    let (i, group_internal_k) = le_u16(i)?;
    let (i, status_flags) = le_u32(i)?;
    let (i, indexed_storage_k) = if version == 1 {
        let (i, k) = le_u16(i)?;
        let (i, _reserved) = le_u16(i)?;
        (i, Some(k))
    } else {
        (i, None)
    };
    let (i, base_address) = offset(sizes)(i)?;
    let (i, free_space_address) = offset(sizes)(i)?;
    let (i, eof_address) = offset(sizes)(i)?;
    let (i, driver_info_address) = offset(sizes)(i)?;
    let (i, entry) = symbol_table_entry(sizes)(i)?;
    let size_on_disk = (data.len() - i.len()) as u64;
    Ok((
        i,
        Ok(Superblock {
            version,
            sizes,
            group_leaf_k: Some(group_leaf_k),
            group_internal_k: Some(group_internal_k),
            indexed_storage_k,
            status_flags,
            base_address,
            free_space_address: Some(free_space_address),
            extension_address: None,
            eof_address,
            driver_info_address: Some(driver_info_address),
            root: RootPointer::SymbolTableEntry(entry),
            checksum_ok: None,
            size_on_disk,
        }),
    ))
}

/// Versions 2 and 3 (spec II.A, "Layout: Superblock (Versions 2 and 3)").
fn parse_v2_v3(data: &[u8], version: u8) -> IResult<&[u8], Inner> {
    let (i, _) = take(9usize)(data)?;
    let (i, offset_size) = le_u8(i)?;
    let (i, length_size) = le_u8(i)?;
    let sizes = match sizes_from(offset_size, length_size) {
        Ok(s) => s,
        Err(kind) => return Ok((i, Err(kind))),
    };
    let (i, flags) = le_u8(i)?;
    let (i, base_address) = offset(sizes)(i)?;
    let (i, extension_address) = offset(sizes)(i)?;
    let (i, eof_address) = offset(sizes)(i)?;
    let (i, root_address) = offset(sizes)(i)?;
    let covered = data.len() - i.len();
    let (i, _stored) = le_u32(i)?;
    let size_on_disk = (data.len() - i.len()) as u64;
    Ok((
        i,
        Ok(Superblock {
            version,
            sizes,
            group_leaf_k: None,
            group_internal_k: None,
            indexed_storage_k: None,
            status_flags: u32::from(flags),
            base_address,
            free_space_address: None,
            extension_address: Some(extension_address),
            eof_address,
            driver_info_address: None,
            root: RootPointer::ObjectHeader(root_address),
            checksum_ok: Some(checksum_ok(data, covered)),
            size_on_disk,
        }),
    ))
}

/// What the 16-byte scratch pad of a symbol table entry holds, by cache type
/// (spec III.C, "Symbol Table Entry", "Cache Type" and "Scratch-pad Space").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scratch {
    /// Cache type 0: nothing is cached.
    None,
    /// Cache type 1: the object is an old-style group; addresses of its v1
    /// B-tree and local heap (they repeat its symbol table message).
    SymbolTable {
        btree_address: u64,
        heap_address: u64,
    },
    /// Cache type 2: the entry is a symbolic link; offset of the link value
    /// in the local heap.
    SymbolicLink { offset: u32 },
    /// Any other cache type: the raw scratch pad.
    Unknown([u8; 16]),
}

/// A symbol table entry (spec III.C): one member of an old-style group, or
/// the root group in a v0/1 superblock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolTableEntry {
    /// "Link Name Offset": offset of the NUL-terminated name in the group's
    /// local heap. The spec's table gives it "size of offsets" bytes;
    /// libhdf5 (H5G_ent_decode) reads and writes "size of lengths" bytes,
    /// observed in h5py files written with 4-byte offsets and 8-byte lengths
    /// (the two agree when the sizes are equal, as in nearly every file).
    pub name_offset: u64,
    /// "Object Header Address" (relative).
    pub object_header_address: u64,
    /// "Cache Type" (0, 1 or 2 are defined).
    pub cache_type: u32,
    /// "Scratch-pad Space", decoded by cache type.
    pub scratch: Scratch,
}

/// Size on disk of one symbol table entry: name offset (a length, see
/// [`SymbolTableEntry::name_offset`]), header address, cache type, reserved
/// and the 16-byte scratch pad.
pub fn symbol_table_entry_size(sizes: Sizes) -> usize {
    usize::from(sizes.length()) + usize::from(sizes.offset()) + 24
}

/// Parses one symbol table entry at the start of `data` (absolute offset `at`).
/// Returns it with the number of bytes it occupies ([`symbol_table_entry_size`]).
pub fn parse_symbol_table_entry(
    data: &[u8],
    at: u64,
    sizes: Sizes,
) -> Result<(SymbolTableEntry, usize)> {
    match symbol_table_entry(sizes)(data) {
        Ok((rest, entry)) => Ok((entry, data.len() - rest.len())),
        Err(e) => Err(Error::from_nom("symbol table entry", at, data, e)),
    }
}

fn symbol_table_entry(sizes: Sizes) -> impl Fn(&[u8]) -> IResult<&[u8], SymbolTableEntry> {
    move |i: &[u8]| {
        let (i, name_offset) = length(sizes)(i)?;
        let (i, object_header_address) = offset(sizes)(i)?;
        let (i, cache_type) = le_u32(i)?;
        let (i, _reserved) = le_u32(i)?;
        let (i, pad) = take(16usize)(i)?;
        let scratch = match cache_type {
            0 => Scratch::None,
            1 => {
                let (p, btree_address) = offset(sizes)(pad)?;
                let (_, heap_address) = offset(sizes)(p)?;
                Scratch::SymbolTable {
                    btree_address,
                    heap_address,
                }
            }
            2 => {
                let (_, off) = le_u32(pad)?;
                Scratch::SymbolicLink { offset: off }
            }
            _ => {
                let mut raw = [0u8; 16];
                raw.copy_from_slice(pad);
                Scratch::Unknown(raw)
            }
        };
        Ok((
            i,
            SymbolTableEntry {
                name_offset,
                object_header_address,
                cache_type,
                scratch,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::lookup3;
    use crate::format::test_support::hex;
    use crate::format::UNDEFINED;

    /// First 96 bytes of an h5py 3.16 (HDF5 2.0) file written with default
    /// settings: superblock v0, root group at 96, B-tree 136, heap 680.
    const H5PY_DEFAULT: &str = "
        894844460d0a1a0a 0000000000080800 0400100000000000 0000000000000000
        ffffffffffffffff 8810000000000000 ffffffffffffffff 0000000000000000
        6000000000000000 0100000000000000 8800000000000000 a802000000000000";

    /// First 48 bytes of an h5py file written with libver='latest':
    /// superblock v3, root object header at 48.
    const H5PY_LATEST: &str = "
        894844460d0a1a0a 0308080000000000 00000000ffffffff ffffffff20080000
        0000000030000000 000000001319ff39";

    fn v0(version: u8, sizes: Sizes) -> Vec<u8> {
        let o = usize::from(sizes.offset());
        let mut b = SIGNATURE.to_vec();
        b.extend_from_slice(&[version, 0, 0, 0, 0, sizes.offset(), sizes.length(), 0]);
        b.extend_from_slice(&4u16.to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        if version == 1 {
            b.extend_from_slice(&32u16.to_le_bytes());
            b.extend_from_slice(&[0, 0]);
        }
        let addr = |b: &mut Vec<u8>, v: u64| b.extend_from_slice(&v.to_le_bytes()[..o]);
        addr(&mut b, 0); // base
        b.extend_from_slice(&vec![0xFF; o]); // free space
        addr(&mut b, 0x1000); // eof
        b.extend_from_slice(&vec![0xFF; o]); // driver info
                                             // Name offset: a length (see SymbolTableEntry::name_offset).
        b.extend_from_slice(&vec![0; usize::from(sizes.length())]);
        addr(&mut b, 0x60); // root header
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        let mut pad = [0u8; 16];
        pad[..o].copy_from_slice(&0x88u64.to_le_bytes()[..o]);
        pad[o..2 * o].copy_from_slice(&0x2a8u64.to_le_bytes()[..o]);
        b.extend_from_slice(&pad);
        b
    }

    fn v2(version: u8, flags: u8) -> Vec<u8> {
        let mut b = SIGNATURE.to_vec();
        b.extend_from_slice(&[version, 8, 8, flags]);
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.extend_from_slice(&0x820u64.to_le_bytes());
        b.extend_from_slice(&0x30u64.to_le_bytes());
        let c = lookup3::hashlittle(&b, 0);
        b.extend_from_slice(&c.to_le_bytes());
        b
    }

    #[test]
    fn signatures_at_power_of_two_offsets() {
        let mut file = vec![0u8; 5000];
        file[..8].copy_from_slice(&SIGNATURE);
        file[1024..1032].copy_from_slice(&SIGNATURE);
        file[100..108].copy_from_slice(&SIGNATURE); // not a legal position
        file[4096..4104].copy_from_slice(&SIGNATURE);
        assert_eq!(find_signatures(&file), vec![0, 1024, 4096]);
        assert!(find_signatures(&file[..7]).is_empty());
        assert!(find_signatures(&[]).is_empty());
        assert_eq!(find_signatures(&file[..1032]), vec![0, 1024]);
    }

    #[test]
    fn version_0() {
        let b = v0(0, Sizes::DEFAULT);
        assert_eq!(b.len(), 96);
        let sb = parse(&b, 0).unwrap();
        assert_eq!(sb.version, 0);
        assert_eq!(sb.group_leaf_k, Some(4));
        assert_eq!(sb.group_internal_k, Some(16));
        assert_eq!(sb.indexed_storage_k, None);
        assert_eq!(sb.free_space_address, Some(UNDEFINED));
        assert_eq!(sb.driver_info_address, Some(UNDEFINED));
        assert_eq!(sb.extension_address, None);
        assert_eq!(sb.eof_address, 0x1000);
        assert_eq!(sb.size_on_disk, 96);
        assert_eq!(sb.checksum_ok, None);
        assert_eq!(sb.root.object_header_address(), 0x60);
        let RootPointer::SymbolTableEntry(e) = &sb.root else {
            panic!("{:?}", sb.root)
        };
        assert_eq!(
            e.scratch,
            Scratch::SymbolTable {
                btree_address: 0x88,
                heap_address: 0x2a8
            }
        );
        assert!(!sb.open_for_write());
    }

    #[test]
    fn version_1_and_small_offsets() {
        let b = v0(1, Sizes::DEFAULT);
        let sb = parse(&b, 0).unwrap();
        assert_eq!(sb.indexed_storage_k, Some(32));
        assert_eq!(sb.size_on_disk, 100);
        assert_eq!(sb.root.object_header_address(), 0x60);

        let s4 = Sizes::new(4, 4).unwrap();
        let b = v0(1, s4);
        let sb = parse(&b, 512).unwrap();
        assert_eq!(sb.sizes, s4);
        assert_eq!(sb.size_on_disk, 28 + 16 + 32);
        assert_eq!(sb.free_space_address, Some(UNDEFINED));
        let RootPointer::SymbolTableEntry(e) = &sb.root else {
            panic!()
        };
        assert_eq!(
            e.scratch,
            Scratch::SymbolTable {
                btree_address: 0x88,
                heap_address: 0x2a8
            }
        );
    }

    #[test]
    fn versions_2_and_3() {
        let b = v2(2, 1);
        let sb = parse(&b, 0).unwrap();
        assert_eq!(sb.version, 2);
        assert_eq!(sb.checksum_ok, Some(true));
        assert_eq!(sb.size_on_disk, 48);
        assert!(!sb.open_for_write(), "v2 flags are unused");
        assert_eq!(sb.extension_address, Some(UNDEFINED));
        assert_eq!(sb.root, RootPointer::ObjectHeader(0x30));

        let sb = parse(&v2(3, 0x05), 0).unwrap();
        assert!(sb.open_for_write());
        assert!(sb.swmr());
        assert_eq!(sb.status_flags, 5);
    }

    #[test]
    fn bad_checksum_is_reported_not_fatal() {
        let mut b = v2(3, 0);
        b[20] ^= 0x40; // inside the extension address
        let sb = parse(&b, 0).unwrap();
        assert_eq!(sb.checksum_ok, Some(false));
        b[44] ^= 1; // the checksum itself
        assert_eq!(parse(&b, 0).unwrap().checksum_ok, Some(false));
    }

    #[test]
    fn real_h5py_default_superblock() {
        let b = hex(H5PY_DEFAULT);
        let sb = parse(&b, 0).unwrap();
        assert_eq!(sb.version, 0);
        assert_eq!(sb.sizes, Sizes::DEFAULT);
        assert_eq!(sb.group_leaf_k, Some(4));
        assert_eq!(sb.group_internal_k, Some(16));
        assert_eq!(sb.base_address, 0);
        assert_eq!(sb.eof_address, 0x1088);
        assert_eq!(sb.size_on_disk, 96);
        let RootPointer::SymbolTableEntry(e) = sb.root else {
            panic!()
        };
        assert_eq!(e.object_header_address, 96);
        assert_eq!(e.cache_type, 1);
        assert_eq!(
            e.scratch,
            Scratch::SymbolTable {
                btree_address: 136,
                heap_address: 680
            }
        );
    }

    #[test]
    fn real_h5py_latest_superblock() {
        let b = hex(H5PY_LATEST);
        let sb = parse(&b, 0).unwrap();
        assert_eq!(sb.version, 3);
        assert_eq!(sb.checksum_ok, Some(true));
        assert_eq!(sb.eof_address, 0x820);
        assert_eq!(sb.root, RootPointer::ObjectHeader(48));
        assert!(!sb.open_for_write());
    }

    #[test]
    fn truncation_never_panics() {
        for full in [
            v0(0, Sizes::DEFAULT),
            v0(1, Sizes::new(2, 4).unwrap()),
            v2(2, 0),
            v2(3, 1),
            hex(H5PY_DEFAULT),
        ] {
            for n in 0..full.len() {
                let e = parse(&full[..n], 0).unwrap_err();
                assert!(matches!(e.kind, ErrorKind::Truncated { .. }), "{n}: {e}");
            }
            assert!(parse(&full, 0).is_ok());
        }
    }

    #[test]
    fn bad_signature_version_and_sizes() {
        let mut b = v0(0, Sizes::DEFAULT);
        b[1] = b'X';
        assert!(matches!(
            parse(&b, 0).unwrap_err().kind,
            ErrorKind::BadSignature { .. }
        ));
        let mut b = v2(3, 0);
        b[8] = 4;
        let e = parse(&b, 1024).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedVersion(4));
        assert_eq!(e.offset, 1032);
        let mut b = v2(3, 0);
        b[9] = 3;
        assert!(matches!(
            parse(&b, 0).unwrap_err().kind,
            ErrorKind::BadValue { .. }
        ));
        let mut b = v0(0, Sizes::DEFAULT);
        b[14] = 16;
        assert!(matches!(
            parse(&b, 0).unwrap_err().kind,
            ErrorKind::BadValue { .. }
        ));
    }

    #[test]
    fn symbol_table_entries() {
        let s = Sizes::DEFAULT;
        let mut b = vec![0u8; 40];
        b[..8].copy_from_slice(&8u64.to_le_bytes());
        b[8..16].copy_from_slice(&0x400u64.to_le_bytes());
        b[16] = 2;
        b[24] = 0x10;
        let (e, n) = parse_symbol_table_entry(&b, 0, s).unwrap();
        assert_eq!(n, 40);
        assert_eq!(n, symbol_table_entry_size(s));
        assert_eq!(e.name_offset, 8);
        assert_eq!(e.object_header_address, 0x400);
        assert_eq!(e.scratch, Scratch::SymbolicLink { offset: 0x10 });
        b[16] = 0;
        assert_eq!(
            parse_symbol_table_entry(&b, 0, s).unwrap().0.scratch,
            Scratch::None
        );
        b[16] = 7;
        let e = parse_symbol_table_entry(&b, 0, s).unwrap().0;
        assert_eq!(e.cache_type, 7);
        assert!(matches!(e.scratch, Scratch::Unknown(p) if p[0] == 0x10));
        for n in 0..40 {
            let e = parse_symbol_table_entry(&b[..n], 300, s).unwrap_err();
            assert!(e.offset >= 300);
        }
        // Hostile: all-ones everywhere.
        let (e, _) = parse_symbol_table_entry(&[0xFF; 40], 0, s).unwrap();
        assert_eq!(e.object_header_address, UNDEFINED);
        assert!(matches!(e.scratch, Scratch::Unknown(_)));
    }
}

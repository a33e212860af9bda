//! The Data Layout message (type 0x0008), spec IV.A.2.i "The Data Layout
//! Message", versions 1 to 5.
//!
//! - Versions 1 and 2: rank, class, 5 reserved bytes, an address (absent for
//!   compact), `rank` 4-byte dimensions, then for compact a 4-byte size and
//!   the data. Contiguous storage stores no size (computed from the dataspace).
//! - Version 3: class-specific properties; chunked storage indexed by a
//!   version 1 B-tree.
//! - Version 4 (HDF5 1.10): chunked storage gains flags, dimensions encoded
//!   with a per-message width ("Dimension Size Encoded Length", 1..=8 bytes)
//!   and five index types (single chunk, implicit, fixed array, extensible
//!   array, v2 B-tree); class 3 is virtual storage.
//! - Version 5 (HDF5 2.0): the message is encoded exactly like version 4. The
//!   library writes it for filtered chunked datasets (and for chunks of 4 GiB
//!   or more) because the chunk *records* of the fixed array, extensible
//!   array and v2 B-tree indexes changed (filtered chunk sizes are no longer
//!   limited to 32 bits); the records themselves are parsed elsewhere. h5py
//!   3.16 with `libver='latest'` writes version 5 for any filtered chunked
//!   dataset (e.g. gzip with a fixed array index) and version 4 for
//!   unfiltered ones. The 4.0 spec documents version 5 in the same table as
//!   version 4.
//!
//! Observed, and worth knowing: in every version the chunked dimensions
//! include a trailing dimension holding the dataset element size in bytes
//! (rank + 1 values), v4/v5 included. [`LayoutClass::Chunked`] splits it off
//! into `element_size`. The single-chunk filtered information (filtered size
//! and filter mask) is present when flags bit 1 (`SINGLE_INDEX_WITH_FILTER`)
//! is set; the spec's prose says bit 0, the library and its files use bit 1.

use crate::format::codec::Reader;
use crate::format::{Error, ErrorKind, Result, Sizes};

const STRUCTURE: &str = "DataLayout";

/// Most dimensions in a layout message: rank 32 plus the element size.
pub const MAX_DIMS: usize = 33;

/// Chunked flags bit 0: partial edge chunks are not filtered.
pub const FLAG_DONT_FILTER_PARTIAL_BOUND_CHUNKS: u8 = 0x01;
/// Chunked flags bit 1: the single chunk is filtered (filtered size and mask
/// follow the index type).
pub const FLAG_SINGLE_INDEX_WITH_FILTER: u8 = 0x02;

/// How chunk addresses are looked up (spec Appendix C; v4 "Chunk Indexing
/// Type").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkIndex {
    /// Version 1 B-tree (layout v1-v3; index type 0).
    BtreeV1 { address: u64 },
    /// Type 1: one chunk, no index structure. The filtered size and filter
    /// mask are stored only for a filtered chunk.
    SingleChunk {
        address: u64,
        filtered_size: Option<u64>,
        filter_mask: Option<u32>,
    },
    /// Type 2: chunks stored contiguously in order, starting at `address`.
    Implicit { address: u64 },
    /// Type 3: fixed array (`FAHD`) at `address`.
    FixedArray { address: u64, page_bits: u8 },
    /// Type 4: extensible array (`EAHD`) at `address`.
    ExtensibleArray {
        address: u64,
        max_bits: u8,
        index_elements: u8,
        min_pointers: u8,
        min_elements: u8,
        page_bits: u8,
    },
    /// Type 5: version 2 B-tree (`BTHD`) at `address`.
    BtreeV2 {
        address: u64,
        node_size: u32,
        split_percent: u8,
        merge_percent: u8,
    },
}

impl ChunkIndex {
    /// The index's (or single chunk's) address; may be UNDEFINED.
    pub fn address(&self) -> u64 {
        match *self {
            ChunkIndex::BtreeV1 { address }
            | ChunkIndex::SingleChunk { address, .. }
            | ChunkIndex::Implicit { address }
            | ChunkIndex::FixedArray { address, .. }
            | ChunkIndex::ExtensibleArray { address, .. }
            | ChunkIndex::BtreeV2 { address, .. } => address,
        }
    }
}

/// Storage class and its properties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutClass {
    /// Class 0: the raw data is inside the message.
    Compact {
        /// Size of the raw data in bytes.
        size: u64,
        /// Absolute file offset of the raw bytes inside the message.
        data_offset: u64,
        data: Vec<u8>,
    },
    /// Class 1: one contiguous block. `size` is absent in v1/v2.
    Contiguous { address: u64, size: Option<u64> },
    /// Class 2.
    Chunked {
        /// Chunk dimensions in elements, without the element-size dimension.
        dims: Vec<u64>,
        /// The trailing dimension: dataset element size in bytes.
        element_size: Option<u64>,
        /// v4/v5 flags (0 before v4).
        flags: u8,
        index: ChunkIndex,
    },
    /// Class 3 (v4+): mapping stored in a global heap object.
    Virtual { heap_address: u64, index: u32 },
}

/// A decoded data layout message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataLayout {
    /// 1..=5.
    pub version: u8,
    pub class: LayoutClass,
}

/// Parses a data layout message body.
pub fn parse(body: &[u8], at: u64, sizes: Sizes) -> Result<DataLayout> {
    let mut r = Reader::new(STRUCTURE, body, at);
    let version = r.u8()?;
    let class = match version {
        1 | 2 => old_layout(&mut r, sizes)?,
        3..=5 => {
            let class_at = r.abs();
            match r.u8()? {
                0 => {
                    let size = r.u16()?;
                    compact(&mut r, u64::from(size))?
                }
                1 => LayoutClass::Contiguous {
                    address: r.offset(sizes)?,
                    size: Some(r.length(sizes)?),
                },
                2 if version == 3 => v3_chunked(&mut r, sizes)?,
                2 => v4_chunked(&mut r, sizes)?,
                3 if version >= 4 => LayoutClass::Virtual {
                    heap_address: r.offset(sizes)?,
                    index: r.u32()?,
                },
                c => {
                    return Err(Error::bad_value(
                        STRUCTURE,
                        class_at,
                        "layout class",
                        u64::from(c),
                    ))
                }
            }
        }
        v => return Err(Error::new(STRUCTURE, at, ErrorKind::UnsupportedVersion(v))),
    };
    Ok(DataLayout { version, class })
}

/// Compact raw data of `size` bytes at the cursor.
fn compact(r: &mut Reader, size: u64) -> Result<LayoutClass> {
    let data_offset = r.abs();
    let n = usize::try_from(size).unwrap_or(usize::MAX);
    let data = r.bytes(n)?.to_vec();
    Ok(LayoutClass::Compact {
        size,
        data_offset,
        data,
    })
}

/// Reads the dimensionality byte and checks it against `min..=MAX_DIMS`.
fn rank(r: &mut Reader, min: usize) -> Result<usize> {
    let at = r.abs();
    let n = usize::from(r.u8()?);
    if n < min || n > MAX_DIMS {
        return Err(Error::bad_value(
            STRUCTURE,
            at,
            "layout dimensionality",
            n as u64,
        ));
    }
    Ok(n)
}

/// `n` dimensions of `width` bytes each; chunk dimensions must be non-zero.
fn dims(r: &mut Reader, n: usize, width: u8, nonzero: bool) -> Result<Vec<u64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let at = r.abs();
        let d = r.uint(width)?;
        if nonzero && d == 0 {
            return Err(Error::bad_value(STRUCTURE, at, "chunk dimension", 0));
        }
        out.push(d);
    }
    Ok(out)
}

/// Splits off the trailing element-size dimension.
fn chunked(mut all: Vec<u64>, flags: u8, index: ChunkIndex) -> LayoutClass {
    let element_size = all.pop();
    LayoutClass::Chunked {
        dims: all,
        element_size,
        flags,
        index,
    }
}

fn old_layout(r: &mut Reader, sizes: Sizes) -> Result<LayoutClass> {
    let n = rank(r, 1)?;
    let class_at = r.abs();
    let class = r.u8()?;
    r.skip(5)?; // reserved
    match class {
        0 => {
            dims(r, n, 4, false)?;
            let size = r.u32()?;
            compact(r, u64::from(size))
        }
        1 => {
            let address = r.offset(sizes)?;
            dims(r, n, 4, false)?;
            Ok(LayoutClass::Contiguous {
                address,
                size: None,
            })
        }
        2 => {
            if n < 2 {
                return Err(Error::bad_value(
                    STRUCTURE,
                    class_at.saturating_sub(1),
                    "layout dimensionality",
                    n as u64,
                ));
            }
            let address = r.offset(sizes)?;
            let all = dims(r, n, 4, true)?;
            Ok(chunked(all, 0, ChunkIndex::BtreeV1 { address }))
        }
        c => Err(Error::bad_value(
            STRUCTURE,
            class_at,
            "layout class",
            u64::from(c),
        )),
    }
}

fn v3_chunked(r: &mut Reader, sizes: Sizes) -> Result<LayoutClass> {
    let n = rank(r, 2)?;
    let address = r.offset(sizes)?;
    let all = dims(r, n, 4, true)?;
    Ok(chunked(all, 0, ChunkIndex::BtreeV1 { address }))
}

fn v4_chunked(r: &mut Reader, sizes: Sizes) -> Result<LayoutClass> {
    let flags = r.u8()?;
    let n = rank(r, 1)?;
    let width_at = r.abs();
    let width = r.u8()?;
    if !(1..=8).contains(&width) {
        return Err(Error::bad_value(
            STRUCTURE,
            width_at,
            "dimension size encoded length",
            u64::from(width),
        ));
    }
    let all = dims(r, n, width, true)?;
    let type_at = r.abs();
    let index = match r.u8()? {
        0 => ChunkIndex::BtreeV1 {
            address: r.offset(sizes)?,
        },
        1 => {
            let (filtered_size, filter_mask) = if flags & FLAG_SINGLE_INDEX_WITH_FILTER != 0 {
                (Some(r.length(sizes)?), Some(r.u32()?))
            } else {
                (None, None)
            };
            ChunkIndex::SingleChunk {
                filtered_size,
                filter_mask,
                address: r.offset(sizes)?,
            }
        }
        2 => ChunkIndex::Implicit {
            address: r.offset(sizes)?,
        },
        3 => ChunkIndex::FixedArray {
            page_bits: r.u8()?,
            address: r.offset(sizes)?,
        },
        4 => ChunkIndex::ExtensibleArray {
            max_bits: r.u8()?,
            index_elements: r.u8()?,
            min_pointers: r.u8()?,
            min_elements: r.u8()?,
            page_bits: r.u8()?,
            address: r.offset(sizes)?,
        },
        5 => ChunkIndex::BtreeV2 {
            node_size: r.u32()?,
            split_percent: r.u8()?,
            merge_percent: r.u8()?,
            address: r.offset(sizes)?,
        },
        t => {
            return Err(Error::bad_value(
                STRUCTURE,
                type_at,
                "chunk indexing type",
                u64::from(t),
            ))
        }
    };
    Ok(chunked(all, flags, index))
}

#[cfg(test)]
mod tests {
    //! Real vectors were captured from files written by h5py 3.16 / HDF5 2.0:
    //! `h5py.File(p, 'w')` (default libver) and `h5py.File(p, 'w',
    //! libver='latest')`, datasets: `contig` = arange(10, '<i4');
    //! `chunked` = arange(100, '<f8').reshape(10, 10), chunks (5, 5), gzip
    //! (+ shuffle + fletcher32 in the default file); `compact` = arange(4,
    //! '<i2') with an H5D_COMPACT dcpl; `ext` (10,) maxshape (None,) chunks
    //! (4,); `ext2` (10, 10) maxshape (None, None) chunks (4, 4); `single` /
    //! `singlef` (10,) chunks (10,) without / with gzip. Message bodies were
    //! read from the object headers at `h5py.h5o.get_info(ds.id).addr`.
    use super::*;
    use crate::format::test_support::hex;
    use crate::format::UNDEFINED;

    const S: Sizes = Sizes::DEFAULT;

    /// Parses `h`, checks that every strict prefix of the first `used` bytes
    /// fails, and returns the layout.
    fn check(h: &str, used: usize) -> DataLayout {
        let v = hex(h);
        let l = parse(&v, 1000, S).unwrap();
        for n in 0..used {
            assert!(parse(&v[..n], 1000, S).is_err(), "prefix {n} of {h}");
        }
        l
    }

    #[test]
    fn v3_contiguous_from_h5py() {
        let l = check("0301e00a0000000000002800000000000000000000000000", 18);
        assert_eq!(l.version, 3);
        assert_eq!(
            l.class,
            LayoutClass::Contiguous {
                address: 0xae0,
                size: Some(40)
            }
        );
        // Unallocated contiguous storage.
        let l = parse(
            &hex("0301ffffffffffffffff1000000000000000000000000000"),
            0,
            S,
        )
        .unwrap();
        assert_eq!(
            l.class,
            LayoutClass::Contiguous {
                address: UNDEFINED,
                size: Some(16)
            }
        );
    }

    #[test]
    fn v3_chunked_from_h5py() {
        let l = check("030203f01300000000000005000000050000000800000000", 23);
        assert_eq!(
            l.class,
            LayoutClass::Chunked {
                dims: vec![5, 5],
                element_size: Some(8),
                flags: 0,
                index: ChunkIndex::BtreeV1 { address: 0x13f0 }
            }
        );
    }

    #[test]
    fn v3_compact_from_h5py() {
        let l = check("03000800000001000200030000000000", 12);
        assert_eq!(
            l.class,
            LayoutClass::Compact {
                size: 8,
                data_offset: 1004,
                data: vec![0, 0, 1, 0, 2, 0, 3, 0]
            }
        );
    }

    #[test]
    fn v5_fixed_array_from_hdf5_2() {
        // libver latest, gzip, chunks (5, 5) of <f8: layout version 5.
        let l = check("0502000301050508030abf01000000000000", 18);
        assert_eq!(l.version, 5);
        assert_eq!(
            l.class,
            LayoutClass::Chunked {
                dims: vec![5, 5],
                element_size: Some(8),
                flags: 0,
                index: ChunkIndex::FixedArray {
                    address: 0x1bf,
                    page_bits: 10
                }
            }
        );
    }

    #[test]
    fn v5_filtered_single_chunk_from_hdf5_2() {
        let l = check(
            "05020202010a04012000000000000000000000003e09000000000000",
            28,
        );
        assert_eq!(
            l.class,
            LayoutClass::Chunked {
                dims: vec![10],
                element_size: Some(4),
                flags: FLAG_SINGLE_INDEX_WITH_FILTER,
                index: ChunkIndex::SingleChunk {
                    address: 0x93e,
                    filtered_size: Some(32),
                    filter_mask: Some(0)
                }
            }
        );
    }

    #[test]
    fn v4_single_extensible_and_btree2_from_h5py() {
        let l = check("04020002010a04011609000000000000", 16);
        assert_eq!(
            l.class,
            LayoutClass::Chunked {
                dims: vec![10],
                element_size: Some(4),
                flags: 0,
                index: ChunkIndex::SingleChunk {
                    address: 0x916,
                    filtered_size: None,
                    filter_mask: None
                }
            }
        );
        let l = check("0402000201040404200404100affffffffffffffff", 21);
        assert_eq!(
            l.class,
            LayoutClass::Chunked {
                dims: vec![4],
                element_size: Some(4),
                flags: 0,
                index: ChunkIndex::ExtensibleArray {
                    address: UNDEFINED,
                    max_bits: 32,
                    index_elements: 4,
                    min_pointers: 4,
                    min_elements: 16,
                    page_bits: 10
                }
            }
        );
        let l = check("040200030104040405000800006428ffffffffffffffff", 23);
        let LayoutClass::Chunked { dims, index, .. } = l.class else {
            panic!()
        };
        assert_eq!(dims, [4, 4]);
        assert_eq!(
            index,
            ChunkIndex::BtreeV2 {
                address: UNDEFINED,
                node_size: 2048,
                split_percent: 100,
                merge_percent: 40
            }
        );
        assert_eq!(index.address(), UNDEFINED);
    }

    #[test]
    fn v4_wide_dimensions_implicit_and_virtual() {
        // Width 8 dimensions, implicit index.
        let mut v = vec![4, 2, 1, 2, 8];
        v.extend_from_slice(&(1u64 << 40).to_le_bytes());
        v.extend_from_slice(&2u64.to_le_bytes());
        v.push(2);
        v.extend_from_slice(&0x500u64.to_le_bytes());
        let l = parse(&v, 0, S).unwrap();
        assert_eq!(
            l.class,
            LayoutClass::Chunked {
                dims: vec![1 << 40],
                element_size: Some(2),
                flags: FLAG_DONT_FILTER_PARTIAL_BOUND_CHUNKS,
                index: ChunkIndex::Implicit { address: 0x500 }
            }
        );
        for n in 0..v.len() {
            assert!(parse(&v[..n], 0, S).is_err());
        }
        let mut v = vec![4, 3];
        v.extend_from_slice(&0x700u64.to_le_bytes());
        v.extend_from_slice(&3u32.to_le_bytes());
        let l = parse(&v, 0, S).unwrap();
        assert_eq!(
            l.class,
            LayoutClass::Virtual {
                heap_address: 0x700,
                index: 3
            }
        );
        for n in 0..v.len() {
            assert!(parse(&v[..n], 0, S).is_err());
        }
        // Virtual is not a v3 class.
        v[0] = 3;
        assert!(parse(&v, 0, S).is_err());
    }

    #[test]
    fn v1_v2_layouts() {
        // Contiguous, rank 1 (dataset dims 10): no size field.
        let mut c = vec![1, 1, 1, 0, 0, 0, 0, 0];
        c.extend_from_slice(&0x800u64.to_le_bytes());
        c.extend_from_slice(&10u32.to_le_bytes());
        let l = parse(&c, 0, S).unwrap();
        assert_eq!(
            l.class,
            LayoutClass::Contiguous {
                address: 0x800,
                size: None
            }
        );
        for n in 0..c.len() {
            assert!(parse(&c[..n], 0, S).is_err());
        }
        // Chunked: rank 3 = 2 chunk dims + element size.
        let mut k = vec![2, 3, 2, 0, 0, 0, 0, 0];
        k.extend_from_slice(&0x900u64.to_le_bytes());
        for d in [4u32, 5, 8] {
            k.extend_from_slice(&d.to_le_bytes());
        }
        let l = parse(&k, 0, S).unwrap();
        assert_eq!(
            l.class,
            LayoutClass::Chunked {
                dims: vec![4, 5],
                element_size: Some(8),
                flags: 0,
                index: ChunkIndex::BtreeV1 { address: 0x900 }
            }
        );
        for n in 0..k.len() {
            assert!(parse(&k[..n], 0, S).is_err());
        }
        // Compact: no address, dims, size, data.
        let mut m = vec![1, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&2u32.to_le_bytes());
        m.extend_from_slice(&4u32.to_le_bytes());
        m.extend_from_slice(&[9, 8, 7, 6]);
        let l = parse(&m, 100, S).unwrap();
        assert_eq!(
            l.class,
            LayoutClass::Compact {
                size: 4,
                data_offset: 116,
                data: vec![9, 8, 7, 6]
            }
        );
        for n in 0..m.len() {
            assert!(parse(&m[..n], 0, S).is_err());
        }
    }

    #[test]
    fn bad_versions_and_hostile_values() {
        assert_eq!(
            parse(&[6, 1], 0, S).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(6)
        );
        assert_eq!(
            parse(&[0, 1], 0, S).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(0)
        );
        // Unknown class, unknown index type, bad widths and ranks.
        assert!(parse(&[3, 4, 0, 0], 0, S).is_err());
        assert!(parse(&hex("0402000201040406ffffffffffffffff"), 0, S).is_err());
        assert!(parse(&hex("0402000209040401ffffffffffffffff"), 0, S).is_err());
        assert!(parse(&hex("0402000200040401ffffffffffffffff"), 0, S).is_err());
        assert!(parse(&hex("0402002201"), 0, S).is_err());
        // Zero chunk dimension.
        let e = parse(&hex("0402000201000401ffffffffffffffff"), 10, S).unwrap_err();
        assert_eq!(e.offset, 15);
        // Compact size beyond the body (v1: u32 size).
        let mut m = vec![1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];
        m.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&m, 0, S).is_err());
        let e = parse(&[3, 0, 0xff, 0xff, 1, 2], 0, S).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Truncated { .. }));
        // v3 chunked needs at least 2 dimensions.
        assert!(parse(&hex("030201ffffffffffffffff08000000"), 0, S).is_err());
    }
}

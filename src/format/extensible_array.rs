//! Extensible array chunk index: `EAHD` header, `EAIB` index block, `EASB`
//! secondary blocks, `EADB` data blocks and their pages.
//!
//! Implements spec 4.0, Appendix C "VII.D. The Extensible Array Index". The
//! spec gives the layouts but not the geometry; this module derives it (as
//! libhdf5 does) from the header's creation parameters:
//!
//! - elements `0 .. index_block_elements` live in the index block itself;
//! - the remaining elements are grouped in super blocks `s = 0, 1, ..`, where
//!   `nsblks = 1 + max_nelmts_bits - log2(data_block_min_elements)`; super
//!   block `s` has `2^(s/2)` data blocks of `data_block_min_elements *
//!   2^((s+1)/2)` elements each and starts at array offset
//!   `start(s) = sum over t < s of ndblks(t) * dblk_nelmts(t)` (offsets count
//!   from the first element after the index block's own elements);
//! - the first `2 * log2(secondary_block_min_data_ptrs)` super blocks have no
//!   secondary block: the index block stores their
//!   `2 * (secondary_block_min_data_ptrs - 1)` data block addresses directly,
//!   followed by one secondary block address for every later super block;
//! - a data block of more than `2^max_data_block_page_nelmts_bits` elements is
//!   paged: the block holds only its prefix and checksum, its pages follow it
//!   (`page elements * element size + 4` bytes each); the secondary block's
//!   page bitmap has `ndblks * ceil(npages / 8)` bytes but is indexed
//!   continuously, bit `d * npages + p` (most significant bit first) for page
//!   `p` of data block `d` (observed in HDF5 2.0 files);
//! - "Block Offset" fields are `ceil(max_nelmts_bits / 8)` bytes. A secondary
//!   block holds `start(s)`; a data block reached through a secondary block
//!   holds `start(s) + d * dblk_nelmts(s)`, but one whose address sits in the
//!   index block holds `start(s) + (start_data_block(s) + d) * dblk_nelmts(s)`
//!   (libhdf5 adds the index-block-wide data block number; seen in HDF5 2.0
//!   files, e.g. 48 instead of 16 for super block 1 with 16-element minimum).
//!   The walk accepts both and numbers elements by the block's position.
//!
//! The linear element index is the chunk index with the unlimited dimension
//! moved to the front (the others keep their order), row-major, where the
//! fixed dimensions count `ceil(max dim / chunk dim)` chunks.

pub use super::fixed_array::ChunkElement;
use super::fixed_array::{parse_page_as, take_bytes, DataBlockPage, ElementFormat, Paging};
use super::{
    block_prefix, checksum_matches, offset, signature_v0, uint, Error, Result, Sizes, UNDEFINED,
};

/// Magic of the extensible array header.
pub const HEADER_SIGNATURE: &[u8; 4] = b"EAHD";
/// Magic of the index block.
pub const INDEX_BLOCK_SIGNATURE: &[u8; 4] = b"EAIB";
/// Magic of a secondary block.
pub const SECONDARY_BLOCK_SIGNATURE: &[u8; 4] = b"EASB";
/// Magic of a data block.
pub const DATA_BLOCK_SIGNATURE: &[u8; 4] = b"EADB";

pub(crate) const HEADER: &str = "extensible array header";
pub(crate) const INDEX_BLOCK: &str = "extensible array index block";
pub(crate) const SECONDARY_BLOCK: &str = "extensible array secondary block";
pub(crate) const DATA_BLOCK: &str = "extensible array data block";
pub(crate) const PAGE: &str = "extensible array data block page";

/// Extensible array header (spec: "Layout: Extensible Array Header").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensibleArrayHeader {
    pub version: u8,
    /// 0 = non-filtered chunks, 1 = filtered chunks.
    pub client_id: u8,
    /// "Element Size".
    pub element_size: u8,
    /// "Max Nelmts Bits".
    pub max_nelmts_bits: u8,
    /// "Index Blk Elmts".
    pub index_block_elements: u8,
    /// "Data Blk Min Elmts".
    pub data_block_min_elements: u8,
    /// "Secondary Blk Min Data Ptrs".
    pub secondary_block_min_data_ptrs: u8,
    /// "Max Dblk Page Nelmts Bits".
    pub max_data_block_page_nelmts_bits: u8,
    /// "Num Secondary Blks" (statistics).
    pub num_secondary_blocks: u64,
    /// "Secondary Blk Size" (statistics, total bytes).
    pub secondary_block_size: u64,
    /// "Num Data Blks" (statistics).
    pub num_data_blocks: u64,
    /// "Data Blk Size" (statistics, total bytes).
    pub data_block_size: u64,
    /// "Max Index Set": one past the highest element index ever set.
    pub max_index_set: u64,
    /// "Num Elements" realized.
    pub num_elements: u64,
    /// "Index Block Address" (undefined until a chunk is written).
    pub index_block_address: u64,
    /// Bytes of the header, checksum included.
    pub size: u64,
    pub checksum_ok: bool,
}

/// Parses an extensible array header. Bad signature, version, client ID or
/// truncation is an `Err`; a bad checksum gives `checksum_ok: false`.
pub fn parse_header(data: &[u8], at: u64, sizes: Sizes) -> Result<ExtensibleArrayHeader> {
    let (rest, version) = signature_v0(HEADER, HEADER_SIGNATURE, data, at)?;
    let nom_err = |e| Error::from_nom(HEADER, at, data, e);
    let (rest, b) = nom::bytes::complete::take(7usize)(rest).map_err(nom_err)?;
    let mut stats = [0u64; 6];
    let mut rest = rest;
    for s in &mut stats {
        let (r, v) = uint(sizes.length())(rest).map_err(nom_err)?;
        *s = v;
        rest = r;
    }
    let (rest, index_block_address) = offset(sizes)(rest).map_err(nom_err)?;
    let len = data.len() - rest.len();
    let checksum_ok = checksum_matches(HEADER, at, data, len)?;
    if b[0] > 1 {
        return Err(Error::bad_value(
            HEADER,
            at.saturating_add(5),
            "client ID",
            u64::from(b[0]),
        ));
    }
    Ok(ExtensibleArrayHeader {
        version,
        client_id: b[0],
        element_size: b[1],
        max_nelmts_bits: b[2],
        index_block_elements: b[3],
        data_block_min_elements: b[4],
        secondary_block_min_data_ptrs: b[5],
        max_data_block_page_nelmts_bits: b[6],
        num_secondary_blocks: stats[0],
        secondary_block_size: stats[1],
        num_data_blocks: stats[2],
        data_block_size: stats[3],
        max_index_set: stats[4],
        num_elements: stats[5],
        index_block_address,
        size: len as u64 + 4,
        checksum_ok,
    })
}

/// Layout of one super block (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuperBlockInfo {
    /// Data blocks in this super block: 2^(s/2).
    pub data_blocks: u64,
    /// Elements per data block: min elements * 2^((s+1)/2).
    pub data_block_elements: u64,
    /// Array offset of the first element (after the index block's elements).
    pub start_index: u64,
    /// Number of data blocks in all earlier super blocks.
    pub start_data_block: u64,
}

/// Geometry derived from a header's creation parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensibleArrayGeometry {
    pub element_format: ElementFormat,
    /// One entry per super block (at most 65); cut short where offsets would
    /// overflow 64 bits.
    pub super_blocks: Vec<SuperBlockInfo>,
    /// Super blocks whose data block addresses sit in the index block.
    pub index_block_super_blocks: usize,
    /// Data block addresses stored in the index block.
    pub index_block_data_block_addrs: u64,
    /// Secondary block addresses stored in the index block.
    pub index_block_secondary_block_addrs: u64,
    /// Width of the "Block Offset" fields.
    pub block_offset_size: u8,
    /// Log2 of the elements per data block page.
    pub page_bits: u8,
}

impl ExtensibleArrayHeader {
    /// Derives the geometry; rejects parameters libhdf5 never writes (zero or
    /// non-power-of-two minimums, more than 64 bits, an element size that
    /// does not match the client ID).
    pub fn geometry(&self, at: u64, sizes: Sizes) -> Result<ExtensibleArrayGeometry> {
        let element_format =
            ElementFormat::new(HEADER, at, self.client_id, self.element_size, sizes)?;
        let bits = self.max_nelmts_bits;
        let min = self.data_block_min_elements;
        let ptrs = self.secondary_block_min_data_ptrs;
        if bits == 0 || bits > 64 {
            return Err(Error::bad_value(
                HEADER,
                at,
                "max nelmts bits",
                u64::from(bits),
            ));
        }
        if !min.is_power_of_two() || min.trailing_zeros() > u32::from(bits) {
            return Err(Error::bad_value(
                HEADER,
                at,
                "data block min elements",
                u64::from(min),
            ));
        }
        if ptrs < 2 || !ptrs.is_power_of_two() {
            return Err(Error::bad_value(
                HEADER,
                at,
                "secondary block min data pointers",
                u64::from(ptrs),
            ));
        }
        let nsblks = 1 + u32::from(bits) - min.trailing_zeros();
        let mut super_blocks = Vec::new();
        let (mut start_index, mut start_data_block) = (0u64, 0u64);
        for s in 0..nsblks {
            let data_blocks = 1u64 << (s / 2);
            let Some(data_block_elements) = 1u64
                .checked_shl(s.div_ceil(2))
                .and_then(|v| v.checked_mul(u64::from(min)))
            else {
                break;
            };
            super_blocks.push(SuperBlockInfo {
                data_blocks,
                data_block_elements,
                start_index,
                start_data_block,
            });
            let next = data_blocks
                .checked_mul(data_block_elements)
                .and_then(|n| n.checked_add(start_index));
            match next {
                Some(n) => start_index = n,
                None => break,
            }
            start_data_block = start_data_block.saturating_add(data_blocks);
        }
        let index_block_super_blocks = 2 * ptrs.trailing_zeros() as usize;
        Ok(ExtensibleArrayGeometry {
            element_format,
            index_block_data_block_addrs: 2 * (u64::from(ptrs) - 1),
            index_block_secondary_block_addrs: u64::from(nsblks)
                .saturating_sub(index_block_super_blocks as u64),
            index_block_super_blocks,
            super_blocks,
            block_offset_size: bits.div_ceil(8),
            page_bits: self.max_data_block_page_nelmts_bits,
        })
    }
}

impl ExtensibleArrayGeometry {
    /// Paging of a data block of `nelmts` elements.
    pub fn paging(&self, nelmts: u64) -> Paging {
        Paging::new(nelmts, self.page_bits)
    }
}

/// Reads `count` addresses from `data[start..]` after checking they fit.
fn addresses(
    structure: &'static str,
    at: u64,
    data: &[u8],
    start: usize,
    count: u64,
    sizes: Sizes,
) -> Result<Vec<u64>> {
    let w = sizes.offset();
    let raw = take_bytes(
        structure,
        at,
        data,
        start,
        count.saturating_mul(u64::from(w)),
    )?;
    Ok(raw
        .chunks_exact(usize::from(w))
        .map(|a| offset(sizes)(a).map_or(UNDEFINED, |(_, v)| v))
        .collect())
}

/// Extensible array index block (spec: "Layout: Extensible Array Index Block").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensibleArrayIndexBlock {
    pub version: u8,
    pub client_id: u8,
    pub header_address: u64,
    /// Allocated chunks stored directly in the block (indices
    /// `0 .. index_block_elements`); empty when the checksum is bad.
    pub elements: Vec<ChunkElement>,
    /// Data block addresses of the first super blocks (undefined = none).
    pub data_block_addresses: Vec<u64>,
    /// One secondary block address per later super block.
    pub secondary_block_addresses: Vec<u64>,
    /// Bytes, checksum included.
    pub size: u64,
    pub checksum_ok: bool,
}

/// Parses the index block of the array described by `header` / `geometry`.
pub fn parse_index_block(
    data: &[u8],
    at: u64,
    sizes: Sizes,
    header: &ExtensibleArrayHeader,
    geometry: &ExtensibleArrayGeometry,
) -> Result<ExtensibleArrayIndexBlock> {
    let (rest, version, header_address) = block_prefix(
        INDEX_BLOCK,
        INDEX_BLOCK_SIGNATURE,
        data,
        at,
        sizes,
        Some(header.client_id),
    )?;
    let format = geometry.element_format;
    let start = data.len() - rest.len();
    let n = u64::from(header.index_block_elements);
    let raw = take_bytes(
        INDEX_BLOCK,
        at,
        data,
        start,
        n * u64::from(format.element_size),
    )?;
    let start = start + raw.len();
    let dblks = addresses(
        INDEX_BLOCK,
        at,
        data,
        start,
        geometry.index_block_data_block_addrs,
        sizes,
    )?;
    let start = start + dblks.len() * usize::from(sizes.offset());
    let sblks = addresses(
        INDEX_BLOCK,
        at,
        data,
        start,
        geometry.index_block_secondary_block_addrs,
        sizes,
    )?;
    let len = start + sblks.len() * usize::from(sizes.offset());
    let checksum_ok = checksum_matches(INDEX_BLOCK, at, data, len)?;
    Ok(ExtensibleArrayIndexBlock {
        version,
        client_id: header.client_id,
        header_address,
        elements: if checksum_ok {
            format.decode_all(raw, 0)
        } else {
            Vec::new()
        },
        data_block_addresses: dblks,
        secondary_block_addresses: sblks,
        size: len as u64 + 4,
        checksum_ok,
    })
}

/// Extensible array secondary block (spec: "Layout: Extensible Array
/// Secondary Block").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensibleArraySecondaryBlock {
    pub version: u8,
    pub client_id: u8,
    pub header_address: u64,
    /// "Block Offset": array offset of the super block's first element.
    pub block_offset: u64,
    /// Page-init bitmap (only when the super block's data blocks are paged;
    /// bit `d * npages + p`, most significant bit first).
    pub page_bitmap: Vec<u8>,
    /// Addresses of the super block's data blocks.
    pub data_block_addresses: Vec<u64>,
    pub size: u64,
    pub checksum_ok: bool,
}

/// Parses the secondary block of super block `super_block` (an index into
/// `geometry.super_blocks`).
pub fn parse_secondary_block(
    data: &[u8],
    at: u64,
    sizes: Sizes,
    header: &ExtensibleArrayHeader,
    geometry: &ExtensibleArrayGeometry,
    super_block: usize,
) -> Result<ExtensibleArraySecondaryBlock> {
    let info = geometry.super_blocks.get(super_block).ok_or_else(|| {
        Error::bad_value(SECONDARY_BLOCK, at, "super block index", super_block as u64)
    })?;
    let (rest, version, header_address) = block_prefix(
        SECONDARY_BLOCK,
        SECONDARY_BLOCK_SIGNATURE,
        data,
        at,
        sizes,
        Some(header.client_id),
    )?;
    let nom_err = |e| Error::from_nom(SECONDARY_BLOCK, at, data, e);
    let (rest, block_offset) = uint(geometry.block_offset_size)(rest).map_err(nom_err)?;
    let start = data.len() - rest.len();
    let paging = geometry.paging(info.data_block_elements);
    let bitmap_len = if paging.npages > 0 {
        info.data_blocks.saturating_mul(paging.bitmap_len())
    } else {
        0
    };
    let bitmap = take_bytes(SECONDARY_BLOCK, at, data, start, bitmap_len)?;
    let start = start + bitmap.len();
    let dblks = addresses(SECONDARY_BLOCK, at, data, start, info.data_blocks, sizes)?;
    let len = start + dblks.len() * usize::from(sizes.offset());
    let checksum_ok = checksum_matches(SECONDARY_BLOCK, at, data, len)?;
    Ok(ExtensibleArraySecondaryBlock {
        version,
        client_id: header.client_id,
        header_address,
        block_offset,
        page_bitmap: bitmap.to_vec(),
        data_block_addresses: dblks,
        size: len as u64 + 4,
        checksum_ok,
    })
}

/// Extensible array data block (spec: "Layout: Extensible Array Data Block").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensibleArrayDataBlock {
    pub version: u8,
    pub client_id: u8,
    pub header_address: u64,
    /// "Block Offset": array offset of the block's first element.
    pub block_offset: u64,
    /// Allocated chunks of an unpaged block, indexed
    /// `index_block_elements + block_offset + i` from the STORED offset
    /// (wrong for blocks listed in the index block, see the module docs);
    /// empty when paged or when the checksum is bad.
    pub elements: Vec<ChunkElement>,
    /// Bytes from the signature through the checksum; pages follow here.
    pub prefix_size: u64,
    /// Pages after the prefix (0 = unpaged).
    pub npages: u64,
    pub checksum_ok: bool,
}

/// Parses a data block of `nelmts` elements (the super block's data block
/// size).
pub fn parse_data_block(
    data: &[u8],
    at: u64,
    sizes: Sizes,
    header: &ExtensibleArrayHeader,
    geometry: &ExtensibleArrayGeometry,
    nelmts: u64,
) -> Result<ExtensibleArrayDataBlock> {
    let (rest, version, header_address) = block_prefix(
        DATA_BLOCK,
        DATA_BLOCK_SIGNATURE,
        data,
        at,
        sizes,
        Some(header.client_id),
    )?;
    let nom_err = |e| Error::from_nom(DATA_BLOCK, at, data, e);
    let (rest, block_offset) = uint(geometry.block_offset_size)(rest).map_err(nom_err)?;
    let start = data.len() - rest.len();
    let paging = geometry.paging(nelmts);
    let format = geometry.element_format;
    let payload = if paging.npages > 0 {
        0
    } else {
        nelmts.saturating_mul(u64::from(format.element_size))
    };
    let raw = take_bytes(DATA_BLOCK, at, data, start, payload)?;
    let len = start + raw.len();
    let checksum_ok = checksum_matches(DATA_BLOCK, at, data, len)?;
    let first = u64::from(header.index_block_elements).saturating_add(block_offset);
    Ok(ExtensibleArrayDataBlock {
        version,
        client_id: header.client_id,
        header_address,
        block_offset,
        elements: if checksum_ok {
            format.decode_all(raw, first)
        } else {
            Vec::new()
        },
        prefix_size: len as u64 + 4,
        npages: paging.npages,
        checksum_ok,
    })
}

/// Parses an extensible array data block page (same layout as the fixed
/// array's).
pub fn parse_page(
    data: &[u8],
    at: u64,
    format: ElementFormat,
    first_index: u64,
    nelmts: u64,
) -> Result<DataBlockPage> {
    parse_page_as(PAGE, data, at, format, first_index, nelmts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::test_support::extensible_array::*;
    use crate::format::test_support::{hex, seal};

    #[test]
    fn geometry_matches_the_doubling_table() {
        let h = parse_header(&header_bytes(0, 8, 0), 0, Sizes::DEFAULT).unwrap();
        let g = h.geometry(0, Sizes::DEFAULT).unwrap();
        assert_eq!(g.super_blocks.len(), 32);
        let t: Vec<_> = g.super_blocks[..6]
            .iter()
            .map(|s| {
                (
                    s.data_blocks,
                    s.data_block_elements,
                    s.start_index,
                    s.start_data_block,
                )
            })
            .collect();
        assert_eq!(
            t,
            vec![
                (1, 2, 0, 0),
                (1, 4, 2, 1),
                (2, 4, 6, 2),
                (2, 8, 14, 4),
                (4, 8, 30, 6),
                (4, 16, 62, 10)
            ]
        );
        assert_eq!(g.index_block_super_blocks, 2);
        assert_eq!(g.index_block_data_block_addrs, 2);
        assert_eq!(g.index_block_secondary_block_addrs, 30);
        assert_eq!(g.block_offset_size, 4);
        // The HDF5 2.0 default (min 16, ptrs 4, 32 bits) from a real header.
        let real = hex(concat!(
            "45414844000008200410040a0100000000000000360000000000000007000000",
            "000000001a0a0000000000002c01000000000000340100000000000013030000",
            "000000007bfc4207"
        ));
        let h = parse_header(&real, 447, Sizes::DEFAULT).unwrap();
        assert!(h.checksum_ok, "{h:?}");
        assert_eq!(
            (h.max_index_set, h.num_elements, h.index_block_address),
            (300, 308, 0x313)
        );
        let g = h.geometry(447, Sizes::DEFAULT).unwrap();
        assert_eq!(g.super_blocks.len(), 29);
        assert_eq!(
            (
                g.index_block_data_block_addrs,
                g.index_block_secondary_block_addrs
            ),
            (6, 25)
        );
        assert_eq!(g.super_blocks[13].start_index, 131056);
    }

    #[test]
    fn header_errors() {
        let h = header_bytes(0, 8, 0);
        for n in 0..h.len() {
            assert!(parse_header(&h[..n], 0, Sizes::DEFAULT).is_err(), "{n}");
        }
        let mut b = h.clone();
        b[30] ^= 1;
        assert!(!parse_header(&b, 0, Sizes::DEFAULT).unwrap().checksum_ok);
        let mut b = h.clone();
        b[4] = 3;
        assert!(parse_header(&b, 0, Sizes::DEFAULT).is_err());
        assert!(parse_header(b"EAHX", 0, Sizes::DEFAULT).is_err());
        let bad = |i: usize, v: u8| {
            let mut b = h[..h.len() - 4].to_vec();
            b[i] = v;
            let p = parse_header(&seal(b), 0, Sizes::DEFAULT).unwrap();
            p.geometry(0, Sizes::DEFAULT).is_err()
        };
        assert!(bad(7, 0) && bad(7, 65) && bad(9, 3) && bad(9, 0) && bad(10, 1) && bad(10, 6));
        assert!(bad(6, 9) && !bad(5, 0) && !bad(9, 128));
        // min elements 128 with 5 bits: more than the array holds.
        let mut b = h[..h.len() - 4].to_vec();
        b[7] = 5;
        b[9] = 128;
        let p = parse_header(&seal(b), 0, Sizes::DEFAULT).unwrap();
        assert!(p.geometry(0, Sizes::DEFAULT).is_err());
    }
}

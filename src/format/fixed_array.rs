//! Fixed array chunk index: `FAHD` header, `FADB` data block and its pages.
//!
//! Implements spec 4.0, Appendix C "VII.C. The Fixed Array Index" (Layout:
//! Fixed Array Header / Data Block / Data Block Page, Data Block Element for
//! Non-filtered and Filtered Dataset Chunk). Also holds what the extensible
//! array shares with it: [`ChunkElement`], the element encoding
//! [`ElementFormat`] and page parsing.
//!
//! Facts not in the spec, checked against files written by HDF5 2.0:
//! - the page-init bitmap numbers pages from the most significant bit of each
//!   byte (page 0 = `0x80` of byte 0);
//! - a paged data block is the prefix (signature .. bitmap) followed by its
//!   checksum; page `i` starts at `block + prefix + i * (page elements *
//!   entry size + 4)`, the last page holding only the remaining elements;
//! - filtered elements written for layout message version 5 use an 8-byte
//!   chunk size (entry size 20 with 8-byte offsets). The width is derived from
//!   the header's entry size (`entry size - size of offsets - 4`), which covers
//!   both the version 4 and version 5 encodings.
//!
//! The linear element index is the chunk index over the chunk grid of the
//! dataset's MAXIMUM dimensions, row-major (last dimension fastest).

use nom::number::complete::{le_u32, le_u8};

use super::{
    block_prefix, checksum_matches, offset, signature_v0, uint, Error, ErrorKind, Result, Sizes,
    UNDEFINED,
};

/// Magic of the fixed array header.
pub const HEADER_SIGNATURE: &[u8; 4] = b"FAHD";
/// Magic of the fixed array data block.
pub const DATA_BLOCK_SIGNATURE: &[u8; 4] = b"FADB";

pub(crate) const HEADER: &str = "fixed array header";
pub(crate) const DATA_BLOCK: &str = "fixed array data block";
pub(crate) const PAGE: &str = "fixed array data block page";

/// One allocated chunk found in a fixed or extensible array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkElement {
    /// Linear chunk index in the array (see the module docs for the grid).
    pub index: u64,
    /// Address of the chunk's bytes (relative to the superblock base).
    pub address: u64,
    /// Stored (filtered) size in bytes; `None` for non-filtered chunks.
    pub size: Option<u64>,
    /// Filters skipped for this chunk (0 for non-filtered chunks).
    pub filter_mask: u32,
}

/// How one array element is encoded (spec: "Data Block Element for
/// Non-filtered / Filtered Dataset Chunk").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElementFormat {
    /// Client ID 1 (filtered chunks: address, chunk size, filter mask).
    pub filtered: bool,
    /// Bytes per element, from the header.
    pub element_size: u8,
    /// Width of the address ("size of offsets").
    pub offset_size: u8,
    /// Width of the "Chunk Size" field; 0 for non-filtered chunks.
    pub chunk_size_len: u8,
}

impl ElementFormat {
    /// Checks the header's client ID and element size against each other.
    /// Client 0 needs `element_size == size of offsets`; client 1 needs a
    /// chunk-size width `element_size - size of offsets - 4` of 1..=8 bytes.
    pub fn new(
        structure: &'static str,
        at: u64,
        client_id: u8,
        element_size: u8,
        sizes: Sizes,
    ) -> Result<ElementFormat> {
        let o = sizes.offset();
        match client_id {
            0 if element_size == o => Ok(ElementFormat {
                filtered: false,
                element_size,
                offset_size: o,
                chunk_size_len: 0,
            }),
            1 => {
                let len = element_size.checked_sub(o).and_then(|v| v.checked_sub(4));
                match len {
                    Some(l @ 1..=8) => Ok(ElementFormat {
                        filtered: true,
                        element_size,
                        offset_size: o,
                        chunk_size_len: l,
                    }),
                    _ => Err(Error::bad_value(
                        structure,
                        at,
                        "element size",
                        u64::from(element_size),
                    )),
                }
            }
            0 => Err(Error::bad_value(
                structure,
                at,
                "element size",
                u64::from(element_size),
            )),
            c => Err(Error::bad_value(structure, at, "client ID", u64::from(c))),
        }
    }

    /// Decodes one element; `None` for an unallocated chunk (undefined
    /// address) or when `raw` is shorter than an element.
    pub fn decode(&self, raw: &[u8], index: u64) -> Option<ChunkElement> {
        let sizes = Sizes::new(self.offset_size, 8).ok()?;
        let (rest, address) = offset(sizes)(raw).ok()?;
        if address == UNDEFINED {
            return None;
        }
        if !self.filtered {
            return Some(ChunkElement {
                index,
                address,
                size: None,
                filter_mask: 0,
            });
        }
        let (rest, size) = uint(self.chunk_size_len)(rest).ok()?;
        let (_, filter_mask) = le_u32::<_, nom::error::Error<&[u8]>>(rest).ok()?;
        Some(ChunkElement {
            index,
            address,
            size: Some(size),
            filter_mask,
        })
    }

    /// Decodes `count` consecutive elements from `raw`, numbering them from
    /// `first_index`; the caller has checked `raw` holds them all.
    pub fn decode_all(&self, raw: &[u8], first_index: u64) -> Vec<ChunkElement> {
        raw.chunks_exact(usize::from(self.element_size.max(1)))
            .zip(0u64..)
            .filter_map(|(e, i)| self.decode(e, first_index.saturating_add(i)))
            .collect()
    }
}

/// Fixed array header (spec: "Layout: Fixed Array Header").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedArrayHeader {
    /// Version 0 is the only one defined.
    pub version: u8,
    /// 0 = non-filtered chunks, 1 = filtered chunks.
    pub client_id: u8,
    /// "Entry Size": bytes per element.
    pub entry_size: u8,
    /// "Page Bits": log2 of the elements per data block page.
    pub page_bits: u8,
    /// "Max Num Entries": elements in the array.
    pub max_num_entries: u64,
    /// "Data Block Address" (undefined until a chunk is written).
    pub data_block_address: u64,
    /// Bytes of the header, checksum included.
    pub size: u64,
    /// Whether the stored lookup3 checksum matches (the struct is returned
    /// either way; callers decide trust).
    pub checksum_ok: bool,
}

/// Parses a fixed array header. Bad signature, version, client ID or a
/// truncated header is an `Err`; a bad checksum gives `checksum_ok: false`.
pub fn parse_header(data: &[u8], at: u64, sizes: Sizes) -> Result<FixedArrayHeader> {
    let (rest, version) = signature_v0(HEADER, HEADER_SIGNATURE, data, at)?;
    let nom_err = |e| Error::from_nom(HEADER, at, data, e);
    let (rest, client_id) = le_u8(rest).map_err(nom_err)?;
    let (rest, entry_size) = le_u8(rest).map_err(nom_err)?;
    let (rest, page_bits) = le_u8(rest).map_err(nom_err)?;
    let (rest, max_num_entries) = uint(sizes.length())(rest).map_err(nom_err)?;
    let (rest, data_block_address) = offset(sizes)(rest).map_err(nom_err)?;
    let len = data.len() - rest.len();
    let checksum_ok = checksum_matches(HEADER, at, data, len)?;
    if client_id > 1 {
        return Err(Error::bad_value(
            HEADER,
            at.saturating_add(5),
            "client ID",
            u64::from(client_id),
        ));
    }
    Ok(FixedArrayHeader {
        version,
        client_id,
        entry_size,
        page_bits,
        max_num_entries,
        data_block_address,
        size: len as u64 + 4,
        checksum_ok,
    })
}

impl FixedArrayHeader {
    /// The element encoding this header announces.
    pub fn element_format(&self, at: u64, sizes: Sizes) -> Result<ElementFormat> {
        ElementFormat::new(HEADER, at, self.client_id, self.entry_size, sizes)
    }

    /// Paging of the data block (spec: data block is paged when the entries
    /// exceed 2^page_bits).
    pub fn paging(&self) -> Paging {
        Paging::new(self.max_num_entries, self.page_bits)
    }
}

/// How a data block of `nelmts` elements is split into pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    /// Elements in the block.
    pub nelmts: u64,
    /// Elements per page (2^bits; `u64::MAX` when the bits exceed 63).
    pub page_nelmts: u64,
    /// Number of pages; 0 when the block is not paged.
    pub npages: u64,
}

impl Paging {
    pub fn new(nelmts: u64, page_bits: u8) -> Paging {
        let page_nelmts = 1u64.checked_shl(u32::from(page_bits)).unwrap_or(u64::MAX);
        let npages = if nelmts > page_nelmts {
            nelmts.div_ceil(page_nelmts)
        } else {
            0
        };
        Paging {
            nelmts,
            page_nelmts,
            npages,
        }
    }

    /// Bytes of a page-init bitmap covering all pages.
    pub fn bitmap_len(&self) -> u64 {
        self.npages.div_ceil(8)
    }

    /// Elements held by page `i` (the last one may be short).
    pub fn page_elements(&self, i: u64) -> u64 {
        let start = i.saturating_mul(self.page_nelmts);
        self.nelmts.saturating_sub(start).min(self.page_nelmts)
    }
}

/// Bit `i` of a page-init bitmap (most significant bit first).
pub fn page_initialized(bitmap: &[u8], i: u64) -> bool {
    usize::try_from(i / 8)
        .ok()
        .and_then(|b| bitmap.get(b))
        .is_some_and(|byte| byte & (0x80u8 >> (i % 8)) != 0)
}

/// Fixed array data block (spec: "Layout: Fixed Array Data Block").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedArrayDataBlock {
    pub version: u8,
    pub client_id: u8,
    /// "Header Address": the owning `FAHD`.
    pub header_address: u64,
    /// "Page Bitmap" (paged blocks only; MSB-first, see [`page_initialized`]).
    pub page_bitmap: Vec<u8>,
    /// Allocated chunks of an unpaged block (empty for a paged one).
    pub elements: Vec<ChunkElement>,
    /// Bytes from the signature through the checksum (for a paged block the
    /// pages follow at this offset).
    pub prefix_size: u64,
    /// Whether the stored checksum matches.
    pub checksum_ok: bool,
}

/// Parses a fixed array data block described by `header`. Truncation, a
/// bad signature/version or a client ID that differs from the header's is an
/// `Err`; a bad checksum gives `checksum_ok: false` (and no elements).
pub fn parse_data_block(
    data: &[u8],
    at: u64,
    sizes: Sizes,
    header: &FixedArrayHeader,
) -> Result<FixedArrayDataBlock> {
    let format = header.element_format(at, sizes)?;
    let (rest, version, header_address) = block_prefix(
        DATA_BLOCK,
        DATA_BLOCK_SIGNATURE,
        data,
        at,
        sizes,
        Some(header.client_id),
    )?;
    let paging = header.paging();
    let start = data.len() - rest.len();
    let payload = if paging.npages > 0 {
        paging.bitmap_len()
    } else {
        paging.nelmts.saturating_mul(u64::from(format.element_size))
    };
    let raw = take_bytes(DATA_BLOCK, at, data, start, payload)?;
    let len = start + raw.len();
    let checksum_ok = checksum_matches(DATA_BLOCK, at, data, len)?;
    let (page_bitmap, elements) = if paging.npages > 0 {
        (raw.to_vec(), Vec::new())
    } else if checksum_ok {
        (Vec::new(), format.decode_all(raw, 0))
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(FixedArrayDataBlock {
        version,
        client_id: header.client_id,
        header_address,
        page_bitmap,
        elements,
        prefix_size: len as u64 + 4,
        checksum_ok,
    })
}

/// One data block page: the elements (allocated chunks only) and whether
/// its checksum matched (spec: "Layout: Fixed/Extensible Array Data Block
/// Page"; both have the same layout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataBlockPage {
    /// Allocated chunks, empty when the checksum does not match.
    pub elements: Vec<ChunkElement>,
    /// Bytes of the page, checksum included.
    pub size: u64,
    pub checksum_ok: bool,
}

/// Parses a fixed array data block page of `nelmts` elements whose first
/// element has linear index `first_index`.
pub fn parse_page(
    data: &[u8],
    at: u64,
    format: ElementFormat,
    first_index: u64,
    nelmts: u64,
) -> Result<DataBlockPage> {
    parse_page_as(PAGE, data, at, format, first_index, nelmts)
}

/// [`parse_page`] with the structure name used in errors.
pub(crate) fn parse_page_as(
    structure: &'static str,
    data: &[u8],
    at: u64,
    format: ElementFormat,
    first_index: u64,
    nelmts: u64,
) -> Result<DataBlockPage> {
    let bytes = nelmts.saturating_mul(u64::from(format.element_size));
    let raw = take_bytes(structure, at, data, 0, bytes)?;
    let checksum_ok = checksum_matches(structure, at, data, raw.len())?;
    let elements = if checksum_ok {
        format.decode_all(raw, first_index)
    } else {
        Vec::new()
    };
    Ok(DataBlockPage {
        elements,
        size: raw.len() as u64 + 4,
        checksum_ok,
    })
}

/// `data[start..start+len]`, or a Truncated error if the bytes are not there.
pub(crate) fn take_bytes<'a>(
    structure: &'static str,
    at: u64,
    data: &'a [u8],
    start: usize,
    len: u64,
) -> Result<&'a [u8]> {
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| start.checked_add(l))
        .filter(|&e| e <= data.len());
    match end.and_then(|e| data.get(start..e)) {
        Some(s) => Ok(s),
        None => Err(Error::new(
            structure,
            at,
            ErrorKind::Truncated {
                needed: (start as u64).saturating_add(len),
                available: data.len() as u64,
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::test_support::fixed_array::*;
    use crate::format::test_support::hex;

    #[test]
    fn header_good_and_checksum() {
        let h = header_bytes(0, 8, 10, 100, 0x2e7);
        let p = parse_header(&h, 447, Sizes::DEFAULT).unwrap();
        assert_eq!(
            (p.client_id, p.entry_size, p.page_bits, p.max_num_entries),
            (0, 8, 10, 100)
        );
        assert_eq!(
            (p.data_block_address, p.size, p.checksum_ok),
            (0x2e7, 28, true)
        );
        let mut bad = h.clone();
        bad[10] ^= 1;
        assert!(!parse_header(&bad, 0, Sizes::DEFAULT).unwrap().checksum_ok);
        for n in 0..h.len() {
            assert!(parse_header(&h[..n], 0, Sizes::DEFAULT).is_err(), "{n}");
        }
        let mut v = h.clone();
        v[4] = 1;
        assert!(matches!(
            parse_header(&v, 0, Sizes::DEFAULT).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(1)
        ));
        assert!(parse_header(b"FAHX\0\0\0\0", 0, Sizes::DEFAULT).is_err());
        let c = header_bytes(7, 8, 10, 1, 0);
        assert!(parse_header(&c, 0, Sizes::DEFAULT).is_err());
    }

    /// A real header from h5py 3.16 / HDF5 2.0 (gzip dataset, 100 chunks).
    #[test]
    fn real_filtered_header() {
        let h = hex("464148440001140a6400000000000000c0170000000000009f170a84");
        let p = parse_header(&h, 1561, Sizes::DEFAULT).unwrap();
        assert!(p.checksum_ok);
        assert_eq!((p.client_id, p.entry_size, p.max_num_entries), (1, 20, 100));
        let f = p.element_format(0, Sizes::DEFAULT).unwrap();
        assert_eq!((f.filtered, f.chunk_size_len), (true, 8));
    }

    #[test]
    fn element_format_checks() {
        let s = Sizes::DEFAULT;
        assert!(ElementFormat::new("x", 0, 0, 8, s).is_ok());
        assert!(ElementFormat::new("x", 0, 0, 9, s).is_err());
        assert_eq!(
            ElementFormat::new("x", 0, 1, 15, s).unwrap().chunk_size_len,
            3
        );
        assert!(ElementFormat::new("x", 0, 1, 12, s).is_err());
        assert!(ElementFormat::new("x", 0, 1, 21, s).is_err());
        assert!(ElementFormat::new("x", 0, 1, 0, s).is_err());
        assert!(ElementFormat::new("x", 0, 2, 8, s).is_err());
        let f = ElementFormat::new("x", 0, 1, 15, s).unwrap();
        let mut raw = 5u64.to_le_bytes().to_vec();
        raw.extend_from_slice(&[1, 2, 0, 9, 0, 0, 0]);
        assert_eq!(
            f.decode(&raw, 3),
            Some(ChunkElement {
                index: 3,
                address: 5,
                size: Some(0x201),
                filter_mask: 9
            })
        );
        assert_eq!(f.decode(&raw[..14], 3), None);
    }

    #[test]
    fn bitmap_is_msb_first() {
        // 0x48 was written by HDF5 2.0 for pages 1 and 4 of 5.
        let bm = [0x48u8];
        let set: Vec<u64> = (0..8).filter(|&i| page_initialized(&bm, i)).collect();
        assert_eq!(set, vec![1, 4]);
        assert!(!page_initialized(&bm, 1 << 40));
    }
}

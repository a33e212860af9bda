//! Traversal of fixed array chunk indexes (spec VII.A): header, data block
//! and its pages through the file image, and the search of an orphan data
//! block. Structures are parsed by [`crate::format::fixed_array`].

use super::Image;
use crate::format::bad_checksum;
use crate::format::fixed_array::*;
use crate::format::{Error, Result, UNDEFINED};

/// Reports (once per array) chunks whose bytes would lie past the end of the
/// file; the chunks are still returned. `unfiltered_chunk_bytes` is the size
/// of non-filtered chunks (filtered ones carry their own size).
pub(crate) fn check_chunk_extents(
    structure: &'static str,
    image: &Image,
    header_at: u64,
    chunks: &[ChunkElement],
    unfiltered_chunk_bytes: u64,
    errors: &mut Vec<Error>,
) {
    let outside = chunks
        .iter()
        .filter(|c| !image.contains(c.address, c.size.unwrap_or(unfiltered_chunk_bytes)))
        .count();
    if let Some(first) = chunks
        .iter()
        .find(|c| !image.contains(c.address, c.size.unwrap_or(unfiltered_chunk_bytes)))
    {
        errors.push(Error::invalid(
            structure,
            header_at,
            format!(
                "{outside} chunk(s) extend past the end of the file (first: index {} at {:#x})",
                first.index, first.address
            ),
        ));
    }
}

/// Walks the fixed array whose header is at relative address `header_addr`
/// and returns its allocated chunks (ascending index) plus every fault met.
/// A node (header, data block, page) with a bad checksum is reported and
/// skipped; uninitialized pages are not read. Never panics; the work is
/// bounded by the file size.
pub fn collect_chunks(
    image: &Image,
    header_addr: u64,
    unfiltered_chunk_bytes: u64,
) -> (Vec<ChunkElement>, Vec<Error>) {
    let mut chunks = Vec::new();
    let mut errors = Vec::new();
    let header_at = image.base.saturating_add(header_addr);
    if let Err(e) = walk(image, header_addr, None, &mut chunks, &mut errors) {
        errors.push(e);
    }
    check_chunk_extents(
        HEADER,
        image,
        header_at,
        &chunks,
        unfiltered_chunk_bytes,
        &mut errors,
    );
    (chunks, errors)
}

/// The data block of a fixed array whose header (at relative
/// `header_addr`) was written before its data block was allocated: a
/// killed writer's header says "no data block" while the block, which
/// carries its header's address (spec VII.C), reached the disk. Among the
/// `FADB` hits at absolute offsets `candidates`, the one naming the header
/// is read as the walk would read it; with a data block address in the
/// header nothing is searched, and two candidates are ambiguous (neither is
/// used). Returns the block's absolute offset and its chunks, and faults.
pub fn collect_orphan_data_block(
    image: &Image,
    header_addr: u64,
    candidates: &[u64],
) -> (Option<(u64, Vec<ChunkElement>)>, Vec<Error>) {
    let sizes = image.sizes;
    let header_at = image.base.saturating_add(header_addr);
    let header = match image
        .at(HEADER, header_addr)
        .and_then(|d| parse_header(d, header_at, sizes))
    {
        Ok(h) if h.checksum_ok && h.data_block_address == UNDEFINED => h,
        _ => return (None, Vec::new()),
    };
    let mine: Vec<u64> = candidates
        .iter()
        .filter(|&&abs| {
            let Some(addr) = abs.checked_sub(image.base) else {
                return false;
            };
            image
                .at(DATA_BLOCK, addr)
                .and_then(|d| parse_data_block(d, abs, sizes, &header))
                .is_ok_and(|b| b.checksum_ok && b.header_address == header_addr)
        })
        .copied()
        .collect();
    let mut errors = Vec::new();
    match mine.as_slice() {
        [abs] => {
            let mut chunks = Vec::new();
            let addr = abs - image.base;
            if let Err(e) = walk(image, header_addr, Some(addr), &mut chunks, &mut errors) {
                errors.push(e);
            }
            (Some((*abs, chunks)), errors)
        }
        [] => (None, errors),
        _ => {
            errors.push(Error::invalid(
                HEADER,
                header_at,
                format!(
                    "{} data blocks name this header, which lists none: not used (ambiguous)",
                    mine.len()
                ),
            ));
            (None, errors)
        }
    }
}

fn walk(
    image: &Image,
    header_addr: u64,
    orphan_block: Option<u64>,
    chunks: &mut Vec<ChunkElement>,
    errors: &mut Vec<Error>,
) -> Result<()> {
    let sizes = image.sizes;
    let header_at = image.base.saturating_add(header_addr);
    let data = image.at(HEADER, header_addr)?;
    let header = parse_header(data, header_at, sizes)?;
    if !header.checksum_ok {
        return Err(bad_checksum(HEADER, header_at, data, header.size));
    }
    image.known(HEADER, header_addr, header.size);
    let format = header.element_format(header_at, sizes)?;
    let block_addr = orphan_block.unwrap_or(header.data_block_address);
    if block_addr == UNDEFINED {
        return Ok(());
    }
    let block_at = image.base.saturating_add(block_addr);
    let data = image.at(DATA_BLOCK, block_addr)?;
    let block = parse_data_block(data, block_at, sizes, &header)?;
    if !block.checksum_ok {
        return Err(bad_checksum(DATA_BLOCK, block_at, data, block.prefix_size));
    }
    if block.header_address != header_addr {
        return Err(Error::bad_value(
            DATA_BLOCK,
            block_at.saturating_add(6),
            "header address",
            block.header_address,
        ));
    }
    image.known(DATA_BLOCK, block_addr, block.prefix_size);
    let paging = header.paging();
    if paging.npages == 0 {
        chunks.extend(block.elements);
        return Ok(());
    }
    let page_bytes = paging
        .page_nelmts
        .checked_mul(u64::from(format.element_size))
        .and_then(|b| b.checked_add(4))
        .ok_or_else(|| Error::bad_value(HEADER, header_at, "page bits", 64))?;
    for i in 0..paging.npages {
        if !page_initialized(&block.page_bitmap, i) {
            continue;
        }
        let page_addr = i
            .checked_mul(page_bytes)
            .and_then(|o| o.checked_add(block.prefix_size))
            .and_then(|o| o.checked_add(block_addr));
        let Some(page_addr) = page_addr else {
            return Err(Error::invalid(
                DATA_BLOCK,
                block_at,
                "page address overflow",
            ));
        };
        let page_at = image.base.saturating_add(page_addr);
        let first = i.saturating_mul(paging.page_nelmts);
        let page = image
            .at(PAGE, page_addr)
            .and_then(|d| parse_page(d, page_at, format, first, paging.page_elements(i)));
        match page {
            Ok(p) if p.checksum_ok => {
                image.known(PAGE, page_addr, p.size);
                chunks.extend(p.elements)
            }
            Ok(p) => {
                let d = image.at(PAGE, page_addr).unwrap_or_default();
                errors.push(bad_checksum(PAGE, page_at, d, p.size));
            }
            // A truncated page means every later page is missing too.
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follow::Image;
    use crate::format::test_support::fixed_array::*;
    use crate::format::test_support::seal;
    use crate::format::{ErrorKind, Sizes};

    /// File image: header at 0, data block at 64, pages after it.
    fn unpaged_file() -> Vec<u8> {
        let mut f = header_bytes(1, 20, 10, 3, 64);
        f.resize(64, 0);
        let mut b = b"FADB".to_vec();
        b.extend_from_slice(&[0, 1]);
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend(filtered(1000, 30, 0));
        b.extend(filtered(UNDEFINED, 0, 0));
        b.extend(filtered(1100, 31, 2));
        f.extend(seal(b));
        f.resize(1200, 0);
        f
    }

    #[test]
    fn orphan_data_block_of_a_header_that_lists_none() {
        let mut f = unpaged_file();
        // A header listing its block: nothing is searched.
        let (b, e) = collect_orphan_data_block(&Image::new(&f, 0, Sizes::DEFAULT), 0, &[64]);
        assert!(b.is_none() && e.is_empty());
        // Written before the block was allocated: the block naming it is read.
        let h = header_bytes(1, 20, 10, 3, UNDEFINED);
        f[..h.len()].copy_from_slice(&h);
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        let (b, e) = collect_orphan_data_block(&img, 0, &[10, 64, 5000]);
        assert!(e.is_empty(), "{e:?}");
        let (at, chunks) = b.unwrap();
        assert_eq!(at, 64);
        let got: Vec<(u64, u64)> = chunks.iter().map(|c| (c.index, c.address)).collect();
        assert_eq!(got, vec![(0, 1000), (2, 1100)]);
        // Two blocks naming it: ambiguous, neither is used.
        let block = f[64..64 + 78].to_vec();
        f.resize(1200, 0);
        f.extend(&block);
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        let (b, e) = collect_orphan_data_block(&img, 0, &[64, 1200]);
        assert!(b.is_none());
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn unpaged_collect_and_truncation() {
        let f = unpaged_file();
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        let (c, e) = collect_chunks(&img, 0, 40);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[1],
            ChunkElement {
                index: 2,
                address: 1100,
                size: Some(31),
                filter_mask: 2
            }
        );
        let hdr = parse_header(&f, 0, Sizes::DEFAULT).unwrap();
        let blk = &f[64..64 + 10 + 60 + 4];
        for n in 0..blk.len() {
            assert!(
                parse_data_block(&blk[..n], 64, Sizes::DEFAULT, &hdr).is_err(),
                "{n}"
            );
        }
        // Truncated files: never panic, report something.
        for n in 0..f.len() {
            let img = Image::new(&f[..n], 0, Sizes::DEFAULT);
            let (c, e) = collect_chunks(&img, 0, 40);
            assert!(!e.is_empty() || c.len() == 2, "{n}");
        }
        // Chunk past EOF is reported but returned.
        let img = Image::new(&f[..1120], 0, Sizes::DEFAULT);
        let (c, e) = collect_chunks(&img, 0, 40);
        assert_eq!((c.len(), e.len()), (2, 1));
    }

    #[test]
    fn bad_checksums_are_reported() {
        let mut f = unpaged_file();
        f[64 + 20] ^= 0xff;
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        let (c, e) = collect_chunks(&img, 0, 40);
        assert!(c.is_empty());
        assert!(matches!(e[0].kind, ErrorKind::BadChecksum { .. }), "{e:?}");
        let mut f = unpaged_file();
        f[9] ^= 1;
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        let (c, e) = collect_chunks(&img, 0, 40);
        assert!(c.is_empty() && matches!(e[0].kind, ErrorKind::BadChecksum { .. }));
    }

    /// Non-filtered, page bits 1 (2 elements per page), 5 elements: 3 pages,
    /// page 1 uninitialized, page 2 has a bad checksum in a second variant.
    fn paged_file(corrupt_page2: bool) -> Vec<u8> {
        let mut f = header_bytes(0, 8, 1, 5, 64);
        f.resize(64, 0);
        let mut b = b"FADB".to_vec();
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&0u64.to_le_bytes());
        b.push(0b1010_0000);
        f.extend(seal(b));
        let mut p0 = 500u64.to_le_bytes().to_vec();
        p0.extend_from_slice(&UNDEFINED.to_le_bytes());
        f.extend(seal(p0));
        f.extend(vec![0xAB; 20]); // page 1: never written
        let mut p2 = seal(600u64.to_le_bytes().to_vec());
        if corrupt_page2 {
            p2[0] ^= 1;
        }
        f.extend(p2);
        f.resize(700, 0);
        f
    }

    #[test]
    fn paged_collect() {
        let f = paged_file(false);
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        let (c, e) = collect_chunks(&img, 0, 8);
        assert!(e.is_empty(), "{e:?}");
        let got: Vec<_> = c.iter().map(|c| (c.index, c.address)).collect();
        assert_eq!(got, vec![(0, 500), (4, 600)]);
        let f = paged_file(true);
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        let (c, e) = collect_chunks(&img, 0, 8);
        assert_eq!(c.len(), 1);
        assert!(matches!(e[0].kind, ErrorKind::BadChecksum { .. }));
        for n in 0..f.len() {
            let _ = collect_chunks(&Image::new(&f[..n], 0, Sizes::DEFAULT), 0, 8);
        }
    }

    #[test]
    fn hostile_counts() {
        // 2^64-1 entries unpaged, 2^64-1 entries with 0 page bits, and an
        // undefined data block address.
        for (bits, n) in [(64u8, u64::MAX), (0, u64::MAX), (255, 1 << 40)] {
            let mut f = header_bytes(0, 8, bits, n, 64);
            f.resize(64, 0);
            let mut b = b"FADB".to_vec();
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(&0u64.to_le_bytes());
            f.extend(seal(b));
            f.resize(200, 0xff);
            let (c, e) = collect_chunks(&Image::new(&f, 0, Sizes::DEFAULT), 0, 8);
            assert!(c.is_empty() && !e.is_empty());
        }
        let f = header_bytes(0, 8, 10, 10, UNDEFINED);
        let (c, e) = collect_chunks(&Image::new(&f, 0, Sizes::DEFAULT), 0, 8);
        assert!(c.is_empty() && e.is_empty());
        let (c, e) = collect_chunks(&Image::new(&f, 0, Sizes::DEFAULT), UNDEFINED, 8);
        assert!(c.is_empty() && e.len() == 1);
        assert_eq!(Paging::new(u64::MAX, 0).bitmap_len(), u64::MAX / 8 + 1);
    }
}

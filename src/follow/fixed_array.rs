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
            Ok(p) if p.checksum_ok => chunks.extend(p.elements),
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

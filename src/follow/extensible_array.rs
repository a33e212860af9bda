//! Traversal of extensible array chunk indexes (spec VII.B): header, index
//! block, secondary blocks, data blocks and pages through the file image,
//! and the placement of orphan data blocks. Structures are parsed by
//! [`crate::format::extensible_array`].

use std::collections::HashSet;

use super::fixed_array::check_chunk_extents;
use super::Image;
use crate::format::extensible_array::*;
use crate::format::fixed_array::page_initialized;
use crate::format::{bad_checksum, block_prefix};
use crate::format::{uint, Error, Result, UNDEFINED};

/// State of one walk: results, faults, and the bounds that keep it linear.
struct Walk<'i, 'a> {
    image: &'i Image<'a>,
    header: ExtensibleArrayHeader,
    header_addr: u64,
    geometry: ExtensibleArrayGeometry,
    chunks: Vec<ChunkElement>,
    errors: Vec<Error>,
    visited: HashSet<u64>,
    /// Array offset (first element after the index block's) of every data
    /// block read, by address.
    slots: Vec<(u64, u64)>,
    /// Reading blocks no index reaches: a page that fails its checksum was
    /// never written (no bitmap says which were) and is skipped unreported.
    orphan: bool,
    /// Bytes of data blocks and pages still allowed to be read.
    budget: u64,
}

/// Walks the extensible array whose header is at relative address
/// `header_addr` and returns its allocated chunks plus every fault met.
/// Nodes with a bad checksum are reported and skipped; uninitialized pages
/// are not read; each block is read at most once and the bytes read are
/// bounded by twice the file size. Never panics.
pub fn collect_chunks(
    image: &Image,
    header_addr: u64,
    unfiltered_chunk_bytes: u64,
) -> (Vec<ChunkElement>, Vec<Error>) {
    let header_at = image.base.saturating_add(header_addr);
    let mut errors = Vec::new();
    let mut chunks = Vec::new();
    match start(image, header_addr) {
        Ok(Some((header, geometry))) => {
            let mut w = Walk::new(image, header, header_addr, geometry);
            if let Err(e) = w.index_block() {
                w.errors.push(e);
            }
            w.chunks.sort_by_key(|c| c.index);
            chunks = w.chunks;
            errors = w.errors;
        }
        Ok(None) => {}
        Err(e) => errors.push(e),
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

/// Data blocks of one array found by signature that its index does not
/// reach (issue 13: a killed writer's index block and secondary blocks stay
/// in libhdf5's metadata cache while newer data blocks reach the disk).
pub struct OrphanBlocks {
    /// (absolute offset of the block, its allocated chunks numbered by the
    /// block's position) for every block placed.
    pub blocks: Vec<(u64, Vec<ChunkElement>)>,
    /// Blocks naming this header that could not be placed (ambiguous block
    /// offset, a position another block holds, a bad checksum).
    pub errors: Vec<Error>,
}

/// Reads the `EADB` blocks at absolute offsets `candidates` that name the
/// header at relative address `header_addr` (spec VII.D: a data block
/// carries its header's address and its "Block Offset") and that the walk
/// from the header does not reach. A block's position follows from its
/// block offset: the super block and data block whose offset (or, for the
/// index block's own data blocks, libhdf5's variant, see the module docs)
/// it equals, among the positions no reachable block holds. An offset that
/// fits two free positions of the same size is ambiguous and the block is
/// not used; two orphans at one position are both rejected. The header's
/// creation parameters (element size, block sizes) never change, so a stale
/// header still describes every block. Bounded like [`collect_chunks`].
pub fn collect_orphan_data_blocks(
    image: &Image,
    header_addr: u64,
    candidates: &[u64],
) -> OrphanBlocks {
    let mut out = OrphanBlocks {
        blocks: Vec::new(),
        errors: Vec::new(),
    };
    let at = image.base.saturating_add(header_addr);
    let (header, geometry) = match image
        .at(HEADER, header_addr)
        .and_then(|d| parse_header(d, at, image.sizes).map(|h| (h, d)))
    {
        Ok((h, _)) if h.checksum_ok => match h.geometry(at, image.sizes) {
            Ok(g) => (h, g),
            Err(e) => {
                out.errors.push(e);
                return out;
            }
        },
        Ok((h, d)) => {
            out.errors.push(bad_checksum(HEADER, at, d, h.size));
            return out;
        }
        Err(e) => {
            out.errors.push(e);
            return out;
        }
    };
    let mut w = Walk::new(image, header, header_addr, geometry);
    if w.header.index_block_address != UNDEFINED {
        // Which blocks the index reaches, and where: errors are the walk's.
        let _ = w.index_block();
    }
    let taken: HashSet<u64> = w.slots.iter().map(|&(_, o)| o).collect();
    // (candidate address, its position, elements in the block)
    let mut placed: Vec<(u64, u64, u64)> = Vec::new();
    for &abs in candidates {
        let Some(addr) = abs.checked_sub(image.base) else {
            continue;
        };
        if w.visited.contains(&addr) {
            continue;
        }
        let Ok(data) = image.at(DATA_BLOCK, addr) else {
            continue;
        };
        let client = w.header.client_id;
        let Ok((rest, _, owner)) = block_prefix(
            DATA_BLOCK,
            DATA_BLOCK_SIGNATURE,
            data,
            abs,
            image.sizes,
            Some(client),
        ) else {
            continue;
        };
        if owner != header_addr {
            continue;
        }
        let Ok((_, stored)) = uint(w.geometry.block_offset_size)(rest) else {
            continue;
        };
        let fits: Vec<(u64, u64)> = positions(&w.geometry, stored)
            .into_iter()
            .filter(|(o, _)| !taken.contains(o))
            .collect();
        match fits.as_slice() {
            [(offset, nelmts)] => placed.push((addr, *offset, *nelmts)),
            [] => out.errors.push(Error::bad_value(DATA_BLOCK, abs, "block offset (no free position of the array fits it)", stored)),
            _ => out.errors.push(Error::invalid(
                DATA_BLOCK,
                abs,
                format!("block offset {stored} fits {} free positions of the array: not placed (ambiguous)", fits.len()),
            )),
        }
    }
    let mut count: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for &(_, o, _) in &placed {
        *count.entry(o).or_default() += 1;
    }
    w.orphan = true;
    for (addr, offset, nelmts) in placed {
        let abs = image.base.saturating_add(addr);
        if count.get(&offset).copied().unwrap_or(0) > 1 {
            out.errors.push(Error::invalid(
                DATA_BLOCK,
                abs,
                format!(
                    "another unreachable data block claims array offset {offset}: neither is used"
                ),
            ));
            continue;
        }
        w.chunks.clear();
        w.errors.clear();
        // Both accepted stored forms, as the walk would.
        let stored = [offset, quirk_offset(&w.geometry, offset).unwrap_or(offset)];
        if let Err(e) = w.data_block(addr, nelmts, stored, None) {
            out.errors.push(e);
            break;
        }
        out.errors.append(&mut w.errors);
        if !w.chunks.is_empty() {
            out.blocks.push((abs, std::mem::take(&mut w.chunks)));
        }
    }
    out
}

/// Every (array offset, elements per block) position whose stored block
/// offset can be `stored`: the plain form, and libhdf5's form for the data
/// blocks the index block lists (see the module docs).
pub(crate) fn positions(g: &ExtensibleArrayGeometry, stored: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for (s, info) in g.super_blocks.iter().enumerate() {
        let n = info.data_block_elements;
        if let Some(d) = stored
            .checked_sub(info.start_index)
            .filter(|r| r % n == 0)
            .map(|r| r / n)
        {
            if d < info.data_blocks {
                out.push((stored, n));
            }
        }
        if s < g.index_block_super_blocks {
            for d in 0..info.data_blocks {
                let q = info
                    .start_data_block
                    .saturating_add(d)
                    .saturating_mul(n)
                    .saturating_add(info.start_index);
                let plain = info.start_index.saturating_add(d.saturating_mul(n));
                if q == stored && q != plain {
                    out.push((plain, n));
                }
            }
        }
    }
    out
}

/// libhdf5's stored block offset for the index block's data block at array
/// offset `offset` (None when `offset` is not such a block).
pub(crate) fn quirk_offset(g: &ExtensibleArrayGeometry, offset: u64) -> Option<u64> {
    g.super_blocks
        .iter()
        .take(g.index_block_super_blocks)
        .find_map(|info| {
            let n = info.data_block_elements;
            let d = offset
                .checked_sub(info.start_index)
                .filter(|r| r % n == 0)?
                / n;
            (d < info.data_blocks).then(|| {
                info.start_data_block
                    .saturating_add(d)
                    .saturating_mul(n)
                    .saturating_add(info.start_index)
            })
        })
}

/// Header and geometry, or `None` when no index block was ever written.
fn start(
    image: &Image,
    header_addr: u64,
) -> Result<Option<(ExtensibleArrayHeader, ExtensibleArrayGeometry)>> {
    let at = image.base.saturating_add(header_addr);
    let data = image.at(HEADER, header_addr)?;
    let header = parse_header(data, at, image.sizes)?;
    if !header.checksum_ok {
        return Err(bad_checksum(HEADER, at, data, header.size));
    }
    let geometry = header.geometry(at, image.sizes)?;
    if header.index_block_address == UNDEFINED {
        return Ok(None);
    }
    Ok(Some((header, geometry)))
}

impl<'i, 'a> Walk<'i, 'a> {
    /// A walk of the array at `header_addr`; it may read data blocks and
    /// pages up to twice the file's size in all.
    fn new(
        image: &'i Image<'a>,
        header: ExtensibleArrayHeader,
        header_addr: u64,
        geometry: ExtensibleArrayGeometry,
    ) -> Self {
        Walk {
            image,
            header,
            header_addr,
            geometry,
            chunks: Vec::new(),
            errors: Vec::new(),
            visited: HashSet::new(),
            slots: Vec::new(),
            orphan: false,
            budget: image.len().saturating_mul(2).saturating_add(4096),
        }
    }
}

impl Walk<'_, '_> {
    fn abs(&self, addr: u64) -> u64 {
        self.image.base.saturating_add(addr)
    }

    /// Rejects a child whose header address is not ours.
    fn owned(&self, structure: &'static str, at: u64, header_address: u64) -> Result<()> {
        if header_address == self.header_addr {
            Ok(())
        } else {
            Err(Error::bad_value(
                structure,
                at.saturating_add(6),
                "header address",
                header_address,
            ))
        }
    }

    fn index_block(&mut self) -> Result<()> {
        let addr = self.header.index_block_address;
        let at = self.abs(addr);
        let data = self.image.at(INDEX_BLOCK, addr)?;
        let sizes = self.image.sizes;
        let block = parse_index_block(data, at, sizes, &self.header, &self.geometry)?;
        if !block.checksum_ok {
            return Err(bad_checksum(INDEX_BLOCK, at, data, block.size));
        }
        self.owned(INDEX_BLOCK, at, block.header_address)?;
        self.chunks.extend(block.elements);
        let direct = self
            .geometry
            .super_blocks
            .iter()
            .take(self.geometry.index_block_super_blocks)
            .copied()
            .collect::<Vec<_>>();
        for info in direct {
            for d in 0..info.data_blocks {
                let slot = usize::try_from(info.start_data_block.saturating_add(d)).ok();
                let Some(&dblk) = slot.and_then(|i| block.data_block_addresses.get(i)) else {
                    break;
                };
                let offset = info
                    .start_index
                    .saturating_add(d.saturating_mul(info.data_block_elements));
                // libhdf5 writes `start + (start_data_block + d) * nelmts`
                // here (see the module docs); accept both.
                let quirk = info.start_index.saturating_add(
                    info.start_data_block
                        .saturating_add(d)
                        .saturating_mul(info.data_block_elements),
                );
                self.data_block(dblk, info.data_block_elements, [offset, quirk], None)?;
            }
        }
        let first = self.geometry.index_block_super_blocks;
        for (j, &sblk) in block.secondary_block_addresses.iter().enumerate() {
            if sblk != UNDEFINED {
                self.secondary_block(sblk, first + j)?;
            }
        }
        Ok(())
    }

    fn secondary_block(&mut self, addr: u64, s: usize) -> Result<()> {
        let Some(info) = self.geometry.super_blocks.get(s).copied() else {
            return Ok(());
        };
        let at = self.abs(addr);
        let sizes = self.image.sizes;
        let parsed = self.image.at(SECONDARY_BLOCK, addr).and_then(|data| {
            parse_secondary_block(data, at, sizes, &self.header, &self.geometry, s)
                .map(|b| (b, data))
        });
        let block = match parsed {
            Ok((b, _)) if b.checksum_ok => b,
            Ok((b, data)) => {
                self.errors
                    .push(bad_checksum(SECONDARY_BLOCK, at, data, b.size));
                return Ok(());
            }
            Err(e) => {
                self.errors.push(e);
                return Ok(());
            }
        };
        if let Err(e) = self.owned(SECONDARY_BLOCK, at, block.header_address) {
            self.errors.push(e);
            return Ok(());
        }
        if block.block_offset != info.start_index {
            self.errors.push(Error::bad_value(
                SECONDARY_BLOCK,
                at,
                "block offset",
                block.block_offset,
            ));
            return Ok(());
        }
        let npages = self.geometry.paging(info.data_block_elements).npages;
        for (d, &dblk) in (0u64..).zip(&block.data_block_addresses) {
            let offset = info
                .start_index
                .saturating_add(d.saturating_mul(info.data_block_elements));
            let bitmap = (npages > 0).then_some((block.page_bitmap.as_slice(), d * npages));
            self.data_block(dblk, info.data_block_elements, [offset, offset], bitmap)?;
        }
        Ok(())
    }

    /// Reads one data block; errors in it are recorded, not returned, except
    /// an exhausted budget, which ends the walk.
    fn data_block(
        &mut self,
        addr: u64,
        nelmts: u64,
        offsets: [u64; 2],
        bitmap: Option<(&[u8], u64)>,
    ) -> Result<()> {
        if addr == UNDEFINED || !self.visited.insert(addr) {
            return Ok(());
        }
        let at = self.abs(addr);
        let sizes = self.image.sizes;
        let parsed = self.image.at(DATA_BLOCK, addr).and_then(|data| {
            parse_data_block(data, at, sizes, &self.header, &self.geometry, nelmts)
                .map(|b| (b, data))
        });
        let block = match parsed {
            Ok((b, _)) if b.checksum_ok => b,
            Ok((b, data)) => {
                self.errors
                    .push(bad_checksum(DATA_BLOCK, at, data, b.prefix_size));
                return Ok(());
            }
            Err(e) => {
                self.errors.push(e);
                return Ok(());
            }
        };
        self.spend(block.prefix_size, at)?;
        if let Err(e) = self.owned(DATA_BLOCK, at, block.header_address) {
            self.errors.push(e);
            return Ok(());
        }
        if !offsets.contains(&block.block_offset) {
            self.errors.push(Error::bad_value(
                DATA_BLOCK,
                at,
                "block offset",
                block.block_offset,
            ));
            return Ok(());
        }
        // Number the elements by the block's position, not its stored offset.
        self.slots.push((addr, offsets[0]));
        let first = u64::from(self.header.index_block_elements).saturating_add(offsets[0]);
        if block.npages == 0 {
            let stored =
                u64::from(self.header.index_block_elements).saturating_add(block.block_offset);
            self.chunks.extend(block.elements.into_iter().map(|mut c| {
                c.index = c.index.saturating_sub(stored).saturating_add(first);
                c
            }));
            return Ok(());
        }
        self.pages(addr, &block, nelmts, first, bitmap)
    }

    fn pages(
        &mut self,
        addr: u64,
        block: &ExtensibleArrayDataBlock,
        nelmts: u64,
        first: u64,
        bitmap: Option<(&[u8], u64)>,
    ) -> Result<()> {
        let paging = self.geometry.paging(nelmts);
        let format = self.geometry.element_format;
        let page_bytes = paging
            .page_nelmts
            .saturating_mul(u64::from(format.element_size))
            .saturating_add(4);
        for p in 0..paging.npages {
            if let Some((bits, base)) = bitmap {
                if !page_initialized(bits, base.saturating_add(p)) {
                    continue;
                }
            }
            let Some(page_addr) = p
                .checked_mul(page_bytes)
                .and_then(|o| o.checked_add(block.prefix_size))
                .and_then(|o| o.checked_add(addr))
            else {
                break;
            };
            let at = self.abs(page_addr);
            self.spend(page_bytes, at)?;
            let index = first.saturating_add(p.saturating_mul(paging.page_nelmts));
            let page = self.image.at(PAGE, page_addr).and_then(|d| {
                parse_page(d, at, format, index, paging.page_elements(p)).map(|pg| (pg, d))
            });
            match page {
                Ok((pg, _)) if pg.checksum_ok => self.chunks.extend(pg.elements),
                Ok(_) if self.orphan => {}
                Ok((pg, d)) => self.errors.push(bad_checksum(PAGE, at, d, pg.size)),
                Err(e) => {
                    // Later pages lie further on: they are missing too.
                    self.errors.push(e);
                    break;
                }
            }
        }
        Ok(())
    }

    fn spend(&mut self, bytes: u64, at: u64) -> Result<()> {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(Error::invalid(
                DATA_BLOCK,
                at,
                "extensible array reads more than twice the file size (overlapping blocks?)",
            )),
        }
    }
}

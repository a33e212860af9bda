//! Fractal heap objects (spec III.G): the direct block that holds a heap
//! offset (descending the doubling table's indirect blocks), managed and
//! huge objects' bytes (de-filtered), and the listing of every direct block.
//! Headers, blocks and heap IDs are parsed by [`crate::format::fractal_heap`].

use std::collections::HashSet;

use super::Image;
use crate::format::checksum;
use crate::format::fractal_heap::*;
use crate::format::message::filter_pipeline;
use crate::format::{Error, ErrorKind, Result, Sizes, UNDEFINED};
use crate::read::filters::inflate_capped;

/// Where a heap offset lives: one direct block of the doubling table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectBlockRef {
    /// Heap offset of the block's first byte.
    pub heap_offset: u64,
    /// Address of the block.
    pub address: u64,
    /// Size of the (unfiltered) block in the doubling table.
    pub size: u64,
    /// On-disk size if the heap is filtered.
    pub filtered_size: Option<u64>,
    /// Filter mask if the heap is filtered.
    pub filter_mask: Option<u32>,
}

/// The bytes of the managed object at heap `offset` with `length` bytes,
/// for the heap whose header (parsed as `header`) is at relative address
/// `header_addr`.
///
/// Walks the doubling table from the root (depth-limited, refusing to visit
/// an indirect block twice), checks every block's signature, owner address,
/// block offset and checksum (a mismatch is an error here), de-filters
/// deflate-only heaps, and copies the object only after checking that it
/// lies inside the block's object data.
pub fn read_managed_object(
    image: &Image,
    header_addr: u64,
    header: &FractalHeapHeader,
    offset: u64,
    length: u64,
) -> Result<Vec<u8>> {
    let at = image.absolute(header_addr).unwrap_or(header_addr);
    let table = header.doubling_table(at)?;
    let block = locate_direct_block(image, header_addr, header, &table, offset)?;
    let bytes = load_direct_block(image, header, &block)?;
    let block_at = image.absolute(block.address).unwrap_or(block.address);
    let db = parse_direct_block(&bytes, block_at, header, block.size)?;
    check_owner(
        DIRECT,
        block_at,
        &db_owner(&db),
        header_addr,
        block.heap_offset,
    )?;
    if db.checksum_ok == Some(false) {
        return Err(Error::new(
            DIRECT,
            block_at,
            ErrorKind::BadChecksum {
                stored: db.checksum.unwrap_or(0),
                computed: db.computed_checksum.unwrap_or(0),
            },
        ));
    }
    let rel = offset.checked_sub(block.heap_offset);
    let range = rel.filter(|&r| r >= db.prefix_size).and_then(|r| {
        Some(usize::try_from(r).ok()?..usize::try_from(r.checked_add(length)?).ok()?)
    });
    match range.and_then(|r| bytes.get(r)) {
        Some(object) => Ok(object.to_vec()),
        None => Err(Error::invalid(
            DIRECT,
            block_at,
            format!(
                "object at heap offset {offset} (+{length}) is outside the object data of the block at heap offset {}",
                block.heap_offset
            ),
        )),
    }
}

fn db_owner(db: &DirectBlock) -> (u64, u64) {
    (db.heap_header_address, db.block_offset)
}

fn check_owner(
    structure: &'static str,
    at: u64,
    (owner, block_offset): &(u64, u64),
    header_addr: u64,
    expected_offset: u64,
) -> Result<()> {
    if *owner != header_addr {
        return Err(Error::invalid(
            structure,
            at,
            format!("belongs to the heap at {owner:#x}, not {header_addr:#x}"),
        ));
    }
    if *block_offset != expected_offset {
        return Err(Error::invalid(
            structure,
            at,
            format!("block offset {block_offset}, expected {expected_offset}"),
        ));
    }
    Ok(())
}

/// Finds the direct block holding heap `offset` by descending from the root.
fn locate_direct_block(
    image: &Image,
    header_addr: u64,
    header: &FractalHeapHeader,
    table: &DoublingTable,
    offset: u64,
) -> Result<DirectBlockRef> {
    let root = header.root_block_address;
    let hdr_at = image.absolute(header_addr).unwrap_or(header_addr);
    if root == UNDEFINED {
        return Err(Error::invalid(HEADER, hdr_at, "the heap has no root block"));
    }
    if header.current_root_rows == 0 {
        if offset >= table.starting_block_size {
            return Err(Error::invalid(
                HEADER,
                hdr_at,
                format!("heap offset {offset} is beyond the root direct block"),
            ));
        }
        return Ok(DirectBlockRef {
            heap_offset: 0,
            address: root,
            size: table.starting_block_size,
            filtered_size: header.filtered_root_direct_block_size,
            filter_mask: header.root_direct_block_filter_mask,
        });
    }
    let mut visited = HashSet::new();
    let mut address = root;
    let mut nrows = u32::from(header.current_root_rows);
    let mut block_offset = 0u64;
    for _ in 0..MAX_DEPTH {
        let ib_at = image.absolute(address).unwrap_or(address);
        if !visited.insert(address) {
            return Err(Error::invalid(
                INDIRECT,
                ib_at,
                "indirect block visited twice (a loop)",
            ));
        }
        let ib = read_indirect_block(image, address, header, nrows)?;
        check_owner(
            INDIRECT,
            ib_at,
            &(ib.heap_header_address, ib.block_offset),
            header_addr,
            block_offset,
        )?;
        let rel = offset.checked_sub(block_offset).unwrap_or(u64::MAX);
        let Some((row, col, row_start)) = table.locate(rel, nrows) else {
            return Err(Error::invalid(
                INDIRECT,
                ib_at,
                format!("heap offset {offset} is outside this indirect block"),
            ));
        };
        let row_size = table.row_block_size(row).unwrap_or(u64::MAX);
        let child_offset = block_offset
            .checked_add(row_start)
            .and_then(|v| v.checked_add(col.checked_mul(row_size)?))
            .ok_or_else(|| Error::invalid(INDIRECT, ib_at, "heap offset overflow"))?;
        if table.row_is_direct(row) {
            let index = u64::from(row) * table.width + col;
            let entry = usize::try_from(index)
                .ok()
                .and_then(|i| ib.direct.get(i))
                .copied()
                .ok_or_else(|| Error::invalid(INDIRECT, ib_at, "direct entry out of range"))?;
            if entry.address == UNDEFINED {
                return Err(Error::invalid(
                    INDIRECT,
                    ib_at,
                    format!("direct block for heap offset {offset} is not allocated"),
                ));
            }
            return Ok(DirectBlockRef {
                heap_offset: child_offset,
                address: entry.address,
                size: row_size,
                filtered_size: entry.filtered_size,
                filter_mask: entry.filter_mask,
            });
        }
        let index = u64::from(row - table.max_direct_rows) * table.width + col;
        let child = usize::try_from(index)
            .ok()
            .and_then(|i| ib.indirect.get(i))
            .copied()
            .ok_or_else(|| Error::invalid(INDIRECT, ib_at, "indirect entry out of range"))?;
        if child == UNDEFINED {
            return Err(Error::invalid(
                INDIRECT,
                ib_at,
                format!("indirect block for heap offset {offset} is not allocated"),
            ));
        }
        nrows = table
            .child_indirect_rows(row)
            .filter(|&r| r > 0 && r < nrows)
            .ok_or_else(|| Error::bad_value(INDIRECT, ib_at, "child rows", u64::from(row)))?;
        address = child;
        block_offset = child_offset;
    }
    Err(Error::invalid(
        INDIRECT,
        image.absolute(root).unwrap_or(root),
        "indirect blocks nested too deeply",
    ))
}

/// Reads and checks an indirect block (checksum failures are errors).
fn read_indirect_block(
    image: &Image,
    address: u64,
    header: &FractalHeapHeader,
    nrows: u32,
) -> Result<IndirectBlock> {
    let data = image.at(INDIRECT, address)?;
    let at = image.absolute(address).unwrap_or(address);
    let ib = parse_indirect_block(data, at, header, nrows)?;
    if !ib.checksum_ok {
        let len = usize::try_from(ib.size.saturating_sub(4)).unwrap_or(usize::MAX);
        let (stored, computed) = checksum(data, len).unwrap_or((0, 0));
        return Err(Error::new(
            INDIRECT,
            at.saturating_add(len as u64),
            ErrorKind::BadChecksum { stored, computed },
        ));
    }
    Ok(ib)
}

/// The de-filtered bytes of a direct block (`block.size` bytes).
fn load_direct_block(
    image: &Image,
    header: &FractalHeapHeader,
    block: &DirectBlockRef,
) -> Result<Vec<u8>> {
    let at = image.absolute(block.address).unwrap_or(block.address);
    if !header.is_filtered() {
        return Ok(image.slice(DIRECT, block.address, block.size)?.to_vec());
    }
    let stored = block
        .filtered_size
        .ok_or_else(|| Error::invalid(DIRECT, at, "filtered heap without a filtered size"))?;
    let raw = image.slice(DIRECT, block.address, stored)?;
    let filters = filter_ids(&header.io_filter_info).ok_or_else(|| {
        Error::invalid(
            HEADER,
            at,
            "unreadable I/O filter information in the heap header",
        )
    })?;
    let mask = block.filter_mask.unwrap_or(0);
    defilter(DIRECT, at, &filters, raw, mask, block.size)
}

/// Undoes a heap's I/O filters (deflate only) on `raw`, skipping those
/// `mask` disables; the result must be exactly `size` bytes.
fn defilter(
    structure: &'static str,
    at: u64,
    filters: &[u16],
    raw: &[u8],
    mask: u32,
    size: u64,
) -> Result<Vec<u8>> {
    let mut bytes = raw.to_vec();
    // Undo the filters in reverse order, skipping those the mask disables.
    for (i, id) in filters.iter().enumerate().rev() {
        if i < 32 && mask & (1 << i) != 0 {
            continue;
        }
        if *id != filter_pipeline::DEFLATE {
            return Err(Error::invalid(
                structure,
                at,
                format!("fractal heap filter {id} is not supported (only deflate)"),
            ));
        }
        let cap = usize::try_from(size).unwrap_or(usize::MAX);
        bytes = inflate_capped(&bytes, cap).map_err(|e| {
            Error::invalid(
                structure,
                at,
                format!("deflate stream does not decode: {e}"),
            )
        })?;
    }
    if bytes.len() as u64 != size {
        return Err(Error::invalid(
            structure,
            at,
            format!(
                "de-filtered object has {} bytes, expected {size}",
                bytes.len(),
            ),
        ));
    }
    Ok(bytes)
}

/// Largest de-filtered huge object accepted (1 GiB).
const MAX_HUGE_OBJECT: u64 = 1 << 30;

/// Where a huge object is stored (spec III.G, "Fractal Heap ID for Huge
/// Objects", and the v2 B-tree records of types 1-4, III.A.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HugePlace {
    pub address: u64,
    /// Stored (possibly filtered) length.
    pub length: u64,
    /// Filtered heaps only.
    pub filter_mask: Option<u32>,
    /// Filtered heaps only: the object's size once de-filtered.
    pub defiltered_size: Option<u64>,
}

/// The places of a heap's indirectly accessed huge objects by ID: the
/// records of its huge-object v2 B-tree (types 1 and 2, keyed by the ID
/// that heap IDs of sub-types 1 and 2 carry). Errors: the tree's nodes'
/// (checksums, structure), a tree of another type, an ID listed twice
/// (then neither place is trusted).
pub fn huge_object_index(
    image: &Image,
    header: &FractalHeapHeader,
) -> (std::collections::HashMap<u64, HugePlace>, Vec<Error>) {
    use crate::format::btree_v2::{self, kind, Record};
    let mut index = std::collections::HashMap::new();
    let addr = header.huge_object_btree_address;
    if super::is_undefined(addr) {
        return (index, Vec::new());
    }
    let at = image.absolute(addr).unwrap_or(addr);
    let (tree, records, mut errors) =
        super::btree_v2::collect_records(image, addr, btree_v2::RecordContext::default());
    if let Some(t) = &tree {
        if !matches!(
            t.btree_type,
            kind::HUGE_INDIRECT | kind::HUGE_INDIRECT_FILTERED
        ) {
            errors.push(Error::bad_value(
                "huge object v2 B-tree",
                at,
                "B-tree type (1 or 2 expected)",
                u64::from(t.btree_type),
            ));
            return (index, errors);
        }
    }
    let mut twice = HashSet::new();
    for r in records {
        let Record::HugeObject {
            address,
            length,
            filter_mask,
            defiltered_size,
            id: Some(id),
        } = r
        else {
            continue;
        };
        let place = HugePlace {
            address,
            length,
            filter_mask,
            defiltered_size,
        };
        if index.insert(id, place).is_some() {
            twice.insert(id);
        }
    }
    for id in twice {
        index.remove(&id);
        errors.push(Error::invalid(
            "huge object v2 B-tree",
            at,
            format!("huge object ID {id} listed twice: neither place is trusted"),
        ));
    }
    (index, errors)
}

/// The bytes of the huge object `id` names: its place from the ID itself
/// (sub-types 3 and 4) or from `index` ([`huge_object_index`], sub-types 1
/// and 2); the stored bytes must lie inside the file, and a filtered
/// heap's object must de-filter to exactly its recorded size. Huge objects
/// carry no checksum of their own: the B-tree records that place them do.
pub fn read_huge_object(
    image: &Image,
    header_at: u64,
    header: &FractalHeapHeader,
    id: &HugeId,
    index: &std::collections::HashMap<u64, HugePlace>,
) -> Result<Vec<u8>> {
    const HUGE: &str = "fractal heap huge object";
    let place = match *id {
        HugeId::Indirect { btree_key } => *index.get(&btree_key).ok_or_else(|| {
            Error::invalid(
                HUGE,
                header_at,
                format!("huge object ID {btree_key} is not in the heap's huge-object B-tree"),
            )
        })?,
        HugeId::Direct { address, length } => HugePlace {
            address,
            length,
            filter_mask: None,
            defiltered_size: None,
        },
        HugeId::DirectFiltered {
            address,
            length,
            filter_mask,
            defiltered_size,
        } => HugePlace {
            address,
            length,
            filter_mask: Some(filter_mask),
            defiltered_size: Some(defiltered_size),
        },
    };
    let raw = image.slice(HUGE, place.address, place.length)?;
    if !header.is_filtered() {
        return Ok(raw.to_vec());
    }
    let at = image.absolute(place.address).unwrap_or(place.address);
    let size = place
        .defiltered_size
        .filter(|&s| s <= MAX_HUGE_OBJECT)
        .ok_or_else(|| {
            Error::invalid(
                HUGE,
                at,
                "filtered huge object without a usable de-filtered size",
            )
        })?;
    let filters = filter_ids(&header.io_filter_info).ok_or_else(|| {
        Error::invalid(
            HEADER,
            header_at,
            "unreadable I/O filter information in the heap header",
        )
    })?;
    defilter(
        HUGE,
        at,
        &filters,
        raw,
        place.filter_mask.unwrap_or(0),
        size,
    )
}

/// Filter ids of an encoded filter pipeline message (spec IV.A.2.l,
/// [`filter_pipeline::parse`]), enough to decide whether the pipeline is
/// supported.
pub(crate) fn filter_ids(info: &[u8]) -> Option<Vec<u16>> {
    let pipeline = filter_pipeline::parse(info, 0, Sizes::DEFAULT).ok()?;
    Some(pipeline.filters.iter().map(|f| f.id).collect())
}

/// Lists every allocated direct block of the heap whose header (parsed as
/// `header`) is at relative address `header_addr`, with the problems met
/// on the way (unreadable or foreign indirect blocks, bad checksums, loops).
///
/// Iterative walk from the root: each indirect block is visited at most
/// once, depth is limited, and at most 2^20 blocks are listed. Direct
/// blocks themselves are not read.
pub fn collect_direct_blocks(
    image: &Image,
    header_addr: u64,
    header: &FractalHeapHeader,
) -> (Vec<DirectBlockRef>, Vec<Error>) {
    let mut blocks = Vec::new();
    let mut errors = Vec::new();
    let hdr_at = image.absolute(header_addr).unwrap_or(header_addr);
    let table = match header.doubling_table(hdr_at) {
        Ok(t) => t,
        Err(e) => return (blocks, vec![e]),
    };
    let root = header.root_block_address;
    if root == UNDEFINED {
        return (blocks, errors);
    }
    if header.current_root_rows == 0 {
        blocks.push(DirectBlockRef {
            heap_offset: 0,
            address: root,
            size: table.starting_block_size,
            filtered_size: header.filtered_root_direct_block_size,
            filter_mask: header.root_direct_block_filter_mask,
        });
        return (blocks, errors);
    }
    let mut visited = HashSet::new();
    // (address, rows, heap offset, depth)
    let mut stack = vec![(root, u32::from(header.current_root_rows), 0u64, 0usize)];
    while let Some((address, nrows, block_offset, depth)) = stack.pop() {
        let ib_at = image.absolute(address).unwrap_or(address);
        if depth >= MAX_DEPTH {
            errors.push(Error::invalid(
                INDIRECT,
                ib_at,
                "indirect blocks nested too deeply",
            ));
            continue;
        }
        if !visited.insert(address) {
            errors.push(Error::invalid(
                INDIRECT,
                ib_at,
                "indirect block visited twice (a loop)",
            ));
            continue;
        }
        let ib = match read_indirect_block(image, address, header, nrows).and_then(|ib| {
            check_owner(
                INDIRECT,
                ib_at,
                &(ib.heap_header_address, ib.block_offset),
                header_addr,
                block_offset,
            )
            .map(|()| ib)
        }) {
            Ok(ib) => ib,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for (i, entry) in ib.direct.iter().enumerate() {
            if entry.address == UNDEFINED {
                continue;
            }
            if blocks.len() >= MAX_BLOCKS {
                errors.push(Error::invalid(INDIRECT, ib_at, "too many direct blocks"));
                return (blocks, errors);
            }
            let Some((heap_offset, size)) = entry_position(&table, block_offset, i, 0) else {
                continue;
            };
            blocks.push(DirectBlockRef {
                heap_offset,
                address: entry.address,
                size,
                filtered_size: entry.filtered_size,
                filter_mask: entry.filter_mask,
            });
        }
        for (i, &child) in ib.indirect.iter().enumerate() {
            if child == UNDEFINED {
                continue;
            }
            let first = table.max_direct_rows;
            let Some((heap_offset, _)) = entry_position(&table, block_offset, i, first) else {
                continue;
            };
            let row = first + (i as u64 / table.width) as u32;
            match table
                .child_indirect_rows(row)
                .filter(|&r| r > 0 && r < nrows)
            {
                Some(rows) => stack.push((child, rows, heap_offset, depth + 1)),
                None => errors.push(Error::bad_value(
                    INDIRECT,
                    ib_at,
                    "child rows",
                    u64::from(row),
                )),
            }
        }
    }
    blocks.sort_by_key(|b| b.heap_offset);
    (blocks, errors)
}

/// Heap offset and block size of entry `i` counted from row `first_row` of
/// an indirect block at heap offset `block_offset`.
fn entry_position(
    table: &DoublingTable,
    block_offset: u64,
    i: usize,
    first_row: u32,
) -> Option<(u64, u64)> {
    let i = i as u64;
    let row = first_row.checked_add(u32::try_from(i / table.width).ok()?)?;
    let col = i % table.width;
    let size = table.row_block_size(row)?;
    let off = block_offset
        .checked_add(table.row_offset(row)?)?
        .checked_add(col.checked_mul(size)?)?;
    Some((off, size))
}

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
    // Header and block verified: known metadata (the block at its stored
    // size, spec III.G "Fractal Heap Direct Blocks").
    image.known(HEADER, header_addr, header.size);
    let stored = block.filtered_size.filter(|_| header.is_filtered());
    image.known(DIRECT, block.address, stored.unwrap_or(block.size));
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
        image.known(INDIRECT, address, ib.size);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follow::Image;
    use crate::format::test_support::fixtures;
    use crate::format::test_support::fractal_heap::*;
    use crate::format::test_support::hex;
    use crate::format::ErrorKind;
    use crate::format::UNDEFINED;

    // dense.h5: the 20 records (hash u32 + 7-byte heap ID) of the link-name v2 B-tree leaf at 1895.
    const DENSE_BTLF_RECORDS_1901: &str = "\
869eaa0400230000000e008e70fc1400690000000e0072a4e12000f50000000e004177492900150000000e00aa42d330\
00a10000000e00a6610b34004d0000000e004bfd263d00930000000e0030ef023e00770000000e001597fe49005b0000\
000e006575475100e70000000e0042c4955300310000000e002462d55300030100000e00e3767d7800af0000000e001e\
9cfc7900110100000e00f1d73eb0003f0000000e00ebf2d8cc00d90000000e001a96a7d700850000000e00e2ac28e100\
cb0000000e000777c0e500bd0000000e0077a8e3f8001f0100000e00";

    // big.h5: link heap header at 434 (2000 soft links; root indirect block, 8 rows).
    const BIG_FRHP_434: &str = "\
46524850000700000002001000000000000000000000ffffffffffffffff96360300000000006a020000000000000000\
04000000000000e000000000000000e0000000000000d007000000000000000000000000000000000000000000000000\
000000000000000000000000000004000002000000000000000001000000000020000100514d01000000000008000663\
e43b";

    // big.h5: its root indirect block at 85329 (277 bytes).
    const BIG_FHIB_85329: &str = "\
4648494200b20100000000000000000000514b0100000000005149010000000000514701000000000051450100000000\
0051430100000000005141010000000000513f010000000000513d010000000000513901000000000051350100000000\
005131010000000000512d0100000000005125010000000000511d0100000000005115010000000000510d0100000000\
0051fd00000000000051ed00000000000051dd00000000000051cd00000000000051ad000000000000518d0000000000\
00516d000000000000ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffb4d18a07";

    // huge.h5: link heap header at 1179 (16-row root indirect block).
    const HUGE_FRHP_1179: &str = "\
46524850000700000002001000000000000000000000ffffffffffffffffd29bf2030000000053050000000000000000\
00040000000000000b000000000000000b00000000007017000000000000000000000000000000000000000000000000\
0000000000000000000000000000040000020000000000000000010000000000200001009c470c00000000001000a10c\
55cd";

    // huge.h5: root indirect block at 804764 (36 direct + 28 indirect entries).
    const HUGE_FHIB_804764: &str = "\
46484942009b04000000000000000000009c450c00000000009c430c00000000009c410c00000000009c3f0c00000000\
009c3d0c00000000009c3b0c00000000009c390c00000000009c370c00000000009c330c00000000009c2f0c00000000\
009c2b0c00000000009c270c00000000009c1f0c00000000009c170c00000000009c0f0c00000000009c070c00000000\
009cf70b00000000009ce70b00000000009cd70b00000000009cc70b00000000009ca70b00000000009c870b00000000\
009c670b00000000009c470b00000000009c070b00000000009cc70a00000000009c870a00000000009c470a00000000\
009cc70900000000009c470900000000009cc70800000000009c470800000000009c470700000000009c470600000000\
009c470500000000009c47040000000000a746040000000000b245020000000000ffffffffffffffffffffffffffffff\
ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
ffa2babb9f";

    // huge.h5: child indirect block at 148914 (row 9, column 1: 7 rows).
    const HUGE_FHIB_148914: &str = "\
46484942009b0400000000000000000a00b243020000000000b241020000000000b23f020000000000b23d0200000000\
00b23b020000000000b239020000000000b237020000000000b235020000000000b231020000000000b22d0200000000\
00b229020000000000b225020000000000b21d020000000000b215020000000000b20d020000000000b2050200000000\
00b2f5010000000000b2e5010000000000b2d5010000000000b2c5010000000000b2a5010000000000b2850100000000\
00b265010000000000b245010000000000ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
ff67620ad2";

    // huge.h5: child indirect block at 280231 (row 9, column 0: 7 rows).
    const HUGE_FHIB_280231: &str = "\
46484942009b0400000000000000000800a744040000000000a742040000000000a740040000000000a73e0400000000\
00a73c040000000000a73a040000000000a738040000000000a736040000000000a732040000000000a72e0400000000\
00a72a040000000000a726040000000000a71e040000000000a716040000000000a70e040000000000a7060400000000\
00a7f6030000000000a7e6030000000000a7d6030000000000a7c6030000000000a7a6030000000000a7860300000000\
00a766030000000000a746030000000000a706030000000000a7c6020000000000a786020000000000a7460200000000\
004ac1480d";

    /// Heap IDs of the 20 links, from the v2 B-tree leaf records.
    fn dense_heap_ids() -> Vec<Vec<u8>> {
        hex(DENSE_BTLF_RECORDS_1901)
            .chunks(11)
            .map(|r| r[4..].to_vec())
            .collect()
    }

    #[test]
    fn h5py_dense_group_links_resolve() {
        let file = dense_file();
        let img = Image::new(&file, 0, D);
        let h = parse_header(&file[1629..], 1629, D).unwrap();
        let mut names = Vec::new();
        for (i, id) in dense_heap_ids().iter().enumerate() {
            let HeapId::Managed { offset, length } =
                parse_heap_id(id, 1905 + 11 * i as u64, &h).unwrap()
            else {
                panic!("not managed");
            };
            let obj = read_managed_object(&img, 1629, &h, offset, length).unwrap();
            assert_eq!(obj.len() as u64, length);
            // Link message version 1, flags 0, name length, name, address.
            assert_eq!(obj[0], 1, "link message version");
            let n = usize::from(obj[2]);
            names.push(String::from_utf8(obj[3..3 + n].to_vec()).unwrap());
        }
        names.sort();
        let expected: Vec<String> = (0..20).map(|i| format!("m{i:02}")).collect();
        assert_eq!(names, expected);
        let (blocks, errors) = collect_direct_blocks(&img, 1629, &h);
        assert!(errors.is_empty());
        assert_eq!(
            blocks,
            [DirectBlockRef {
                heap_offset: 0,
                address: 8141,
                size: 512,
                filtered_size: None,
                filter_mask: None
            }]
        );
    }

    #[test]
    fn h5py_objects_outside_the_block_are_refused() {
        let file = dense_file();
        let img = Image::new(&file, 0, D);
        let h = parse_header(&file[1629..], 1629, D).unwrap();
        // Inside the prefix, past the block end, beyond the root block.
        assert!(read_managed_object(&img, 1629, &h, 4, 8).is_err());
        assert!(read_managed_object(&img, 1629, &h, 500, 20).is_err());
        assert!(read_managed_object(&img, 1629, &h, 600, 1).is_err());
        assert!(read_managed_object(&img, 1629, &h, 21, u64::MAX).is_err());
        // The wrong header address: the block belongs to another heap.
        assert!(read_managed_object(&img, 1630, &h, 21, 14).is_err());
        // Truncated file: the block is cut.
        let img = Image::new(&file[..8400], 0, D);
        assert!(read_managed_object(&img, 1629, &h, 21, 14).is_err());
    }

    #[test]
    fn h5py_root_indirect_block() {
        let h = parse_header(&hex(BIG_FRHP_434), 434, D).unwrap();
        assert!(h.checksum_ok);
        assert_eq!(h.current_root_rows, 8);
        assert_eq!(h.root_block_address, 85329);
        let data = hex(BIG_FHIB_85329);
        let ib = parse_indirect_block(&data, 85329, &h, 8).unwrap();
        assert!(ib.checksum_ok);
        assert_eq!(ib.size, 277);
        assert_eq!(ib.heap_header_address, 434);
        assert_eq!(ib.block_offset, 0);
        assert_eq!(ib.direct.len(), 32);
        assert!(ib.indirect.is_empty());
        let defined = ib.direct.iter().filter(|e| e.address != UNDEFINED).count();
        assert_eq!(defined, 23);

        let mut file = Vec::new();
        place(&mut file, 434, &hex(BIG_FRHP_434));
        place(&mut file, 85329, &data);
        let img = Image::new(&file, 0, D);
        let (blocks, errors) = collect_direct_blocks(&img, 434, &h);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(blocks.len(), 23);
        let total: u64 = blocks.iter().map(|b| b.size).sum();
        assert_eq!(total, 57344, "the header's allocated managed space");
        // The block seen at 27985 holds heap offset 0xc000 (row 5, column 2).
        assert!(blocks
            .iter()
            .any(|b| (b.heap_offset, b.address, b.size) == (0xc000, 27985, 8192)));
        assert!(blocks
            .windows(2)
            .all(|w| w[0].heap_offset + w[0].size <= w[1].heap_offset));

        for n in 0..data.len() {
            assert!(
                parse_indirect_block(&data[..n], 85329, &h, 8).is_err(),
                "prefix {n}"
            );
        }
        let mut bad = data.clone();
        bad[40] ^= 0x10;
        assert!(
            !parse_indirect_block(&bad, 85329, &h, 8)
                .unwrap()
                .checksum_ok
        );
        place(&mut file, 85329, &bad);
        let img = Image::new(&file, 0, D);
        let (blocks, errors) = collect_direct_blocks(&img, 434, &h);
        assert!(blocks.is_empty());
        assert!(matches!(errors[0].kind, ErrorKind::BadChecksum { .. }));
    }

    #[test]
    fn nested_indirect_blocks_resolve() {
        let file = nested_file([U, CHILD, U, U]);
        let img = Image::new(&file, 0, D);
        let h = nested_header(&file);
        assert_eq!(h.direct_block_prefix_size(), 19);
        assert_eq!(
            read_managed_object(&img, HDR, &h, 384 + 19, 12).unwrap(),
            b"first object"
        );
        assert_eq!(
            read_managed_object(&img, HDR, &h, 960 + 19, 6).unwrap(),
            b"nested"
        );
        // Unallocated blocks, offsets past the heap.
        assert!(read_managed_object(&img, HDR, &h, 19, 4).is_err());
        assert!(read_managed_object(&img, HDR, &h, 768 + 19, 4).is_err());
        assert!(read_managed_object(&img, HDR, &h, 1024 + 19, 4).is_err());
        assert!(read_managed_object(&img, HDR, &h, 5000, 4).is_err());

        let (blocks, errors) = collect_direct_blocks(&img, HDR, &h);
        assert!(errors.is_empty(), "{errors:?}");
        let got: Vec<(u64, u64, u64)> = blocks
            .iter()
            .map(|b| (b.heap_offset, b.address, b.size))
            .collect();
        assert_eq!(got, [(384, 0x400, 128), (960, 0x800, 64)]);
    }

    #[test]
    fn nested_checksum_failures_are_errors() {
        let mut file = nested_file([U, CHILD, U, U]);
        let h = nested_header(&file);
        file[0x800 + 30] ^= 1; // inside the nested direct block
        let img = Image::new(&file, 0, D);
        let e = read_managed_object(&img, HDR, &h, 960 + 19, 6).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::BadChecksum { .. }), "{e}");
        assert_eq!(e.offset, 0x800);
        file[CHILD as usize + 20] ^= 1; // inside the child indirect block
        let img = Image::new(&file, 0, D);
        let e = read_managed_object(&img, HDR, &h, 960 + 19, 6).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::BadChecksum { .. }), "{e}");
        let (blocks, errors) = collect_direct_blocks(&img, HDR, &h);
        assert_eq!(blocks.len(), 1);
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn loops_and_foreign_blocks_terminate() {
        // Both row-3 entries point at the same child: listed once, one error.
        let file = nested_file([CHILD, CHILD, U, U]);
        let img = Image::new(&file, 0, D);
        let h = nested_header(&file);
        let (blocks, errors) = collect_direct_blocks(&img, HDR, &h);
        assert_eq!(blocks.len(), 2);
        assert_eq!(errors.len(), 1, "{errors:?}");
        // The root lists itself as a child: a loop, refused.
        let file = nested_file([U, CHILD, ROOT, ROOT]);
        let img = Image::new(&file, 0, D);
        let (blocks, errors) = collect_direct_blocks(&img, HDR, &h);
        assert_eq!(blocks.len(), 2);
        assert_eq!(errors.len(), 2);
        assert!(read_managed_object(&img, HDR, &h, 1024 + 19, 4).is_err());
        // A child pointing at undefined/outside addresses.
        let file = nested_file([U, u64::MAX - 1, 1 << 40, U]);
        let img = Image::new(&file, 0, D);
        let (_, errors) = collect_direct_blocks(&img, HDR, &h);
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn hostile_geometry_is_refused() {
        let file = nested_file([U, CHILD, U, U]);
        let good = nested_header(&file);
        let img = Image::new(&file, 0, D);
        let cases: &[fn(&mut FractalHeapHeader)] = &[
            |h| h.table_width = 0,
            |h| h.table_width = 3,
            |h| h.starting_block_size = 0,
            |h| h.starting_block_size = 100,
            |h| h.max_direct_block_size = 32,
            |h| h.max_direct_block_size = u64::MAX,
            |h| h.max_heap_size_bits = 0,
            |h| h.max_heap_size_bits = 65,
            |h| h.max_heap_size_bits = u16::MAX,
            |h| {
                h.starting_block_size = 1 << 62;
                h.max_direct_block_size = 1 << 63;
                h.table_width = 1 << 15;
                h.max_heap_size_bits = 64;
            },
        ];
        for (i, mutate) in cases.iter().enumerate() {
            let mut h = good.clone();
            mutate(&mut h);
            assert!(h.doubling_table(0).is_err(), "case {i}");
            assert!(
                read_managed_object(&img, HDR, &h, 403, 12).is_err(),
                "case {i}"
            );
            let (blocks, errors) = collect_direct_blocks(&img, HDR, &h);
            assert!(blocks.is_empty() && errors.len() == 1, "case {i}");
        }
        // Huge row counts: refused before anything is allocated.
        let mut h = good.clone();
        h.current_root_rows = u16::MAX;
        assert!(read_managed_object(&img, HDR, &h, 403, 12).is_err());
        assert!(parse_indirect_block(&file[ROOT as usize..], ROOT, &h, u32::MAX).is_err());
        assert!(parse_indirect_block(&file[ROOT as usize..], ROOT, &h, 0).is_err());
        // A legal but enormous table over a tiny block: truncated.
        let mut h = good.clone();
        h.table_width = 1 << 15;
        h.max_heap_size_bits = 64;
        let e = parse_indirect_block(&file[ROOT as usize..], ROOT, &h, 40).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Truncated { .. }), "{e}");
        // Extreme but valid geometry: row arithmetic saturates to None, no panic.
        let t = h.doubling_table(0).unwrap();
        assert!(t.row_block_size(200).is_none());
        assert!(t.locate(u64::MAX, 64).is_none());
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// A filtered heap whose root direct block (64 bytes) is stored deflated.
    fn filtered_file(info: Vec<u8>, mask: u32) -> (Vec<u8>, FractalHeapHeader) {
        let block = direct_bytes(HDR, 0, 64, &[(19, b"squeezed")]);
        let packed = deflate(&block);
        let mut g = geometry();
        g.filter = Some((packed.len() as u64, mask, info));
        let mut file = Vec::new();
        let hb = header_bytes(&g, 0x400, 0);
        place(&mut file, HDR as usize, &hb);
        place(&mut file, 0x400, &packed);
        let h = parse_header(&file[HDR as usize..], HDR, D).unwrap();
        assert!(h.checksum_ok);
        assert_eq!(h.size as usize, hb.len());
        (file, h)
    }

    /// Huge objects: placed by the ID itself (sub-types 3, 4) or by the
    /// huge-object B-tree (sub-types 1, 2, here given as the index).
    #[test]
    fn huge_objects_are_read_from_their_place() {
        let mut file = vec![0u8; 0x600];
        file[0x500..0x510].copy_from_slice(b"a huge object!!!");
        let img = Image::new(&file, 0, D);
        let h = parse_header(&header_bytes(&geometry(), 0x400, 0), HDR, D).unwrap();
        let mut index = std::collections::HashMap::new();
        let place = |address, length| HugePlace {
            address,
            length,
            filter_mask: None,
            defiltered_size: None,
        };
        index.insert(7, place(0x500, 16));
        index.insert(8, place(0x5f8, 16)); // runs past the end of the file
        let read = |id: HugeId| read_huge_object(&img, HDR, &h, &id, &index);
        assert_eq!(
            read(HugeId::Indirect { btree_key: 7 }).unwrap(),
            b"a huge object!!!"
        );
        assert!(read(HugeId::Indirect { btree_key: 8 }).is_err());
        let err = read(HugeId::Indirect { btree_key: 9 }).unwrap_err();
        assert!(err
            .to_string()
            .contains("not in the heap's huge-object B-tree"));
        assert_eq!(
            read(HugeId::Direct {
                address: 0x502,
                length: 4
            })
            .unwrap(),
            b"huge"
        );
        assert!(read(HugeId::Direct {
            address: u64::MAX - 2,
            length: 4
        })
        .is_err());
        // An unfiltered heap has no huge-object tree here: empty index.
        assert!(huge_object_index(&img, &h).0.is_empty());
    }

    #[test]
    fn filtered_huge_objects_are_inflated_to_their_size() {
        let v2 = vec![2, 1, 1, 0, 0, 0, 1, 0, 6, 0, 0, 0];
        let (mut file, h) = filtered_file(v2, 0);
        let packed = deflate(&[b'z'; 3000]);
        let at = file.len() as u64;
        file.extend_from_slice(&packed);
        let img = Image::new(&file, 0, D);
        let id = |size| HugeId::DirectFiltered {
            address: at,
            length: packed.len() as u64,
            filter_mask: 0,
            defiltered_size: size,
        };
        let index = std::collections::HashMap::new();
        assert_eq!(
            read_huge_object(&img, HDR, &h, &id(3000), &index).unwrap(),
            vec![b'z'; 3000]
        );
        // Wrong recorded size, either way: refused.
        for size in [2999, 3001, u64::MAX] {
            assert!(read_huge_object(&img, HDR, &h, &id(size), &index).is_err());
        }
    }

    #[test]
    fn filtered_heap_with_deflate() {
        // Filter pipeline message version 2: deflate (id 1), 1 client value.
        let v2 = vec![2, 1, 1, 0, 0, 0, 1, 0, 6, 0, 0, 0];
        let (file, h) = filtered_file(v2, 0);
        assert!(h.is_filtered());
        assert_eq!(h.io_filter_info.len(), 12);
        let img = Image::new(&file, 0, D);
        assert_eq!(
            read_managed_object(&img, HDR, &h, 19, 8).unwrap(),
            b"squeezed"
        );
        let (blocks, _) = collect_direct_blocks(&img, HDR, &h);
        assert_eq!(blocks[0].filtered_size, h.filtered_root_direct_block_size);

        // Version 1 encoding of the same pipeline, with a name.
        let mut v1 = vec![1, 1, 0, 0, 0, 0, 0, 0];
        v1.extend_from_slice(&[1, 0, 8, 0, 0, 0, 1, 0]);
        v1.extend_from_slice(b"deflate\0");
        v1.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]);
        let (file, h) = filtered_file(v1, 0);
        let img = Image::new(&file, 0, D);
        assert_eq!(
            read_managed_object(&img, HDR, &h, 19, 8).unwrap(),
            b"squeezed"
        );

        // An unsupported filter (id 32000, v2 with a name length) is reported.
        let other = vec![2, 1, 0x00, 0x7d, 0, 0, 0, 0, 0, 0];
        let (file, h) = filtered_file(other, 0);
        let img = Image::new(&file, 0, D);
        let e = read_managed_object(&img, HDR, &h, 19, 8).unwrap_err();
        assert!(e.to_string().contains("not supported"), "{e}");

        // Mask bit 0 set: deflate skipped, the raw bytes are not a block.
        let v2 = vec![2, 1, 1, 0, 0, 0, 1, 0, 6, 0, 0, 0];
        let (file, h) = filtered_file(v2, 1);
        let img = Image::new(&file, 0, D);
        assert!(read_managed_object(&img, HDR, &h, 19, 8).is_err());

        // Garbage filter info.
        let (file, h) = filtered_file(vec![9, 9, 9], 0);
        let img = Image::new(&file, 0, D);
        assert!(read_managed_object(&img, HDR, &h, 19, 8).is_err());
    }

    #[test]
    fn empty_heap_has_no_blocks() {
        let g = geometry();
        let h = parse_header(&header_bytes(&g, U, 0), 0, D).unwrap();
        let file = vec![0u8; 16];
        let img = Image::new(&file, 0, D);
        let (blocks, errors) = collect_direct_blocks(&img, 0, &h);
        assert!(blocks.is_empty() && errors.is_empty());
        assert!(read_managed_object(&img, 0, &h, 19, 1).is_err());
    }

    #[test]
    fn h5py_child_indirect_blocks() {
        let h = parse_header(&hex(HUGE_FRHP_1179), 1179, D).unwrap();
        assert!(h.checksum_ok);
        assert_eq!(h.current_root_rows, 16);
        let t = h.doubling_table(1179).unwrap();
        // Rows 9..16 hold indirect blocks; a row-9 child has 9 - log2(4) = 7 rows.
        assert_eq!(t.child_indirect_rows(9), Some(7));
        let mut file = Vec::new();
        place(&mut file, 1179, &hex(HUGE_FRHP_1179));
        place(&mut file, 148914, &hex(HUGE_FHIB_148914));
        place(&mut file, 280231, &hex(HUGE_FHIB_280231));
        place(&mut file, 804764, &hex(HUGE_FHIB_804764));
        let img = Image::new(&file, 0, D);
        let root = parse_indirect_block(&file[804764..], 804764, &h, 16).unwrap();
        assert!(root.checksum_ok);
        assert_eq!(
            (root.direct.len(), root.indirect.len(), root.size),
            (36, 28, 533)
        );
        assert_eq!(&root.indirect[..2], &[280231, 148914]);
        let (blocks, errors) = collect_direct_blocks(&img, 1179, &h);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(blocks.len(), 88);
        // Every block up to the allocation iterator, back to back.
        let mut next = 0;
        for b in &blocks {
            assert_eq!(b.heap_offset, next);
            next += b.size;
        }
        assert_eq!(next, h.allocated_managed_space);
        assert_eq!(next, 720896);
    }

    /// Random byte flips in a whole heap (header, indirect and direct
    /// blocks): the parsers and resolvers may fail but never panic.
    #[test]
    fn mutated_heaps_never_panic() {
        let original = nested_file([U, CHILD, U, U]);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let mut file = original.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % file.len() as u64) as usize;
                file[at] = next() as u8;
            }
            let img = Image::new(&file, 0, D);
            if let Ok(mut h) = parse_header(&file[HDR as usize..], HDR, D) {
                h.checksum_ok = true;
                let _ = read_managed_object(&img, HDR, &h, 960 + 19, 6);
                let _ = read_managed_object(&img, HDR, &h, next() % 4096, next() % 256);
                let _ = collect_direct_blocks(&img, HDR, &h);
                let _ = parse_heap_id(&file[0x800..0x808], 0, &h);
            }
            let _ = parse_direct_block_standalone(&file[0x800..], 0x800, D, 2);
        }
    }

    #[test]
    fn testdata_fixtures_heaps_walk_cleanly() {
        for (name, bytes, base) in fixtures() {
            let img = Image::new(&bytes, base, D);
            for at in memchr::memmem::find_iter(&bytes, HEADER_SIGNATURE) {
                let h = parse_header(&bytes[at..], at as u64, D).unwrap();
                assert!(h.checksum_ok, "{name} FRHP at {at}");
                let addr = at as u64 - base;
                let (blocks, errors) = collect_direct_blocks(&img, addr, &h);
                assert!(errors.is_empty(), "{name} FRHP at {at}: {errors:?}");
                for b in blocks {
                    let data = img.at(DIRECT, b.address).unwrap();
                    let db = parse_direct_block(data, b.address + base, &h, b.size).unwrap();
                    assert_eq!(db.checksum_ok, Some(true), "{name} FHDB at {}", b.address);
                    assert_eq!(db.block_offset, b.heap_offset);
                    assert_eq!(db.heap_header_address, addr);
                }
            }
        }
    }

    #[test]
    fn filter_info_parser_is_bounded() {
        assert_eq!(filter_ids(&[]), None);
        assert_eq!(filter_ids(&[2, 255]), None);
        assert_eq!(filter_ids(&[2, 1, 1, 0, 0, 0, 0xFF, 0xFF]), None);
        assert_eq!(filter_ids(&[2, 0]), Some(vec![]));
    }
}

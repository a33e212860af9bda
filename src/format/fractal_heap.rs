//! Fractal heaps (`FRHP`, `FHDB`, `FHIB`): the object store behind dense
//! link and attribute storage.
//!
//! Implements spec III.G ("Disk Format: Level 1G - Fractal Heap"): the
//! header, direct and indirect blocks (all lookup3-checksummed; direct blocks
//! only when header flag bit 1 is set), the doubling table that maps heap
//! offsets to blocks, and the three kinds of heap IDs (managed, huge, tiny).
//!
//! Checksums: [`parse_header`], [`parse_direct_block`] and
//! [`parse_indirect_block`] return the structure with a `checksum_ok` field
//! (the carver may still want a damaged node); the resolvers
//! [`crate::follow::fractal_heap::read_managed_object`] and
//! [`crate::follow::fractal_heap::collect_direct_blocks`] refuse blocks whose
//! checksum fails. Huge objects (larger than the heap's managed-object maximum:
//! attributes above 64 KiB) live outside the blocks;
//! [`crate::follow::fractal_heap::read_huge_object`] finds them through their
//! ID or the heap's huge-object v2 B-tree
//! ([`crate::follow::fractal_heap::huge_object_index`]).
//!
//! Spec notes (checked against libhdf5 behaviour and files written by
//! HDF5 2.0):
//! - The row count of a child indirect block is
//!   `log2(block size) - log2(starting block size) - log2(table width) + 1`;
//!   the spec's formula omits the `log2(width)` term.
//! - A direct block's checksum covers the whole block (prefix and object
//!   data, `block size` bytes) with the checksum field taken as zero.
//! - Heap offsets of objects count from the start of their direct block, so
//!   the first object of the first block sits at offset = prefix size.
//! - Filtered heaps: the whole direct block is passed through the filter
//!   pipeline. Only deflate (filter 1) pipelines are decoded here.

use nom::bytes::complete::take;
use nom::number::complete::{le_u16, le_u32, le_u8};

use super::{
    checksum, checksum_zeroed, expect_signature, length, offset, truncated, uint, Error, ErrorKind,
    Result, Sizes,
};

pub(crate) const HEADER: &str = "fractal heap header";
pub(crate) const DIRECT: &str = "fractal heap direct block";
pub(crate) const INDIRECT: &str = "fractal heap indirect block";
pub(crate) const HEAP_ID: &str = "fractal heap ID";

/// Fractal heap header signature (spec III.G, "Layout: Fractal Heap Header").
pub const HEADER_SIGNATURE: &[u8; 4] = b"FRHP";
/// Direct block signature (spec III.G, "Layout: Fractal Heap Direct Block").
pub const DIRECT_SIGNATURE: &[u8; 4] = b"FHDB";
/// Indirect block signature (spec III.G, "Layout: Fractal Heap Indirect Block").
pub const INDIRECT_SIGNATURE: &[u8; 4] = b"FHIB";

/// Most rows any doubling table can have (a 64-bit heap address space).
pub(crate) const MAX_ROWS: u32 = 64;
/// Depth limit for indirect block descent (each level has fewer rows than
/// its parent, so 64 is already a hard bound).
pub(crate) const MAX_DEPTH: usize = 64;
/// Most direct blocks [`crate::follow::fractal_heap::collect_direct_blocks`]
/// lists.
pub(crate) const MAX_BLOCKS: usize = 1 << 20;

/// A fractal heap header (spec III.G, "Layout: Fractal Heap Header").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FractalHeapHeader {
    /// Version; only 0 is defined.
    pub version: u8,
    /// Bytes in every heap ID of this heap ("Heap ID Length").
    pub heap_id_length: u16,
    /// Bytes of the encoded filter pipeline; 0 for an unfiltered heap
    /// ("I/O Filters' Encoded Length").
    pub io_filters_encoded_length: u16,
    /// Bit 0: huge object IDs wrapped; bit 1: direct blocks checksummed ("Flags").
    pub flags: u8,
    /// Larger objects are stored as huge objects ("Maximum Size of Managed Objects").
    pub max_managed_object_size: u32,
    /// "Next Huge Object ID" (L bytes).
    pub next_huge_object_id: u64,
    /// v2 B-tree indexing huge objects ("v2 B-tree Address of Huge Objects", O bytes).
    pub huge_object_btree_address: u64,
    /// "Amount of Free Space in Managed Blocks" (L bytes).
    pub managed_free_space: u64,
    /// "Address of Managed Block Free Space Manager" (O bytes).
    pub free_space_manager_address: u64,
    /// "Amount of Managed Space in Heap" (L bytes).
    pub managed_space: u64,
    /// "Amount of Allocated Managed Space in Heap" (L bytes).
    pub allocated_managed_space: u64,
    /// "Offset of Direct Block Allocation Iterator in Managed Space" (L bytes).
    pub direct_block_iterator_offset: u64,
    /// "Number of Managed Objects in Heap" (L bytes).
    pub managed_object_count: u64,
    /// "Size of Huge Objects in Heap" (L bytes).
    pub huge_objects_size: u64,
    /// "Number of Huge Objects in Heap" (L bytes).
    pub huge_object_count: u64,
    /// "Size of Tiny Objects in Heap" (L bytes).
    pub tiny_objects_size: u64,
    /// "Number of Tiny Objects in Heap" (L bytes).
    pub tiny_object_count: u64,
    /// Columns of the doubling table, a power of two ("Table Width").
    pub table_width: u16,
    /// Size of the blocks in rows 0 and 1 ("Starting Block Size", L bytes).
    pub starting_block_size: u64,
    /// Rows with larger blocks hold indirect blocks ("Maximum Direct Block Size", L bytes).
    pub max_direct_block_size: u64,
    /// log2 of the heap's address space ("Maximum Heap Size").
    pub max_heap_size_bits: u16,
    /// "Starting # of Rows in Root Indirect Block".
    pub starting_root_rows: u16,
    /// Root direct or indirect block, or undefined for an empty heap
    /// ("Address of Root Block", O bytes).
    pub root_block_address: u64,
    /// 0 when the root is a direct block ("Current # of Rows in Root Indirect Block").
    pub current_root_rows: u16,
    /// On-disk size of a filtered root direct block ("Size of Filtered Root
    /// Direct Block", L bytes; only with filters).
    pub filtered_root_direct_block_size: Option<u64>,
    /// Filter mask of the root direct block ("I/O Filter Mask"; only with filters).
    pub root_direct_block_filter_mask: Option<u32>,
    /// The encoded filter pipeline message ("I/O Filter Information"), raw.
    pub io_filter_info: Vec<u8>,
    /// Bytes in the header on disk, checksum included.
    pub size: u64,
    /// Whether the stored lookup3 checksum matches.
    pub checksum_ok: bool,
    /// The file's widths, kept for decoding heap IDs and blocks.
    pub sizes: Sizes,
}

impl FractalHeapHeader {
    /// Header flag bit 1: direct blocks carry a checksum.
    pub fn direct_blocks_checksummed(&self) -> bool {
        self.flags & 0x02 != 0
    }

    /// Header flag bit 0: huge object IDs have wrapped around.
    pub fn huge_ids_wrapped(&self) -> bool {
        self.flags & 0x01 != 0
    }

    /// True if heap objects pass through an I/O filter pipeline.
    pub fn is_filtered(&self) -> bool {
        self.io_filters_encoded_length > 0
    }

    /// Bytes of the "Block Offset" field of direct and indirect blocks and of
    /// a managed heap ID's offset: `ceil(max heap size bits / 8)`, at least 1,
    /// at most 8.
    pub fn block_offset_width(&self) -> u8 {
        offset_width(self.max_heap_size_bits)
    }

    /// Bytes of a managed heap ID's length field: the bytes needed to encode
    /// `min(max direct block size, max managed object size)`.
    pub fn heap_id_length_width(&self) -> u8 {
        let limit = self
            .max_direct_block_size
            .min(u64::from(self.max_managed_object_size));
        bytes_needed(limit)
    }

    /// Bytes before the object data in a direct block: signature, version,
    /// heap header address, block offset, and the checksum when present.
    pub fn direct_block_prefix_size(&self) -> u64 {
        let checksum = if self.direct_blocks_checksummed() {
            4
        } else {
            0
        };
        direct_prefix_without_checksum(self.sizes, self.block_offset_width()) + checksum
    }

    /// The validated doubling table; `at` locates errors (the header's offset).
    pub fn doubling_table(&self, at: u64) -> Result<DoublingTable> {
        DoublingTable::new(self, at)
    }
}

fn offset_width(bits: u16) -> u8 {
    bits.div_ceil(8).clamp(1, 8) as u8
}

/// Minimum bytes to encode `v` (at least 1).
fn bytes_needed(v: u64) -> u8 {
    let bits = 64 - v.leading_zeros();
    (bits.div_ceil(8)).max(1) as u8
}

fn direct_prefix_without_checksum(sizes: Sizes, block_offset_width: u8) -> u64 {
    4 + 1 + u64::from(sizes.offset()) + u64::from(block_offset_width)
}

/// The doubling table geometry of a heap (spec III.G, introduction), with
/// every quantity checked so that row sizes and offsets cannot overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoublingTable {
    /// Columns per row.
    pub width: u64,
    /// Blocks in rows 0 and 1 have this size.
    pub starting_block_size: u64,
    /// Largest direct block.
    pub max_direct_block_size: u64,
    /// Rows of direct blocks in any indirect block:
    /// `log2(max direct) - log2(start) + 2`.
    pub max_direct_rows: u32,
    /// Most rows the root indirect block can have:
    /// `max heap bits - log2(start) - log2(width) + 1`.
    pub max_root_rows: u32,
    log2_width: u32,
}

impl DoublingTable {
    fn new(h: &FractalHeapHeader, at: u64) -> Result<DoublingTable> {
        let bad = |field, value| Error::bad_value(HEADER, at, field, value);
        let width = u64::from(h.table_width);
        if !width.is_power_of_two() {
            return Err(bad("table width", width));
        }
        let start = h.starting_block_size;
        if !start.is_power_of_two() {
            return Err(bad("starting block size", start));
        }
        let max_direct = h.max_direct_block_size;
        if !max_direct.is_power_of_two() || max_direct < start {
            return Err(bad("maximum direct block size", max_direct));
        }
        let bits = u32::from(h.max_heap_size_bits);
        let log2_width = width.trailing_zeros();
        let first_row_bits = start.trailing_zeros() + log2_width;
        if bits > 64 || bits < first_row_bits || max_direct.trailing_zeros() >= bits.max(1) {
            return Err(bad("maximum heap size", u64::from(bits)));
        }
        let max_direct_rows = max_direct.trailing_zeros() - start.trailing_zeros() + 2;
        let max_root_rows = (bits - first_row_bits + 1).min(MAX_ROWS);
        Ok(DoublingTable {
            width,
            starting_block_size: start,
            max_direct_block_size: max_direct,
            max_direct_rows,
            max_root_rows,
            log2_width,
        })
    }

    /// Size of each block in `row`: the starting size for rows 0 and 1,
    /// doubling from there.
    pub fn row_block_size(&self, row: u32) -> Option<u64> {
        if row == 0 {
            return Some(self.starting_block_size);
        }
        1u64.checked_shl(row - 1)
            .and_then(|f| self.starting_block_size.checked_mul(f))
    }

    /// Heap offset of the first block of `row`, relative to the indirect
    /// block that holds the row.
    pub fn row_offset(&self, row: u32) -> Option<u64> {
        if row == 0 {
            return Some(0);
        }
        self.row_block_size(row)?.checked_mul(self.width)
    }

    /// True if the blocks of `row` are direct blocks.
    pub fn row_is_direct(&self, row: u32) -> bool {
        row < self.max_direct_rows
    }

    /// Rows of a child indirect block sitting in `row` of its parent.
    pub fn child_indirect_rows(&self, row: u32) -> Option<u32> {
        let size = self.row_block_size(row)?;
        let first_row_bits = self.starting_block_size.trailing_zeros() + self.log2_width;
        (size.trailing_zeros() + 1).checked_sub(first_row_bits)
    }

    /// (direct entries K, indirect entries N) of an indirect block with `nrows` rows.
    pub fn entry_counts(&self, nrows: u32) -> (u64, u64) {
        let direct_rows = nrows.min(self.max_direct_rows);
        let indirect_rows = nrows.saturating_sub(self.max_direct_rows);
        (
            u64::from(direct_rows) * self.width,
            u64::from(indirect_rows) * self.width,
        )
    }

    /// The (row, column, row start) of heap offset `rel` (relative to an
    /// indirect block) among its first `nrows` rows.
    pub(crate) fn locate(&self, rel: u64, nrows: u32) -> Option<(u32, u64, u64)> {
        for row in 0..nrows.min(MAX_ROWS) {
            let start = self.row_offset(row)?;
            let size = self.row_block_size(row)?;
            let end = start.checked_add(size.checked_mul(self.width)?)?;
            if rel >= start && rel < end {
                return Some((row, (rel - start) / size, start));
            }
        }
        None
    }
}

/// Parses a fractal heap header at the start of `data` (file offset `at`).
///
/// Rejects a bad signature, a version other than 0 and truncation; a
/// checksum mismatch is reported in `checksum_ok`. The doubling-table fields
/// are validated by [`FractalHeapHeader::doubling_table`], not here.
pub fn parse_header(data: &[u8], at: u64, sizes: Sizes) -> Result<FractalHeapHeader> {
    expect_signature(HEADER, at, data, HEADER_SIGNATURE)?;
    let (rest, mut h) =
        header_fields(data, sizes).map_err(|e| Error::from_nom(HEADER, at, data, e))?;
    if h.version != 0 {
        return Err(Error::new(
            HEADER,
            at.saturating_add(4),
            ErrorKind::UnsupportedVersion(h.version),
        ));
    }
    let len = data.len() - rest.len();
    h.size = len as u64 + 4;
    h.checksum_ok = match checksum(data, len) {
        Some((stored, computed)) => stored == computed,
        None => return Err(truncated(HEADER, at, h.size, data.len())),
    };
    Ok(h)
}

fn header_fields(input: &[u8], sizes: Sizes) -> nom::IResult<&[u8], FractalHeapHeader> {
    let l = || length(sizes);
    let o = || offset(sizes);
    let (i, _sig) = take(4usize)(input)?;
    let (i, version) = le_u8(i)?;
    let (i, heap_id_length) = le_u16(i)?;
    let (i, io_filters_encoded_length) = le_u16(i)?;
    let (i, flags) = le_u8(i)?;
    let (i, max_managed_object_size) = le_u32(i)?;
    let (i, next_huge_object_id) = l()(i)?;
    let (i, huge_object_btree_address) = o()(i)?;
    let (i, managed_free_space) = l()(i)?;
    let (i, free_space_manager_address) = o()(i)?;
    let (i, managed_space) = l()(i)?;
    let (i, allocated_managed_space) = l()(i)?;
    let (i, direct_block_iterator_offset) = l()(i)?;
    let (i, managed_object_count) = l()(i)?;
    let (i, huge_objects_size) = l()(i)?;
    let (i, huge_object_count) = l()(i)?;
    let (i, tiny_objects_size) = l()(i)?;
    let (i, tiny_object_count) = l()(i)?;
    let (i, table_width) = le_u16(i)?;
    let (i, starting_block_size) = l()(i)?;
    let (i, max_direct_block_size) = l()(i)?;
    let (i, max_heap_size_bits) = le_u16(i)?;
    let (i, starting_root_rows) = le_u16(i)?;
    let (i, root_block_address) = o()(i)?;
    let (mut i, current_root_rows) = le_u16(i)?;
    let mut filtered_root_direct_block_size = None;
    let mut root_direct_block_filter_mask = None;
    let mut io_filter_info = Vec::new();
    if io_filters_encoded_length > 0 {
        let (j, size) = l()(i)?;
        let (j, mask) = le_u32(j)?;
        let (j, info) = take(usize::from(io_filters_encoded_length))(j)?;
        filtered_root_direct_block_size = Some(size);
        root_direct_block_filter_mask = Some(mask);
        io_filter_info = info.to_vec();
        i = j;
    }
    Ok((
        i,
        FractalHeapHeader {
            version,
            heap_id_length,
            io_filters_encoded_length,
            flags,
            max_managed_object_size,
            next_huge_object_id,
            huge_object_btree_address,
            managed_free_space,
            free_space_manager_address,
            managed_space,
            allocated_managed_space,
            direct_block_iterator_offset,
            managed_object_count,
            huge_objects_size,
            huge_object_count,
            tiny_objects_size,
            tiny_object_count,
            table_width,
            starting_block_size,
            max_direct_block_size,
            max_heap_size_bits,
            starting_root_rows,
            root_block_address,
            current_root_rows,
            filtered_root_direct_block_size,
            root_direct_block_filter_mask,
            io_filter_info,
            size: 0,
            checksum_ok: false,
            sizes,
        },
    ))
}

/// The prefix of a direct block, decoded without its heap header
/// (spec III.G, "Layout: Fractal Heap Direct Block").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectBlockRaw {
    /// Version; only 0 is defined.
    pub version: u8,
    /// Address of the owning heap's header ("Heap Header Address", O bytes).
    pub heap_header_address: u64,
    /// Offset of the block in the heap's address space ("Block Offset").
    pub block_offset: u64,
    /// Bytes of the "Block Offset" field used to decode this prefix.
    pub block_offset_width: u8,
    /// Bytes of signature, version, heap address and block offset (the
    /// checksum, when present, follows).
    pub prefix_size: u64,
}

impl DirectBlockRaw {
    /// True if `block` (a candidate whole direct block, starting at its
    /// signature) carries a valid checksum right after the prefix.
    pub fn checksum_matches(&self, block: &[u8]) -> bool {
        usize::try_from(self.prefix_size)
            .ok()
            .and_then(|p| checksum_zeroed(block, p))
            .is_some_and(|(stored, computed)| stored == computed)
    }

    /// For a block whose heap header is lost: the smallest power-of-two
    /// size in `[min_size, max_size]` (clamped to the bytes available) for
    /// which `data` checksums as a direct block, if any.
    pub fn guess_block_size(&self, data: &[u8], min_size: u64, max_size: u64) -> Option<u64> {
        let mut size = min_size
            .max(self.prefix_size + 4)
            .checked_next_power_of_two()?;
        let limit = max_size.min(data.len() as u64);
        while size <= limit {
            if self.checksum_matches(data.get(..usize::try_from(size).ok()?)?) {
                return Some(size);
            }
            size = size.checked_mul(2)?;
        }
        None
    }
}

/// Decodes a direct block's prefix with a caller-chosen block offset width
/// (`1..=8`), for carving blocks whose heap header is lost (h5py heaps: 4
/// for dense links, 5 for dense attributes). Rejects a bad signature, a
/// version other than 0 and truncation.
pub fn parse_direct_block_standalone(
    data: &[u8],
    at: u64,
    sizes: Sizes,
    block_offset_width: u8,
) -> Result<DirectBlockRaw> {
    if !(1..=8).contains(&block_offset_width) {
        return Err(Error::bad_value(
            DIRECT,
            at,
            "block offset width",
            u64::from(block_offset_width),
        ));
    }
    expect_signature(DIRECT, at, data, DIRECT_SIGNATURE)?;
    let fields: nom::IResult<&[u8], (u8, u64, u64)> = (|i| {
        let (i, _sig) = take(4usize)(i)?;
        let (i, version) = le_u8(i)?;
        let (i, heap) = offset(sizes)(i)?;
        let (i, block_offset) = uint(block_offset_width)(i)?;
        Ok((i, (version, heap, block_offset)))
    })(data);
    let (_, (version, heap_header_address, block_offset)) =
        fields.map_err(|e| Error::from_nom(DIRECT, at, data, e))?;
    if version != 0 {
        return Err(Error::new(
            DIRECT,
            at.saturating_add(4),
            ErrorKind::UnsupportedVersion(version),
        ));
    }
    Ok(DirectBlockRaw {
        version,
        heap_header_address,
        block_offset,
        block_offset_width,
        prefix_size: direct_prefix_without_checksum(sizes, block_offset_width),
    })
}

/// A direct block of a known heap (spec III.G, "Layout: Fractal Heap Direct Block").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectBlock {
    /// Version; only 0 is defined.
    pub version: u8,
    /// "Heap Header Address" (O bytes).
    pub heap_header_address: u64,
    /// "Block Offset" in the heap's address space.
    pub block_offset: u64,
    /// The stored checksum, if the heap checksums direct blocks.
    pub checksum: Option<u32>,
    /// The checksum computed over the block, if the heap checksums direct blocks.
    pub computed_checksum: Option<u32>,
    /// Whether the checksum matches; `None` if the heap has none.
    pub checksum_ok: Option<bool>,
    /// Bytes before the object data (signature to checksum).
    pub prefix_size: u64,
    /// Size of the (unfiltered) block, prefix included.
    pub size: u64,
}

/// Parses a direct block of `block_size` bytes (its size in the doubling
/// table) at the start of `data` (file offset `at`, for errors). For a
/// filtered heap, `data` must be the de-filtered block. All `block_size`
/// bytes must be present. A checksum mismatch is reported in `checksum_ok`.
pub fn parse_direct_block(
    data: &[u8],
    at: u64,
    header: &FractalHeapHeader,
    block_size: u64,
) -> Result<DirectBlock> {
    let raw = parse_direct_block_standalone(data, at, header.sizes, header.block_offset_width())?;
    let checksummed = header.direct_blocks_checksummed();
    let prefix_size = header.direct_block_prefix_size();
    if block_size < prefix_size {
        return Err(Error::bad_value(DIRECT, at, "block size", block_size));
    }
    let Some(block) = usize::try_from(block_size).ok().and_then(|n| data.get(..n)) else {
        return Err(truncated(DIRECT, at, block_size, data.len()));
    };
    let (checksum, computed_checksum) = if checksummed {
        // block_size >= prefix_size, so the checksum bytes are present.
        let (stored, computed) = checksum_zeroed(block, raw.prefix_size as usize)
            .ok_or_else(|| truncated(DIRECT, at, prefix_size, block.len()))?;
        (Some(stored), Some(computed))
    } else {
        (None, None)
    };
    let checksum_ok = checksum.zip(computed_checksum).map(|(s, c)| s == c);
    Ok(DirectBlock {
        version: raw.version,
        heap_header_address: raw.heap_header_address,
        block_offset: raw.block_offset,
        checksum,
        computed_checksum,
        checksum_ok,
        prefix_size,
        size: block_size,
    })
}

/// One direct-block entry of an indirect block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectEntry {
    /// "Child Direct Block #K Address" (undefined if not allocated).
    pub address: u64,
    /// "Size of Filtered Direct Block #K" (only in filtered heaps).
    pub filtered_size: Option<u64>,
    /// "Filter Mask for Direct Block #K" (only in filtered heaps).
    pub filter_mask: Option<u32>,
}

/// An indirect block (spec III.G, "Layout: Fractal Heap Indirect Block").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndirectBlock {
    /// Version; only 0 is defined.
    pub version: u8,
    /// "Heap Header Address" (O bytes).
    pub heap_header_address: u64,
    /// "Block Offset" in the heap's address space.
    pub block_offset: u64,
    /// Rows of this block (from the header for the root, from the parent's
    /// row for a child).
    pub nrows: u32,
    /// K direct-block entries, row by row (`min(nrows, max direct rows) * width`).
    pub direct: Vec<DirectEntry>,
    /// N child indirect block addresses, row by row.
    pub indirect: Vec<u64>,
    /// Bytes on disk, checksum included.
    pub size: u64,
    /// Whether the stored lookup3 checksum matches.
    pub checksum_ok: bool,
}

/// Bytes of an indirect block with `nrows` rows.
pub fn indirect_block_size(header: &FractalHeapHeader, table: &DoublingTable, nrows: u32) -> u64 {
    let sizes = header.sizes;
    let (k, n) = table.entry_counts(nrows);
    let o = u64::from(sizes.offset());
    let filtered = if header.is_filtered() {
        u64::from(sizes.length()) + 4
    } else {
        0
    };
    let prefix = direct_prefix_without_checksum(sizes, header.block_offset_width());
    prefix + k * (o + filtered) + n * o + 4
}

/// Parses an indirect block of `nrows` rows at the start of `data` (file
/// offset `at`). The entry counts come from the header's doubling table;
/// the whole block must fit in `data` before anything is allocated.
/// Rejects a bad signature or version, an impossible row count and
/// truncation; a checksum mismatch is reported in `checksum_ok`.
pub fn parse_indirect_block(
    data: &[u8],
    at: u64,
    header: &FractalHeapHeader,
    nrows: u32,
) -> Result<IndirectBlock> {
    let table = header.doubling_table(at)?;
    if nrows == 0 || nrows > table.max_root_rows {
        return Err(Error::bad_value(INDIRECT, at, "rows", u64::from(nrows)));
    }
    expect_signature(INDIRECT, at, data, INDIRECT_SIGNATURE)?;
    let size = indirect_block_size(header, &table, nrows);
    if size > data.len() as u64 {
        return Err(truncated(INDIRECT, at, size, data.len()));
    }
    let (k, n) = table.entry_counts(nrows);
    let sizes = header.sizes;
    let filtered = header.is_filtered();
    let fields: nom::IResult<&[u8], IndirectBlock> = (|i| {
        let (i, _sig) = take(4usize)(i)?;
        let (i, version) = le_u8(i)?;
        let (i, heap_header_address) = offset(sizes)(i)?;
        let (mut i, block_offset) = uint(header.block_offset_width())(i)?;
        // k and n are bounded by the size check above.
        let mut direct = Vec::with_capacity(k as usize);
        for _ in 0..k {
            let (j, address) = offset(sizes)(i)?;
            let (j, filtered_size, filter_mask) = if filtered {
                let (j, s) = length(sizes)(j)?;
                let (j, m) = le_u32(j)?;
                (j, Some(s), Some(m))
            } else {
                (j, None, None)
            };
            direct.push(DirectEntry {
                address,
                filtered_size,
                filter_mask,
            });
            i = j;
        }
        let mut indirect = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (j, address) = offset(sizes)(i)?;
            indirect.push(address);
            i = j;
        }
        Ok((
            i,
            IndirectBlock {
                version,
                heap_header_address,
                block_offset,
                nrows,
                direct,
                indirect,
                size,
                checksum_ok: false,
            },
        ))
    })(data);
    let (rest, mut block) = fields.map_err(|e| Error::from_nom(INDIRECT, at, data, e))?;
    if block.version != 0 {
        return Err(Error::new(
            INDIRECT,
            at.saturating_add(4),
            ErrorKind::UnsupportedVersion(block.version),
        ));
    }
    let len = data.len() - rest.len();
    block.checksum_ok = checksum(data, len).is_some_and(|(s, c)| s == c);
    Ok(block)
}

/// A decoded fractal heap ID (spec III.G, "Fractal Heap ID for ... Objects").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeapId {
    /// An object in a direct block: heap offset and length.
    Managed { offset: u64, length: u64 },
    /// An object stored outside the heap blocks.
    Huge(HugeId),
    /// An object stored inside the ID itself.
    Tiny { data: Vec<u8> },
}

/// The four huge-object ID sub-types (spec III.G, "Fractal Heap ID for Huge Objects").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HugeId {
    /// Sub-types 1 and 2: a key into the huge-object v2 B-tree.
    Indirect { btree_key: u64 },
    /// Sub-type 3: address and length of the object in the file.
    Direct { address: u64, length: u64 },
    /// Sub-type 4: address and length of the filtered object, its filter
    /// mask and de-filtered size.
    DirectFiltered {
        address: u64,
        length: u64,
        filter_mask: u32,
        defiltered_size: u64,
    },
}

/// Decodes a heap ID of this heap. `id` is the ID's bytes (normally
/// `heap_id_length` of them), `at` its file offset for errors. The version
/// bits must be 0 and the type 0 (managed), 1 (huge) or 2 (tiny).
pub fn parse_heap_id(id: &[u8], at: u64, header: &FractalHeapHeader) -> Result<HeapId> {
    let Some(&first) = id.first() else {
        return Err(truncated(HEAP_ID, at, 1, 0));
    };
    let version = first >> 6;
    if version != 0 {
        return Err(Error::new(
            HEAP_ID,
            at,
            ErrorKind::UnsupportedVersion(version),
        ));
    }
    let body = &id[1..];
    let body_at = at.saturating_add(1);
    let nom_err = |e| Error::from_nom(HEAP_ID, body_at, body, e);
    match (first >> 4) & 0x03 {
        0 => {
            let ow = header.block_offset_width();
            let lw = header.heap_id_length_width();
            let parsed: nom::IResult<&[u8], (u64, u64)> = (|i| {
                let (i, offset) = uint(ow)(i)?;
                let (i, length) = uint(lw)(i)?;
                Ok((i, (offset, length)))
            })(body);
            let (_, (offset, length)) = parsed.map_err(nom_err)?;
            Ok(HeapId::Managed { offset, length })
        }
        1 => parse_huge_id(body, header)
            .map_err(nom_err)
            .map(|(_, huge)| HeapId::Huge(huge)),
        2 => {
            let (len, data) = if header.heap_id_length <= 18 {
                (usize::from(first & 0x0F) + 1, body)
            } else {
                let Some((&low, rest)) = body.split_first() else {
                    return Err(truncated(HEAP_ID, at, 2, id.len()));
                };
                (
                    (usize::from(first & 0x0F) << 8 | usize::from(low)) + 1,
                    rest,
                )
            };
            match data.get(..len) {
                Some(d) => Ok(HeapId::Tiny { data: d.to_vec() }),
                None => Err(truncated(
                    HEAP_ID,
                    at,
                    (id.len() - data.len() + len) as u64,
                    id.len(),
                )),
            }
        }
        t => Err(Error::bad_value(HEAP_ID, at, "heap ID type", u64::from(t))),
    }
}

fn parse_huge_id<'a>(body: &'a [u8], header: &FractalHeapHeader) -> nom::IResult<&'a [u8], HugeId> {
    let sizes = header.sizes;
    let id_room = usize::from(header.heap_id_length).saturating_sub(1);
    let o = usize::from(sizes.offset());
    let l = usize::from(sizes.length());
    if header.is_filtered() && id_room >= o + l + 4 + l {
        let (i, address) = offset(sizes)(body)?;
        let (i, size) = length(sizes)(i)?;
        let (i, filter_mask) = le_u32(i)?;
        let (i, defiltered_size) = length(sizes)(i)?;
        Ok((
            i,
            HugeId::DirectFiltered {
                address,
                length: size,
                filter_mask,
                defiltered_size,
            },
        ))
    } else if !header.is_filtered() && id_room >= o + l {
        let (i, address) = offset(sizes)(body)?;
        let (i, size) = length(sizes)(i)?;
        Ok((
            i,
            HugeId::Direct {
                address,
                length: size,
            },
        ))
    } else {
        // The key fills the rest of the ID, at most 8 bytes (libhdf5).
        let width = id_room.clamp(1, 8) as u8;
        let (i, btree_key) = uint(width)(body)?;
        Ok((i, HugeId::Indirect { btree_key }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::test_support::fractal_heap::*;
    use crate::format::test_support::hex;
    use crate::format::UNDEFINED;

    // dense.h5: dense attribute heap header at 6377 (40-bit heap).
    const DENSE_ATTR_FRHP_6377: &str = "\
46524850000800000002001000000000000000000000ffffffffffffffff06010000000000007b190000000000000004\
000000000000000400000000000000000000000000001400000000000000000000000000000000000000000000000000\
000000000000000000000000000004000004000000000000000001000000000028000100cd1b00000000000000005758\
fbdb";

    #[test]
    fn h5py_link_heap_header() {
        let h = parse_header(&hex(DENSE_FRHP_1629), 1629, D).unwrap();
        assert!(h.checksum_ok);
        assert_eq!(h.size, 146);
        assert_eq!(h.version, 0);
        assert_eq!(h.heap_id_length, 7);
        assert_eq!(h.io_filters_encoded_length, 0);
        assert!(h.direct_blocks_checksummed());
        assert!(!h.huge_ids_wrapped());
        assert_eq!(h.max_managed_object_size, 4096);
        assert_eq!(h.huge_object_btree_address, UNDEFINED);
        assert_eq!(h.managed_free_space, 211);
        assert_eq!(h.free_space_manager_address, 1813);
        assert_eq!(h.managed_space, 512);
        assert_eq!(h.managed_object_count, 20);
        assert_eq!(h.table_width, 4);
        assert_eq!(h.starting_block_size, 512);
        assert_eq!(h.max_direct_block_size, 65536);
        assert_eq!(h.max_heap_size_bits, 32);
        assert_eq!(h.starting_root_rows, 1);
        assert_eq!(h.root_block_address, 8141);
        assert_eq!(h.current_root_rows, 0);
        assert_eq!(h.filtered_root_direct_block_size, None);
        assert_eq!(h.block_offset_width(), 4);
        assert_eq!(h.heap_id_length_width(), 2);
        assert_eq!(h.direct_block_prefix_size(), 21);
        let t = h.doubling_table(1629).unwrap();
        assert_eq!(t.max_direct_rows, 9);
        assert_eq!(t.max_root_rows, 22);
    }

    #[test]
    fn h5py_attribute_heap_header_uses_40_bits() {
        let h = parse_header(&hex(DENSE_ATTR_FRHP_6377), 6377, D).unwrap();
        assert!(h.checksum_ok);
        assert_eq!(h.heap_id_length, 8);
        assert_eq!(h.max_heap_size_bits, 40);
        assert_eq!(h.block_offset_width(), 5);
        assert_eq!(h.starting_block_size, 1024);
        assert_eq!(h.root_block_address, 7117);
    }

    #[test]
    fn h5py_direct_block_checksum_covers_the_whole_block() {
        let file = dense_file();
        let h = parse_header(&file[1629..], 1629, D).unwrap();
        let db = parse_direct_block(&file[8141..], 8141, &h, 512).unwrap();
        assert_eq!(db.heap_header_address, 1629);
        assert_eq!(db.block_offset, 0);
        assert_eq!(db.checksum_ok, Some(true));
        assert_eq!(db.prefix_size, 21);
        // A flipped byte in the object data (not the prefix) breaks it.
        let mut bad = file.clone();
        bad[8141 + 300] ^= 1;
        let db = parse_direct_block(&bad[8141..], 8141, &h, 512).unwrap();
        assert_eq!(db.checksum_ok, Some(false));
    }

    #[test]
    fn h5py_standalone_direct_block() {
        let mut block = hex(DENSE_FHDB_8141);
        block.resize(512, 0);
        let raw = parse_direct_block_standalone(&block, 8141, D, 4).unwrap();
        assert_eq!(raw.heap_header_address, 1629);
        assert_eq!(raw.block_offset, 0);
        assert_eq!(raw.prefix_size, 17);
        assert!(raw.checksum_matches(&block));
        assert_eq!(raw.guess_block_size(&block, 64, 1 << 16), Some(512));
        // A wrong width misplaces the checksum: no size matches.
        let raw5 = parse_direct_block_standalone(&block, 8141, D, 5).unwrap();
        assert_eq!(raw5.guess_block_size(&block, 64, 1 << 16), None);
        assert!(parse_direct_block_standalone(&block, 0, D, 0).is_err());
        assert!(parse_direct_block_standalone(&block, 0, D, 9).is_err());
        for n in 0..17 {
            assert!(parse_direct_block_standalone(&block[..n], 0, D, 4).is_err());
        }
    }

    #[test]
    fn header_truncation_signature_version_checksum() {
        let data = hex(DENSE_FRHP_1629);
        for n in 0..data.len() {
            assert!(parse_header(&data[..n], 0, D).is_err(), "prefix {n}");
        }
        let mut bad = data.clone();
        bad[0] = b'X';
        assert!(matches!(
            parse_header(&bad, 0, D).unwrap_err().kind,
            ErrorKind::BadSignature { .. }
        ));
        let mut bad = data.clone();
        bad[4] = 1;
        assert_eq!(
            parse_header(&bad, 0, D).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(1)
        );
        let mut bad = data.clone();
        bad[20] ^= 0xFF;
        let h = parse_header(&bad, 0, D).unwrap();
        assert!(!h.checksum_ok);
    }

    #[test]
    fn doubling_table_rows() {
        let file = nested_file([U, CHILD, U, U]);
        let t = nested_header(&file).doubling_table(HDR).unwrap();
        assert_eq!(t.max_direct_rows, 3);
        assert_eq!(t.max_root_rows, 10);
        let sizes: Vec<u64> = (0..5).map(|r| t.row_block_size(r).unwrap()).collect();
        assert_eq!(sizes, [64, 64, 128, 256, 512]);
        let offs: Vec<u64> = (0..5).map(|r| t.row_offset(r).unwrap()).collect();
        assert_eq!(offs, [0, 128, 256, 512, 1024]);
        assert_eq!(t.child_indirect_rows(3), Some(2));
        assert_eq!(t.child_indirect_rows(4), Some(3));
        assert_eq!(t.entry_counts(5), (6, 4));
        assert_eq!(t.entry_counts(2), (4, 0));
    }

    #[test]
    fn direct_block_truncation_signature_version() {
        let file = nested_file([U, CHILD, U, U]);
        let h = nested_header(&file);
        let block = direct_bytes(HDR, 960, 64, &[(19, b"x")]);
        assert_eq!(
            parse_direct_block(&block, 0, &h, 64).unwrap().checksum_ok,
            Some(true)
        );
        for n in 0..block.len() {
            assert!(
                parse_direct_block(&block[..n], 0, &h, 64).is_err(),
                "prefix {n}"
            );
        }
        assert!(
            parse_direct_block(&block, 0, &h, 10).is_err(),
            "smaller than the prefix"
        );
        let mut bad = block.clone();
        bad[3] = b'X';
        assert!(matches!(
            parse_direct_block(&bad, 0, &h, 64).unwrap_err().kind,
            ErrorKind::BadSignature { .. }
        ));
        let mut bad = block.clone();
        bad[4] = 3;
        assert_eq!(
            parse_direct_block(&bad, 0, &h, 64).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(3)
        );
        // Without the checksum flag the prefix is 4 bytes shorter.
        let mut g = geometry();
        g.flags = 0;
        let h2 = parse_header(&header_bytes(&g, ROOT, 0), 0, D).unwrap();
        let db = parse_direct_block(&block, 0, &h2, 64).unwrap();
        assert_eq!(
            (db.checksum, db.checksum_ok, db.prefix_size),
            (None, None, 15)
        );
        let _ = g;
    }

    #[test]
    fn indirect_block_signature_and_version() {
        let file = nested_file([U, CHILD, U, U]);
        let h = nested_header(&file);
        let mut ib = file[ROOT as usize..].to_vec();
        ib[0] = b'Z';
        assert!(parse_indirect_block(&ib, 0, &h, 5).is_err());
        let mut ib = file[ROOT as usize..].to_vec();
        ib[4] = 1;
        assert_eq!(
            parse_indirect_block(&ib, 0, &h, 5).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(1)
        );
    }

    #[test]
    fn heap_id_variants() {
        let file = dense_file();
        let h = parse_header(&file[1629..], 1629, D).unwrap();
        // Managed: 4-byte offset, 2-byte length.
        assert_eq!(
            parse_heap_id(&[0x00, 0x23, 0, 0, 0, 0x0e, 0], 0, &h).unwrap(),
            HeapId::Managed {
                offset: 0x23,
                length: 14
            }
        );
        // Tiny, normal form (ID length <= 18): length - 1 in the low nibble.
        assert_eq!(
            parse_heap_id(&[0x22, b'a', b'b', b'c', 0, 0, 0], 0, &h).unwrap(),
            HeapId::Tiny {
                data: b"abc".to_vec()
            }
        );
        assert!(parse_heap_id(&[0x27, b'a', b'b'], 0, &h).is_err());
        // Tiny, extended form (ID length > 18): 12-bit length.
        let mut ext = h.clone();
        ext.heap_id_length = 24;
        let mut id = vec![0x20, 0x04];
        id.extend_from_slice(b"hello");
        assert_eq!(
            parse_heap_id(&id, 0, &ext).unwrap(),
            HeapId::Tiny {
                data: b"hello".to_vec()
            }
        );
        assert!(parse_heap_id(&[0x21, 0xFF, 1, 2], 0, &ext).is_err());
        assert!(parse_heap_id(&[0x20], 0, &ext).is_err());
        // Huge, indirect (ID too short for address + length): a 6-byte key.
        assert_eq!(
            parse_heap_id(&[0x10, 5, 0, 0, 0, 0, 0], 0, &h).unwrap(),
            HeapId::Huge(HugeId::Indirect { btree_key: 5 })
        );
        // Huge, direct (ID of 1 + O + L bytes).
        let mut direct = h.clone();
        direct.heap_id_length = 17;
        let mut id = vec![0x10];
        id.extend_from_slice(&0x1234u64.to_le_bytes());
        id.extend_from_slice(&99u64.to_le_bytes());
        assert_eq!(
            parse_heap_id(&id, 0, &direct).unwrap(),
            HeapId::Huge(HugeId::Direct {
                address: 0x1234,
                length: 99
            })
        );
        // Huge, direct and filtered (1 + O + L + 4 + L bytes).
        let mut filtered = direct.clone();
        filtered.heap_id_length = 29;
        filtered.io_filters_encoded_length = 8;
        id.extend_from_slice(&3u32.to_le_bytes());
        id.extend_from_slice(&200u64.to_le_bytes());
        assert_eq!(
            parse_heap_id(&id, 0, &filtered).unwrap(),
            HeapId::Huge(HugeId::DirectFiltered {
                address: 0x1234,
                length: 99,
                filter_mask: 3,
                defiltered_size: 200
            })
        );
        // Bad version, bad type, truncation.
        assert_eq!(
            parse_heap_id(&[0x40, 0, 0, 0, 0, 0, 0], 0, &h)
                .unwrap_err()
                .kind,
            ErrorKind::UnsupportedVersion(1)
        );
        assert!(matches!(
            parse_heap_id(&[0x30, 0, 0, 0, 0, 0, 0], 0, &h)
                .unwrap_err()
                .kind,
            ErrorKind::BadValue { .. }
        ));
        let id = [0x00, 0x23, 0, 0, 0, 0x0e, 0];
        for n in 0..id.len() {
            assert!(parse_heap_id(&id[..n], 0, &h).is_err(), "prefix {n}");
        }
    }
}

//! Local heaps (`HEAP`): the name store of an old-style group.
//!
//! Implements spec III.D ("Disk Format: Level 1D - Local Heaps"): the heap
//! header, lookup of NUL-terminated names inside the data segment, and a
//! loop-safe walk of the free list kept inside the data segment.
//! Local heaps carry no checksum; validate them by structure and by the
//! symbol table entries that point into them.

use std::collections::HashSet;

use nom::bytes::complete::take;
use nom::number::complete::le_u8;

use super::{
    expect_signature, length, offset, widen_address, Error, ErrorKind, Result, Sizes, UNDEFINED,
};

pub(crate) const STRUCTURE: &str = "local heap";

/// The local heap signature (spec III.D, "Signature").
pub const SIGNATURE: &[u8; 4] = b"HEAP";

/// The free-list terminator: the "offset of the next free block" of the last
/// free block is 1 (spec III.D, "Offset to Head of Free-list").
pub const FREE_LIST_END: u64 = 1;

/// Upper bound on the free blocks walked by [`validate_free_list`], on top
/// of the bound given by the segment size.
pub(crate) const MAX_FREE_BLOCKS: usize = 1 << 20;

/// A local heap header (spec III.D, "Layout: Local Heap").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalHeap {
    /// Version; only 0 is defined (spec III.D, "Version").
    pub version: u8,
    /// Bytes allocated for the data segment (spec III.D, "Data Segment Size", L bytes).
    pub data_size: u64,
    /// Offset in the data segment of the first free block, or [`UNDEFINED`]
    /// when there is none (spec III.D, "Offset to Head of Free-list", L bytes;
    /// the all-ones pattern at L width is widened to [`UNDEFINED`]). libhdf5
    /// writes [`FREE_LIST_END`] (1) instead when the heap has no free block.
    pub free_list_offset: u64,
    /// Address of the data segment, usually right after the header
    /// (spec III.D, "Address of Data Segment", O bytes).
    pub data_address: u64,
}

impl LocalHeap {
    /// Bytes in the header on disk: signature, version, 3 reserved, L, L, O.
    pub fn header_size(sizes: Sizes) -> u64 {
        8 + 2 * u64::from(sizes.length()) + u64::from(sizes.offset())
    }
}

/// Parses a local heap header at the start of `data` (file offset `at`).
///
/// Rejects a bad signature, a version other than 0 and truncation; the
/// reserved bytes and the plausibility of the sizes are not checked here.
pub fn parse(data: &[u8], at: u64, sizes: Sizes) -> Result<LocalHeap> {
    expect_signature(STRUCTURE, at, data, SIGNATURE)?;
    let body = &data[SIGNATURE.len()..];
    let body_at = at.saturating_add(SIGNATURE.len() as u64);
    let (version, data_size, free_list_offset, data_address) = header_fields(body, sizes)
        .map_err(|e| Error::from_nom(STRUCTURE, body_at, body, e))?
        .1;
    if version != 0 {
        return Err(Error::new(
            STRUCTURE,
            body_at,
            ErrorKind::UnsupportedVersion(version),
        ));
    }
    Ok(LocalHeap {
        version,
        data_size,
        free_list_offset: widen_address(free_list_offset, sizes.length()),
        data_address,
    })
}

type Fields = (u8, u64, u64, u64);

fn header_fields(input: &[u8], sizes: Sizes) -> nom::IResult<&[u8], Fields> {
    let (input, version) = le_u8(input)?;
    let (input, _reserved) = take(3usize)(input)?;
    let (input, data_size) = length(sizes)(input)?;
    let (input, free_list) = length(sizes)(input)?;
    let (input, data_address) = offset(sizes)(input)?;
    Ok((input, (version, data_size, free_list, data_address)))
}

/// The NUL-terminated string that starts at `offset` inside the data
/// `segment`, without its terminator. `None` if the offset is outside the
/// segment or no NUL follows before the segment ends.
pub fn name_at(segment: &[u8], offset: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let rest = segment.get(start..)?;
    let end = memchr::memchr(0, rest)?;
    rest.get(..end)
}

/// Walks the free list that starts at `free_list_offset` inside `segment`
/// (spec III.D: each free block holds the offset of the next free block,
/// L bytes, `1` for the last, then the block size, L bytes, at least 2L).
///
/// Terminates on any input: a block visited twice (a loop) is an error, and
/// the walk is bounded by the number of blocks the segment can hold.
/// [`UNDEFINED`] as the head means an empty list, as the spec says; so does
/// [`FREE_LIST_END`] (1), which is what libhdf5 (HDF5 2.0 included) actually
/// writes for a heap without free space.
pub fn validate_free_list(
    segment: &[u8],
    free_list_offset: u64,
    sizes: Sizes,
) -> std::result::Result<(), String> {
    let width = u64::from(sizes.length());
    let min_block = 2 * width;
    let seg_len = segment.len() as u64;
    let max_blocks = usize::try_from(seg_len / min_block)
        .unwrap_or(usize::MAX)
        .min(MAX_FREE_BLOCKS);
    let mut visited = HashSet::new();
    let mut current = free_list_offset;
    while current != UNDEFINED && current != FREE_LIST_END {
        if !visited.insert(current) {
            return Err(format!("free list loops back to offset {current}"));
        }
        if visited.len() > max_blocks {
            return Err(format!(
                "free list has more blocks than the segment can hold ({max_blocks})"
            ));
        }
        let (next, size) = read_free_block(segment, current, sizes)?;
        if size < min_block {
            return Err(format!(
                "free block at {current} has size {size}, below the minimum {min_block}"
            ));
        }
        if current.checked_add(size).is_none_or(|end| end > seg_len) {
            return Err(format!(
                "free block at {current} of size {size} runs past the segment end {seg_len}"
            ));
        }
        if next == FREE_LIST_END {
            return Ok(());
        }
        current = widen_address(next, sizes.length());
    }
    Ok(())
}

/// The (next offset, size) pair stored at `at` in the data segment.
fn read_free_block(
    segment: &[u8],
    at: u64,
    sizes: Sizes,
) -> std::result::Result<(u64, u64), String> {
    let rest = usize::try_from(at)
        .ok()
        .and_then(|a| segment.get(a..))
        .ok_or_else(|| {
            format!(
                "free block offset {at} is outside the segment of {} bytes",
                segment.len()
            )
        })?;
    let parsed: nom::IResult<&[u8], (u64, u64)> = (|i| {
        let (i, next) = length(sizes)(i)?;
        let (i, size) = length(sizes)(i)?;
        Ok((i, (next, size)))
    })(rest);
    parsed
        .map(|(_, pair)| pair)
        .map_err(|_| format!("free block at {at} is truncated by the segment end"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(o: u8, l: u8) -> Sizes {
        Sizes::new(o, l).unwrap()
    }

    fn build(sizes: Sizes, data_size: u64, free: u64, addr: u64) -> Vec<u8> {
        let mut v = b"HEAP\0\0\0\0".to_vec();
        let l = usize::from(sizes.length());
        let o = usize::from(sizes.offset());
        v.extend_from_slice(&data_size.to_le_bytes()[..l]);
        v.extend_from_slice(&free.to_le_bytes()[..l]);
        v.extend_from_slice(&addr.to_le_bytes()[..o]);
        v
    }

    #[test]
    fn parses_default_sizes() {
        let v = build(Sizes::DEFAULT, 88, 24, 712);
        assert_eq!(v.len() as u64, LocalHeap::header_size(Sizes::DEFAULT));
        let h = parse(&v, 680, Sizes::DEFAULT).unwrap();
        assert_eq!(
            h,
            LocalHeap {
                version: 0,
                data_size: 88,
                free_list_offset: 24,
                data_address: 712
            }
        );
    }

    #[test]
    fn parses_small_sizes_and_undefined_free_list() {
        let sz = s(4, 2);
        let v = build(sz, 16, 0xFFFF, 0x100);
        assert_eq!(v.len(), 16);
        let h = parse(&v, 0, sz).unwrap();
        assert_eq!(h.free_list_offset, UNDEFINED);
        assert_eq!(h.data_size, 16);
        assert_eq!(h.data_address, 0x100);
    }

    #[test]
    fn truncation_is_an_error_at_every_length() {
        let v = build(Sizes::DEFAULT, 88, 24, 712);
        for n in 0..v.len() {
            assert!(parse(&v[..n], 0, Sizes::DEFAULT).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn bad_signature_and_version() {
        let mut v = build(Sizes::DEFAULT, 88, 24, 712);
        v[0] = b'X';
        assert!(matches!(
            parse(&v, 5, Sizes::DEFAULT).unwrap_err().kind,
            ErrorKind::BadSignature { .. }
        ));
        let mut v = build(Sizes::DEFAULT, 88, 24, 712);
        v[4] = 1;
        let e = parse(&v, 100, Sizes::DEFAULT).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedVersion(1));
        assert_eq!(e.offset, 104);
    }

    #[test]
    fn names_are_nul_terminated() {
        let seg = b"\0\0\0\0\0\0\0\0grp\0\0\0\0\0vs\0\0\0\0\0\0abc";
        assert_eq!(name_at(seg, 0), Some(&b""[..]));
        assert_eq!(name_at(seg, 8), Some(&b"grp"[..]));
        assert_eq!(name_at(seg, 16), Some(&b"vs"[..]));
        assert_eq!(name_at(seg, 24), None, "no NUL before the end");
        assert_eq!(name_at(seg, 27), None);
        assert_eq!(name_at(seg, 1000), None);
        assert_eq!(name_at(seg, u64::MAX), None);
    }

    fn free_block(seg: &mut [u8], at: usize, next: u64, size: u64) {
        seg[at..at + 8].copy_from_slice(&next.to_le_bytes());
        seg[at + 8..at + 16].copy_from_slice(&size.to_le_bytes());
    }

    #[test]
    fn free_list_walks_and_terminates() {
        let d = Sizes::DEFAULT;
        let mut seg = vec![0u8; 128];
        free_block(&mut seg, 16, 64, 16);
        free_block(&mut seg, 64, FREE_LIST_END, 64);
        assert_eq!(validate_free_list(&seg, 16, d), Ok(()));
        assert_eq!(validate_free_list(&seg, UNDEFINED, d), Ok(()));
        // libhdf5 writes 1 as the head of an empty list.
        assert_eq!(validate_free_list(&seg, FREE_LIST_END, d), Ok(()));

        // A loop: 16 -> 64 -> 16.
        free_block(&mut seg, 64, 16, 16);
        let e = validate_free_list(&seg, 16, d).unwrap_err();
        assert!(e.contains("loops"), "{e}");
        // A self-loop.
        free_block(&mut seg, 16, 16, 16);
        assert!(validate_free_list(&seg, 16, d).is_err());
    }

    #[test]
    fn free_list_hostile_values() {
        let d = Sizes::DEFAULT;
        let mut seg = vec![0u8; 64];
        // Head outside the segment, or too close to its end.
        assert!(validate_free_list(&seg, 64, d).is_err());
        assert!(validate_free_list(&seg, 56, d).is_err());
        assert!(validate_free_list(&seg, u64::MAX - 1, d).is_err());
        // Size below 2L, size running past the end, size overflowing.
        free_block(&mut seg, 0, FREE_LIST_END, 8);
        assert!(validate_free_list(&seg, 0, d).is_err());
        free_block(&mut seg, 0, FREE_LIST_END, 65);
        assert!(validate_free_list(&seg, 0, d).is_err());
        free_block(&mut seg, 16, FREE_LIST_END, u64::MAX);
        assert!(validate_free_list(&seg, 16, d).is_err());
        // Next pointer outside the segment.
        free_block(&mut seg, 0, 1000, 16);
        assert!(validate_free_list(&seg, 0, d).is_err());
        // Small widths: L = 2, list of one block ending with 1.
        let sz = s(4, 2);
        let seg = [0u8, 0, 0, 0, 1, 0, 4, 0];
        assert_eq!(validate_free_list(&seg, 4, sz), Ok(()));
        assert!(validate_free_list(&seg, 6, sz).is_err());
    }
}

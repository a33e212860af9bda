//! The metadata cache image: the superblock extension's Metadata Cache
//! Image message (spec IV.A.2.y, type 0x0018: version, address and length
//! of the image block) and the block it names (`MDCI`). A file closed with
//! a cache image (`H5Pset_mdc_image_config`) keeps the serialized entries of
//! libhdf5's metadata cache in that block instead of at their own
//! addresses, where nothing (or stale bytes) may lie.
//!
//! The block's layout is not in the specification: it is libhdf5's
//! (`H5Cimage.c`, block version 0), all integers little-endian:
//! - header: signature `MDCI`, version (1 byte, 0), flags (1 byte; bit 0,
//!   "resize status follows", is not supported by libhdf5 either), image
//!   data length (a length field: the whole block, checksum included),
//!   number of entries (4 bytes, at least one);
//! - per entry: type id, flags, ring, age (1 byte each), flush-dependency
//!   child count, dirty child count, parent count (2 bytes each), LRU rank
//!   (4 bytes, signed), the entry's address (an offset field) and size (a
//!   length field, not 0), the parents' addresses (one offset field each),
//!   then `size` bytes: the entry's on-disk image;
//! - a lookup3 checksum of everything before it, as the block's last 4
//!   bytes.

use super::codec::Reader;
use super::{expect_signature, verify_checksum, Error, ErrorKind, Result, Sizes};

pub const STRUCTURE: &str = "metadata cache image";
pub const MESSAGE: &str = "metadata cache image message";

/// The block signature.
pub const SIGNATURE: &[u8; 4] = b"MDCI";

/// The Metadata Cache Image message (spec IV.A.2.y): where the image block
/// lies (a relative address) and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheImageMessage {
    pub address: u64,
    pub length: u64,
}

/// Parses the message body at absolute offset `at` (version 0 only).
pub fn parse_message(body: &[u8], at: u64, sizes: Sizes) -> Result<CacheImageMessage> {
    let mut r = Reader::new(MESSAGE, body, at);
    let version = r.u8()?;
    if version != 0 {
        return Err(Error::new(
            MESSAGE,
            at,
            ErrorKind::UnsupportedVersion(version),
        ));
    }
    let address = r.offset(sizes)?;
    let length = r.length(sizes)?;
    Ok(CacheImageMessage { address, length })
}

/// One entry of the image: where its on-disk image belongs and where it
/// lies in the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheImageEntry {
    /// libhdf5's cache client id (5: object header, 6: header chunk, ...).
    pub type_id: u8,
    pub flags: u8,
    pub ring: u8,
    /// The entry's own (relative) address.
    pub address: u64,
    /// Bytes of its image.
    pub size: u64,
    /// Offset of its image from the start of the block.
    pub image_offset: u64,
}

/// The parsed block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheImage {
    pub flags: u8,
    pub entries: Vec<CacheImageEntry>,
}

/// Most entries a block may list: libhdf5's cache holds far fewer; a
/// block cut short is bounded only by this (its stated length is not
/// checked against anything).
pub const MAX_ENTRIES: u32 = 1 << 20;

/// Bytes of the block header.
fn header_len(sizes: Sizes) -> usize {
    4 + 1 + 1 + usize::from(sizes.length()) + 4
}

/// Bytes of one entry's record before its parents' addresses.
fn entry_header_len(sizes: Sizes) -> usize {
    4 + 2 * 3 + 4 + usize::from(sizes.offset()) + usize::from(sizes.length())
}

/// Parses the whole block `block` (exactly the length the message gives),
/// which lies at absolute offset `at`. The checksum is verified before any
/// entry is read; the entries must fill the block up to the checksum. The
/// entry count is bounded by what the block can hold.
pub fn parse(block: &[u8], at: u64, sizes: Sizes) -> Result<CacheImage> {
    match parse_inner(block, at, sizes, true) {
        (img, None) => Ok(img),
        (_, Some(e)) => Err(e),
    }
}

/// [`parse`] of a block that failed its checksum or is cut short (`block`
/// may be shorter than its image data length): nothing in it is verified,
/// and the entries are read up to the first one that does not frame. The
/// entries read, and what stopped the reading. For a reader that uses
/// only what verifies itself ([`crate::follow::cache_image`]).
pub fn parse_unverified(block: &[u8], at: u64, sizes: Sizes) -> (CacheImage, Option<Error>) {
    parse_inner(block, at, sizes, false)
}

fn parse_inner(block: &[u8], at: u64, sizes: Sizes, verify: bool) -> (CacheImage, Option<Error>) {
    let mut img = CacheImage {
        flags: 0,
        entries: Vec::new(),
    };
    let err = parse_into(block, at, sizes, verify, &mut img).err();
    (img, err)
}

fn parse_into(
    block: &[u8],
    at: u64,
    sizes: Sizes,
    verify: bool,
    img: &mut CacheImage,
) -> Result<()> {
    expect_signature(STRUCTURE, at, block, SIGNATURE)?;
    let too_short = || super::truncated(STRUCTURE, at, (header_len(sizes) + 4) as u64, block.len());
    let mut body_len = block
        .len()
        .checked_sub(4)
        .filter(|&n| n >= header_len(sizes))
        .ok_or_else(too_short)?;
    if verify {
        verify_checksum(STRUCTURE, at, block, body_len)?;
    }
    let mut r = Reader::new(STRUCTURE, &block[..body_len], at);
    r.skip(SIGNATURE.len())?;
    let version = r.u8()?;
    if version != 0 {
        return Err(Error::new(
            STRUCTURE,
            at.saturating_add(4),
            ErrorKind::UnsupportedVersion(version),
        ));
    }
    img.flags = r.u8()?;
    if img.flags != 0 {
        return Err(Error::bad_value(
            STRUCTURE,
            at.saturating_add(5),
            "flags (resize status is not supported)",
            img.flags.into(),
        ));
    }
    let data_len = r.length(sizes)?;
    let cut = !verify && data_len > block.len() as u64;
    if data_len != block.len() as u64 && !cut {
        return Err(Error::bad_value(
            STRUCTURE,
            at.saturating_add(6),
            "image data length",
            data_len,
        ));
    }
    if cut {
        // No checksum in what is left: every byte may be an entry's.
        body_len = block.len();
        r = Reader::new(STRUCTURE, block, at);
        r.skip(header_len(sizes) - 4)?;
    }
    let count = r.u32()?;
    let each = entry_header_len(sizes) + 1;
    let declared = usize::try_from(data_len.saturating_sub(4)).unwrap_or(usize::MAX);
    let most = declared.saturating_sub(header_len(sizes)) / each;
    if count == 0 || count as usize > most || count > MAX_ENTRIES {
        return Err(Error::bad_value(
            STRUCTURE,
            r.abs().saturating_sub(4),
            "entry count (0, more than the block holds, or over the cap of 2^20)",
            count.into(),
        ));
    }
    // Bounded by the bytes present, whatever the count says.
    let present = body_len.saturating_sub(header_len(sizes)) / each;
    img.entries.reserve(present.min(count as usize));
    for _ in 0..count {
        img.entries.push(entry(&mut r, sizes)?);
    }
    if r.remaining() != 0 {
        return Err(Error::invalid(
            STRUCTURE,
            r.abs(),
            format!(
                "{} bytes between the last entry and the checksum",
                r.remaining()
            ),
        ));
    }
    Ok(())
}

/// One entry record and its image (the image is skipped; its place is
/// recorded).
fn entry(r: &mut Reader, sizes: Sizes) -> Result<CacheImageEntry> {
    let start = r.abs();
    let type_id = r.u8()?;
    let flags = r.u8()?;
    let ring = r.u8()?;
    let _age = r.u8()?;
    let children = r.u16()?;
    let dirty_children = r.u16()?;
    if dirty_children > children {
        return Err(Error::bad_value(
            STRUCTURE,
            start.saturating_add(6),
            "dirty flush dependency child count",
            dirty_children.into(),
        ));
    }
    let parents = r.u16()?;
    let _lru_rank = r.u32()?;
    let address = r.offset(sizes)?;
    if super::is_undefined(address) {
        return Err(Error::bad_value(STRUCTURE, start, "entry address", address));
    }
    let size = r.length(sizes)?;
    if size == 0 {
        return Err(Error::bad_value(STRUCTURE, start, "entry size", 0));
    }
    let parent_bytes = usize::from(parents) * usize::from(sizes.offset());
    r.skip(parent_bytes)?;
    let image_offset = r.pos() as u64;
    let n = usize::try_from(size).map_err(|_| r.truncated(usize::MAX))?;
    r.skip(n)?;
    Ok(CacheImageEntry {
        type_id,
        flags,
        ring,
        address,
        size,
        image_offset,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::format::test_support::seal;

    /// A block with one entry per `(address, image, parents)`.
    pub fn block(entries: &[(u64, &[u8], &[u64])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (addr, image, parents) in entries {
            body.extend([5, 0x03, 1, 0]);
            body.extend(0u16.to_le_bytes());
            body.extend(0u16.to_le_bytes());
            body.extend((parents.len() as u16).to_le_bytes());
            body.extend(1u32.to_le_bytes());
            body.extend(addr.to_le_bytes());
            body.extend((image.len() as u64).to_le_bytes());
            for p in *parents {
                body.extend(p.to_le_bytes());
            }
            body.extend(*image);
        }
        let len = (18 + body.len() + 4) as u64;
        let mut v = b"MDCI".to_vec();
        v.extend([0, 0]);
        v.extend(len.to_le_bytes());
        v.extend((entries.len() as u32).to_le_bytes());
        v.extend(body);
        seal(v)
    }

    #[test]
    fn message_fields() {
        let mut b = vec![0u8];
        b.extend(0x9e9u64.to_le_bytes());
        b.extend(0x229u64.to_le_bytes());
        let m = parse_message(&b, 0x200, Sizes::DEFAULT).unwrap();
        assert_eq!(
            m,
            CacheImageMessage {
                address: 0x9e9,
                length: 0x229
            }
        );
        b[0] = 1;
        assert!(parse_message(&b, 0x200, Sizes::DEFAULT).is_err());
        assert!(parse_message(&b[..9], 0x200, Sizes::DEFAULT).is_err());
    }

    #[test]
    fn entries_and_their_places() {
        let b = block(&[(0x156, b"OHDR-one", &[]), (0x30, b"two", &[0x156])]);
        let img = parse(&b, 0x9e9, Sizes::DEFAULT).unwrap();
        assert_eq!(img.entries.len(), 2);
        let e = img.entries[0];
        assert_eq!((e.address, e.size, e.image_offset), (0x156, 8, 18 + 30));
        let s = e.image_offset as usize;
        assert_eq!(&b[s..s + 8], b"OHDR-one");
        let e = img.entries[1];
        assert_eq!((e.address, e.size), (0x30, 3));
        let s = e.image_offset as usize;
        assert_eq!(&b[s..s + 3], b"two");
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let good = block(&[(0x156, b"OHDR-one", &[]), (0x30, b"two", &[0x156])]);
        // Checksum: any flipped byte.
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x10;
            assert!(parse(&b, 0, Sizes::DEFAULT).is_err(), "byte {i}");
        }
        // Every truncation.
        for n in 0..good.len() {
            assert!(parse(&good[..n], 0, Sizes::DEFAULT).is_err(), "len {n}");
        }
        // A huge entry count or entry size, checksum made right again.
        let body = &good[..good.len() - 4];
        let mut b = body.to_vec();
        b[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            parse(&seal(b), 0, Sizes::DEFAULT).unwrap_err().kind,
            ErrorKind::BadValue { .. }
        ));
        let mut b = body.to_vec();
        b[18 + 22..18 + 30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse(&seal(b), 0, Sizes::DEFAULT).is_err());
        // Fewer entries than recorded: bytes left before the checksum.
        let mut b = body.to_vec();
        b[14] = 1;
        assert!(parse(&seal(b), 0, Sizes::DEFAULT).is_err());
    }

    /// A block cut short: the entries before the cut, and the error that
    /// stopped the reading; the verified parse refuses it.
    #[test]
    fn cut_block_gives_its_complete_entries() {
        let good = block(&[(0x156, b"OHDR-one", &[]), (0x30, b"two-two-two", &[])]);
        let first_end = 18 + 30 + 8;
        for n in first_end..good.len() - 4 {
            assert!(parse(&good[..n], 0, Sizes::DEFAULT).is_err());
            let (img, stop) = parse_unverified(&good[..n], 0, Sizes::DEFAULT);
            assert_eq!(img.entries.len(), 1, "len {n}");
            assert!(stop.is_some(), "len {n}");
        }
        let (img, stop) = parse_unverified(&good[..first_end - 1], 0, Sizes::DEFAULT);
        assert!(img.entries.is_empty() && stop.is_some());
        // Complete, bad checksum: every entry, no error.
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 1;
        let (img, stop) = parse_unverified(&bad, 0, Sizes::DEFAULT);
        assert_eq!((img.entries.len(), stop), (2, None));
    }

    /// A block cut short that states a huge length and more entries than
    /// the cap: refused before any entry is read (its count is bounded by
    /// nothing else).
    #[test]
    fn cut_block_entry_count_is_capped() {
        let good = block(&[(0x156, b"OHDR-one", &[]), (0x30, b"two", &[])]);
        let mut b = good[..good.len() - 4].to_vec();
        b[6..14].copy_from_slice(&(1u64 << 40).to_le_bytes());
        for (count, read) in [(MAX_ENTRIES + 1, 0), (MAX_ENTRIES, 2)] {
            b[14..18].copy_from_slice(&count.to_le_bytes());
            let (img, stop) = parse_unverified(&b, 0, Sizes::DEFAULT);
            assert_eq!(img.entries.len(), read, "count {count}");
            let stop = stop.expect("stopped");
            assert_eq!(
                matches!(stop.kind, ErrorKind::BadValue { .. }),
                read == 0,
                "{stop:?}"
            );
        }
    }

    /// The block h5py's libhdf5 (HDF5 2.0) wrote in
    /// testdata/unsupported/mdci_latest.h5: three object headers.
    #[test]
    fn libhdf5_block() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/unsupported/mdci_latest.h5"
        );
        let file = std::fs::read(path).unwrap();
        let block = &file[0x9e9..0x9e9 + 0x229];
        let img = parse(block, 0x9e9, Sizes::DEFAULT).unwrap();
        let homes: Vec<(u64, u64)> = img.entries.iter().map(|e| (e.address, e.size)).collect();
        assert_eq!(homes, [(0x156, 0x93), (0x30, 0x93), (0xc3, 0x93)]);
        for e in &img.entries {
            let s = e.image_offset as usize;
            assert_eq!(&block[s..s + 4], b"OHDR");
        }
    }
}

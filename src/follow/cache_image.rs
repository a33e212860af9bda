//! The metadata cache image ([`crate::format::cache_image`]): from the
//! superblock extension's Metadata Cache Image message (spec IV.A.2.y) to
//! the image block, checked, and turned into an [`Overlay`]: the copies
//! that put every entry's image at its own address, where the walk, the
//! carver and the readers look for it (libhdf5 leaves nothing, or stale
//! bytes, there).
//!
//! Checked before anything is used: the block's checksum and framing, and
//! per entry that its address range lies inside the file, meets neither
//! the block nor another entry, and, for the structures whose checksum
//! closes their image, that the checksum matches. A block that fails its
//! checksum (but still frames) gives only the entries that verify
//! themselves and whose own address holds nothing or an older version of
//! them ([`relocate`]); one that does not frame gives none, and every
//! structure is read at its own address. A rejected entry is a problem and
//! stays unrelocated.

use std::collections::BTreeMap;

use super::object_header::read_all_messages;
use super::Image;
use crate::format::cache_image::{self, CacheImageEntry, MESSAGE, STRUCTURE};
use crate::format::message::kind;
use crate::format::{is_undefined, verify_checksum, Error, ErrorKind};

/// Signatures of structures whose image ends with the lookup3 checksum of
/// the bytes before it (spec IV.A.1.b object header chunk 0 and
/// continuation blocks, III.A.2 v2 B-tree header, III.G fractal heap header
/// and indirect block, the free-space manager header and section list,
/// VII fixed and extensible array blocks: the entry of a paged data block
/// is its prefix, which ends with the checksum): an entry starting with one
/// of these is verified. (v2 B-tree nodes keep their checksum before their
/// padding, fractal heap direct blocks in their header: the walk's parsers
/// check those where they read them.)
const CHECKSUM_AT_END: [&[u8; 4]; 13] = [
    b"OHDR", b"OCHK", b"BTHD", b"FRHP", b"FHIB", b"FSHD", b"FSSE", b"FAHD", b"FADB", b"EAHD",
    b"EAIB", b"EASB", b"EADB",
];

/// One entry's image, copied from the block to its own address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relocation {
    /// Absolute offset of the entry's own address.
    pub home: u64,
    /// Absolute offset of its image inside the block.
    pub from: u64,
    pub len: u64,
}

/// What the cache image holds and what of it is used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overlay {
    /// Absolute offset and length of the image block (`None` when the
    /// message itself could not be read).
    pub block: Option<(u64, u64)>,
    /// Entries the block lists (0 when it could not be parsed).
    pub entries: usize,
    /// The entries that are used.
    pub relocations: Vec<Relocation>,
    /// Everything wrong with the message, the block or an entry.
    pub problems: Vec<Error>,
}

impl Overlay {
    /// Copies every relocated image to its own address in `bytes` (the
    /// file's bytes, or a copy of them: never the input itself).
    pub fn apply(&self, bytes: &mut [u8]) {
        for r in &self.relocations {
            let (Ok(from), Ok(home), Ok(len)) = (
                usize::try_from(r.from),
                usize::try_from(r.home),
                usize::try_from(r.len),
            ) else {
                continue;
            };
            let fits = |s: usize| s.checked_add(len).is_some_and(|e| e <= bytes.len());
            if fits(from) && fits(home) {
                bytes.copy_within(from..from + len, home);
            }
        }
    }

    /// True if `abs` lies inside the image block.
    pub fn in_block(&self, abs: u64) -> bool {
        self.block.is_some_and(|(s, l)| abs >= s && abs - s < l)
    }
}

/// The cache image the superblock extension at `extension` names, or
/// `None` when it names none.
pub fn read(image: &Image, extension: u64) -> Option<Overlay> {
    let (_, raws, _) = read_all_messages(image, extension);
    let raw = raws.iter().find(|r| r.kind == kind::CACHE_IMAGE)?;
    let mut overlay = Overlay::default();
    let message = raw
        .body(image.bytes)
        .ok_or_else(|| Error::invalid(MESSAGE, raw.body_offset, "message body outside the file"))
        .and_then(|body| cache_image::parse_message(body, raw.body_offset, image.sizes));
    let message = match message {
        Ok(m) => m,
        Err(e) => {
            overlay.problems.push(e);
            return Some(overlay);
        }
    };
    let at = image.absolute(message.address).unwrap_or_default();
    overlay.block = Some((at, message.length));
    // A block cut short by the end of the file is read as far as it goes.
    let (block, complete) = match image.slice(STRUCTURE, message.address, message.length) {
        Ok(b) => (b, true),
        Err(e) => {
            overlay.problems.push(e);
            match image.at(STRUCTURE, message.address) {
                Ok(b) => (b, false),
                Err(_) => return Some(overlay),
            }
        }
    };
    let (img, verified) = match complete.then(|| cache_image::parse(block, at, image.sizes)) {
        Some(Ok(img)) => (img, true),
        Some(Err(e)) if !matches!(e.kind, ErrorKind::BadChecksum { .. }) => {
            overlay.problems.push(e);
            return Some(overlay);
        }
        failed => {
            overlay.problems.extend(failed.and_then(Result::err));
            let (img, stop) = cache_image::parse_unverified(block, at, image.sizes);
            overlay.problems.extend(stop);
            (img, false)
        }
    };
    overlay.entries = img.entries.len();
    relocate(image, block, at, &img.entries, verified, &mut overlay);
    Some(overlay)
}

/// Checks each entry and records the ones that may be used. From a block
/// that failed its checksum (`verified` false) only entries that verify
/// themselves are used, and only where their own address holds nothing
/// (zeros) or an older version of the same structure (its signature):
/// what the dirty entries' own addresses hold is stale, so such an entry
/// is better than its address, and a damaged entry address cannot put it
/// over raw data or another kind of structure.
fn relocate(
    image: &Image,
    block: &[u8],
    at: u64,
    entries: &[CacheImageEntry],
    verified: bool,
    overlay: &mut Overlay,
) {
    let (block_start, block_end) = (at, at.saturating_add(block.len() as u64));
    // Ranges of the entries used so far (start -> end), disjoint.
    let mut taken: BTreeMap<u64, u64> = BTreeMap::new();
    let mut faults = Faults::default();
    for e in entries {
        let from = at.saturating_add(e.image_offset);
        let reject = |what: &str| Error::invalid(STRUCTURE, from, what.to_string());
        let home = match image.absolute(e.address) {
            Some(h) if !is_undefined(e.address) && image.contains(e.address, e.size) => h,
            _ => {
                faults.push(Error::bad_value(
                    STRUCTURE,
                    from,
                    "entry address (its range lies outside the file)",
                    e.address,
                ));
                continue;
            }
        };
        let end = home.saturating_add(e.size);
        if home < block_end && block_start < end {
            faults.push(reject("entry's own address range meets the image block"));
            continue;
        }
        if taken
            .range(..end)
            .next_back()
            .is_some_and(|(_, &t)| t > home)
        {
            faults.push(reject("entry's own address range meets another entry's"));
            continue;
        }
        let Some(img) = usize::try_from(e.image_offset)
            .ok()
            .zip(usize::try_from(e.size).ok())
            .and_then(|(s, n)| block.get(s..s.checked_add(n)?))
        else {
            continue;
        };
        if let Some(err) = own_checksum(img, from) {
            faults.push(err);
            continue;
        }
        let usable = verified || (self_verifying(img) && vacant_or_older(image, home, img));
        if !usable {
            faults.push(reject(
                "entry not used: the block fails its checksum, and the entry cannot be verified \
                 on its own or its own address holds something else",
            ));
            continue;
        }
        taken.insert(home, end);
        overlay.relocations.push(Relocation {
            home,
            from,
            len: e.size,
        });
    }
    faults.finish(at, &mut overlay.problems);
}

/// Most entry faults recorded one by one; the rest are counted in one.
const MAX_ENTRY_FAULTS: usize = 64;

/// The faults of the entries of one block, bounded ([`MAX_ENTRY_FAULTS`]):
/// a hostile block can list millions of entries.
#[derive(Default)]
struct Faults {
    listed: Vec<Error>,
    more: u64,
}

impl Faults {
    fn push(&mut self, e: Error) {
        if self.listed.len() < MAX_ENTRY_FAULTS {
            self.listed.push(e);
        } else {
            self.more = self.more.saturating_add(1);
        }
    }

    fn finish(self, at: u64, problems: &mut Vec<Error>) {
        problems.extend(self.listed);
        if self.more > 0 {
            problems.push(Error::bad_value(
                STRUCTURE,
                at,
                "further entries not used (not listed one by one)",
                self.more,
            ));
        }
    }
}

/// True if `img` is a structure whose image ends with its own checksum
/// ([`own_checksum`] has passed it).
fn self_verifying(img: &[u8]) -> bool {
    img.get(..4)
        .is_some_and(|sig| CHECKSUM_AT_END.iter().any(|s| &s[..] == sig))
}

/// True if the file's bytes at absolute `home` begin with the signature
/// of `img` or are all zero over the entry's length.
fn vacant_or_older(image: &Image, home: u64, img: &[u8]) -> bool {
    let Some(there) = usize::try_from(home)
        .ok()
        .and_then(|h| image.bytes.get(h..h.checked_add(img.len())?))
    else {
        return false;
    };
    there.get(..4) == img.get(..4) || there.iter().all(|&b| b == 0)
}

/// The error when `img` (at absolute `from`) is a structure whose image
/// ends with its checksum and that checksum does not match.
fn own_checksum(img: &[u8], from: u64) -> Option<Error> {
    let sig = img.get(..4)?;
    if !CHECKSUM_AT_END.iter().any(|s| &s[..] == sig) {
        return None;
    }
    let len = img.len().checked_sub(4)?;
    match verify_checksum(STRUCTURE, from, img, len) {
        Ok(()) => None,
        Err(e) if matches!(e.kind, ErrorKind::BadChecksum { .. }) => {
            Some(Error::new("metadata cache image entry", e.offset, e.kind))
        }
        Err(e) => Some(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::cache_image::tests::block;
    use crate::format::test_support::seal;
    use crate::format::Sizes;

    /// A file of `len` zero bytes with `block` at `at`, read as if the
    /// extension named it (the message is handed in directly).
    fn overlay_of(file: &[u8], at: u64, len: u64) -> Overlay {
        let image = Image::new(file, 0, Sizes::DEFAULT);
        let mut o = Overlay::default();
        let blk = image.slice(STRUCTURE, at, len).unwrap();
        o.block = Some((at, len));
        let img = cache_image::parse(blk, at, Sizes::DEFAULT).unwrap();
        o.entries = img.entries.len();
        relocate(&image, blk, at, &img.entries, true, &mut o);
        o
    }

    #[test]
    fn entries_go_home_and_bad_ones_stay_out() {
        let ohdr_ok = seal(b"OHDR\x02\x00abc".to_vec());
        let mut ohdr_bad = ohdr_ok.clone();
        ohdr_bad[6] ^= 1;
        let blk = block(&[
            (0x10, &ohdr_ok, &[]),
            (0x40, b"plain", &[]),
            (0x80, &ohdr_bad, &[]),  // checksum fails
            (0x12, b"over", &[]),    // meets the first entry
            (0x1000, b"far", &[]),   // outside the file
            (0x200, b"inside", &[]), // inside the block itself
        ]);
        let mut file = vec![0u8; 0x400];
        file[0x200..0x200 + blk.len()].copy_from_slice(&blk);
        let o = overlay_of(&file, 0x200, blk.len() as u64);
        assert_eq!(o.entries, 6);
        assert_eq!(o.relocations.len(), 2, "{o:?}");
        assert_eq!(o.problems.len(), 4, "{:?}", o.problems);
        assert!(o
            .problems
            .iter()
            .any(|e| matches!(e.kind, ErrorKind::BadChecksum { .. })));
        let mut patched = file.clone();
        o.apply(&mut patched);
        assert_eq!(&patched[0x10..0x10 + ohdr_ok.len()], &ohdr_ok[..]);
        assert_eq!(&patched[0x40..0x45], b"plain");
        assert!(patched[0x80..0x90].iter().all(|&b| b == 0));
        assert!(o.in_block(0x200) && !o.in_block(0x1ff));
    }

    /// Many entries: the overlap check is not quadratic, and the faults
    /// recorded are bounded.
    #[test]
    fn many_entries_are_bounded() {
        let n = 50_000u64;
        let list: Vec<(u64, &[u8], &[u64])> = (0..n)
            .map(|i| (if i % 2 == 0 { i } else { 0 }, &b"x"[..], &[][..]))
            .collect();
        let blk = block(&list);
        let at = 0x10_0000u64;
        let mut file = vec![0u8; at as usize];
        file.extend(&blk);
        let o = overlay_of(&file, at, blk.len() as u64);
        assert_eq!(o.entries, n as usize);
        assert_eq!(o.relocations.len(), (n / 2) as usize);
        assert_eq!(
            o.problems.len(),
            MAX_ENTRY_FAULTS + 1,
            "{:?}",
            o.problems.last()
        );
    }

    /// From a block that failed its checksum: only self-verifying entries
    /// whose own address is vacant or holds the same kind of structure.
    #[test]
    fn unverified_block_gives_only_self_verifying_entries() {
        let ohdr = seal(b"OHDR\x02\x00abc".to_vec());
        let blk = block(&[
            (0x10, &ohdr, &[]),    // vacant address: used
            (0x40, &ohdr, &[]),    // an older OHDR there: used
            (0x80, &ohdr, &[]),    // raw data there: not used
            (0xc0, b"plain", &[]), // no checksum of its own: not used
        ]);
        let mut file = vec![0u8; 0x400];
        file[0x40..0x44].copy_from_slice(b"OHDR");
        file[0x80..0x90].fill(7);
        file[0x200..0x200 + blk.len()].copy_from_slice(&blk);
        let image = Image::new(&file, 0, Sizes::DEFAULT);
        let (img, stop) = cache_image::parse_unverified(&blk, 0x200, Sizes::DEFAULT);
        assert!(stop.is_none(), "{stop:?}");
        let mut o = Overlay::default();
        relocate(&image, &blk, 0x200, &img.entries, false, &mut o);
        let homes: Vec<u64> = o.relocations.iter().map(|r| r.home).collect();
        assert_eq!(homes, [0x10, 0x40]);
        assert_eq!(o.problems.len(), 2, "{:?}", o.problems);
    }
}

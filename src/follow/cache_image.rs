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
//! themselves and whose own address holds nothing or the same kind of
//! structure, marked unverified ([`relocate`]); one that does not frame
//! gives none, and every structure is read at its own address. A rejected
//! entry is a problem and stays unrelocated. In a file that was not closed,
//! a newer version at an entry's own address is read instead of the
//! image's copy.

use super::object_header::read_all_messages;
use super::Image;
use crate::format::cache_image::{self, CacheImageEntry, MESSAGE, STRUCTURE};
use crate::format::message::kind;
use crate::format::{is_undefined, verify_checksum, Error, ErrorKind};
use crate::inventory::{Problem, ProblemKind};

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
    /// From a block whose checksum matched. False: the entry verified
    /// itself, but its address is covered by no checksum.
    pub verified: bool,
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
    pub problems: Vec<Problem>,
}

impl Overlay {
    /// Copies every relocated image to its own address in `bytes` (the
    /// file's bytes, or a copy of them: never the input itself).
    pub fn apply(&self, bytes: &mut [u8]) {
        apply(&self.relocations, bytes);
    }

    /// True if `abs` lies inside the image block.
    pub fn in_block(&self, abs: u64) -> bool {
        self.block.is_some_and(|(s, l)| abs >= s && abs - s < l)
    }
}

/// Copies every relocated image to its own address in `bytes`
/// ([`Overlay::apply`]).
pub fn apply(relocations: &[Relocation], bytes: &mut [u8]) {
    for r in relocations {
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

/// The cache image the superblock extension at `extension` names, or
/// `None` when it names none. `unclosed`: the superblock shows that the
/// writer did not close the file ([`relocate`]).
pub fn read(image: &Image, extension: u64, unclosed: bool) -> Option<Overlay> {
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
            overlay.problems.push(e.into());
            return Some(overlay);
        }
    };
    let at = image.absolute(message.address).unwrap_or_default();
    overlay.block = Some((at, message.length));
    // A block cut short by the end of the file is read as far as it goes.
    let (block, complete) = match image.slice(STRUCTURE, message.address, message.length) {
        Ok(b) => (b, true),
        Err(e) => {
            overlay.problems.push(e.into());
            match image.at(STRUCTURE, message.address) {
                Ok(b) => (b, false),
                Err(_) => return Some(overlay),
            }
        }
    };
    let (img, verified) = match complete.then(|| cache_image::parse(block, at, image.sizes)) {
        Some(Ok(img)) => (img, true),
        Some(Err(e)) if !matches!(e.kind, ErrorKind::BadChecksum { .. }) => {
            overlay.problems.push(e.into());
            return Some(overlay);
        }
        failed => {
            overlay
                .problems
                .extend(failed.and_then(Result::err).map(Problem::from));
            let (img, stop) = cache_image::parse_unverified(block, at, image.sizes);
            overlay.problems.extend(stop.map(Problem::from));
            (img, false)
        }
    };
    overlay.entries = img.entries.len();
    relocate(
        image,
        block,
        at,
        &img.entries,
        verified,
        unclosed,
        &mut overlay,
    );
    Some(overlay)
}

/// Checks each entry and records the ones that may be used.
///
/// From a block that failed its checksum (`verified` false) only entries
/// that verify themselves are used, and only where their own address holds
/// nothing (zeros) or the same kind of structure (its signature): what the
/// dirty entries' own addresses hold is stale, so such an entry is better
/// than its address. Their address is covered by no checksum, so such a
/// relocation is marked unverified: what is read through it, and any raw
/// data it lands on, is never called recovered ([`crate::inventory::
/// check_relocated`]).
///
/// In a file its writer did not close (`unclosed`), an entry whose own
/// address holds the same kind of structure, verifying itself and
/// different from the image's copy, is two versions: a flush after the
/// image was loaded writes the entries' own addresses, and the image is
/// written only at a close (which would have cleared the flag), so the
/// version at the address is the newer one and is the one read. The
/// image's copy is not used (a problem names it).
///
/// Entries whose own address ranges meet each other are all rejected:
/// which one is right cannot be told.
fn relocate(
    image: &Image,
    block: &[u8],
    at: u64,
    entries: &[CacheImageEntry],
    verified: bool,
    unclosed: bool,
    overlay: &mut Overlay,
) {
    let (block_start, block_end) = (at, at.saturating_add(block.len() as u64));
    let mut candidates: Vec<Relocation> = Vec::new();
    let mut faults = Faults::default();
    for e in entries {
        let from = at.saturating_add(e.image_offset);
        let reject = |what: &str| Error::invalid(STRUCTURE, from, what.to_string());
        let home = match image.absolute(e.address) {
            Some(h) if !is_undefined(e.address) && image.contains(e.address, e.size) => h,
            _ => {
                faults.push(
                    Error::bad_value(
                        STRUCTURE,
                        from,
                        "entry address (its range lies outside the file)",
                        e.address,
                    )
                    .into(),
                );
                continue;
            }
        };
        let end = home.saturating_add(e.size);
        if home < block_end && block_start < end {
            faults.push(reject("entry's own address range meets the image block").into());
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
            faults.push(err.into());
            continue;
        }
        let there = home_bytes(image, home, img.len());
        let same_kind = there.is_some_and(|t| t.get(..4) == img.get(..4));
        if unclosed && same_kind && self_verifying(img) {
            let t = there.unwrap_or_default();
            if t != img && own_checksum(t, home).is_none() {
                faults.push(Problem::new(
                    ProblemKind::Ambiguous,
                    Some(from),
                    STRUCTURE,
                    format!(
                        "two versions of the {} at {home:#x}: the file was not closed, and its own \
                         address holds a verifying version that differs from the image's copy \
                         (a flush after the image was loaded); the one at its address is read, \
                         the image's copy ({} bytes at {from:#x}) is not used",
                        String::from_utf8_lossy(&img[..4]),
                        img.len()
                    ),
                ));
                continue;
            }
        }
        let vacant = there.is_some_and(|t| t.iter().all(|&b| b == 0));
        let usable = verified || (self_verifying(img) && (same_kind || vacant));
        if !usable {
            faults.push(
                reject(
                    "entry not used: the block fails its checksum, and the entry cannot be \
                     verified on its own or its own address holds something else",
                )
                .into(),
            );
            continue;
        }
        candidates.push(Relocation {
            home,
            from,
            len: e.size,
            verified,
        });
    }
    // Entries whose own ranges meet: none of them is used.
    candidates.sort_by_key(|r| (r.home, r.from));
    let mut clash = vec![false; candidates.len()];
    let mut reach: Option<(u64, usize)> = None; // furthest end so far, and whose
    for (i, r) in candidates.iter().enumerate() {
        let end = r.home.saturating_add(r.len);
        if let Some((e, j)) = reach {
            if r.home < e {
                clash[i] = true;
                clash[j] = true;
            }
        }
        if reach.is_none_or(|(e, _)| end > e) {
            reach = Some((end, i));
        }
    }
    for (r, c) in candidates.into_iter().zip(clash) {
        if c {
            faults.push(Problem::new(
                ProblemKind::Overlap,
                Some(r.from),
                STRUCTURE,
                format!(
                    "entry's own address range {:#x}..{:#x} meets another entry's: neither is used",
                    r.home,
                    r.home.saturating_add(r.len)
                ),
            ));
        } else {
            overlay.relocations.push(r);
        }
    }
    overlay.relocations.sort_by_key(|r| r.from);
    faults.finish(at, &mut overlay.problems);
}

/// Most entry faults recorded one by one; the rest are counted in one.
const MAX_ENTRY_FAULTS: usize = 64;

/// The faults of the entries of one block, bounded ([`MAX_ENTRY_FAULTS`]):
/// a hostile block can list millions of entries.
#[derive(Default)]
struct Faults {
    listed: Vec<Problem>,
    more: u64,
}

impl Faults {
    fn push(&mut self, e: Problem) {
        if self.listed.len() < MAX_ENTRY_FAULTS {
            self.listed.push(e);
        } else {
            self.more = self.more.saturating_add(1);
        }
    }

    fn finish(self, at: u64, problems: &mut Vec<Problem>) {
        problems.extend(self.listed);
        if self.more > 0 {
            problems.push(
                Error::bad_value(
                    STRUCTURE,
                    at,
                    "further entries not used (not listed one by one)",
                    self.more,
                )
                .into(),
            );
        }
    }
}

/// True if `img` is a structure whose image ends with its own checksum
/// ([`own_checksum`] has passed it).
fn self_verifying(img: &[u8]) -> bool {
    img.get(..4)
        .is_some_and(|sig| CHECKSUM_AT_END.iter().any(|s| &s[..] == sig))
}

/// The file's `len` bytes at absolute `home`, if they lie in it.
fn home_bytes<'a>(image: &Image<'a>, home: u64, len: usize) -> Option<&'a [u8]> {
    usize::try_from(home)
        .ok()
        .and_then(|h| image.bytes.get(h..h.checked_add(len)?))
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
        relocate(&image, blk, at, &img.entries, true, false, &mut o);
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
            (0x12, b"over", &[]),    // meets the first entry: neither used
            (0x1000, b"far", &[]),   // outside the file
            (0x200, b"inside", &[]), // inside the block itself
        ]);
        let mut file = vec![0u8; 0x400];
        file[0x200..0x200 + blk.len()].copy_from_slice(&blk);
        let o = overlay_of(&file, 0x200, blk.len() as u64);
        assert_eq!(o.entries, 6);
        assert_eq!(o.relocations.len(), 1, "{o:?}");
        assert_eq!(o.problems.len(), 5, "{:?}", o.problems);
        assert!(o.problems.iter().any(|e| e.kind == ProblemKind::Checksum));
        let mut patched = file.clone();
        o.apply(&mut patched);
        assert!(patched[0x10..0x20].iter().all(|&b| b == 0));
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
        // The entries at 0 all meet: none of them is used.
        assert_eq!(o.relocations.len(), (n / 2 - 1) as usize);
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
        relocate(&image, &blk, 0x200, &img.entries, false, false, &mut o);
        let homes: Vec<u64> = o.relocations.iter().map(|r| r.home).collect();
        assert_eq!(homes, [0x10, 0x40]);
        assert!(o.relocations.iter().all(|r| !r.verified));
        assert_eq!(o.problems.len(), 2, "{:?}", o.problems);
    }

    /// Two entries of a verified block whose own ranges meet: neither is
    /// used (which one is right cannot be told), whatever their order.
    #[test]
    fn overlapping_entries_are_both_rejected() {
        for (a, b) in [(0x10u64, 0x14u64), (0x14, 0x10)] {
            let blk = block(&[
                (a, b"first-entry", &[]),
                (b, b"second", &[]),
                (0x80, b"alone", &[]),
            ]);
            let mut file = vec![0u8; 0x400];
            file[0x200..0x200 + blk.len()].copy_from_slice(&blk);
            let o = overlay_of(&file, 0x200, blk.len() as u64);
            let homes: Vec<u64> = o.relocations.iter().map(|r| r.home).collect();
            assert_eq!(homes, [0x80], "{o:?}");
            assert!(o.relocations.iter().all(|r| r.verified));
            let overlaps = o.problems.iter().filter(|p| p.kind == ProblemKind::Overlap);
            assert_eq!(overlaps.count(), 2, "{:?}", o.problems);
        }
    }

    /// A file not closed whose entry's own address holds a verifying,
    /// different version of the same structure: two versions, the one at
    /// the address is read (not relocated). Closed, or the same bytes there,
    /// the image's copy is used.
    #[test]
    fn unclosed_file_keeps_the_newer_version_at_its_address() {
        let old = seal(b"OHDR\x02\x00old".to_vec());
        let new = seal(b"OHDR\x02\x00new".to_vec());
        let blk = block(&[(0x10, &old, &[]), (0x40, &old, &[])]);
        let mut file = vec![0u8; 0x400];
        file[0x10..0x10 + new.len()].copy_from_slice(&new);
        file[0x40..0x40 + old.len()].copy_from_slice(&old);
        file[0x200..0x200 + blk.len()].copy_from_slice(&blk);
        let image = Image::new(&file, 0, Sizes::DEFAULT);
        let img = cache_image::parse(&blk, 0x200, Sizes::DEFAULT).unwrap();
        for (unclosed, homes) in [(true, vec![0x40]), (false, vec![0x10, 0x40])] {
            let mut o = Overlay::default();
            relocate(&image, &blk, 0x200, &img.entries, true, unclosed, &mut o);
            let got: Vec<u64> = o.relocations.iter().map(|r| r.home).collect();
            assert_eq!(got, homes, "unclosed {unclosed}");
            let two = o
                .problems
                .iter()
                .filter(|p| p.kind == ProblemKind::Ambiguous);
            assert_eq!(two.count(), usize::from(unclosed), "{:?}", o.problems);
        }
    }
}

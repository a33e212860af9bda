//! Link messages (spec IV.A.2.g) recovered from fractal heap direct blocks
//! (`FHDB`, spec III.G) whose heap header is lost. Without the header the
//! block's size and its objects' boundaries are unknown, so the data area is
//! scanned byte by byte for a version-1 link message whose framing is exact,
//! whose name is clean text and whose hard-link target is an object header
//! the caller recognises. Only hard links are kept: nothing else can be
//! cross-checked.

use crate::follow::Image;
use crate::format::message::link::{self, LinkTarget};
use crate::format::{fractal_heap, is_undefined, Sizes};

/// One hard link found in an orphan direct block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrphanLink {
    /// Relative address of the heap header the block names.
    pub heap: u64,
    /// Absolute offset of the link message.
    pub at: u64,
    pub name: String,
    /// Relative address of the target object header.
    pub target: u64,
    /// The caller recognised an object header at `target`. Links whose
    /// target is not a header are kept (a header that never reached the
    /// disk) but the scan does not skip over them.
    pub header: bool,
}

/// Longest stretch scanned after one direct block's prefix.
pub const MAX_BLOCK: u64 = 1 << 20;

/// Scans the direct block whose signature is at absolute `start`, up to the
/// absolute offset `end` (the next structure, or the end of the file).
/// `is_header(addr)` says whether a relative address holds an object header.
pub fn scan_direct_block(
    image: &Image,
    start: u64,
    end: u64,
    is_header: &mut dyn FnMut(u64) -> bool,
) -> Vec<OrphanLink> {
    let mut out = Vec::new();
    let Some(data) = usize::try_from(start)
        .ok()
        .and_then(|s| image.bytes.get(s..))
    else {
        return out;
    };
    // Link heaps of h5py files use 4-byte block offsets (17-byte prefix).
    let Ok(raw) = fractal_heap::parse_direct_block_standalone(data, start, image.sizes, 4) else {
        return out;
    };
    let limit = end
        .saturating_sub(start)
        .min(MAX_BLOCK)
        .min(data.len() as u64) as usize;
    let mut pos = usize::try_from(raw.prefix_size).unwrap_or(usize::MAX);
    while pos < limit {
        let window = data.get(pos..limit).unwrap_or_default();
        // Link message version 1 starts every object.
        let Some(skip) = memchr::memchr(1, window) else {
            break;
        };
        pos = pos.saturating_add(skip);
        let window = data.get(pos..limit).unwrap_or_default();
        match link_at(window, start.saturating_add(pos as u64), image.sizes) {
            Some((len, name, target)) => {
                let header = is_header(target);
                out.push(OrphanLink {
                    heap: raw.heap_header_address,
                    at: start.saturating_add(pos as u64),
                    name,
                    target,
                    header,
                });
                pos = pos.saturating_add(if header { len.max(1) } else { 1 });
            }
            None => pos = pos.saturating_add(1),
        }
    }
    out
}

/// A clean hard link message at the start of `data`: (its length, name,
/// target address).
fn link_at(data: &[u8], at: u64, sizes: Sizes) -> Option<(usize, String, u64)> {
    let len = link_len(data, sizes)?;
    let l = link::parse(data.get(..len)?, at, sizes).ok()?;
    let LinkTarget::Hard { address } = l.target else {
        return None;
    };
    let clean = !l.name.is_empty()
        && l.name.len() <= 1024
        && l.charset <= 1
        && l.name != "."
        && l.name != ".."
        && !l
            .name
            .chars()
            .any(|c| c == '/' || c.is_control() || c == '\u{FFFD}');
    (clean && !is_undefined(address)).then_some((len, l.name, address))
}

/// Bytes a version-1 hard link message occupies, from its flags (spec
/// IV.A.2.g): version, flags, optional type, creation order and charset,
/// the name length field and the name, then the O-byte address.
fn link_len(data: &[u8], sizes: Sizes) -> Option<usize> {
    if *data.first()? != 1 {
        return None;
    }
    let flags = *data.get(1)?;
    if flags & 0xE0 != 0 {
        return None;
    }
    let mut pos = 2usize;
    if flags & 0x08 != 0 {
        if *data.get(pos)? != link::LINK_HARD {
            return None;
        }
        pos += 1;
    }
    if flags & 0x04 != 0 {
        pos += 8;
    }
    if flags & 0x10 != 0 {
        pos += 1;
    }
    let width = 1usize << (flags & 0x03);
    let field = data.get(pos..pos.checked_add(width)?)?;
    let mut name_len = 0u64;
    for (i, b) in field.iter().enumerate() {
        name_len |= u64::from(*b) << (8 * i);
    }
    pos = pos
        .checked_add(width)?
        .checked_add(usize::try_from(name_len).ok()?)?
        .checked_add(usize::from(sizes.offset()))?;
    (pos <= data.len()).then_some(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hard(name: &str, addr: u64) -> Vec<u8> {
        let mut b = vec![1, 0, name.len() as u8];
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(&addr.to_le_bytes());
        b
    }

    fn block(links: &[Vec<u8>]) -> Vec<u8> {
        let mut b = b"FHDB".to_vec();
        b.push(0);
        b.extend_from_slice(&0x1234u64.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&[0x55, 0x01, 0x00]); // noise, a stray version byte
        for l in links {
            b.extend_from_slice(l);
        }
        b.extend_from_slice(&[0; 32]);
        b
    }

    #[test]
    fn finds_links_and_flags_those_whose_targets_are_headers() {
        let b = block(&[hard("config_0001", 800), hard("x/y", 800), hard("bad", 900)]);
        let img = Image::new(&b, 0, Sizes::DEFAULT);
        let got = scan_direct_block(&img, 0, b.len() as u64, &mut |a| a == 800);
        let headers: Vec<&OrphanLink> = got.iter().filter(|l| l.header).collect();
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].name, "config_0001");
        assert_eq!(headers[0].target, 800);
        assert_eq!(headers[0].heap, 0x1234);
        // A clean link to an address that holds no header is kept, flagged
        // (its header may never have reached the disk); "x/y" is not a name.
        let dangling: Vec<(&str, u64)> = got
            .iter()
            .filter(|l| !l.header)
            .map(|l| (l.name.as_str(), l.target))
            .collect();
        assert_eq!(dangling, [("bad", 900)]);
        // Every truncation: no panic.
        for n in 0..b.len() {
            let img = Image::new(&b[..n], 0, Sizes::DEFAULT);
            let _ = scan_direct_block(&img, 0, b.len() as u64, &mut |_| true);
        }
    }

    #[test]
    fn link_len_handles_flags() {
        // creation order + charset + 2-byte name length.
        let mut b = vec![1, 0x15];
        b.extend_from_slice(&7u64.to_le_bytes());
        b.push(1);
        b.extend_from_slice(&3u16.to_le_bytes());
        b.extend_from_slice(b"abc");
        b.extend_from_slice(&64u64.to_le_bytes());
        assert_eq!(link_len(&b, Sizes::DEFAULT), Some(b.len()));
        let got = link_at(&b, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(got, (b.len(), "abc".to_string(), 64));
        assert_eq!(link_len(&b[..b.len() - 1], Sizes::DEFAULT), None);
        assert_eq!(link_len(&[1, 0xFF], Sizes::DEFAULT), None);
    }
}

//! Validation of signature hits with the format parsers: checksummed
//! structures must match their lookup3 checksum (spec III.H "checksum"),
//! the others must parse with a known version and addresses inside the file.

use crate::follow::Image;
use crate::format::message::kind;
use crate::format::{block_prefix, checksum_ok, signature_v0, MessageHeader, Sizes};
use crate::format::{
    btree_v1, btree_v2, extensible_array, fixed_array, fractal_heap, global_heap, is_undefined,
    local_heap, object_header, superblock, symbol_table_node,
};

use super::signatures::{Hit, Kind};

/// How far a carved structure can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Confidence {
    /// Parsed and its stored checksum matches.
    Checksummed,
    /// No checksum to test (or none found): parsed with a known version,
    /// sane counts and addresses inside the file.
    Structural,
}

/// Largest OCHK block searched for its checksum (continuation blocks are
/// small; libhdf5 never writes one larger than a header chunk).
const MAX_OCHK: usize = 1 << 16;

/// Validates one hit against `image` (whose base turns the structure's
/// relative addresses into file offsets). `None`: not a usable structure.
pub fn validate(image: &Image, hit: Hit) -> Option<Confidence> {
    let at = hit.offset;
    let data = usize::try_from(at)
        .ok()
        .and_then(|o| image.bytes.get(o..))?;
    let sizes = image.sizes;
    let inside = |addr: u64| is_undefined(addr) || image.contains(addr, 1);
    let structural = |ok: bool| ok.then_some(Confidence::Structural);
    let checked = |ok: bool| ok.then_some(Confidence::Checksummed);
    match hit.kind {
        Kind::Superblock => {
            let sb = superblock::parse(data, at).ok()?;
            match sb.checksum_ok {
                Some(ok) => checked(ok),
                None => Some(Confidence::Structural),
            }
        }
        Kind::Tree => {
            // Chunk trees need the dataset's rank: try the plausible ranks.
            let node_type = *data.get(4)?;
            let ranks: &[usize] = if node_type == btree_v1::NODE_TYPE_CHUNK {
                &[1, 2, 3, 4, 5, 6, 7, 8]
            } else {
                &[0]
            };
            let room = image.len().saturating_sub(image.base);
            structural(ranks.iter().any(|&r| {
                btree_v1::parse(data, at, sizes, Some(r))
                    .is_ok_and(|n| n.validate(room).is_empty() && n.entries_used > 0)
            }))
        }
        Kind::Snod => {
            let n = symbol_table_node::parse(data, at, sizes).ok()?;
            structural(
                !n.entries.is_empty()
                    && n.entries.iter().all(|e| {
                        !is_undefined(e.object_header_address) && inside(e.object_header_address)
                    }),
            )
        }
        Kind::Heap => {
            let h = local_heap::parse(data, at, sizes).ok()?;
            structural(image.contains(h.data_address, h.data_size))
        }
        Kind::Gcol => {
            let g = global_heap::parse(data, at, sizes).ok()?;
            structural(g.fault.is_none() && g.collection_size <= data.len() as u64)
        }
        Kind::Ohdr => {
            let (p, _) = object_header::parse_header(data, at, sizes).ok()?;
            checked(p.checksum_ok == Some(true))
        }
        Kind::Ochk => checked(ochk_checksum_len(data).is_some()),
        Kind::Frhp => {
            let h = fractal_heap::parse_header(data, at, sizes).ok()?;
            checked(h.checksum_ok)
        }
        Kind::Fhdb => {
            // Heap header unknown: h5py link heaps use 4-byte block offsets,
            // attribute heaps 5. A checksum (when the heap uses them) decides.
            let mut any = None;
            for width in [4u8, 5] {
                let Ok(raw) = fractal_heap::parse_direct_block_standalone(data, at, sizes, width)
                else {
                    continue;
                };
                if raw.guess_block_size(data, 512, 1 << 20).is_some() {
                    return Some(Confidence::Checksummed);
                }
                if !is_undefined(raw.heap_header_address) && inside(raw.heap_header_address) {
                    any = Some(Confidence::Structural);
                }
            }
            any
        }
        Kind::Fhib | Kind::Fadb | Kind::Eaib | Kind::Easb | Kind::Eadb => {
            // The owner's header address must lie inside the file.
            let owner = block_owner(hit.kind, data, at, sizes)?;
            structural(!is_undefined(owner) && inside(owner))
        }
        Kind::Bthd => {
            let h = btree_v2::parse_header(data, at, sizes).ok()?;
            checked(h.checksum_ok)
        }
        Kind::Btin | Kind::Btlf => {
            // Version 0, then a record type the spec defines (III.A.2).
            let (rest, _) = signature_v0("v2 B-tree node", hit.kind.signature(), data, at).ok()?;
            structural(rest.first().is_some_and(|t| (1..=11).contains(t)))
        }
        Kind::Fahd => {
            let h = fixed_array::parse_header(data, at, sizes).ok()?;
            checked(h.checksum_ok)
        }
        Kind::Eahd => {
            let h = extensible_array::parse_header(data, at, sizes).ok()?;
            checked(h.checksum_ok)
        }
    }
}

/// The owner's header address in the block of `kind` at the start of
/// `data`: version 0, then (after a client id 0 or 1 for the arrays) the
/// address (III.G, VII.A.2, VII.B.2). `None` for other kinds or when the
/// prefix does not parse.
pub fn block_owner(kind: Kind, data: &[u8], at: u64, sizes: Sizes) -> Option<u64> {
    let clients: &[Option<u8>] = match kind {
        Kind::Fhib | Kind::Fhdb => &[None],
        Kind::Fadb | Kind::Eaib | Kind::Easb | Kind::Eadb => &[Some(0), Some(1)],
        _ => return None,
    };
    clients
        .iter()
        .find_map(|&c| block_prefix("block", kind.signature(), data, at, sizes, c).ok())
        .map(|p| p.2)
}

/// The length (checksum included) of the `OCHK` block at the start of
/// `data`, found by framing its v2 messages (with and without creation
/// order fields) and testing the checksum after each message and after a
/// gap shorter than a message header.
pub fn ochk_checksum_len(data: &[u8]) -> Option<usize> {
    ochk_frame(data).map(|f| f.0)
}

/// [`ochk_checksum_len`] and whether the messages carry creation-order
/// fields (6-byte message headers).
pub fn ochk_frame(data: &[u8]) -> Option<(usize, bool)> {
    let limit = data.len().min(MAX_OCHK);
    for creation_order in [false, true] {
        let header_len = MessageHeader::len(2, creation_order);
        let mut pos = 4usize;
        let mut tested = 0;
        while pos < limit && tested < 4096 {
            tested += 1;
            for gap in 0..header_len {
                let end = pos.checked_add(gap)?;
                if end > 4 && checksum_ok(data, end) {
                    return Some((end.checked_add(4)?, creation_order));
                }
            }
            let hdr = MessageHeader::parse(data.get(pos..)?, 2, creation_order)?;
            if hdr.kind > kind::MAX_KNOWN {
                break;
            }
            pos = pos.checked_add(hdr.total_len(2))?;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::lookup3;
    use crate::format::Sizes;

    fn hit(kind: Kind) -> Hit {
        Hit { offset: 0, kind }
    }

    #[test]
    fn ochk_found_by_framing() {
        let mut b = b"OCHK".to_vec();
        b.extend_from_slice(&[1, 4, 0, 0, 9, 9, 9, 9]); // dataspace, 4 bytes
        b.extend_from_slice(&[0, 2, 0, 0, 0, 0]); // NIL with 2 bytes
        let sum = lookup3::hashlittle(&b, 0);
        b.extend_from_slice(&sum.to_le_bytes());
        b.extend_from_slice(&[0xAA; 40]);
        assert_eq!(ochk_checksum_len(&b), Some(22));
        let img = Image::new(&b, 0, Sizes::DEFAULT);
        assert_eq!(
            validate(&img, hit(Kind::Ochk)),
            Some(Confidence::Checksummed)
        );
        b[6] ^= 1;
        assert_eq!(ochk_checksum_len(&b), None);
    }

    #[test]
    fn garbage_after_signatures_is_rejected() {
        for k in Kind::ALL {
            for tail in [&[0u8; 0][..], &[0xFF; 64], &[0; 64]] {
                let mut b = k.signature().to_vec();
                b.extend_from_slice(tail);
                let img = Image::new(&b, 0, Sizes::DEFAULT);
                // Never panics; all-0xFF addresses are undefined or outside.
                let v = validate(&img, hit(k));
                if tail.first() == Some(&0xFF) {
                    assert_eq!(v, None, "{k:?}");
                }
            }
        }
    }

    #[test]
    fn truncations_never_panic() {
        let mut b = b"OCHK".to_vec();
        b.extend_from_slice(&[1, 4, 0, 0, 9, 9, 9, 9]);
        for k in Kind::ALL {
            let mut full = k.signature().to_vec();
            full.extend_from_slice(&b);
            full.extend_from_slice(&[7u8; 64]);
            for n in 0..full.len() {
                let img = Image::new(&full[..n], 0, Sizes::DEFAULT);
                let _ = validate(&img, hit(k));
            }
        }
    }
}

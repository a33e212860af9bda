//! Shared message encoding (spec IV.A.2, "Shared Message", the format of a
//! message whose header flag bit 1 is set, and of the shared datatype /
//! dataspace fields of attribute messages).
//!
//! Versions 1 and 2 point at the object header holding the real message (a
//! committed datatype); version 3 adds the shared-object-header-message heap
//! (an 8-byte fractal heap ID).
//!
//! Spec surprise: for version 1 the spec shows version, type, 6 reserved bytes
//! and the address, but the library (H5Oshared.c) decodes a stored "symbol
//! table entry": after the 6 reserved bytes it skips "size of lengths" bytes
//! (the local heap slot) before the address. This parser follows the library.

use crate::format::codec::Reader;
use crate::format::{Error, ErrorKind, Result, Sizes};

const STRUCTURE: &str = "SharedMessage";

/// Where the shared message lives (the "Type" field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedKind {
    /// v3 type 0: not shared and not shareable (no location stored).
    NotShared,
    /// v3 type 1: in the file's shared object header message heap.
    Heap,
    /// v1/v2 (any type value) and v3 type 2: in another object's header (a
    /// committed message).
    Committed,
    /// v3 type 3: not shared, but shareable (no location stored).
    Shareable,
}

/// A decoded shared message reference.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedMessage {
    /// 1, 2 or 3.
    pub version: u8,
    pub kind: SharedKind,
    /// Object header address holding the message ([`SharedKind::Committed`]).
    pub address: Option<u64>,
    /// Fractal heap ID in the SOHM heap ([`SharedKind::Heap`]).
    pub heap_id: Option<[u8; 8]>,
}

/// Parses a shared message body.
pub fn parse(body: &[u8], at: u64, sizes: Sizes) -> Result<SharedMessage> {
    parse_shared(body, at, sizes).map(|(m, _)| m)
}

/// Parses a shared message at the start of `data`, returning it with the
/// number of bytes consumed.
pub fn parse_shared(data: &[u8], at: u64, sizes: Sizes) -> Result<(SharedMessage, usize)> {
    let mut r = Reader::new(STRUCTURE, data, at);
    let version = r.u8()?;
    let type_at = r.abs();
    let raw_type = r.u8()?;
    let (kind, address, heap_id) = match version {
        1 => {
            r.skip(6)?;
            r.skip(usize::from(sizes.length()))?;
            (SharedKind::Committed, Some(r.offset(sizes)?), None)
        }
        2 => (SharedKind::Committed, Some(r.offset(sizes)?), None),
        3 => match raw_type {
            0 => (SharedKind::NotShared, None, None),
            1 => {
                let mut id = [0u8; 8];
                id.copy_from_slice(r.bytes(8)?);
                (SharedKind::Heap, None, Some(id))
            }
            2 => (SharedKind::Committed, Some(r.offset(sizes)?), None),
            3 => (SharedKind::Shareable, None, None),
            t => {
                return Err(Error::bad_value(
                    STRUCTURE,
                    type_at,
                    "shared message type",
                    u64::from(t),
                ))
            }
        },
        v => {
            return Err(Error::new(STRUCTURE, at, ErrorKind::UnsupportedVersion(v)));
        }
    };
    Ok((
        SharedMessage {
            version,
            kind,
            address,
            heap_id,
        },
        r.pos(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::UNDEFINED;

    const S: Sizes = Sizes::DEFAULT;

    fn all_prefixes_fail(v: &[u8]) {
        for n in 0..v.len() {
            assert!(parse(&v[..n], 0, S).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn version_1_skips_symbol_table_entry_heap_slot() {
        let mut v = vec![1, 0, 0, 0, 0, 0, 0, 0];
        v.extend_from_slice(&[0xAA; 8]); // local heap address slot
        v.extend_from_slice(&0x1234u64.to_le_bytes());
        let m = parse(&v, 0, S).unwrap();
        assert_eq!(m.version, 1);
        assert_eq!(m.kind, SharedKind::Committed);
        assert_eq!(m.address, Some(0x1234));
        assert_eq!(m.heap_id, None);
        all_prefixes_fail(&v);
    }

    #[test]
    fn version_2_committed() {
        let mut v = vec![2, 0];
        v.extend_from_slice(&0x800u64.to_le_bytes());
        let m = parse(&v, 0, S).unwrap();
        assert_eq!((m.kind, m.address), (SharedKind::Committed, Some(0x800)));
        all_prefixes_fail(&v);
        let s4 = Sizes::new(4, 4).unwrap();
        let m = parse(&[2, 0, 0xff, 0xff, 0xff, 0xff], 0, s4).unwrap();
        assert_eq!(m.address, Some(UNDEFINED));
    }

    #[test]
    fn version_3_heap_committed_and_unshared() {
        let v = [3, 1, 1, 2, 3, 4, 5, 6, 7, 8];
        let (m, used) = parse_shared(&v, 0, S).unwrap();
        assert_eq!(used, 10);
        assert_eq!(m.kind, SharedKind::Heap);
        assert_eq!(m.heap_id, Some([1, 2, 3, 4, 5, 6, 7, 8]));
        all_prefixes_fail(&v);

        let mut v = vec![3, 2];
        v.extend_from_slice(&0x99u64.to_le_bytes());
        let m = parse(&v, 0, S).unwrap();
        assert_eq!((m.kind, m.address), (SharedKind::Committed, Some(0x99)));
        all_prefixes_fail(&v);

        assert_eq!(parse(&[3, 0], 0, S).unwrap().kind, SharedKind::NotShared);
        assert_eq!(parse(&[3, 3], 0, S).unwrap().kind, SharedKind::Shareable);
    }

    #[test]
    fn bad_version_and_type() {
        let e = parse(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 7, S).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedVersion(0));
        assert_eq!(e.offset, 7);
        assert!(parse(&[4, 2, 0, 0, 0, 0, 0, 0, 0, 0], 0, S).is_err());
        let e = parse(&[3, 9, 0, 0, 0, 0, 0, 0, 0, 0], 10, S).unwrap_err();
        assert_eq!(e.offset, 11);
        assert!(matches!(e.kind, ErrorKind::BadValue { .. }));
    }
}

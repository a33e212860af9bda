//! Link Info message, type 0x0002 (spec IV.A.2.c): how a "new style" group
//! stores its links (fractal heap and v2 B-tree indexes for dense storage).

use nom::number::complete::u8 as le_u8;
use nom::IResult;

use crate::format::{offset, uint, Error, ErrorKind, Result, Sizes};

/// Link Info message (spec IV.A.2.c), version 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// "Maximum Creation Index" (present if flag bit 0, creation order tracked).
    pub max_creation_index: Option<u64>,
    /// "Fractal Heap Address" of the dense link storage; undefined when the
    /// links are link messages in the object header (compact storage).
    pub fractal_heap_address: u64,
    /// "Address of v2 B-tree for Name Index" (may be undefined).
    pub name_index_btree_address: u64,
    /// "Address of v2 B-tree for Creation Order Index" (present if flag bit 1).
    pub creation_order_index_btree_address: Option<u64>,
}

const STRUCTURE: &str = "link info message";

/// Parses a Link Info message body. Unknown versions and flag bits are errors.
pub fn parse(body: &[u8], at: u64, sizes: Sizes) -> Result<LinkInfo> {
    parse_dense_storage_info(body, at, sizes, STRUCTURE, 8)
}

/// The layout the Link Info and Attribute Info messages share (spec
/// IV.A.2.c and IV.A.2.v): version 0, flags (bit 0 creation order tracked,
/// bit 1 indexed), maximum creation index of `index_width` bytes (8 for
/// links, 2 for attributes), fractal heap address, name-index v2 B-tree
/// address, optional creation-order v2 B-tree address.
pub(crate) fn parse_dense_storage_info(
    body: &[u8],
    at: u64,
    sizes: Sizes,
    structure: &'static str,
    index_width: u8,
) -> Result<LinkInfo> {
    if let Some(&version) = body.first() {
        if version != 0 {
            return Err(Error::new(
                structure,
                at,
                ErrorKind::UnsupportedVersion(version),
            ));
        }
    }
    if let Some(&flags) = body.get(1) {
        if flags & !0x03 != 0 {
            return Err(Error::bad_value(
                structure,
                at.saturating_add(1),
                "flags",
                u64::from(flags),
            ));
        }
    }
    fields(body, sizes, index_width)
        .map(|(_, v)| v)
        .map_err(|e| Error::from_nom(structure, at, body, e))
}

fn fields(i: &[u8], sizes: Sizes, index_width: u8) -> IResult<&[u8], LinkInfo> {
    let (i, _version) = le_u8(i)?;
    let (i, flags) = le_u8(i)?;
    let (i, max_creation_index) = if flags & 0x01 != 0 {
        let (i, v) = uint(index_width)(i)?;
        (i, Some(v))
    } else {
        (i, None)
    };
    let (i, fractal_heap_address) = offset(sizes)(i)?;
    let (i, name_index_btree_address) = offset(sizes)(i)?;
    let (i, creation_order_index_btree_address) = if flags & 0x02 != 0 {
        let (i, v) = offset(sizes)(i)?;
        (i, Some(v))
    } else {
        (i, None)
    };
    Ok((
        i,
        LinkInfo {
            max_creation_index,
            fractal_heap_address,
            name_index_btree_address,
            creation_order_index_btree_address,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::UNDEFINED;

    #[test]
    fn compact_group_from_h5py() {
        // Body of the link info message in an h5py libver='latest' root group.
        let mut b = vec![0u8, 0];
        b.extend_from_slice(&[0xFF; 16]);
        let m = parse(&b, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(m.max_creation_index, None);
        assert_eq!(m.fractal_heap_address, UNDEFINED);
        assert_eq!(m.name_index_btree_address, UNDEFINED);
        assert_eq!(m.creation_order_index_btree_address, None);
        for n in 0..b.len() {
            assert!(parse(&b[..n], 0, Sizes::DEFAULT).is_err());
        }
    }

    #[test]
    fn dense_with_creation_order() {
        let mut b = vec![0u8, 3];
        b.extend_from_slice(&7u64.to_le_bytes());
        b.extend_from_slice(&0x100u32.to_le_bytes());
        b.extend_from_slice(&0x200u32.to_le_bytes());
        b.extend_from_slice(&0x300u32.to_le_bytes());
        let m = parse(&b, 0, Sizes::new(4, 8).unwrap()).unwrap();
        assert_eq!(m.max_creation_index, Some(7));
        assert_eq!(m.fractal_heap_address, 0x100);
        assert_eq!(m.name_index_btree_address, 0x200);
        assert_eq!(m.creation_order_index_btree_address, Some(0x300));
        for n in 0..b.len() {
            assert!(parse(&b[..n], 0, Sizes::new(4, 8).unwrap()).is_err());
        }
    }

    #[test]
    fn bad_version_and_flags() {
        let e = parse(&[1, 0], 0, Sizes::DEFAULT).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedVersion(1));
        let e = parse(&[0, 0x80], 0, Sizes::DEFAULT).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::BadValue { .. }));
    }
}

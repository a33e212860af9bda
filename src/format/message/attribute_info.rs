//! Attribute Info message, type 0x0015 (spec IV.A.2.v): where an object's
//! attributes live when they are stored densely (fractal heap + v2 B-trees).

use super::link_info::parse_dense_storage_info;
use crate::format::{Result, Sizes};

/// Attribute Info message (spec IV.A.2.v), version 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeInfo {
    /// "Maximum Creation Index" (present if flag bit 0, creation order tracked).
    pub max_creation_index: Option<u16>,
    /// "Fractal Heap Address" of dense attribute storage (undefined if compact).
    pub fractal_heap_address: u64,
    /// "Attribute Name v2 B-tree Address" (may be undefined).
    pub name_index_btree_address: u64,
    /// "Attribute Creation Order v2 B-tree Address" (present if flag bit 1).
    pub creation_order_index_btree_address: Option<u64>,
}

const STRUCTURE: &str = "attribute info message";

/// Parses an Attribute Info message body. Unknown versions and flag bits are
/// errors. The layout is the Link Info message's with a 2-byte creation index.
pub fn parse(body: &[u8], at: u64, sizes: Sizes) -> Result<AttributeInfo> {
    let info = parse_dense_storage_info(body, at, sizes, STRUCTURE, 2)?;
    Ok(AttributeInfo {
        // Read from 2 bytes: always fits.
        max_creation_index: info.max_creation_index.map(|v| v as u16),
        fractal_heap_address: info.fractal_heap_address,
        name_index_btree_address: info.name_index_btree_address,
        creation_order_index_btree_address: info.creation_order_index_btree_address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{ErrorKind, UNDEFINED};

    #[test]
    fn compact_and_dense() {
        let mut b = vec![0u8, 0];
        b.extend_from_slice(&[0xFF; 16]);
        let m = parse(&b, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(m.fractal_heap_address, UNDEFINED);
        assert_eq!(m.max_creation_index, None);
        for n in 0..b.len() {
            assert!(parse(&b[..n], 0, Sizes::DEFAULT).is_err());
        }
        let mut b = vec![0u8, 3, 9, 0];
        for a in [0x10u64, 0x20, 0x30] {
            b.extend_from_slice(&a.to_le_bytes());
        }
        let m = parse(&b, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(m.max_creation_index, Some(9));
        assert_eq!(m.fractal_heap_address, 0x10);
        assert_eq!(m.name_index_btree_address, 0x20);
        assert_eq!(m.creation_order_index_btree_address, Some(0x30));
        for n in 0..b.len() {
            assert!(parse(&b[..n], 0, Sizes::DEFAULT).is_err());
        }
    }

    #[test]
    fn bad_version_and_flags() {
        assert!(matches!(
            parse(&[2, 0], 0, Sizes::DEFAULT).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(2)
        ));
        assert!(matches!(
            parse(&[0, 0x04], 0, Sizes::DEFAULT).unwrap_err().kind,
            ErrorKind::BadValue { .. }
        ));
    }
}

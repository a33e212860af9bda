//! Symbol Table message, type 0x0011 (spec IV.A.2.r): the v1 B-tree and local
//! heap of an "old style" group.

use nom::IResult;

use crate::format::{offset, Error, Result, Sizes};

/// Symbol Table message (spec IV.A.2.r).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolTable {
    /// "v1 B-tree Address" (relative): the group's B-tree (node type 0).
    pub btree_address: u64,
    /// "Local Heap Address" (relative): the heap holding the link names.
    pub heap_address: u64,
}

/// Parses a Symbol Table message body.
pub fn parse(body: &[u8], at: u64, sizes: Sizes) -> Result<SymbolTable> {
    fields(body, sizes)
        .map(|(_, v)| v)
        .map_err(|e| Error::from_nom("symbol table message", at, body, e))
}

fn fields(i: &[u8], sizes: Sizes) -> IResult<&[u8], SymbolTable> {
    let (i, btree_address) = offset(sizes)(i)?;
    let (i, heap_address) = offset(sizes)(i)?;
    Ok((
        i,
        SymbolTable {
            btree_address,
            heap_address,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::UNDEFINED;

    #[test]
    fn good_truncated_and_undefined() {
        let mut b = 0x88u64.to_le_bytes().to_vec();
        b.extend_from_slice(&0x2a8u64.to_le_bytes());
        let m = parse(&b, 0, Sizes::DEFAULT).unwrap();
        assert_eq!((m.btree_address, m.heap_address), (0x88, 0x2a8));
        for n in 0..b.len() {
            assert!(parse(&b[..n], 10, Sizes::DEFAULT).is_err());
        }
        let m = parse(&[0xFF; 8], 0, Sizes::new(4, 4).unwrap()).unwrap();
        assert_eq!(m.heap_address, UNDEFINED);
    }
}

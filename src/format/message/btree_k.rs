//! B-tree 'K' Values message, type 0x0013 (spec IV.A.2.t): non-default v1
//! B-tree node widths, found only in the superblock extension.

use nom::number::complete::{le_u16, u8 as le_u8};
use nom::IResult;

use crate::format::{Error, ErrorKind, Result, Sizes};

/// B-tree 'K' Values message (spec IV.A.2.t), version 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtreeK {
    /// "Indexed Storage Internal Node K" (chunk B-trees).
    pub indexed_storage_internal_k: u16,
    /// "Group Internal Node K".
    pub group_internal_k: u16,
    /// "Group Leaf Node K".
    pub group_leaf_k: u16,
}

const STRUCTURE: &str = "B-tree K values message";

/// Parses a B-tree 'K' Values message body (version 0 only).
pub fn parse(body: &[u8], at: u64, _sizes: Sizes) -> Result<BtreeK> {
    if let Some(&version) = body.first() {
        if version != 0 {
            return Err(Error::new(
                STRUCTURE,
                at,
                ErrorKind::UnsupportedVersion(version),
            ));
        }
    }
    let (_, (_, k)) = fields(body).map_err(|e| Error::from_nom(STRUCTURE, at, body, e))?;
    Ok(k)
}

fn fields(i: &[u8]) -> IResult<&[u8], (u8, BtreeK)> {
    let (i, version) = le_u8(i)?;
    let (i, indexed_storage_internal_k) = le_u16(i)?;
    let (i, group_internal_k) = le_u16(i)?;
    let (i, group_leaf_k) = le_u16(i)?;
    Ok((
        i,
        (
            version,
            BtreeK {
                indexed_storage_internal_k,
                group_internal_k,
                group_leaf_k,
            },
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_truncated_and_bad_version() {
        let b = [0, 32, 0, 16, 0, 4, 0];
        let k = parse(&b, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(
            k,
            BtreeK {
                indexed_storage_internal_k: 32,
                group_internal_k: 16,
                group_leaf_k: 4
            }
        );
        for n in 0..b.len() {
            assert!(parse(&b[..n], 0, Sizes::DEFAULT).is_err());
        }
        let e = parse(&[1, 32, 0, 16, 0, 4, 0], 5, Sizes::DEFAULT).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedVersion(1));
    }
}

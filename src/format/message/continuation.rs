//! Object Header Continuation message, type 0x0010 (spec IV.A.2.q): where the
//! next chunk of an object header's messages lives.

use nom::IResult;

use crate::format::{length, offset, Error, Result, Sizes};

/// Object Header Continuation message (spec IV.A.2.q).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Continuation {
    /// "Offset" (relative address of the continuation block).
    pub address: u64,
    /// "Length" in bytes of the continuation block (for v2 headers it includes
    /// the `OCHK` signature and the checksum).
    pub length: u64,
}

/// Parses a Continuation message body.
pub fn parse(body: &[u8], at: u64, sizes: Sizes) -> Result<Continuation> {
    fields(body, sizes)
        .map(|(_, v)| v)
        .map_err(|e| Error::from_nom("continuation message", at, body, e))
}

fn fields(i: &[u8], sizes: Sizes) -> IResult<&[u8], Continuation> {
    let (i, address) = offset(sizes)(i)?;
    let (i, length) = length(sizes)(i)?;
    Ok((i, Continuation { address, length }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::UNDEFINED;

    #[test]
    fn good_truncated_and_hostile() {
        let mut b = 0x1038u64.to_le_bytes().to_vec();
        b.extend_from_slice(&80u64.to_le_bytes());
        let m = parse(&b, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(
            m,
            Continuation {
                address: 0x1038,
                length: 80
            }
        );
        for n in 0..b.len() {
            assert!(parse(&b[..n], 0, Sizes::DEFAULT).is_err());
        }
        let m = parse(&[0xFF; 16], 0, Sizes::DEFAULT).unwrap();
        assert_eq!((m.address, m.length), (UNDEFINED, u64::MAX));
        let s2 = Sizes::new(2, 2).unwrap();
        assert_eq!(
            parse(&[1, 0, 2, 0], 0, s2).unwrap(),
            Continuation {
                address: 1,
                length: 2
            }
        );
    }
}

//! Group Info message, type 0x000A (spec IV.A.2.k): creation properties of a
//! "new style" group (compact/dense phase change and size estimates).

use nom::number::complete::{le_u16, u8 as le_u8};
use nom::IResult;

use crate::format::{Error, ErrorKind, Result, Sizes};

/// Group Info message (spec IV.A.2.k), version 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// "Link Phase Change: Maximum Compact Value" (present if flag bit 0).
    pub max_compact: Option<u16>,
    /// "Link Phase Change: Minimum Dense Value" (present if flag bit 0).
    pub min_dense: Option<u16>,
    /// "Estimated Number of Entries" (present if flag bit 1).
    pub estimated_entries: Option<u16>,
    /// "Estimated Link Name Length of Entries" (present if flag bit 1).
    pub estimated_name_length: Option<u16>,
}

const STRUCTURE: &str = "group info message";

/// Parses a Group Info message body. Unknown versions and flag bits are errors.
pub fn parse(body: &[u8], at: u64, _sizes: Sizes) -> Result<GroupInfo> {
    if let Some(&version) = body.first() {
        if version != 0 {
            return Err(Error::new(
                STRUCTURE,
                at,
                ErrorKind::UnsupportedVersion(version),
            ));
        }
    }
    if let Some(&flags) = body.get(1) {
        if flags & !0x03 != 0 {
            return Err(Error::bad_value(
                STRUCTURE,
                at.saturating_add(1),
                "flags",
                u64::from(flags),
            ));
        }
    }
    fields(body)
        .map(|(_, v)| v)
        .map_err(|e| Error::from_nom(STRUCTURE, at, body, e))
}

fn pair(present: bool, i: &[u8]) -> IResult<&[u8], (Option<u16>, Option<u16>)> {
    if !present {
        return Ok((i, (None, None)));
    }
    let (i, a) = le_u16(i)?;
    let (i, b) = le_u16(i)?;
    Ok((i, (Some(a), Some(b))))
}

fn fields(i: &[u8]) -> IResult<&[u8], GroupInfo> {
    let (i, _version) = le_u8(i)?;
    let (i, flags) = le_u8(i)?;
    let (i, (max_compact, min_dense)) = pair(flags & 0x01 != 0, i)?;
    let (i, (estimated_entries, estimated_name_length)) = pair(flags & 0x02 != 0, i)?;
    Ok((
        i,
        GroupInfo {
            max_compact,
            min_dense,
            estimated_entries,
            estimated_name_length,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_full() {
        let m = parse(&[0, 0], 0, Sizes::DEFAULT).unwrap();
        assert_eq!(m.max_compact, None);
        assert_eq!(m.estimated_entries, None);
        let b = [0, 3, 8, 0, 6, 0, 4, 0, 8, 0];
        let m = parse(&b, 0, Sizes::DEFAULT).unwrap();
        assert_eq!((m.max_compact, m.min_dense), (Some(8), Some(6)));
        assert_eq!(
            (m.estimated_entries, m.estimated_name_length),
            (Some(4), Some(8))
        );
        for n in 0..b.len() {
            assert!(parse(&b[..n], 0, Sizes::DEFAULT).is_err());
        }
        let m = parse(&[0, 2, 1, 0, 2, 0], 0, Sizes::DEFAULT).unwrap();
        assert_eq!((m.max_compact, m.estimated_entries), (None, Some(1)));
    }

    #[test]
    fn bad_version_and_flags() {
        assert!(parse(&[1, 0], 0, Sizes::DEFAULT).is_err());
        assert!(parse(&[0, 0x10], 0, Sizes::DEFAULT).is_err());
    }
}

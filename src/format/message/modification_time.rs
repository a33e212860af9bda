//! Modification time messages: the Object Modification Time message, type
//! 0x0012 (spec IV.A.2.s), and the old Object Modification Time message,
//! type 0x000E (spec IV.A.2.o), both decoded to seconds since the Unix epoch.

use nom::number::complete::{le_u32, u8 as le_u8};
use nom::IResult;

use crate::format::{Error, ErrorKind, Result, Sizes};

/// An object's modification time (spec IV.A.2.o and IV.A.2.s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModificationTime {
    /// Seconds after 1970-01-01 00:00:00 UTC.
    pub seconds: u64,
}

const STRUCTURE: &str = "modification time message";
const STRUCTURE_OLD: &str = "old modification time message";

/// Parses a type 0x0012 body: version 1, 3 reserved bytes, u32 seconds.
pub fn parse(body: &[u8], at: u64, _sizes: Sizes) -> Result<ModificationTime> {
    if let Some(&version) = body.first() {
        if version != 1 {
            return Err(Error::new(
                STRUCTURE,
                at,
                ErrorKind::UnsupportedVersion(version),
            ));
        }
    }
    let (_, seconds) = fields(body).map_err(|e| Error::from_nom(STRUCTURE, at, body, e))?;
    Ok(ModificationTime {
        seconds: u64::from(seconds),
    })
}

fn fields(i: &[u8]) -> IResult<&[u8], u32> {
    let (i, _version) = le_u8(i)?;
    let (i, _reserved) = nom::bytes::complete::take(3usize)(i)?;
    le_u32(i)
}

/// Parses a type 0x000E body: 14 ASCII digits `YYYYMMDDhhmmss` (UTC), then
/// 2 reserved bytes (tolerated when missing). Dates before 1970 or with
/// out-of-range fields are rejected (BadValue / Invalid).
pub fn parse_old(body: &[u8], at: u64, _sizes: Sizes) -> Result<ModificationTime> {
    let digits = body.get(..14).ok_or_else(|| {
        Error::new(
            STRUCTURE_OLD,
            at,
            ErrorKind::Truncated {
                needed: 14,
                available: body.len() as u64,
            },
        )
    })?;
    let mut pos = 0usize;
    let mut field = |width: usize| -> Result<u64> {
        let mut v = 0u64;
        for (k, &b) in digits.iter().skip(pos).take(width).enumerate() {
            if !b.is_ascii_digit() {
                return Err(Error::invalid(
                    STRUCTURE_OLD,
                    at.saturating_add((pos + k) as u64),
                    format!("not an ASCII digit: {b:#04x}"),
                ));
            }
            v = v * 10 + u64::from(b - b'0');
        }
        pos += width;
        Ok(v)
    };
    let year = field(4)?;
    let month = field(2)?;
    let day = field(2)?;
    let hour = field(2)?;
    let minute = field(2)?;
    let second = field(2)?;
    let checks: [(&'static str, u64, u64, u64); 6] = [
        ("year", year, 1970, 9999),
        ("month", month, 1, 12),
        ("day", day, 1, days_in_month(year, month)),
        ("hour", hour, 0, 23),
        ("minute", minute, 0, 59),
        ("second", second, 0, 60),
    ];
    for (name, v, lo, hi) in checks {
        if v < lo || v > hi {
            return Err(Error::bad_value(STRUCTURE_OLD, at, name, v));
        }
    }
    let days = days_since_epoch(year, month, day);
    Ok(ModificationTime {
        seconds: days * 86_400 + hour * 3_600 + minute * 60 + second,
    })
}

fn is_leap(year: u64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to the given date (year >= 1970, validated fields).
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    let mut days = 0u64;
    for y in 1970..year {
        days += if is_leap(y) { 366 } else { 365 };
    }
    for m in 1..month {
        days += days_in_month(year, m);
    }
    days + day - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_message() {
        let b = [1, 0, 0, 0, 0x80, 0x51, 0x01, 0x00];
        assert_eq!(parse(&b, 0, Sizes::DEFAULT).unwrap().seconds, 86_400);
        for n in 0..b.len() {
            assert!(parse(&b[..n], 0, Sizes::DEFAULT).is_err());
        }
        let e = parse(&[0, 0, 0, 0, 1, 0, 0, 0], 0, Sizes::DEFAULT).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsupportedVersion(0));
        let t = parse(&[1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF], 0, Sizes::DEFAULT).unwrap();
        assert_eq!(t.seconds, u64::from(u32::MAX));
    }

    #[test]
    fn old_message() {
        let s = Sizes::DEFAULT;
        assert_eq!(parse_old(b"19700101000000\0\0", 0, s).unwrap().seconds, 0);
        // 2000-03-01 12:34:56 UTC = 951914096 (`date -u -d ... +%s`).
        assert_eq!(
            parse_old(b"20000301123456\0\0", 0, s).unwrap().seconds,
            951_914_096
        );
        // 2024-02-29 23:59:59 UTC = 1709251199.
        assert_eq!(
            parse_old(b"20240229235959", 0, s).unwrap().seconds,
            1_709_251_199
        );
        for n in 0..14 {
            assert!(parse_old(&b"20000301123456"[..n], 0, s).is_err());
        }
        assert!(parse_old(b"20230229000000\0\0", 0, s).is_err());
        assert!(parse_old(b"19691231235959\0\0", 0, s).is_err());
        assert!(parse_old(b"2000130100000a\0\0", 0, s).is_err());
        assert!(parse_old(b"20001301000000\0\0", 0, s).is_err());
        let e = parse_old(b"2000-3-1 000000", 100, s).unwrap_err();
        assert_eq!(e.offset, 104);
        assert!(parse_old(&[0xFF; 16], 0, s).is_err());
        assert!(parse_old(b"99991231235959", 0, s).is_ok());
    }
}

//! Fill value messages: the old one (type 0x0004, spec IV.A.2.e "Fill Value
//! (Old) Message") and the current one (type 0x0005, spec IV.A.2.f "The Data
//! Storage - Fill Value Message", versions 1, 2 and 3).
//!
//! Version 3 packs the space allocation time, the fill write time and the
//! "undefined"/"defined" flags into one byte and stores size and value only
//! when a value is defined. A value must fit in the message body.

use crate::format::codec::Reader;
use crate::format::{Error, ErrorKind, Result, Sizes};

/// Space allocation time values (versions 1-3).
pub mod alloc_time {
    pub const NOT_USED: u8 = 0;
    pub const EARLY: u8 = 1;
    pub const LATE: u8 = 2;
    pub const INCREMENTAL: u8 = 3;
}

/// Fill value write time values (versions 1-3).
pub mod write_time {
    pub const ON_ALLOCATION: u8 = 0;
    pub const NEVER: u8 = 1;
    pub const IF_SET: u8 = 2;
}

/// The old fill value message (type 4): a size and the raw value.
#[derive(Clone, Debug, PartialEq)]
pub struct FillValueOld {
    /// The raw fill value bytes (`Size` bytes), interpreted with the
    /// dataset's datatype.
    pub value: Vec<u8>,
}

/// The fill value message (type 5).
#[derive(Clone, Debug, PartialEq)]
pub struct FillValue {
    /// 1, 2 or 3.
    pub version: u8,
    /// See [`alloc_time`].
    pub space_allocation_time: u8,
    /// See [`write_time`].
    pub fill_write_time: u8,
    /// "Fill Value Defined" (v1/v2 byte; v3 flags bit 5).
    pub defined: bool,
    /// v3 flags bit 4: the fill value was explicitly marked undefined.
    pub undefined: bool,
    /// The raw fill value, if stored (absent, or size 0, means the library
    /// default of all zero bytes unless `undefined`).
    pub value: Option<Vec<u8>>,
}

/// Parses the old fill value message (type 4).
pub fn parse_old(body: &[u8], at: u64, _sizes: Sizes) -> Result<FillValueOld> {
    let mut r = Reader::new("FillValueOld", body, at);
    let size = r.u32()?;
    let value = sized_value(&mut r, size)?;
    Ok(FillValueOld {
        value: value.to_vec(),
    })
}

/// Parses the fill value message (type 5).
pub fn parse(body: &[u8], at: u64, _sizes: Sizes) -> Result<FillValue> {
    const STRUCTURE: &str = "FillValue";
    let mut r = Reader::new(STRUCTURE, body, at);
    let version = r.u8()?;
    match version {
        1 | 2 => {
            let space_allocation_time = r.u8()?;
            let fill_write_time = r.u8()?;
            let defined = r.u8()? != 0;
            let value = if version == 1 || defined {
                let size = r.u32()?;
                // The library reads the size as signed; -1 means "undefined".
                if size == u32::MAX || size == 0 {
                    None
                } else {
                    Some(sized_value(&mut r, size)?.to_vec())
                }
            } else {
                None
            };
            Ok(FillValue {
                version,
                space_allocation_time,
                fill_write_time,
                defined,
                undefined: false,
                value,
            })
        }
        3 => {
            let flags_at = r.abs();
            let flags = r.u8()?;
            let undefined = flags & 0x10 != 0;
            let defined = flags & 0x20 != 0;
            if flags & 0xc0 != 0 || (undefined && defined) {
                return Err(Error::bad_value(
                    STRUCTURE,
                    flags_at,
                    "fill value flags",
                    u64::from(flags),
                ));
            }
            let value = if defined {
                let size = r.u32()?;
                Some(sized_value(&mut r, size)?.to_vec())
            } else {
                None
            };
            Ok(FillValue {
                version,
                space_allocation_time: flags & 0x03,
                fill_write_time: (flags >> 2) & 0x03,
                defined,
                undefined,
                value,
            })
        }
        v => Err(Error::new(STRUCTURE, at, ErrorKind::UnsupportedVersion(v))),
    }
}

/// The `size` value bytes that follow, which must lie inside the body.
fn sized_value<'a>(r: &mut Reader<'a>, size: u32) -> Result<&'a [u8]> {
    let n = usize::try_from(size).unwrap_or(usize::MAX);
    r.bytes(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::test_support::hex;

    const S: Sizes = Sizes::DEFAULT;

    #[test]
    fn old_message() {
        // h5py default libver, fillvalue=7 as <i4 (body padded to 8).
        let v = hex("0400000007000000");
        let f = parse_old(&v, 0, S).unwrap();
        assert_eq!(f.value, [7, 0, 0, 0]);
        for n in 0..v.len() {
            assert!(parse_old(&v[..n], 0, S).is_err());
        }
        let e = parse_old(&[0xff, 0xff, 0xff, 0x7f, 1], 10, S).unwrap_err();
        assert_eq!(e.offset, 14);
        assert!(matches!(e.kind, ErrorKind::Truncated { .. }));
    }

    #[test]
    fn version_2_from_h5py() {
        // fillvalue=7: version 2, late, if-set, defined, size 4, value.
        let v = hex("02020201040000000700000000000000");
        let f = parse(&v, 0, S).unwrap();
        assert_eq!(f.version, 2);
        assert_eq!(f.space_allocation_time, alloc_time::LATE);
        assert_eq!(f.fill_write_time, write_time::IF_SET);
        assert!(f.defined);
        assert_eq!(f.value, Some(vec![7, 0, 0, 0]));
        for n in 0..12 {
            assert!(parse(&v[..n], 0, S).is_err(), "prefix {n}");
        }
        // Default fill: defined with size 0.
        let f = parse(&hex("0202020100000000"), 0, S).unwrap();
        assert!(f.defined);
        assert_eq!(f.value, None);
        // Undefined in v2: no size field at all.
        let f = parse(&[2, 3, 1, 0], 0, S).unwrap();
        assert!(!f.defined);
        assert_eq!(f.fill_write_time, write_time::NEVER);
    }

    #[test]
    fn version_1_always_has_size() {
        let f = parse(&[1, 1, 0, 0, 2, 0, 0, 0, 0xAB, 0xCD], 0, S).unwrap();
        assert!(!f.defined);
        assert_eq!(f.value, Some(vec![0xAB, 0xCD]));
        assert!(parse(&[1, 1, 0, 0], 0, S).is_err());
        let f = parse(&[1, 1, 0, 1, 0xff, 0xff, 0xff, 0xff], 0, S).unwrap();
        assert_eq!(f.value, None);
    }

    #[test]
    fn version_3_packed_flags() {
        // h5py libver latest: incremental allocation, write if set, no value.
        let f = parse(&hex("030b"), 0, S).unwrap();
        assert_eq!(f.space_allocation_time, alloc_time::INCREMENTAL);
        assert_eq!(f.fill_write_time, write_time::IF_SET);
        assert!(!f.defined && !f.undefined);
        assert_eq!(f.value, None);
        // Defined value of 2 bytes.
        let v = [3, 0x20 | 0x01, 2, 0, 0, 0, 0x34, 0x12];
        let f = parse(&v, 0, S).unwrap();
        assert!(f.defined);
        assert_eq!(f.space_allocation_time, alloc_time::EARLY);
        assert_eq!(f.value, Some(vec![0x34, 0x12]));
        for n in 0..v.len() {
            assert!(parse(&v[..n], 0, S).is_err(), "prefix {n}");
        }
        let f = parse(&[3, 0x10 | 0x06], 0, S).unwrap();
        assert!(f.undefined && !f.defined);
        assert_eq!(f.fill_write_time, write_time::NEVER);
    }

    #[test]
    fn bad_versions_flags_and_sizes() {
        assert_eq!(
            parse(&[4, 0], 0, S).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(4)
        );
        assert_eq!(
            parse(&[0, 0, 0, 0], 0, S).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(0)
        );
        assert!(parse(&[3, 0x30], 0, S).is_err());
        assert!(parse(&[3, 0x80], 0, S).is_err());
        // Hostile size: 4 GiB value in a 12-byte body.
        assert!(parse(&[3, 0x20, 0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0], 0, S).is_err());
        assert!(parse(&[2, 2, 2, 1, 0xfe, 0xff, 0xff, 0xff, 0], 0, S).is_err());
    }
}

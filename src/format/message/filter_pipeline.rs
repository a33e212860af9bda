//! The Filter Pipeline message (type 0x000B), spec IV.A.2.l "The Data
//! Storage - Filter Pipeline Message", versions 1 and 2.
//!
//! Version 1: 8-byte header (6 reserved), every filter has a name length and
//! a name padded to 8, and odd client-data counts are followed by 4 bytes of
//! padding. Version 2: 2-byte header, filters with id < 256 store neither
//! name length nor name, the name is not padded, no client-data padding.

use crate::format::codec::Reader;
use crate::format::{Error, ErrorKind, Result, Sizes};

const STRUCTURE: &str = "FilterPipeline";

/// Most filters in one pipeline (spec: "The maximum possible number of
/// filters in a message is 32").
pub const MAX_FILTERS: usize = 32;

/// Filter identifiers (spec IV.A.2.l, plus the registered LZF id).
pub const DEFLATE: u16 = 1;
pub const SHUFFLE: u16 = 2;
pub const FLETCHER32: u16 = 3;
pub const SZIP: u16 = 4;
pub const NBIT: u16 = 5;
pub const SCALEOFFSET: u16 = 6;
pub const LZF: u16 = 32000;

/// Filter flags bit 0: optional filter (failures skipped on output).
pub const FLAG_OPTIONAL: u16 = 0x0001;

/// One filter description.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    /// Filter identification value.
    pub id: u16,
    /// Optional name (NUL and padding removed).
    pub name: Option<String>,
    /// Bit 0: optional ([`FLAG_OPTIONAL`]).
    pub flags: u16,
    /// Client data values passed to the filter.
    pub client_data: Vec<u32>,
}

impl Filter {
    /// Short name for reports: "gzip(4)", "shuffle", "fletcher32", or the
    /// stored name / numeric id of anything else.
    pub fn describe(&self) -> String {
        match self.id {
            DEFLATE => match self.client_data.first() {
                Some(level) => format!("gzip({level})"),
                None => "gzip".to_string(),
            },
            SHUFFLE => "shuffle".to_string(),
            FLETCHER32 => "fletcher32".to_string(),
            SZIP => "szip".to_string(),
            NBIT => "nbit".to_string(),
            SCALEOFFSET => "scaleoffset".to_string(),
            LZF => "lzf".to_string(),
            id => match &self.name {
                Some(n) if !n.is_empty() => format!("{n}({id})"),
                _ => format!("filter {id}"),
            },
        }
    }

    pub fn is_optional(&self) -> bool {
        self.flags & FLAG_OPTIONAL != 0
    }
}

/// A decoded filter pipeline, filters in application order.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterPipeline {
    /// 1 or 2.
    pub version: u8,
    pub filters: Vec<Filter>,
}

/// Structure named by [`FilterPipeline::faults`].
pub const MESSAGE: &str = "filter pipeline message";

impl FilterPipeline {
    /// What is wrong in a pipeline that parsed (validation apart from
    /// parsing; `at` is the message body's absolute offset): a deflate
    /// filter whose client data is not one level 0-9 (spec IV.A.2.l, filter
    /// 1 "deflate": one value, the compression level; libhdf5's filter
    /// refuses anything else on every read and write). The level plays no
    /// part in decoding, so the data is still read; the writer stores 9.
    pub fn faults(&self, at: u64) -> Vec<Error> {
        self.filters
            .iter()
            .filter(|f| f.id == DEFLATE)
            .filter_map(|f| match f.client_data.as_slice() {
                [level] if *level <= 9 => None,
                [level] => Some(Error::bad_value(
                    MESSAGE,
                    at,
                    "deflate level (0-9)",
                    u64::from(*level),
                )),
                cd => Some(Error::invalid(
                    MESSAGE,
                    at,
                    format!(
                        "deflate filter with {} client data values, not one level 0-9",
                        cd.len()
                    ),
                )),
            })
            .collect()
    }
}

/// Parses a filter pipeline message body.
pub fn parse(body: &[u8], at: u64, _sizes: Sizes) -> Result<FilterPipeline> {
    let mut r = Reader::new(STRUCTURE, body, at);
    let version = r.u8()?;
    if !(1..=2).contains(&version) {
        return Err(Error::new(
            STRUCTURE,
            at,
            ErrorKind::UnsupportedVersion(version),
        ));
    }
    let count_at = r.abs();
    let count = usize::from(r.u8()?);
    if count > MAX_FILTERS {
        return Err(Error::bad_value(
            STRUCTURE,
            count_at,
            "number of filters",
            count as u64,
        ));
    }
    if version == 1 {
        r.skip(6)?; // reserved
    }
    let mut filters = Vec::with_capacity(count);
    for _ in 0..count {
        filters.push(filter(&mut r, version)?);
    }
    Ok(FilterPipeline { version, filters })
}

fn filter(r: &mut Reader, version: u8) -> Result<Filter> {
    let id = r.u16()?;
    let name_len = if version == 1 || id >= 256 {
        usize::from(r.u16()?)
    } else {
        0
    };
    let flags = r.u16()?;
    let count_at = r.abs();
    let n_values = usize::from(r.u16()?);
    let name = if name_len > 0 {
        let bytes = r.bytes(name_len)?;
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Some(String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned())
    } else {
        None
    };
    if n_values.saturating_mul(4) > r.remaining() {
        return Err(Error::bad_value(
            STRUCTURE,
            count_at,
            "number of client data values",
            n_values as u64,
        ));
    }
    let mut client_data = Vec::with_capacity(n_values);
    for _ in 0..n_values {
        client_data.push(r.u32()?);
    }
    if version == 1 && n_values % 2 == 1 {
        r.skip(4)?; // padding
    }
    Ok(Filter {
        id,
        name,
        flags,
        client_data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::test_support::hex;

    const S: Sizes = Sizes::DEFAULT;

    /// h5py default libver: shuffle, gzip(4), fletcher32.
    const H5PY_V1: &str = "0103000000000000020008000100010073687566666c6500080000000000000001000800010001006465666c6174650004000000000000000300100000000000666c6574636865723332000000000000";
    /// h5py libver latest: gzip(4).
    const H5PY_V2: &str = "020101000100010004000000";

    #[test]
    fn version_1_from_h5py() {
        let v = hex(H5PY_V1);
        let p = parse(&v, 0, S).unwrap();
        assert_eq!(p.version, 1);
        let ids: Vec<u16> = p.filters.iter().map(|f| f.id).collect();
        assert_eq!(ids, [SHUFFLE, DEFLATE, FLETCHER32]);
        assert_eq!(p.filters[0].name.as_deref(), Some("shuffle"));
        assert_eq!(p.filters[0].client_data, [8]);
        assert!(p.filters[0].is_optional());
        assert_eq!(p.filters[1].client_data, [4]);
        assert_eq!(p.filters[2].name.as_deref(), Some("fletcher32"));
        assert!(p.filters[2].client_data.is_empty());
        assert!(!p.filters[2].is_optional());
        for n in 0..v.len() {
            assert!(parse(&v[..n], 0, S).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn deflate_levels_outside_0_to_9_are_faults() {
        let mut p = parse(&hex(H5PY_V1), 0, S).unwrap();
        assert!(p.faults(100).is_empty());
        p.filters[1].client_data = vec![0xFF04];
        let f = p.faults(100);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].offset, 100);
        assert_eq!(f[0].structure, MESSAGE);
        assert!(matches!(
            f[0].kind,
            ErrorKind::BadValue { value: 0xFF04, .. }
        ));
        p.filters[1].client_data = vec![4, 5];
        assert!(matches!(p.faults(100)[0].kind, ErrorKind::Invalid(_)));
        p.filters[1].client_data = vec![9];
        assert!(p.faults(100).is_empty());
    }

    #[test]
    fn version_2_from_h5py_and_named() {
        let v = hex(H5PY_V2);
        let p = parse(&v, 0, S).unwrap();
        assert_eq!(
            p.filters,
            [Filter {
                id: DEFLATE,
                name: None,
                flags: 1,
                client_data: vec![4]
            }]
        );
        for n in 0..v.len() {
            assert!(parse(&v[..n], 0, S).is_err(), "prefix {n}");
        }
        // id >= 256 stores a name length and an unpadded name.
        let mut v = vec![2, 1];
        v.extend_from_slice(&LZF.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&3u16.to_le_bytes());
        v.extend_from_slice(b"lzf\0");
        for x in [4u32, 5, 6] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        let p = parse(&v, 0, S).unwrap();
        assert_eq!(p.filters[0].name.as_deref(), Some("lzf"));
        assert_eq!(p.filters[0].client_data, [4, 5, 6]);
        for n in 0..v.len() {
            assert!(parse(&v[..n], 0, S).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn bad_version_and_hostile_counts() {
        assert_eq!(
            parse(&[3, 0], 0, S).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(3)
        );
        assert_eq!(
            parse(&[0, 0], 0, S).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(0)
        );
        let e = parse(&[2, 33], 0, S).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::BadValue { .. }));
        // 65535 client data values in a few bytes.
        let e = parse(&[2, 1, 1, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0], 20, S).unwrap_err();
        assert_eq!(e.offset, 26);
        assert!(matches!(e.kind, ErrorKind::BadValue { .. }));
        // Name length beyond the body.
        assert!(parse(&[2, 1, 0, 1, 0xff, 0xff, 0, 0, 0, 0], 0, S).is_err());
    }
}

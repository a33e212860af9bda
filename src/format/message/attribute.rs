//! The Attribute message (type 0x000C), spec IV.A.2.m "The Attribute
//! Message", versions 1, 2 and 3.
//!
//! Version 1 pads the name, datatype and dataspace fields to multiples of 8;
//! versions 2 and 3 do not, and their flags say whether the datatype (bit 0)
//! or dataspace (bit 1) field holds a shared message reference instead of
//! the encoding itself (a committed datatype, for instance). Version 3 adds
//! the name's character set.
//!
//! The value is copied: its size is the dataspace's element count times the
//! datatype's size and must fit in the body. When the datatype or dataspace
//! is shared, that size is unknown here: `value` then holds every remaining
//! body byte (possibly with trailing padding) and the walker trims it after
//! resolving the shared message.

use crate::format::codec::Reader;
use crate::format::message::dataspace::{self, Dataspace};
use crate::format::message::datatype::{self, CharacterSet, Datatype};
use crate::format::message::shared::{self, SharedMessage};
use crate::format::{Error, ErrorKind, Result, Sizes};

const STRUCTURE: &str = "Attribute";

/// Flags bit 0: the datatype field is a shared message.
pub const FLAG_SHARED_DATATYPE: u8 = 0x01;
/// Flags bit 1: the dataspace field is a shared message.
pub const FLAG_SHARED_DATASPACE: u8 = 0x02;

/// A decoded attribute message.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// 1, 2 or 3.
    pub version: u8,
    /// v2/v3 flags (0 for v1).
    pub flags: u8,
    /// The name, without its NUL terminator.
    pub name: String,
    /// The whole stored name (trailing NULs dropped) when a non-NUL byte
    /// follows its first NUL: the stored length says more than the name
    /// (damage; `name` stops at the NUL).
    pub name_with_nul: Option<Vec<u8>>,
    /// Name character set (v3; ASCII before).
    pub charset: CharacterSet,
    /// The datatype, unless it is shared.
    pub datatype: Option<Datatype>,
    /// The shared message reference when flags bit 0 is set.
    pub datatype_shared: Option<SharedMessage>,
    /// The dataspace, unless it is shared.
    pub dataspace: Option<Dataspace>,
    /// The shared message reference when flags bit 1 is set.
    pub dataspace_shared: Option<SharedMessage>,
    /// The raw value bytes (exactly element count x datatype size when both
    /// are known; all remaining body bytes otherwise).
    pub value: Vec<u8>,
    /// Absolute file offset of the value bytes.
    pub value_offset: u64,
    /// Absolute file offset of the message body.
    pub offset: u64,
}

impl Attribute {
    /// True when `value` has exactly the declared size (neither the datatype
    /// nor the dataspace is shared).
    pub fn value_is_exact(&self) -> bool {
        self.datatype.is_some() && self.dataspace.is_some()
    }
}

/// Rounds up to a multiple of 8 (v1 field padding).
fn pad8(n: usize) -> usize {
    n.div_ceil(8).saturating_mul(8)
}

/// Parses an attribute message body.
pub fn parse(body: &[u8], at: u64, sizes: Sizes) -> Result<Attribute> {
    let mut r = Reader::new(STRUCTURE, body, at);
    let version = r.u8()?;
    if !(1..=3).contains(&version) {
        return Err(Error::new(
            STRUCTURE,
            at,
            ErrorKind::UnsupportedVersion(version),
        ));
    }
    let flags = r.u8()?; // reserved in v1
    let flags = if version == 1 { 0 } else { flags };
    let name_size = usize::from(r.u16()?);
    let datatype_size = usize::from(r.u16()?);
    let dataspace_size = usize::from(r.u16()?);
    let charset = if version == 3 {
        match r.u8()? {
            0 => CharacterSet::Ascii,
            1 => CharacterSet::Utf8,
            c => CharacterSet::Reserved(c),
        }
    } else {
        CharacterSet::Ascii
    };
    let field = |n: usize| if version == 1 { pad8(n) } else { n };

    let name_bytes = r.bytes(name_size)?;
    let end = name_bytes
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(name_bytes.len());
    let name = String::from_utf8_lossy(name_bytes.get(..end).unwrap_or_default()).into_owned();
    let name_with_nul = name_bytes
        .iter()
        .rposition(|&b| b != 0)
        .filter(|&last| last > end)
        .and_then(|last| name_bytes.get(..=last))
        .map(<[u8]>::to_vec);
    r.skip(field(name_size) - name_size)?;

    let dt_at = r.abs();
    let dt_bytes = r.bytes(datatype_size)?;
    r.skip(field(datatype_size) - datatype_size)?;
    let (datatype, datatype_shared) = if flags & FLAG_SHARED_DATATYPE != 0 {
        (None, Some(shared::parse(dt_bytes, dt_at, sizes)?))
    } else {
        (Some(datatype::parse(dt_bytes, dt_at, sizes)?), None)
    };

    let ds_at = r.abs();
    let ds_bytes = r.bytes(dataspace_size)?;
    r.skip(field(dataspace_size) - dataspace_size)?;
    let (dataspace, dataspace_shared) = if flags & FLAG_SHARED_DATASPACE != 0 {
        (None, Some(shared::parse(ds_bytes, ds_at, sizes)?))
    } else {
        (Some(dataspace::parse(ds_bytes, ds_at, sizes)?), None)
    };

    let value_offset = r.abs();
    let value = match (&datatype, &dataspace) {
        (Some(t), Some(s)) => {
            let need = s
                .element_count()
                .and_then(|n| n.checked_mul(u64::from(t.size)))
                .ok_or_else(|| Error::invalid(STRUCTURE, value_offset, "value size overflows"))?;
            let available = r.remaining() as u64;
            if need > available {
                return Err(Error::invalid(
                    STRUCTURE,
                    value_offset,
                    format!(
                        "value needs {need} bytes (elements x datatype size), \
                         {available} available in the message"
                    ),
                ));
            }
            r.bytes(need as usize)?.to_vec()
        }
        _ => r.rest().to_vec(),
    };
    Ok(Attribute {
        version,
        flags,
        name,
        name_with_nul,
        charset,
        datatype,
        datatype_shared,
        dataspace,
        dataspace_shared,
        value,
        value_offset,
        offset: at,
    })
}

#[cfg(test)]
mod tests {
    //! Real vectors come from h5py 3.16 / HDF5 2.0 files: root attributes
    //! `an_attr` = arange(3, '<i4') and `s` = 'hello' (vlen str), group
    //! attributes `x` (committed datatype `t` = '<i4'), `e` (shape (0,) f8)
    //! and `u` = 'héllo', in default-libver and libver='latest' files.
    use super::*;
    use crate::format::message::dataspace::DataspaceKind;
    use crate::format::message::shared::SharedKind;
    use crate::format::test_support::hex;

    const S: Sizes = Sizes::DEFAULT;

    fn prefixes_fail(v: &[u8], used: usize) {
        for n in 0..used {
            assert!(parse(&v[..n], 0, S).is_err(), "prefix {n}");
        }
    }

    const V1_INTS: &str = "010008000c001800616e5f61747472001008000004000000000020000000000001010100000000000300000000000000030000000000000000000000010000000200000000000000";
    const V1_VLEN_STR: &str = "01000200140008007300000000000000190101001000000010000000010000000000080000000000010000000000000005000000182500000000000001000000";
    const V3_INTS: &str = "030008000c00140000616e5f61747472001008000004000000000020000201010103000000000000000300000000000000000000000100000002000000";
    const V2_COMMITTED: &str = "020102000a001800780002022003000000000000010101000000000002000000000000000200000000000000000000000100000000000000";
    const V3_COMMITTED: &str = "030102000a0014000078000202b30000000000000002010101020000000000000002000000000000000000000001000000";
    const V1_EMPTY: &str = "0100020014001800650000000000000011203f000800000000004000340b0034ff03000000000000010101000000000000000000000000000000000000000000";
    const V3_UTF8_SCALAR: &str = "030002001400040000750019010100100000001000000001000000000008000200000006000000000800000000000001000000";

    #[test]
    fn nul_inside_the_stored_name_is_kept_apart() {
        let healthy = parse(&hex(V3_INTS), 0, S).unwrap();
        assert_eq!(healthy.name_with_nul, None);
        // "an_attr" -> "an\0attr": the name stops at the NUL, the whole
        // stored name is kept for the walk to report.
        let v = hex(V3_INTS.replace("616e5f6174747200", "616e006174747200"));
        let a = parse(&v, 0, S).unwrap();
        assert_eq!(a.name, "an");
        assert_eq!(a.name_with_nul.as_deref(), Some(&b"an\0attr"[..]));
    }

    #[test]
    fn version_1_from_h5py() {
        let v = hex(V1_INTS);
        let a = parse(&v, 1000, S).unwrap();
        assert_eq!(a.version, 1);
        assert_eq!(a.name, "an_attr");
        assert_eq!(a.datatype.as_ref().unwrap().describe(), "<i4");
        assert_eq!(a.dataspace.as_ref().unwrap().dims, [3]);
        assert_eq!(a.value, [0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(a.value_offset, 1000 + 8 + 8 + 16 + 24);
        assert!(a.value_is_exact());
        prefixes_fail(&v, 68);

        let v = hex(V1_VLEN_STR);
        let a = parse(&v, 0, S).unwrap();
        assert_eq!(a.name, "s");
        assert_eq!(a.datatype.as_ref().unwrap().describe(), "vlen str utf-8");
        assert_eq!(a.dataspace.as_ref().unwrap().kind, DataspaceKind::Scalar);
        assert_eq!(a.value.len(), 16);
        prefixes_fail(&v, 8 + 8 + 24 + 8 + 16);

        let a = parse(&hex(V1_EMPTY), 0, S).unwrap();
        assert_eq!(a.name, "e");
        assert_eq!(a.dataspace.as_ref().unwrap().element_count(), Some(0));
        assert!(a.value.is_empty());
    }

    #[test]
    fn version_3_from_h5py() {
        let v = hex(V3_INTS);
        let a = parse(&v, 0, S).unwrap();
        assert_eq!((a.version, a.charset), (3, CharacterSet::Ascii));
        assert_eq!(a.name, "an_attr");
        assert_eq!(a.dataspace.as_ref().unwrap().version, 2);
        assert_eq!(a.value, [0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(a.value_offset, 9 + 8 + 12 + 20);
        prefixes_fail(&v, v.len());

        let a = parse(&hex(V3_UTF8_SCALAR), 0, S).unwrap();
        assert_eq!(a.name, "u");
        assert_eq!(a.value.len(), 16);
    }

    #[test]
    fn shared_datatype_is_kept_not_failed() {
        for (h, version) in [(V2_COMMITTED, 2), (V3_COMMITTED, 3)] {
            let v = hex(h);
            let a = parse(&v, 0, S).unwrap();
            assert_eq!(a.version, version);
            assert_eq!(a.name, "x");
            assert_eq!(a.flags, FLAG_SHARED_DATATYPE);
            assert!(a.datatype.is_none());
            let sh = a.datatype_shared.as_ref().unwrap();
            assert_eq!(sh.kind, SharedKind::Committed);
            assert!(sh.address.is_some());
            assert_eq!(a.dataspace.as_ref().unwrap().dims, [2]);
            assert!(!a.value_is_exact());
            // The rest of the body, starting with the two <i4 values.
            assert_eq!(&a.value[..8], &[0, 0, 0, 0, 1, 0, 0, 0]);
        }
    }

    #[test]
    fn shared_dataspace_too() {
        let mut v = vec![2, 3, 2, 0, 10, 0, 10, 0];
        v.extend_from_slice(b"q\0");
        v.extend_from_slice(&[2, 2, 1, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(&[2, 2, 2, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(&[5, 6]);
        let a = parse(&v, 0, S).unwrap();
        assert!(a.datatype.is_none() && a.dataspace.is_none());
        assert_eq!(a.dataspace_shared.unwrap().address, Some(2));
        assert_eq!(a.value, [5, 6]);
    }

    #[test]
    fn value_larger_than_body_names_both_sizes() {
        let mut v = hex(V3_INTS);
        v.truncate(v.len() - 2);
        let e = parse(&v, 0, S).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("12") && msg.contains("10"), "{msg}");
        assert_eq!(e.offset, 49);
    }

    #[test]
    fn bad_versions_and_hostile_sizes() {
        assert_eq!(
            parse(&[4, 0, 0, 0, 0, 0, 0, 0], 0, S).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(4)
        );
        assert_eq!(
            parse(&[0, 0, 0, 0, 0, 0, 0, 0], 0, S).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(0)
        );
        // Huge name / datatype / dataspace sizes in a short body.
        assert!(parse(&[2, 0, 0xff, 0xff, 0, 0, 0, 0, 1, 2], 0, S).is_err());
        assert!(parse(&[2, 0, 1, 0, 0xff, 0xff, 0, 0, 0], 0, S).is_err());
        // A dataspace with an element count that overflows.
        let mut v = vec![2, 0, 2, 0, 8, 0, 20, 0, b'z', 0];
        v.extend_from_slice(&[0x13, 0, 0, 0, 8, 0, 0, 0]);
        v.extend_from_slice(&[2, 1, 0, 1]);
        v.extend_from_slice(&u64::MAX.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        let e = parse(&v, 0, S).unwrap_err();
        assert!(e.to_string().contains("overflow"), "{e}");
    }
}

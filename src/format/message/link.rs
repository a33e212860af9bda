//! Link message, type 0x0006 (spec IV.A.2.g): one link of a "new style" group,
//! stored in the group's object header (compact) or in its fractal heap (dense).

use nom::bytes::complete::take;
use nom::number::complete::{le_u16, le_u64, u8 as le_u8};
use nom::IResult;

use crate::format::{offset, uint, Error, ErrorKind, Result, Sizes};

/// Where a link points (spec IV.A.2.g, "Link type" and "Link Information").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkTarget {
    /// Type 0: relative address of the target's object header.
    Hard { address: u64 },
    /// Type 1: a path in this file (not NUL-terminated on disk).
    Soft { path: String },
    /// Type 64: a file name and a path inside that file.
    External { file: String, path: String },
    /// Types 65-255: user-defined links, kept raw.
    UserDefined { link_type: u8, data: Vec<u8> },
}

/// Link message (spec IV.A.2.g), version 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// "Link Name" (not NUL-terminated on disk; non-UTF-8 bytes replaced).
    pub name: String,
    /// "Creation Order" (present if flag bit 2).
    pub creation_order: Option<u64>,
    /// "Link Name Character Set": 0 ASCII, 1 UTF-8 (0 when absent, flag bit 4).
    pub charset: u8,
    /// The link type and its information.
    pub target: LinkTarget,
}

const STRUCTURE: &str = "link message";

/// Link type numbers (spec IV.A.2.g, "Link type").
pub const LINK_HARD: u8 = 0;
pub const LINK_SOFT: u8 = 1;
pub const LINK_EXTERNAL: u8 = 64;

/// Parses a Link message body. Errors on an unknown version, a reserved link
/// type (2-63), an empty name, or fields running past the body.
pub fn parse(body: &[u8], at: u64, sizes: Sizes) -> Result<Link> {
    let (head, name, target) = parse_raw(body, at, sizes)?;
    let target = match target {
        RawTarget::Hard(address) => LinkTarget::Hard { address },
        RawTarget::Soft(data) => LinkTarget::Soft {
            path: String::from_utf8_lossy(data).into_owned(),
        },
        RawTarget::External(t) => t,
        RawTarget::UserDefined(link_type, data) => LinkTarget::UserDefined {
            link_type,
            data: data.to_vec(),
        },
    };
    Ok(Link {
        name: String::from_utf8_lossy(name).into_owned(),
        creation_order: head.creation_order,
        charset: head.charset,
        target,
    })
}

/// The target address of a hard link (`None` for other link types), for a
/// body [`parse`] accepts (the same errors), without copying its name.
pub fn hard_target(body: &[u8], at: u64, sizes: Sizes) -> Result<Option<u64>> {
    Ok(match parse_raw(body, at, sizes)?.2 {
        RawTarget::Hard(address) => Some(address),
        _ => None,
    })
}

/// A link's information, borrowed from the message body.
enum RawTarget<'a> {
    Hard(u64),
    Soft(&'a [u8]),
    External(LinkTarget),
    UserDefined(u8, &'a [u8]),
}

/// [`parse`]'s checks; the name and link information borrowed from `body`.
fn parse_raw(body: &[u8], at: u64, sizes: Sizes) -> Result<(Head, &[u8], RawTarget<'_>)> {
    if let Some(&version) = body.first() {
        if version != 1 {
            return Err(Error::new(
                STRUCTURE,
                at,
                ErrorKind::UnsupportedVersion(version),
            ));
        }
    }
    let nom_err = |e| Error::from_nom(STRUCTURE, at, body, e);
    let (rest, head) = header(body).map_err(nom_err)?;
    let rel = |r: &[u8]| at.saturating_add((body.len() - r.len()) as u64);
    if (2..LINK_EXTERNAL).contains(&head.link_type) {
        return Err(Error::bad_value(
            STRUCTURE,
            at.saturating_add(2),
            "link type",
            u64::from(head.link_type),
        ));
    }
    if head.name_len == 0 {
        return Err(Error::bad_value(
            STRUCTURE,
            rel(rest),
            "link name length",
            0,
        ));
    }
    let name_len = usize::try_from(head.name_len).unwrap_or(usize::MAX);
    let (rest, name) = take(name_len)(rest).map_err(nom_err)?;
    let info_at = rel(rest);
    let target = match head.link_type {
        LINK_HARD => {
            let (_, address) = offset(sizes)(rest).map_err(nom_err)?;
            RawTarget::Hard(address)
        }
        t => {
            let (_, data) = counted(rest).map_err(nom_err)?;
            match t {
                LINK_SOFT => RawTarget::Soft(data),
                LINK_EXTERNAL => RawTarget::External(external(data, info_at.saturating_add(2))?),
                _ => RawTarget::UserDefined(t, data),
            }
        }
    };
    Ok((head, name, target))
}

struct Head {
    link_type: u8,
    creation_order: Option<u64>,
    charset: u8,
    name_len: u64,
}

/// Version, flags and the optional fields up to the name length.
fn header(i: &[u8]) -> IResult<&[u8], Head> {
    let (i, _version) = le_u8(i)?;
    let (i, flags) = le_u8(i)?;
    let (i, link_type) = if flags & 0x08 != 0 {
        le_u8(i)?
    } else {
        (i, LINK_HARD)
    };
    let (i, creation_order) = if flags & 0x04 != 0 {
        let (i, v) = le_u64(i)?;
        (i, Some(v))
    } else {
        (i, None)
    };
    let (i, charset) = if flags & 0x10 != 0 { le_u8(i)? } else { (i, 0) };
    let (i, name_len) = uint(1 << (flags & 0x03))(i)?;
    Ok((
        i,
        Head {
            link_type,
            creation_order,
            charset,
            name_len,
        },
    ))
}

/// A u16 length followed by that many bytes (soft, external and user-defined
/// link information).
fn counted(i: &[u8]) -> IResult<&[u8], &[u8]> {
    let (i, len) = le_u16(i)?;
    take(usize::from(len))(i)
}

/// External link information: a version/flags byte (version in the upper 4
/// bits, 0), then the NUL-terminated file name and object path.
fn external(data: &[u8], at: u64) -> Result<LinkTarget> {
    let Some((&vf, rest)) = data.split_first() else {
        return Err(Error::new(
            STRUCTURE,
            at,
            ErrorKind::Truncated {
                needed: 1,
                available: 0,
            },
        ));
    };
    if vf >> 4 != 0 {
        return Err(Error::new(
            STRUCTURE,
            at,
            ErrorKind::UnsupportedVersion(vf >> 4),
        ));
    }
    let mut parts = rest.splitn(3, |&b| b == 0);
    let file = parts.next().unwrap_or(&[]);
    let path = parts.next();
    match path {
        Some(path) => Ok(LinkTarget::External {
            file: String::from_utf8_lossy(file).into_owned(),
            path: String::from_utf8_lossy(path).into_owned(),
        }),
        None => Err(Error::invalid(
            STRUCTURE,
            at,
            "external link information lacks a NUL-terminated file name",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::UNDEFINED;

    /// The link "g" -> 0xb4 from an h5py libver='latest' root group.
    const H5PY_HARD: [u8; 12] = [1, 0, 1, b'g', 0xb4, 0, 0, 0, 0, 0, 0, 0];

    #[test]
    fn hard_link_from_h5py() {
        let l = parse(&H5PY_HARD, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(l.name, "g");
        assert_eq!(l.creation_order, None);
        assert_eq!(l.charset, 0);
        assert_eq!(l.target, LinkTarget::Hard { address: 0xb4 });
        for n in 0..H5PY_HARD.len() {
            assert!(parse(&H5PY_HARD[..n], 0, Sizes::DEFAULT).is_err(), "{n}");
        }
    }

    #[test]
    fn all_optional_fields() {
        // flags: 2-byte name length, creation order, link type, charset.
        let mut b = vec![1u8, 0x01 | 0x04 | 0x08 | 0x10, LINK_SOFT];
        b.extend_from_slice(&5u64.to_le_bytes());
        b.push(1);
        b.extend_from_slice(&4u16.to_le_bytes());
        b.extend_from_slice("näm".as_bytes());
        b.extend_from_slice(&6u16.to_le_bytes());
        b.extend_from_slice(b"/a/b/c");
        let l = parse(&b, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(l.name, "näm");
        assert_eq!(l.creation_order, Some(5));
        assert_eq!(l.charset, 1);
        assert_eq!(
            l.target,
            LinkTarget::Soft {
                path: "/a/b/c".into()
            }
        );
        for n in 0..b.len() {
            assert!(parse(&b[..n], 0, Sizes::DEFAULT).is_err(), "{n}");
        }
    }

    #[test]
    fn external_and_user_defined() {
        let mut b = vec![1u8, 0x08 | 0x03, LINK_EXTERNAL];
        b.extend_from_slice(&1u64.to_le_bytes());
        b.push(b'x');
        let info = b"\0other.h5\0/grp\0";
        b.extend_from_slice(&(info.len() as u16).to_le_bytes());
        b.extend_from_slice(info);
        let l = parse(&b, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(
            l.target,
            LinkTarget::External {
                file: "other.h5".into(),
                path: "/grp".into()
            }
        );
        let mut bad = b.clone();
        bad[14] = 0x10; // external link version 1
        assert!(parse(&bad, 0, Sizes::DEFAULT).is_err());
        let mut ud = vec![1u8, 0x08, 200, 1, b'u', 2, 0, 0xAB, 0xCD];
        let l = parse(&ud, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(
            l.target,
            LinkTarget::UserDefined {
                link_type: 200,
                data: vec![0xAB, 0xCD]
            }
        );
        ud[2] = 7; // reserved link type
        assert!(matches!(
            parse(&ud, 0, Sizes::DEFAULT).unwrap_err().kind,
            ErrorKind::BadValue { .. }
        ));
    }

    #[test]
    fn hostile_values() {
        // 8-byte name length of 2^64-1.
        let mut b = vec![1u8, 0x03];
        b.extend_from_slice(&[0xFF; 8]);
        b.extend_from_slice(b"abc");
        assert!(parse(&b, 0, Sizes::DEFAULT).is_err());
        // Empty name.
        assert!(parse(&[1, 0, 0, 0, 0, 0, 0], 0, Sizes::new(4, 4).unwrap()).is_err());
        // Bad version.
        assert_eq!(
            parse(&[2, 0], 0, Sizes::DEFAULT).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(2)
        );
        // Undefined hard link address is returned as such.
        let l = parse(
            &[1, 0, 1, b'z', 0xFF, 0xFF, 0xFF, 0xFF],
            0,
            Sizes::new(4, 4).unwrap(),
        )
        .unwrap();
        assert_eq!(l.target, LinkTarget::Hard { address: UNDEFINED });
    }
}

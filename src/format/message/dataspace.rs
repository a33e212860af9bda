//! The Dataspace message (type 0x0001), spec IV.A.2.b "The Dataspace
//! Message", versions 1 and 2.
//!
//! Version 1 has no type field (rank 0 means scalar) and may carry
//! permutation indices, which are skipped. Version 2 adds the type (scalar,
//! simple, null). Ranks above [`MAX_RANK`] are refused.

use crate::format::codec::Reader;
use crate::format::{widen_address, Error, ErrorKind, Result, Sizes};

const STRUCTURE: &str = "Dataspace";

/// Largest rank accepted (the library's `H5S_MAX_RANK`).
pub const MAX_RANK: usize = 32;

/// Dataspace type (v2 "Type" field; derived from the rank for v1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataspaceKind {
    /// One element, no dimensions.
    Scalar,
    /// Rank > 0 array.
    Simple,
    /// No elements at all.
    Null,
}

/// A decoded dataspace message.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataspace {
    /// 1 or 2.
    pub version: u8,
    pub kind: DataspaceKind,
    /// Current dimension sizes, slowest-changing first.
    pub dims: Vec<u64>,
    /// Maximum sizes if stored (flags bit 0); "unlimited" is
    /// [`crate::format::UNDEFINED`] (`u64::MAX`) at any "size of lengths".
    pub max_dims: Option<Vec<u64>>,
}

impl Dataspace {
    /// A maximum size below the current size (spec IV.A.2.b: each maximum
    /// is at least its dimension or unlimited; libhdf5's `H5S_set_extent`
    /// and dataset creation refuse it), at the message offset `at`.
    pub fn faults(&self, at: u64) -> Vec<Error> {
        let Some(max) = &self.max_dims else {
            return Vec::new();
        };
        self.dims
            .iter()
            .zip(max)
            .enumerate()
            .filter(|(_, (d, m))| !crate::format::is_undefined(**m) && m < d)
            .map(|(i, (d, m))| {
                Error::invalid(
                    STRUCTURE,
                    at,
                    format!("dimension {i}: maximum size {m} below the current size {d}"),
                )
            })
            .collect()
    }

    /// Number of elements: 1 for scalar, 0 for null, the product of the
    /// dimensions for simple (None on overflow).
    pub fn element_count(&self) -> Option<u64> {
        match self.kind {
            DataspaceKind::Scalar => Some(1),
            DataspaceKind::Null => Some(0),
            DataspaceKind::Simple => self
                .dims
                .iter()
                .try_fold(1u64, |acc, d| acc.checked_mul(*d)),
        }
    }

    /// Rank (number of dimensions).
    pub fn rank(&self) -> usize {
        self.dims.len()
    }
}

/// Parses a dataspace message body.
pub fn parse(body: &[u8], at: u64, sizes: Sizes) -> Result<Dataspace> {
    parse_dataspace(body, at, sizes).map(|(d, _)| d)
}

/// Parses a dataspace at the start of `data`, returning it with the number of
/// bytes consumed (used by attribute messages).
pub fn parse_dataspace(data: &[u8], at: u64, sizes: Sizes) -> Result<(Dataspace, usize)> {
    let mut r = Reader::new(STRUCTURE, data, at);
    let version = r.u8()?;
    if !(1..=2).contains(&version) {
        return Err(Error::new(
            STRUCTURE,
            at,
            ErrorKind::UnsupportedVersion(version),
        ));
    }
    let rank_at = r.abs();
    let rank = usize::from(r.u8()?);
    if rank > MAX_RANK {
        return Err(Error::bad_value(
            STRUCTURE,
            rank_at,
            "dataspace rank",
            rank as u64,
        ));
    }
    let flags = r.u8()?;
    let kind = if version == 1 {
        r.skip(1)?; // reserved
        r.skip(4)?; // reserved
        if rank == 0 {
            DataspaceKind::Scalar
        } else {
            DataspaceKind::Simple
        }
    } else {
        let type_at = r.abs();
        match r.u8()? {
            0 => DataspaceKind::Scalar,
            1 => DataspaceKind::Simple,
            2 => DataspaceKind::Null,
            t => {
                return Err(Error::bad_value(
                    STRUCTURE,
                    type_at,
                    "dataspace type",
                    u64::from(t),
                ))
            }
        }
    };
    let mut dims = Vec::with_capacity(rank);
    for _ in 0..rank {
        dims.push(r.length(sizes)?);
    }
    let max_dims = if flags & 0x01 != 0 {
        let mut max = Vec::with_capacity(rank);
        for _ in 0..rank {
            max.push(widen_address(r.length(sizes)?, sizes.length()));
        }
        Some(max)
    } else {
        None
    };
    if version == 1 && flags & 0x02 != 0 {
        // Permutation indices: never implemented by the library; skipped.
        r.skip(rank * usize::from(sizes.length()))?;
    }
    Ok((
        Dataspace {
            version,
            kind,
            dims,
            max_dims,
        },
        r.pos(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::test_support::hex;
    use crate::format::UNDEFINED;

    const S: Sizes = Sizes::DEFAULT;

    fn prefixes_fail(v: &[u8]) {
        let (_, used) = parse_dataspace(v, 0, S).unwrap();
        for n in 0..used {
            assert!(parse(&v[..n], 0, S).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn version_1_simple_from_h5py() {
        // h5py default libver, shape (10,) with maxshape (10,).
        let v = hex("01010100000000000a000000000000000a00000000000000");
        let d = parse(&v, 0, S).unwrap();
        assert_eq!(d.kind, DataspaceKind::Simple);
        assert_eq!(d.dims, [10]);
        assert_eq!(d.max_dims, Some(vec![10]));
        assert_eq!(d.element_count(), Some(10));
        prefixes_fail(&v);
    }

    #[test]
    fn version_1_scalar_and_permutation() {
        let d = parse(&[1, 0, 0, 0, 0, 0, 0, 0], 0, S).unwrap();
        assert_eq!(d.kind, DataspaceKind::Scalar);
        assert_eq!(d.element_count(), Some(1));
        // Rank 2, no max, permutation indices present (flags bit 1).
        let mut v = vec![1, 2, 2, 0, 0, 0, 0, 0];
        for x in [3u64, 4, 1, 0] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        let (d, used) = parse_dataspace(&v, 0, S).unwrap();
        assert_eq!(used, v.len());
        assert_eq!(d.dims, [3, 4]);
        assert_eq!(d.max_dims, None);
        assert_eq!(d.element_count(), Some(12));
        prefixes_fail(&v);
    }

    #[test]
    fn version_2_all_types_and_unlimited() {
        // h5py libver latest, shape (10, 10), maxshape (None, None).
        let v = hex("020201010a000000000000000a00000000000000ffffffffffffffffffffffffffffffff");
        let d = parse(&v, 0, S).unwrap();
        assert_eq!(d.version, 2);
        assert_eq!(d.dims, [10, 10]);
        assert_eq!(d.max_dims, Some(vec![UNDEFINED, UNDEFINED]));
        prefixes_fail(&v);
        let d = parse(&[2, 0, 0, 0], 0, S).unwrap();
        assert_eq!(
            (d.kind, d.element_count()),
            (DataspaceKind::Scalar, Some(1))
        );
        let d = parse(&[2, 0, 0, 2], 0, S).unwrap();
        assert_eq!((d.kind, d.element_count()), (DataspaceKind::Null, Some(0)));
        // Unlimited at 4-byte lengths widens too.
        let s4 = Sizes::new(8, 4).unwrap();
        let d = parse(&[2, 1, 1, 1, 5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], 0, s4).unwrap();
        assert_eq!(d.dims, [5]);
        assert_eq!(d.max_dims, Some(vec![UNDEFINED]));
    }

    #[test]
    fn bad_version_type_and_hostile_values() {
        assert_eq!(
            parse(&[3, 0, 0, 0], 0, S).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(3)
        );
        assert_eq!(
            parse(&[0, 0, 0, 0], 0, S).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(0)
        );
        let e = parse(&[2, 0, 0, 7], 50, S).unwrap_err();
        assert_eq!(e.offset, 53);
        let e = parse(&[2, 33, 0, 1], 0, S).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::BadValue { .. }));
        // Rank 32 claimed in a short body: truncated, not a huge allocation.
        assert!(parse(&[2, 32, 1, 1, 0, 0], 0, S).is_err());
        // Overflowing element count.
        let mut v = vec![2, 2, 0, 1];
        v.extend_from_slice(&u64::MAX.to_le_bytes());
        v.extend_from_slice(&2u64.to_le_bytes());
        assert_eq!(parse(&v, 0, S).unwrap().element_count(), None);
    }
}

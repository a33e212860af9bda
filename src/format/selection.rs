//! Serialized dataspace selections and old-style dataset region references.
//!
//! Implements spec VIII.A ("Dataspace Encoding", the "Dataspace Selection"
//! layouts: `H5S_SEL_NONE`, `H5S_SEL_POINTS` versions 1 and 2,
//! `H5S_SEL_HYPERSLABS` versions 1, 2 and 3, `H5S_SEL_ALL`) and VIII.C
//! ("Reference for `H5R_DATASET_REGION1`": object header address followed by
//! a selection, stored as a global heap object).
//!
//! Every integer is little-endian. "Encode size" fields (2, 4 or 8 bytes)
//! set the width of the counts and coordinates that follow them; the older
//! versions use 4 bytes (version 1) or 8 bytes (hyperslab version 2).
//! Observed with HDF5 2.0 (h5py 3.16), not spelled out by the spec:
//! - the "Length" field of point version 1 counts the bytes from *Rank* to
//!   the end (as for hyperslab versions 1 and 2), not from *Length*;
//! - `H5S_UNLIMITED` in a version-3 count or block is all ones at the
//!   encode size (`0xffff` at size 2), widened here to [`UNLIMITED`].
//!
//! [`parse`] reads exactly one selection and reports how many bytes it
//! took; [`parse_region_reference`] requires the heap object to hold exactly
//! an address and one selection. [`Selection::check_within`] is the separate
//! validator against a target's dimensions.

use nom::bytes::complete::take;
use nom::number::complete::{le_u32, le_u8};

use super::{offset, uint, Error, ErrorKind, Result, Sizes};

const STRUCTURE: &str = "dataspace selection";
const REGION: &str = "dataset region reference";

/// Most dimensions a dataspace may have (`H5S_MAX_RANK`).
pub const MAX_RANK: u32 = 32;

/// `H5S_UNLIMITED`: a hyperslab count or block without end.
pub const UNLIMITED: u64 = u64::MAX;

/// One dimension of a regular hyperslab (spec VIII.A, "Version 2 Hyperslab
/// Selection Info" and "Version 3 Regular Hyperslab Selection Info").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegularDim {
    /// Offset of the first element of the first block.
    pub start: u64,
    /// Elements between the starts of consecutive blocks.
    pub stride: u64,
    /// Number of blocks; [`UNLIMITED`] for no end.
    pub count: u64,
    /// Elements in each block; [`UNLIMITED`] for no end.
    pub block: u64,
}

/// What a selection selects, independent of its encoding version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// `H5S_SEL_NONE` (selection type 0).
    None,
    /// `H5S_SEL_ALL` (selection type 3).
    All,
    /// `H5S_SEL_POINTS` (type 1): `coords` holds the points one after the
    /// other, `rank` coordinates each (slowest-changing dimension first).
    Points { rank: usize, coords: Vec<u64> },
    /// `H5S_SEL_HYPERSLABS` (type 2) as a list of blocks (hyperslab version
    /// 1, irregular version 3): `corners` holds, per block, `rank` start
    /// coordinates then `rank` end coordinates (inclusive).
    Blocks { rank: usize, corners: Vec<u64> },
    /// `H5S_SEL_HYPERSLABS` (type 2) as one regular hyperslab (version 2,
    /// regular version 3), one entry per dimension.
    Regular(Vec<RegularDim>),
}

/// A parsed selection with its encoding (spec VIII.A, "Layout: Dataspace
/// Selection").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataspaceSelection {
    /// Selection type: 0 none, 1 points, 2 hyperslabs, 3 all.
    pub selection_type: u32,
    /// Version of the selection info.
    pub version: u32,
    /// Bytes per count or coordinate (4 for version 1, 8 for hyperslab
    /// version 2, the "Encode Size" field otherwise; 0 for none and all).
    pub encode_size: u8,
    pub selection: Selection,
}

/// An old-style region reference's heap object (spec VIII.C, "Layout:
/// Reference for `H5R_DATASET_REGION1`").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionReference {
    /// Object header address of the referenced dataset (O bytes).
    pub object: u64,
    pub selection: DataspaceSelection,
}

type NomResult<'a, T> = nom::IResult<&'a [u8], T>;

/// A position inside `data` (which starts at file offset `at`).
struct Cursor<'a> {
    data: &'a [u8],
    rest: &'a [u8],
    at: u64,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8], at: u64) -> Cursor<'a> {
        Cursor {
            data,
            rest: data,
            at,
        }
    }

    fn consumed(&self) -> usize {
        self.data.len().saturating_sub(self.rest.len())
    }

    /// Absolute file offset of the next unread byte.
    fn here(&self) -> u64 {
        self.at.saturating_add(self.consumed() as u64)
    }

    fn read<T>(&mut self, f: impl FnOnce(&'a [u8]) -> NomResult<'a, T>) -> Result<T> {
        match f(self.rest) {
            Ok((rest, v)) => {
                self.rest = rest;
                Ok(v)
            }
            Err(e) => Err(Error::from_nom(STRUCTURE, self.at, self.data, e)),
        }
    }

    fn u8(&mut self) -> Result<u8> {
        self.read(le_u8)
    }

    fn u32(&mut self) -> Result<u32> {
        self.read(le_u32)
    }

    fn uint(&mut self, width: u8) -> Result<u64> {
        self.read(uint(width))
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        self.read(take(n)).map(|_| ())
    }

    /// `n` values of `width` bytes, after checking that they are all there
    /// (so a hostile count never sizes an allocation).
    fn values(&mut self, n: u64, width: u8, field: &str) -> Result<Vec<u64>> {
        let bytes = n.checked_mul(u64::from(width));
        let available = self.rest.len() as u64;
        match bytes {
            Some(b) if b <= available => {}
            Some(b) => {
                return Err(Error::new(
                    STRUCTURE,
                    self.here(),
                    ErrorKind::Truncated {
                        needed: b,
                        available,
                    },
                ))
            }
            None => {
                return Err(Error::invalid(
                    STRUCTURE,
                    self.here(),
                    format!("{field}: {n} values overflow"),
                ))
            }
        }
        // n <= available bytes, so it fits in usize.
        let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        for _ in 0..n {
            out.push(self.uint(width)?);
        }
        Ok(out)
    }
}

fn check_rank(c: &Cursor, rank: u32) -> Result<usize> {
    if rank == 0 || rank > MAX_RANK {
        return Err(Error::bad_value(
            STRUCTURE,
            c.here().saturating_sub(4),
            "rank",
            u64::from(rank),
        ));
    }
    Ok(rank as usize)
}

fn check_encode_size(c: &Cursor, size: u8) -> Result<u8> {
    if !matches!(size, 2 | 4 | 8) {
        return Err(Error::bad_value(
            STRUCTURE,
            c.here().saturating_sub(1),
            "encode size",
            u64::from(size),
        ));
    }
    Ok(size)
}

/// Checks a "Length" field (read just before `from`, the offset it counts
/// from) against the bytes the selection info actually takes.
fn check_length(c: &Cursor, declared: u32, from: usize, length_at: u64) -> Result<()> {
    let actual = c.consumed().saturating_sub(from) as u64;
    if u64::from(declared) != actual {
        return Err(Error::invalid(
            STRUCTURE,
            length_at,
            format!("length field says {declared} bytes, the selection info has {actual}"),
        ));
    }
    Ok(())
}

/// Widens an all-ones value at `width` bytes to [`UNLIMITED`].
fn widen_unlimited(v: u64, width: u8) -> u64 {
    let all = if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * u32::from(width))) - 1
    };
    if v == all {
        UNLIMITED
    } else {
        v
    }
}

fn unsupported(c: &Cursor, version: u32) -> Error {
    let at = c.here().saturating_sub(4);
    match u8::try_from(version) {
        Ok(v) => Error::new(STRUCTURE, at, ErrorKind::UnsupportedVersion(v)),
        Err(_) => Error::bad_value(STRUCTURE, at, "version", u64::from(version)),
    }
}

/// Parses one serialized selection at the start of `data` (file offset
/// `at`); returns it with the number of bytes it took.
pub fn parse(data: &[u8], at: u64) -> Result<(DataspaceSelection, usize)> {
    let mut c = Cursor::new(data, at);
    let selection_type = c.u32()?;
    let version = c.u32()?;
    let (encode_size, selection) = match selection_type {
        0 | 3 => {
            if version != 1 {
                return Err(unsupported(&c, version));
            }
            c.skip(8)?; // reserved
            let s = if selection_type == 0 {
                Selection::None
            } else {
                Selection::All
            };
            (0, s)
        }
        1 => points(&mut c, version)?,
        2 => hyperslabs(&mut c, version)?,
        t => {
            return Err(Error::bad_value(
                STRUCTURE,
                at,
                "selection type",
                u64::from(t),
            ))
        }
    };
    Ok((
        DataspaceSelection {
            selection_type,
            version,
            encode_size,
            selection,
        },
        c.consumed(),
    ))
}

/// Version 1 selection info, shared by points and hyperslabs (spec VIII.A):
/// reserved (4), length (4, counted from the rank on), rank (4), count (4),
/// then `body` reads `count` items of 4-byte values; the length must match.
fn version1(
    c: &mut Cursor,
    body: impl FnOnce(&mut Cursor, usize, u32) -> Result<Selection>,
) -> Result<(u8, Selection)> {
    c.skip(4)?; // reserved
    let length_at = c.here();
    let length = c.u32()?;
    let from = c.consumed();
    let rank = c.u32()?;
    let rank = check_rank(c, rank)?;
    let n = c.u32()?;
    let s = body(c, rank, n)?;
    check_length(c, length, from, length_at)?;
    Ok((4, s))
}

/// Selection info for `H5S_SEL_POINTS` (spec VIII.A, versions 1 and 2).
fn points(c: &mut Cursor, version: u32) -> Result<(u8, Selection)> {
    match version {
        1 => version1(c, |c, rank, n| {
            let total = u64::from(n).checked_mul(rank as u64);
            let coords = c.values(total.unwrap_or(u64::MAX), 4, "point coordinates")?;
            Ok(Selection::Points { rank, coords })
        }),
        2 => {
            let size = c.u8()?;
            let size = check_encode_size(c, size)?;
            let rank = c.u32()?;
            let rank = check_rank(c, rank)?;
            let n = c.uint(size)?;
            let total = n.checked_mul(rank as u64);
            let coords = c.values(total.unwrap_or(u64::MAX), size, "point coordinates")?;
            Ok((size, Selection::Points { rank, coords }))
        }
        v => Err(unsupported(c, v)),
    }
}

/// `rank` start and `rank` end coordinates per block, `n` blocks.
fn blocks(c: &mut Cursor, n: u64, rank: usize, width: u8) -> Result<Selection> {
    let total = n.checked_mul(2).and_then(|x| x.checked_mul(rank as u64));
    let corners = c.values(total.unwrap_or(u64::MAX), width, "hyperslab blocks")?;
    Ok(Selection::Blocks { rank, corners })
}

fn regular(c: &mut Cursor, rank: usize, width: u8) -> Result<Selection> {
    let v = c.values((rank as u64).saturating_mul(4), width, "regular hyperslab")?;
    let dims = v
        .chunks_exact(4)
        .map(|d| RegularDim {
            start: d[0],
            stride: d[1],
            count: widen_unlimited(d[2], width),
            block: widen_unlimited(d[3], width),
        })
        .collect();
    Ok(Selection::Regular(dims))
}

/// Selection info for `H5S_SEL_HYPERSLABS` (spec VIII.A, versions 1-3).
fn hyperslabs(c: &mut Cursor, version: u32) -> Result<(u8, Selection)> {
    match version {
        1 => version1(c, |c, rank, n| blocks(c, u64::from(n), rank, 4)),
        2 => {
            let flags_at = c.here();
            let flags = c.u8()?;
            if flags & 1 == 0 {
                return Err(Error::invalid(
                    STRUCTURE,
                    flags_at,
                    "version 2 hyperslab without the regular flag",
                ));
            }
            let length_at = c.here();
            let length = c.u32()?;
            let from = c.consumed();
            let rank = c.u32()?;
            let rank = check_rank(c, rank)?;
            let s = regular(c, rank, 8)?;
            check_length(c, length, from, length_at)?;
            Ok((8, s))
        }
        3 => {
            let flags = c.u8()?;
            let size = c.u8()?;
            let size = check_encode_size(c, size)?;
            let rank = c.u32()?;
            let rank = check_rank(c, rank)?;
            let s = if flags & 1 != 0 {
                regular(c, rank, size)?
            } else {
                let n = c.uint(size)?;
                blocks(c, n, rank, size)?
            };
            Ok((size, s))
        }
        v => Err(unsupported(c, v)),
    }
}

/// Parses the global heap object of an old-style region reference: the
/// object header address, then exactly one selection filling the rest of
/// `data` (the object's declared size; trailing bytes are an error).
pub fn parse_region_reference(data: &[u8], at: u64, sizes: Sizes) -> Result<RegionReference> {
    let (rest, object) = offset(sizes)(data).map_err(|e| Error::from_nom(REGION, at, data, e))?;
    let sel_at = at.saturating_add(u64::from(sizes.offset()));
    let (selection, used) = parse(rest, sel_at)?;
    if used != rest.len() {
        return Err(Error::invalid(
            REGION,
            sel_at.saturating_add(used as u64),
            format!(
                "{} bytes after the selection",
                rest.len().saturating_sub(used)
            ),
        ));
    }
    Ok(RegionReference { object, selection })
}

impl Selection {
    /// Dimensions the selection is written for (`None` for none and all,
    /// which fit any dataspace).
    pub fn rank(&self) -> Option<usize> {
        match self {
            Selection::None | Selection::All => None,
            Selection::Points { rank, .. } | Selection::Blocks { rank, .. } => Some(*rank),
            Selection::Regular(d) => Some(d.len()),
        }
    }

    /// Number of points (points) or blocks (block list); 1 for a regular
    /// hyperslab, 0 for none and all.
    pub fn len(&self) -> usize {
        match self {
            Selection::None | Selection::All => 0,
            Selection::Points { rank, coords } => coords.len().checked_div(*rank).unwrap_or(0),
            Selection::Blocks { rank, corners } => corners
                .len()
                .checked_div(rank.saturating_mul(2))
                .unwrap_or(0),
            Selection::Regular(_) => 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks that the selection can be applied to a dataspace of current
    /// dimensions `dims` (empty for a scalar) without reaching outside it:
    /// same rank, every point and block inside, regular hyperslabs bounded
    /// (no [`UNLIMITED`]) with non-overlapping blocks. The message says what
    /// does not fit.
    pub fn check_within(&self, dims: &[u64]) -> std::result::Result<(), String> {
        let Some(rank) = self.rank() else {
            return Ok(());
        };
        if rank != dims.len() {
            return Err(format!(
                "selection of rank {rank}, target dataspace of rank {}",
                dims.len()
            ));
        }
        let inside = |what: &str, d: usize, v: u64| -> std::result::Result<(), String> {
            match dims.get(d) {
                Some(&n) if v < n => Ok(()),
                Some(&n) => Err(format!(
                    "{what} {v} in dimension {d} is outside the target's extent {n}"
                )),
                None => Err(format!("dimension {d} beyond the target's rank")),
            }
        };
        match self {
            Selection::None | Selection::All => Ok(()),
            Selection::Points { coords, .. } => {
                for (i, v) in coords.iter().enumerate() {
                    inside("point coordinate", i % rank, *v)?;
                }
                Ok(())
            }
            Selection::Blocks { corners, .. } => {
                for block in corners.chunks_exact(rank.saturating_mul(2)) {
                    let (start, end) = block.split_at(rank);
                    for (d, (s, e)) in start.iter().zip(end).enumerate() {
                        if s > e {
                            return Err(format!(
                                "block starts at {s} after its end {e} in dimension {d}"
                            ));
                        }
                        inside("block end", d, *e)?;
                    }
                }
                Ok(())
            }
            Selection::Regular(ds) => {
                for (d, r) in ds.iter().enumerate() {
                    if r.count == UNLIMITED || r.block == UNLIMITED {
                        return Err(format!("unlimited hyperslab in dimension {d}"));
                    }
                    if r.count == 0 || r.block == 0 || r.stride == 0 {
                        return Err(format!(
                            "empty hyperslab (count {}, block {}, stride {}) in dimension {d}",
                            r.count, r.block, r.stride
                        ));
                    }
                    if r.count > 1 && r.stride < r.block {
                        return Err(format!(
                            "overlapping blocks (stride {} < block {}) in dimension {d}",
                            r.stride, r.block
                        ));
                    }
                    let last = (r.count - 1)
                        .checked_mul(r.stride)
                        .and_then(|x| x.checked_add(r.start))
                        .and_then(|x| x.checked_add(r.block - 1));
                    match last {
                        Some(l) => inside("hyperslab end", d, l)?,
                        None => return Err(format!("hyperslab overflows in dimension {d}")),
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::test_support::hex;

    fn u32s(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// A selection built from (width, value) fields.
    fn fields(f: &[(u8, u64)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (w, v) in f {
            out.extend_from_slice(&v.to_le_bytes()[..usize::from(*w)]);
        }
        out
    }

    fn ok(data: &[u8]) -> DataspaceSelection {
        let (s, used) = parse(data, 100).unwrap();
        assert_eq!(used, data.len());
        s.clone()
    }

    /// Every proper prefix is an error (never a panic), and so is the
    /// same bytes as a region reference with one trailing byte.
    fn prefixes_fail(data: &[u8]) {
        for n in 0..data.len() {
            assert!(parse(&data[..n], 0).is_err(), "prefix {n} of {data:?}");
        }
        let mut r = 0x800u64.to_le_bytes().to_vec();
        r.extend_from_slice(data);
        assert!(parse_region_reference(&r, 0, Sizes::DEFAULT).is_ok());
        for n in 0..r.len() {
            assert!(parse_region_reference(&r[..n], 0, Sizes::DEFAULT).is_err());
        }
        r.push(0);
        let e = parse_region_reference(&r, 0, Sizes::DEFAULT).unwrap_err();
        assert!(e.to_string().contains("1 bytes after the selection"), "{e}");
        assert_eq!(e.offset, r.len() as u64 - 1);
    }

    #[test]
    fn none_and_all() {
        for (t, want) in [(0u32, Selection::None), (3, Selection::All)] {
            let b = u32s(&[t, 1, 0, 0]);
            let s = ok(&b);
            assert_eq!((s.selection_type, s.version, s.selection), (t, 1, want));
            prefixes_fail(&b);
            let e = parse(&u32s(&[t, 2, 0, 0]), 100).unwrap_err();
            assert_eq!(e.kind, ErrorKind::UnsupportedVersion(2));
            assert_eq!(e.offset, 104);
        }
    }

    #[test]
    fn points_version_1() {
        // rich_earliest.h5-style: 3 points of rank 2.
        let b = u32s(&[1, 1, 0, 32, 2, 3, 1, 2, 39, 29, 5, 0]);
        let s = ok(&b);
        assert_eq!(
            s.selection,
            Selection::Points {
                rank: 2,
                coords: vec![1, 2, 39, 29, 5, 0]
            }
        );
        assert_eq!((s.encode_size, s.selection.len()), (4, 3));
        prefixes_fail(&b);
        // A length that disagrees with the points.
        let bad = u32s(&[1, 1, 0, 36, 2, 3, 1, 2, 39, 29, 5, 0]);
        let e = parse(&bad, 100).unwrap_err();
        assert_eq!(e.offset, 112);
        assert!(e.to_string().contains("length field"), "{e}");
    }

    #[test]
    fn points_version_2_every_encode_size() {
        for w in [2u8, 4, 8] {
            let mut b = u32s(&[1, 2]);
            b.push(w);
            b.extend(fields(&[(4, 1), (w, 2), (w, 7), (w, 3)]));
            let s = ok(&b);
            assert_eq!(
                s.selection,
                Selection::Points {
                    rank: 1,
                    coords: vec![7, 3]
                }
            );
            assert_eq!(s.encode_size, w);
            prefixes_fail(&b);
        }
        // h5py/HDF5 2.0 bytes (rich_latest-style point selection).
        let b = hex("010000000200000002020000000300010002002700\
                     1d0005000000");
        assert_eq!(
            ok(&b).selection,
            Selection::Points {
                rank: 2,
                coords: vec![1, 2, 39, 29, 5, 0]
            }
        );
    }

    #[test]
    fn hyperslab_version_1() {
        // From rich_earliest.h5: [0:5, 2:4] as one block (0,2)-(4,3).
        let b = hex(
            "020000000100000000000000180000000200000001000000000000000200000004000000\
                     03000000",
        );
        let s = ok(&b);
        assert_eq!(
            s.selection,
            Selection::Blocks {
                rank: 2,
                corners: vec![0, 2, 4, 3]
            }
        );
        assert_eq!(s.selection.check_within(&[40, 30]), Ok(()));
        prefixes_fail(&b);
    }

    #[test]
    fn hyperslab_version_2_with_unlimited() {
        // From an h5py file: start 1, stride 3, count H5S_UNLIMITED, block 1.
        let mut b = u32s(&[2, 2]);
        b.push(1);
        b.extend(u32s(&[36, 1]));
        b.extend(fields(&[(8, 1), (8, 3), (8, u64::MAX), (8, 1)]));
        let s = ok(&b);
        assert_eq!(
            s.selection,
            Selection::Regular(vec![RegularDim {
                start: 1,
                stride: 3,
                count: UNLIMITED,
                block: 1
            }])
        );
        assert!(s
            .selection
            .check_within(&[10])
            .unwrap_err()
            .contains("unlimited"));
        prefixes_fail(&b);
        // Flag 0 (irregular) is not defined for version 2.
        let mut irr = b.clone();
        irr[8] = 0;
        assert!(parse(&irr, 0).is_err());
    }

    #[test]
    fn hyperslab_version_3_regular_and_irregular() {
        // From rich_latest.h5: [0:5, 2:4], encode size 2.
        let b = hex("020000000300000001020200000000000100010005000200010001000200");
        let s = ok(&b);
        assert_eq!(
            s.selection,
            Selection::Regular(vec![
                RegularDim {
                    start: 0,
                    stride: 1,
                    count: 1,
                    block: 5
                },
                RegularDim {
                    start: 2,
                    stride: 1,
                    count: 1,
                    block: 2
                },
            ])
        );
        prefixes_fail(&b);
        // 0xffff count at encode size 2 is H5S_UNLIMITED.
        let mut u = u32s(&[2, 3]);
        u.extend([1, 2]);
        u.extend(u32s(&[1]));
        u.extend(fields(&[(2, 1), (2, 3), (2, 0xffff), (2, 1)]));
        let Selection::Regular(d) = ok(&u).selection else {
            panic!()
        };
        assert_eq!(d[0].count, UNLIMITED);
        for w in [2u8, 4, 8] {
            // Irregular: two blocks (0,0)-(1,1) and (10,10)-(12,10).
            let mut b = u32s(&[2, 3]);
            b.extend([0, w]);
            b.extend(u32s(&[2]));
            b.extend(fields(&[(w, 2)]));
            for v in [0u64, 0, 1, 1, 10, 10, 12, 10] {
                b.extend(fields(&[(w, v)]));
            }
            let s = ok(&b);
            assert_eq!(
                s.selection,
                Selection::Blocks {
                    rank: 2,
                    corners: vec![0, 0, 1, 1, 10, 10, 12, 10]
                }
            );
            assert_eq!(s.selection.len(), 2);
            prefixes_fail(&b);
        }
    }

    #[test]
    fn region_reference_from_h5py() {
        let b = hex("0020000000000000020000000300000001020200000000000100010005000200010001000200");
        let r = parse_region_reference(&b, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(r.object, 0x2000);
        assert_eq!(r.selection.version, 3);
        let s4 = Sizes::new(4, 8).unwrap();
        let r = parse_region_reference(&b[4..], 0, s4).unwrap();
        assert_eq!(r.object, 0);
    }

    #[test]
    fn hostile_values() {
        // Unknown selection type, versions, ranks and encode sizes.
        assert!(parse(&u32s(&[4, 1, 0, 0]), 0).is_err());
        assert!(parse(&u32s(&[1, 3, 0, 0, 0]), 0).is_err());
        assert!(parse(&u32s(&[2, 4, 0, 0, 0]), 0).is_err());
        assert!(parse(&u32s(&[1, 1, 0, 8, 0, 0]), 0).is_err()); // rank 0
        assert!(parse(&u32s(&[1, 1, 0, 8, 33, 0]), 0).is_err()); // rank 33
        let mut b = u32s(&[1, 2]);
        b.push(3); // encode size 3
        b.extend(u32s(&[1, 0]));
        assert!(parse(&b, 0).is_err());
        // Huge counts with few bytes: a truncation error, no allocation.
        let e = parse(&u32s(&[1, 1, 0, 8, 32, u32::MAX]), 0).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Truncated { .. }), "{e}");
        let mut b = u32s(&[1, 2]);
        b.push(8);
        b.extend(u32s(&[32]));
        b.extend(fields(&[(8, u64::MAX)]));
        let e = parse(&b, 0).unwrap_err();
        assert!(e.to_string().contains("overflow"), "{e}");
        let mut b = u32s(&[2, 3]);
        b.extend([0, 8]);
        b.extend(u32s(&[32]));
        b.extend(fields(&[(8, u64::MAX / 3)]));
        assert!(parse(&b, 0).is_err());
        // Undefined object address in a region reference parses (callers
        // decide); an empty object does not.
        assert!(parse_region_reference(&[], 0, Sizes::DEFAULT).is_err());
    }

    #[test]
    fn check_within_dims() {
        let pts = Selection::Points {
            rank: 2,
            coords: vec![1, 2, 39, 29],
        };
        assert_eq!(pts.check_within(&[40, 30]), Ok(()));
        assert!(pts.check_within(&[40, 29]).is_err());
        assert!(pts.check_within(&[40]).is_err());
        assert!(pts.check_within(&[]).is_err());
        let blk = Selection::Blocks {
            rank: 1,
            corners: vec![5, 3],
        };
        assert!(blk
            .check_within(&[10])
            .unwrap_err()
            .contains("after its end"));
        let reg = |start, stride, count, block| {
            Selection::Regular(vec![RegularDim {
                start,
                stride,
                count,
                block,
            }])
        };
        assert_eq!(reg(0, 2, 20, 1).check_within(&[40]), Ok(()));
        assert_eq!(reg(0, 2, 20, 2).check_within(&[40]), Ok(())); // ends at 39
        assert!(reg(1, 2, 20, 2).check_within(&[40]).is_err()); // ends at 40
        assert!(reg(0, 1, 2, 2).check_within(&[40]).is_err()); // overlap
        assert!(reg(0, 1, 0, 1).check_within(&[40]).is_err());
        assert!(reg(u64::MAX, u64::MAX, 3, 2).check_within(&[40]).is_err());
        assert_eq!(Selection::All.check_within(&[]), Ok(()));
        assert_eq!(Selection::None.check_within(&[3]), Ok(()));
    }
}

//! Virtual dataset mappings (spec III.F, "Disk Format: Level 1F - Global
//! Heap Block for Virtual Dataset"): the global heap object a virtual
//! layout (data layout message class 3) names. Version 0: a version byte,
//! the number of mappings (L bytes), then per mapping the source file name
//! and source dataset name (NUL-terminated) and two serialized selections
//! (source, then virtual: spec VIII.A), and a lookup3 checksum over
//! everything before it. Version 1 (HDF5 2.0) puts a flags byte before
//! each mapping: bit 0, the source file name is an earlier mapping's
//! (named by its index, L bytes, instead of the string); bit 1, the same
//! for the dataset name; bit 2, the source is the virtual dataset's own
//! file (no file name stored; "." to libhdf5).

use super::selection::{self, DataspaceSelection};
use super::{uint, verify_checksum, Error, ErrorKind, Result, Sizes};

const STRUCTURE: &str = "virtual dataset mapping";

/// Smallest encoded mapping: two one-byte names and two 16-byte "all"
/// selections; bounds the mapping count by the block's size.
const MIN_MAPPING: u64 = 2 + 16 + 16;

/// One source -> virtual mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualMapping {
    /// Source file name as stored ("." for the virtual dataset's own file).
    pub source_file: String,
    /// Path of the source dataset in that file.
    pub source_dataset: String,
    /// Selection in the source dataset's dataspace.
    pub source_selection: DataspaceSelection,
    /// Selection in the virtual dataset's dataspace.
    pub virtual_selection: DataspaceSelection,
}

/// Parses the mapping block `data` (the global heap object, at absolute
/// file offset `at`), checksum verified.
pub fn parse(data: &[u8], at: u64, sizes: Sizes) -> Result<Vec<VirtualMapping>> {
    let version = *data.first().ok_or_else(|| truncated(at, 1, 0))?;
    if version > 1 {
        return Err(Error::new(
            STRUCTURE,
            at,
            ErrorKind::UnsupportedVersion(version),
        ));
    }
    let l = usize::from(sizes.length());
    let count_bytes = data
        .get(1..1 + l)
        .ok_or_else(|| truncated(at, 1 + l, data.len()))?;
    let (_, count) = uint(sizes.length())(count_bytes)
        .map_err(|_| Error::invalid(STRUCTURE, at + 1, "mapping count unreadable"))?;
    if count.saturating_mul(MIN_MAPPING) > data.len() as u64 {
        return Err(Error::bad_value(STRUCTURE, at + 1, "mapping count", count));
    }
    let mut pos = 1 + l;
    let mut out: Vec<VirtualMapping> = Vec::new();
    for _ in 0..count {
        let flags = if version == 1 {
            let f = *data
                .get(pos)
                .ok_or_else(|| truncated(at, pos + 1, data.len()))?;
            if f & !(FILE_SHARED | DATASET_SHARED | SAME_FILE) != 0 {
                return Err(Error::bad_value(
                    STRUCTURE,
                    at + pos as u64,
                    "mapping flags",
                    f.into(),
                ));
            }
            pos += 1;
            f
        } else {
            0
        };
        let source_file = if flags & SAME_FILE != 0 {
            ".".to_string()
        } else if flags & FILE_SHARED != 0 {
            earlier(&out, data, &mut pos, at, sizes)?
                .source_file
                .clone()
        } else {
            name(data, &mut pos, at)?
        };
        let source_dataset = if flags & DATASET_SHARED != 0 {
            earlier(&out, data, &mut pos, at, sizes)?
                .source_dataset
                .clone()
        } else {
            name(data, &mut pos, at)?
        };
        let source_selection = select(data, &mut pos, at)?;
        let virtual_selection = select(data, &mut pos, at)?;
        out.push(VirtualMapping {
            source_file,
            source_dataset,
            source_selection,
            virtual_selection,
        });
    }
    verify_checksum(STRUCTURE, at + pos as u64, data, pos)?;
    Ok(out)
}

/// Version 1 flags (see the module comment).
const FILE_SHARED: u8 = 0x1;
const DATASET_SHARED: u8 = 0x2;
const SAME_FILE: u8 = 0x4;

/// The earlier mapping whose name a version-1 mapping shares: its index
/// (L bytes) at `*pos`, which moves past it.
fn earlier<'m>(
    out: &'m [VirtualMapping],
    data: &[u8],
    pos: &mut usize,
    at: u64,
    sizes: Sizes,
) -> Result<&'m VirtualMapping> {
    let l = usize::from(sizes.length());
    let here = at + *pos as u64;
    let bytes = data
        .get(*pos..*pos + l)
        .ok_or_else(|| truncated(at, *pos + l, data.len()))?;
    let (_, index) = uint(sizes.length())(bytes)
        .map_err(|_| Error::invalid(STRUCTURE, here, "shared name index unreadable"))?;
    *pos += l;
    usize::try_from(index)
        .ok()
        .and_then(|i| out.get(i))
        .ok_or_else(|| Error::bad_value(STRUCTURE, here, "shared name index", index))
}

fn truncated(at: u64, needed: usize, available: usize) -> Error {
    Error::new(
        STRUCTURE,
        at,
        ErrorKind::Truncated {
            needed: needed as u64,
            available: available as u64,
        },
    )
}

/// A NUL-terminated name at `*pos`, which moves past it.
fn name(data: &[u8], pos: &mut usize, at: u64) -> Result<String> {
    let rest = data.get(*pos..).unwrap_or_default();
    let here = at + *pos as u64;
    let len = rest
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| Error::invalid(STRUCTURE, here, "name without a terminating NUL"))?;
    let text = std::str::from_utf8(&rest[..len])
        .map_err(|_| Error::invalid(STRUCTURE, here, "name is not UTF-8"))?;
    *pos += len + 1;
    Ok(text.to_string())
}

/// A serialized selection at `*pos`, which moves past it.
fn select(data: &[u8], pos: &mut usize, at: u64) -> Result<DataspaceSelection> {
    let rest = data.get(*pos..).unwrap_or_default();
    let (s, used) = selection::parse(rest, at + *pos as u64)?;
    *pos += used;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::lookup3;
    use crate::format::selection::Selection;

    /// h5py 3.16: `VirtualLayout((3, 10), 'i4')`, row 0 <- all of
    /// src.h5:/a (shape 10), row 1 columns 0..5 <- src.h5:/b[5:].
    fn block() -> Vec<u8> {
        let mut v = vec![0u8];
        v.extend(2u64.to_le_bytes());
        v.extend(b"src.h5\0a\0");
        // Source: all.
        v.extend([3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        // Virtual: hyperslab v1, rank 2, one block (0,0)-(0,9).
        for w in [2u32, 1, 0, 24, 2, 1, 0, 0, 0, 9] {
            v.extend(w.to_le_bytes());
        }
        v.extend(b"src.h5\0b\0");
        for w in [2u32, 1, 0, 16, 1, 1, 5, 9] {
            v.extend(w.to_le_bytes());
        }
        for w in [2u32, 1, 0, 24, 2, 1, 1, 0, 1, 4] {
            v.extend(w.to_le_bytes());
        }
        let sum = lookup3::hashlittle(&v, 0);
        v.extend(sum.to_le_bytes());
        v
    }

    #[test]
    fn mappings_of_h5py() {
        let m = parse(&block(), 0x100, Sizes::DEFAULT).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].source_file.as_str(), m[0].source_dataset.as_str()),
            ("src.h5", "a")
        );
        assert_eq!(m[0].source_selection.selection, Selection::All);
        assert_eq!(
            m[1].source_selection.selection,
            Selection::Blocks {
                rank: 1,
                corners: vec![5, 9]
            }
        );
        assert_eq!(
            m[1].virtual_selection.selection,
            Selection::Blocks {
                rank: 2,
                corners: vec![1, 0, 1, 4]
            }
        );
    }

    /// HDF5 2.0 (h5py 3.16): version 1, the second mapping sharing the
    /// first one's file name, the third in the same file.
    #[test]
    fn version_1_shares_names() {
        let mut v = vec![1u8];
        v.extend(3u64.to_le_bytes());
        let all = [3u8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        v.push(0);
        v.extend(b"source.h5\0a\0");
        v.extend(all);
        v.extend(all);
        v.push(1);
        v.extend(0u64.to_le_bytes());
        v.extend(b"b\0");
        v.extend(all);
        v.extend(all);
        v.push(4 | 2);
        v.extend(1u64.to_le_bytes());
        v.extend(all);
        v.extend(all);
        let sum = lookup3::hashlittle(&v, 0);
        v.extend(sum.to_le_bytes());
        let m = parse(&v, 0, Sizes::DEFAULT).unwrap();
        let names: Vec<(&str, &str)> = m
            .iter()
            .map(|m| (m.source_file.as_str(), m.source_dataset.as_str()))
            .collect();
        assert_eq!(names, [("source.h5", "a"), ("source.h5", "b"), (".", "b")]);
        // An index naming no earlier mapping, unknown flags.
        let mut bad = v.clone();
        bad[10 + 12 + 32 + 1] = 1;
        assert!(parse(&bad, 0, Sizes::DEFAULT).is_err());
        let mut bad = v.clone();
        bad[9] = 0x80;
        assert!(parse(&bad, 0, Sizes::DEFAULT).is_err());
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let good = block();
        for n in 0..good.len() {
            assert!(parse(&good[..n], 0, Sizes::DEFAULT).is_err(), "{n}");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            // The checksum covers every byte.
            assert!(parse(&bad, 0, Sizes::DEFAULT).is_err(), "{i}");
        }
        let mut huge = good.clone();
        huge[1..9].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse(&huge, 0, Sizes::DEFAULT).is_err());
    }
}

//! Old-style dataset region references: finding them in raw element bytes
//! and resolving each in the global heap.
//!
//! A region reference (`H5T_STD_REF_DSETREG`, datatype class 7 type 1,
//! spec IV.A.2.d) is stored in the raw data as a global heap ID (collection
//! address of "size of offsets" bytes + 4-byte object index, spec III.E).
//! The heap object holds the target dataset's object header address and a
//! serialized selection (spec VIII.C), parsed by
//! [`crate::format::selection::parse_region_reference`].
//!
//! Resolution never fails as a whole: each reference gets its own
//! [`RegionValue`], so one unreadable reference does not cost the others.
//! Whether a resolved selection fits its target is checked by the writer,
//! against the target as it exists in the output.

use std::collections::HashMap;

use super::vlen::{collection, Objects, MAX_RESOLVED_BYTES};
use crate::follow::Image;
use crate::format::global_heap::{heap_id_size, parse_heap_id};
use crate::format::is_undefined;
use crate::format::message::datatype::{Datatype, DatatypeClass, ReferenceKind, MAX_DEPTH};
use crate::format::selection::{parse_region_reference, RegionReference};

/// What one region reference in the raw data amounts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegionValue {
    /// A null reference (collection address 0 or undefined): written null.
    Null,
    /// The heap object parsed exactly: target address and selection.
    Resolved(RegionReference),
    /// Why the reference cannot be recreated (missing collection or object,
    /// a selection that does not parse exactly, ...).
    Unresolved(String),
}

/// One region reference inside a buffer of elements in file layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionSlot {
    /// Byte offset of the reference in the buffer.
    pub offset: usize,
    pub value: RegionValue,
}

/// Offsets (inside one element of `dt`, from `at`) of its region
/// references, with the stored size of each. At most `max` of them: they
/// cannot overlap inside the element.
fn region_offsets(
    dt: &Datatype,
    at: u64,
    max: usize,
    depth: u32,
    out: &mut Vec<(u64, u64)>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("datatype nested too deeply".into());
    }
    match &dt.class {
        DatatypeClass::Reference {
            kind: ReferenceKind::DatasetRegion,
            ..
        } => {
            if out.len() >= max {
                return Err("more region references than fit in the element".into());
            }
            out.push((at, u64::from(dt.size)));
        }
        DatatypeClass::Compound { members } => {
            for m in members {
                let end = m.offset.checked_add(u64::from(m.datatype.size));
                if end.is_none_or(|e| e > u64::from(dt.size)) {
                    return Err(format!("compound member {:?} outside its element", m.name));
                }
                let pos = at.checked_add(m.offset).ok_or("offset overflow")?;
                region_offsets(&m.datatype, pos, max, depth + 1, out)?;
            }
        }
        DatatypeClass::Array { dims, base } => {
            if !has_region(base, depth + 1) {
                return Ok(());
            }
            let n = dims
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(u64::from(d)))
                .ok_or("array size overflow")?;
            let bsize = u64::from(base.size);
            if bsize == 0 || n.checked_mul(bsize).is_none_or(|b| b > u64::from(dt.size)) {
                return Err("array of region references larger than its element".into());
            }
            for k in 0..n {
                let pos = at.checked_add(k * bsize).ok_or("offset overflow")?;
                region_offsets(base, pos, max, depth + 1, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn has_region(dt: &Datatype, depth: u32) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match &dt.class {
        DatatypeClass::Reference { kind, .. } => *kind == ReferenceKind::DatasetRegion,
        DatatypeClass::Compound { members } => {
            members.iter().any(|m| has_region(&m.datatype, depth + 1))
        }
        DatatypeClass::Array { base, .. } => has_region(base, depth + 1),
        _ => false,
    }
}

/// True if `dt` holds old-style region references (at the top level, in
/// compound members or in arrays).
pub fn contains_region_reference(dt: &Datatype) -> bool {
    has_region(dt, 0)
}

/// Finds every region reference in `raw` (a whole number of elements of
/// `datatype`) and resolves each in the global heap. A datatype whose
/// references cannot be located yields one unresolved slot at offset 0.
pub fn resolve_regions(image: &Image, datatype: &Datatype, raw: &[u8]) -> Vec<RegionSlot> {
    if !contains_region_reference(datatype) {
        return Vec::new();
    }
    let unresolved = |offset: usize, why: String| RegionSlot {
        offset,
        value: RegionValue::Unresolved(why),
    };
    let size = usize::try_from(datatype.size).unwrap_or(0);
    if size == 0 || raw.len() % size != 0 {
        return vec![unresolved(
            0,
            format!(
                "{} bytes are not a whole number of {size}-byte elements",
                raw.len()
            ),
        )];
    }
    let id_size = heap_id_size(image.sizes);
    let max = size / usize::try_from(id_size).unwrap_or(usize::MAX).max(1);
    let mut shapes = Vec::new();
    if let Err(why) = region_offsets(datatype, 0, max, 0, &mut shapes) {
        return vec![unresolved(0, why)];
    }
    let mut heaps: HashMap<u64, Objects> = HashMap::new();
    let mut total: u64 = 0;
    let mut out = Vec::new();
    for (e, element) in raw.chunks_exact(size).enumerate() {
        for &(local, stored) in &shapes {
            // local + stored <= size (checked when the offsets were found).
            let local = usize::try_from(local).unwrap_or(usize::MAX);
            let offset = e.saturating_mul(size).saturating_add(local);
            let value = if stored != id_size {
                RegionValue::Unresolved(format!(
                    "region reference of {stored} bytes, a heap ID has {id_size}"
                ))
            } else {
                let bytes = element.get(local..).unwrap_or_default();
                resolve_one(image, &mut heaps, &mut total, bytes, offset)
            };
            out.push(RegionSlot { offset, value });
        }
    }
    out
}

/// Resolves the region reference whose heap ID starts `bytes`.
fn resolve_one(
    image: &Image,
    heaps: &mut HashMap<u64, Objects>,
    total: &mut u64,
    bytes: &[u8],
    offset: usize,
) -> RegionValue {
    let (coll, index) = match parse_heap_id(bytes, offset as u64, image.sizes) {
        Ok(v) => v,
        Err(e) => return RegionValue::Unresolved(e.kind.to_string()),
    };
    if coll == 0 || is_undefined(coll) {
        return RegionValue::Null;
    }
    let objects = match collection(image, heaps, coll) {
        Ok(o) => o,
        Err(p) => return RegionValue::Unresolved(p.to_string()),
    };
    let Some(&(data_at, size)) = u16::try_from(index)
        .ok()
        .filter(|&i| i != 0)
        .and_then(|i| objects.get(&i))
    else {
        return RegionValue::Unresolved(format!(
            "heap object {index} not in the collection at {coll:#x}"
        ));
    };
    *total = total.saturating_add(size);
    if *total > MAX_RESOLVED_BYTES {
        return RegionValue::Unresolved(format!(
            "more than {MAX_RESOLVED_BYTES} bytes of region references"
        ));
    }
    let data = usize::try_from(data_at)
        .ok()
        .zip(usize::try_from(size).ok())
        .and_then(|(a, n)| image.bytes.get(a..a.checked_add(n)?));
    let Some(data) = data else {
        return RegionValue::Unresolved(format!("heap object {index} lies outside the file"));
    };
    match parse_region_reference(data, data_at, image.sizes) {
        Ok(r) => RegionValue::Resolved(r),
        Err(e) => RegionValue::Unresolved(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::message::datatype::CompoundMember;
    use crate::format::selection::Selection;
    use crate::format::Sizes;
    use crate::read::vlen::tests::file_with_heap;

    fn region_type() -> Datatype {
        Datatype {
            version: 1,
            size: 12,
            class: DatatypeClass::Reference {
                kind: ReferenceKind::DatasetRegion,
                revision: None,
            },
        }
    }

    fn heap_id(coll: u64, index: u32) -> Vec<u8> {
        let mut v = coll.to_le_bytes().to_vec();
        v.extend_from_slice(&index.to_le_bytes());
        v
    }

    /// Target address 0x2000 + an "all" selection, then trailing garbage
    /// variants.
    fn region_object(extra: &[u8]) -> Vec<u8> {
        let mut v = 0x2000u64.to_le_bytes().to_vec();
        for x in [3u32, 1, 0, 0] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn resolves_null_good_and_bad_references() {
        let good = region_object(&[]);
        let trailing = region_object(&[0]);
        let f = file_with_heap(&[(1, &good), (2, &trailing), (3, b"short")]);
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        let mut raw = Vec::new();
        for (c, i) in [
            (16, 1),
            (0, 0),
            (u64::MAX, 7),
            (16, 2),
            (16, 3),
            (16, 9),
            (9000, 1),
        ] {
            raw.extend(heap_id(c, i));
        }
        let s = resolve_regions(&img, &region_type(), &raw);
        assert_eq!(s.len(), 7);
        assert_eq!(s[1].offset, 12);
        match &s[0].value {
            RegionValue::Resolved(r) => {
                assert_eq!(r.object, 0x2000);
                assert_eq!(r.selection.selection, Selection::All);
            }
            v => panic!("{v:?}"),
        }
        assert_eq!(s[1].value, RegionValue::Null);
        assert_eq!(s[2].value, RegionValue::Null);
        for (i, want) in [
            (3, "after the selection"),
            (4, "truncated"),
            (5, "not in the"),
        ] {
            match &s[i].value {
                RegionValue::Unresolved(why) => assert!(why.contains(want), "{i}: {why}"),
                v => panic!("{i}: {v:?}"),
            }
        }
        assert!(matches!(s[6].value, RegionValue::Unresolved(_)));
    }

    #[test]
    fn finds_references_inside_compounds_and_arrays() {
        let comp = Datatype {
            version: 1,
            size: 40,
            class: DatatypeClass::Compound {
                members: vec![
                    CompoundMember {
                        name: "r".into(),
                        offset: 4,
                        datatype: region_type(),
                    },
                    CompoundMember {
                        name: "a".into(),
                        offset: 16,
                        datatype: Datatype {
                            version: 2,
                            size: 24,
                            class: DatatypeClass::Array {
                                dims: vec![2],
                                base: Box::new(region_type()),
                            },
                        },
                    },
                ],
            },
        };
        let f = file_with_heap(&[]);
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        let s = resolve_regions(&img, &comp, &[0u8; 80]);
        let offsets: Vec<usize> = s.iter().map(|x| x.offset).collect();
        assert_eq!(offsets, vec![4, 16, 28, 44, 56, 68]);
        assert!(s.iter().all(|x| x.value == RegionValue::Null));
        // Not a whole number of elements; a member outside its element.
        assert!(matches!(
            resolve_regions(&img, &comp, &[0u8; 41])[0].value,
            RegionValue::Unresolved(_)
        ));
        let mut bad = comp.clone();
        bad.size = 20;
        assert!(matches!(
            resolve_regions(&img, &bad, &[0u8; 20])[0].value,
            RegionValue::Unresolved(_)
        ));
    }

    #[test]
    fn fixtures_region_references_resolve() {
        for (name, bytes, base) in crate::format::test_support::fixtures() {
            if !name.contains("rich_") {
                continue;
            }
            let inv = crate::walk::walk(&name, &bytes);
            let Some(o) = inv.object("/types/region_refs") else {
                continue;
            };
            let ds = o.dataset.as_ref().unwrap();
            let img = inv.image(&bytes);
            assert_eq!(img.base, base);
            let crate::read::DatasetData::Contiguous { bytes: raw, .. } =
                crate::read::dataset_data(&img, ds)
            else {
                panic!("{name}: region_refs is not contiguous");
            };
            let s = resolve_regions(&img, &ds.datatype, raw);
            assert_eq!(s.len(), 3, "{name}");
            let target = inv.object("/datasets/chunked").unwrap().address;
            for slot in &s[..2] {
                let RegionValue::Resolved(r) = &slot.value else {
                    panic!("{name}: {slot:?}");
                };
                assert_eq!(r.object, target, "{name}");
                assert_eq!(r.selection.selection.check_within(&[40, 30]), Ok(()));
            }
            assert_eq!(s[2].value, RegionValue::Null, "{name}");
        }
    }
}

//! Variable-length data: finding the variable-length slots in raw element
//! bytes and resolving them in the global heap.
//!
//! A variable-length value (datatype class 9, spec IV.A.2.d; at the top
//! level, inside compound members or inside arrays) is stored in the raw
//! data as a 4-byte sequence length followed by a global heap ID
//! (collection address of "size of offsets" bytes + 4-byte object index,
//! spec III.E "Global Heap ID"). The sequence itself is the heap object's
//! data: `length` base elements (bytes, for a string). Each collection is
//! parsed once per [`resolve_vlen`] call.

use std::collections::HashMap;

use crate::follow::Image;
use crate::format::global_heap::{self, vlen_element_size};
use crate::format::is_undefined;
use crate::format::message::datatype::{Datatype, DatatypeClass, MAX_DEPTH};
use crate::inventory::{Problem, ProblemKind};
use crate::read::region::RegionSlot;

const STRUCTURE: &str = "variable-length data";

/// Most bytes of sequence data one [`resolve_vlen`] call returns (1 GiB):
/// many slots may point at one large heap object.
pub const MAX_RESOLVED_BYTES: u64 = 1 << 30;

/// One variable-length slot inside a buffer of elements in file layout (each slot is
/// 4-byte length + global heap ID (collection address O + object index u32), spec III.E / IV.A.2.d).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlenSlot {
    /// Byte offset of the slot in `raw`.
    pub offset: usize,
    /// Sequence length in base elements (string: bytes).
    pub count: u64,
    /// The heap object's bytes, exactly `count * base_size`.
    pub data: Vec<u8>,
    /// When the base type itself holds variable-length parts (a sequence
    /// of sequences, of compounds with string members, ...): the slots
    /// inside `data`, resolved the same way (offsets relative to `data`).
    pub nested: Vec<VlenSlot>,
    /// When the base type holds old-style region references: those inside
    /// `data` (offsets relative to `data`).
    pub regions: Vec<RegionSlot>,
}

impl VlenSlot {
    /// A slot whose base holds no variable-length parts.
    pub fn new(offset: usize, count: u64, data: Vec<u8>) -> VlenSlot {
        VlenSlot {
            offset,
            count,
            data,
            nested: Vec::new(),
            regions: Vec::new(),
        }
    }
}

/// True when the slots `a` (of one buffer) and `b` (of another buffer of
/// the same datatype) hold the same values: same offsets, lengths and
/// bytes, except the `slot_len`-byte heap IDs of nested slots (addresses
/// that differ from file to file), compared as values instead.
pub fn same_slots(a: &[VlenSlot], b: &[VlenSlot], slot_len: usize) -> bool {
    let masked = |s: &VlenSlot| {
        let mut m = s.data.clone();
        for n in &s.nested {
            let end = n.offset.saturating_add(slot_len).min(m.len());
            if let Some(id) = m.get_mut(n.offset..end) {
                id.fill(0);
            }
        }
        m
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(p, q)| {
            p.offset == q.offset
                && p.count == q.count
                && p.data.len() == q.data.len()
                && same_slots(&p.nested, &q.nested, slot_len)
                && (p.nested.is_empty() && p.data == q.data || masked(p) == masked(q))
        })
}

/// Where one vlen slot sits inside an element, and its base type.
#[derive(Clone, Copy, Debug)]
struct SlotShape<'t> {
    offset: u64,
    base: &'t Datatype,
}

/// Lists the vlen slots inside one element of `dt`, at `at` bytes from the
/// element start. Slots must lie inside the element and cannot overlap, so
/// more than `max` of them means a malformed type. A slot whose base holds
/// variable-length parts itself is one slot here: its sequence is resolved
/// in turn ([`Resolver::resolve`]).
fn slot_shapes<'t>(
    dt: &'t Datatype,
    at: u64,
    slot: u64,
    max: usize,
    depth: u32,
    out: &mut Vec<SlotShape<'t>>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("datatype nested too deeply".into());
    }
    match &dt.class {
        DatatypeClass::VariableLength { base, .. } => {
            if u64::from(dt.size) < slot {
                return Err(format!(
                    "variable-length type of {} bytes, smaller than a {slot}-byte slot",
                    dt.size
                ));
            }
            if out.len() >= max {
                return Err("more variable-length slots than fit in the element".into());
            }
            out.push(SlotShape { offset: at, base });
        }
        DatatypeClass::Compound { members } => {
            for m in members.iter().filter(|m| m.datatype.is_variable_length()) {
                let end = m.offset.checked_add(u64::from(m.datatype.size));
                if end.is_none_or(|e| e > u64::from(dt.size)) {
                    return Err(format!("compound member {:?} outside its element", m.name));
                }
                let pos = at.checked_add(m.offset).ok_or("offset overflow")?;
                slot_shapes(&m.datatype, pos, slot, max, depth + 1, out)?;
            }
        }
        DatatypeClass::Array { dims, base } if base.is_variable_length() => {
            let n = dims
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(u64::from(d)))
                .ok_or("array size overflow")?;
            let bsize = u64::from(base.size);
            if n.checked_mul(bsize).is_none_or(|b| b > u64::from(dt.size)) || bsize == 0 {
                return Err("array of variable-length values larger than its element".into());
            }
            for k in 0..n {
                let pos = at.checked_add(k * bsize).ok_or("offset overflow")?;
                slot_shapes(base, pos, slot, max, depth + 1, out)?;
            }
        }
        DatatypeClass::Enumeration { base, .. } | DatatypeClass::Complex { base, .. }
            if base.is_variable_length() =>
        {
            return Err("variable-length base of an enumeration or complex type".into());
        }
        _ => {}
    }
    Ok(())
}

/// One parsed collection: object index -> (absolute data offset, size).
pub(super) type Objects = HashMap<u16, (u64, u64)>;

/// Finds every vlen slot in `raw` (a whole number of elements of `datatype`) and resolves
/// each in the global heap; sequences whose elements hold variable-length parts
/// themselves are resolved in turn ([`VlenSlot::nested`]). A length of 0 is an empty
/// value (whatever the heap ID says).
/// Errors (missing collection, bad object index, object shorter than declared) name the
/// slot's byte offset in `raw` (and in each enclosing sequence) and, where known, the
/// collection's file offset.
pub fn resolve_vlen(
    image: &Image,
    datatype: &Datatype,
    raw: &[u8],
) -> Result<Vec<VlenSlot>, Problem> {
    let mut r = Resolver {
        image,
        heaps: HashMap::new(),
        total: 0,
    };
    r.resolve(datatype, raw, 0)
}

/// Resolution state shared by one buffer and the sequences nested in it:
/// the collections parsed so far and the bytes returned so far.
struct Resolver<'i, 'a> {
    image: &'i Image<'a>,
    heaps: HashMap<u64, Objects>,
    total: u64,
}

impl Resolver<'_, '_> {
    fn resolve(
        &mut self,
        datatype: &Datatype,
        raw: &[u8],
        depth: u32,
    ) -> Result<Vec<VlenSlot>, Problem> {
        let fail = |kind: ProblemKind, offset: Option<u64>, msg: String| {
            Problem::new(kind, offset, STRUCTURE, msg)
        };
        if depth > MAX_DEPTH {
            return Err(fail(
                ProblemKind::LimitExceeded,
                None,
                "sequences nested too deeply".into(),
            ));
        }
        let size = usize::try_from(datatype.size).unwrap_or(0);
        if size == 0 {
            return Err(fail(ProblemKind::BadValue, None, "element size 0".into()));
        }
        if raw.len() % size != 0 {
            return Err(fail(
                ProblemKind::Malformed,
                None,
                format!(
                    "{} bytes are not a whole number of {size}-byte elements",
                    raw.len()
                ),
            ));
        }
        let image = self.image;
        let slot = vlen_element_size(image.sizes);
        let max = size / usize::try_from(slot).unwrap_or(usize::MAX).max(1);
        let mut shapes = Vec::new();
        slot_shapes(datatype, 0, slot, max, 0, &mut shapes)
            .map_err(|m| fail(ProblemKind::Malformed, None, m))?;
        if shapes.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (e, element) in raw.chunks_exact(size).enumerate() {
            for s in &shapes {
                // s.offset + slot <= size (checked when the shapes were built).
                let local = usize::try_from(s.offset).unwrap_or(usize::MAX);
                let offset = e.saturating_mul(size).saturating_add(local);
                let bytes = element.get(local..).unwrap_or_default();
                let r = global_heap::parse_vlen_element(bytes, offset as u64, image.sizes)
                    .map_err(|err| {
                        let kind = ProblemKind::from(&err.kind);
                        fail(kind, None, format!("slot at byte {offset}: {}", err.kind))
                    })?;
                let count = u64::from(r.length);
                if count == 0 {
                    out.push(VlenSlot::new(offset, count, Vec::new()));
                    continue;
                }
                let need = count.checked_mul(u64::from(s.base.size)).ok_or_else(|| {
                    fail(
                        ProblemKind::BadValue,
                        None,
                        format!("slot at byte {offset}: length {count} overflows"),
                    )
                })?;
                self.total = self.total.saturating_add(need);
                if self.total > MAX_RESOLVED_BYTES {
                    return Err(fail(
                        ProblemKind::LimitExceeded,
                        None,
                        format!("more than {MAX_RESOLVED_BYTES} bytes of variable-length data"),
                    ));
                }
                let objects =
                    collection(image, &mut self.heaps, r.collection).map_err(|p| Problem {
                        message: format!("slot at byte {offset}: {}", p.message),
                        ..p
                    })?;
                let coll_at = image.absolute(r.collection);
                let index = u16::try_from(r.index)
                    .ok()
                    .filter(|&i| i != 0)
                    .ok_or_else(|| {
                        fail(
                            ProblemKind::BadValue,
                            coll_at,
                            format!("slot at byte {offset}: bad heap object index {}", r.index),
                        )
                    })?;
                let &(data_at, obj_size) = objects.get(&index).ok_or_else(|| {
                    fail(
                        ProblemKind::Unreadable,
                        coll_at,
                        format!("slot at byte {offset}: heap object {index} not in the collection"),
                    )
                })?;
                if obj_size < need {
                    return Err(fail(
                        ProblemKind::Malformed,
                        coll_at,
                        format!(
                            "slot at byte {offset}: heap object {index} has {obj_size} bytes, \
                             {need} declared"
                        ),
                    ));
                }
                let data = usize::try_from(data_at)
                    .ok()
                    .zip(usize::try_from(need).ok())
                    .and_then(|(a, n)| image.bytes.get(a..a.checked_add(n)?))
                    .ok_or_else(|| {
                        fail(
                            ProblemKind::Truncated,
                            coll_at,
                            format!("slot at byte {offset}: heap object {index} outside the file"),
                        )
                    })?;
                let nested = if s.base.is_variable_length() {
                    self.resolve(s.base, data, depth + 1).map_err(|p| Problem {
                        message: format!("in the sequence at byte {offset}: {}", p.message),
                        ..p
                    })?
                } else {
                    Vec::new()
                };
                out.push(VlenSlot {
                    offset,
                    count,
                    data: data.to_vec(),
                    nested,
                    regions: super::region::resolve_regions(image, s.base, data),
                });
            }
        }
        Ok(out)
    }
}

/// The objects of the collection at HDF5 address `addr`, parsed once.
pub(super) fn collection<'h>(
    image: &Image,
    heaps: &'h mut HashMap<u64, Objects>,
    addr: u64,
) -> Result<&'h Objects, Problem> {
    if is_undefined(addr) || addr == 0 {
        return Err(Problem::new(
            ProblemKind::BadValue,
            None,
            "global heap collection",
            format!("null collection address {addr:#x} with a non-zero length"),
        ));
    }
    match heaps.entry(addr) {
        std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
        std::collections::hash_map::Entry::Vacant(e) => {
            let data = image.at("global heap collection", addr)?;
            let abs = image.absolute(addr).unwrap_or(addr);
            let coll = global_heap::parse(data, abs, image.sizes)?;
            let objects = coll
                .objects
                .iter()
                .map(|o| (o.index, (o.data_offset, o.size)))
                .collect();
            Ok(e.insert(objects))
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::format::message::datatype::{CharacterSet, CompoundMember, StringPadding, VlenKind};
    use crate::format::Sizes;

    fn u8_type() -> Datatype {
        Datatype {
            version: 1,
            size: 1,
            class: DatatypeClass::FixedPoint {
                order: crate::format::message::datatype::ByteOrder::LittleEndian,
                lo_pad: false,
                hi_pad: false,
                signed: false,
                bit_offset: 0,
                precision: 8,
            },
        }
    }

    fn vlen_of(base: Datatype, kind: VlenKind) -> Datatype {
        Datatype {
            version: 1,
            size: 16,
            class: DatatypeClass::VariableLength {
                kind,
                padding: StringPadding::NullTerminate,
                charset: CharacterSet::Ascii,
                base: Box::new(base),
            },
        }
    }

    fn vstr() -> Datatype {
        vlen_of(u8_type(), VlenKind::String)
    }

    /// A file: 16 bytes of padding, then a collection at address 16 with
    /// the given objects (index, bytes).
    pub(in crate::read) fn file_with_heap(objects: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (i, d) in objects {
            body.extend_from_slice(&i.to_le_bytes());
            body.extend_from_slice(&1u16.to_le_bytes());
            body.extend_from_slice(&[0; 4]);
            body.extend_from_slice(&(d.len() as u64).to_le_bytes());
            body.extend_from_slice(d);
            while body.len() % 8 != 0 {
                body.push(0);
            }
        }
        let size = (16 + body.len() + 16).max(4096) as u64;
        let mut f = vec![0u8; 16];
        f.extend_from_slice(b"GCOL\x01\0\0\0");
        f.extend_from_slice(&size.to_le_bytes());
        f.extend_from_slice(&body);
        // Free-space object 0.
        let free = size - 16 - body.len() as u64;
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&free.to_le_bytes());
        f.resize(16 + size as usize, 0);
        f
    }

    fn slot(len: u32, coll: u64, index: u32) -> Vec<u8> {
        let mut v = len.to_le_bytes().to_vec();
        v.extend_from_slice(&coll.to_le_bytes());
        v.extend_from_slice(&index.to_le_bytes());
        v
    }

    #[test]
    fn resolves_strings_and_empty_values() {
        let f = file_with_heap(&[(1, b"hello"), (2, b"world!")]);
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        let mut raw = slot(5, 16, 1);
        raw.extend(slot(0, 0, 0));
        raw.extend(slot(6, 16, 2));
        raw.extend(slot(3, 16, 2)); // shorter than the object: a prefix
        let s = resolve_vlen(&img, &vstr(), &raw).unwrap();
        let got: Vec<(usize, u64, &[u8])> =
            s.iter().map(|s| (s.offset, s.count, &s.data[..])).collect();
        assert_eq!(
            got,
            vec![
                (0, 5, &b"hello"[..]),
                (16, 0, &b""[..]),
                (32, 6, &b"world!"[..]),
                (48, 3, &b"wor"[..])
            ]
        );
    }

    #[test]
    fn errors_name_the_slot() {
        let f = file_with_heap(&[(1, b"hello")]);
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        for (raw, what) in [
            (slot(6, 16, 1), "6 declared"),
            (slot(1, 16, 9), "not in the collection"),
            (slot(1, 16, 0), "bad heap object index"),
            (slot(1, 16, 70000), "bad heap object index"),
            (slot(1, 0, 0), "null collection"),
            (slot(1, u64::MAX, 1), "null collection"),
            (slot(1, 24, 1), "signature"),
            (slot(1, 1 << 40, 1), "truncated"),
        ] {
            let mut two = slot(0, 0, 0);
            two.extend(raw);
            let e = resolve_vlen(&img, &vstr(), &two).unwrap_err();
            assert!(e.message.contains("slot at byte 16"), "{e}");
            assert!(e.message.contains(what), "{what}: {e}");
        }
        // Not a whole number of elements.
        assert!(resolve_vlen(&img, &vstr(), &[0; 17]).is_err());
    }

    #[test]
    fn compound_and_array_members() {
        let f = file_with_heap(&[(1, &[1, 0, 0, 0, 2, 0, 0, 0]), (2, b"ab")]);
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        let i4 = Datatype {
            size: 4,
            ..u8_type()
        };
        let seq = vlen_of(i4, VlenKind::Sequence);
        let arr = Datatype {
            version: 2,
            size: 32,
            class: DatatypeClass::Array {
                dims: vec![2],
                base: Box::new(vstr()),
            },
        };
        let comp = Datatype {
            version: 1,
            size: 4 + 16 + 32,
            class: DatatypeClass::Compound {
                members: vec![
                    CompoundMember {
                        name: "id".into(),
                        offset: 0,
                        datatype: Datatype {
                            size: 4,
                            ..u8_type()
                        },
                    },
                    CompoundMember {
                        name: "seq".into(),
                        offset: 4,
                        datatype: seq,
                    },
                    CompoundMember {
                        name: "names".into(),
                        offset: 20,
                        datatype: arr,
                    },
                ],
            },
        };
        let mut raw = vec![7, 0, 0, 0];
        raw.extend(slot(2, 16, 1));
        raw.extend(slot(2, 16, 2));
        raw.extend(slot(0, 0, 0));
        let s = resolve_vlen(&img, &comp, &raw).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].offset, s[0].count), (4, 2));
        assert_eq!(s[0].data, [1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!((s[1].offset, &s[1].data[..]), (20, &b"ab"[..]));
        assert_eq!((s[2].offset, s[2].count), (36, 0));
        // Member outside the element.
        let mut bad = comp.clone();
        bad.size = 30;
        assert!(resolve_vlen(&img, &bad, &[0; 30]).is_err());
    }

    #[test]
    fn nested_sequences_are_resolved_in_turn() {
        // Object 1: a sequence of two string slots (objects 2 and 3).
        let mut seq = slot(2, 16, 2);
        seq.extend(slot(3, 16, 3));
        let f = file_with_heap(&[(1, &seq), (2, b"hi"), (3, b"you")]);
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        let nested = vlen_of(vstr(), VlenKind::Sequence);
        let mut raw = slot(2, 16, 1);
        raw.extend(slot(0, 0, 0));
        let s = resolve_vlen(&img, &nested, &raw).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].offset, s[0].count, s[0].data.len()), (0, 2, 32));
        let inner: Vec<(usize, &[u8])> = s[0]
            .nested
            .iter()
            .map(|n| (n.offset, &n.data[..]))
            .collect();
        assert_eq!(inner, vec![(0, &b"hi"[..]), (16, &b"you"[..])]);
        assert!(s[1].nested.is_empty() && s[1].count == 0);
        // Same values at other heap addresses compare equal.
        let mut moved = s.clone();
        moved[0].data[4] ^= 1;
        assert!(same_slots(&s, &moved, 16));
        moved[0].nested[1].data[0] ^= 1;
        assert!(!same_slots(&s, &moved, 16));
        // A broken inner slot names both levels.
        let f = file_with_heap(&[(1, &slot(5, 16, 9))]);
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        let e = resolve_vlen(&img, &nested, &slot(1, 16, 1)).unwrap_err();
        assert!(
            e.message
                .contains("in the sequence at byte 0: slot at byte 0"),
            "{e}"
        );
    }

    #[test]
    fn self_referencing_sequences_are_bounded() {
        // Object 1 holds a slot pointing at object 1 itself: vlen of vlen of
        // ... nested as deep as the datatype, never further.
        let f = file_with_heap(&[(1, &slot(1, 16, 1))]);
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        let mut dt = vstr();
        for _ in 0..40 {
            dt = vlen_of(dt, VlenKind::Sequence);
        }
        let e = resolve_vlen(&img, &dt, &slot(1, 16, 1)).unwrap_err();
        assert_eq!(e.kind, ProblemKind::LimitExceeded, "{e}");
    }

    #[test]
    fn plain_types_have_no_slots() {
        let f = file_with_heap(&[]);
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        assert!(resolve_vlen(&img, &u8_type(), &[1, 2, 3])
            .unwrap()
            .is_empty());
        let small = Datatype { size: 8, ..vstr() };
        assert!(resolve_vlen(&img, &small, &[0; 8]).is_err());
    }

    #[test]
    fn many_slots_share_one_parsed_collection() {
        let f = file_with_heap(&[(1, b"x")]);
        let img = Image::new(&f, 0, Sizes::DEFAULT);
        let raw: Vec<u8> = (0..100_000).flat_map(|_| slot(1, 16, 1)).collect();
        let s = resolve_vlen(&img, &vstr(), &raw).unwrap();
        assert_eq!(s.len(), 100_000);
        assert!(s.iter().all(|s| s.data == b"x"));
    }
}

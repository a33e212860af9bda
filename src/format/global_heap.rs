//! Global heap collections (`GCOL`) and the heap IDs that point into them.
//!
//! Implements spec III.E ("Disk Format: Level 1E - Global Heap"): the
//! collection header, its objects (each 8-byte aligned, object 0 = free
//! space, ending the list), the global heap ID (collection address + object
//! index), and the variable-length element that stores such an ID in raw
//! data (u32 element count + heap ID). Collections carry no checksum.

use nom::bytes::complete::take;
use nom::number::complete::{le_u16, le_u32, le_u8};

use super::{expect_signature, length, offset, Error, ErrorKind, Result, Sizes};

const STRUCTURE: &str = "global heap collection";
const HEAP_ID: &str = "global heap ID";
const VLEN: &str = "variable-length element";

/// The collection signature (spec III.E, "Signature").
pub const SIGNATURE: &[u8; 4] = b"GCOL";

/// A global heap collection (spec III.E, "Layout: A Global Heap Collection").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalHeapCollection {
    /// Version; only 1 is defined (spec III.E, "Version").
    pub version: u8,
    /// Bytes in the whole collection, header included (spec III.E,
    /// "Collection Size", L bytes; 4096 at least when written by libhdf5).
    pub collection_size: u64,
    /// Objects 1..N in on-disk order, up to the free-space object 0 or the end
    /// of the collection (spec III.E, "Global Heap Object 1 through N").
    pub objects: Vec<GlobalHeapObject>,
    /// Size recorded by the free-space object 0, if its header is present
    /// (spec III.E, "Global Heap Object 0"; includes its own 16-byte header).
    pub free_space: Option<u64>,
    /// Why the object list stopped before object 0 or the collection end,
    /// if it did (an object whose size runs past the collection). The objects
    /// before it are kept.
    pub fault: Option<String>,
}

/// One object of a collection (spec III.E, "Layout: Global Heap Object").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalHeapObject {
    /// Index within the collection, never 0 here (spec III.E, "Heap Object Index").
    pub index: u16,
    /// Reference count (spec III.E, "Reference Count"; HDF5 2.0 writes 0 for
    /// variable-length strings).
    pub ref_count: u16,
    /// Bytes of object data, before the padding to 8 (spec III.E, "Object Size", L bytes).
    pub size: u64,
    /// Absolute file offset of the object's data.
    pub data_offset: u64,
}

impl GlobalHeapCollection {
    /// The data of object `index`, sliced from the whole `file` (absolute
    /// offsets, as in [`GlobalHeapObject::data_offset`]).
    pub fn object<'a>(&self, file: &'a [u8], index: u16) -> Option<&'a [u8]> {
        let obj = self.objects.iter().find(|o| o.index == index)?;
        let start = usize::try_from(obj.data_offset).ok()?;
        let len = usize::try_from(obj.size).ok()?;
        file.get(start..start.checked_add(len)?)
    }
}

/// Bytes in the collection header: signature, version, 3 reserved, L.
pub fn header_size(sizes: Sizes) -> u64 {
    8 + u64::from(sizes.length())
}

/// Bytes in an object header: index, reference count, 4 reserved, L.
pub fn object_header_size(sizes: Sizes) -> u64 {
    8 + u64::from(sizes.length())
}

/// Parses the collection that starts at `data[0]` (file offset `at`).
///
/// The whole collection (`collection_size` bytes) must be inside `data`;
/// a shorter slice is [`ErrorKind::Truncated`]. Rejects a bad signature, a
/// version other than 1 and a collection size smaller than its header. An
/// object that overruns the collection ends the list and is described in
/// [`GlobalHeapCollection::fault`].
pub fn parse(data: &[u8], at: u64, sizes: Sizes) -> Result<GlobalHeapCollection> {
    expect_signature(STRUCTURE, at, data, SIGNATURE)?;
    let body = &data[SIGNATURE.len()..];
    let body_at = at.saturating_add(SIGNATURE.len() as u64);
    let fields: nom::IResult<&[u8], (u8, u64)> = (|i| {
        let (i, version) = le_u8(i)?;
        let (i, _reserved) = take(3usize)(i)?;
        let (i, size) = length(sizes)(i)?;
        Ok((i, (version, size)))
    })(body);
    let (_, (version, collection_size)) =
        fields.map_err(|e| Error::from_nom(STRUCTURE, body_at, body, e))?;
    if version != 1 {
        return Err(Error::new(
            STRUCTURE,
            body_at,
            ErrorKind::UnsupportedVersion(version),
        ));
    }
    let head = header_size(sizes);
    if collection_size < head {
        return Err(Error::bad_value(
            STRUCTURE,
            body_at.saturating_add(4),
            "collection size",
            collection_size,
        ));
    }
    let Some(coll) = usize::try_from(collection_size)
        .ok()
        .and_then(|n| data.get(..n))
    else {
        return Err(Error::new(
            STRUCTURE,
            at,
            ErrorKind::Truncated {
                needed: collection_size,
                available: data.len() as u64,
            },
        ));
    };
    let (objects, free_space, fault) = parse_objects(coll, at, sizes);
    Ok(GlobalHeapCollection {
        version,
        collection_size,
        objects,
        free_space,
        fault,
    })
}

type Objects = (Vec<GlobalHeapObject>, Option<u64>, Option<String>);

/// Walks the objects inside `coll` (exactly the collection's bytes). Each
/// step advances at least one object header, so the loop is bounded by the
/// collection size.
fn parse_objects(coll: &[u8], at: u64, sizes: Sizes) -> Objects {
    let ohead = object_header_size(sizes);
    let mut objects = Vec::new();
    let mut pos = header_size(sizes);
    let end = coll.len() as u64;
    while pos.saturating_add(ohead) <= end {
        // In bounds: pos + ohead <= coll.len().
        let rest = &coll[pos as usize..];
        let Ok((_, (index, ref_count, size))) = object_header(rest, sizes) else {
            break;
        };
        if index == 0 {
            return (objects, Some(size), None);
        }
        let data_pos = pos + ohead;
        let padded = size.checked_add(7).map(|s| s & !7);
        let next = padded.and_then(|p| data_pos.checked_add(p));
        match data_pos.checked_add(size) {
            Some(data_end) if data_end <= end => {}
            _ => {
                let fault = format!(
                    "object {index} at {:#x} has size {size}, past the collection end",
                    at.saturating_add(pos)
                );
                return (objects, None, Some(fault));
            }
        }
        objects.push(GlobalHeapObject {
            index,
            ref_count,
            size,
            data_offset: at.saturating_add(data_pos),
        });
        match next {
            Some(n) => pos = n,
            None => break,
        }
    }
    (objects, None, None)
}

fn object_header(input: &[u8], sizes: Sizes) -> nom::IResult<&[u8], (u16, u16, u64)> {
    let (input, index) = le_u16(input)?;
    let (input, ref_count) = le_u16(input)?;
    let (input, _reserved) = le_u32(input)?;
    let (input, size) = length(sizes)(input)?;
    Ok((input, (index, ref_count, size)))
}

/// Bytes in a global heap ID: collection address (O) + object index (4).
pub fn heap_id_size(sizes: Sizes) -> u64 {
    u64::from(sizes.offset()) + 4
}

/// Decodes a global heap ID (spec III.E, "Layout: Global Heap ID") at the
/// start of `data` (file offset `at`): (collection address, object index).
pub fn parse_heap_id(data: &[u8], at: u64, sizes: Sizes) -> Result<(u64, u32)> {
    heap_id(data, sizes)
        .map(|(_, v)| v)
        .map_err(|e| Error::from_nom(HEAP_ID, at, data, e))
}

fn heap_id(input: &[u8], sizes: Sizes) -> nom::IResult<&[u8], (u64, u32)> {
    let (input, collection) = offset(sizes)(input)?;
    let (input, index) = le_u32(input)?;
    Ok((input, (collection, index)))
}

/// A variable-length element as stored in a dataset or attribute: the
/// element count followed by a global heap ID (spec IV.A.2.d, variable-length
/// datatype; III.E for the ID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VlenRef {
    /// Number of base-type elements (bytes, for a string).
    pub length: u32,
    /// Address of the collection holding the data.
    pub collection: u64,
    /// Object index inside the collection (0 for an empty/null element).
    pub index: u32,
}

/// Bytes in a stored variable-length element: 4 + O + 4 (16 with O = 8).
pub fn vlen_element_size(sizes: Sizes) -> u64 {
    4 + heap_id_size(sizes)
}

/// Decodes a variable-length element at the start of `data` (file offset `at`).
pub fn parse_vlen_element(data: &[u8], at: u64, sizes: Sizes) -> Result<VlenRef> {
    let parsed: nom::IResult<&[u8], VlenRef> = (|i| {
        let (i, length) = le_u32(i)?;
        let (i, (collection, index)) = heap_id(i, sizes)?;
        Ok((
            i,
            VlenRef {
                length,
                collection,
                index,
            },
        ))
    })(data);
    parsed
        .map(|(_, v)| v)
        .map_err(|e| Error::from_nom(VLEN, at, data, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::test_support::hex;
    use crate::format::UNDEFINED;

    // The first 128 of the 4096 bytes of the collection at 7936 in a file
    // written by h5py 3.16 / HDF5 2.0 (default libver) holding a vlen string
    // dataset ['hello', 'world!', 'x'*20] (generator: symbol_table_node.rs
    // tests). The remaining bytes on disk are zero.
    const H5PY_GCOL_7936: &str = "\
47434f4c01000000001000000000000001000000000000001400000000000000787878787878\
78787878787878787878787878780000000002000000000000000600000000000000776f726c\
642100000300000000000000050000000000000068656c6c6f0000000000000000000000980f\
0000000000000000000000000000";

    // The three 16-byte vlen elements of that dataset's raw data (at 3864).
    const H5PY_VLEN_3864: &str = "\
05000000001f0000000000000300000006000000001f0000000000000200000014000000001f\
00000000000001000000";

    fn collection(size: u64, objects: &[(u16, &[u8])], free: bool) -> Vec<u8> {
        let mut v = b"GCOL\x01\0\0\0".to_vec();
        v.extend_from_slice(&size.to_le_bytes());
        for (index, data) in objects {
            v.extend_from_slice(&index.to_le_bytes());
            v.extend_from_slice(&1u16.to_le_bytes());
            v.extend_from_slice(&[0; 4]);
            v.extend_from_slice(&(data.len() as u64).to_le_bytes());
            v.extend_from_slice(data);
            while v.len() % 8 != 0 {
                v.push(0);
            }
        }
        if free {
            let rest = size - v.len() as u64;
            v.extend_from_slice(&[0; 8]);
            v.extend_from_slice(&rest.to_le_bytes());
        }
        v.resize(size as usize, 0);
        v
    }

    #[test]
    fn parses_objects_and_free_space() {
        let v = collection(4096, &[(1, b"abc"), (2, b"0123456789")], true);
        let c = parse(&v, 1000, Sizes::DEFAULT).unwrap();
        assert_eq!(c.version, 1);
        assert_eq!(c.collection_size, 4096);
        assert_eq!(c.objects.len(), 2);
        assert_eq!(
            c.objects[0],
            GlobalHeapObject {
                index: 1,
                ref_count: 1,
                size: 3,
                data_offset: 1032
            }
        );
        // 16 header + 16 object header + 8 (3 padded) + 16 object header.
        assert_eq!(c.objects[1].data_offset, 1000 + 56);
        assert_eq!(c.free_space, Some(4096 - 72));
        assert_eq!(c.fault, None);
        let mut file = vec![0u8; 1000];
        file.extend_from_slice(&v);
        assert_eq!(c.object(&file, 1), Some(&b"abc"[..]));
        assert_eq!(c.object(&file, 2), Some(&b"0123456789"[..]));
        assert_eq!(c.object(&file, 3), None);
        assert_eq!(c.object(&file[..1040], 2), None);
    }

    #[test]
    fn full_collection_without_object_zero() {
        // Objects fill the collection exactly: no free-space header.
        let v = collection(48, &[(1, &[9; 16])], false);
        assert_eq!(v.len(), 48);
        let c = parse(&v, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(c.objects.len(), 1);
        assert_eq!(c.free_space, None);
        // Trailing space smaller than an object header: implied free space.
        let v = collection(56, &[(1, &[9; 16])], false);
        let c = parse(&v, 0, Sizes::DEFAULT).unwrap();
        assert_eq!((c.objects.len(), c.free_space, c.fault), (1, None, None));
    }

    #[test]
    fn small_lengths() {
        let sz = Sizes::new(4, 4).unwrap();
        let mut v = b"GCOL\x01\0\0\0".to_vec();
        v.extend_from_slice(&32u32.to_le_bytes());
        v.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(&2u32.to_le_bytes());
        v.extend_from_slice(b"hi\0\0\0\0\0\0");
        let c = parse(&v, 0, sz).unwrap();
        assert_eq!(c.objects.len(), 1);
        assert_eq!((c.objects[0].index, c.objects[0].size), (5, 2));
        assert_eq!(c.object(&v, 5), Some(&b"hi"[..]));
    }

    #[test]
    fn truncation_is_an_error_at_every_length() {
        let v = collection(64, &[(1, b"abc")], true);
        assert!(parse(&v, 0, Sizes::DEFAULT).is_ok());
        for n in 0..v.len() {
            assert!(parse(&v[..n], 0, Sizes::DEFAULT).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn bad_signature_version_and_size() {
        let mut v = collection(64, &[], true);
        v[1] = b'X';
        assert!(matches!(
            parse(&v, 0, Sizes::DEFAULT).unwrap_err().kind,
            ErrorKind::BadSignature { .. }
        ));
        let mut v = collection(64, &[], true);
        v[4] = 2;
        assert_eq!(
            parse(&v, 0, Sizes::DEFAULT).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(2)
        );
        let mut v = collection(64, &[], true);
        v[8..16].copy_from_slice(&8u64.to_le_bytes());
        assert!(matches!(
            parse(&v, 0, Sizes::DEFAULT).unwrap_err().kind,
            ErrorKind::BadValue { .. }
        ));
    }

    #[test]
    fn hostile_sizes() {
        // Collection size far beyond the data.
        let mut v = collection(64, &[], true);
        v[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            parse(&v, 0, Sizes::DEFAULT).unwrap_err().kind,
            ErrorKind::Truncated { .. }
        ));
        // Second object's size overflows / overruns: the first is kept.
        let mut v = collection(128, &[(1, b"abc"), (2, b"x")], true);
        v[48..56].copy_from_slice(&u64::MAX.to_le_bytes());
        let c = parse(&v, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(c.objects.len(), 1);
        assert!(c.fault.as_deref().unwrap().contains("object 2"));
        v[48..56].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        let c = parse(&v, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(c.objects.len(), 1);
        assert!(c.fault.is_some());
        // Many tiny objects: bounded by the collection size.
        let objs: Vec<(u16, &[u8])> = (1..=200).map(|i| (i, &b"z"[..])).collect();
        let v = collection(200 * 24 + 16, &objs, false);
        let c = parse(&v, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(c.objects.len(), 200);
    }

    #[test]
    fn heap_ids_and_vlen_elements() {
        let d = Sizes::DEFAULT;
        let mut v = 0x1f00u64.to_le_bytes().to_vec();
        v.extend_from_slice(&3u32.to_le_bytes());
        assert_eq!(parse_heap_id(&v, 0, d).unwrap(), (0x1f00, 3));
        let v = [0xFFu8; 12];
        assert_eq!(parse_heap_id(&v, 0, d).unwrap(), (UNDEFINED, u32::MAX));
        for n in 0..12 {
            assert!(parse_heap_id(&v[..n], 0, d).is_err());
        }
        let sz = Sizes::new(4, 8).unwrap();
        let v = [7, 0, 0, 0, 0x10, 0, 0, 0, 2, 0, 0, 0];
        assert_eq!(
            parse_vlen_element(&v, 0, sz).unwrap(),
            VlenRef {
                length: 7,
                collection: 0x10,
                index: 2
            }
        );
        assert_eq!(vlen_element_size(sz), 12);
        for n in 0..12 {
            assert!(parse_vlen_element(&v[..n], 40, sz).is_err());
        }
    }

    #[test]
    fn h5py_vlen_strings() {
        let mut gcol = hex(H5PY_GCOL_7936);
        assert_eq!(gcol.len(), 128);
        gcol.resize(4096, 0);
        let c = parse(&gcol, 7936, Sizes::DEFAULT).unwrap();
        let idx: Vec<u16> = c.objects.iter().map(|o| o.index).collect();
        assert_eq!(idx, [1, 2, 3]);
        assert_eq!(c.free_space, Some(3992));
        let mut file = vec![0u8; 7936];
        file.extend_from_slice(&gcol);

        let raw = hex(H5PY_VLEN_3864);
        let mut strings = Vec::new();
        for (i, elem) in raw.chunks(16).enumerate() {
            let r = parse_vlen_element(elem, 3864 + 16 * i as u64, Sizes::DEFAULT).unwrap();
            assert_eq!(r.collection, 7936);
            let bytes = c.object(&file, r.index as u16).unwrap();
            assert_eq!(bytes.len(), r.length as usize);
            strings.push(String::from_utf8(bytes.to_vec()).unwrap());
        }
        assert_eq!(strings, ["hello", "world!", "xxxxxxxxxxxxxxxxxxxx"]);
    }

    use crate::format::test_support::fixtures;

    #[test]
    fn testdata_fixtures_collections_parse() {
        for (name, bytes, _) in fixtures() {
            for at in memchr::memmem::find_iter(&bytes, SIGNATURE) {
                let c = parse(&bytes[at..], at as u64, Sizes::DEFAULT).unwrap();
                assert_eq!(c.fault, None, "{name} GCOL at {at}");
                for o in &c.objects {
                    assert!(c.object(&bytes, o.index).is_some());
                }
            }
        }
    }
}

//! Version 2 B-trees (`BTHD` header, `BTIN` internal nodes, `BTLF` leaves):
//! spec III.A.2, "Disk Format: Level 1A2 - Version 2 B-trees", and the record
//! layouts of types 1-4 (huge fractal-heap objects), 5, 6, 8, 9 (dense
//! links and attributes) and 10, 11
//! (dataset chunks, spec VII.E "The Version 2 B-trees Index").
//!
//! All three structures carry a lookup3 checksum. The parsers return the
//! structure with `checksum_ok` so a carver can still inspect a damaged node;
//! [`crate::follow::btree_v2::collect_records`] reports a node with a bad checksum and skips it.
//!
//! Node geometry ([`Geometry`]) follows the spec's derivation of the maximum
//! record counts per depth. Where the spec is vague the widths follow what
//! HDF5 writes: the "number of records in child node" field has the same width
//! at every depth, the width needed for the leaf maximum (the largest count);
//! a field holding a maximum `m` takes `floor(log2(m)) / 8 + 1` bytes.

use nom::number::complete::{le_u16, le_u32, le_u64, le_u8};

use super::codec::Reader;
use super::{
    checksum_matches, expect_signature, length, offset, truncated, uint, Error, ErrorKind, Result,
    Sizes,
};

pub(crate) const HEADER: &str = "v2 B-tree header";
pub(crate) const INTERNAL: &str = "v2 B-tree internal node";
pub(crate) const LEAF: &str = "v2 B-tree leaf node";
const RECORD: &str = "v2 B-tree record";

pub const HEADER_SIGNATURE: &[u8; 4] = b"BTHD";
pub const INTERNAL_SIGNATURE: &[u8; 4] = b"BTIN";
pub const LEAF_SIGNATURE: &[u8; 4] = b"BTLF";

/// Deepest tree accepted (HDF5 trees are a handful of levels deep).
pub const MAX_DEPTH: u16 = 64;
/// Largest dataset rank accepted for chunk records.
pub const MAX_RANK: usize = 32;

/// Signature, version, type and checksum: the fixed part of every node.
pub(crate) const NODE_OVERHEAD: u64 = 10;

/// B-tree types (spec III.A.2, "Type").
pub mod kind {
    /// Huge fractal-heap objects, indirectly accessed (ID -> place), not filtered.
    pub const HUGE_INDIRECT: u8 = 1;
    /// Huge objects, indirectly accessed, filtered.
    pub const HUGE_INDIRECT_FILTERED: u8 = 2;
    /// Huge objects, directly accessed (the ID holds the place), not filtered.
    pub const HUGE_DIRECT: u8 = 3;
    /// Huge objects, directly accessed, filtered.
    pub const HUGE_DIRECT_FILTERED: u8 = 4;
    pub const LINK_NAME: u8 = 5;
    pub const LINK_CREATION_ORDER: u8 = 6;
    pub const SHARED_MESSAGE: u8 = 7;
    pub const ATTRIBUTE_NAME: u8 = 8;
    pub const ATTRIBUTE_CREATION_ORDER: u8 = 9;
    pub const CHUNK: u8 = 10;
    pub const FILTERED_CHUNK: u8 = 11;
}

/// The v2 B-tree header (spec III.A.2, "Layout: Version 2 B-tree Header").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtreeV2Header {
    /// What the records are (see [`kind`]).
    pub btree_type: u8,
    /// Size in bytes of every node.
    pub node_size: u32,
    /// Size in bytes of one record.
    pub record_size: u16,
    /// 0 when the root is a leaf.
    pub depth: u16,
    pub split_percent: u8,
    pub merge_percent: u8,
    /// Relative address of the root node; undefined for an empty tree.
    pub root_address: u64,
    pub root_records: u16,
    pub total_records: u64,
    /// Whether the stored lookup3 checksum matches.
    pub checksum_ok: bool,
}

/// Size of the header on disk.
pub fn header_size(sizes: Sizes) -> u64 {
    4 + 1 + 1 + 4 + 2 + 2 + 1 + 1 + u64::from(sizes.offset()) + 2 + u64::from(sizes.length()) + 4
}

/// Parses a `BTHD` header; a checksum mismatch is reported in `checksum_ok`.
pub fn parse_header(data: &[u8], at: u64, sizes: Sizes) -> Result<BtreeV2Header> {
    expect_signature(HEADER, at, data, HEADER_SIGNATURE)?;
    let nom_err = |e| Error::from_nom(HEADER, at, data, e);
    let body = data.get(4..).unwrap_or_default();
    let (rest, version) = le_u8(body).map_err(nom_err)?;
    if version != 0 {
        return Err(Error::new(
            HEADER,
            at,
            ErrorKind::UnsupportedVersion(version),
        ));
    }
    let (rest, btree_type) = le_u8(rest).map_err(nom_err)?;
    let (rest, node_size) = le_u32(rest).map_err(nom_err)?;
    let (rest, record_size) = le_u16(rest).map_err(nom_err)?;
    let (rest, depth) = le_u16(rest).map_err(nom_err)?;
    let (rest, split_percent) = le_u8(rest).map_err(nom_err)?;
    let (rest, merge_percent) = le_u8(rest).map_err(nom_err)?;
    let (rest, root_address) = offset(sizes)(rest).map_err(nom_err)?;
    let (rest, root_records) = le_u16(rest).map_err(nom_err)?;
    let (_, total_records) = length(sizes)(rest).map_err(nom_err)?;
    let checksum_ok = checksum_matches(
        HEADER,
        at,
        data,
        usize_len(HEADER, at, header_size(sizes) - 4)?,
    )?;
    Ok(BtreeV2Header {
        btree_type,
        node_size,
        record_size,
        depth,
        split_percent,
        merge_percent,
        root_address,
        root_records,
        total_records,
        checksum_ok,
    })
}

/// A length as `usize`, or an error naming the structure.
fn usize_len(structure: &'static str, at: u64, len: u64) -> Result<usize> {
    usize::try_from(len).map_err(|_| Error::invalid(structure, at, "size overflow"))
}

/// Bytes needed to encode the value `max` (spec: "the least number of bytes
/// required to encode the maximum number of records"), capped at 8.
fn encoded_width(max: u64) -> u8 {
    let log2 = 63u32.saturating_sub(max.leading_zeros());
    (log2 / 8 + 1).min(8) as u8
}

/// Maximum record counts and field widths at one depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Most records a node at this depth can hold.
    pub max_records: u64,
    /// Most records in a subtree rooted at this depth (saturating).
    pub cumulative_max_records: u64,
    /// Width of the "total number of records" field of pointers to nodes at
    /// this depth (0 for leaves, whose pointers omit the field).
    pub cumulative_width: u8,
}

/// Node geometry derived from the header (spec III.A.2, "Number of Records
/// in Child Node" and "Total Number of Records in Child Node").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Index = depth (0 = leaves).
    pub levels: Vec<Level>,
    /// Width of every "number of records in child node" field.
    pub records_width: u8,
    /// Size of an address ("Size of Offsets").
    pub address_width: u8,
}

impl Geometry {
    /// Derives the geometry of the tree described by `hdr`, with checked arithmetic.
    pub fn new(hdr: &BtreeV2Header, sizes: Sizes) -> Result<Geometry> {
        let bad = |field, value| Error::bad_value(HEADER, 0, field, value);
        if hdr.depth > MAX_DEPTH {
            return Err(bad("depth", u64::from(hdr.depth)));
        }
        let record = u64::from(hdr.record_size);
        let node = u64::from(hdr.node_size);
        if record == 0 {
            return Err(bad("record size", 0));
        }
        let leaf_max = node
            .checked_sub(NODE_OVERHEAD)
            .map(|n| n / record)
            .unwrap_or(0);
        if leaf_max == 0 {
            return Err(bad("node size", node));
        }
        let records_width = encoded_width(leaf_max);
        let address_width = sizes.offset();
        let mut levels = vec![Level {
            max_records: leaf_max,
            cumulative_max_records: leaf_max,
            cumulative_width: 0,
        }];
        for _ in 1..=hdr.depth {
            let below = levels[levels.len() - 1];
            let pointer = u64::from(address_width)
                + u64::from(records_width)
                + u64::from(below.cumulative_width);
            let max = node
                .checked_sub(NODE_OVERHEAD + pointer)
                .map(|n| n / (record + pointer))
                .unwrap_or(0);
            if max == 0 {
                return Err(bad("node size", node));
            }
            let cumulative = max
                .saturating_add(1)
                .saturating_mul(below.cumulative_max_records)
                .saturating_add(max);
            levels.push(Level {
                max_records: max,
                cumulative_max_records: cumulative,
                cumulative_width: encoded_width(cumulative),
            });
        }
        Ok(Geometry {
            levels,
            records_width,
            address_width,
        })
    }

    /// Size of one child pointer in an internal node at `depth` (>= 1).
    pub fn pointer_size(&self, depth: u16) -> Option<u64> {
        let below = self.levels.get(usize::from(depth).checked_sub(1)?)?;
        Some(
            u64::from(self.address_width)
                + u64::from(self.records_width)
                + u64::from(below.cumulative_width),
        )
    }
}

/// How to decode chunk records (types 10 and 11).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordContext {
    /// Dataset rank (number of scaled offsets per record). 0 = derive it from
    /// the record size (exact for type 10, needs `chunk_size_len` for type 11).
    pub rank: usize,
    /// Width of the type 11 "chunk size" field: for layout v4 one more than
    /// the bytes needed for an unfiltered chunk's size (at most 8), for
    /// layout v5+ "Size of Offsets". 0 = derive it from the record size.
    pub chunk_size_len: usize,
}

/// One decoded record (spec III.A.2, "Type N Record Layout").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// Types 1-4: where a huge fractal-heap object is stored. Types 2 and 4
    /// (filtered) add the filter mask and the de-filtered size; types 1 and
    /// 2 (indirectly accessed) end with the object's ID, the B-tree's key.
    HugeObject {
        address: u64,
        length: u64,
        filter_mask: Option<u32>,
        defiltered_size: Option<u64>,
        id: Option<u64>,
    },
    /// Type 5: lookup3 hash of the link name, fractal heap ID of the link message.
    LinkName { hash: u32, heap_id: [u8; 7] },
    /// Type 6: link creation order, fractal heap ID of the link message.
    LinkCreationOrder {
        creation_order: u64,
        heap_id: [u8; 7],
    },
    /// Type 8: fractal heap ID of the attribute message, its message flags,
    /// creation order and lookup3 hash of the name.
    AttributeName {
        heap_id: [u8; 8],
        flags: u8,
        creation_order: u32,
        hash: u32,
    },
    /// Type 9: as type 8 without the hash.
    AttributeCreationOrder {
        heap_id: [u8; 8],
        flags: u8,
        creation_order: u32,
    },
    /// Types 10 (size/filter mask absent) and 11: a dataset chunk. Scaled
    /// offsets are chunk-grid coordinates (element offset / chunk dimension),
    /// slowest-changing dimension first.
    Chunk {
        address: u64,
        size: Option<u64>,
        filter_mask: u32,
        scaled_offsets: Vec<u64>,
    },
    /// Any other type, or a record too short for its type's layout.
    Raw(Vec<u8>),
}

/// The next `N` bytes of `r` as an array (heap IDs).
fn array<const N: usize>(r: &mut Reader) -> Option<[u8; N]> {
    r.bytes(N).ok()?.try_into().ok()
}

/// Decodes one record of `btree_type` from exactly `record_size` bytes.
/// Falls back to [`Record::Raw`] when the bytes do not fit the layout.
pub fn decode_record(bytes: &[u8], btree_type: u8, sizes: Sizes, ctx: RecordContext) -> Record {
    decode_known(bytes, btree_type, sizes, ctx).unwrap_or_else(|| Record::Raw(bytes.to_vec()))
}

/// Types 1-4 (spec III.A.2, "Type 1 Record Layout" .. "Type 4"): address
/// (O), length (L), then for filtered objects a 4-byte filter mask and the
/// de-filtered size (L), then for indirectly accessed ones the ID (L).
fn decode_huge(bytes: &[u8], btree_type: u8, sizes: Sizes) -> Option<Record> {
    let (o, l) = (sizes.offset(), sizes.length());
    let filtered = matches!(
        btree_type,
        kind::HUGE_INDIRECT_FILTERED | kind::HUGE_DIRECT_FILTERED
    );
    let indirect = matches!(
        btree_type,
        kind::HUGE_INDIRECT | kind::HUGE_INDIRECT_FILTERED
    );
    let mut r = Reader::new(RECORD, bytes, 0);
    // The address as stored: all-ones is not widened here.
    let address = r.uint(o).ok()?;
    let length = r.uint(l).ok()?;
    let (mut filter_mask, mut defiltered_size) = (None, None);
    if filtered {
        filter_mask = Some(r.u32().ok()?);
        defiltered_size = Some(r.uint(l).ok()?);
    }
    let id = if indirect {
        Some(r.uint(l).ok()?)
    } else {
        None
    };
    Some(Record::HugeObject {
        address,
        length,
        filter_mask,
        defiltered_size,
        id,
    })
}

fn decode_known(bytes: &[u8], btree_type: u8, sizes: Sizes, ctx: RecordContext) -> Option<Record> {
    match btree_type {
        kind::HUGE_INDIRECT..=kind::HUGE_DIRECT_FILTERED => decode_huge(bytes, btree_type, sizes),
        kind::LINK_NAME => {
            let mut r = Reader::new(RECORD, bytes, 0);
            Some(Record::LinkName {
                hash: r.u32().ok()?,
                heap_id: array(&mut r)?,
            })
        }
        kind::LINK_CREATION_ORDER => {
            let mut r = Reader::new(RECORD, bytes, 0);
            Some(Record::LinkCreationOrder {
                creation_order: r.uint(8).ok()?,
                heap_id: array(&mut r)?,
            })
        }
        kind::ATTRIBUTE_NAME => {
            let mut r = Reader::new(RECORD, bytes, 0);
            Some(Record::AttributeName {
                heap_id: array(&mut r)?,
                flags: r.u8().ok()?,
                creation_order: r.u32().ok()?,
                hash: r.u32().ok()?,
            })
        }
        kind::ATTRIBUTE_CREATION_ORDER => {
            let mut r = Reader::new(RECORD, bytes, 0);
            Some(Record::AttributeCreationOrder {
                heap_id: array(&mut r)?,
                flags: r.u8().ok()?,
                creation_order: r.u32().ok()?,
            })
        }
        kind::CHUNK | kind::FILTERED_CHUNK => decode_chunk(bytes, btree_type, sizes, ctx),
        _ => None,
    }
}

/// Rank and chunk-size width of a chunk record of `len` bytes, from `ctx`
/// where given and from the record size otherwise.
fn chunk_layout(
    len: usize,
    btree_type: u8,
    sizes: Sizes,
    ctx: RecordContext,
) -> Option<(usize, usize)> {
    let addr = usize::from(sizes.offset());
    let fixed = if btree_type == kind::CHUNK {
        addr
    } else {
        addr + 4
    };
    let rest = len.checked_sub(fixed)?;
    let (rank, size_len) = if btree_type == kind::CHUNK {
        (if ctx.rank == 0 { rest / 8 } else { ctx.rank }, 0)
    } else {
        match (ctx.rank, ctx.chunk_size_len) {
            (0, 0) => return None,
            (0, w) => (rest.checked_sub(w)? / 8, w),
            (r, 0) => (r, rest.checked_sub(r.checked_mul(8)?)?),
            (r, w) => (r, w),
        }
    };
    let filtered = btree_type == kind::FILTERED_CHUNK;
    if rank == 0 || rank > MAX_RANK || (filtered && !(1..=8).contains(&size_len)) {
        return None;
    }
    Some((rank, size_len))
}

fn decode_chunk(bytes: &[u8], btree_type: u8, sizes: Sizes, ctx: RecordContext) -> Option<Record> {
    let (rank, size_len) = chunk_layout(bytes.len(), btree_type, sizes, ctx)?;
    let (mut rest, address) = offset(sizes)(bytes).ok()?;
    let mut size = None;
    let mut filter_mask = 0;
    if btree_type == kind::FILTERED_CHUNK {
        let (r, s) = uint(size_len as u8)(rest).ok()?;
        let (r, m) = le_u32::<_, nom::error::Error<&[u8]>>(r).ok()?;
        size = Some(s);
        filter_mask = m;
        rest = r;
    }
    let mut scaled_offsets = Vec::with_capacity(rank);
    for _ in 0..rank {
        let (r, v) = le_u64::<_, nom::error::Error<&[u8]>>(rest).ok()?;
        scaled_offsets.push(v);
        rest = r;
    }
    Some(Record::Chunk {
        address,
        size,
        filter_mask,
        scaled_offsets,
    })
}

/// Everything needed to decode the nodes of one tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    pub header: BtreeV2Header,
    pub geometry: Geometry,
    pub sizes: Sizes,
    pub ctx: RecordContext,
}

impl Tree {
    /// Derives the geometry; `at` (the header's absolute offset) is for errors.
    pub fn new(header: BtreeV2Header, at: u64, sizes: Sizes, ctx: RecordContext) -> Result<Tree> {
        let geometry = Geometry::new(&header, sizes).map_err(|mut e| {
            e.offset = at;
            e
        })?;
        Ok(Tree {
            header,
            geometry,
            sizes,
            ctx,
        })
    }
}

/// A pointer from an internal node to a child (spec: "Child Node Pointer",
/// "Number of Records in Child Node", "Total Number of Records in Child Node").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildPointer {
    pub address: u64,
    pub records: u64,
    /// Absent for children that are leaves.
    pub total_records: Option<u64>,
}

/// A `BTIN` or `BTLF` node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtreeV2Node {
    /// Type byte of the node (should equal the header's).
    pub btree_type: u8,
    /// Depth of this node (0 = leaf).
    pub depth: u16,
    pub records: Vec<Record>,
    /// `records.len() + 1` pointers for internal nodes, empty for leaves.
    pub children: Vec<ChildPointer>,
    /// Whether the stored lookup3 checksum matches.
    pub checksum_ok: bool,
}

/// Parses the node at `data` (absolute offset `at`) that sits at `depth` in
/// `tree` and holds `nrec` records (from its
/// parent's pointer or the header). A checksum mismatch is reported in
/// `checksum_ok`; a type that differs from the header's is an error.
pub fn parse_node(data: &[u8], at: u64, tree: &Tree, depth: u16, nrec: u64) -> Result<BtreeV2Node> {
    let (hdr, geometry, sizes, ctx) = (&tree.header, &tree.geometry, tree.sizes, tree.ctx);
    let (structure, magic) = if depth == 0 {
        (LEAF, LEAF_SIGNATURE)
    } else {
        (INTERNAL, INTERNAL_SIGNATURE)
    };
    expect_signature(structure, at, data, magic)?;
    let level = geometry
        .levels
        .get(usize::from(depth))
        .ok_or_else(|| Error::bad_value(structure, at, "depth", u64::from(depth)))?;
    match data.get(4) {
        Some(0) => {}
        Some(&v) => return Err(Error::new(structure, at, ErrorKind::UnsupportedVersion(v))),
        None => return Err(truncated(structure, at, 5, data.len())),
    }
    let btree_type = *data
        .get(5)
        .ok_or_else(|| truncated(structure, at, 6, data.len()))?;
    if btree_type != hdr.btree_type {
        return Err(Error::bad_value(
            structure,
            at,
            "type",
            u64::from(btree_type),
        ));
    }
    if nrec > level.max_records {
        return Err(Error::bad_value(structure, at, "number of records", nrec));
    }
    let record_size = u64::from(hdr.record_size);
    let pointers = if depth == 0 { 0 } else { nrec + 1 };
    let pointer_size = if depth == 0 {
        0
    } else {
        geometry.pointer_size(depth).unwrap_or(0)
    };
    // nrec <= max_records keeps these products below node_size.
    let used = 6 + nrec * record_size + pointers * pointer_size;
    if used + 4 > u64::from(hdr.node_size) {
        return Err(Error::invalid(
            structure,
            at,
            "records overflow the node size",
        ));
    }
    let body = usize::try_from(used)
        .ok()
        .and_then(|u| data.get(..u))
        .ok_or_else(|| truncated(structure, at, used + 4, data.len()))?;
    let checksum_ok = checksum_matches(structure, at, data, usize_len(structure, at, used)?)?;

    let mut records = Vec::with_capacity(nrec as usize);
    let mut rest = &body[6..];
    for _ in 0..nrec {
        let (bytes, tail) = rest
            .split_at_checked(usize::from(hdr.record_size))
            .ok_or_else(|| truncated(structure, at, used + 4, data.len()))?;
        records.push(decode_record(bytes, btree_type, sizes, ctx));
        rest = tail;
    }
    let mut children = Vec::with_capacity(pointers as usize);
    let below = depth.saturating_sub(1);
    let total_width = geometry
        .levels
        .get(usize::from(below))
        .map_or(0, |l| l.cumulative_width);
    let nom_err = |e| Error::from_nom(structure, at, data, e);
    for _ in 0..pointers {
        let (r, address) = offset(sizes)(rest).map_err(nom_err)?;
        let (r, records) = uint(geometry.records_width)(r).map_err(nom_err)?;
        let (r, total_records) = if total_width == 0 {
            (r, None)
        } else {
            let (r, t) = uint(total_width)(r).map_err(nom_err)?;
            (r, Some(t))
        };
        rest = r;
        children.push(ChildPointer {
            address,
            records,
            total_records,
        });
    }
    Ok(BtreeV2Node {
        btree_type,
        depth,
        records,
        children,
        checksum_ok,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::test_support::btree_v2::*;

    /// Huge-object records (types 1-4): address, length, [mask, size], [ID].
    #[test]
    fn huge_object_records() {
        let le = |v: u64| v.to_le_bytes().to_vec();
        let ctx = RecordContext::default();
        let t1 = [le(0x1000), le(70_000), le(3)].concat();
        assert_eq!(
            decode_record(&t1, kind::HUGE_INDIRECT, S, ctx),
            Record::HugeObject {
                address: 0x1000,
                length: 70_000,
                filter_mask: None,
                defiltered_size: None,
                id: Some(3)
            }
        );
        let t2 = [
            le(0x2000),
            le(500),
            2u32.to_le_bytes().to_vec(),
            le(9000),
            le(7),
        ]
        .concat();
        assert_eq!(
            decode_record(&t2, kind::HUGE_INDIRECT_FILTERED, S, ctx),
            Record::HugeObject {
                address: 0x2000,
                length: 500,
                filter_mask: Some(2),
                defiltered_size: Some(9000),
                id: Some(7)
            }
        );
        let t3 = [le(0x3000), le(12)].concat();
        assert!(matches!(
            decode_record(&t3, kind::HUGE_DIRECT, S, ctx),
            Record::HugeObject {
                id: None,
                filter_mask: None,
                ..
            }
        ));
        assert!(matches!(
            decode_record(&t2[..28], kind::HUGE_DIRECT_FILTERED, S, ctx),
            Record::HugeObject {
                id: None,
                filter_mask: Some(2),
                defiltered_size: Some(9000),
                ..
            }
        ));
        // Too short for its layout: raw, never a made-up place.
        assert!(matches!(
            decode_record(&t1[..20], kind::HUGE_INDIRECT, S, ctx),
            Record::Raw(_)
        ));
        let small = Sizes::new(4, 4).unwrap();
        assert!(matches!(
            decode_record(&[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0], 1, small, ctx),
            Record::HugeObject {
                address: 1,
                length: 2,
                id: Some(3),
                ..
            }
        ));
    }

    #[test]
    fn parses_header_and_reports_checksum() {
        let h = header(5, 512, 11, 0, 100, 3, 3);
        assert_eq!(h.len() as u64, header_size(S));
        let p = parse_header(&h, 0, S).unwrap();
        assert_eq!((p.btree_type, p.node_size, p.record_size), (5, 512, 11));
        assert_eq!(
            (p.root_address, p.root_records, p.total_records),
            (100, 3, 3)
        );
        assert!(p.checksum_ok);
        let mut bad = h.clone();
        bad[8] ^= 1;
        assert!(!parse_header(&bad, 0, S).unwrap().checksum_ok);
        for len in 0..h.len() {
            assert!(parse_header(&h[..len], 0, S).is_err(), "prefix {len}");
        }
        let mut v = h.clone();
        v[4] = 1;
        assert!(matches!(
            parse_header(&v, 0, S).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(1)
        ));
        assert!(parse_header(b"BTHX\x00\x05", 0, S).is_err());
    }

    #[test]
    fn geometry_matches_the_spec_derivation() {
        let h = parse_header(&header(5, 512, 11, 2, 0, 0, 0), 0, S).unwrap();
        let g = Geometry::new(&h, S).unwrap();
        // Leaves: (512 - 10) / 11 = 45 records, 1-byte counts.
        assert_eq!(g.levels[0].max_records, 45);
        assert_eq!(g.records_width, 1);
        // Twig nodes: pointer = 8 + 1 + 0; (512 - 10 - 9) / (11 + 9) = 24.
        assert_eq!(g.levels[1].max_records, 24);
        assert_eq!(g.levels[1].cumulative_max_records, 25 * 45 + 24);
        assert_eq!(g.levels[1].cumulative_width, 2);
        // Depth 2: pointer = 8 + 1 + 2; (512 - 10 - 11) / 22 = 22.
        assert_eq!(g.levels[2].max_records, 22);
        assert_eq!(g.pointer_size(2), Some(11));
        assert_eq!(encoded_width(0), 1);
        assert_eq!(encoded_width(255), 1);
        assert_eq!(encoded_width(256), 2);
        assert_eq!(encoded_width(u64::MAX), 8);
        // Hostile headers.
        for (ns, rs, depth) in [
            (5, 11, 0),
            (512, 0, 0),
            (512, 600, 0),
            (20, 1, 3),
            (512, 11, 1000),
        ] {
            let h = parse_header(&header(5, ns, rs, depth, 0, 0, 0), 0, S).unwrap();
            assert!(Geometry::new(&h, S).is_err(), "{ns} {rs} {depth}");
        }
        // Huge nodes saturate instead of overflowing.
        let h = parse_header(&header(5, u32::MAX, 1, 64, 0, 0, 0), 0, S).unwrap();
        let g = Geometry::new(&h, S).unwrap();
        assert_eq!(g.levels[64].cumulative_width, 8);
    }

    #[test]
    fn decodes_record_types() {
        let r = decode_record(&link_record(7, 9), 5, S, RecordContext::default());
        assert_eq!(
            r,
            Record::LinkName {
                hash: 7,
                heap_id: [0, 9, 0, 0, 0, 0x0e, 0]
            }
        );
        let mut b = 42u64.to_le_bytes().to_vec();
        b.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            decode_record(&b, 6, S, RecordContext::default()),
            Record::LinkCreationOrder {
                creation_order: 42,
                heap_id: [1, 2, 3, 4, 5, 6, 7]
            }
        );
        let mut b = vec![1, 2, 3, 4, 5, 6, 7, 8, 0x10];
        b.extend_from_slice(&5u32.to_le_bytes());
        assert_eq!(
            decode_record(&b, 9, S, RecordContext::default()),
            Record::AttributeCreationOrder {
                heap_id: [1, 2, 3, 4, 5, 6, 7, 8],
                flags: 0x10,
                creation_order: 5
            }
        );
        b.extend_from_slice(&6u32.to_le_bytes());
        assert_eq!(
            decode_record(&b, 8, S, RecordContext::default()),
            Record::AttributeName {
                heap_id: [1, 2, 3, 4, 5, 6, 7, 8],
                flags: 0x10,
                creation_order: 5,
                hash: 6
            }
        );
        // Type 11 with a 3-byte chunk size (layout v4), rank 2.
        let mut b = 0x1000u64.to_le_bytes().to_vec();
        b.extend_from_slice(&[0x34, 0x12, 0x00]);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&3u64.to_le_bytes());
        b.extend_from_slice(&4u64.to_le_bytes());
        let want = Record::Chunk {
            address: 0x1000,
            size: Some(0x1234),
            filter_mask: 2,
            scaled_offsets: vec![3, 4],
        };
        for ctx in [
            RecordContext {
                rank: 2,
                chunk_size_len: 3,
            },
            RecordContext {
                rank: 2,
                chunk_size_len: 0,
            },
            RecordContext {
                rank: 0,
                chunk_size_len: 3,
            },
        ] {
            assert_eq!(decode_record(&b, 11, S, ctx), want);
        }
        assert!(matches!(
            decode_record(&b, 11, S, RecordContext::default()),
            Record::Raw(_)
        ));
        // Short or unknown records come back raw.
        assert_eq!(
            decode_record(&[1, 2], 5, S, RecordContext::default()),
            Record::Raw(vec![1, 2])
        );
        assert!(matches!(
            decode_record(&[0; 8], 10, S, RecordContext::default()),
            Record::Raw(_)
        ));
        assert!(matches!(
            decode_record(&[0; 20], 1, S, RecordContext::default()),
            Record::Raw(_)
        ));
    }
}

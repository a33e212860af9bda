//! Version 1 B-tree nodes (`TREE`): spec III.A.1, "Disk Format: Level 1A1 -
//! Version 1 B-trees".
//!
//! Type 0 trees index old-style groups (keys are local-heap offsets, leaf
//! children are `SNOD` symbol table nodes); type 1 trees index the chunks of a
//! dataset (layout v1-v3 and v4 "v1 B-tree" index; keys carry the chunk size,
//! filter mask and element coordinates). Nodes carry no checksum, so
//! [`BtreeV1Node::validate`] offers structural checks and the traversals
//! ([`crate::follow::btree_v1::collect_chunks`],
//! [`crate::follow::btree_v1::collect_group_leaves`]) are bounded and
//! cycle-safe.
//!
//! [`ChunkRecord`] is the chunk description shared by all chunk indexes.

use std::collections::HashSet;

use nom::number::complete::{le_u16, le_u32, le_u64, le_u8};

use super::{expect_signature, is_undefined, length, offset, Error, ErrorKind, Result, Sizes};

pub(crate) const STRUCTURE: &str = "v1 B-tree node";

/// Magic of every version 1 B-tree node.
pub const SIGNATURE: &[u8; 4] = b"TREE";
/// Node type 0: the tree points to group (symbol table) nodes.
pub const NODE_TYPE_GROUP: u8 = 0;
/// Node type 1: the tree points to raw data chunks.
pub const NODE_TYPE_CHUNK: u8 = 1;
/// Deepest tree the traversals accept (root level at most this).
pub const MAX_LEVEL: u8 = 64;
/// Largest dataset rank accepted for chunk keys (the spec's dataspace limit).
pub const MAX_RANK: usize = 32;

/// Bytes before the first key: signature, type, level, entries used, siblings.
fn prefix_size(sizes: Sizes) -> u64 {
    8 + 2 * u64::from(sizes.offset())
}

/// One key of a v1 B-tree node (spec III.A.1, "Key").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// Type 0: byte offset into the group's local heap of the first (or,
    /// depending on position, greatest) name in the subtree ("Size of Lengths" bytes).
    Group { heap_offset: u64 },
    /// Type 1: chunk size in bytes, filter mask (bit set = filter skipped),
    /// and rank+1 offsets: the chunk's element coordinates followed by the
    /// datatype offset, which is always 0.
    Chunk {
        size: u32,
        filter_mask: u32,
        offsets: Vec<u64>,
    },
}

/// A version 1 B-tree node (spec III.A.1, "Layout: B-tree Nodes").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtreeV1Node {
    /// 0 = group nodes, 1 = raw data chunks.
    pub node_type: u8,
    /// 0 for leaves; children of a level-n node are at level n-1.
    pub level: u8,
    /// Number of children N; the node holds N+1 keys.
    pub entries_used: u16,
    /// Relative address of the left sibling, [`super::UNDEFINED`] if none.
    pub left_sibling: u64,
    /// Relative address of the right sibling, [`super::UNDEFINED`] if none.
    pub right_sibling: u64,
    /// `entries_used + 1` keys; `keys[i]` and `keys[i+1]` bound `children[i]`.
    pub keys: Vec<Key>,
    /// `entries_used` child addresses (sub-trees, or at level 0 `SNOD` nodes / chunks).
    pub children: Vec<u64>,
}

/// A chunk found through a chunk index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRecord {
    /// Element coordinates of the chunk's first element (rank values).
    pub offsets: Vec<u64>,
    /// Filters skipped for this chunk (bit i set = filter i not applied).
    pub filter_mask: u32,
    /// Relative file address of the chunk's bytes.
    pub address: u64,
    /// Stored (possibly filtered) size of the chunk in bytes.
    pub size: u64,
}

/// Size in bytes of one key: "Size of Lengths" for groups, 8 + 8*(rank+1)
/// for chunks. `None` for an unknown node type or on overflow.
pub fn key_size(node_type: u8, sizes: Sizes, rank: usize) -> Option<u64> {
    match node_type {
        NODE_TYPE_GROUP => Some(u64::from(sizes.length())),
        NODE_TYPE_CHUNK => (rank as u64).checked_add(1)?.checked_mul(8)?.checked_add(8),
        _ => None,
    }
}

/// Bytes occupied by a node with `entries` children (and `entries + 1` keys).
/// Pass `2K` to get the allocated size of a node of a tree with degree K.
/// `rank` is ignored for group nodes. `None` on an unknown type or overflow.
pub fn node_size(node_type: u8, entries: u64, sizes: Sizes, rank: usize) -> Option<u64> {
    let key = key_size(node_type, sizes, rank)?;
    let keys = entries.checked_add(1)?.checked_mul(key)?;
    let children = entries.checked_mul(u64::from(sizes.offset()))?;
    prefix_size(sizes).checked_add(keys)?.checked_add(children)
}

/// Parses the node at the start of `data` (absolute file offset `at`).
///
/// `chunk_rank` is the dataset's rank (from its dataspace) and is required
/// for type 1 nodes; it is ignored for type 0. `entries_used` is checked
/// against the bytes available before anything is allocated.
pub fn parse(data: &[u8], at: u64, sizes: Sizes, chunk_rank: Option<usize>) -> Result<BtreeV1Node> {
    expect_signature(STRUCTURE, at, data, SIGNATURE)?;
    let nom_err = |e| Error::from_nom(STRUCTURE, at, data, e);
    let body = data.get(4..).unwrap_or_default();
    let (rest, node_type) = le_u8(body).map_err(nom_err)?;
    let (rest, level) = le_u8(rest).map_err(nom_err)?;
    let (rest, entries_used) = le_u16(rest).map_err(nom_err)?;
    let (rest, left_sibling) = offset(sizes)(rest).map_err(nom_err)?;
    let (mut rest, right_sibling) = offset(sizes)(rest).map_err(nom_err)?;

    let rank = match node_type {
        NODE_TYPE_GROUP => 0,
        NODE_TYPE_CHUNK => {
            let rank = chunk_rank.ok_or_else(|| {
                Error::invalid(STRUCTURE, at, "chunk B-tree node parsed without a rank")
            })?;
            if rank == 0 || rank > MAX_RANK {
                return Err(Error::bad_value(STRUCTURE, at, "rank", rank as u64));
            }
            rank
        }
        other => {
            return Err(Error::bad_value(
                STRUCTURE,
                at.saturating_add(4),
                "node type",
                u64::from(other),
            ))
        }
    };
    let needed = node_size(node_type, u64::from(entries_used), sizes, rank)
        .ok_or_else(|| Error::invalid(STRUCTURE, at, "node size overflows"))?;
    if needed > data.len() as u64 {
        return Err(Error::new(
            STRUCTURE,
            at,
            ErrorKind::Truncated {
                needed,
                available: data.len() as u64,
            },
        ));
    }

    let n = usize::from(entries_used);
    let mut keys = Vec::with_capacity(n + 1);
    let mut children = Vec::with_capacity(n);
    for i in 0..=n {
        let (r, key) = parse_key(rest, node_type, sizes, rank).map_err(nom_err)?;
        keys.push(key);
        rest = r;
        if i < n {
            let (r, child) = offset(sizes)(rest).map_err(nom_err)?;
            children.push(child);
            rest = r;
        }
    }
    Ok(BtreeV1Node {
        node_type,
        level,
        entries_used,
        left_sibling,
        right_sibling,
        keys,
        children,
    })
}

fn parse_key(input: &[u8], node_type: u8, sizes: Sizes, rank: usize) -> nom::IResult<&[u8], Key> {
    if node_type == NODE_TYPE_GROUP {
        let (rest, heap_offset) = length(sizes)(input)?;
        return Ok((rest, Key::Group { heap_offset }));
    }
    let (mut rest, size) = le_u32(input)?;
    let (r, filter_mask) = le_u32(rest)?;
    rest = r;
    let mut offsets = Vec::with_capacity(rank + 1);
    for _ in 0..=rank {
        let (r, v) = le_u64(rest)?;
        offsets.push(v);
        rest = r;
    }
    Ok((
        rest,
        Key::Chunk {
            size,
            filter_mask,
            offsets,
        },
    ))
}

impl BtreeV1Node {
    /// Structural checks for a node that has no checksum. `file_len` is the
    /// size of the address space (file length minus the base address).
    /// Returns one human-readable finding per problem; empty means plausible.
    pub fn validate(&self, file_len: u64) -> Vec<String> {
        let mut findings = Vec::new();
        if self.keys.len() != self.children.len() + 1
            || self.children.len() != usize::from(self.entries_used)
        {
            findings.push("key/child counts do not match entries used".to_string());
        }
        for (name, addr) in [("left", self.left_sibling), ("right", self.right_sibling)] {
            if !is_undefined(addr) && addr >= file_len {
                findings.push(format!("{name} sibling {addr:#x} beyond end of file"));
            }
        }
        if !is_undefined(self.left_sibling) && self.left_sibling == self.right_sibling {
            findings.push("left and right siblings are the same node".to_string());
        }
        let mut seen = HashSet::new();
        for (i, &child) in self.children.iter().enumerate() {
            if is_undefined(child) {
                findings.push(format!("child {i} is the undefined address"));
            } else if child >= file_len {
                findings.push(format!("child {i} at {child:#x} beyond end of file"));
            } else if !seen.insert(child) {
                findings.push(format!("child {i} at {child:#x} repeats an earlier child"));
            }
        }
        if self.node_type == NODE_TYPE_CHUNK {
            self.validate_chunk_keys(file_len, &mut findings);
        }
        findings
    }

    fn validate_chunk_keys(&self, file_len: u64, findings: &mut Vec<String>) {
        let mut previous: Option<&[u64]> = None;
        for (i, key) in self.keys.iter().enumerate() {
            let Key::Chunk {
                size, offsets: o, ..
            } = key
            else {
                findings.push(format!("key {i} is not a chunk key"));
                continue;
            };
            // The final key is a bound whose last value HDF5 sets to the
            // element size; every other key's datatype offset is 0.
            if i + 1 < self.keys.len() && o.last().is_some_and(|&last| last != 0) {
                findings.push(format!("key {i}: datatype offset is not zero"));
            }
            if let Some(p) = previous {
                if p >= o.as_slice() {
                    findings.push(format!("key {i} does not increase over key {}", i - 1));
                }
            }
            previous = Some(o);
            if self.level == 0 && i < self.children.len() {
                let addr = self.children[i];
                if *size == 0 {
                    findings.push(format!("chunk {i} has size 0"));
                } else if addr
                    .checked_add(u64::from(*size))
                    .is_none_or(|end| end > file_len)
                {
                    findings.push(format!("chunk {i} at {addr:#x} runs past end of file"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follow::btree_v1::*;
    use crate::follow::Image;
    use crate::format::test_support::hex;
    use crate::format::UNDEFINED;

    const S: Sizes = Sizes::DEFAULT;

    fn header(node_type: u8, level: u8, entries: u16, left: u64, right: u64) -> Vec<u8> {
        let mut b = b"TREE".to_vec();
        b.push(node_type);
        b.push(level);
        b.extend_from_slice(&entries.to_le_bytes());
        b.extend_from_slice(&left.to_le_bytes());
        b.extend_from_slice(&right.to_le_bytes());
        b
    }

    fn chunk_key(b: &mut Vec<u8>, size: u32, mask: u32, offsets: &[u64]) {
        b.extend_from_slice(&size.to_le_bytes());
        b.extend_from_slice(&mask.to_le_bytes());
        for o in offsets {
            b.extend_from_slice(&o.to_le_bytes());
        }
    }

    /// A rank-1 chunk node with one key per (offset, size, child) entry and a
    /// final key at `end`.
    fn chunk_node(level: u8, entries: &[(u64, u32, u64)], end: u64) -> Vec<u8> {
        let mut b = header(1, level, entries.len() as u16, UNDEFINED, UNDEFINED);
        for &(off, size, child) in entries {
            chunk_key(&mut b, size, 0, &[off, 0]);
            b.extend_from_slice(&child.to_le_bytes());
        }
        chunk_key(&mut b, 0, 0, &[end, 0]);
        b
    }

    fn group_node(level: u8, entries: &[(u64, u64)], last: u64) -> Vec<u8> {
        let mut b = header(0, level, entries.len() as u16, UNDEFINED, UNDEFINED);
        for &(key, child) in entries {
            b.extend_from_slice(&key.to_le_bytes());
            b.extend_from_slice(&child.to_le_bytes());
        }
        b.extend_from_slice(&last.to_le_bytes());
        b
    }

    /// A zero-filled file of `len` bytes with `parts` copied in at their offsets.
    fn file(len: usize, parts: &[(u64, &[u8])]) -> Vec<u8> {
        let mut f = vec![0u8; len];
        for (at, bytes) in parts {
            let at = *at as usize;
            f[at..at + bytes.len()].copy_from_slice(bytes);
        }
        f
    }

    #[test]
    fn parses_chunk_node() {
        let b = chunk_node(0, &[(0, 100, 1000), (10, 90, 2000)], 20);
        assert_eq!(b.len() as u64, node_size(1, 2, S, 1).unwrap());
        let n = parse(&b, 0, S, Some(1)).unwrap();
        assert_eq!((n.node_type, n.level, n.entries_used), (1, 0, 2));
        assert_eq!(n.children, vec![1000, 2000]);
        assert_eq!(n.left_sibling, UNDEFINED);
        assert_eq!(
            n.keys[1],
            Key::Chunk {
                size: 90,
                filter_mask: 0,
                offsets: vec![10, 0]
            }
        );
        assert_eq!(n.keys.len(), 3);
        assert!(n.validate(10_000).is_empty(), "{:?}", n.validate(10_000));
    }

    #[test]
    fn parses_group_node() {
        let b = group_node(0, &[(0, 500), (8, 700)], 16);
        assert_eq!(b.len() as u64, node_size(0, 2, S, 99).unwrap());
        let n = parse(&b, 0, S, None).unwrap();
        assert_eq!(n.children, vec![500, 700]);
        assert_eq!(n.keys[2], Key::Group { heap_offset: 16 });
        assert!(n.validate(1000).is_empty());
    }

    #[test]
    fn small_sizes() {
        let s = Sizes::new(4, 2).unwrap();
        let mut b = b"TREE\x00\x00\x01\x00".to_vec();
        b.extend_from_slice(&[0xFF; 8]);
        b.extend_from_slice(&[0, 0, 0x10, 0, 0, 0, 4, 0]);
        let n = parse(&b, 0, s, None).unwrap();
        assert_eq!(n.children, vec![0x10]);
        assert_eq!(n.left_sibling, UNDEFINED);
        assert_eq!(n.keys[1], Key::Group { heap_offset: 4 });
    }

    #[test]
    fn truncation_never_panics() {
        let c = chunk_node(0, &[(0, 100, 1000), (10, 90, 2000)], 20);
        let g = group_node(1, &[(0, 500)], 8);
        for (b, rank) in [(&c, Some(1)), (&g, None)] {
            for len in 0..b.len() {
                assert!(parse(&b[..len], 7, S, rank).is_err(), "prefix {len}");
            }
            assert!(parse(b, 7, S, rank).is_ok());
        }
    }

    #[test]
    fn rejects_bad_input() {
        let mut b = group_node(0, &[(0, 500)], 8);
        b[0] = b'X';
        assert!(matches!(
            parse(&b, 0, S, None).unwrap_err().kind,
            ErrorKind::BadSignature { .. }
        ));
        let mut b = group_node(0, &[(0, 500)], 8);
        b[4] = 2;
        assert!(parse(&b, 0, S, None).is_err());
        let c = chunk_node(0, &[(0, 1, 2)], 3);
        assert!(parse(&c, 0, S, None).is_err(), "chunk node needs a rank");
        assert!(parse(&c, 0, S, Some(0)).is_err());
        assert!(parse(&c, 0, S, Some(1000)).is_err());
        // Huge entry count with few bytes: truncated, nothing allocated.
        let mut b = group_node(0, &[(0, 500)], 8);
        b[6] = 0xFF;
        b[7] = 0xFF;
        let e = parse(&b, 40, S, None).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Truncated { .. }), "{e}");
        assert_eq!(e.offset, 40);
    }

    #[test]
    fn validate_reports_structural_faults() {
        let b = chunk_node(0, &[(10, 100, 1000), (5, 0, 1000), (20, 8, 9_000)], 30);
        let n = parse(&b, 0, S, Some(1)).unwrap();
        let f = n.validate(5000);
        let joined = f.join("; ");
        assert!(joined.contains("repeats"), "{joined}");
        assert!(joined.contains("does not increase"), "{joined}");
        assert!(joined.contains("size 0"), "{joined}");
        assert!(joined.contains("beyond end of file"), "{joined}");
        let mut b = header(0, 0, 1, 4, 4);
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&UNDEFINED.to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        let n = parse(&b, 0, S, None).unwrap();
        let joined = n.validate(100).join("; ");
        assert!(
            joined.contains("same node") && joined.contains("undefined"),
            "{joined}"
        );
    }

    #[test]
    fn collects_chunks_through_two_levels() {
        let leaf_a = chunk_node(0, &[(0, 4, 600), (2, 4, 604)], 4);
        let leaf_b = chunk_node(0, &[(4, 4, 608)], 6);
        let root = chunk_node(1, &[(0, 0, 200), (4, 0, 400)], 6);
        let f = file(1000, &[(0, &root), (200, &leaf_a), (400, &leaf_b)]);
        let img = Image::new(&f, 0, S);
        let (chunks, errors) = collect_chunks(&img, 0, 1);
        assert!(errors.is_empty(), "{errors:?}");
        let got: Vec<_> = chunks
            .iter()
            .map(|c| (c.offsets[0], c.address, c.size))
            .collect();
        assert_eq!(got, vec![(0, 600, 4), (2, 604, 4), (4, 608, 4)]);
    }

    #[test]
    fn traversal_survives_cycles_and_bad_children() {
        // Root (level 1) whose first child is itself, second a leaf, third
        // garbage, fourth the leaf again, fifth a leaf at the wrong level.
        let leaf = chunk_node(0, &[(0, 4, 900)], 2);
        let deep = chunk_node(1, &[(0, 4, 900)], 2);
        let root = chunk_node(
            1,
            &[
                (0, 0, 0),
                (1, 0, 300),
                (2, 0, 500),
                (3, 0, 300),
                (4, 0, 700),
            ],
            9,
        );
        let f = file(1000, &[(0, &root), (300, &leaf), (700, &deep)]);
        let img = Image::new(&f, 0, S);
        let (chunks, errors) = collect_chunks(&img, 0, 1);
        assert_eq!(chunks.len(), 1);
        assert_eq!(errors.len(), 4, "{errors:?}");
        // A node that is its own child at level 0 -> level 1 -> ... cannot
        // recurse; siblings that point at each other are never followed.
        let mut a = chunk_node(0, &[(0, 4, 900)], 2);
        a[8..16].copy_from_slice(&100u64.to_le_bytes());
        a[16..24].copy_from_slice(&100u64.to_le_bytes());
        let mut b = a.clone();
        b[8..16].copy_from_slice(&0u64.to_le_bytes());
        b[16..24].copy_from_slice(&0u64.to_le_bytes());
        let f = file(1000, &[(0, &a), (100, &b)]);
        let (chunks, errors) = collect_chunks(&Image::new(&f, 0, S), 0, 1);
        assert_eq!((chunks.len(), errors.len()), (1, 0));
        // Undefined and out-of-file roots.
        let (c, e) = collect_chunks(&img, UNDEFINED, 1);
        assert!(c.is_empty() && e.len() == 1);
        let (c, e) = collect_group_leaves(&img, 5000);
        assert!(c.is_empty() && e.len() == 1);
    }

    #[test]
    fn deep_self_similar_tree_is_bounded() {
        // 200 nodes, each at level 200-i pointing to the next: the root level
        // exceeds MAX_LEVEL, so nothing is walked.
        let mut parts = Vec::new();
        for i in 0..200u64 {
            parts.push(chunk_node((200 - i) as u8, &[(0, 0, (i + 1) * 80)], 1));
        }
        let refs: Vec<(u64, &[u8])> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u64 * 80, p.as_slice()))
            .collect();
        let f = file(200 * 80 + 80, &refs);
        let (c, e) = collect_chunks(&Image::new(&f, 0, S), 0, 1);
        assert!(c.is_empty());
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn collects_group_leaves() {
        let leaf = group_node(0, &[(0, 800), (8, 840), (16, 5000)], 24);
        let root = group_node(1, &[(0, 300)], 24);
        let f = file(1000, &[(100, &root), (300, &leaf)]);
        let (leaves, errors) = collect_group_leaves(&Image::new(&f, 0, S), 100);
        assert_eq!(leaves, vec![800, 840]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        // With a base address: relative addresses shift by the base.
        let mut g = vec![0u8; 16];
        g.extend_from_slice(&f);
        let (leaves, errors) = collect_group_leaves(&Image::new(&g, 16, S), 100);
        assert_eq!((leaves.len(), errors.len()), (2, 1));
    }

    fn unhex(parts: &[&str]) -> Vec<u8> {
        hex(parts.concat())
    }

    /// Nodes of a file written by h5py 3.16 / HDF5 2.0 (default libver):
    /// `f.create_dataset('c', shape=(6, 8), chunks=(3, 4), dtype='i2')` filled
    /// with data, and a group `g` with three subgroups. File length 7256.
    /// `dset.id.get_chunk_info(i)` gave offsets (0,0) (0,4) (3,0) (3,4) at
    /// 7160, 7184, 7208, 7232, 24 bytes each, filter mask 0.
    #[test]
    fn real_h5py_trees() {
        let chunk_tree = unhex(&[
            "5452454501000400ffffffffffffffffffffffffffffffff180000000000000000000000000000000000000000000000",
            "0000000000000000f81b0000000000001800000000000000000000000000000004000000000000000000000000000000",
            "101c0000000000001800000000000000030000000000000000000000000000000000000000000000281c000000000000",
            "1800000000000000030000000000000004000000000000000000000000000000401c0000000000000000000000000000",
            "030000000000000004000000000000000200000000000000",
        ]);
        let group_tree = unhex(&[
            "5452454500000100ffffffffffffffffffffffffffffffff000000000000000030150000000000001800000000000000",
        ]);
        let f = file(7256, &[(1400, &chunk_tree), (4056, &group_tree)]);
        let img = Image::new(&f, 0, S);
        let (chunks, errors) = collect_chunks(&img, 1400, 2);
        assert!(errors.is_empty(), "{errors:?}");
        let got: Vec<_> = chunks
            .iter()
            .map(|c| (c.offsets.clone(), c.address, c.size, c.filter_mask))
            .collect();
        assert_eq!(
            got,
            vec![
                (vec![0, 0], 7160, 24, 0),
                (vec![0, 4], 7184, 24, 0),
                (vec![3, 0], 7208, 24, 0),
                (vec![3, 4], 7232, 24, 0),
            ]
        );
        let node = parse(&chunk_tree, 1400, S, Some(2)).unwrap();
        assert!(node.validate(7256).is_empty(), "{:?}", node.validate(7256));
        let (leaves, errors) = collect_group_leaves(&img, 4056);
        assert!(errors.is_empty());
        assert_eq!(leaves, vec![0x1530]);
    }

    /// Random single-byte corruptions of a valid two-level tree never panic.
    #[test]
    fn corruption_never_panics() {
        let leaf_a = chunk_node(0, &[(0, 4, 600), (2, 4, 604)], 4);
        let leaf_b = chunk_node(0, &[(4, 4, 608)], 6);
        let root = chunk_node(1, &[(0, 0, 200), (4, 0, 400)], 6);
        let f = file(700, &[(0, &root), (200, &leaf_a), (400, &leaf_b)]);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut g = f.clone();
            let pos = (x % 500) as usize;
            g[pos] = (x >> 32) as u8;
            let img = Image::new(&g, 0, S);
            let _ = collect_chunks(&img, 0, 1);
            let _ = collect_group_leaves(&img, 0);
            if let Ok(n) = parse(&g, 0, S, Some(1)) {
                let _ = n.validate(700);
            }
        }
    }

    /// The 1100-link group of the shared fixtures has a multi-level group
    /// tree. Runs only where `testdata/many_members_earliest.h5` exists.
    #[test]
    fn real_deep_group_tree_from_fixture_if_present() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/many_members_earliest.h5");
        let Ok(bytes) = std::fs::read(&path) else {
            return;
        };
        let img = Image::new(&bytes, 0, S);
        let root = memchr::memmem::find_iter(&bytes, SIGNATURE)
            .filter_map(|at| {
                parse(&bytes[at..], at as u64, S, None)
                    .ok()
                    .map(|n| (n.level, at))
            })
            .max()
            .unwrap();
        assert!(root.0 >= 1);
        let (leaves, errors) = collect_group_leaves(&img, root.1 as u64);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(leaves.len() >= 1100 / 16);
        for leaf in leaves {
            assert_eq!(&bytes[leaf as usize..leaf as usize + 4], b"SNOD");
        }
    }
}

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
    use crate::format::test_support::btree_v1::*;
    use crate::format::UNDEFINED;

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
}

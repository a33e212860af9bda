//! Traversal of version 1 B-trees (spec III.A.1): the group tree's symbol-table
//! nodes and the chunk tree's records, from a root address through the file
//! image, with cycle, level and size bounds. Nodes are parsed by
//! [`crate::format::btree_v1`].

use std::collections::HashSet;

use super::Image;
use crate::format::btree_v1::*;
use crate::format::{is_undefined, Error};

/// Walks the tree from `root`, calling `leaf` for each readable level-0 node
/// (and pushing every node it accepts, at any level, to `nodes`).
/// Every node is visited at most once, each child must be exactly one level
/// below its parent, the root level is at most [`MAX_LEVEL`], and the total
/// number of entries read is bounded by what the file could hold.
fn walk(
    image: &Image,
    root: u64,
    node_type: u8,
    rank: Option<usize>,
    errors: &mut Vec<Error>,
    mut nodes: Option<&mut Vec<u64>>,
    mut leaf: impl FnMut(&BtreeV1Node, &mut Vec<Error>),
) {
    let sizes = image.sizes;
    let per_entry = key_size(node_type, sizes, rank.unwrap_or(0))
        .unwrap_or(1)
        .saturating_add(u64::from(sizes.offset()));
    let mut budget = image.len() / per_entry.max(1) + 1;
    let mut visited = HashSet::new();
    let mut stack: Vec<(u64, Option<u8>)> = vec![(root, None)];
    while let Some((addr, expected_level)) = stack.pop() {
        if !visited.is_empty() {
            image.release();
        }
        let abs = image.absolute(addr).unwrap_or(addr);
        if !visited.insert(addr) {
            errors.push(Error::invalid(
                STRUCTURE,
                abs,
                "node reached twice (cycle or shared subtree); skipped",
            ));
            continue;
        }
        let node = match image
            .at(STRUCTURE, addr)
            .and_then(|data| parse(data, abs, sizes, rank))
        {
            Ok(node) => node,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if node.node_type != node_type {
            errors.push(Error::bad_value(
                STRUCTURE,
                abs,
                "node type",
                u64::from(node.node_type),
            ));
            continue;
        }
        match expected_level {
            Some(level) if node.level != level => {
                errors.push(Error::invalid(
                    STRUCTURE,
                    abs,
                    format!("level {} where {level} was expected", node.level),
                ));
                continue;
            }
            None if node.level > MAX_LEVEL => {
                errors.push(Error::bad_value(
                    STRUCTURE,
                    abs,
                    "level",
                    u64::from(node.level),
                ));
                continue;
            }
            _ => {}
        }
        let entries = u64::from(node.entries_used);
        if entries > budget {
            errors.push(Error::invalid(
                STRUCTURE,
                abs,
                "more entries than the file can hold; traversal stopped",
            ));
            return;
        }
        budget -= entries;
        known(image, &node, addr, rank);
        if let Some(n) = nodes.as_deref_mut() {
            n.push(addr);
        }
        if node.level == 0 {
            leaf(&node, errors);
            continue;
        }
        for &child in node.children.iter().rev() {
            if is_undefined(child) {
                errors.push(Error::invalid(STRUCTURE, abs, "undefined child address"));
            } else {
                stack.push((child, Some(node.level - 1)));
            }
        }
    }
}

/// Records the accepted `node` at `addr` as known metadata
/// ([`super::Known`]) at its allocated size (spec III.A.1: libhdf5
/// allocates every node of a tree with room for 2K children and writes the
/// unused room as zeros), see [`allocated`].
fn known(image: &Image, node: &BtreeV1Node, addr: u64, rank: Option<usize>) {
    let Some(known) = image.known else {
        return;
    };
    let k = known.k.map(|k| match node.node_type {
        NODE_TYPE_GROUP => k.group_internal,
        _ => k.chunk,
    });
    let size = |n: u64| node_size(node.node_type, n, image.sizes, rank.unwrap_or(0));
    let used = size(u64::from(node.entries_used));
    let full = k.and_then(|k| size(2 * u64::from(k)));
    if let Some(len) = allocated(image, addr, used, full) {
        image.known(STRUCTURE, addr, len);
    }
}

/// The size of a node or `SNOD` at `addr` that uses `used` bytes of the
/// `full` its K gives: `full` when the rest is all zero as libhdf5 leaves
/// it (in the file), or when the node claims more than K allows (damaged:
/// its bytes past `full` are not its own); `used` when the rest holds
/// other bytes (a damaged K), or without a known K.
fn allocated(image: &Image, addr: u64, used: Option<u64>, full: Option<u64>) -> Option<u64> {
    let (Some(used), Some(full)) = (used, full) else {
        return used;
    };
    if used >= full {
        return Some(full);
    }
    let abs = image.absolute(addr)?;
    let rest = |n: u64| usize::try_from(abs.saturating_add(n)).unwrap_or(usize::MAX);
    let tail = image
        .bytes
        .get(rest(used).min(image.bytes.len())..rest(full).min(image.bytes.len()))
        .unwrap_or_default();
    let zero = match image.known {
        Some(k) => k.zero_tail((abs, used, full), tail),
        None => tail.iter().all(|&b| b == 0),
    };
    Some(if zero { full } else { used })
}

/// Records the `SNOD` at `addr` holding `entries` symbols as known
/// metadata: room for 2K entries (spec III.B), see [`allocated`].
pub fn known_snod(image: &Image, addr: u64, entries: usize) {
    use crate::format::symbol_table_node::{entry_size, PREFIX_SIZE};
    let Some(known) = image.known else {
        return;
    };
    let size = |n: u64| {
        n.checked_mul(entry_size(image.sizes))?
            .checked_add(PREFIX_SIZE)
    };
    let full = known.k.and_then(|k| size(2 * u64::from(k.group_leaf)));
    if let Some(len) = allocated(image, addr, size(entries as u64), full) {
        image.known("SNOD", addr, len);
    }
}

/// Every chunk indexed by the type 1 tree at `root` (relative address) of a
/// dataset of rank `rank`, in key order, plus every problem met on the way.
/// Chunks whose bytes would lie outside the file are reported, not returned.
pub fn collect_chunks(image: &Image, root: u64, rank: usize) -> (Vec<ChunkRecord>, Vec<Error>) {
    let mut chunks = Vec::new();
    let mut errors = Vec::new();
    walk(
        image,
        root,
        NODE_TYPE_CHUNK,
        Some(rank),
        &mut errors,
        None,
        |node, errors| {
            for (key, &address) in node.keys.iter().zip(&node.children) {
                let Key::Chunk {
                    size,
                    filter_mask,
                    offsets,
                } = key
                else {
                    continue;
                };
                let size = u64::from(*size);
                if !image.contains(address, size) {
                    errors.push(Error::invalid(
                        "chunk",
                        image.absolute(address).unwrap_or(address),
                        format!("chunk of {size} bytes lies outside the file"),
                    ));
                    continue;
                }
                chunks.push(ChunkRecord {
                    offsets: offsets.iter().take(rank).copied().collect(),
                    filter_mask: *filter_mask,
                    address,
                    size,
                });
            }
        },
    );
    (chunks, errors)
}

/// Relative addresses of every node (internal and leaf) of the type 1
/// (chunk) tree at `root` of a dataset of rank `rank` that the walk of
/// [`collect_chunks`] reads and accepts (signature, node type, level).
pub fn chunk_nodes(image: &Image, root: u64, rank: usize) -> Vec<u64> {
    let mut nodes = Vec::new();
    walk(
        image,
        root,
        NODE_TYPE_CHUNK,
        Some(rank),
        &mut Vec::new(),
        Some(&mut nodes),
        |_, _| {},
    );
    nodes
}

/// Relative addresses of the `SNOD` nodes of the type 0 (group) tree at
/// `root`, in key order, plus every problem met on the way.
pub fn collect_group_leaves(image: &Image, root: u64) -> (Vec<u64>, Vec<Error>) {
    let mut leaves = Vec::new();
    let mut errors = Vec::new();
    walk(
        image,
        root,
        NODE_TYPE_GROUP,
        None,
        &mut errors,
        None,
        |node, errors| {
            for &address in &node.children {
                if image.contains(address, 8) {
                    leaves.push(address);
                } else {
                    errors.push(Error::invalid(
                        "symbol table node",
                        image.absolute(address).unwrap_or(address),
                        "address outside the file",
                    ));
                }
            }
        },
    );
    (leaves, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follow::Image;
    use crate::format::test_support::btree_v1::*;
    use crate::format::test_support::hex;
    use crate::format::UNDEFINED;

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
    fn chunk_nodes_lists_every_node_the_walk_accepts() {
        let leaf_a = chunk_node(0, &[(0, 4, 600), (2, 4, 604)], 4);
        let leaf_b = chunk_node(0, &[(4, 4, 608)], 6);
        // The root's third child is not a node: not listed.
        let root = chunk_node(1, &[(0, 0, 200), (4, 0, 400), (6, 0, 800)], 6);
        let f = file(1000, &[(0, &root), (200, &leaf_a), (400, &leaf_b)]);
        let img = Image::new(&f, 0, S);
        let mut nodes = chunk_nodes(&img, 0, 1);
        nodes.sort_unstable();
        assert_eq!(nodes, vec![0, 200, 400]);
    }

    /// A node reached many times (a tree shared, a child listed twice)
    /// has the room past its entries scanned once: with K = 65535 that
    /// room is megabytes, and the visits are the input's.
    #[test]
    fn a_node_reached_again_is_not_scanned_again() {
        let leaf = chunk_node(0, &[(0, 4, 600)], 2);
        let f = file(1 << 20, &[(0, &leaf)]);
        let known = crate::follow::Known::new(Some(crate::follow::BtreeDegrees {
            chunk: u16::MAX,
            ..crate::follow::BtreeDegrees::DEFAULT
        }));
        let mut img = Image::new(&f, 0, S);
        img.known = Some(&known);
        for _ in 0..100 {
            collect_chunks(&img, 0, 1);
        }
        let scanned = known.scanned.load(std::sync::atomic::Ordering::Relaxed);
        assert!(scanned < 1 << 20, "{scanned} bytes scanned");
        // Recorded at its allocated size (the room is all zero).
        let spans = known.into_spans();
        assert!(spans.len() == 1 && spans[0].1 > 1 << 20, "{spans:?}");
    }

    #[test]
    fn nodes_are_known_at_their_allocated_size() {
        let leaf = chunk_node(0, &[(0, 4, 600)], 2);
        let f = file(1000, &[(0, &leaf)]);
        for (k, len) in [(None, 8 + 16 + 2 * 24 + 8), (Some(32), 2096)] {
            let known = crate::follow::Known::new(k.map(|chunk| crate::follow::BtreeDegrees {
                chunk,
                ..crate::follow::BtreeDegrees::DEFAULT
            }));
            let mut img = Image::new(&f, 0, S);
            img.known = Some(&known);
            collect_chunks(&img, 0, 1);
            assert_eq!(known.into_spans(), vec![(0, len, STRUCTURE)]);
        }
        // Other bytes in the room K gives (a damaged K): the used size.
        let mut g = f.clone();
        g[500] = 1;
        let known = crate::follow::Known::new(Some(crate::follow::BtreeDegrees::DEFAULT));
        let mut img = Image::new(&g, 0, S);
        img.known = Some(&known);
        collect_chunks(&img, 0, 1);
        assert_eq!(known.into_spans(), vec![(0, 80, STRUCTURE)]);
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
    /// tree (`testdata/many_members_earliest.h5`).
    #[test]
    fn real_deep_group_tree_from_fixture() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/many_members_earliest.h5");
        let bytes = std::fs::read(&path).expect("the fixture is in the repository");
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

//! Traversal of version 1 B-trees (spec III.A.1): the group tree's symbol-table
//! nodes and the chunk tree's records, from a root address through the file
//! image, with cycle, level and size bounds. Nodes are parsed by
//! [`crate::format::btree_v1`].

use std::collections::HashSet;

use super::Image;
use crate::format::btree_v1::*;
use crate::format::{is_undefined, Error};

/// Walks the tree from `root`, calling `leaf` for each readable level-0 node.
/// Every node is visited at most once, each child must be exactly one level
/// below its parent, the root level is at most [`MAX_LEVEL`], and the total
/// number of entries read is bounded by what the file could hold.
fn walk(
    image: &Image,
    root: u64,
    node_type: u8,
    rank: Option<usize>,
    errors: &mut Vec<Error>,
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

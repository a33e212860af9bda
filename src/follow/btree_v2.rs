//! Traversal of version 2 B-trees (spec III.A.2): every record reachable from
//! a header, in key order, with visit, depth and size bounds. Headers, nodes
//! and records are parsed by [`crate::format::btree_v2`].

use std::collections::HashSet;

use super::Image;
use crate::format::btree_v2::*;
use crate::format::{is_undefined, Error};

/// Reads the header at `header_addr` (relative) and every record reachable
/// from its root, in key order. Each node is visited once, children must sit
/// exactly one level lower, the walk never goes deeper than the header's
/// depth and reads at most as many nodes as the file can hold. Nodes with a
/// bad checksum or any other fault are reported and skipped; the walk goes
/// on with their siblings. A header with a bad checksum is reported and still
/// used (the nodes' own checksums then decide).
pub fn collect_records(
    image: &Image,
    header_addr: u64,
    ctx: RecordContext,
) -> (Option<BtreeV2Header>, Vec<Record>, Vec<Error>) {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let sizes = image.sizes;
    let habs = image.absolute(header_addr).unwrap_or(header_addr);
    let hdr = match image
        .at(HEADER, header_addr)
        .and_then(|d| parse_header(d, habs, sizes))
    {
        Ok(h) => h,
        Err(e) => return (None, records, vec![e]),
    };
    if !hdr.checksum_ok {
        errors.push(Error::invalid(
            HEADER,
            habs,
            "checksum mismatch; header used anyway",
        ));
    }
    let tree = match Tree::new(hdr.clone(), habs, sizes, ctx) {
        Ok(t) => t,
        Err(e) => {
            errors.push(e);
            return (Some(hdr), records, errors);
        }
    };
    if is_undefined(hdr.root_address) {
        return (Some(hdr), records, errors);
    }
    let mut budget = image.len() / u64::from(hdr.node_size).max(1) + 1;
    let mut visited = HashSet::new();
    // Work items: a node to open, or a record of an already opened internal
    // node to emit between its children (keeps key order).
    enum Item {
        Node(u64, u16, u64),
        Emit(Record),
    }
    let mut stack = vec![Item::Node(
        hdr.root_address,
        hdr.depth,
        u64::from(hdr.root_records),
    )];
    while let Some(item) = stack.pop() {
        let (addr, depth, nrec) = match item {
            Item::Emit(r) => {
                records.push(r);
                continue;
            }
            Item::Node(a, d, n) => (a, d, n),
        };
        let abs = image.absolute(addr).unwrap_or(addr);
        let structure = if depth == 0 { LEAF } else { INTERNAL };
        if !visited.insert(addr) {
            errors.push(Error::invalid(
                structure,
                abs,
                "node reached twice; skipped",
            ));
            continue;
        }
        if budget == 0 {
            errors.push(Error::invalid(
                structure,
                abs,
                "more nodes than the file can hold; stopped",
            ));
            break;
        }
        budget -= 1;
        let node = match image
            .at(structure, addr)
            .and_then(|d| parse_node(d, abs, &tree, depth, nrec))
        {
            Ok(n) if n.checksum_ok => n,
            Ok(_) => {
                errors.push(Error::invalid(
                    structure,
                    abs,
                    "checksum mismatch; node skipped",
                ));
                continue;
            }
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if depth == 0 {
            records.extend(node.records);
            continue;
        }
        // Push in reverse so that child 0, record 0, child 1, ... pop in order.
        let mut items = Vec::with_capacity(node.children.len() * 2);
        let mut recs = node.records.into_iter();
        for (i, child) in node.children.iter().enumerate() {
            if i > 0 {
                if let Some(r) = recs.next() {
                    items.push(Item::Emit(r));
                }
            }
            if is_undefined(child.address) {
                errors.push(Error::invalid(structure, abs, "undefined child address"));
            } else {
                items.push(Item::Node(child.address, depth - 1, child.records));
            }
        }
        stack.extend(items.into_iter().rev());
    }
    (Some(hdr), records, errors)
}

//! Chunk index records beyond a stale index root (issue 13, item 1).
//!
//! A killed appending writer leaves a header and an index root from its
//! last flush (or from a metadata-cache eviction) while newer index blocks
//! reached the disk on their own: libhdf5 evicts them from its metadata
//! cache when it needs the room, and the root that would list them stays in
//! the cache. For every chunked dataset of an inventory this module finds
//! such records by signature and adds the chunks they prove:
//!
//! - extensible array (spec VII.D): an `EADB` carries its header's address
//!   (the layout message names the `EAHD`) and its block offset, which gives
//!   its position in the array
//!   ([`follow::extensible_array::collect_orphan_data_blocks`]);
//! - version-1 B-tree chunk nodes (spec III.A.1, node type 1): a node
//!   carries each chunk's offset but not its owner. Nodes are tied to a
//!   dataset through its index: child pointers from the root, then left and
//!   right sibling pointers (libhdf5 links every node of a level), so a new
//!   leaf whose left sibling is a leaf of the index belongs to it. A leaf no
//!   pointer reaches is tied to the only dataset whose rank, chunk shape,
//!   chunk sizes and filter mask fit it, if exactly one does and none of
//!   its chunks is listed by any dataset (then it is a stale copy of a leaf
//!   of that index); never when an object header of the file is lost (its
//!   dataset could own the leaf). Leaves that fit several datasets are
//!   reported and not used.
//!
//! Newest record per position: a v1 B-tree split moves the upper half of a
//! leaf into a new right sibling (libhdf5 H5B split), so when two leaves
//! list one offset with different chunks, the one further right along the
//! sibling chain holds the newer record and the other is a leaf written
//! before its split. Extensible-array blocks never move: two blocks for one
//! position are ambiguous and neither is used.
//!
//! - fixed array (spec VII.C): a header written before its data block was
//!   allocated lists none; the `FADB` naming it (it carries its header's
//!   address) is read ([`follow::fixed_array::collect_orphan_data_block`]).
//!
//! Version-2 B-tree chunk records (types 10/11) are not searched yet.

use std::collections::{HashMap, HashSet};

use crate::follow::chunks::{coords, ea_coords, ea_grid, grid, max_extent};
use crate::follow::{self, Image};
use crate::format::btree_v1::{self, BtreeV1Node, Key};
use crate::format::message::data_layout::{ChunkIndex, LayoutClass};
use crate::format::{is_undefined, Sizes};
use crate::inventory::{
    ChunkRecordFound, ChunkRef, Dataset, Inventory, Object, ObjectKind, Problem, ProblemKind,
    Status, Tie,
};
use crate::walk::dataset::{grow_extent, recount};

use super::signatures::{find_signatures, Kind};

/// Most sibling steps taken when comparing two leaves' positions.
const MAX_SIBLING_STEPS: usize = 1 << 16;

/// Adds to every chunked dataset of `inv` the chunks that index records
/// its root does not reach prove (see the module docs), grows its extent
/// to cover them and marks it partial with the reason.
pub fn extend(bytes: &[u8], inv: &mut Inventory) {
    let (base, sizes) = match &inv.superblock {
        Some(sb) => match Sizes::new(sb.size_of_offsets, sb.size_of_lengths) {
            Ok(s) => (sb.base_address, s),
            Err(_) => return,
        },
        None => (0, Sizes::DEFAULT),
    };
    let image = Image::new(bytes, base, sizes);
    let hits = find_signatures(bytes);
    let of = |k: Kind| -> Vec<u64> {
        hits.iter()
            .filter(|h| h.kind == k)
            .map(|h| h.offset)
            .collect()
    };
    let (eadb, tree, fadb) = (of(Kind::Eadb), of(Kind::Tree), of(Kind::Fadb));
    let targets: Vec<usize> = (0..inv.objects.len())
        .filter(|&i| chunked(&inv.objects[i]).is_some())
        .collect();
    if !eadb.is_empty() {
        for &i in &targets {
            extensible(&image, &eadb, &mut inv.objects[i]);
        }
    }
    if !fadb.is_empty() {
        for &i in &targets {
            fixed(&image, &fadb, &mut inv.objects[i]);
        }
    }
    if !tree.is_empty() {
        let mut v1 = V1::new(&image, &tree);
        v1.run(inv, &targets);
    }
}

/// The dataset of a chunked dataset object worth extending.
fn chunked(o: &Object) -> Option<&Dataset> {
    if o.kind != ObjectKind::Dataset || o.status == Status::Lost || o.hard_link_of.is_some() {
        return None;
    }
    let ds = o.dataset.as_ref()?;
    matches!(ds.layout.class, LayoutClass::Chunked { .. }).then_some(ds)
}

fn chunk_dims(ds: &Dataset) -> Option<(&[u64], &ChunkIndex)> {
    match &ds.layout.class {
        LayoutClass::Chunked { dims, index, .. } => Some((dims, index)),
        _ => None,
    }
}

/// Adds `found` (chunk, record) to the dataset, recounts and grows it.
fn add(image: &Image, o: &mut Object, found: Vec<(ChunkRef, ChunkRecordFound)>) {
    if found.is_empty() {
        return;
    }
    let Some(mut ds) = o.dataset.take() else {
        return;
    };
    let first = ds.chunks.len();
    let n = found.len();
    let mut by: HashMap<(&'static str, Tie), (u64, HashSet<u64>)> = HashMap::new();
    for (c, r) in found {
        let e = by.entry((r.structure, r.tie)).or_default();
        e.0 += 1;
        e.1.insert(r.at);
        ds.chunks.push(c);
        ds.beyond_index.records.push(r);
    }
    let added: Vec<usize> = (first..first + n).collect();
    recount(image, &mut ds, &added, o);
    let mut parts: Vec<String> = by
        .iter()
        .map(|((s, tie), (c, blocks))| {
            let why = match tie {
                Tie::Owner => "naming the dataset's index header",
                Tie::Sibling => "linked by sibling pointers to the dataset's index",
                Tie::Unique => {
                    "INFERRED owner: no pointer links them, the dataset is the only one they fit"
                }
            };
            format!("{c} from {} {s} node(s) {why}", blocks.len())
        })
        .collect();
    parts.sort();
    o.damage(
        Status::Partial,
        Problem::new(
            ProblemKind::Inferred,
            image.absolute(o.address),
            "chunk index",
            format!(
                "the index root (stale: the writer was not closed) does not reach {n} chunk(s) \
                 whose positions index records on disk prove ({}); they are added",
                parts.join("; ")
            ),
        ),
    );
    grow_extent(image, &mut ds, o);
    o.dataset = Some(ds);
}

// ------------------------------------------------------- extensible array

fn extensible(image: &Image, eadb: &[u64], o: &mut Object) {
    let Some(ds) = chunked(o) else {
        return;
    };
    let Some((dims, ChunkIndex::ExtensibleArray { address, .. })) = chunk_dims(ds) else {
        return;
    };
    if is_undefined(*address) {
        return;
    }
    let orphans = follow::extensible_array::collect_orphan_data_blocks(image, *address, eadb);
    let unfiltered = ds.chunk_bytes(dims).unwrap_or(0);
    let grid = ea_grid(&ds.dataspace, dims);
    let known: HashMap<&[u64], u64> = ds
        .chunks
        .iter()
        .map(|c| (c.offset.as_slice(), c.address))
        .collect();
    let mut found = Vec::new();
    let mut problems: Vec<Problem> = orphans.errors.into_iter().map(Problem::from).collect();
    for (at, elements) in orphans.blocks {
        for e in elements {
            let offset = grid
                .as_ref()
                .and_then(|(g, unlim)| ea_coords(e.index, g, *unlim, dims));
            let Some(offset) = offset else {
                problems.push(Problem::new(
                    ProblemKind::BadValue,
                    Some(at),
                    "EADB",
                    format!("element {} outside the chunk grid", e.index),
                ));
                continue;
            };
            match known.get(offset.as_slice()) {
                Some(&a) if a == e.address => continue,
                Some(&a) => {
                    problems.push(Problem::new(
                        ProblemKind::Ambiguous,
                        Some(at),
                        "EADB",
                        format!(
                            "chunk {offset:?} at {:#x} also listed at {a:#x} by the index: \
                             not used (ambiguous)",
                            e.address
                        ),
                    ));
                    continue;
                }
                None => {}
            }
            let record = ChunkRecordFound {
                offset: offset.clone(),
                structure: "EADB",
                at,
                tie: Tie::Owner,
            };
            let chunk = ChunkRef {
                offset,
                address: e.address,
                size: e.size.unwrap_or(unfiltered),
                filter_mask: e.filter_mask,
                present: false,
            };
            found.push((chunk, record));
        }
    }
    for p in problems {
        o.damage(Status::Partial, p);
    }
    add(image, o, found);
}

// ------------------------------------------------------------ fixed array

fn fixed(image: &Image, fadb: &[u64], o: &mut Object) {
    let Some(ds) = chunked(o) else {
        return;
    };
    let Some((dims, ChunkIndex::FixedArray { address, .. })) = chunk_dims(ds) else {
        return;
    };
    if is_undefined(*address) || !ds.chunks.is_empty() {
        return;
    }
    let (block, errors) = follow::fixed_array::collect_orphan_data_block(image, *address, fadb);
    let unfiltered = ds.chunk_bytes(dims).unwrap_or(0);
    let g = grid(&max_extent(&ds.dataspace), dims).unwrap_or_default();
    let mut found = Vec::new();
    let mut problems: Vec<Problem> = errors.into_iter().map(Problem::from).collect();
    if let Some((at, elements)) = block {
        for e in elements {
            let Some(offset) = coords(e.index, &g, dims) else {
                problems.push(Problem::new(
                    ProblemKind::BadValue,
                    Some(at),
                    "FADB",
                    format!("element {} outside the chunk grid", e.index),
                ));
                continue;
            };
            found.push((
                ChunkRef {
                    offset: offset.clone(),
                    address: e.address,
                    size: e.size.unwrap_or(unfiltered),
                    filter_mask: e.filter_mask,
                    present: false,
                },
                ChunkRecordFound {
                    offset,
                    structure: "FADB",
                    at,
                    tie: Tie::Owner,
                },
            ));
        }
    }
    for p in problems {
        o.damage(Status::Partial, p);
    }
    add(image, o, found);
}

// ------------------------------------------------- version-1 B-tree nodes

/// One leaf entry: the chunk's address, stored size and filter mask, and
/// the leaf (relative address) listing it.
#[derive(Clone, Copy, Debug)]
struct Rec {
    chunk: u64,
    size: u64,
    mask: u32,
    leaf: u64,
}

/// A parsed type-1 node: its relative address and contents.
struct Node {
    addr: u64,
    node: BtreeV1Node,
}

/// Version-1 B-tree chunk nodes of one file, parsed per rank on demand.
struct V1<'i, 'a> {
    image: &'i Image<'a>,
    /// Relative addresses of `TREE` hits.
    hits: Vec<u64>,
    /// Parsed nodes by rank (hits that parse as type-1 nodes of that rank
    /// and pass the structural checks).
    parsed: HashMap<usize, HashMap<u64, BtreeV1Node>>,
    /// Leaves already tied to a dataset.
    claimed: HashSet<u64>,
}

impl<'i, 'a> V1<'i, 'a> {
    fn new(image: &'i Image<'a>, tree_hits: &[u64]) -> V1<'i, 'a> {
        let hits = tree_hits
            .iter()
            .filter_map(|&a| a.checked_sub(image.base))
            .collect();
        V1 {
            image,
            hits,
            parsed: HashMap::new(),
            claimed: HashSet::new(),
        }
    }

    fn nodes(&mut self, rank: usize) -> &HashMap<u64, BtreeV1Node> {
        let image = self.image;
        let hits = &self.hits;
        self.parsed.entry(rank).or_insert_with(|| {
            let mut m = HashMap::new();
            for &addr in hits {
                if let Some(n) = parse_node(image, addr, rank) {
                    m.insert(addr, n);
                }
            }
            m
        })
    }

    fn run(&mut self, inv: &mut Inventory, targets: &[usize]) {
        let v1: Vec<usize> = targets
            .iter()
            .copied()
            .filter(|&i| {
                inv.objects[i]
                    .dataset
                    .as_ref()
                    .and_then(chunk_dims)
                    .is_some_and(|(_, ix)| matches!(ix, ChunkIndex::BtreeV1 { .. }))
            })
            .collect();
        // Leaves reached from each dataset's root (children, then siblings).
        let mut owned: Vec<(usize, Vec<Node>)> = Vec::new();
        for &i in &v1 {
            let leaves = self.reach(&inv.objects[i]);
            for n in &leaves {
                self.claimed.insert(n.addr);
            }
            owned.push((i, leaves));
        }
        // Leaves no pointer reaches: the one dataset they fit, if only one.
        let mut unique: HashMap<usize, Vec<Node>> = HashMap::new();
        let (mut ambiguous, mut unowned) = (0u64, 0u64);
        // A dataset whose header is lost could own a loose leaf: then no
        // fit is unique.
        let lost_header = inv
            .objects
            .iter()
            .any(|o| o.status == Status::Lost || o.kind == ObjectKind::Unknown);
        let claimed: HashSet<u64> = inv
            .objects
            .iter()
            .filter_map(|o| o.dataset.as_ref())
            .flat_map(|d| d.chunks.iter().map(|c| c.address))
            .collect();
        let mut ranks: Vec<usize> = v1
            .iter()
            .filter_map(|&i| inv.objects[i].dataset.as_ref())
            .map(|d| d.dataspace.dims.len())
            .collect();
        ranks.sort_unstable();
        ranks.dedup();
        for rank in ranks {
            self.nodes(rank);
            let Some(parsed) = self.parsed.get(&rank) else {
                continue;
            };
            let mut loose: Vec<u64> = parsed
                .iter()
                .filter(|(a, n)| n.level == 0 && !self.claimed.contains(*a))
                .map(|(&a, _)| a)
                .collect();
            loose.sort_unstable();
            for a in loose {
                let Some(node) = parsed.get(&a) else {
                    continue;
                };
                let fit: Vec<usize> = v1
                    .iter()
                    .copied()
                    .filter(|&i| fits(self.image, &inv.objects[i], node, &claimed))
                    .collect();
                match fit.as_slice() {
                    [_] if lost_header => unowned += 1,
                    [i] => unique.entry(*i).or_default().push(Node {
                        addr: a,
                        node: node.clone(),
                    }),
                    [] => {}
                    _ => ambiguous += 1,
                }
            }
        }
        if unowned > 0 {
            inv.problems.push(Problem::new(
                ProblemKind::Ambiguous,
                None,
                "TREE",
                format!(
                    "{unowned} version-1 B-tree chunk leaf node(s) no index reaches fit one \
                     dataset, but a lost object header could own them: not used"
                ),
            ));
        }
        if ambiguous > 0 {
            inv.problems.push(Problem::new(
                ProblemKind::Ambiguous,
                None,
                "TREE",
                format!(
                    "{ambiguous} version-1 B-tree chunk leaf node(s) no index reaches fit \
                     several datasets: not used (ambiguous)"
                ),
            ));
        }
        for (i, leaves) in owned {
            let extra = unique.remove(&i).unwrap_or_default();
            self.merge(&mut inv.objects[i], leaves, extra);
        }
    }

    /// Leaves reached from the dataset's root by child pointers and then by
    /// sibling pointers, level by level (each node once).
    fn reach(&mut self, o: &Object) -> Vec<Node> {
        let Some(ds) = o.dataset.as_ref() else {
            return Vec::new();
        };
        let Some((dims, ChunkIndex::BtreeV1 { address })) = chunk_dims(ds) else {
            return Vec::new();
        };
        let (root, rank, dims) = (*address, ds.dataspace.dims.len(), dims.to_vec());
        if is_undefined(root) {
            return Vec::new();
        }
        let image = self.image;
        let known = self.nodes(rank);
        let get = |a: u64| -> Option<BtreeV1Node> {
            known
                .get(&a)
                .cloned()
                .or_else(|| parse_node(image, a, rank))
        };
        let mut seen: HashSet<u64> = HashSet::new();
        let mut stack = vec![root];
        let mut leaves = Vec::new();
        while let Some(a) = stack.pop() {
            if is_undefined(a) || !seen.insert(a) || seen.len() > 1 << 20 {
                continue;
            }
            let Some(n) = get(a) else {
                continue;
            };
            if !on_grid(&n, &dims) {
                continue;
            }
            if n.level > 0 {
                stack.extend(n.children.iter().copied());
            }
            for s in [n.left_sibling, n.right_sibling] {
                if let Some(sn) = known.get(&s) {
                    if sn.level == n.level {
                        stack.push(s);
                    }
                }
            }
            if n.level == 0 {
                leaves.push(Node { addr: a, node: n });
            }
        }
        leaves
    }

    /// Adds the records of `leaves` (tied by pointers) and `extra` (tied by
    /// fit) that the dataset's chunks do not hold; of two records for one
    /// position, the one in the leaf further right wins (module docs).
    fn merge(&self, o: &mut Object, leaves: Vec<Node>, extra: Vec<Node>) {
        let Some(ds) = o.dataset.as_ref() else {
            return;
        };
        let rank = ds.dataspace.dims.len();
        let by_addr: HashMap<u64, &BtreeV1Node> = leaves
            .iter()
            .chain(&extra)
            .map(|n| (n.addr, &n.node))
            .collect();
        let pointer: HashSet<u64> = leaves.iter().map(|n| n.addr).collect();
        // offset -> [(chunk address, size, mask, leaf)]
        let mut records: HashMap<Vec<u64>, Vec<Rec>> = HashMap::new();
        for n in leaves.iter().chain(&extra) {
            for (key, &child) in n.node.keys.iter().zip(&n.node.children) {
                if let Key::Chunk {
                    size,
                    filter_mask,
                    offsets,
                } = key
                {
                    let off: Vec<u64> = offsets.iter().take(rank).copied().collect();
                    let list = records.entry(off).or_default();
                    if !list.iter().any(|r| r.chunk == child) {
                        list.push(Rec {
                            chunk: child,
                            size: u64::from(*size),
                            mask: *filter_mask,
                            leaf: n.addr,
                        });
                    }
                }
            }
        }
        let known: HashSet<(Vec<u64>, u64)> = ds
            .chunks
            .iter()
            .map(|c| (c.offset.clone(), c.address))
            .collect();
        let mut found = Vec::new();
        let mut superseded: HashSet<(Vec<u64>, u64)> = HashSet::new();
        let mut offsets: Vec<&Vec<u64>> = records.keys().collect();
        offsets.sort();
        for off in offsets {
            let list = &records[off];
            let winner = if list.len() == 1 {
                Some(list[0])
            } else {
                rightmost(&by_addr, list)
            };
            let Some(Rec {
                chunk: addr,
                size,
                mask,
                leaf,
            }) = winner
            else {
                continue;
            };
            for r in list.iter().filter(|r| r.chunk != addr) {
                superseded.insert((off.clone(), r.chunk));
            }
            if known.contains(&(off.clone(), addr)) {
                continue;
            }
            let at = self.image.absolute(leaf).unwrap_or(leaf);
            let tie = if pointer.contains(&leaf) {
                Tie::Sibling
            } else {
                Tie::Unique
            };
            found.push((
                ChunkRef {
                    offset: off.clone(),
                    address: addr,
                    size,
                    filter_mask: mask,
                    present: false,
                },
                ChunkRecordFound {
                    offset: off.clone(),
                    structure: "TREE",
                    at,
                    tie,
                },
            ));
        }
        if let Some(ds) = o.dataset.as_mut() {
            let before = ds.chunks.len();
            ds.chunks
                .retain(|c| !superseded.contains(&(c.offset.clone(), c.address)));
            ds.beyond_index.superseded += (before - ds.chunks.len()) as u64;
        }
        add(self.image, o, found);
    }
}

/// Of records for one position, the one whose leaf every other leaf
/// reaches by right-sibling pointers; `None` when there is none.
fn rightmost(nodes: &HashMap<u64, &BtreeV1Node>, list: &[Rec]) -> Option<Rec> {
    let reaches = |from: u64, to: u64| {
        let mut a = from;
        for _ in 0..MAX_SIBLING_STEPS {
            let Some(n) = nodes.get(&a) else {
                return false;
            };
            a = n.right_sibling;
            if a == to {
                return true;
            }
            if is_undefined(a) {
                return false;
            }
        }
        false
    };
    list.iter()
        .find(|w| {
            list.iter()
                .all(|r| r.chunk == w.chunk || r.leaf != w.leaf && reaches(r.leaf, w.leaf))
        })
        .copied()
}

/// A type-1 node of `rank` at relative `addr` that passes the structural
/// checks.
fn parse_node(image: &Image, addr: u64, rank: usize) -> Option<BtreeV1Node> {
    let at = image.absolute(addr)?;
    let data = image.at("TREE", addr).ok()?;
    let n = btree_v1::parse(data, at, image.sizes, Some(rank)).ok()?;
    let len = image.len().saturating_sub(image.base);
    (n.node_type == 1 && n.validate(len).is_empty()).then_some(n)
}

/// Every key's offsets lie on the chunk grid.
fn on_grid(n: &BtreeV1Node, dims: &[u64]) -> bool {
    n.keys.iter().take(n.children.len()).all(|k| match k {
        Key::Chunk { offsets, .. } => offsets
            .iter()
            .zip(dims)
            .all(|(&o, &d)| d != 0 && o % d == 0),
        Key::Group { .. } => false,
    })
}

/// A loose leaf fits a dataset: its rank, chunk grid, chunk sizes (exactly
/// the chunk's bytes when unfiltered, at most twice that when filtered),
/// filter masks (only the pipeline's filters), chunks inside the file that
/// no dataset lists (`claimed`: a leaf listing a chunk some index lists is
/// a stale copy of that index's leaf, and fits nobody). Positions another
/// dataset holds do not count: an appender's datasets share them.
fn fits(image: &Image, o: &Object, n: &BtreeV1Node, claimed: &HashSet<u64>) -> bool {
    let Some(ds) = chunked(o) else {
        return false;
    };
    let Some((dims, _)) = chunk_dims(ds) else {
        return false;
    };
    let bytes = ds.chunk_bytes(dims).unwrap_or(0);
    let nfilters = ds.filters.as_ref().map_or(0, |f| f.filters.len());
    if bytes == 0 || !on_grid(n, dims) {
        return false;
    }
    let rank = dims.len();
    n.keys.iter().zip(&n.children).all(|(k, &child)| match k {
        Key::Chunk {
            size,
            filter_mask,
            offsets,
        } => {
            let size = u64::from(*size);
            let size_ok = if nfilters == 0 {
                size == bytes
            } else {
                size > 0 && size <= bytes.saturating_mul(2).saturating_add(64)
            };
            let mask_ok = nfilters >= 32 || *filter_mask >> nfilters == 0;
            offsets.len() == rank + 1
                && size_ok
                && mask_ok
                && image.contains(child, size)
                && !claimed.contains(&child)
        }
        Key::Group { .. } => false,
    })
}

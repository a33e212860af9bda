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
//! - version-2 B-tree chunk nodes (spec III.A.2, records of types 10/11,
//!   VII.E): a `BTLF`/`BTIN` node stores neither its owner nor its record
//!   count (its parent does). Each hit of the shape of a dataset's tree
//!   (type, node size and record size from its `BTHD`, else from the layout
//!   message) is read with the record count (and, for internal nodes, the
//!   depth) at which its lookup3 checksum matches; it fits a dataset when
//!   every record has its rank, lies on its grid inside its maximum extent,
//!   names a chunk inside the file of a plausible size with only the
//!   pipeline's filter bits, the keys increase and the chunk addresses are
//!   unique. Ties: nodes reached by child pointers from the root the
//!   `BTHD` names (re-read at its own record count: the header's is
//!   stale), nodes sharing a chunk address with those or with the index
//!   (a chunk belongs to one dataset), else the only dataset every node of
//!   such a group fits (never when an object header is lost), else, for
//!   unfiltered chunks (which never move), the only dataset whose proven
//!   chunks the group does not contradict. A position
//!   whose records disagree is not used (v2 nodes carry no age).

use std::collections::{HashMap, HashSet};

use crate::follow::chunks::{coords, ea_coords, ea_grid, grid, max_extent};
use crate::follow::{self, Image};
use crate::format::btree_v1::{self, BtreeV1Node, Key};
use crate::format::btree_v2;
use crate::format::message::data_layout::{ChunkIndex, LayoutClass};
use crate::format::{checksum_ok, is_undefined, signature_v0, Sizes};
use crate::inventory::{
    ChunkRecordFound, ChunkRef, Dataset, Inventory, Object, ObjectKind, Problem, ProblemKind,
    Status, Tie,
};
use crate::walk::dataset::{grow_extent, recount};

use super::signatures::{find_signatures, Hit, Kind};

/// Most sibling steps taken when comparing two leaves' positions.
const MAX_SIBLING_STEPS: usize = 1 << 16;

/// Adds to every chunked dataset of `inv` the chunks that index records
/// its root does not reach prove (see the module docs), grows its extent
/// to cover them and marks it partial with the reason.
pub fn extend(bytes: &[u8], inv: &mut Inventory) {
    extend_with(bytes, inv, &find_signatures(bytes));
}

/// [`extend`] given `hits`, every signature of `bytes` ([`find_signatures`]).
pub fn extend_with(bytes: &[u8], inv: &mut Inventory, hits: &[Hit]) {
    let (base, sizes) = match &inv.superblock {
        Some(sb) => match Sizes::new(sb.size_of_offsets, sb.size_of_lengths) {
            Ok(s) => (sb.base_address, s),
            Err(_) => return,
        },
        None => (0, Sizes::DEFAULT),
    };
    let image = Image::new(bytes, base, sizes);
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
    let v2_hits: Vec<(u64, bool)> = hits
        .iter()
        .filter_map(|h| match h.kind {
            Kind::Btlf => Some((h.offset, false)),
            Kind::Btin => Some((h.offset, true)),
            _ => None,
        })
        .collect();
    if !v2_hits.is_empty() {
        v2(&image, &v2_hits, inv, &targets);
    }
}

/// Whether the records of `leaves` are one per chunk offset (no two chunk
/// addresses for one offset) and each is already among `ds`' chunks (same
/// offset, same address): then [`V1::merge`] has nothing to add or to
/// supersede. Sorted slices, no hashing: this is asked of every chunked
/// dataset.
fn holds_all(ds: &Dataset, leaves: &[Node], rank: usize) -> bool {
    let mut records: Vec<(&[u64], u64)> = Vec::new();
    for n in leaves {
        for (key, &child) in n.node.keys.iter().zip(&n.node.children) {
            if let Key::Chunk { offsets, .. } = key {
                records.push((&offsets[..rank.min(offsets.len())], child));
            }
        }
    }
    records.sort_unstable();
    records.dedup();
    if records.windows(2).any(|w| w[0].0 == w[1].0) {
        return false;
    }
    let mut known: Vec<(&[u64], u64)> = ds
        .chunks
        .iter()
        .map(|c| (c.offset.as_slice(), c.address))
        .collect();
    known.sort_unstable();
    records.iter().all(|r| known.binary_search(r).is_ok())
}

/// Relative addresses of the version-1 B-tree chunk nodes (spec III.A.1)
/// tied to the index of `o`'s dataset by pointers: child pointers from its
/// root, then sibling pointers between nodes of one level to `TREE` hits at
/// the absolute offsets `tree_hits` (as [`extend`] ties leaves). Each parses
/// as a type-1 node of the dataset's rank on its chunk grid; their extent
/// is fixed by K and the file's sizes.
pub(crate) fn tied_v1_nodes(image: &Image, o: &Object, tree_hits: &[u64]) -> Vec<u64> {
    V1::new(image, tree_hits).reach_all(o).1
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
                Tie::Consistent => {
                    "INFERRED owner: they fit several datasets, but list unfiltered chunk \
                     positions the others hold at other addresses (unfiltered chunks never move)"
                }
                Tie::Child => "reached by child pointers from the root the index header names",
                Tie::SharedChunk => {
                    "sharing a chunk address (at the same position) with the dataset's index"
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
    let Some((dims, index @ ChunkIndex::ExtensibleArray { address, .. })) = chunk_dims(ds) else {
        return;
    };
    if is_undefined(*address) {
        return;
    }
    // Without an `EAHD` on disk, an unfiltered array's parameters are the
    // layout message's (one address per element).
    let absent = super::chunks::raw_signature(ds)
        .and_then(|_| follow::extensible_array::unfiltered_header(image.sizes, index));
    let orphans = follow::extensible_array::collect_orphan_data_blocks(
        image,
        *address,
        eadb,
        absent.as_ref(),
    );
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
                    .as_deref()
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
        self.reach_all(o).0
    }

    /// [`V1::reach`], and the relative address of every node (any level)
    /// reached.
    fn reach_all(&mut self, o: &Object) -> (Vec<Node>, Vec<u64>) {
        let Some(ds) = o.dataset.as_ref() else {
            return (Vec::new(), Vec::new());
        };
        let Some((dims, ChunkIndex::BtreeV1 { address })) = chunk_dims(ds) else {
            return (Vec::new(), Vec::new());
        };
        let (root, rank, dims) = (*address, ds.dataspace.dims.len(), dims.to_vec());
        if is_undefined(root) {
            return (Vec::new(), Vec::new());
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
        let mut all = Vec::new();
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
            all.push(a);
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
        (leaves, all)
    }

    /// Adds the records of `leaves` (tied by pointers) and `extra` (tied by
    /// fit) that the dataset's chunks do not hold; of two records for one
    /// position, the one in the leaf further right wins (module docs).
    fn merge(&self, o: &mut Object, leaves: Vec<Node>, extra: Vec<Node>) {
        let Some(ds) = o.dataset.as_ref() else {
            return;
        };
        let rank = ds.dataspace.dims.len();
        if extra.is_empty() && holds_all(ds, &leaves, rank) {
            // Nothing found, nothing superseded (what the merge below
            // would conclude): the common case of an intact index.
            return;
        }
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

// ------------------------------------------------- version-2 B-tree nodes

/// Checksum bytes hashed while guessing the record counts of v2 B-tree
/// nodes (a node does not store its own count: its parent does), per file
/// byte, plus [`V2_HASH_SLACK`]; past it the search stops with a problem.
const V2_HASH_PER_BYTE: u64 = 8;
const V2_HASH_SLACK: u64 = 64 << 20;
/// Most (node, dataset) pairs compared for one tree shape (memory bound
/// on hostile files full of checksummed nodes).
const MAX_V2_FITS: usize = 1 << 24;
/// Deepest internal node tried (libhdf5 chunk trees are a few levels deep).
const V2_MAX_DEPTH: u16 = 6;

/// One chunk record of a carved v2 B-tree node, in element coordinates.
#[derive(Clone, Debug, PartialEq, Eq)]
struct V2Rec {
    offset: Vec<u64>,
    address: u64,
    size: u64,
    mask: u32,
}

/// A `BTLF`/`BTIN` node whose checksum matched at some record count.
struct V2Node {
    /// Absolute file offset.
    at: u64,
    structure: &'static str,
    records: Vec<btree_v2::Record>,
    /// Absolute offsets of the children (internal nodes).
    children: Vec<u64>,
}

/// The shape every node of one dataset's chunk tree has: B-tree type
/// (10 unfiltered, 11 filtered), node size, record size.
type V2Shape = (u8, u32, u16);

/// The tree description used to carve one dataset's nodes: from its `BTHD`
/// when that parses, else from the layout message (spec VII.E: record =
/// address, [chunk size, filter mask,] one 8-byte scaled offset per
/// dimension).
fn v2_tree(image: &Image, ds: &Dataset) -> Option<btree_v2::Tree> {
    let (
        dims,
        ChunkIndex::BtreeV2 {
            address, node_size, ..
        },
    ) = chunk_dims(ds)?
    else {
        return None;
    };
    let rank = dims.len();
    let filtered = ds.filters.as_ref().is_some_and(|f| !f.filters.is_empty());
    let btree_type = if filtered {
        btree_v2::kind::FILTERED_CHUNK
    } else {
        btree_v2::kind::CHUNK
    };
    let habs = image.absolute(*address).unwrap_or(0);
    let stored = image
        .at("BTHD", *address)
        .and_then(|d| btree_v2::parse_header(d, habs, image.sizes))
        .ok()
        .filter(|h| h.btree_type == btree_type && h.node_size == *node_size);
    let header = match stored {
        Some(h) => h,
        None => {
            let o = usize::from(image.sizes.offset());
            let size_len = if ds.layout.version >= 5 {
                o
            } else {
                let bytes = ds.chunk_bytes(dims).unwrap_or(0);
                ((64 - bytes.leading_zeros() as usize).div_ceil(8) + 1).min(8)
            };
            let extra = if filtered { size_len + 4 } else { 0 };
            btree_v2::BtreeV2Header {
                btree_type,
                node_size: *node_size,
                record_size: u16::try_from(o + extra + 8 * rank).ok()?,
                depth: 0,
                split_percent: 0,
                merge_percent: 0,
                root_address: crate::format::UNDEFINED,
                root_records: 0,
                total_records: 0,
                checksum_ok: false,
            }
        }
    };
    let ctx = btree_v2::RecordContext {
        rank,
        ..Default::default()
    };
    // The stored depth may be stale (the tree grew): carve deeper nodes too.
    (header.depth..=V2_MAX_DEPTH.max(header.depth))
        .rev()
        .find_map(|depth| {
            let h = btree_v2::BtreeV2Header {
                depth,
                ..header.clone()
            };
            btree_v2::Tree::new(h, habs, image.sizes, ctx).ok()
        })
}

/// Every `BTLF`/`BTIN` hit that is a node of `tree`'s shape: each record
/// count (and, for internal nodes, each depth) is tried until the lookup3
/// checksum after the records matches; a node is parsed only then.
fn carve_v2_nodes(
    image: &Image,
    tree: &btree_v2::Tree,
    hits: &[(u64, bool)],
    budget: &mut u64,
) -> (Vec<V2Node>, bool) {
    let mut out = Vec::new();
    let hdr = &tree.header;
    let node = usize::try_from(hdr.node_size).unwrap_or(usize::MAX);
    let rs = u64::from(hdr.record_size);
    for &(hit, internal) in hits {
        let Some(rel) = hit.checked_sub(image.base) else {
            continue;
        };
        let Ok(data) = image.at("v2 B-tree node", rel) else {
            continue;
        };
        let data = &data[..data.len().min(node)];
        // Signature, version 0, then the tree's record type (III.A.2).
        let sig: &'static [u8] = if internal { b"BTIN" } else { b"BTLF" };
        let typed = signature_v0("v2 B-tree node", sig, data, hit)
            .is_ok_and(|(rest, _)| rest.first() == Some(&hdr.btree_type));
        if data.len() < 10 || !typed {
            continue;
        }
        let depths = if internal { 1..=hdr.depth } else { 0..=0 };
        let mut found = None;
        'depths: for depth in depths {
            let Some(level) = tree.geometry.levels.get(usize::from(depth)) else {
                break;
            };
            let ptr = if depth == 0 {
                0
            } else {
                tree.geometry.pointer_size(depth).unwrap_or(0)
            };
            for nrec in (1..=level.max_records).rev() {
                let pointers = if depth == 0 { 0 } else { nrec + 1 };
                let used = 6 + nrec * rs + pointers * ptr;
                let Ok(end) = usize::try_from(used) else {
                    continue;
                };
                if data.get(end..end + 4).is_none() {
                    continue;
                }
                if *budget < used {
                    return (out, true);
                }
                *budget -= used;
                if checksum_ok(data, end) {
                    found = btree_v2::parse_node(data, hit, tree, depth, nrec).ok();
                    break 'depths;
                }
            }
        }
        if let Some(n) = found.filter(|n| n.checksum_ok) {
            out.push(V2Node {
                at: hit,
                structure: if internal { "BTIN" } else { "BTLF" },
                records: n.records,
                children: n
                    .children
                    .iter()
                    .filter_map(|c| image.absolute(c.address))
                    .collect(),
            });
        }
    }
    (out, false)
}

/// The node's records as chunks of `ds` if every one fits it: a chunk
/// record of the dataset's rank, on its grid inside its maximum extent,
/// the chunk inside the file, its size exactly the chunk's bytes when
/// unfiltered and at most twice that when filtered, its filter mask only
/// the pipeline's filters, keys strictly increasing (a v2 B-tree node is
/// sorted) and chunk addresses unique.
fn fits_v2(image: &Image, ds: &Dataset, node: &V2Node) -> Option<Vec<V2Rec>> {
    let (dims, _) = chunk_dims(ds)?;
    let bytes = ds.chunk_bytes(dims).unwrap_or(0);
    let nfilters = ds.filters.as_ref().map_or(0, |f| f.filters.len());
    let max: Vec<u64> = match &ds.dataspace.max_dims {
        Some(m) if m.len() == dims.len() => m.clone(),
        _ => vec![crate::format::UNDEFINED; dims.len()],
    };
    if bytes == 0 || node.records.is_empty() {
        return None;
    }
    let mut out: Vec<V2Rec> = Vec::with_capacity(node.records.len());
    let mut addrs = HashSet::new();
    for r in &node.records {
        let btree_v2::Record::Chunk {
            address,
            size,
            filter_mask,
            scaled_offsets,
        } = r
        else {
            return None;
        };
        if scaled_offsets.len() != dims.len() {
            return None;
        }
        let offset: Vec<u64> = scaled_offsets
            .iter()
            .zip(dims)
            .map(|(&s, &c)| s.checked_mul(c))
            .collect::<Option<_>>()?;
        let inside = offset
            .iter()
            .zip(&max)
            .all(|(&o, &m)| is_undefined(m) || o < m);
        let size = size.unwrap_or(bytes);
        let size_ok = if nfilters == 0 {
            size == bytes
        } else {
            size > 0 && size <= bytes.saturating_mul(2).saturating_add(64)
        };
        let mask_ok = nfilters >= 32 || *filter_mask >> nfilters == 0;
        let sorted = out.last().is_none_or(|p| p.offset < offset);
        if !(inside
            && size_ok
            && mask_ok
            && sorted
            && image.contains(*address, size)
            && addrs.insert(*address))
        {
            return None;
        }
        out.push(V2Rec {
            offset,
            address: *address,
            size,
            mask: *filter_mask,
        });
    }
    Some(out)
}

/// Union-find root with path halving.
fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// Version-2 B-tree chunk nodes beyond each v2-indexed dataset's root.
///
/// A v2 B-tree node names no owner. Nodes that list a common chunk address
/// are grouped (a chunk belongs to one dataset); a group is tied to a
/// dataset when one of its nodes lists, at the same position, a chunk the
/// dataset's index lists ([`Tie::SharedChunk`]), else to the only dataset
/// every node of the group fits ([`Tie::Unique`], never when an object
/// header is lost). Groups that two datasets could own are reported and
/// not used.
fn v2(image: &Image, hits: &[(u64, bool)], inv: &mut Inventory, targets: &[usize]) {
    let trees: Vec<(usize, btree_v2::Tree)> = targets
        .iter()
        .filter_map(|&i| {
            let ds = inv.objects[i].dataset.as_ref()?;
            v2_tree(image, ds).map(|t| (i, t))
        })
        .collect();
    if trees.is_empty() {
        return;
    }
    let mut budget = image
        .len()
        .saturating_mul(V2_HASH_PER_BYTE)
        .saturating_add(V2_HASH_SLACK);
    let mut stopped = false;
    let mut shapes: HashMap<V2Shape, Vec<V2Node>> = HashMap::new();
    for (_, t) in &trees {
        let h = &t.header;
        let key = (h.btree_type, h.node_size, h.record_size);
        if let std::collections::hash_map::Entry::Vacant(e) = shapes.entry(key) {
            let (nodes, stop) = carve_v2_nodes(image, t, hits, &mut budget);
            stopped |= stop;
            e.insert(nodes);
        }
    }
    if stopped {
        inv.problems.push(Problem::new(
            ProblemKind::LimitExceeded,
            None,
            "v2 B-tree node",
            "the search for version-2 B-tree chunk nodes reached its work bound and stopped"
                .to_string(),
        ));
    }
    // Chunk address -> (dataset, position) over every dataset's index.
    let mut listed: HashMap<u64, (usize, &[u64])> = HashMap::new();
    for (i, o) in inv.objects.iter().enumerate() {
        if let Some(ds) = o.dataset.as_ref() {
            for c in &ds.chunks {
                listed.insert(c.address, (i, c.offset.as_slice()));
            }
        }
    }
    let lost_header = inv
        .objects
        .iter()
        .any(|o| o.status == Status::Lost || o.kind == ObjectKind::Unknown);
    let mut used: HashMap<usize, Vec<(V2Rec, &'static str, u64, Tie)>> = HashMap::new();
    let (mut ambiguous, mut unowned) = (0u64, 0u64);
    for (key, nodes) in &shapes {
        let of_shape: Vec<usize> = trees
            .iter()
            .filter(|(_, t)| {
                let h = &t.header;
                (h.btree_type, h.node_size, h.record_size) == *key
            })
            .map(|(i, _)| *i)
            .collect();
        if nodes.len().saturating_mul(of_shape.len()) > MAX_V2_FITS {
            inv.problems.push(Problem::new(
                ProblemKind::LimitExceeded,
                None,
                "v2 B-tree node",
                format!(
                    "{} version-2 B-tree chunk node(s) for {} dataset(s) of one shape: more \
                     than the search compares; not used",
                    nodes.len(),
                    of_shape.len()
                ),
            ));
            continue;
        }
        // fit[n][k]: node n's records as chunks of dataset of_shape[k].
        let fit: Vec<Vec<Option<Vec<V2Rec>>>> = nodes
            .iter()
            .map(|n| {
                of_shape
                    .iter()
                    .map(|&i| {
                        let ds = inv.objects[i].dataset.as_ref()?;
                        fits_v2(image, ds, n)
                    })
                    .collect()
            })
            .collect();
        // Nodes reached by child pointers from each dataset's stored root.
        let index: HashMap<u64, usize> = nodes.iter().enumerate().map(|(n, v)| (v.at, n)).collect();
        let mut reached: HashMap<usize, usize> = HashMap::new();
        for (k, &i) in of_shape.iter().enumerate() {
            let Some(root) = trees
                .iter()
                .find(|(j, _)| *j == i)
                .and_then(|(_, t)| image.absolute(t.header.root_address))
            else {
                continue;
            };
            let mut stack = vec![root];
            let mut seen = HashSet::new();
            while let Some(a) = stack.pop() {
                let Some(&n) = index.get(&a) else {
                    continue;
                };
                if !seen.insert(n) || fit[n][k].is_none() {
                    continue;
                }
                // A node two roots reach belongs to neither.
                if reached.insert(n, k).is_some_and(|other| other != k) {
                    reached.insert(n, usize::MAX);
                }
                stack.extend(nodes[n].children.iter().copied());
            }
        }
        let mut parent: Vec<usize> = (0..nodes.len()).collect();
        let mut first: HashMap<u64, usize> = HashMap::new();
        for (n, node) in nodes.iter().enumerate() {
            for r in &node.records {
                if let btree_v2::Record::Chunk { address, .. } = r {
                    let f = *first.entry(*address).or_insert(n);
                    let (a, b) = (find(&mut parent, f), find(&mut parent, n));
                    parent[a] = b;
                }
            }
        }
        let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
        for n in 0..nodes.len() {
            let g = find(&mut parent, n);
            groups.entry(g).or_default().push(n);
        }
        let mut roots: Vec<usize> = groups.keys().copied().collect();
        roots.sort_unstable();
        // Groups several datasets fit and none owns: decided once every
        // owned group is known.
        let mut pending: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
        for g in roots {
            let members = &groups[&g];
            // Datasets whose index lists a chunk of the group at its position.
            let mut owners: HashSet<usize> = HashSet::new();
            for &n in members {
                if let Some(&k) = reached.get(&n) {
                    owners.insert(k);
                }
                for (k, recs) in fit[n].iter().enumerate() {
                    for r in recs.iter().flatten() {
                        if listed.get(&r.address) == Some(&(of_shape[k], r.offset.as_slice())) {
                            owners.insert(k);
                        }
                    }
                }
            }
            let (k, tie) = match owners.len() {
                1 => (owners.into_iter().next().unwrap_or(0), Tie::SharedChunk),
                0 => {
                    let all: Vec<usize> = (0..of_shape.len())
                        .filter(|&k| members.iter().all(|&n| fit[n][k].is_some()))
                        .collect();
                    match all.as_slice() {
                        [] => continue,
                        [_] if lost_header => {
                            unowned += members.len() as u64;
                            continue;
                        }
                        [k] => (*k, Tie::Unique),
                        _ => {
                            pending.push((members.clone(), all));
                            continue;
                        }
                    }
                }
                _ => {
                    ambiguous += members.len() as u64;
                    continue;
                }
            };
            if k == usize::MAX {
                ambiguous += members.len() as u64;
                continue;
            }
            for &n in members {
                if let Some(recs) = &fit[n][k] {
                    let tie = if reached.get(&n) == Some(&k) {
                        Tie::Child
                    } else {
                        tie
                    };
                    let e = used.entry(of_shape[k]).or_default();
                    for r in recs {
                        e.push((r.clone(), nodes[n].structure, nodes[n].at, tie));
                    }
                }
            }
        }
        if lost_header {
            unowned += pending.iter().map(|(m, _)| m.len() as u64).sum::<u64>();
            continue;
        }
        // Unfiltered chunks never move (their size never changes), so a
        // node that lists a position a dataset's proven records hold at
        // another address is not that dataset's.
        let proven: Vec<Option<HashMap<Vec<u64>, u64>>> = of_shape
            .iter()
            .map(|&i| {
                let ds = inv.objects[i].dataset.as_ref()?;
                if ds.filters.as_ref().is_some_and(|f| !f.filters.is_empty()) {
                    return None;
                }
                let mut m: HashMap<Vec<u64>, u64> = ds
                    .chunks
                    .iter()
                    .map(|c| (c.offset.clone(), c.address))
                    .collect();
                for (r, ..) in used.get(&i).into_iter().flatten() {
                    m.insert(r.offset.clone(), r.address);
                }
                Some(m)
            })
            .collect();
        for (members, cands) in pending {
            let consistent: Vec<usize> = cands
                .into_iter()
                .filter(|&k| {
                    let Some(Some(p)) = proven.get(k) else {
                        return true;
                    };
                    !members.iter().any(|&n| {
                        fit[n][k]
                            .iter()
                            .flatten()
                            .any(|r| p.get(&r.offset).is_some_and(|&a| a != r.address))
                    })
                })
                .collect();
            let [k] = consistent.as_slice() else {
                ambiguous += members.len() as u64;
                continue;
            };
            let e = used.entry(of_shape[*k]).or_default();
            for &n in &members {
                for r in fit[n][*k].iter().flatten() {
                    e.push((r.clone(), nodes[n].structure, nodes[n].at, Tie::Consistent));
                }
            }
        }
    }
    if unowned > 0 {
        inv.problems.push(Problem::new(
            ProblemKind::Ambiguous,
            None,
            "v2 B-tree node",
            format!(
                "{unowned} version-2 B-tree chunk node(s) no index shares a chunk with fit \
                 one dataset, but a lost object header could own them: not used"
            ),
        ));
    }
    if ambiguous > 0 {
        inv.problems.push(Problem::new(
            ProblemKind::Ambiguous,
            None,
            "v2 B-tree node",
            format!(
                "{ambiguous} version-2 B-tree chunk node(s) fit several datasets: \
                 not used (ambiguous)"
            ),
        ));
    }
    let mut owners: Vec<usize> = used.keys().copied().collect();
    owners.sort_unstable();
    for i in owners {
        let recs = used.remove(&i).unwrap_or_default();
        merge_v2(image, &mut inv.objects[i], recs);
    }
}

/// Adds the records of a dataset's carved v2 nodes that its index does not
/// hold. A position whose records name different chunks, or a chunk that
/// records name at different positions, is not used (a stale node from
/// before a chunk was reallocated cannot be told from the newer one by its
/// bytes: v2 nodes carry no age) and is reported.
fn merge_v2(image: &Image, o: &mut Object, recs: Vec<(V2Rec, &'static str, u64, Tie)>) {
    let Some(ds) = o.dataset.as_ref() else {
        return;
    };
    let indexed: HashMap<&[u64], u64> = ds
        .chunks
        .iter()
        .map(|c| (c.offset.as_slice(), c.address))
        .collect();
    let mut by_pos: HashMap<Vec<u64>, Vec<usize>> = HashMap::new();
    let mut by_addr: HashMap<u64, HashSet<Vec<u64>>> = HashMap::new();
    for (j, (r, ..)) in recs.iter().enumerate() {
        by_pos.entry(r.offset.clone()).or_default().push(j);
        by_addr
            .entry(r.address)
            .or_default()
            .insert(r.offset.clone());
    }
    for c in &ds.chunks {
        by_addr
            .entry(c.address)
            .or_default()
            .insert(c.offset.clone());
    }
    let mut positions: Vec<&Vec<u64>> = by_pos.keys().collect();
    positions.sort();
    let (mut found, mut conflicts) = (Vec::new(), Vec::new());
    for pos in positions {
        let list = &by_pos[pos];
        let addrs: HashSet<u64> = list.iter().map(|&j| recs[j].0.address).collect();
        let first = &recs[list[0]];
        let single = addrs.len() == 1;
        let moved = by_addr.get(&first.0.address).is_some_and(|p| p.len() > 1);
        match indexed.get(pos.as_slice()) {
            Some(&a) if single && a == first.0.address => continue,
            _ if !single || moved => conflicts.push(pos.clone()),
            Some(_) => conflicts.push(pos.clone()),
            None => {
                let (r, structure, at, tie) = first.clone();
                found.push((
                    ChunkRef {
                        offset: r.offset.clone(),
                        address: r.address,
                        size: r.size,
                        filter_mask: r.mask,
                        present: false,
                    },
                    ChunkRecordFound {
                        offset: r.offset,
                        structure,
                        at,
                        tie,
                    },
                ));
            }
        }
    }
    if !conflicts.is_empty() {
        let shown: Vec<String> = conflicts.iter().take(8).map(|p| format!("{p:?}")).collect();
        o.damage(
            Status::Partial,
            Problem::new(
                ProblemKind::Ambiguous,
                image.absolute(o.address),
                "v2 B-tree node",
                format!(
                    "{} chunk position(s) have version-2 B-tree records on disk that disagree \
                     with each other or with the index (a chunk reallocated after an older \
                     node was written; nodes carry no age): not used ({}{})",
                    conflicts.len(),
                    shown.join(", "),
                    if conflicts.len() > 8 { ", ..." } else { "" }
                ),
            ),
        );
    }
    add(image, o, found);
}

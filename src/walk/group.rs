//! Group members, for both group formats: symbol-table groups (v1 B-tree of
//! SNODs + local heap, spec III.A.1, III.B, III.D) and link-message groups
//! (compact link messages, or dense storage in a fractal heap indexed by a
//! v2 B-tree of link names, spec IV.A.2.c/g, III.A.2, III.G).

use std::collections::BTreeMap;

use crate::follow::{self, Image};
use crate::format::is_undefined;
use crate::format::local_heap::{self, LocalHeap};
use crate::format::message::link::{self, Link, LinkTarget};
use crate::format::superblock::Scratch;
use crate::format::symbol_table_node;
use crate::inventory::{LinkEntry, LinkKind, Object, Problem, ProblemKind, Status};

use super::child_path;
use super::object::HeaderContents;

/// What a group holds: hard-linked members to visit, and other links.
#[derive(Default)]
pub struct Members {
    /// (path, object header address), sorted by name, or by creation order
    /// when the group tracks it.
    pub hard: Vec<(String, u64)>,
    pub links: Vec<LinkEntry>,
    /// When the group tracks link creation order: every member's name (as
    /// in its path) in creation order.
    pub names: Vec<String>,
    /// Member names (as in their paths) whose link gives the other
    /// character set than the name's bytes suggest (see
    /// [`Object::other_charset_names`]).
    pub other_charset: Vec<String>,
}

pub fn members(
    image: &Image,
    h: &HeaderContents,
    path: &str,
    leaf_k: Option<u16>,
    obj: &mut Object,
) -> Members {
    let mut named: BTreeMap<Vec<u8>, Vec<Target>> = BTreeMap::new();
    // Link name -> creation order (link messages that carry one).
    let mut order: std::collections::HashMap<Vec<u8>, u64> = std::collections::HashMap::new();
    // Link names whose link message says UTF-8 (spec IV.A.2.g, flags bit
    // 4; symbol-table entries have no character set: ASCII).
    let mut utf8: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    let mut problems = Vec::new();
    if let Some(st) = &h.symbol_table {
        symbol_table_members(
            image,
            (st.btree_address, st.heap_address),
            leaf_k,
            &mut named,
            &mut problems,
        );
    }
    for l in &h.links {
        add_link(&mut named, &mut order, &mut utf8, l.clone(), &mut problems);
    }
    if let Some(info) = &h.link_info {
        if !is_undefined(info.fractal_heap_address) {
            let (objects, errs) = follow::dense::dense_objects(
                image,
                info.fractal_heap_address,
                info.name_index_btree_address,
            );
            problems.extend(errs);
            for (at, bytes, _) in objects {
                match link::parse(&bytes, at, image.sizes) {
                    Ok(l) => add_link(&mut named, &mut order, &mut utf8, l, &mut problems),
                    Err(e) => problems.push(e.into()),
                }
            }
        }
    }
    for p in problems {
        obj.damage(Status::Partial, p);
    }
    let mut out = Members::default();
    let mut used = std::collections::HashSet::new();
    let mut suffix: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    // Several targets only under the empty name (see `insert_unique`).
    let mut named: Vec<(Vec<u8>, Target)> = named
        .into_iter()
        .flat_map(|(name, ts)| ts.into_iter().map(move |t| (name.clone(), t)))
        .collect();
    let tracked = h.creation_orders().0.tracked;
    if tracked {
        // Listed (and visited, so written) in creation order; links without
        // one after the others, by name (a stable sort).
        named.sort_by_key(|(name, _)| order.get(name).copied().unwrap_or(u64::MAX));
    }
    for (name, target) in named {
        let (mut child, bad) = child_path(path, &name);
        if let Some(why) = bad {
            obj.damage(
                Status::Partial,
                Problem::new(ProblemKind::Malformed, None, "link", why),
            );
        }
        // Escaped names can equal another member's name: never two members
        // at one path.
        if !used.insert(child.clone()) {
            let stem = child.clone();
            // The next suffix to try, per path: many members of one escaped
            // name (every name of a zeroed heap reads "") must not try
            // every suffix taken before them (quadratic on hostile input).
            let next = suffix.entry(stem.clone()).or_insert(2u32);
            let mut n = *next;
            while !used.insert(format!("{stem}~{n}")) {
                n = n.saturating_add(1);
            }
            *next = n.saturating_add(1);
            child = format!("{stem}~{n}");
            obj.damage(
                Status::Partial,
                Problem::new(
                    ProblemKind::Duplicate,
                    None,
                    "link",
                    format!(
                        "member name {:?} gives the path of another member: written as {child:?}",
                        String::from_utf8_lossy(&name)
                    ),
                ),
            );
        }
        let member = child.rsplit('/').next().unwrap_or_default();
        if utf8.contains(&name) == member.is_ascii() {
            out.other_charset.push(member.to_string());
        }
        if tracked {
            out.names.push(member.to_string());
        }
        match target {
            Target::Hard(addr) => out.hard.push((child, addr)),
            Target::Other(kind, target, file) => out.links.push(LinkEntry {
                path: child,
                kind,
                target,
                file,
            }),
        }
    }
    out
}

enum Target {
    Hard(u64),
    /// Kind, target path, external file.
    Other(LinkKind, String, Option<String>),
}

fn add_link(
    named: &mut BTreeMap<Vec<u8>, Vec<Target>>,
    order: &mut std::collections::HashMap<Vec<u8>, u64>,
    utf8: &mut std::collections::HashSet<Vec<u8>>,
    l: Link,
    problems: &mut Vec<Problem>,
) {
    if let Some(c) = l.creation_order {
        order.entry(l.name.clone().into_bytes()).or_insert(c);
    }
    if l.charset == 1 {
        utf8.insert(l.name.clone().into_bytes());
    }
    let target = match l.target {
        LinkTarget::Hard { address } => Target::Hard(address),
        LinkTarget::Soft { path } => Target::Other(LinkKind::Soft, path, None),
        LinkTarget::External { file, path } => Target::Other(LinkKind::External, path, Some(file)),
        LinkTarget::UserDefined { link_type, .. } => {
            Target::Other(LinkKind::UserDefined, format!("type {link_type}"), None)
        }
    };
    insert_unique(named, l.name.into_bytes(), target, problems);
}

/// Adds member `name`. HDF5 never writes two links of one name: a later
/// entry of a name already there is ignored, recorded. The empty name is
/// never written at all (spec IV.A.2.g: a link name has at least one
/// byte): members reading it have lost their names (a local heap data
/// segment read as zeros, every name offset then naming ""), not collided,
/// so each one is kept (written `%EMPTY`, `%EMPTY~2`, ..., recorded: see
/// `members`) and its object visited.
fn insert_unique(
    named: &mut BTreeMap<Vec<u8>, Vec<Target>>,
    name: Vec<u8>,
    target: Target,
    problems: &mut Vec<Problem>,
) {
    match named.entry(name) {
        std::collections::btree_map::Entry::Occupied(mut e) if e.key().is_empty() => {
            e.get_mut().push(target);
        }
        std::collections::btree_map::Entry::Occupied(e) => problems.push(Problem::new(
            ProblemKind::Duplicate,
            None,
            "group",
            format!(
                "duplicate member name {:?}: later entry ignored",
                String::from_utf8_lossy(e.key())
            ),
        )),
        std::collections::btree_map::Entry::Vacant(v) => {
            v.insert(vec![target]);
        }
    }
}

/// Reads a symbol-table group: every SNOD the B-tree leads to, names from the
/// local heap.
fn symbol_table_members(
    image: &Image,
    (btree, heap_addr): (u64, u64),
    leaf_k: Option<u16>,
    named: &mut BTreeMap<Vec<u8>, Vec<Target>>,
    problems: &mut Vec<Problem>,
) {
    let segment = match local_heap_segment(image, heap_addr) {
        Ok(s) => s,
        Err(p) => {
            problems.push(p);
            &[][..]
        }
    };
    let (leaves, errs) = follow::btree_v1::collect_group_leaves(image, btree);
    problems.extend(errs.into_iter().map(Problem::from));
    for (i, snod_addr) in leaves.into_iter().enumerate() {
        // A large group's nodes lie all over the file (each allocated when
        // the one before filled up).
        if i > 0 {
            image.release();
        }
        let node = image.at("SNOD", snod_addr).and_then(|d| {
            symbol_table_node::parse(d, image.base.saturating_add(snod_addr), image.sizes)
        });
        let node = match node {
            Ok(n) => n,
            Err(e) => {
                problems.push(e.into());
                continue;
            }
        };
        follow::btree_v1::known_snod(image, snod_addr, node.entries.len());
        if let Some(k) = leaf_k {
            check_capacity(image, snod_addr, &node, k, problems);
        }
        for e in node.entries {
            let Some(name) = local_heap::name_at(segment, e.name_offset) else {
                problems.push(Problem::new(
                    ProblemKind::Unreadable,
                    image.absolute(snod_addr),
                    "SNOD",
                    format!(
                        "entry for object at {:#x}: name offset {} not readable in the local heap",
                        e.object_header_address, e.name_offset
                    ),
                ));
                continue;
            };
            let target = match e.scratch {
                Scratch::SymbolicLink { offset } => {
                    match local_heap::name_at(segment, u64::from(offset)) {
                        Some(t) => Target::Other(
                            LinkKind::Soft,
                            String::from_utf8_lossy(t).into_owned(),
                            None,
                        ),
                        None => {
                            problems.push(Problem::new(
                                ProblemKind::Unreadable,
                                image.absolute(snod_addr),
                                "SNOD",
                                "soft link value not readable in the local heap",
                            ));
                            continue;
                        }
                    }
                }
                _ => Target::Hard(e.object_header_address),
            };
            insert_unique(named, name.to_vec(), target, problems);
        }
    }
}

/// A node holds at most 2K entries and occupies room for 2K on disk
/// (spec III.B); the superblock's group leaf K tells K.
fn check_capacity(
    image: &Image,
    snod_addr: u64,
    node: &symbol_table_node::SymbolTableNode,
    k: u16,
    problems: &mut Vec<Problem>,
) {
    if node.exceeds_capacity(k) {
        problems.push(Problem::new(
            ProblemKind::BadValue,
            image.absolute(snod_addr),
            "SNOD",
            format!(
                "{} entries, more than 2K = {} (group leaf K {k})",
                node.entries.len(),
                2 * u32::from(k)
            ),
        ));
    }
    let size = symbol_table_node::capacity_size(k, image.sizes);
    if !image.contains(snod_addr, size) {
        problems.push(Problem::new(
            ProblemKind::Truncated,
            image.absolute(snod_addr),
            "SNOD",
            format!("a node of group leaf K {k} ({size} bytes) runs past the end of the file"),
        ));
    }
}

/// The data segment of a local heap; a segment cut by the end of the file is
/// returned as far as it goes, with a problem.
fn local_heap_segment<'a>(image: &Image<'a>, heap_addr: u64) -> Result<&'a [u8], Problem> {
    let at = image.base.saturating_add(heap_addr);
    let heap: LocalHeap = image
        .at("HEAP", heap_addr)
        .and_then(|d| local_heap::parse(d, at, image.sizes))
        .map_err(Problem::from)?;
    match image.slice("HEAP data segment", heap.data_address, heap.data_size) {
        Ok(s) => {
            image.known("HEAP", heap_addr, LocalHeap::header_size(image.sizes));
            image.known("HEAP data segment", heap.data_address, heap.data_size);
            Ok(s)
        }
        Err(e) => Err(e.into()),
    }
}

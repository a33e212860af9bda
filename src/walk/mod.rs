//! Tolerant traversal from the superblock into an [`Inventory`].
//!
//! The walk never stops at the first error: every damaged structure becomes a
//! [`Problem`] on the object it belongs to (or on the file), and the walk
//! goes on with the siblings. Each object header is visited once (hard links
//! are recorded as such), nesting depth is capped, and every read goes through
//! [`Image`], which never reads outside the file.
//!
//! The walk decides what structures mean for the inventory (kinds, paths,
//! problems, coverage); reading what an address leads to is
//! [`crate::follow`]'s (headers and continuations, B-trees, chunk listings,
//! heap objects, dense links), shared with the carver.

pub(crate) mod dataset;
pub(crate) mod group;
pub(crate) mod object;

use std::collections::HashMap;

use crate::follow::Image;
use crate::format::superblock::{self, Superblock};
use crate::format::Sizes;
use crate::inventory::{
    Inventory, Object, ObjectKind, Problem, ProblemKind, Status, SuperblockInfo,
};

pub use dataset::INCONSISTENT;
pub use object::{read_object, HeaderContents};

/// Caps that keep a walk over hostile input bounded.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deepest group nesting followed (the root is depth 0).
    pub max_depth: usize,
    /// Most objects recorded for one file.
    pub max_objects: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: 512,
            max_objects: 5_000_000,
        }
    }
}

/// Walks `bytes` (the whole file) and returns what it found.
pub fn walk(file: &str, bytes: &[u8]) -> Inventory {
    walk_with(file, bytes, Limits::default())
}

/// [`walk`] with explicit limits.
pub fn walk_with(file: &str, bytes: &[u8], limits: Limits) -> Inventory {
    walk_into(file, bytes, limits, None)
}

/// [`walk`] that hands each object, once complete, to `sink` instead of
/// keeping it in the inventory's `objects` (issue 15: memory flat in the
/// number of objects); only their counts stay ([`Inventory::streamed`]).
/// A file whose superblock says it was not closed keeps its objects (their
/// extents may still grow once the walk is over, [`grow_stale_extents`]):
/// the consumer reads both.
pub fn walk_streamed(file: &str, bytes: &[u8], sink: &mut dyn FnMut(Object)) -> Inventory {
    walk_into(file, bytes, Limits::default(), Some(sink))
}

fn walk_into(
    file: &str,
    bytes: &[u8],
    limits: Limits,
    sink: Option<&mut dyn FnMut(Object)>,
) -> Inventory {
    let mut inv = Inventory {
        file: file.to_string(),
        size: bytes.len() as u64,
        ..Inventory::default()
    };
    if bytes.is_empty() {
        inv.problems.push(Problem::new(
            ProblemKind::Truncated,
            None,
            "file",
            "the file is empty (0 bytes)",
        ));
        return inv;
    }
    let Some((sb_offset, sb)) = find_superblock(bytes, &mut inv) else {
        return inv;
    };
    let base = base_address(&sb, sb_offset, &mut inv);
    let mut image = Image::new(bytes, base, sb.sizes);
    // Messages shared file-wide live in heaps the superblock extension's
    // table names (spec III.I).
    if let Some(ext) = sb
        .extension_address
        .filter(|a| !crate::format::is_undefined(*a))
    {
        match crate::follow::sohm::read(&image, ext) {
            Ok(heaps) => image.shared_heaps = heaps,
            Err(e) => inv.problems.push(e.into()),
        }
    }
    // Every structure the walk reads is recorded (known metadata, no raw
    // data may meet it: `inventory::check_data_overlaps`).
    let known = crate::follow::Known::new(crate::follow::BtreeDegrees::of(&image, &sb));
    image.known = Some(&known);
    let info = SuperblockInfo::new(&sb, sb_offset, base);
    check_superblock(&info, &sb, bytes, &mut inv);
    let sink = sink.filter(|_| !info.unclosed(inv.size));
    inv.superblock = Some(info);

    let mut walker = Walker {
        image,
        sizes: sb.sizes,
        leaf_k: sb.group_leaf_k,
        limits,
        inv,
        visited: HashMap::new(),
        sink,
    };
    match sb.root_address() {
        Some(root) => walker.run(root),
        None => walker.inv.problems.push(Problem::new(
            ProblemKind::Unreadable,
            Some(sb_offset),
            "superblock",
            "no root group address",
        )),
    }
    let Walker { image, mut inv, .. } = walker;
    grow_stale_extents(&image, &mut inv);
    inv.metadata = known.into_spans();
    inv
}

/// The image a walk of `bytes` reads through: the base address and sizes
/// of the first superblock that parses (as [`walk`] takes it), for the
/// consumer of a streamed walk, which reads values before the walk is over.
pub fn image_of(bytes: &[u8]) -> Option<Image<'_>> {
    let (offset, sb) = first_superblock(bytes, &mut |_| {})?;
    Some(Image::new(bytes, offset, sb.sizes))
}

/// The metadata cache image the file's superblock extension names
/// ([`crate::follow::cache_image`]), or `None` without one: the first
/// superblock that parses (as [`walk`] takes it), its extension, the
/// message and the block. The walk itself runs on the bytes the overlay
/// was applied to ([`crate::pipeline`]).
pub fn cache_image(bytes: &[u8]) -> Option<crate::follow::cache_image::Overlay> {
    let (offset, sb) = first_superblock(bytes, &mut |_| {})?;
    let ext = sb
        .extension_address
        .filter(|a| !crate::format::is_undefined(*a))?;
    // The base address is the superblock's position ([`base_address`]).
    let unclosed = SuperblockInfo::new(&sb, offset, offset).unclosed(bytes.len() as u64);
    crate::follow::cache_image::read(&Image::new(bytes, offset, sb.sizes), ext, unclosed)
}

/// A writer that was not closed leaves the dataspace of its last flush in
/// a dataset's header while its index already lists newer chunks (issue
/// 13): the extent of such datasets grows over them
/// ([`dataset::grow_extent`]). Only where the superblock shows the writer
/// did not close the file: the "open for write" flag (version 2 and 3) or a
/// file longer than its stored end of file (written after the superblock
/// was). In a closed file, chunks past the extent are legal leftovers of a
/// shrink (spec III.D: a dataspace may shrink without freeing chunks), and
/// in a truncated one nothing says the header is stale.
fn grow_stale_extents(image: &Image, inv: &mut Inventory) {
    let unclosed = inv
        .superblock
        .as_ref()
        .is_some_and(|sb| sb.unclosed(inv.size));
    if !unclosed {
        return;
    }
    for o in &mut inv.objects {
        if let Some(mut ds) = o.dataset.take() {
            dataset::grow_extent(image, &mut ds, o);
            o.dataset = Some(ds);
        }
    }
}

/// The first signature (0, 512, 1024, ...) whose superblock parses.
fn find_superblock(bytes: &[u8], inv: &mut Inventory) -> Option<(u64, Superblock)> {
    let offsets = superblock::find_signatures(bytes);
    if offsets.is_empty() {
        inv.problems.push(Problem::new(
            ProblemKind::BadSignature,
            None,
            "superblock",
            "file signature not found at 0, 512, 1024, ...",
        ));
        inv.signature_found = false;
        return None;
    }
    inv.signature_found = true;
    first_superblock(bytes, &mut |e| inv.problems.push(e.into()))
}

/// The first superblock signature (0, 512, 1024, ...) whose superblock
/// parses; `failed` is told of each one that does not.
fn first_superblock(
    bytes: &[u8],
    failed: &mut dyn FnMut(crate::format::Error),
) -> Option<(u64, Superblock)> {
    for off in superblock::find_signatures(bytes) {
        let Some(data) = usize::try_from(off).ok().and_then(|o| bytes.get(o..)) else {
            continue;
        };
        match superblock::parse(data, off) {
            Ok(sb) => return Some((off, sb)),
            Err(e) => failed(e),
        }
    }
    None
}

/// Addresses are relative to the base address, which libhdf5 writes as the
/// superblock's own position (spec II.A, "Base Address"). A stored base that
/// differs is reported and the position is used, as libhdf5 does.
fn base_address(sb: &Superblock, sb_offset: u64, inv: &mut Inventory) -> u64 {
    if sb.base_address == sb_offset {
        return sb_offset;
    }
    inv.problems.push(Problem::new(
        ProblemKind::BadValue,
        Some(sb_offset),
        "superblock",
        format!(
            "base address {} differs from the superblock's position {}; using the position",
            sb.base_address, sb_offset
        ),
    ));
    sb_offset
}

/// Longest tail after the stored end of file taken for padding.
const MAX_PADDING_TAIL: u64 = 4096;

/// The length of the bytes after the stored end of file `stored` when they
/// are a short run of ASCII whitespace (PyTables and text tools append
/// newlines): they cannot hold any HDF5 structure or raw data a writer
/// left (a killed writer's tail holds chunks or headers, never only
/// whitespace, except for data that is itself whitespace).
fn padding_tail(bytes: &[u8], stored: u64) -> Option<u64> {
    let start = usize::try_from(stored).ok()?;
    let tail = bytes.get(start..).filter(|t| !t.is_empty())?;
    let len = tail.len() as u64;
    (len <= MAX_PADDING_TAIL && tail.iter().all(u8::is_ascii_whitespace)).then_some(len)
}

fn check_superblock(info: &SuperblockInfo, sb: &Superblock, bytes: &[u8], inv: &mut Inventory) {
    let size = bytes.len() as u64;
    let at = Some(info.offset);
    if info.checksum_ok == Some(false) {
        inv.problems.push(Problem::new(
            ProblemKind::Checksum,
            at,
            "superblock",
            "checksum mismatch: fields used as they are",
        ));
    }
    let stored = info.stored_file_size();
    if stored > size {
        inv.problems.push(Problem::new(
            ProblemKind::Truncated,
            at,
            "superblock",
            format!(
                "truncated file: eof {size} < stored_eof {stored} ({} bytes missing)",
                stored - size
            ),
        ));
    } else if let Some(tail) = padding_tail(bytes, stored) {
        inv.notes.push(Problem::new(
            ProblemKind::Note,
            Some(stored),
            "file",
            format!(
                "{tail} whitespace bytes after the stored end of file {stored} (no HDF5 \
                 structure: appended by a text tool or a writer; ignored)"
            ),
        ));
    } else if stored < size {
        inv.problems.push(Problem::new(
            ProblemKind::NotClosed,
            at,
            "superblock",
            format!(
                "file is {} bytes longer than the stored end of file {stored}: \
                 written after the superblock was last updated (writer not closed?)",
                size - stored
            ),
        ));
    }
    if info.open_for_write() {
        inv.problems.push(Problem::new(
            ProblemKind::NotClosed,
            at,
            "superblock",
            "file consistency flags say open for write: the writer did not close the file \
             (flag ignored)",
        ));
    }
    let _ = sb;
}

/// One object waiting to be visited.
struct Pending {
    path: String,
    address: u64,
    depth: usize,
}

struct Walker<'a, 's> {
    image: Image<'a>,
    sizes: Sizes,
    /// Group leaf K from a v0/v1 superblock (SNOD capacity checks).
    leaf_k: Option<u16>,
    limits: Limits,
    inv: Inventory,
    /// Object header address -> the first object visited there.
    visited: HashMap<u64, First>,
    /// Where complete objects go instead of `inv.objects`
    /// ([`walk_streamed`]).
    sink: Option<&'s mut dyn FnMut(Object)>,
}

/// The first object visited at an address, for the hard links to it.
enum First {
    /// Its index in `objects`.
    Kept(usize),
    /// Handed to the sink: what a hard link to it repeats.
    Streamed {
        path: Box<str>,
        kind: ObjectKind,
        status: Status,
    },
}

impl Walker<'_, '_> {
    /// Depth-first, iterative (no recursion), parents before children.
    fn run(&mut self, root: u64) {
        let mut stack = vec![Pending {
            path: "/".to_string(),
            address: root,
            depth: 0,
        }];
        while let Some(p) = stack.pop() {
            if self.objects() >= self.limits.max_objects {
                self.inv.problems.push(Problem::new(
                    ProblemKind::LimitExceeded,
                    None,
                    "walk",
                    format!("stopped after {} objects", self.limits.max_objects),
                ));
                break;
            }
            let children = self.visit(&p);
            // The headers of a mapped input are read where they lie, all
            // over the file (and each fault maps its neighbours too): its
            // pages are handed back after the root (whose members may lie
            // anywhere) and then now and then, so that resident memory does
            // not grow with the file.
            if self.objects() % crate::pipeline::RELEASE_EVERY == 1 {
                crate::pipeline::release(self.image.bytes);
            }
            if p.depth + 1 > self.limits.max_depth && !children.is_empty() {
                if let Some(o) = self.inv.objects.last_mut() {
                    o.damage(
                        Status::Partial,
                        Problem::new(
                            ProblemKind::LimitExceeded,
                            None,
                            "group",
                            format!(
                                "nesting deeper than {} levels: members not visited",
                                self.limits.max_depth
                            ),
                        ),
                    );
                }
                self.stream_last();
                continue;
            }
            for (path, address) in children.into_iter().rev() {
                stack.push(Pending {
                    path,
                    address,
                    depth: p.depth + 1,
                });
            }
            self.stream_last();
        }
    }

    /// Objects visited so far (kept or streamed).
    fn objects(&self) -> usize {
        let s = &self.inv.streamed;
        self.inv.objects.len() + (s.groups + s.datasets + s.datatypes + s.unknown) as usize
    }

    /// With a sink, hands the object just visited (complete now) to it,
    /// keeping what a later hard link to it repeats and its counts.
    fn stream_last(&mut self) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        let Some(o) = self.inv.objects.pop() else {
            return;
        };
        if o.hard_link_of.is_none() {
            self.visited.insert(
                o.address,
                First::Streamed {
                    path: o.path.as_str().into(),
                    kind: o.kind,
                    status: o.status,
                },
            );
        }
        self.inv.streamed.count(&o);
        sink(o);
    }

    /// Visits one object; returns its hard-linked members (path, address).
    fn visit(&mut self, p: &Pending) -> Vec<(String, u64)> {
        if let Some(first) = self.visited.get(&p.address) {
            let (path, kind, status) = match first {
                First::Kept(i) => {
                    let first = &self.inv.objects[*i];
                    (first.path.as_str(), first.kind, first.status)
                }
                First::Streamed { path, kind, status } => (&**path, *kind, *status),
            };
            let mut o = Object::new(p.path.clone(), p.address);
            o.kind = kind;
            o.status = status;
            o.hard_link_of = Some(path.to_string());
            self.inv.objects.push(o);
            return Vec::new();
        }
        self.visited
            .insert(p.address, First::Kept(self.inv.objects.len()));
        let mut o = Object::new(p.path.clone(), p.address);
        let contents = read_object(&self.image, p.address, &mut o);
        let mut children = Vec::new();
        if let Some(h) = contents {
            o.kind = h.kind();
            o.attributes = object::attributes(&self.image, &h, &mut o.problems);
            (o.link_order, o.attribute_order) = h.creation_orders();
            match o.kind {
                ObjectKind::Group => {
                    let members = group::members(&self.image, &h, &p.path, self.leaf_k, &mut o);
                    o.member_names = members.names;
                    o.other_charset_names = members.other_charset;
                    for m in members.links {
                        self.inv.links.push(m);
                    }
                    children = members.hard;
                }
                ObjectKind::Dataset => {
                    o.dataset = dataset::describe(&self.image, &h, &mut o).map(Box::new);
                    o.committed_type = h.datatype_committed;
                }
                ObjectKind::Datatype => o.datatype = h.datatype.clone(),
                ObjectKind::Unknown => o.damage(
                    Status::Partial,
                    Problem::new(
                        ProblemKind::Unreadable,
                        self.image.absolute(p.address),
                        "object header",
                        "no message identifies it as a group, dataset or datatype",
                    ),
                ),
            }
            // Attribute problems make the object partial too.
            if o.attributes.iter().any(|a| !a.problems.is_empty()) {
                o.status = o.status.max(Status::Partial);
            }
            if o.problems.iter().any(|_| true) && o.status == Status::Intact {
                o.status = Status::Partial;
            }
        }
        let _ = self.sizes;
        self.inv.objects.push(o);
        children
    }
}

/// Joins a member name to its group's path. Names that HDF5 could not have
/// written ('/' inside, empty, "." or "..") are escaped and reported.
pub fn child_path(parent: &str, name: &[u8]) -> (String, Option<String>) {
    // The common case, a name HDF5 could have written: one allocation.
    if let Ok(text) = std::str::from_utf8(name) {
        if !(text.is_empty() || text == "." || text == ".." || text.contains(['/', '\0'])) {
            return (join_path(parent, text), None);
        }
    }
    let text = String::from_utf8_lossy(name);
    let mut problem = None;
    let utf8 = std::str::from_utf8(name).is_ok();
    let clean = if !utf8
        || text.is_empty()
        || text == "."
        || text == ".."
        || text.contains('/')
        || text.contains('\0')
    {
        let mut escaped = String::new();
        for chunk in name.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '/' => escaped.push_str("%2F"),
                    '\0' => escaped.push_str("%00"),
                    '%' => escaped.push_str("%25"),
                    c => escaped.push(c),
                }
            }
            // Bytes that are not UTF-8 keep their value (U+FFFD would make
            // different names one path).
            for b in chunk.invalid() {
                escaped.push_str(&format!("%{b:02X}"));
            }
        }
        problem = Some(if utf8 {
            format!("illegal member name {text:?}: escaped")
        } else {
            format!("member name {escaped:?} is not UTF-8: invalid bytes escaped as %XX")
        });
        match escaped.as_str() {
            "" => "%EMPTY".to_string(),
            "." => "%2E".to_string(),
            ".." => "%2E%2E".to_string(),
            _ => escaped,
        }
    } else {
        text.into_owned()
    };
    (join_path(parent, &clean), problem)
}

/// `parent/name` (`/name` below the root), allocated once.
fn join_path(parent: &str, name: &str) -> String {
    let parent = if parent == "/" { "" } else { parent };
    let mut path = String::with_capacity(parent.len() + 1 + name.len());
    path.push_str(parent);
    path.push('/');
    path.push_str(name);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_paths_are_escaped() {
        assert_eq!(child_path("/", b"a"), ("/a".to_string(), None));
        assert_eq!(child_path("/a", b"b"), ("/a/b".to_string(), None));
        let (p, e) = child_path("/a", b"../x");
        assert_eq!(p, "/a/..%2Fx");
        assert!(e.is_some());
        assert_eq!(child_path("/", b"..").0, "/%2E%2E");
        assert_eq!(child_path("/", b"").0, "/%EMPTY");
        let (p, e) = child_path("/", b"a\xff%\xfe");
        assert_eq!(p, "/a%FF%25%FE");
        assert!(e.is_some());
    }

    #[test]
    fn empty_and_garbage_inputs() {
        let inv = walk("e", &[]);
        assert_eq!(inv.verdict(), crate::inventory::Verdict::Empty);
        let inv = walk("t", b"hello world, not hdf5 at all");
        assert_eq!(inv.verdict(), crate::inventory::Verdict::NotHdf5);
        assert_eq!(
            inv.problems[0].kind,
            crate::inventory::ProblemKind::BadSignature
        );
    }
}

//! The native writer: the output's bytes written by h5salvage itself, for
//! inputs whose every object falls in a subset decided beforehand
//! ([`supports`]); the libhdf5 backend writes everything else.
//!
//! Raw data is appended to the output as it arrives (contiguous data,
//! stored chunks copied as they are, full global heap collections); the
//! metadata is kept as a compact tree in memory and written at the end:
//! chunk B-trees (version 1, spec III.A.1), then one version-2 object
//! header per object (spec IV.A.1.b; groups hold their links compactly:
//! link info, group info and link messages), then the version-2
//! superblock at offset 0 (spec II.A). The format is what libhdf5 writes
//! with the 1.8 low bound, readable by HDF5 1.8 and later.
//!
//! `encode.rs` holds one encoder per on-disk structure, `eligible.rs` the
//! rule deciding which inputs come here.

mod eligible;
pub(crate) mod encode;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use crate::format::message::data_layout::LayoutClass;
use crate::format::message::dataspace::{Dataspace, DataspaceKind};
use crate::format::message::datatype::{
    CharacterSet, Datatype, DatatypeClass, StringPadding, VlenKind,
};
use crate::format::UNDEFINED;
use crate::inventory::{CreationOrder, Dataset};
use crate::read::HeapValues;

use super::WriteError;
pub use eligible::{supports, supports_file, supports_object, Built};
use encode::HeaderFlags;

/// First address after the superblock: where data starts.
const SUPERBLOCK_SIZE: u64 = 48;
/// A global heap collection is written once it holds this much.
const HEAP_COLLECTION: usize = 64 << 10;
/// Bytes of contiguous variable-length data (slots and heap patches) held
/// until their heap collections are written, so that small datasets share
/// collections; above it, everything held is written (principle 4: memory
/// does not grow with the inputs of a merge).
const HELD_BUDGET: usize = 8 << 20;

/// An error for a call the native writer does not take: the eligibility
/// rule should have sent the input to libhdf5 (tests look for this text).
pub const UNSUPPORTED: &str = "native writer: unsupported";

fn unsupported(path: &str, what: &str) -> WriteError {
    WriteError::new(path, UNSUPPORTED, what)
}

/// With `H5SALVAGE_WRITER_LOG` set, says on stderr which backend writes
/// each input (`h5salvage: writer: native: FILE` or `... libhdf5 from FILE:
/// why`): tests and benchmarks check the path taken.
pub fn log(what: &str) {
    if std::env::var_os("H5SALVAGE_WRITER_LOG").is_some() {
        eprintln!("h5salvage: writer: {what}");
    }
}

/// The error of a `Writer` call the native backend never takes.
pub fn unsupported_call(path: &str, what: &str) -> WriteError {
    unsupported(path, what)
}

/// Where a variable-length value went: collection number, object index.
#[derive(Clone, Copy)]
struct HeapRef {
    collection: usize,
    index: u16,
}

/// Byte offsets in a buffer to patch with heap IDs once collections have
/// addresses.
type Patches = Vec<(u32, HeapRef)>;

/// An attribute: its whole message body (spec IV.A.2.m, version 3), and
/// where heap IDs go in it.
struct Attr {
    body: Vec<u8>,
    patches: Patches,
}

impl Attr {
    fn name(&self) -> &[u8] {
        let n = self
            .body
            .get(2..4)
            .map_or(0, |b| usize::from(u16::from_le_bytes([b[0], b[1]])));
        self.body
            .get(9..9 + n.saturating_sub(1))
            .unwrap_or_default()
    }
}

enum Target {
    Hard(u32),
    Soft(Box<str>),
    External(Box<(String, String)>),
}

struct Link {
    name: Box<str>,
    target: Target,
    /// The name's character set is UTF-8 (spec IV.A.2.g).
    utf8: bool,
}

/// Groups above this many links get a name index.
const INDEXED_LINKS: usize = 16;

/// A group's links, in creation order; large groups index them by name.
/// The index maps a name to its link's key (`keys`, one per link,
/// increasing): taking a link out leaves the other keys valid, so a rename
/// or removal re-indexes nothing.
struct Group {
    links: Vec<Link>,
    /// With `by_name`: each link's key, in the order of `links`.
    keys: Vec<u64>,
    by_name: Option<HashMap<Box<str>, u64>>,
    order: CreationOrder,
    /// Links (re-)indexed by [`Group::reindex`] so far.
    #[cfg(test)]
    reindexed: usize,
}

impl Group {
    fn new(order: CreationOrder) -> Group {
        Group {
            links: Vec::new(),
            keys: Vec::new(),
            by_name: None,
            order,
            #[cfg(test)]
            reindexed: 0,
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        match &self.by_name {
            Some(m) => self.keys.binary_search(m.get(name)?).ok(),
            None => self.links.iter().position(|l| &*l.name == name),
        }
    }

    /// Indexes every link anew (when the group grows past
    /// [`INDEXED_LINKS`], or its links were put in another order).
    fn reindex(&mut self) {
        #[cfg(test)]
        {
            self.reindexed += self.links.len();
        }
        self.keys.clear();
        self.by_name = (self.links.len() > INDEXED_LINKS).then(|| {
            self.keys = (0..self.links.len() as u64).collect();
            self.links
                .iter()
                .zip(0u64..)
                .map(|(l, k)| (l.name.clone(), k))
                .collect()
        });
    }

    fn push(&mut self, link: Link) {
        if let Some(m) = &mut self.by_name {
            // Keys increase along `links`: the next one is past the last.
            let k = self.keys.last().map_or(0, |k| k + 1);
            m.insert(link.name.clone(), k);
            self.keys.push(k);
            self.links.push(link);
        } else {
            self.links.push(link);
            if self.links.len() > INDEXED_LINKS {
                self.reindex();
            }
        }
    }

    fn take(&mut self, name: &str) -> Option<Link> {
        let i = self.index(name)?;
        if let Some(m) = &mut self.by_name {
            m.remove(name);
            self.keys.remove(i);
        }
        Some(self.links.remove(i))
    }
}

enum Data {
    /// Nothing written yet (contiguous: address undefined).
    None,
    /// Compact data, or contiguous variable-length data whose heap
    /// collections are not written yet (heap IDs patched then).
    Held(Vec<u8>, Patches),
    /// Contiguous data written at `address`.
    At(u64, u64),
    /// Chunks written: their offsets (rank each, one after the other) and
    /// (address, stored size, filter mask); the offsets again as a set, so
    /// that a chunk written twice is found in constant time (principle 4:
    /// a dataset's chunk count is the input's).
    Chunks(Vec<u64>, Vec<(u64, u32, u32)>, HashSet<Box<[u64]>>),
}

#[derive(Clone, PartialEq)]
pub(crate) enum LayoutKind {
    Compact,
    Contiguous,
    Chunked(Box<[u64]>),
}

struct Ds {
    elem: u32,
    /// The datatype, where it has variable-length parts.
    vlen: Option<Box<Datatype>>,
    dims: Box<[u64]>,
    /// Elements in the dataspace (0 for a null dataspace, 1 for a scalar).
    count: u64,
    /// The header's messages but the layout (records, `encode::begin`);
    /// the layout record is added at the end.
    records: Vec<u8>,
    class: LayoutKind,
    data: Data,
    /// Chunks libhdf5 would have allocated and filled at creation
    /// ([`early_fill`]): one element's fill bytes and the filter mask the
    /// unwritten chunks are stored with.
    early_fill: Option<(Box<[u8]>, u32)>,
}

impl Ds {
    /// A placeholder while a dataset's own fields are used.
    fn empty() -> Ds {
        Ds {
            elem: 0,
            vlen: None,
            dims: Box::new([]),
            count: 0,
            records: Vec::new(),
            class: LayoutKind::Compact,
            data: Data::None,
            early_fill: None,
        }
    }
}

enum Kind {
    Group(Box<Group>),
    Dataset(Box<Ds>),
    /// Sealed: its header is written at this address
    /// ([`NativeWriter::seal`]); nothing of it is held.
    Written(u64),
}

struct Obj {
    kind: Kind,
    attrs: Vec<Attr>,
    attr_order: CreationOrder,
    /// Times its header stores (access, modification, change, birth).
    times: Option<[u32; 4]>,
}

/// The global heap collections: full ones written, the current one held
/// (its objects, as [`encode::heap_collection`] takes them).
#[derive(Default)]
struct Heap {
    addresses: Vec<u64>,
    current: Vec<Vec<u8>>,
    bytes: usize,
}

/// One output being built by h5salvage itself.
pub struct NativeWriter {
    out: BufWriter<File>,
    pos: u64,
    objects: Vec<Obj>,
    /// Objects asked to be sealed whose header cannot be written yet
    /// (heap values in the collection not yet written, members not
    /// sealed): tried again when a collection is written.
    waiting: Vec<u32>,
    /// Objects sealed so far.
    sealed: usize,
    heap: Heap,
    /// Bytes of contiguous data held (`Data::Held`), at most [`HELD_BUDGET`].
    held: usize,
    /// The contiguous datasets whose data was held (some written since):
    /// [`NativeWriter::write_held`] visits these, not every object.
    held_ids: Vec<u32>,
    notes: Vec<String>,
    shown: String,
    /// Bytes before the superblock, left for the user block (written by
    /// `Writer::finish`): the base address (spec II.A).
    base: u64,
    /// Paths whose link name takes the other character set than its bytes
    /// suggest (`Writer::other_charset`).
    other_charset: std::collections::HashSet<String>,
}

fn split(path: &str) -> (&str, &str) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) => ("/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => ("/", trimmed),
    }
}

fn io(shown: &str, what: &str, e: std::io::Error) -> WriteError {
    WriteError::new(shown, what, e.to_string())
}

/// Offsets of the variable-length slots in one element of `t`.
fn slot_offsets(t: &Datatype, base: usize, out: &mut Vec<usize>, depth: u32) -> bool {
    if depth > crate::format::message::datatype::MAX_DEPTH || out.len() > 1 << 20 {
        return false;
    }
    match &t.class {
        DatatypeClass::VariableLength { .. } => {
            out.push(base);
            true
        }
        DatatypeClass::Compound { members } => members.iter().all(|m| {
            usize::try_from(m.offset)
                .is_ok_and(|o| slot_offsets(&m.datatype, base + o, out, depth + 1))
        }),
        DatatypeClass::Array { dims, base: b } => {
            if !b.is_variable_length() {
                return true;
            }
            let n: u64 = dims.iter().map(|d| u64::from(*d)).product();
            (0..n).all(|i| slot_offsets(b, base + (i * u64::from(b.size)) as usize, out, depth + 1))
        }
        _ => true,
    }
}

fn rec_err(path: &str) -> impl Fn(String) -> WriteError + '_ {
    move |e| unsupported(path, &e)
}

impl NativeWriter {
    /// Creates the output at `tmp` (which must not exist); the root group
    /// tracks link and attribute creation order as given; the superblock
    /// follows `user_block` bytes left for a user block (0, or a power of
    /// two of at least 512: the base address).
    pub fn create(
        tmp: &Path,
        shown: &str,
        links: CreationOrder,
        attrs: CreationOrder,
        user_block: u64,
    ) -> Result<NativeWriter, WriteError> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .map_err(|e| io(&tmp.display().to_string(), "create", e))?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        std::io::copy(
            &mut std::io::Read::take(std::io::repeat(0), user_block),
            &mut out,
        )
        .and_then(|_| out.write_all(&[0; SUPERBLOCK_SIZE as usize]))
        .map_err(|e| io(shown, "write", e))?;
        let root = Obj {
            kind: Kind::Group(Box::new(Group::new(links))),
            attrs: Vec::new(),
            attr_order: attrs,
            times: None,
        };
        Ok(NativeWriter {
            out,
            pos: SUPERBLOCK_SIZE,
            objects: vec![root],
            waiting: Vec::new(),
            sealed: 0,
            heap: Heap::default(),
            held: 0,
            held_ids: Vec::new(),
            notes: Vec::new(),
            shown: shown.to_string(),
            base: user_block,
            other_charset: std::collections::HashSet::new(),
        })
    }

    /// The link at `path` (made later) takes the other character set than
    /// its name's bytes suggest.
    pub fn other_charset(&mut self, path: &str) {
        self.other_charset.insert(path.to_string());
    }

    fn group_at(&self, i: usize) -> Option<&Group> {
        match &self.objects.get(i)?.kind {
            Kind::Group(g) => Some(g),
            _ => None,
        }
    }

    fn group_mut(&mut self, i: usize) -> Option<&mut Group> {
        match &mut self.objects.get_mut(i)?.kind {
            Kind::Group(g) => Some(g),
            _ => None,
        }
    }

    /// The object at absolute `path` (hard links only), if any.
    fn find(&self, path: &str) -> Option<usize> {
        let mut cur = 0usize;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let g = self.group_at(cur)?;
            match g.links.get(g.index(part)?)?.target {
                Target::Hard(i) => cur = i as usize,
                _ => return None,
            }
        }
        Some(cur)
    }

    /// True when `path` names a link (of any kind) in the output.
    pub fn exists(&self, path: &str) -> bool {
        if path.trim_end_matches('/').is_empty() {
            return true;
        }
        let (parent, name) = split(path);
        self.find(parent)
            .and_then(|p| self.group_at(p))
            .is_some_and(|g| g.index(name).is_some())
    }

    /// True when `path` is a group that takes new links (not sealed).
    pub fn open_group(&self, path: &str) -> bool {
        self.find(path).and_then(|i| self.group_at(i)).is_some()
    }

    /// Adds link `name` to group `parent`; fails if it exists.
    fn add_link(
        &mut self,
        parent: usize,
        name: &str,
        target: Target,
        path: &str,
    ) -> Result<(), WriteError> {
        if name.is_empty() || name == "." {
            return Err(WriteError::new(path, "link", "empty link name"));
        }
        let utf8 = super::utf8_name(name, self.other_charset.contains(path));
        let g = self
            .group_mut(parent)
            .ok_or_else(|| WriteError::new(path, "link", "parent is not a group"))?;
        if g.index(name).is_some() {
            return Err(WriteError::new(path, "link", "exists"));
        }
        g.push(Link {
            name: name.into(),
            target,
            utf8,
        });
        Ok(())
    }

    /// Adds `obj` under `path` (parent groups created as needed).
    fn add_object(&mut self, path: &str, obj: Obj) -> Result<usize, WriteError> {
        let (parent, name) = split(path);
        let p = self.group(parent, CreationOrder::default(), CreationOrder::default())?;
        let i = self.objects.len();
        let id =
            u32::try_from(i).map_err(|_| WriteError::new(path, "create", "too many objects"))?;
        self.add_link(p, name, Target::Hard(id), path)?;
        self.objects.push(obj);
        Ok(i)
    }

    /// Creates the group at `path` and its missing parents (idempotent; an
    /// existing group is left as it is).
    pub fn group(
        &mut self,
        path: &str,
        links: CreationOrder,
        attrs: CreationOrder,
    ) -> Result<usize, WriteError> {
        if let Some(i) = self.find(path) {
            return match self.objects[i].kind {
                Kind::Group(_) => Ok(i),
                _ => Err(WriteError::new(path, "group", "exists and is not a group")),
            };
        }
        if self.exists(path) {
            return Err(WriteError::new(path, "group", "exists and is not a group"));
        }
        self.add_object(
            path,
            Obj {
                kind: Kind::Group(Box::new(Group::new(links))),
                attrs: Vec::new(),
                attr_order: attrs,
                times: None,
            },
        )
    }

    fn link_to(&mut self, path: &str, target: Target) -> Result<(), WriteError> {
        let (parent, name) = split(path);
        let p = self.group(parent, CreationOrder::default(), CreationOrder::default())?;
        self.add_link(p, name, target, path)
    }

    pub fn soft_link(&mut self, path: &str, target: &str) -> Result<(), WriteError> {
        self.link_to(path, Target::Soft(target.into()))
    }

    pub fn external_link(
        &mut self,
        path: &str,
        file: &str,
        object: &str,
    ) -> Result<(), WriteError> {
        let t = Target::External(Box::new((file.to_string(), object.to_string())));
        self.link_to(path, t)
    }

    /// Takes link `path` out of its group.
    fn unlink(&mut self, path: &str) -> Result<Target, WriteError> {
        let (parent, name) = split(path);
        let p = self
            .find(parent)
            .ok_or_else(|| WriteError::new(path, "unlink", "no such group"))?;
        self.group_mut(p)
            .and_then(|g| g.take(name))
            .map(|l| l.target)
            .ok_or_else(|| WriteError::new(path, "unlink", "no such link"))
    }

    /// Renames link `from` to `to` (whose parent must exist); the link gets
    /// the next creation order of its new group, as in libhdf5.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), WriteError> {
        if self.exists(to) {
            return Err(WriteError::new(from, "rename", format!("{to} exists")));
        }
        let (parent, name) = split(to);
        let p = self
            .find(parent)
            .ok_or_else(|| WriteError::new(to, "rename", "no such group"))?;
        let t = self.unlink(from)?;
        self.add_link(p, name, t, to)
    }

    pub fn remove(&mut self, path: &str) -> Result<(), WriteError> {
        self.unlink(path).map(|_| ())
    }

    /// Puts the links of `group` in the order of `names` (links not named
    /// come after them, in their order).
    pub fn reorder_links(&mut self, group: &str, names: &[String]) -> Result<(), WriteError> {
        let g = self
            .find(group)
            .and_then(|g| self.group_mut(g))
            .ok_or_else(|| WriteError::new(group, "reorder", "no such group"))?;
        let mut taken: Vec<Option<Link>> =
            std::mem::take(&mut g.links).into_iter().map(Some).collect();
        let mut ordered = Vec::with_capacity(taken.len());
        let position = |taken: &[Option<Link>], n: &str| {
            taken
                .iter()
                .position(|l| l.as_ref().is_some_and(|l| &*l.name == n))
        };
        let index = g.by_name.take();
        for n in names {
            let i = match &index {
                Some(m) => m.get(n.as_str()).and_then(|k| g.keys.binary_search(k).ok()),
                None => position(&taken, n),
            };
            if let Some(l) = i.and_then(|i| taken.get_mut(i)).and_then(Option::take) {
                ordered.push(l);
            }
        }
        ordered.extend(taken.into_iter().flatten());
        g.links = ordered;
        g.reindex();
        Ok(())
    }

    /// Appends `bytes` at the end of the output; returns their address.
    fn append(&mut self, bytes: &[u8]) -> Result<u64, WriteError> {
        let at = self.pos;
        self.out
            .write_all(bytes)
            .map_err(|e| io(&self.shown, "write", e))?;
        self.pos += bytes.len() as u64;
        Ok(at)
    }

    /// Puts one variable-length value in the current heap collection.
    fn heap_put(&mut self, data: &[u8]) -> Result<HeapRef, WriteError> {
        let size = encode::heap_object_size(data.len());
        if !self.heap.current.is_empty()
            && (self.heap.bytes + size > HEAP_COLLECTION || self.heap.current.len() >= 0xfff0)
        {
            self.heap_flush()?;
        }
        self.heap.current.push(data.to_vec());
        self.heap.bytes += size;
        Ok(HeapRef {
            collection: self.heap.addresses.len(),
            index: self.heap.current.len() as u16,
        })
    }

    fn heap_flush(&mut self) -> Result<(), WriteError> {
        if self.heap.current.is_empty() {
            return Ok(());
        }
        let c = encode::heap_collection(&self.heap.current);
        let at = self.append(&c)?;
        self.heap.addresses.push(at);
        self.heap.current.clear();
        self.heap.bytes = 0;
        self.seal_waiting()
    }

    /// Seals object `path` (a dataset, or a group whose members are
    /// sealed): nothing more will be written to it, so its header is
    /// written now (or, when its heap values are in the collection not yet
    /// written, once that is) and only its address is kept (issue 15:
    /// memory flat in the number of objects). Members come before their
    /// group: a group waits for its members.
    pub fn seal(&mut self, path: &str) -> Result<(), WriteError> {
        let i = self
            .find(path)
            .ok_or_else(|| WriteError::new(path, "seal", "no such object"))?;
        let id = u32::try_from(i).map_err(|_| WriteError::new(path, "seal", "too many objects"))?;
        if !self.try_seal(i)? {
            self.waiting.push(id);
        }
        Ok(())
    }

    fn seal_waiting(&mut self) -> Result<(), WriteError> {
        // Members were asked before their groups: one pass.
        for i in std::mem::take(&mut self.waiting) {
            if !self.try_seal(i as usize)? {
                self.waiting.push(i);
            }
        }
        Ok(())
    }

    /// Writes object `i`'s header if everything it refers to has an
    /// address (heap collections, members' headers); false if not yet.
    fn try_seal(&mut self, i: usize) -> Result<bool, WriteError> {
        let written = self.heap.addresses.len();
        let resolved = |p: &Patches| p.iter().all(|(_, r)| r.collection < written);
        let obj = &self.objects[i];
        if !obj.attrs.iter().all(|a| resolved(&a.patches)) {
            return Ok(false);
        }
        let ready = match &obj.kind {
            Kind::Written(_) => return Ok(true),
            Kind::Group(g) => g.links.iter().all(|l| match l.target {
                Target::Hard(c) => self
                    .objects
                    .get(c as usize)
                    .is_some_and(|o| matches!(o.kind, Kind::Written(_))),
                _ => true,
            }),
            Kind::Dataset(d) => match &d.data {
                Data::Held(_, p) => resolved(p),
                _ => true,
            },
        };
        if !ready {
            return Ok(false);
        }
        let heaps = std::mem::take(&mut self.heap.addresses);
        let done = self.write_header(i, &heaps);
        self.heap.addresses = heaps;
        let at = done?;
        self.objects[i] = Obj {
            kind: Kind::Written(at),
            attrs: Vec::new(),
            attr_order: CreationOrder::default(),
            times: None,
        };
        self.sealed += 1;
        Ok(true)
    }

    /// Objects whose header is still held (not sealed).
    pub fn unsealed(&self) -> usize {
        self.objects.len() - self.sealed
    }

    /// Appends the header of object `i` (its data and members written,
    /// its heap values in collections at `heaps`); returns its address.
    fn write_header(&mut self, i: usize, heaps: &[u64]) -> Result<u64, WriteError> {
        for a in &mut self.objects[i].attrs {
            patch(&mut a.body, &a.patches, heaps);
            a.patches = Vec::new();
        }
        if let Kind::Dataset(d) = &mut self.objects[i].kind {
            let mut d = std::mem::replace(d, Box::new(Ds::empty()));
            if let (Data::Held(b, p), LayoutKind::Contiguous) = (&d.data, &d.class) {
                let cost = b.len() + p.len() * std::mem::size_of::<(u32, HeapRef)>();
                self.held = self.held.saturating_sub(cost);
            }
            let l = self.finish_layout(&mut d, heaps)?;
            d.records.extend_from_slice(&l);
            if let Kind::Dataset(slot) = &mut self.objects[i].kind {
                *slot = d;
            }
        }
        let mut recs = Vec::new();
        let f = self.records(i, None, &mut recs)?;
        let mut header = Vec::with_capacity(recs.len() + 64);
        encode::object_header(&recs, f, &mut header);
        self.append(&header)
    }

    /// Stores the variable-length values of `n` elements of `t` in `value`
    /// (at byte `base` of the buffer the patches refer to) in the heap;
    /// returns where their IDs go. Every slot must be resolved.
    fn place_vlen(
        &mut self,
        where_: &str,
        t: &Datatype,
        n: usize,
        value: &mut [u8],
        base: usize,
        heap: &HeapValues,
    ) -> Result<Patches, WriteError> {
        if !heap.regions.is_empty() {
            return Err(unsupported(where_, "region references"));
        }
        if !t.is_variable_length() {
            return Ok(Vec::new());
        }
        let mut per = Vec::new();
        if !slot_offsets(t, 0, &mut per, 0) || per.is_empty() {
            return Err(unsupported(where_, "variable-length layout"));
        }
        let size = t.size as usize;
        let expected = per.len().saturating_mul(n);
        if heap.vlen.len() != expected {
            return Err(unsupported(
                where_,
                &format!(
                    "{} variable-length values resolved, {expected} slots",
                    heap.vlen.len()
                ),
            ));
        }
        let mut patches = Vec::with_capacity(expected);
        for (k, s) in heap.vlen.iter().enumerate() {
            let want = (k / per.len()) * size + per[k % per.len()];
            if s.offset != want || !s.nested.is_empty() || !s.regions.is_empty() {
                return Err(unsupported(where_, "nested variable-length values"));
            }
            let count = u32::try_from(s.count)
                .map_err(|_| unsupported(where_, "sequence longer than 2^32"))?;
            let r = self.heap_put(&s.data)?;
            let slot = value.get_mut(s.offset..s.offset + 16).ok_or_else(|| {
                WriteError::new(where_, "variable-length slot", "outside the value")
            })?;
            slot[..4].copy_from_slice(&count.to_le_bytes());
            let at = u32::try_from(base + s.offset)
                .map_err(|_| unsupported(where_, "value above 4 GiB"))?;
            patches.push((at, r));
        }
        Ok(patches)
    }

    /// Writes attribute `name` on `path` (replacing one of that name).
    #[allow(clippy::too_many_arguments)]
    pub fn attribute(
        &mut self,
        path: &str,
        name: &str,
        charset: CharacterSet,
        datatype: &Datatype,
        dataspace: &Dataspace,
        value: &[u8],
        heap: &HeapValues,
        committed: Option<u64>,
    ) -> Result<(), WriteError> {
        let where_ = format!("{path} @{name}");
        if committed.is_some() {
            return Err(unsupported(&where_, "committed datatype"));
        }
        let obj = self
            .find(path)
            .ok_or_else(|| WriteError::new(&where_, "attribute", "no such object"))?;
        let n = dataspace
            .element_count()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| WriteError::new(&where_, "dataspace", "element count overflows"))?;
        let need = n
            .checked_mul(datatype.size as usize)
            .ok_or_else(|| WriteError::new(&where_, "attribute", "size overflow"))?;
        let value = value.get(..need).ok_or_else(|| {
            WriteError::new(
                &where_,
                "attribute",
                format!("value has {} bytes, {need} needed", value.len()),
            )
        })?;
        let mut dt = Vec::new();
        encode::datatype(datatype, &mut dt).map_err(rec_err(&where_))?;
        let mut ds = Vec::new();
        encode::dataspace(dataspace, &mut ds).map_err(rec_err(&where_))?;
        let mut body = Vec::with_capacity(9 + name.len() + 1 + dt.len() + ds.len() + value.len());
        encode::attribute(name, charset, &dt, &ds, value, &mut body);
        if body.len() > 0xffff {
            return Err(unsupported(&where_, "attribute above 64 KiB"));
        }
        let at = body.len() - value.len();
        let patches = self.place_vlen(&where_, datatype, n, &mut body[at..], at, heap)?;
        if matches!(self.objects[obj].kind, Kind::Written(_)) {
            return Err(WriteError::new(
                &where_,
                "attribute",
                "header already written",
            ));
        }
        let attrs = &mut self.objects[obj].attrs;
        attrs.retain(|a| a.name() != name.as_bytes());
        attrs.push(Attr { body, patches });
        Ok(())
    }

    /// Stores `times` (access, modification, change, birth) in the header
    /// of the object at `path`, or none.
    pub fn times(&mut self, path: &str, times: Option<[u32; 4]>) -> Result<(), WriteError> {
        let obj = self
            .find(path)
            .ok_or_else(|| WriteError::new(path, "object header times", "no such object"))?;
        if matches!(self.objects[obj].kind, Kind::Written(_)) {
            return Err(WriteError::new(
                path,
                "object header times",
                "header already written",
            ));
        }
        self.objects[obj].times = times;
        Ok(())
    }

    /// A scalar variable-length UTF-8 string attribute.
    pub fn mark(&mut self, path: &str, name: &str, value: &str) -> Result<(), WriteError> {
        let text = value.replace('\0', "\u{fffd}");
        let t = Datatype {
            version: 1,
            size: 16,
            class: DatatypeClass::VariableLength {
                kind: VlenKind::String,
                padding: StringPadding::NullTerminate,
                charset: CharacterSet::Utf8,
                // libhdf5's variable-length strings have an unsigned
                // char base (H5T__set_size).
                base: Box::new(Datatype::unsigned(1)),
            },
        };
        let space = Dataspace {
            version: 2,
            kind: DataspaceKind::Scalar,
            dims: Vec::new(),
            max_dims: None,
        };
        let slot = crate::read::vlen::VlenSlot::new(0, text.len() as u64, text.into_bytes());
        let heap = HeapValues::vlen(vec![slot]);
        self.attribute(
            path,
            name,
            CharacterSet::Ascii,
            &t,
            &space,
            &[0; 16],
            &heap,
            None,
        )
    }

    /// Creates a dataset like `ds` (type, shape, layout, filters, fill value).
    pub fn create_dataset(
        &mut self,
        path: &str,
        ds: &Dataset,
        fill_heap: &HeapValues,
        attrs: CreationOrder,
        committed: Option<u64>,
    ) -> Result<(), WriteError> {
        if committed.is_some() {
            return Err(unsupported(path, "committed datatype"));
        }
        if !fill_heap.vlen.is_empty() || !fill_heap.regions.is_empty() {
            return Err(unsupported(path, "variable-length fill value"));
        }
        let t = &ds.datatype;
        let vlen = t.is_variable_length();
        let class = match &ds.layout.class {
            LayoutClass::Compact { .. } => LayoutKind::Compact,
            LayoutClass::Contiguous { .. } => LayoutKind::Contiguous,
            LayoutClass::Chunked { dims, .. } if !vlen => {
                if dims.len() != ds.dataspace.dims.len() {
                    return Err(WriteError::new(path, "chunked layout", "rank mismatch"));
                }
                LayoutKind::Chunked(dims.clone().into_boxed_slice())
            }
            _ => return Err(unsupported(path, "layout")),
        };
        let err = rec_err(path);
        let mut r = Vec::new();
        let s = encode::begin(encode::MSG_DATASPACE, 0, &mut r);
        encode::dataspace(&ds.dataspace, &mut r).map_err(&err)?;
        encode::end(s, &mut r).map_err(&err)?;
        let s = encode::begin(encode::MSG_DATATYPE, encode::FLAG_CONSTANT, &mut r);
        encode::datatype(t, &mut r).map_err(&err)?;
        encode::end(s, &mut r).map_err(&err)?;
        let s = encode::begin(encode::MSG_FILL_VALUE, encode::FLAG_CONSTANT, &mut r);
        match &ds.fill_value {
            Some(f) => encode::fill_value(f, t.size, &class, &mut r),
            None => encode::default_fill(&class, &mut r),
        }
        encode::end(s, &mut r).map_err(&err)?;
        if let Some(p) = ds.filters.as_ref().filter(|p| !p.filters.is_empty()) {
            let s = encode::begin(encode::MSG_FILTERS, encode::FLAG_CONSTANT, &mut r);
            // As the libhdf5 backend: an unavailable mandatory filter is
            // recorded as optional, with its note.
            let mut p = p.clone();
            for f in &mut p.filters {
                let (flags, note) = super::filter_flags(f, path);
                f.flags = flags;
                self.notes.extend(note);
            }
            encode::filters(&p, &mut r).map_err(&err)?;
            encode::end(s, &mut r).map_err(&err)?;
        }
        r.shrink_to_fit();
        // Compact data is allocated (and filled) when the dataset is
        // created, as libhdf5 does (H5D__compact_fill: the fill value if
        // one is defined, else zeros).
        let data = match (&class, unwritten_fill(ds, true)) {
            (LayoutKind::Compact, Some(f)) => {
                let full = ds.data_bytes().unwrap_or(0).min(0xffff) as usize;
                Data::Held(f.iter().copied().cycle().take(full).collect(), Vec::new())
            }
            _ => Data::None,
        };
        let d = Ds {
            elem: t.size,
            vlen: vlen.then(|| Box::new(t.clone())),
            dims: ds.dataspace.dims.clone().into_boxed_slice(),
            count: ds.dataspace.element_count().unwrap_or(0),
            records: r,
            class,
            data,
            early_fill: early_fill(ds),
        };
        self.add_object(
            path,
            Obj {
                kind: Kind::Dataset(Box::new(d)),
                attrs: Vec::new(),
                attr_order: attrs,
                times: None,
            },
        )?;
        Ok(())
    }

    fn dataset(&mut self, path: &str) -> Result<&mut Ds, WriteError> {
        let i = self.find(path);
        match i.and_then(|i| self.objects.get_mut(i)).map(|o| &mut o.kind) {
            Some(Kind::Dataset(d)) => Ok(d),
            _ => Err(WriteError::new(path, "write", "no such dataset")),
        }
    }

    /// Writes the whole (compact or contiguous) dataset from `bytes`.
    pub fn write_all(
        &mut self,
        path: &str,
        ds: &Dataset,
        bytes: &[u8],
        heap: &HeapValues,
    ) -> Result<(), WriteError> {
        let n = ds
            .dataspace
            .element_count()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| WriteError::new(path, "dataspace", "element count overflows"))?;
        let d = self.dataset(path)?;
        if n.checked_mul(d.elem as usize) != Some(bytes.len()) {
            return Err(WriteError::new(
                path,
                "write",
                format!("{} bytes given for {n} elements", bytes.len()),
            ));
        }
        let (class, vlen) = (d.class.clone(), d.vlen.clone());
        let data = match (class, vlen) {
            (LayoutKind::Chunked(_), _) => {
                return Err(unsupported(path, "write_all of a chunked dataset"))
            }
            (LayoutKind::Contiguous, None) => {
                let at = self.append(bytes)?;
                Data::At(at, bytes.len() as u64)
            }
            (LayoutKind::Contiguous, Some(t)) => {
                let mut slots = bytes.to_vec();
                let patches = self.place_vlen(path, &t, n, &mut slots, 0, heap)?;
                let cost = slots.len() + patches.len() * std::mem::size_of::<(u32, HeapRef)>();
                if self.held + cost <= HELD_BUDGET {
                    self.held += cost;
                    if let Some(i) = self.find(path).and_then(|i| u32::try_from(i).ok()) {
                        self.held_ids.push(i);
                    }
                    Data::Held(slots, patches)
                } else {
                    // Its collections (and every held dataset's) written
                    // first, then its slots.
                    self.write_held()?;
                    patch(&mut slots, &patches, &self.heap.addresses);
                    let at = self.append(&slots)?;
                    Data::At(at, slots.len() as u64)
                }
            }
            (_, vlen) => {
                let mut held = bytes.to_vec();
                let patches = match vlen {
                    Some(t) => self.place_vlen(path, &t, n, &mut held, 0, heap)?,
                    None => Vec::new(),
                };
                Data::Held(held, patches)
            }
        };
        self.dataset(path)?.data = data;
        Ok(())
    }

    /// Writes the first elements of a (compact or contiguous) dataset
    /// without variable-length parts from `data` (whole elements, fewer
    /// than the dataspace holds: a cut dataset). The rest reads as libhdf5
    /// leaves it when it allocates the storage at that write
    /// (H5D__init_storage): the fill value where one is defined and
    /// written at allocation, else zeros.
    pub fn write_prefix(
        &mut self,
        path: &str,
        ds: &Dataset,
        data: &[u8],
    ) -> Result<(), WriteError> {
        let d = self.dataset(path)?;
        if d.vlen.is_some() {
            return Err(unsupported(path, "write_prefix of variable-length data"));
        }
        let full = d.count.saturating_mul(u64::from(d.elem));
        if data.len() as u64 > full || d.elem == 0 || data.len() % d.elem as usize != 0 {
            return Err(WriteError::new(
                path,
                "write prefix",
                format!("{} bytes given for at most {full}", data.len()),
            ));
        }
        let compact = match d.class {
            LayoutKind::Compact => true,
            LayoutKind::Contiguous => false,
            LayoutKind::Chunked(_) => {
                return Err(unsupported(path, "write_prefix of a chunked dataset"))
            }
        };
        let fill = unwritten_fill(ds, compact);
        let pattern = fill.as_deref().unwrap_or(&[0]);
        if compact {
            let mut b: Vec<u8> = pattern
                .iter()
                .copied()
                .cycle()
                .take(full as usize)
                .collect();
            b[..data.len()].copy_from_slice(data);
            self.dataset(path)?.data = Data::Held(b, Vec::new());
            return Ok(());
        }
        // Contiguous: the prefix, then the rest in blocks of whole
        // patterns (memory bounded by the block, not the dataset).
        let at = self.append(data)?;
        let block: Vec<u8> = {
            let per = (1usize << 20) / pattern.len() * pattern.len();
            pattern
                .iter()
                .copied()
                .cycle()
                .take(per.max(pattern.len()))
                .collect()
        };
        let mut left = full - data.len() as u64;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            self.append(&block[..n])?;
            left -= n as u64;
        }
        self.dataset(path)?.data = Data::At(at, full);
        Ok(())
    }

    /// Writes the current heap collection, then the held contiguous
    /// variable-length data, its heap IDs patched.
    fn write_held(&mut self) -> Result<(), WriteError> {
        self.heap_flush()?;
        for i in std::mem::take(&mut self.held_ids) {
            let i = i as usize;
            let Some(obj) = self.objects.get_mut(i) else {
                continue;
            };
            let held = match &mut obj.kind {
                Kind::Dataset(d) if d.class == LayoutKind::Contiguous => match &mut d.data {
                    Data::Held(b, p) => (std::mem::take(b), std::mem::take(p)),
                    _ => continue,
                },
                _ => continue,
            };
            let (mut b, p) = held;
            patch(&mut b, &p, &self.heap.addresses);
            let at = self.append(&b)?;
            if let Kind::Dataset(d) = &mut self.objects[i].kind {
                d.data = Data::At(at, b.len() as u64);
            }
        }
        self.held = 0;
        Ok(())
    }

    /// Copies one stored chunk as it is.
    pub fn write_chunk(
        &mut self,
        path: &str,
        offset: &[u64],
        filter_mask: u32,
        stored: &[u8],
    ) -> Result<(), WriteError> {
        let d = self.dataset(path)?;
        let LayoutKind::Chunked(dims) = &d.class else {
            return Err(WriteError::new(path, "write chunk", "not chunked"));
        };
        if offset.len() != dims.len()
            || offset.iter().zip(dims.iter()).any(|(o, c)| o % c != 0)
            || offset.iter().zip(d.dims.iter()).any(|(o, n)| o >= n)
        {
            return Err(WriteError::new(
                path,
                "write chunk",
                format!("chunk offset {offset:?} is not a chunk of the extent"),
            ));
        }
        if let Data::Chunks(_, _, seen) = &d.data {
            if seen.contains(offset) {
                return Err(WriteError::new(path, "write chunk", "chunk written twice"));
            }
        }
        let size = u32::try_from(stored.len())
            .map_err(|_| WriteError::new(path, "write chunk", "chunk above 4 GiB"))?;
        let at = self.append(stored)?;
        let d = self.dataset(path)?;
        if !matches!(d.data, Data::Chunks(..)) {
            d.data = Data::Chunks(Vec::new(), Vec::new(), HashSet::new());
        }
        if let Data::Chunks(offs, meta, seen) = &mut d.data {
            offs.extend_from_slice(offset);
            meta.push((at, size, filter_mask));
            seen.insert(offset.into());
        }
        Ok(())
    }

    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Writes a chunk B-tree over the chunks (`offsets`, `meta` as in
    /// [`Data::Chunks`]); returns its root address.
    fn chunk_btree(
        &mut self,
        offsets: &[u64],
        meta: &[(u64, u32, u32)],
        dims: &[u64],
        elem: u32,
    ) -> Result<u64, WriteError> {
        let rank = dims.len();
        if meta.is_empty() || rank == 0 {
            return Ok(UNDEFINED);
        }
        let mut sorted: Vec<usize> = (0..meta.len()).collect();
        let off = |i: usize| &offsets[i * rank..(i + 1) * rank];
        sorted.sort_by(|a, b| off(*a).cmp(off(*b)));
        let key = |i: usize| encode::ChunkKey {
            size: meta[i].1,
            filter_mask: meta[i].2,
            offsets: off(i).iter().copied().chain([0]).collect(),
        };
        // The right key of the last chunk: one chunk further in every
        // dimension (element size in the last), as libhdf5 writes it.
        let last = off(sorted[sorted.len() - 1]);
        let end_key = encode::ChunkKey {
            size: 0,
            filter_mask: 0,
            offsets: last
                .iter()
                .zip(dims)
                .map(|(o, d)| o.saturating_add(*d))
                .chain([u64::from(elem)])
                .collect(),
        };
        // Level by level: (first key, child address) pairs.
        let mut entries: Vec<(encode::ChunkKey, u64)> =
            sorted.iter().map(|&i| (key(i), meta[i].0)).collect();
        let node_size = encode::chunk_node_size(rank) as u64;
        let mut level = 0u8;
        loop {
            let groups: Vec<&[(encode::ChunkKey, u64)]> =
                entries.chunks(encode::CHUNK_NODE_ENTRIES).collect();
            let first = self.pos;
            let mut up = Vec::with_capacity(groups.len());
            for (g, part) in groups.iter().enumerate() {
                let at = first + g as u64 * node_size;
                let left = if g == 0 { UNDEFINED } else { at - node_size };
                let right = if g + 1 == groups.len() {
                    UNDEFINED
                } else {
                    at + node_size
                };
                let mut keys: Vec<encode::ChunkKey> = part.iter().map(|e| e.0.clone()).collect();
                keys.push(match groups.get(g + 1) {
                    Some(next) => next[0].0.clone(),
                    None => end_key.clone(),
                });
                let children: Vec<u64> = part.iter().map(|e| e.1).collect();
                let node = encode::chunk_node(level, left, right, &keys, &children, rank);
                self.append(&node)?;
                up.push((part[0].0.clone(), at));
            }
            if up.len() == 1 {
                return Ok(up[0].1);
            }
            entries = up;
            level = level
                .checked_add(1)
                .ok_or_else(|| WriteError::new(&self.shown, "chunk index", "too deep"))?;
        }
    }

    /// Stores every chunk of the extent `dims` (chunks of `chunk`
    /// elements) that `offs` lacks, each one `fill` repeated, unfiltered
    /// (`mask`: every filter skipped, spec IV.A.2.i / III.A.1 chunk filter
    /// mask), as libhdf5 allocates and fills them at creation
    /// ([`early_fill`]). The fill value is the input's: nothing invented.
    fn fill_unwritten(
        &mut self,
        dims: &[u64],
        chunk: &[u64],
        fill: &[u8],
        mask: u32,
        offs: &mut Vec<u64>,
        meta: &mut Vec<(u64, u32, u32)>,
    ) -> Result<(), WriteError> {
        let rank = chunk.len();
        if rank == 0 || dims.len() != rank || dims.contains(&0) {
            return Ok(());
        }
        let elems = chunk.iter().try_fold(1u64, |a, c| a.checked_mul(*c));
        let bytes = elems
            .and_then(|n| n.checked_mul(fill.len() as u64))
            .and_then(|b| u32::try_from(b).ok())
            .ok_or_else(|| WriteError::new(&self.shown, "fill chunk", "chunk too large"))?;
        let buf: Vec<u8> = fill.iter().copied().cycle().take(bytes as usize).collect();
        let written: std::collections::HashSet<&[u64]> = offs.chunks(rank).collect();
        let mut missing = Vec::new();
        let mut at = vec![0u64; rank];
        'grid: loop {
            if !written.contains(at.as_slice()) {
                missing.extend_from_slice(&at);
            }
            // Next chunk offset, last dimension fastest.
            for i in (0..rank).rev() {
                at[i] += chunk[i];
                if at[i] < dims[i] {
                    continue 'grid;
                }
                at[i] = 0;
            }
            break;
        }
        drop(written);
        for _ in missing.chunks(rank) {
            let address = self.append(&buf)?;
            meta.push((address, bytes, mask));
        }
        offs.extend_from_slice(&missing);
        Ok(())
    }

    /// The layout record of dataset `d`, its held data written (heap
    /// collections have their addresses now) and its chunk index built.
    fn finish_layout(&mut self, d: &mut Ds, heaps: &[u64]) -> Result<Vec<u8>, WriteError> {
        let data = std::mem::replace(&mut d.data, Data::None);
        let full = d.count.saturating_mul(u64::from(d.elem));
        let layout = |l: encode::Layout| -> Result<Vec<u8>, WriteError> {
            let mut r = Vec::new();
            let s = encode::begin(encode::MSG_LAYOUT, 0, &mut r);
            encode::layout(&l, &mut r).map_err(rec_err("dataset"))?;
            encode::end(s, &mut r).map_err(rec_err("dataset"))?;
            Ok(r)
        };
        match (&d.class, data) {
            (LayoutKind::Compact, Data::Held(mut b, p)) => {
                patch(&mut b, &p, heaps);
                layout(encode::Layout::Compact(&b))
            }
            (LayoutKind::Compact, Data::None) => {
                // Never written: zeros, as libhdf5 allocates it early.
                let b = vec![0u8; usize::try_from(full).unwrap_or(usize::MAX).min(0xffff)];
                layout(encode::Layout::Compact(&b))
            }
            (LayoutKind::Contiguous, Data::Held(mut b, p)) => {
                patch(&mut b, &p, heaps);
                let address = self.append(&b)?;
                layout(encode::Layout::Contiguous {
                    address,
                    size: b.len() as u64,
                })
            }
            (LayoutKind::Contiguous, Data::At(address, size)) => {
                layout(encode::Layout::Contiguous { address, size })
            }
            (LayoutKind::Contiguous, Data::None) => layout(encode::Layout::Contiguous {
                address: UNDEFINED,
                size: full,
            }),
            (LayoutKind::Chunked(dims), data) => {
                let (mut offs, mut meta) = match data {
                    Data::Chunks(offs, meta, _) => (offs, meta),
                    _ => (Vec::new(), Vec::new()),
                };
                if let Some((fill, mask)) = &d.early_fill {
                    self.fill_unwritten(&d.dims, dims, fill, *mask, &mut offs, &mut meta)?;
                }
                let btree = if meta.is_empty() {
                    UNDEFINED
                } else {
                    self.chunk_btree(&offs, &meta, dims, d.elem)?
                };
                layout(encode::Layout::Chunked {
                    dims,
                    element_size: d.elem,
                    btree,
                })
            }
            _ => Err(unsupported(&self.shown, "dataset data of another layout")),
        }
    }

    /// Writes everything held (heap, variable-length data, chunk indexes,
    /// object headers, superblock) and flushes the file.
    pub fn finish(mut self) -> Result<(), WriteError> {
        // Reachable objects, parents before children.
        let mut order = vec![0usize];
        let mut seen = vec![false; self.objects.len()];
        seen[0] = true;
        let mut k = 0;
        while k < order.len() {
            if let Some(g) = self.group_at(order[k]) {
                for l in &g.links {
                    if let Target::Hard(c) = l.target {
                        let c = c as usize;
                        if seen[c] {
                            return Err(unsupported(&self.shown, "object linked twice"));
                        }
                        seen[c] = true;
                        order.push(c);
                    }
                }
            }
            k += 1;
        }
        self.heap_flush()?;
        let heaps = std::mem::take(&mut self.heap.addresses);
        for &o in &order {
            for a in &mut self.objects[o].attrs {
                patch(&mut a.body, &a.patches, &heaps);
                a.patches = Vec::new();
            }
            let Kind::Dataset(d) = &mut self.objects[o].kind else {
                continue;
            };
            let mut d = std::mem::replace(d, Box::new(Ds::empty()));
            let l = self.finish_layout(&mut d, &heaps)?;
            d.records.extend_from_slice(&l);
            if let Kind::Dataset(slot) = &mut self.objects[o].kind {
                *slot = d;
            }
        }
        // Object headers: sizes first (addresses do not change them), then
        // the bytes, children's addresses known.
        let mut address = vec![UNDEFINED; self.objects.len()];
        let mut at = self.pos;
        let mut recs = Vec::new();
        for &o in &order {
            if let Kind::Written(a) = self.objects[o].kind {
                address[o] = a;
                continue;
            }
            recs.clear();
            let f = self.records(o, None, &mut recs)?;
            address[o] = at;
            at += encode::object_header_size(&recs, f);
        }
        let mut header = Vec::new();
        for &o in &order {
            if let Kind::Written(_) = self.objects[o].kind {
                continue;
            }
            recs.clear();
            header.clear();
            let f = self.records(o, Some(&address), &mut recs)?;
            encode::object_header(&recs, f, &mut header);
            debug_assert_eq!(self.pos, address[o]);
            self.append(&header)?;
        }
        // The stored end of file counts the user block (as libhdf5 writes
        // it); every other address is relative to the base.
        let eof = self.base + self.pos;
        self.out
            .seek(SeekFrom::Start(self.base))
            .and_then(|_| {
                self.out
                    .write_all(&encode::superblock(self.base, eof, address[0]))
            })
            .and_then(|()| self.out.flush())
            .map_err(|e| io(&self.shown, "write superblock", e))?;
        Ok(())
    }

    /// The message records of object `o`'s header (into `r`) and its
    /// header flags; link addresses from `address` (0 while sizes are
    /// computed).
    fn records(
        &self,
        o: usize,
        address: Option<&[u64]>,
        r: &mut Vec<u8>,
    ) -> Result<HeaderFlags, WriteError> {
        let obj = &self.objects[o];
        let err = rec_err(&self.shown);
        match &obj.kind {
            Kind::Group(g) => {
                let s = encode::begin(encode::MSG_LINK_INFO, 0, r);
                encode::link_info(g.order.tracked, g.order.indexed, g.links.len() as u64, r);
                encode::end(s, r).map_err(&err)?;
                let s = encode::begin(encode::MSG_GROUP_INFO, encode::FLAG_CONSTANT, r);
                encode::group_info(r);
                encode::end(s, r).map_err(&err)?;
                for (i, l) in g.links.iter().enumerate() {
                    let v = match &l.target {
                        Target::Hard(c) => encode::LinkValue::Hard(
                            match self.objects.get(*c as usize).map(|o| &o.kind) {
                                Some(Kind::Written(a)) => *a,
                                _ => address.map_or(0, |a| a[*c as usize]),
                            },
                        ),
                        Target::Soft(t) => encode::LinkValue::Soft(t),
                        Target::External(fp) => encode::LinkValue::External {
                            file: &fp.0,
                            object: &fp.1,
                        },
                    };
                    let s = encode::begin(encode::MSG_LINK, 0, r);
                    encode::link(&l.name, l.utf8, &v, g.order.tracked.then_some(i as u64), r);
                    encode::end(s, r).map_err(&err)?;
                }
            }
            Kind::Dataset(d) => r.extend_from_slice(&d.records),
            Kind::Written(_) => {
                return Err(WriteError::new(&self.shown, "header", "written twice"));
            }
        }
        // libhdf5 counts the attributes of a version-2 header from its
        // attribute info message (spec IV.A.2.v), none without one: every
        // header with attributes (or tracking their order) has it.
        let tracked = obj.attr_order.tracked;
        if tracked || !obj.attrs.is_empty() {
            let max = u16::try_from(obj.attrs.len()).unwrap_or(u16::MAX);
            let s = encode::begin(encode::MSG_ATTRIBUTE_INFO, 0, r);
            encode::attribute_info(tracked, obj.attr_order.indexed, max, r);
            encode::end(s, r).map_err(&err)?;
        }
        for a in &obj.attrs {
            encode::record(encode::MSG_ATTRIBUTE, 0, &a.body, r).map_err(&err)?;
        }
        // More attributes than libhdf5's compact maximum (8): the maximum
        // is raised so that a later writer converts them to dense storage
        // when it adds one (libhdf5 converts when the count equals it).
        let n = obj.attrs.len();
        Ok(HeaderFlags {
            attr_tracked: tracked,
            attr_indexed: obj.attr_order.indexed,
            times: obj.times,
            phase_change: (n > 8).then(|| (u16::try_from(n).unwrap_or(u16::MAX), 6)),
        })
    }
}

/// What the storage of `ds` holds where nothing was written, once libhdf5
/// has allocated it (H5D__init_storage): the defined fill value (for
/// contiguous data only when it is written at allocation or if set, not
/// "never"); `None`: zeros.
fn unwritten_fill(ds: &Dataset, compact: bool) -> Option<Box<[u8]>> {
    let f = ds.fill_value.as_ref()?;
    if !compact && f.fill_write_time == 1 {
        return None;
    }
    let v = f.value.as_ref()?;
    (!v.is_empty() && v.len() == ds.datatype.size as usize).then(|| v.clone().into_boxed_slice())
}

/// Most bytes of fill chunks the native writer stores for one dataset
/// ([`early_fill`]); above it the input goes to the libhdf5 backend
/// (`eligible::supports`).
pub(crate) const MAX_EARLY_FILL: u64 = 1 << 30;
/// Most fill chunks stored for one dataset (their index entries are held).
pub(crate) const MAX_EARLY_CHUNKS: u64 = 1 << 20;

/// A chunked dataset with filters, space allocated early and fill time
/// "never": libhdf5 allocates every chunk at creation and, filters
/// present, fills each with the fill value (zeros if none is defined)
/// whatever the fill time (H5D__chunk_allocate), so unwritten chunks read
/// as the fill value there. The native writer stores the same values in
/// the chunks nothing was written to ([`NativeWriter::fill_unwritten`]):
/// one element's fill bytes, and the filter mask skipping every filter.
/// `None` for every other dataset (unwritten chunks then read the same
/// unallocated).
pub(crate) fn early_fill(ds: &Dataset) -> Option<(Box<[u8]>, u32)> {
    use crate::format::message::fill_value::{alloc_time, write_time};
    let f = ds.fill_value.as_ref()?;
    let n = ds.filters.as_ref().map_or(0, |p| p.filters.len());
    if !matches!(ds.layout.class, LayoutClass::Chunked { .. })
        || n == 0
        || n > 32
        || f.space_allocation_time != alloc_time::EARLY
        || f.fill_write_time != write_time::NEVER
    {
        return None;
    }
    let size = ds.datatype.size as usize;
    let fill = match &f.value {
        Some(v) if v.len() == size => v.clone(),
        _ => vec![0; size],
    };
    let mask = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
    Some((fill.into_boxed_slice(), mask))
}

/// Writes the heap IDs (collection address, object index) of `patches`
/// into `buf`.
fn patch(buf: &mut [u8], patches: &Patches, heaps: &[u64]) {
    for (off, r) in patches {
        let off = *off as usize;
        if let (Some(s), Some(a)) = (buf.get_mut(off + 4..off + 16), heaps.get(r.collection)) {
            s[..8].copy_from_slice(&a.to_le_bytes());
            s[8..].copy_from_slice(&u32::from(r.index).to_le_bytes());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The inventories of the checked-in fixtures (top-level testdata files).
    pub(crate) fn fixture_inventories() -> Vec<crate::inventory::Inventory> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let mut out = Vec::new();
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "h5"))
            .collect();
        paths.sort();
        for p in paths {
            let bytes = std::fs::read(&p).unwrap();
            out.push(crate::scan_bytes(
                &p.display().to_string(),
                &bytes,
                crate::CarveMode::Never,
            ));
        }
        out
    }

    /// Every datatype of an inventory (datasets and attributes).
    pub(crate) fn datatypes_of(inv: &crate::inventory::Inventory) -> Vec<Datatype> {
        let mut v = Vec::new();
        for o in &inv.objects {
            if let Some(d) = &o.dataset {
                v.push(d.datatype.clone());
            }
            for a in &o.attributes {
                if let Some(t) = &a.message.datatype {
                    v.push(t.clone());
                }
            }
        }
        v
    }

    /// `t` with every version above 3 written as 3 (what the encoder does).
    pub(crate) fn clamp_versions(t: &Datatype) -> Datatype {
        let mut t = t.clone();
        clamp(&mut t);
        t
    }

    fn clamp(t: &mut Datatype) {
        t.version = t.version.min(3);
        match &mut t.class {
            DatatypeClass::Compound { members } => {
                members.iter_mut().for_each(|m| clamp(&mut m.datatype))
            }
            DatatypeClass::Array { base, .. }
            | DatatypeClass::Enumeration { base, .. }
            | DatatypeClass::VariableLength { base, .. }
            | DatatypeClass::Complex { base, .. } => clamp(base),
            _ => {}
        }
    }

    /// Renaming or removing links of a large group re-indexes none of the
    /// others (merge renames many units: quadratic otherwise), and every
    /// name still finds its link.
    #[test]
    fn taking_links_out_of_a_large_group_reindexes_nothing() {
        let link = |name: String| Link {
            name: name.into(),
            target: Target::Hard(0),
            utf8: false,
        };
        let n = 4000;
        let mut g = Group::new(CreationOrder::default());
        for i in 0..n {
            g.push(link(format!("u{i}")));
        }
        // Indexed once, when it grew past INDEXED_LINKS.
        assert_eq!(g.reindexed, INDEXED_LINKS + 1);
        // Rename every other link (taken out, pushed under its new name)
        // and remove every fourth.
        for i in (0..n).step_by(2) {
            let l = g.take(&format!("u{i}")).unwrap();
            assert_eq!(&*l.name, format!("u{i}"));
            g.push(link(format!("r{i}")));
        }
        for i in (1..n).step_by(4) {
            assert!(g.take(&format!("u{i}")).is_some());
            assert!(g.take(&format!("u{i}")).is_none());
        }
        assert_eq!(g.reindexed, INDEXED_LINKS + 1);
        assert_eq!(g.links.len(), n - n / 4);
        for (i, l) in g.links.iter().enumerate() {
            assert_eq!(g.index(&l.name), Some(i));
        }
        assert_eq!(g.index("u0"), None);
        assert_eq!(g.index("u1"), None);
        // Creation order: the kept originals, then the renamed in turn.
        assert_eq!(&*g.links[0].name, "u3");
        assert_eq!(&*g.links[n / 4].name, "r0");
        // Down to a few links and back up: still found.
        let names: Vec<Box<str>> = g.links.iter().map(|l| l.name.clone()).collect();
        for name in &names[..names.len() - 3] {
            g.take(name).unwrap();
        }
        g.push(link("new".into()));
        for (i, l) in g.links.iter().enumerate() {
            assert_eq!(g.index(&l.name), Some(i));
        }
        assert_eq!(g.links.len(), 4);
    }

    /// Renames, removals, reordering and links in the tree come out as
    /// the paths our own walk reads from the finished file.
    #[test]
    fn tree_edits_are_what_the_file_holds() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("t.h5");
        let tracked = CreationOrder {
            tracked: true,
            indexed: true,
        };
        let mut w =
            NativeWriter::create(&tmp, "t.h5", tracked, CreationOrder::default(), 0).unwrap();
        for i in 0..40 {
            w.group(
                &format!("/g{i:02}/sub"),
                CreationOrder::default(),
                CreationOrder::default(),
            )
            .unwrap();
        }
        assert!(w.exists("/g07/sub") && !w.exists("/g07/nope") && w.exists("/"));
        w.rename("/g07", "/moved").unwrap();
        assert!(!w.exists("/g07") && w.exists("/moved/sub"));
        assert!(w.rename("/g08", "/moved").is_err(), "target exists");
        w.remove("/g09").unwrap();
        assert!(w.remove("/g09").is_err());
        w.soft_link("/g10/soft", "/g11").unwrap();
        w.external_link("/g10/ext", "other.h5", "/x").unwrap();
        assert!(w
            .group(
                "/g10/soft",
                CreationOrder::default(),
                CreationOrder::default()
            )
            .is_err());
        w.mark("/moved/sub", "note", "text").unwrap();
        w.mark("/moved/sub", "note", "replaced").unwrap();
        let names: Vec<String> = ["g03", "moved", "g01"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        w.reorder_links("/", &names).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&tmp).unwrap();
        let inv = crate::scan_bytes("t.h5", &bytes, crate::CarveMode::Never);
        assert_eq!(inv.verdict(), crate::inventory::Verdict::Healthy);
        let root = inv.objects.iter().find(|o| o.path == "/").unwrap();
        assert_eq!(&root.member_names[..3], &["g03", "moved", "g01"]);
        assert_eq!(root.member_names.len(), 39);
        let sub = inv.objects.iter().find(|o| o.path == "/moved/sub").unwrap();
        assert_eq!(sub.attributes.len(), 1);
        assert!(inv.objects.iter().all(|o| !o.path.starts_with("/g09")));
        assert!(inv
            .links
            .iter()
            .any(|l| l.path == "/g10/soft" && l.target == "/g11"));
        assert!(inv
            .links
            .iter()
            .any(|l| l.path == "/g10/ext" && l.target == "/x"));
    }

    /// The first dataset of worker_earliest.h5 with a fixed-size type and
    /// a layout `class` accepts.
    fn worker_dataset(class: fn(&LayoutClass) -> bool) -> Dataset {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/worker_earliest.h5");
        let inv = crate::scan_path(&path).unwrap();
        inv.objects
            .into_iter()
            .filter_map(|o| o.dataset)
            .find(|d| class(&d.layout.class) && !d.datatype.is_variable_length())
            .map(|d| *d)
            .unwrap()
    }

    /// A contiguous dataset of a fixed-size type (from worker_earliest.h5).
    pub(crate) fn fixed_contiguous_dataset() -> Dataset {
        worker_dataset(|c| matches!(c, LayoutClass::Contiguous { .. }))
    }

    /// A one-dimensional chunked dataset of `n` elements in chunks of one
    /// (the worker fixture's first chunked dataset, reshaped; no filters).
    fn one_element_chunks(n: u64) -> Dataset {
        let mut d = worker_dataset(|c| matches!(c, LayoutClass::Chunked { .. }));
        d.dataspace.dims = vec![n];
        d.dataspace.max_dims = Some(vec![UNDEFINED]);
        if let LayoutClass::Chunked { dims, .. } = &mut d.layout.class {
            *dims = vec![1];
        }
        d.filters = None;
        d.fill_value = None;
        d
    }

    /// Contiguous variable-length data is held (so that small datasets
    /// share heap collections) until the held bytes pass the budget; then
    /// the held datasets, and only those (not every object), are written,
    /// and all read back.
    #[test]
    fn held_variable_length_data_is_written_past_the_budget() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/worker_earliest.h5");
        let ds = crate::scan_path(&path)
            .unwrap()
            .objects
            .into_iter()
            .filter_map(|o| o.dataset)
            .find(|d| {
                matches!(d.layout.class, LayoutClass::Contiguous { .. })
                    && d.datatype.is_variable_length()
                    && d.datatype.size == 16
            })
            .map(|d| *d)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("t.h5");
        let none = CreationOrder::default();
        let mut w = NativeWriter::create(&tmp, "t.h5", none, none, 0).unwrap();
        let text = |i: usize| vec![b'a' + (i % 26) as u8; 1 + i % 3];
        // 300,000 slots and patches: 9.6 MB held, above the 8 MiB budget.
        let sets = [("/a", 3usize), ("/b", 5), ("/big", 300_000)];
        for (name, n) in sets {
            let mut d = ds.clone();
            d.dataspace.dims = vec![n as u64];
            d.dataspace.max_dims = None;
            w.create_dataset(name, &d, &HeapValues::default(), none, None)
                .unwrap();
            let slots = (0..n)
                .map(|i| crate::read::vlen::VlenSlot::new(i * 16, (1 + i % 3) as u64, text(i)))
                .collect();
            w.write_all(name, &d, &vec![0u8; n * 16], &HeapValues::vlen(slots))
                .unwrap();
            if name == "/b" {
                assert_eq!(w.held_ids.len(), 2);
            }
        }
        assert!(w.held_ids.is_empty() && w.held == 0);
        w.finish().unwrap();
        let bytes = std::fs::read(&tmp).unwrap();
        let inv = crate::scan_bytes("t.h5", &bytes, crate::CarveMode::Never);
        assert_eq!(inv.verdict(), crate::inventory::Verdict::Healthy);
        let image = inv.image(&bytes);
        for (name, n) in sets {
            let d = inv.object(name).unwrap().dataset.as_ref().unwrap();
            let raw = crate::read::assemble(&image, d).unwrap();
            let got = crate::read::vlen::resolve_vlen(&image, &d.datatype, &raw).unwrap();
            assert_eq!(got.len(), n, "{name}");
            assert!(
                got.iter().enumerate().all(|(i, s)| s.data == text(i)),
                "{name}"
            );
        }
    }

    /// A chunk written twice is refused, however many chunks the dataset
    /// has: the check is a set look-up, not a scan of the chunks written
    /// before (a scan made a dataset of 2^17 chunks cost 2^33 comparisons).
    #[test]
    fn chunks_written_twice_are_found_without_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("t.h5");
        let none = CreationOrder::default();
        let mut w = NativeWriter::create(&tmp, "t.h5", none, none, 0).unwrap();
        let n = 1u64 << 17;
        let ds = one_element_chunks(n);
        let elem = vec![7u8; ds.datatype.size as usize];
        w.create_dataset("/d", &ds, &HeapValues::default(), none, None)
            .unwrap();
        for i in 0..n {
            w.write_chunk("/d", &[i], 0, &elem).unwrap();
        }
        let again = w.write_chunk("/d", &[n / 2], 0, &elem);
        assert!(again.is_err_and(|e| e.to_string().contains("written twice")));
        w.finish().unwrap();
        let inv = crate::scan_path(&tmp).unwrap();
        let d = inv.objects.iter().find(|o| o.path == "/d").unwrap();
        assert_eq!(d.dataset.as_ref().unwrap().chunks.len() as u64, n);
    }

    /// Writes `groups` groups, each with a contiguous dataset and a long
    /// variable-length string attribute, sealing each object once written
    /// (members first) as a streamed salvage does; returns the most object
    /// headers held at once and the finished file's inventory.
    fn sealed_groups(groups: usize) -> (usize, crate::inventory::Inventory) {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("t.h5");
        let none = CreationOrder::default();
        let mut w = NativeWriter::create(&tmp, "t.h5", none, none, 0).unwrap();
        let ds = fixed_contiguous_dataset();
        let size = ds.dataspace.element_count().unwrap() * u64::from(ds.datatype.size);
        let data = vec![7u8; size as usize];
        let mut most = 0;
        for g in 0..groups {
            let path = format!("/g{g:05}");
            w.group(&path, none, none).unwrap();
            w.mark(&path, "note", &"x".repeat(200 + g % 7)).unwrap();
            let d = format!("{path}/data");
            w.create_dataset(&d, &ds, &HeapValues::default(), none, None)
                .unwrap();
            w.write_all(&d, &ds, &data, &HeapValues::default()).unwrap();
            w.seal(&d).unwrap();
            w.seal(&path).unwrap();
            most = most.max(w.unsealed());
        }
        w.finish().unwrap();
        let out = std::fs::read(&tmp).unwrap();
        (
            most,
            crate::scan_bytes("t.h5", &out, crate::CarveMode::Never),
        )
    }

    /// Sealed objects are written as they complete: the headers held wait
    /// only for the heap collection being filled (64 KiB), so their number
    /// does not grow with the objects written, and the file holds them all.
    #[test]
    fn sealed_headers_are_not_held() {
        let (small, inv_small) = sealed_groups(300);
        let (large, inv_large) = sealed_groups(1500);
        for (inv, n) in [(&inv_small, 300), (&inv_large, 1500)] {
            assert_eq!(inv.verdict(), crate::inventory::Verdict::Healthy);
            assert_eq!(inv.objects.len(), 1 + 2 * n);
            let g = inv.objects.iter().find(|o| o.path == "/g00123").unwrap();
            assert_eq!(g.attributes.len(), 1);
            let d = inv
                .objects
                .iter()
                .find(|o| o.path == "/g00123/data")
                .unwrap();
            assert!(d.dataset.is_some());
        }
        assert!(
            large <= small + 2,
            "{small} headers held for 300 groups, {large} for 1500"
        );
        assert!(large < 2 * 300, "{large} headers held for 1500 groups");
    }

    /// The worker fixtures are eligible; the rich ones are not (references)
    /// and say why.
    #[test]
    fn worker_fixtures_are_eligible_rich_ones_say_why() {
        let mut seen = 0;
        for inv in fixture_inventories() {
            let name = inv.file.rsplit('/').next().unwrap_or_default().to_string();
            let r = supports(&inv);
            if name.starts_with("worker_") || name.starts_with("many_members") {
                assert!(r.is_ok(), "{name}: {r:?}");
                seen += 1;
            }
            if name.starts_with("rich_") {
                assert!(
                    r.as_ref().is_err_and(|e| e.contains("references")),
                    "{name}: {r:?}"
                );
                seen += 1;
            }
        }
        assert_eq!(seen, 8);
    }
}

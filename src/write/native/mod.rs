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

use std::collections::HashMap;
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
pub use eligible::supports;
use encode::{HeaderFlags, Message};

/// First address after the superblock: where data starts.
const SUPERBLOCK_SIZE: u64 = 48;
/// A global heap collection is written once it holds this much.
const HEAP_COLLECTION: usize = 64 << 10;

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
type Patches = Vec<(usize, HeapRef)>;

struct Attr {
    name: String,
    datatype: Vec<u8>,
    dataspace: Vec<u8>,
    value: Vec<u8>,
    patches: Patches,
}

enum Target {
    Hard(usize),
    Soft(String),
    External(String, String),
}

struct Link {
    name: String,
    target: Target,
}

enum Data {
    /// Nothing written yet (contiguous: address undefined).
    None,
    /// Compact data, or contiguous variable-length data written at the end.
    Held(Vec<u8>, Patches),
    /// Contiguous data written at `address`.
    At(u64, u64),
    /// Chunks written: offsets, filter mask, address, stored size.
    Chunks(Vec<(Vec<u64>, u32, u64, u32)>),
}

struct Ds {
    datatype: Datatype,
    dims: Vec<u64>,
    messages: Vec<Message>,
    class: LayoutKind,
    data: Data,
}

#[derive(Clone, PartialEq)]
enum LayoutKind {
    Compact,
    Contiguous,
    Chunked(Vec<u64>),
}

enum Kind {
    Group {
        links: Vec<Link>,
        by_name: HashMap<String, usize>,
        order: CreationOrder,
    },
    Dataset(Box<Ds>),
}

struct Obj {
    kind: Kind,
    attrs: Vec<Attr>,
    attr_order: CreationOrder,
}

/// The global heap collections: full ones written, the current one held.
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
    /// Path -> object (cleared by renames and removals).
    cache: HashMap<String, usize>,
    heap: Heap,
    notes: Vec<String>,
    shown: String,
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

impl NativeWriter {
    /// Creates the output at `tmp` (which must not exist); the root group
    /// tracks link and attribute creation order as given.
    pub fn create(
        tmp: &Path,
        shown: &str,
        links: CreationOrder,
        attrs: CreationOrder,
    ) -> Result<NativeWriter, WriteError> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .map_err(|e| io(&tmp.display().to_string(), "create", e))?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        out.write_all(&[0; SUPERBLOCK_SIZE as usize])
            .map_err(|e| io(shown, "write", e))?;
        let root = Obj {
            kind: Kind::Group {
                links: Vec::new(),
                by_name: HashMap::new(),
                order: links,
            },
            attrs: Vec::new(),
            attr_order: attrs,
        };
        let mut cache = HashMap::new();
        cache.insert("/".to_string(), 0);
        Ok(NativeWriter {
            out,
            pos: SUPERBLOCK_SIZE,
            objects: vec![root],
            cache,
            heap: Heap::default(),
            notes: Vec::new(),
            shown: shown.to_string(),
        })
    }

    /// The object at absolute `path`, if any.
    fn find(&mut self, path: &str) -> Option<usize> {
        if let Some(i) = self.cache.get(path) {
            return Some(*i);
        }
        let (parent, name) = split(path);
        let p = self.find(parent)?;
        let Kind::Group { links, by_name, .. } = &self.objects.get(p)?.kind else {
            return None;
        };
        let l = links.get(*by_name.get(name)?)?;
        let Target::Hard(i) = l.target else {
            return None;
        };
        self.cache.insert(path.to_string(), i);
        Some(i)
    }

    /// [`NativeWriter::exists`] without touching the path cache.
    pub fn exists_ro(&self, path: &str) -> bool {
        let mut cur = 0usize;
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (k, part) in parts.iter().enumerate() {
            let Kind::Group { links, by_name, .. } = &self.objects[cur].kind else {
                return false;
            };
            let Some(l) = by_name.get(*part).and_then(|i| links.get(*i)) else {
                return false;
            };
            match l.target {
                Target::Hard(i) => cur = i,
                _ if k + 1 == parts.len() => return true,
                _ => return false,
            }
        }
        true
    }

    /// True when `path` names a link (of any kind) in the output.
    pub fn exists(&mut self, path: &str) -> bool {
        if path.trim_end_matches('/').is_empty() {
            return true;
        }
        let (parent, name) = split(path);
        let Some(p) = self.find(parent) else {
            return false;
        };
        matches!(&self.objects[p].kind, Kind::Group { by_name, .. } if by_name.contains_key(name))
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
        let Kind::Group { links, by_name, .. } = &mut self.objects[parent].kind else {
            return Err(WriteError::new(path, "link", "parent is not a group"));
        };
        if by_name.contains_key(name) {
            return Err(WriteError::new(path, "link", "exists"));
        }
        by_name.insert(name.to_string(), links.len());
        links.push(Link {
            name: name.to_string(),
            target,
        });
        Ok(())
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
                Kind::Group { .. } => Ok(i),
                _ => Err(WriteError::new(path, "group", "exists and is not a group")),
            };
        }
        if self.exists(path) {
            return Err(WriteError::new(path, "group", "exists and is not a group"));
        }
        let (parent, name) = split(path);
        let p = self.group(parent, CreationOrder::default(), CreationOrder::default())?;
        let i = self.objects.len();
        self.add_link(p, name, Target::Hard(i), path)?;
        self.objects.push(Obj {
            kind: Kind::Group {
                links: Vec::new(),
                by_name: HashMap::new(),
                order: links,
            },
            attrs: Vec::new(),
            attr_order: attrs,
        });
        self.cache.insert(path.to_string(), i);
        Ok(i)
    }

    pub fn soft_link(&mut self, path: &str, target: &str) -> Result<(), WriteError> {
        let (parent, name) = split(path);
        let p = self.group(parent, CreationOrder::default(), CreationOrder::default())?;
        self.add_link(p, name, Target::Soft(target.to_string()), path)
    }

    pub fn external_link(
        &mut self,
        path: &str,
        file: &str,
        object: &str,
    ) -> Result<(), WriteError> {
        let (parent, name) = split(path);
        let p = self.group(parent, CreationOrder::default(), CreationOrder::default())?;
        self.add_link(
            p,
            name,
            Target::External(file.to_string(), object.to_string()),
            path,
        )
    }

    /// Takes link `path` out of its group.
    fn unlink(&mut self, path: &str) -> Result<Target, WriteError> {
        let (parent, name) = split(path);
        let p = self
            .find(parent)
            .ok_or_else(|| WriteError::new(path, "unlink", "no such group"))?;
        let Kind::Group { links, by_name, .. } = &mut self.objects[p].kind else {
            return Err(WriteError::new(path, "unlink", "parent is not a group"));
        };
        let i = by_name
            .remove(name)
            .ok_or_else(|| WriteError::new(path, "unlink", "no such link"))?;
        let l = links.remove(i);
        for v in by_name.values_mut() {
            if *v > i {
                *v -= 1;
            }
        }
        self.cache.clear();
        self.cache.insert("/".to_string(), 0);
        Ok(l.target)
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
            .ok_or_else(|| WriteError::new(group, "reorder", "no such group"))?;
        let Kind::Group { links, by_name, .. } = &mut self.objects[g].kind else {
            return Err(WriteError::new(group, "reorder", "not a group"));
        };
        let mut taken: Vec<Option<Link>> = std::mem::take(links).into_iter().map(Some).collect();
        let mut ordered = Vec::with_capacity(taken.len());
        for n in names {
            if let Some(i) = by_name.get(n.as_str()) {
                if let Some(l) = taken[*i].take() {
                    ordered.push(l);
                }
            }
        }
        ordered.extend(taken.into_iter().flatten());
        by_name.clear();
        for (i, l) in ordered.iter().enumerate() {
            by_name.insert(l.name.clone(), i);
        }
        *links = ordered;
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
        Ok(())
    }

    /// Stores the variable-length values of `n` elements of `t` in `value`
    /// in the heap; returns where their IDs go. Every slot must be resolved.
    fn place_vlen(
        &mut self,
        where_: &str,
        t: &Datatype,
        n: usize,
        value: &mut [u8],
        heap: &HeapValues,
    ) -> Result<Patches, WriteError> {
        if !heap.regions.is_empty() {
            return Err(unsupported(where_, "region references"));
        }
        if !t.is_variable_length() {
            return Ok(Vec::new());
        }
        let mut per = Vec::new();
        if !slot_offsets(t, 0, &mut per, 0) {
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
            let want = (k / per.len().max(1)) * size + per[k % per.len().max(1)];
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
            patches.push((s.offset, r));
        }
        Ok(patches)
    }

    /// Writes attribute `name` on `path` (replacing one of that name).
    #[allow(clippy::too_many_arguments)]
    pub fn attribute(
        &mut self,
        path: &str,
        name: &str,
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
        let mut value = value
            .get(..need)
            .ok_or_else(|| {
                WriteError::new(
                    &where_,
                    "attribute",
                    format!("value has {} bytes, {need} needed", value.len()),
                )
            })?
            .to_vec();
        let mut dt = Vec::new();
        encode::datatype(datatype, &mut dt).map_err(|e| unsupported(&where_, &e))?;
        let mut ds = Vec::new();
        encode::dataspace(dataspace, &mut ds).map_err(|e| unsupported(&where_, &e))?;
        if name.len() + dt.len() + ds.len() + value.len() + 16 > 0xffff {
            return Err(unsupported(&where_, "attribute above 64 KiB"));
        }
        let patches = self.place_vlen(&where_, datatype, n, &mut value, heap)?;
        let attrs = &mut self.objects[obj].attrs;
        attrs.retain(|a| a.name != name);
        attrs.push(Attr {
            name: name.to_string(),
            datatype: dt,
            dataspace: ds,
            value,
            patches,
        });
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
        self.attribute(path, name, &t, &space, &[0; 16], &heap, None)
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
        let class = match &ds.layout.class {
            LayoutClass::Compact { .. } => LayoutKind::Compact,
            LayoutClass::Contiguous { .. } => LayoutKind::Contiguous,
            LayoutClass::Chunked { dims, .. } if !t.is_variable_length() => {
                if dims.len() != ds.dataspace.dims.len() {
                    return Err(WriteError::new(path, "chunked layout", "rank mismatch"));
                }
                LayoutKind::Chunked(dims.clone())
            }
            _ => return Err(unsupported(path, "layout")),
        };
        let mut messages = Vec::new();
        let mut body = Vec::new();
        encode::dataspace(&ds.dataspace, &mut body).map_err(|e| unsupported(path, &e))?;
        messages.push(Message {
            kind: encode::MSG_DATASPACE,
            flags: 0,
            body,
        });
        let mut body = Vec::new();
        encode::datatype(t, &mut body).map_err(|e| unsupported(path, &e))?;
        messages.push(Message {
            kind: encode::MSG_DATATYPE,
            flags: encode::FLAG_CONSTANT,
            body,
        });
        let compact = class == LayoutKind::Compact;
        let mut body = Vec::new();
        match &ds.fill_value {
            Some(f) => encode::fill_value(f, t.size, compact, &mut body),
            None => encode::default_fill(compact, &mut body),
        }
        messages.push(Message {
            kind: encode::MSG_FILL_VALUE,
            flags: encode::FLAG_CONSTANT,
            body,
        });
        if let Some(p) = ds.filters.as_ref().filter(|p| !p.filters.is_empty()) {
            let mut body = Vec::new();
            encode::filters(p, &mut body).map_err(|e| unsupported(path, &e))?;
            messages.push(Message {
                kind: encode::MSG_FILTERS,
                flags: encode::FLAG_CONSTANT,
                body,
            });
        }
        let (parent, name) = split(path);
        let p = self.group(parent, CreationOrder::default(), CreationOrder::default())?;
        let i = self.objects.len();
        self.add_link(p, name, Target::Hard(i), path)?;
        self.objects.push(Obj {
            kind: Kind::Dataset(Box::new(Ds {
                datatype: t.clone(),
                dims: ds.dataspace.dims.clone(),
                messages,
                class,
                data: Data::None,
            })),
            attrs: Vec::new(),
            attr_order: attrs,
        });
        self.cache.insert(path.to_string(), i);
        Ok(())
    }

    fn dataset(&mut self, path: &str) -> Result<usize, WriteError> {
        match self.find(path) {
            Some(i) if matches!(self.objects[i].kind, Kind::Dataset(_)) => Ok(i),
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
        let i = self.dataset(path)?;
        let n = ds
            .dataspace
            .element_count()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| WriteError::new(path, "dataspace", "element count overflows"))?;
        if n.checked_mul(ds.datatype.size as usize) != Some(bytes.len()) {
            return Err(WriteError::new(
                path,
                "write",
                format!("{} bytes given for {n} elements", bytes.len()),
            ));
        }
        let Kind::Dataset(d) = &self.objects[i].kind else {
            return Err(WriteError::new(path, "write", "no such dataset"));
        };
        let kind = d.class.clone();
        let vlen = d.datatype.is_variable_length();
        let t = d.datatype.clone();
        let data = match kind {
            LayoutKind::Chunked(_) => {
                return Err(unsupported(path, "write_all of a chunked dataset"))
            }
            LayoutKind::Contiguous if !vlen => {
                let at = self.append(bytes)?;
                Data::At(at, bytes.len() as u64)
            }
            _ => {
                let mut held = bytes.to_vec();
                let patches = self.place_vlen(path, &t, n, &mut held, heap)?;
                Data::Held(held, patches)
            }
        };
        if let Kind::Dataset(d) = &mut self.objects[i].kind {
            d.data = data;
        }
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
        let i = self.dataset(path)?;
        let Kind::Dataset(d) = &self.objects[i].kind else {
            return Err(WriteError::new(path, "write chunk", "no such dataset"));
        };
        let LayoutKind::Chunked(dims) = &d.class else {
            return Err(WriteError::new(path, "write chunk", "not chunked"));
        };
        if offset.len() != dims.len()
            || offset.iter().zip(dims).any(|(o, c)| o % c != 0)
            || offset.iter().zip(&d.dims).any(|(o, n)| o >= n)
        {
            return Err(WriteError::new(
                path,
                "write chunk",
                format!("chunk offset {offset:?} is not a chunk of the extent"),
            ));
        }
        let size = u32::try_from(stored.len())
            .map_err(|_| WriteError::new(path, "write chunk", "chunk above 4 GiB"))?;
        let at = self.append(stored)?;
        let Kind::Dataset(d) = &mut self.objects[i].kind else {
            return Err(WriteError::new(path, "write chunk", "no such dataset"));
        };
        if !matches!(d.data, Data::Chunks(_)) {
            d.data = Data::Chunks(Vec::new());
        }
        if let Data::Chunks(c) = &mut d.data {
            if c.iter().any(|x| x.0 == offset) {
                return Err(WriteError::new(path, "write chunk", "chunk written twice"));
            }
            c.push((offset.to_vec(), filter_mask, at, size));
        }
        Ok(())
    }

    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Writes a chunk B-tree over `chunks` (sorted here); returns its root.
    fn chunk_btree(
        &mut self,
        chunks: &mut [(Vec<u64>, u32, u64, u32)],
        dims: &[u64],
        elem: u32,
    ) -> Result<u64, WriteError> {
        if chunks.is_empty() {
            return Ok(UNDEFINED);
        }
        chunks.sort_by(|a, b| a.0.cmp(&b.0));
        let rank = dims.len();
        let key = |off: &[u64], size: u32, mask: u32| encode::ChunkKey {
            size,
            filter_mask: mask,
            offsets: off.iter().copied().chain([0]).collect(),
        };
        // The right key of the last chunk: one chunk further in every
        // dimension (element size in the last), as libhdf5 writes it.
        let last = &chunks[chunks.len() - 1].0;
        let end: Vec<u64> = last
            .iter()
            .zip(dims)
            .map(|(o, d)| o.saturating_add(*d))
            .chain([u64::from(elem)])
            .collect();
        let end_key = encode::ChunkKey {
            size: 0,
            filter_mask: 0,
            offsets: end,
        };
        // Level by level: (first key, child address) pairs.
        let mut entries: Vec<(encode::ChunkKey, u64)> =
            chunks.iter().map(|c| (key(&c.0, c.3, c.1), c.2)).collect();
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
                let got = self.append(&node)?;
                debug_assert_eq!(got, at);
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

    /// Writes everything held (heap, variable-length data, chunk indexes,
    /// object headers, superblock) and flushes the file.
    pub fn finish(mut self) -> Result<(), WriteError> {
        // Reachable objects, parents before children.
        let mut order = vec![0usize];
        let mut k = 0;
        let mut seen = vec![false; self.objects.len()];
        seen[0] = true;
        while k < order.len() {
            if let Kind::Group { links, .. } = &self.objects[order[k]].kind {
                for l in links {
                    if let Target::Hard(c) = l.target {
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
        let patch = |buf: &mut [u8], patches: &Patches| {
            for (off, r) in patches {
                if let (Some(s), Some(a)) =
                    (buf.get_mut(off + 4..off + 16), heaps.get(r.collection))
                {
                    s[..8].copy_from_slice(&a.to_le_bytes());
                    s[8..].copy_from_slice(&u32::from(r.index).to_le_bytes());
                }
            }
        };
        // Data held until the heap collections had addresses; chunk indexes.
        let mut layouts: HashMap<usize, Vec<u8>> = HashMap::new();
        for &o in &order {
            let Kind::Dataset(d) = &mut self.objects[o].kind else {
                continue;
            };
            let data = std::mem::replace(&mut d.data, Data::None);
            let (class, elem, dims) = (d.class.clone(), d.datatype.size, d.dims.clone());
            let mut body = Vec::new();
            let layout_of = |e: Result<(), String>| e.map_err(|e| unsupported("dataset", &e));
            match (class, data) {
                (LayoutKind::Compact, Data::Held(mut b, p)) => {
                    patch(&mut b, &p);
                    layout_of(encode::layout(&encode::Layout::Compact(&b), &mut body))?;
                }
                (LayoutKind::Compact, Data::None) => {
                    // Never written: zeros, as libhdf5 allocates it early.
                    let n: u64 = dims.iter().product::<u64>().saturating_mul(u64::from(elem));
                    let b = vec![0u8; usize::try_from(n).unwrap_or(usize::MAX).min(0xffff)];
                    layout_of(encode::layout(&encode::Layout::Compact(&b), &mut body))?;
                }
                (LayoutKind::Contiguous, Data::Held(mut b, p)) => {
                    patch(&mut b, &p);
                    let at = self.append(&b)?;
                    let size = b.len() as u64;
                    layout_of(encode::layout(
                        &encode::Layout::Contiguous { address: at, size },
                        &mut body,
                    ))?;
                }
                (LayoutKind::Contiguous, Data::At(address, size)) => {
                    layout_of(encode::layout(
                        &encode::Layout::Contiguous { address, size },
                        &mut body,
                    ))?;
                }
                (LayoutKind::Contiguous, Data::None) => {
                    let size = dims.iter().product::<u64>().saturating_mul(u64::from(elem));
                    layout_of(encode::layout(
                        &encode::Layout::Contiguous {
                            address: UNDEFINED,
                            size,
                        },
                        &mut body,
                    ))?;
                }
                (LayoutKind::Chunked(cdims), data) => {
                    let mut chunks = match data {
                        Data::Chunks(c) => c,
                        _ => Vec::new(),
                    };
                    let btree = self.chunk_btree(&mut chunks, &cdims, elem)?;
                    layout_of(encode::layout(
                        &encode::Layout::Chunked {
                            dims: &cdims,
                            element_size: elem,
                            btree,
                        },
                        &mut body,
                    ))?;
                }
                _ => return Err(unsupported(&self.shown, "dataset data of another layout")),
            }
            layouts.insert(o, body);
        }
        // Object headers: sizes first (addresses do not change them), then
        // the bytes, children's addresses known.
        let mut messages: HashMap<usize, (Vec<Message>, HeaderFlags)> = HashMap::new();
        let mut address = vec![UNDEFINED; self.objects.len()];
        let mut at = self.pos;
        for &o in &order {
            let (m, f) = self.header_messages(o, &mut layouts, &heaps, &patch, None)?;
            address[o] = at;
            at += encode::object_header_size(&m, f).map_err(|e| unsupported(&self.shown, &e))?;
            messages.insert(o, (m, f));
        }
        let mut all = Vec::with_capacity((at - self.pos) as usize);
        for &o in &order {
            let (m, f) = messages.remove(&o).unwrap_or_default();
            // Link messages with the children's addresses.
            let m = match &self.objects[o].kind {
                Kind::Group { .. } => {
                    self.header_messages(o, &mut layouts, &heaps, &patch, Some(&address))?
                        .0
                }
                _ => m,
            };
            debug_assert_eq!(self.pos + all.len() as u64, address[o]);
            encode::object_header(&m, f, &mut all).map_err(|e| unsupported(&self.shown, &e))?;
        }
        self.append(&all)?;
        let eof = self.pos;
        self.out
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.out.write_all(&encode::superblock(eof, address[0])))
            .and_then(|()| self.out.flush())
            .map_err(|e| io(&self.shown, "write superblock", e))?;
        Ok(())
    }

    /// The messages of object `o`'s header; link addresses from `address`
    /// (placeholders while sizes are computed).
    fn header_messages(
        &self,
        o: usize,
        layouts: &mut HashMap<usize, Vec<u8>>,
        heaps: &[u64],
        patch: &dyn Fn(&mut [u8], &Patches),
        address: Option<&[u64]>,
    ) -> Result<(Vec<Message>, HeaderFlags), WriteError> {
        let _ = heaps;
        let obj = &self.objects[o];
        let mut m = Vec::new();
        match &obj.kind {
            Kind::Group { links, order, .. } => {
                let mut b = Vec::new();
                encode::link_info(order.tracked, order.indexed, links.len() as u64, &mut b);
                m.push(Message {
                    kind: encode::MSG_LINK_INFO,
                    flags: 0,
                    body: b,
                });
                let mut b = Vec::new();
                encode::group_info(&mut b);
                m.push(Message {
                    kind: encode::MSG_GROUP_INFO,
                    flags: encode::FLAG_CONSTANT,
                    body: b,
                });
                for (i, l) in links.iter().enumerate() {
                    let v = match &l.target {
                        Target::Hard(c) => encode::LinkValue::Hard(address.map_or(0, |a| a[*c])),
                        Target::Soft(t) => encode::LinkValue::Soft(t),
                        Target::External(f, p) => {
                            encode::LinkValue::External { file: f, object: p }
                        }
                    };
                    let mut b = Vec::new();
                    encode::link(&l.name, &v, order.tracked.then_some(i as u64), &mut b);
                    m.push(Message {
                        kind: encode::MSG_LINK,
                        flags: 0,
                        body: b,
                    });
                }
            }
            Kind::Dataset(d) => {
                for x in &d.messages {
                    m.push(Message {
                        kind: x.kind,
                        flags: x.flags,
                        body: x.body.clone(),
                    });
                }
                let layout = match address {
                    Some(_) => layouts.remove(&o),
                    None => layouts.get(&o).cloned(),
                }
                .unwrap_or_default();
                m.push(Message {
                    kind: encode::MSG_LAYOUT,
                    flags: 0,
                    body: layout,
                });
            }
        }
        let tracked = obj.attr_order.tracked;
        if tracked {
            let mut b = Vec::new();
            let max = u16::try_from(obj.attrs.len()).unwrap_or(u16::MAX);
            encode::attribute_info(true, obj.attr_order.indexed, max, &mut b);
            m.push(Message {
                kind: encode::MSG_ATTRIBUTE_INFO,
                flags: 0,
                body: b,
            });
        }
        for a in &obj.attrs {
            let mut value = a.value.clone();
            patch(&mut value, &a.patches);
            let mut b = Vec::new();
            encode::attribute(&a.name, &a.datatype, &a.dataspace, &value, &mut b);
            m.push(Message {
                kind: encode::MSG_ATTRIBUTE,
                flags: 0,
                body: b,
            });
        }
        // More attributes than libhdf5's compact maximum (8): the maximum
        // is raised so that a later writer converts them to dense storage
        // when it adds one (libhdf5 converts when the count equals it).
        let n = obj.attrs.len();
        let flags = HeaderFlags {
            attr_tracked: tracked,
            attr_indexed: obj.attr_order.indexed,
            phase_change: (n > 8).then(|| (u16::try_from(n).unwrap_or(u16::MAX), 6)),
        };
        Ok((m, flags))
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

    #[test]
    fn worker_and_rich_fixtures_are_eligible() {
        for inv in fixture_inventories() {
            let name = inv.file.rsplit('/').next().unwrap_or_default().to_string();
            let r = supports(&inv);
            if name.starts_with("worker_") {
                assert!(r.is_ok(), "{name}: {r:?}");
            }
            eprintln!("{name}: {r:?}");
        }
    }
}

//! Reports on an [`Inventory`]: a human one for the terminal and a JSON one
//! for scripts. Both write to any `io::Write` so tests can compare them.

use std::io::{self, Write};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Value};

use crate::format::message::data_layout::LayoutClass;
use crate::format::message::dataspace::{Dataspace, DataspaceKind};
use crate::inventory::{
    Attribute, ChunkRecordFound, Dataset, Inventory, Object, ObjectSink, Status, Verdict,
};
use crate::merge::UnitResult;

pub mod map;

/// Exit codes of `h5salvage scan` (documented in the README).
pub mod exit {
    /// Every file is healthy.
    pub const HEALTHY: i32 = 0;
    /// At least one file is damaged, and something could be read from each.
    pub const DAMAGED: i32 = 1;
    /// Usage error or an input that could not be opened.
    pub const USAGE_OR_IO: i32 = 2;
    /// At least one file yielded nothing readable (empty, not HDF5, unreadable).
    pub const NOTHING_READABLE: i32 = 3;
}

/// The exit code a verdict maps to.
pub fn exit_code(v: Verdict) -> i32 {
    match v {
        Verdict::Healthy => exit::HEALTHY,
        Verdict::Damaged => exit::DAMAGED,
        Verdict::Empty | Verdict::NotHdf5 | Verdict::Unreadable => exit::NOTHING_READABLE,
    }
}

/// Combines per-file exit codes: an I/O error beats nothing-readable, which
/// beats damaged, which beats healthy.
pub fn combine_exit(a: i32, b: i32) -> i32 {
    let rank = |c: i32| match c {
        exit::USAGE_OR_IO => 3,
        exit::NOTHING_READABLE => 2,
        exit::DAMAGED => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// `{"shape": ...}`: the dims of a simple dataspace; `null` for a scalar or
/// null dataspace (as h5py's `shape` is `()` / `None`; the `dataspace`
/// field tells them apart).
struct Shape<'a>(&'a Dataspace);

impl Serialize for Shape<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.kind {
            DataspaceKind::Scalar | DataspaceKind::Null => s.serialize_unit(),
            DataspaceKind::Simple => self.0.dims.serialize(s),
        }
    }
}

fn layout_name(ds: &Dataset) -> &'static str {
    match ds.layout.class {
        LayoutClass::Compact { .. } => "compact",
        LayoutClass::Contiguous { .. } => "contiguous",
        LayoutClass::Chunked { .. } => "chunked",
        LayoutClass::Virtual { .. } => "virtual",
    }
}

fn filter_names(ds: &Dataset) -> Vec<String> {
    ds.filters
        .as_ref()
        .map(|p| p.filters.iter().map(|f| f.describe()).collect())
        .unwrap_or_default()
}

/// One attribute in an object's `attributes` list.
struct AttributeJson<'a>(&'a Attribute);

impl Serialize for AttributeJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("name", &a.name)?;
        m.serialize_entry("dtype", &a.message.datatype.as_ref().map(|t| t.describe()))?;
        m.serialize_entry("shape", &a.message.dataspace.as_ref().map(Shape))?;
        m.serialize_entry("problems", &a.problems)?;
        m.end()
    }
}

/// One entry of the `objects` list, written field by field (no JSON tree
/// is built: `scan --json` streams the report).
struct ObjectJson<'a>(&'a Object);

impl Serialize for ObjectJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("path", &o.path)?;
        m.serialize_entry("kind", o.kind.as_str())?;
        m.serialize_entry("address", &o.address)?;
        m.serialize_entry("status", o.status.as_str())?;
        m.serialize_entry("problems", &o.problems)?;
        m.serialize_entry(
            "attributes",
            &Seq(|| o.attributes.iter().map(AttributeJson)),
        )?;
        if let Some(first) = &o.hard_link_of {
            m.serialize_entry("hard_link_of", first)?;
        }
        // A dataset's type wins; the key keeps the committed type's place
        // when an object has both (the order of the report's first version).
        let dtype = match (&o.dataset, &o.datatype) {
            (Some(ds), _) => Some(ds.datatype.describe()),
            (None, Some(dt)) => Some(dt.describe()),
            (None, None) => None,
        };
        if o.datatype.is_some() {
            m.serialize_entry("dtype", &dtype)?;
        }
        if let Some(ds) = &o.dataset {
            m.serialize_entry("shape", &Shape(&ds.dataspace))?;
            m.serialize_entry(
                "dataspace",
                match ds.dataspace.kind {
                    DataspaceKind::Scalar => "scalar",
                    DataspaceKind::Null => "null",
                    DataspaceKind::Simple => "simple",
                },
            )?;
            m.serialize_entry("maxshape", &ds.dataspace.max_dims)?;
            if o.datatype.is_none() {
                m.serialize_entry("dtype", &dtype)?;
            }
            m.serialize_entry("layout", layout_name(ds))?;
            m.serialize_entry("filters", &filter_names(ds))?;
            let chunked = match &ds.layout.class {
                LayoutClass::Chunked { dims, .. } => Some(dims),
                _ => None,
            };
            if let Some(dims) = chunked {
                m.serialize_entry("chunk_shape", dims)?;
            }
            m.serialize_entry("chunks_total", &ds.coverage.chunks_total)?;
            m.serialize_entry("chunks_present", &ds.coverage.chunks_present)?;
            m.serialize_entry("bytes_expected", &ds.coverage.bytes_expected)?;
            m.serialize_entry("bytes_present", &ds.coverage.bytes_present)?;
            m.serialize_entry("index_complete", &ds.coverage.index_complete)?;
            if chunked.is_some() {
                let b = &ds.beyond_index;
                m.serialize_entry("chunks_indexed", &b.indexed)?;
                m.serialize_entry("chunks_beyond_index", &b.records.len())?;
                m.serialize_entry("chunks_superseded", &b.superseded)?;
                m.serialize_entry("stored_shape", &b.stored_dims)?;
                m.serialize_entry("beyond_index_records", &RecordBlocks(&b.records))?;
            }
        }
        m.end()
    }
}

/// Per chunked dataset (issue 13): the index records beyond the index root,
/// one entry per record block (consecutive chunks of one structure).
struct RecordBlocks<'a>(&'a [ChunkRecordFound]);

impl Serialize for RecordBlocks<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let records = self.0;
        let blocks = records.chunk_by(|a, b| (a.structure, a.at) == (b.structure, b.at));
        s.collect_seq(blocks.map(|block| {
            let (first, last) = (&block[0], &block[block.len() - 1]);
            json!({
                "structure": first.structure,
                "offset": first.at,
                "tie": first.tie,
                "chunks": block.len(),
                "first_offset": first.offset,
                "last_offset": last.offset,
            })
        }))
    }
}

/// A sequence serialized from a fresh iterator (no `Vec` collected).
struct Seq<F>(F);

impl<F, I> Serialize for Seq<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((self.0)())
    }
}

/// The JSON report of one file (the schema is documented in the README):
/// [`json`] as a value, [`write_json`] as text.
struct JsonReport<'a> {
    inv: &'a Inventory,
    /// `false`: `objects` is `[]` (they were serialized as the walk handed
    /// them over, [`ObjectsJson`], and go in its place).
    objects: bool,
}

impl Serialize for JsonReport<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let inv = self.inv;
        let objects = if self.objects { &inv.objects[..] } else { &[] };
        let mut m = s.serialize_map(Some(15))?;
        m.serialize_entry("file", &inv.file)?;
        m.serialize_entry("size", &inv.size)?;
        m.serialize_entry("superblock", &inv.superblock)?;
        m.serialize_entry("verdict", inv.verdict().as_str())?;
        m.serialize_entry("objects", &Seq(|| objects.iter().map(ObjectJson)))?;
        m.serialize_entry("links", &inv.links)?;
        m.serialize_entry("problems", &inv.problems)?;
        m.serialize_entry("notes", &inv.notes)?;
        m.serialize_entry("carving", &inv.carving)?;
        m.serialize_entry("open_for_write", &inv.open_for_write)?;
        m.serialize_entry("inferred", &inv.inferred)?;
        m.serialize_entry("zeroed_ranges", &inv.zeroed_ranges)?;
        m.serialize_entry("chunk_search", &chunk_search_json(inv))?;
        m.serialize_entry("cache_image", &inv.cache_image)?;
        m.serialize_entry("summary", &inv.summary())?;
        m.end()
    }
}

/// The JSON report of one file as a value.
pub fn json(inv: &Inventory) -> Value {
    serde_json::to_value(JsonReport { inv, objects: true }).unwrap_or_default()
}

/// Copies `text` (pretty JSON) to `out` with `indent` after each line
/// break: the same value, nested deeper. JSON strings hold no raw line
/// breaks (they are escaped), so every one is the formatter's.
fn indented(out: &mut Vec<u8>, text: &[u8], indent: &[u8]) {
    let mut lines = text.split(|&b| b == b'\n');
    if let Some(first) = lines.next() {
        out.extend_from_slice(first);
    }
    for line in lines {
        out.push(b'\n');
        out.extend_from_slice(indent);
        out.extend_from_slice(line);
    }
}

/// The `objects` list of a JSON report, serialized as the walk hands the
/// objects over ([`crate::pipeline::scan_path_streamed`]): the text of the
/// list instead of the objects (about half their memory, and no object
/// kept). Each is indented for its place in [`write_json`]'s document.
#[derive(Debug, Default)]
pub struct ObjectsJson {
    /// The list's elements as `serde_json::to_writer_pretty` writes them
    /// there: `\n    {...}` joined by `,`.
    text: Vec<u8>,
    /// One object serialized on its own (reused).
    scratch: Vec<u8>,
    count: usize,
}

impl ObjectsJson {
    /// Adds object `o` (after those added so far).
    fn push(&mut self, o: &Object) {
        self.scratch.clear();
        if serde_json::to_writer_pretty(&mut self.scratch, &ObjectJson(o)).is_err() {
            return;
        }
        self.text.extend_from_slice(if self.count == 0 {
            b"\n    "
        } else {
            b",\n    "
        });
        indented(&mut self.text, &self.scratch, b"    ");
        self.count += 1;
    }
}

impl ObjectSink for ObjectsJson {
    fn object(&mut self, o: Object) {
        self.push(&o);
    }

    fn clear(&mut self) {
        self.text.clear();
        self.count = 0;
    }
}

/// Writes the JSON report of one file (as `serde_json::to_writer_pretty`
/// of [`json`], without its closing line break): the objects `streamed`
/// holds (those a walk handed over), then those `inv` kept.
pub fn write_json(
    inv: &Inventory,
    streamed: &mut ObjectsJson,
    out: &mut dyn Write,
) -> io::Result<()> {
    for o in &inv.objects {
        streamed.push(o);
    }
    let mut doc = Vec::new();
    serde_json::to_writer_pretty(
        &mut doc,
        &JsonReport {
            inv,
            objects: false,
        },
    )?;
    // The one key at depth 1 named "objects" (a line break cannot occur
    // inside a string).
    const EMPTY: &[u8] = b"\n  \"objects\": []";
    let at = doc
        .windows(EMPTY.len())
        .position(|w| w == EMPTY)
        .ok_or_else(|| io::Error::other("JSON report without its objects key"))?;
    let (head, tail) = doc.split_at(at + EMPTY.len() - 2);
    out.write_all(head)?;
    if streamed.count == 0 {
        out.write_all(b"[]")?;
    } else {
        out.write_all(b"[")?;
        out.write_all(&streamed.text)?;
        out.write_all(b"\n  ]")?;
    }
    out.write_all(&tail[2..])
}

/// Writes the JSON documents of several files as `serde_json::to_writer_pretty`
/// writes an array of them (each made by [`write_json`]).
pub fn write_json_array(docs: &[Vec<u8>], out: &mut dyn Write) -> io::Result<()> {
    if docs.is_empty() {
        return out.write_all(b"[]");
    }
    let mut text = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        text.extend_from_slice(if i == 0 { b"[\n  " } else { b",\n  " });
        indented(&mut text, doc, b"  ");
    }
    text.extend_from_slice(b"\n]");
    out.write_all(&text)
}

/// Per chunked dataset, where its chunks come from (listed by its index,
/// placed by allocation order, left in /lost+found), and the stray stacks.
fn chunk_counts(inv: &Inventory) -> Vec<(String, u64, u64, u64)> {
    let Some(search) = &inv.chunk_search else {
        return Vec::new();
    };
    inv.objects
        .iter()
        .filter(|o| o.hard_link_of.is_none())
        .filter_map(|o| {
            let ds = o.dataset.as_ref()?;
            let LayoutClass::Chunked { .. } = ds.layout.class else {
                return None;
            };
            let placed = search
                .placed_in(&o.path)
                .map_or(0, |p| p.chunks.len() as u64);
            let indexed = (ds.chunks.len() as u64).saturating_sub(placed);
            Some((o.path.clone(), indexed, placed, search.stray_for(&o.path)))
        })
        .collect()
}

fn chunk_search_json(inv: &Inventory) -> Value {
    let Some(search) = &inv.chunk_search else {
        return Value::Null;
    };
    json!({
        "streams_found": search.streams_found,
        "unfiltered_found": search.unfiltered_found,
        "unfiltered_stopped": search.unfiltered_stopped.as_ref().map(|(at, why)| json!({"offset": at, "reason": why})),
        "datasets": chunk_counts(inv).into_iter().map(|(path, indexed, placed, stray)| json!({
            "path": path,
            "chunks_indexed": indexed,
            "chunks_placed_by_order": placed,
            "chunks_in_lost_found": stray,
        })).collect::<Vec<_>>(),
        "placed": search.placed,
        "stray": search.stray.iter().map(|st| json!({
            "path": crate::salvage::stray_path(st),
            "reason": st.reason.to_string(),
            "candidates": st.candidates,
            "chunks": st.chunks.len(),
            "inflated_len": st.inflated_len,
            "fletcher32": st.fletcher32,
            "unfiltered": st.unfiltered,
            "file_offsets": st.chunks.iter().map(|c| c.0).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The chunk search lines of the human report.
fn chunk_search_human(inv: &Inventory, out: &mut dyn Write) -> io::Result<()> {
    let Some(search) = &inv.chunk_search else {
        return Ok(());
    };
    writeln!(
        out,
        "  chunk search: {} zlib stream(s) outside every known structure and index",
        search.streams_found
    )?;
    if search.unfiltered_found > 0 || search.unfiltered_stopped.is_some() {
        writeln!(
            out,
            "  unfiltered chunk chain: {} chunk(s) past the stored end of file (unverified: no framing, no checksum){}",
            search.unfiltered_found,
            search
                .unfiltered_stopped
                .as_ref()
                .map_or(String::new(), |(at, why)| format!("; stopped at {at:#x}: {why}"))
        )?;
    }
    for (path, indexed, placed, stray) in chunk_counts(inv) {
        if placed == 0 && stray == 0 {
            continue;
        }
        writeln!(
            out,
            "    {path}: {indexed} chunks indexed, {placed} placed by allocation order, {stray} left in /lost+found"
        )?;
    }
    for st in &search.stray {
        writeln!(
            out,
            "    {}: {} chunk(s) of {} bytes {}{}: {}",
            crate::salvage::stray_path(st),
            st.chunks.len(),
            st.inflated_len,
            if st.unfiltered {
                "unfiltered, unverified"
            } else {
                "inflated"
            },
            if st.fletcher32 { ", Fletcher-32" } else { "" },
            st.reason
        )?;
    }
    Ok(())
}

fn data_note(ds: &Dataset) -> String {
    let c = &ds.coverage;
    match (
        c.chunks_total,
        c.chunks_present,
        c.bytes_expected,
        c.bytes_present,
    ) {
        (Some(t), Some(p), _, _) => {
            let mut s = format!("{p}/{t} chunks");
            let b = &ds.beyond_index;
            if !b.records.is_empty() {
                s.push_str(&format!(" ({} beyond the index root)", b.records.len()));
            }
            if let Some(d) = &b.stored_dims {
                s.push_str(&format!(", extent grown from {d:?}"));
            }
            if !c.index_complete {
                s.push_str(", index damaged");
            }
            s
        }
        (_, _, Some(e), Some(p)) if e == p => format!("{e} bytes"),
        (_, _, Some(e), Some(p)) => format!("{p}/{e} bytes"),
        _ => String::new(),
    }
}

/// Appends object `o`'s line (no newline) to `out`; returns where its path
/// lies in `out`.
fn object_line(o: &Object, out: &mut String) -> std::ops::Range<usize> {
    use std::fmt::Write as _;
    let mark = match o.status {
        Status::Intact => "ok     ",
        Status::Partial => "PARTIAL",
        Status::Lost => "LOST   ",
    };
    let _ = write!(out, "  {mark} {:<8} ", o.kind.as_str());
    let path = out.len()..out.len() + o.path.len();
    out.push_str(&o.path);
    if let Some(first) = &o.hard_link_of {
        let _ = write!(out, "  (hard link to {first})");
        return path;
    }
    if let Some(ds) = &o.dataset {
        let _ = write!(out, "  {} ", ds.datatype.describe());
        match ds.dataspace.kind {
            DataspaceKind::Scalar => out.push_str("scalar"),
            DataspaceKind::Null => out.push_str("null"),
            DataspaceKind::Simple => {
                let _ = write!(out, "{:?}", ds.dataspace.dims);
            }
        }
        let _ = write!(out, " {}", layout_name(ds));
        let filters = filter_names(ds);
        if !filters.is_empty() {
            let _ = write!(out, " [{}]", filters.join(","));
        }
        let note = data_note(ds);
        if !note.is_empty() {
            let _ = write!(out, " {note}");
        }
    }
    if !o.attributes.is_empty() {
        let _ = write!(out, "  {} attr", o.attributes.len());
    }
    path
}

/// What reports say of a file another process held open for writing.
pub const OPEN_FOR_WRITE: &str = "still open for writing by another process: this is a snapshot";

/// Appends the lines of one object in the human report to `out`: its line,
/// then its problems and its attributes' (each line ended). Returns where
/// its path lies in `out`.
fn object_text(o: &Object, out: &mut String) -> std::ops::Range<usize> {
    use std::fmt::Write as _;
    let path = object_line(o, out);
    out.push('\n');
    for p in &o.problems {
        let _ = writeln!(out, "            ! {p}");
    }
    for a in &o.attributes {
        for p in &a.problems {
            let _ = writeln!(out, "            ! attribute {:?}: {p}", a.name);
        }
    }
    path
}

/// The human report's lines of the objects a walk handed over one by one
/// ([`crate::pipeline::scan_path_streamed`]), with their paths: the lines
/// of every object one after the other in one string (a path, a line or
/// two: about 100 bytes an object) instead of the objects.
#[derive(Debug, Default)]
pub struct ObjectLines {
    /// Each object's lines, in the order they were handed over.
    text: String,
    /// Per object: where its lines start in `text` (they end where the
    /// next object's start) and where its path lies there.
    starts: Vec<(usize, std::ops::Range<usize>)>,
}

impl ObjectLines {
    /// Objects held.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// No object held.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Adds object `o`'s lines.
    fn push(&mut self, o: &Object) {
        let start = self.text.len();
        let path = object_text(o, &mut self.text);
        self.starts.push((start, path));
    }

    /// Object `i`'s path and lines.
    fn get(&self, i: usize) -> (&str, &str) {
        let Some((start, path)) = self.starts.get(i) else {
            return ("", "");
        };
        let end = self.starts.get(i + 1).map_or(self.text.len(), |n| n.0);
        let text = |r: std::ops::Range<usize>| self.text.get(r).unwrap_or_default();
        (text(path.clone()), text(*start..end))
    }
}

impl ObjectSink for ObjectLines {
    fn object(&mut self, o: Object) {
        self.push(&o);
    }

    fn clear(&mut self) {
        self.text.clear();
        self.starts.clear();
    }
}

/// The human report of one file.
pub fn human(inv: &Inventory, out: &mut dyn Write) -> io::Result<()> {
    human_streamed(inv, &ObjectLines::default(), out)
}

/// [`human`] of an inventory whose walk handed (some of) its objects to
/// `streamed` ([`Inventory::streamed`]).
pub fn human_streamed(
    inv: &Inventory,
    streamed: &ObjectLines,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "{} ({} bytes)", inv.file, inv.size)?;
    if inv.open_for_write {
        writeln!(out, "  {OPEN_FOR_WRITE}")?;
    }
    match &inv.superblock {
        None => writeln!(out, "  superblock: none found")?,
        Some(sb) => {
            write!(
                out,
                "  superblock: version {} at offset {}, offsets {} / lengths {} bytes, ",
                sb.version, sb.offset, sb.size_of_offsets, sb.size_of_lengths
            )?;
            let stored = sb.stored_file_size();
            let eof = match stored.cmp(&inv.size) {
                std::cmp::Ordering::Equal => "matches the file size".to_string(),
                std::cmp::Ordering::Greater => {
                    format!("file is {} bytes short: TRUNCATED", stored - inv.size)
                }
                std::cmp::Ordering::Less if !inv.notes.is_empty() => {
                    format!("file has {} bytes past it, see notes", inv.size - stored)
                }
                std::cmp::Ordering::Less => format!(
                    "file has {} bytes past it (written after the superblock)",
                    inv.size - stored
                ),
            };
            writeln!(out, "stored end of file {stored} ({eof})")?;
            if sb.open_for_write() {
                writeln!(
                    out,
                    "  superblock says the file is still open for write (writer did not close it)"
                )?;
            }
        }
    }
    // Objects the walk kept, then those it handed over: printed by path.
    let mut kept = ObjectLines::default();
    for o in &inv.objects {
        kept.push(o);
    }
    let mut objects: Vec<(&str, &str)> = (0..kept.len())
        .map(|i| kept.get(i))
        .chain((0..streamed.len()).map(|i| streamed.get(i)))
        .collect();
    if !objects.is_empty() {
        writeln!(out, "  objects:")?;
        objects.sort_by(|a, b| a.0.cmp(b.0));
        for (_, text) in objects {
            out.write_all(text.as_bytes())?;
        }
    }
    for l in &inv.links {
        match &l.file {
            Some(file) => writeln!(
                out,
                "  link     {:<8} {} -> {file}:{}",
                l.kind, l.path, l.target
            )?,
            None => writeln!(out, "  link     {:<8} {} -> {}", l.kind, l.path, l.target)?,
        }
    }
    if let Some(c) = &inv.carving {
        let counts: Vec<String> = c
            .hits
            .iter()
            .map(|(k, n)| format!("{k} {}/{n}", c.valid.get(k).copied().unwrap_or(0)))
            .collect();
        writeln!(
            out,
            "  carving: structures valid/found: {}",
            if counts.is_empty() {
                "none".to_string()
            } else {
                counts.join(", ")
            }
        )?;
        writeln!(
            out,
            "  carving: {} objects attached to a named path, {} orphans under /lost+found",
            c.attached, c.orphans
        )?;
    }
    if !inv.zeroed_ranges.is_empty() {
        let total: u64 = inv.zeroed_ranges.iter().map(|z| z.length).sum();
        let shown: Vec<String> = inv
            .zeroed_ranges
            .iter()
            .take(8)
            .map(|z| format!("{:#x}..{:#x}", z.offset, z.offset.saturating_add(z.length)))
            .collect();
        writeln!(
            out,
            "  all-zero 4 KiB pages: {} bytes in {} range(s): {}{}",
            total,
            inv.zeroed_ranges.len(),
            shown.join(", "),
            if inv.zeroed_ranges.len() > 8 {
                ", ..."
            } else {
                ""
            }
        )?;
    }
    chunk_search_human(inv, out)?;
    if !inv.problems.is_empty() {
        writeln!(out, "  file problems:")?;
        for p in &inv.problems {
            writeln!(out, "    ! {p}")?;
        }
    }
    if !inv.notes.is_empty() {
        writeln!(out, "  notes:")?;
        for p in &inv.notes {
            writeln!(out, "    - {p}")?;
        }
    }
    let s = inv.summary();
    let kind_counts = format!(
        "{} groups, {} datasets, {} datatypes{}",
        s.groups,
        s.datasets,
        s.datatypes,
        if s.unknown > 0 {
            format!(", {} unknown", s.unknown)
        } else {
            String::new()
        }
    );
    writeln!(
        out,
        "  verdict: {} ({kind_counts}; {} intact, {} partial, {} lost; {} problems)",
        inv.verdict().as_str().to_uppercase(),
        s.intact,
        s.partial,
        s.lost,
        s.problems
    )?;
    if inv.open_for_write {
        writeln!(out, "  verdict is of a snapshot: {OPEN_FOR_WRITE}")?;
    }
    Ok(())
}

/// The one-screen summary of a salvage run.
pub fn salvage_summary(r: &crate::salvage::SalvageReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{} -> {}", r.input, r.output)?;
    writeln!(
        out,
        "  input: {} bytes, scan verdict {}",
        r.input_size, r.verdict
    )?;
    if r.input_open_for_write {
        writeln!(out, "  input {OPEN_FOR_WRITE}")?;
    }
    for o in r
        .objects
        .iter()
        .filter(|o| o.result != crate::salvage::Recovery::Recovered)
    {
        writeln!(
            out,
            "  {:<9} {:<8} {}",
            o.result.as_str().to_uppercase(),
            o.kind,
            o.path
        )?;
        for why in o.reasons.iter().take(4) {
            writeln!(out, "            {why}")?;
        }
        if o.reasons.len() > 4 {
            writeln!(out, "            ... {} more", o.reasons.len() - 4)?;
        }
    }
    for o in r.objects.iter().filter(|o| !o.notes.is_empty()) {
        for n in &o.notes {
            writeln!(out, "  NOTE      {:<8} {}: {n}", o.kind, o.path)?;
        }
    }
    for n in &r.notes {
        writeln!(out, "  note: {n}")?;
    }
    if r.superblock_lost {
        writeln!(
            out,
            "  superblock lost: not found in the input (the output's is new): exit 1 even where every object came back"
        )?;
    }
    if r.chunks_placed_by_order > 0 || r.chunks_in_lost_found > 0 {
        writeln!(
            out,
            "  chunks no index lists: {} placed by allocation order (listed in h5salvage_inferred), {} in /lost+found",
            r.chunks_placed_by_order, r.chunks_in_lost_found
        )?;
    }
    writeln!(
        out,
        "  recovered {} objects intact, {} partial (marked h5salvage_status=partial), {} lost{}; {} attributes lost",
        r.recovered,
        r.partial,
        r.lost,
        if r.unverified > 0 {
            format!(
                ", {} unverified (data in all-zero pages, marked h5salvage_unverified)",
                r.unverified
            )
        } else {
            String::new()
        },
        r.attributes_lost
    )?;
    Ok(())
}

/// The table `merge` prints: one line per input, then conflicts, notes and
/// what was done with the inputs.
pub fn merge_table(r: &crate::merge::MergeReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<40} {:>6} {:>6} {:>7} {:>9} {:>7} {:>5}  {:<10} verdict",
        "input", "found", "merged", "present", "duplicate", "partial", "lost", "scan"
    )?;
    for i in &r.inputs {
        writeln!(
            out,
            "{:<40} {:>6} {:>6} {:>7} {:>9} {:>7} {:>5}  {:<10} {}",
            i.input,
            i.found,
            i.merged,
            i.present,
            i.duplicate,
            i.partial,
            i.lost,
            i.scan,
            i.verdict
        )?;
        if let Some(e) = &i.error {
            writeln!(out, "    error: {e}")?;
        }
        if i.open_for_write {
            writeln!(out, "    {OPEN_FOR_WRITE}")?;
        }
        for u in i
            .units
            .iter()
            .filter(|u| matches!(u.result, UnitResult::Partial | UnitResult::Lost))
        {
            writeln!(
                out,
                "    {} {} -> {}",
                u.result.as_str().to_uppercase(),
                u.source,
                u.dest
            )?;
            for why in u.reasons.iter().take(3) {
                writeln!(out, "        {why}")?;
            }
        }
        if let Some(a) = &i.action {
            writeln!(out, "    {a}")?;
        }
    }
    for c in &r.conflicts {
        writeln!(out, "conflict: {c}")?;
    }
    for n in &r.notes {
        writeln!(out, "note: {n}")?;
    }
    let merged: u64 = r.inputs.iter().map(|i| i.merged + i.partial).sum();
    if r.written {
        writeln!(out, "{}: {merged} group(s) added", r.output)?;
    } else {
        writeln!(out, "{}: nothing new; left as it was", r.output)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carve::chunks::Options;
    use crate::pipeline::{scan_path_chunks, scan_path_streamed, CarveMode};

    fn text(inv: &Inventory, lines: &ObjectLines) -> String {
        let mut out = Vec::new();
        human_streamed(inv, lines, &mut out).expect("report");
        String::from_utf8(out).expect("utf-8")
    }

    /// Scan's text report made from objects handed over one by one is the
    /// report of the whole inventory: healthy files (hard links among
    /// them: the streamed first visit's path), a damaged one (walked again
    /// whole for the carver in `Auto` mode, streamed without carving) and
    /// an unclosed one (kept whole: its extents may grow after the walk).
    #[test]
    fn the_streamed_report_is_the_whole_report() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        // (file, damaged, unclosed)
        let files = [
            ("rich_latest.h5", false, false),
            ("rich_earliest.h5", false, false),
            ("many_members_earliest.h5", false, false),
            ("damaged/worker_truncated.h5", true, false),
            ("damaged/worker_open_for_write.h5", true, true),
        ];
        let mut hard_links = 0;
        for (name, damaged, unclosed) in files {
            let path = dir.join(name);
            for mode in [CarveMode::Auto, CarveMode::Never] {
                let opts = Options::default();
                let whole = scan_path_chunks(&path, mode, &opts).expect(name);
                let mut lines = ObjectLines::default();
                let streamed = scan_path_streamed(&path, mode, &opts, &mut lines).expect(name);
                let report = text(&whole, &ObjectLines::default());
                assert_eq!(report, text(&streamed, &lines), "{name} {mode:?}");
                assert_eq!(whole.summary(), streamed.summary(), "{name} {mode:?}");
                assert_eq!(whole.verdict(), streamed.verdict(), "{name} {mode:?}");
                let kept = unclosed || (damaged && mode == CarveMode::Auto);
                let streams = !kept;
                assert_eq!(streamed.objects.is_empty(), streams, "{name} {mode:?}");
                assert_eq!(lines.is_empty(), !streams, "{name} {mode:?}");
                assert_eq!(whole.objects.len(), lines.len().max(streamed.objects.len()));
                hard_links += report.matches("(hard link to ").count();
            }
        }
        assert!(hard_links > 0, "no fixture had a hard link");
    }

    /// `scan --json`'s document, written from objects serialized as the
    /// walk handed them over, is `serde_json`'s pretty text of the whole
    /// report ([`json`]); several files make the same array as `serde_json`
    /// writes of their values.
    #[test]
    fn the_streamed_json_is_the_whole_json() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let files = [
            "rich_latest.h5",
            "rich_earliest.h5",
            "many_members_earliest.h5",
            "damaged/worker_truncated.h5",
            "damaged/worker_open_for_write.h5",
            "damaged/worker_no_superblock.h5",
        ];
        let (mut docs, mut values) = (Vec::new(), Vec::new());
        // Documents with objects, and without (carving never ran).
        let mut emptiness = [false; 2];
        for name in files {
            let path = dir.join(name);
            for mode in [CarveMode::Auto, CarveMode::Never] {
                let opts = Options::default();
                let value = json(&scan_path_chunks(&path, mode, &opts).expect(name));
                let mut objects = ObjectsJson::default();
                let streamed = scan_path_streamed(&path, mode, &opts, &mut objects).expect(name);
                let mut doc = Vec::new();
                write_json(&streamed, &mut objects, &mut doc).expect(name);
                let whole = serde_json::to_string_pretty(&value).expect(name);
                assert_eq!(String::from_utf8_lossy(&doc), whole, "{name} {mode:?}");
                let objects = value["objects"].as_array().map_or(0, Vec::len);
                emptiness[usize::from(objects == 0)] = true;
                docs.push(doc);
                values.push(value);
            }
        }
        assert_eq!(emptiness, [true, true]);
        for n in [0, 1, 2, docs.len()] {
            let mut text = Vec::new();
            write_json_array(&docs[..n], &mut text).expect("array");
            let whole = serde_json::to_string_pretty(&values[..n]).expect("array");
            assert_eq!(String::from_utf8_lossy(&text), whole, "{n} documents");
        }
    }
}

//! One object header, read tolerantly and decoded into the messages the walk
//! needs (spec IV.A: object header, its continuation blocks and messages).

use crate::follow::fractal_heap::read_managed_object;
use crate::follow::{self, Image};
use crate::format::fractal_heap::{self, HeapId};
use crate::format::is_undefined;
use crate::format::message::attribute::Attribute as AttributeMessage;
use crate::format::message::attribute_info::AttributeInfo;
use crate::format::message::data_layout::DataLayout;
use crate::format::message::dataspace::Dataspace;
use crate::format::message::datatype::Datatype;
use crate::format::message::fill_value::{FillValue, FillValueOld};
use crate::format::message::filter_pipeline::FilterPipeline;
use crate::format::message::link::Link;
use crate::format::message::link_info::LinkInfo;
use crate::format::message::shared::{SharedKind, SharedMessage};
use crate::format::message::symbol_table::SymbolTable;
use crate::format::message::{self, kind, Message};
use crate::format::object_header::RawMessage;
use crate::inventory::{
    Attribute, CreationOrder, Object, ObjectKind, Problem, ProblemKind, Status,
};

/// The decoded messages of one object header that the walk uses.
#[derive(Debug, Default)]
pub struct HeaderContents {
    pub datatype: Option<Datatype>,
    /// The datatype message was shared: the committed datatype's header
    /// address it names.
    pub datatype_committed: Option<u64>,
    pub dataspace: Option<Dataspace>,
    pub layout: Option<DataLayout>,
    pub filters: Option<FilterPipeline>,
    pub fill_value: Option<FillValue>,
    pub fill_value_old: Option<FillValueOld>,
    pub symbol_table: Option<SymbolTable>,
    pub link_info: Option<LinkInfo>,
    pub links: Vec<Link>,
    pub has_group_info: bool,
    /// An External Data Files message: the raw data lives in other files.
    pub external_files: bool,
    pub attributes: Vec<AttributeMessage>,
    /// The creation order field of each attribute message (v2 headers that
    /// track it), parallel to `attributes`.
    pub attribute_orders: Vec<Option<u16>>,
    pub attribute_info: Option<AttributeInfo>,
    /// A version-2 header's flags bits 2 and 3 (spec IV.A.1.b: attribute
    /// creation order tracked, indexed): libhdf5 sets them at creation,
    /// before any attribute (and any attribute info message) exists.
    pub header_attribute_order: CreationOrder,
}

impl HeaderContents {
    /// Creation-order flags of the links (Link Info message) and of the
    /// attributes (Attribute Info message): tracked when the maximum
    /// creation index is present, indexed when its B-tree address is.
    pub fn creation_orders(&self) -> (CreationOrder, CreationOrder) {
        let links = self
            .link_info
            .as_ref()
            .map_or_else(CreationOrder::default, |l| CreationOrder {
                tracked: l.max_creation_index.is_some(),
                indexed: l.creation_order_index_btree_address.is_some(),
            });
        let info = self
            .attribute_info
            .as_ref()
            .map_or_else(CreationOrder::default, |a| CreationOrder {
                tracked: a.max_creation_index.is_some(),
                indexed: a.creation_order_index_btree_address.is_some(),
            });
        let flags = self.header_attribute_order;
        let attrs = CreationOrder {
            tracked: info.tracked || flags.tracked,
            indexed: info.indexed || flags.indexed,
        };
        (links, attrs)
    }

    /// What the messages say the object is (spec IV.A.2: a dataset has a
    /// layout; a group a symbol table, link info or links; a committed
    /// datatype only a datatype, never a message only a dataset has: a
    /// dataset whose layout and dataspace messages were lost to damage
    /// still has its fill value or filter pipeline, and is no datatype).
    pub fn kind(&self) -> ObjectKind {
        let dataset_only = self.dataspace.is_some()
            || self.filters.is_some()
            || self.fill_value.is_some()
            || self.fill_value_old.is_some()
            || self.external_files;
        if self.layout.is_some() {
            ObjectKind::Dataset
        } else if self.symbol_table.is_some()
            || self.link_info.is_some()
            || !self.links.is_empty()
            || self.has_group_info
        {
            ObjectKind::Group
        } else if self.datatype.is_some() && !dataset_only {
            ObjectKind::Datatype
        } else {
            ObjectKind::Unknown
        }
    }
}

/// Reads the object header at HDF5 address `addr` with all its continuation
/// blocks. Problems go on `obj`; `None` means the header is unreadable (the
/// object is then marked lost).
pub fn read_object(image: &Image, addr: u64, obj: &mut Object) -> Option<HeaderContents> {
    let (prefix, raws, errors) = follow::object_header::read_all_messages(image, addr);
    for e in errors {
        obj.damage(Status::Partial, Problem::in_header(e));
    }
    if prefix.is_none() {
        obj.status = Status::Lost;
        if obj.problems.is_empty() {
            obj.problems.push(Problem::new(
                ProblemKind::Unreadable,
                image.absolute(addr),
                "object header",
                "unreadable",
            ));
        }
        return None;
    }
    if let Some(p) = &prefix {
        obj.header_version = Some(p.version);
        obj.times = match (p.version, p.access_time, p.modification_time) {
            (1, ..) => Some([0; 4]),
            (_, Some(a), Some(m)) => {
                Some([a, m, p.change_time.unwrap_or(0), p.birth_time.unwrap_or(0)])
            }
            _ => None,
        };
        obj.header_spans.push((p.address_abs, p.end_abs()));
    }
    for raw in &raws {
        // Message frame: the header before the body (v1 8 bytes, v2 4 or 6).
        let start = raw.body_offset.saturating_sub(8);
        let end = raw.body_offset.saturating_add(u64::from(raw.size));
        if !obj
            .header_spans
            .iter()
            .any(|&(s, e)| s <= start && end <= e)
        {
            obj.header_spans.push((start, end));
        }
    }
    let mut h = HeaderContents::default();
    if let Some(p) = &prefix {
        h.header_attribute_order = CreationOrder {
            tracked: p.creation_order_tracked(),
            indexed: p.creation_order_indexed(),
        };
    }
    for raw in &raws {
        match decode(image, raw) {
            Ok(m) => absorb(image, &mut h, raw, m, obj),
            Err(e) => obj.damage(Status::Partial, e),
        }
    }
    Some(h)
}

/// Decodes one raw message, reading its body from the file.
fn decode(image: &Image, raw: &RawMessage) -> Result<Message, Problem> {
    let start = usize::try_from(raw.body_offset).ok();
    let body = start
        .and_then(|s| s.checked_add(usize::from(raw.size)).map(|e| (s, e)))
        .and_then(|(s, e)| image.bytes.get(s..e))
        .ok_or_else(|| {
            Problem::new(
                ProblemKind::Truncated,
                Some(raw.body_offset),
                "object header message",
                format!(
                    "{} message body runs past the end of the file",
                    message::kind_name(raw.kind)
                ),
            )
        })?;
    message::parse(raw.kind, raw.flags, body, raw.body_offset, image.sizes).map_err(Problem::from)
}

fn absorb(image: &Image, h: &mut HeaderContents, raw: &RawMessage, m: Message, obj: &mut Object) {
    match m {
        Message::Datatype(t) => {
            for e in t.faults(raw.body_offset) {
                obj.damage(Status::Partial, e.into());
            }
            h.datatype = Some(t)
        }
        Message::Dataspace(s) => {
            for e in s.faults(raw.body_offset) {
                obj.damage(Status::Partial, e.into());
            }
            h.dataspace = Some(s)
        }
        Message::DataLayout(l) => h.layout = Some(l),
        Message::FilterPipeline(f) => {
            for e in f.faults(raw.body_offset) {
                obj.damage(Status::Partial, e.into());
            }
            h.filters = Some(f)
        }
        Message::FillValue(f) => h.fill_value = Some(f),
        Message::FillValueOld(f) => h.fill_value_old = Some(f),
        Message::SymbolTable(s) => h.symbol_table = Some(s),
        Message::LinkInfo(l) => h.link_info = Some(l),
        Message::Link(l) => h.links.push(l),
        Message::GroupInfo(_) => h.has_group_info = true,
        Message::Attribute(a) => {
            h.attributes.push(a);
            h.attribute_orders.push(raw.creation_order);
        }
        Message::AttributeInfo(a) => h.attribute_info = Some(a),
        // libhdf5 reports a version-1 header's modification time message
        // as the change time (a version-2 header's times are its prefix's).
        Message::ModificationTime(t) => {
            if let Some(times) = obj.times.as_mut().filter(|_| obj.header_version == Some(1)) {
                times[2] = u32::try_from(t.seconds).unwrap_or(u32::MAX);
            }
        }
        Message::Other {
            kind: kind::EXTERNAL_FILES,
            ..
        } => h.external_files = true,
        Message::Shared(s) if s.kind == SharedKind::Heap => {
            match resolve_heap_message(image, raw.kind, &s) {
                // Parsed without the shared flag: never `Shared` again.
                Ok(m) => absorb(image, h, raw, m, obj),
                Err(p) => obj.damage(Status::Partial, p),
            }
        }
        Message::Shared(s) => match raw.kind {
            kind::DATATYPE => match resolve_shared_datatype(image, &s) {
                Ok(t) => {
                    for e in t.faults(raw.body_offset) {
                        obj.damage(Status::Partial, e.into());
                    }
                    h.datatype = Some(t);
                    h.datatype_committed = committed_address(&s);
                }
                Err(p) => obj.damage(Status::Partial, p),
            },
            other => obj.damage(
                Status::Partial,
                Problem::new(
                    ProblemKind::Unsupported,
                    Some(raw.body_offset),
                    "shared message",
                    format!(
                        "shared {} message not supported (only shared datatypes are)",
                        message::kind_name(other)
                    ),
                ),
            ),
        },
        _ => {}
    }
}

/// The header address a shared message names when it is a committed
/// message (not one in the shared-message heap).
fn committed_address(s: &SharedMessage) -> Option<u64> {
    s.address
        .filter(|a| s.kind == SharedKind::Committed && !is_undefined(*a))
}

/// A message kept in the shared-object-header-message heap (spec III.I):
/// its fractal heap ID names it in the heap the file's table gives for
/// messages of type `message_kind`.
fn resolve_heap_message(
    image: &Image,
    message_kind: u16,
    s: &SharedMessage,
) -> Result<Message, Problem> {
    // libhdf5 keeps a shared old fill value message in the heap of the
    // new one's index (observed with HDF5 2.0: no index lists type 4).
    let index_kind = match message_kind {
        kind::FILL_VALUE_OLD => kind::FILL_VALUE,
        k => k,
    };
    let what = message::kind_name(message_kind);
    let heap = s
        .heap_id
        .zip(image.shared_heaps.heap_for(index_kind))
        .ok_or_else(|| {
            Problem::new(
                ProblemKind::Unreadable,
                None,
                "shared message",
                format!("shared {what} message in the shared-message heap, which no table names"),
            )
        });
    let (id, heap) = heap?;
    let at = image.absolute(heap).unwrap_or(heap);
    let header = image
        .at("FRHP", heap)
        .and_then(|d| fractal_heap::parse_header(d, at, image.sizes))?;
    let bytes = match fractal_heap::parse_heap_id(&id, at, &header)? {
        HeapId::Managed { offset, length } => {
            read_managed_object(image, heap, &header, offset, length)?
        }
        HeapId::Tiny { data } => data,
        HeapId::Huge(_) => {
            return Err(Problem::new(
                ProblemKind::Unsupported,
                Some(at),
                "shared message",
                format!("shared {what} message stored as a huge heap object: not supported"),
            ))
        }
    };
    Ok(message::parse(message_kind, 0, &bytes, at, image.sizes)?)
}

/// Follows a shared datatype (a committed datatype's header, or the
/// shared-message heap) one level: the target must be a plain datatype
/// message.
pub fn resolve_shared_datatype(image: &Image, s: &SharedMessage) -> Result<Datatype, Problem> {
    if s.kind == SharedKind::Heap {
        return match resolve_heap_message(image, kind::DATATYPE, s)? {
            Message::Datatype(t) => Ok(t),
            _ => Err(Problem::new(
                ProblemKind::Malformed,
                None,
                "shared message",
                "shared datatype: the heap holds no datatype message",
            )),
        };
    }
    let Some(addr) = s.address.filter(|a| !is_undefined(*a)) else {
        return Err(Problem::new(
            ProblemKind::Unsupported,
            None,
            "shared message",
            "shared datatype kept in the shared-message heap: not supported",
        ));
    };
    let (prefix, raws, errors) = follow::object_header::read_all_messages(image, addr);
    if prefix.is_none() {
        let why = errors
            .first()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "unreadable".into());
        return Err(Problem::new(
            ProblemKind::Unreadable,
            image.absolute(addr),
            "committed datatype",
            format!("header of shared datatype unreadable: {why}"),
        ));
    }
    // A header (or continuation block) failing its checksum: nothing it
    // says is trusted, its datatype included.
    if let Some(p) = errors
        .into_iter()
        .map(Problem::in_header)
        .find(|p| p.kind == ProblemKind::HeaderChecksum)
    {
        return Err(Problem::new(
            // The committed type's header, not this object's own.
            ProblemKind::Checksum,
            image.absolute(addr),
            "committed datatype",
            format!("header of shared datatype fails its checksum: {p}"),
        ));
    }
    for raw in raws.iter().filter(|r| r.kind == kind::DATATYPE) {
        if let Ok(Message::Datatype(t)) = decode(image, raw) {
            return Ok(t);
        }
    }
    Err(Problem::new(
        ProblemKind::Unreadable,
        image.absolute(addr),
        "committed datatype",
        "no readable datatype message in the shared datatype's header",
    ))
}

/// The object's attributes: compact ones from the header, dense ones from the
/// fractal heap named by the attribute info message (spec IV.A.2.v).
pub fn attributes(
    image: &Image,
    h: &HeaderContents,
    problems: &mut Vec<Problem>,
) -> Vec<Attribute> {
    let mut out: Vec<Attribute> = h
        .attributes
        .iter()
        .cloned()
        .zip(h.attribute_orders.iter().chain(std::iter::repeat(&None)))
        .map(|(m, order)| attribute(image, m, order.map(u64::from)))
        .collect();
    if let Some(info) = &h.attribute_info {
        if !is_undefined(info.fractal_heap_address) {
            let (objects, errs) = follow::dense::dense_objects(
                image,
                info.fractal_heap_address,
                info.name_index_btree_address,
            );
            problems.extend(errs);
            for (at, bytes, order) in objects {
                match message::attribute::parse(&bytes, at, image.sizes) {
                    Ok(m) => out.push(attribute(image, m, order)),
                    Err(e) => problems.push(e.into()),
                }
            }
        }
    }
    check_names(&mut out, h.creation_orders().1.tracked, problems);
    out
}

/// Attribute names (spec IV.A.2.m: the name is NUL-terminated, its stored
/// length counting the NUL). A name with more bytes after its NUL is
/// damaged: escaped as an illegal member name is (`%00`), and recorded on
/// the object. Two attributes of one name cannot both be written: in the
/// order salvage writes them (creation order when tracked), the first is
/// kept and each later one carries a [`ProblemKind::Duplicate`] (not
/// written, counted lost), as a group's later duplicate member is ignored.
fn check_names(attrs: &mut [Attribute], tracked: bool, problems: &mut Vec<Problem>) {
    for a in attrs.iter_mut() {
        if let Some(bytes) = &a.message.name_with_nul {
            let (path, _) = super::child_path("/", bytes);
            a.name = path.trim_start_matches('/').to_string();
            problems.push(Problem::new(
                ProblemKind::Malformed,
                Some(a.message.offset),
                "attribute",
                format!(
                    "attribute name {:?} has a NUL inside its stored length: written as {:?}",
                    String::from_utf8_lossy(bytes),
                    a.name
                ),
            ));
        }
    }
    let mut order: Vec<usize> = (0..attrs.len()).collect();
    if tracked {
        order.sort_by_key(|&i| attrs[i].creation_order.unwrap_or(u64::MAX));
    }
    let mut seen = std::collections::HashSet::new();
    for i in order {
        let a = &mut attrs[i];
        if !seen.insert(a.name.clone()) {
            a.problems.push(Problem::new(
                ProblemKind::Duplicate,
                Some(a.message.offset),
                "attribute",
                format!(
                    "duplicate attribute name {:?}: the first is kept, this one not written",
                    a.name
                ),
            ));
        }
    }
}

fn attribute(image: &Image, mut m: AttributeMessage, creation_order: Option<u64>) -> Attribute {
    let mut problems = Vec::new();
    let exact = m.value_is_exact();
    let mut committed_type = None;
    if let Some(s) = m.datatype_shared.take() {
        match resolve_shared_datatype(image, &s) {
            Ok(t) => {
                m.datatype = Some(t);
                committed_type = committed_address(&s);
            }
            Err(p) => problems.push(p),
        }
    }
    if let Some(s) = m.dataspace_shared.take() {
        let space = match s.kind {
            SharedKind::Heap => resolve_heap_message(image, kind::DATASPACE, &s),
            _ => Err(Problem::new(
                ProblemKind::Unsupported,
                Some(m.value_offset),
                "attribute",
                "shared dataspace outside the shared-message heap: not supported",
            )),
        };
        match space {
            Ok(Message::Dataspace(d)) => m.dataspace = Some(d),
            Ok(_) => problems.push(Problem::new(
                ProblemKind::Malformed,
                Some(m.value_offset),
                "attribute",
                "shared dataspace: the heap holds no dataspace message",
            )),
            Err(p) => problems.push(p),
        }
    }
    // With a shared datatype the parser could not size the value: trim it
    // now that the datatype is known.
    if !exact {
        let want = m
            .dataspace
            .as_ref()
            .and_then(|s| s.element_count())
            .zip(m.datatype.as_ref())
            .and_then(|(n, t)| n.checked_mul(u64::from(t.size)));
        match want {
            Some(w) if w <= m.value.len() as u64 => m.value.truncate(w as usize),
            _ => problems.push(Problem::new(
                ProblemKind::Malformed,
                Some(m.value_offset),
                "attribute",
                "value size unknown or larger than the message",
            )),
        }
    }
    // Values libhdf5 refuses in the attribute's type or space, at the
    // attribute message's offset.
    let faults = m
        .datatype
        .iter()
        .flat_map(|t| t.faults(m.offset))
        .chain(m.dataspace.iter().flat_map(|s| s.faults(m.offset)));
    problems.extend(faults.map(Problem::from));
    Attribute {
        name: m.name.clone(),
        message: m,
        creation_order,
        committed_type,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An object tracking attribute creation order without any attribute
    /// has no attribute info message: the header's flags say it (spec
    /// IV.A.1.b bits 2 and 3).
    #[test]
    fn attribute_order_comes_from_the_header_flags_too() {
        let mut h = HeaderContents::default();
        assert_eq!(h.creation_orders().1, CreationOrder::default());
        h.header_attribute_order = CreationOrder {
            tracked: true,
            indexed: true,
        };
        assert_eq!(
            h.creation_orders().1,
            CreationOrder {
                tracked: true,
                indexed: true
            }
        );
    }
}

//! Encoders of the on-disk structures the native writer emits, each the
//! inverse of its parser in `crate::format` (8-byte offsets and lengths
//! throughout). Spec sections: II.A superblock v2, III.A.1 v1 B-tree,
//! III.E global heap, IV.A.1.b object header v2, IV.A.2.* messages.

use crate::format::lookup3::hashlittle;
use crate::format::message::dataspace::{Dataspace, DataspaceKind};
use crate::format::message::datatype::{
    ByteOrder, CharacterSet, Datatype, DatatypeClass, Normalization, ReferenceKind, StringPadding,
    VlenKind,
};
use crate::format::message::fill_value::FillValue;
use crate::format::message::filter_pipeline::FilterPipeline;
use crate::format::UNDEFINED;

/// Message type numbers (spec IV.A.2).
pub const MSG_DATASPACE: u8 = 0x01;
pub const MSG_LINK_INFO: u8 = 0x02;
pub const MSG_DATATYPE: u8 = 0x03;
pub const MSG_FILL_VALUE: u8 = 0x05;
pub const MSG_LINK: u8 = 0x06;
pub const MSG_LAYOUT: u8 = 0x08;
pub const MSG_GROUP_INFO: u8 = 0x0a;
pub const MSG_FILTERS: u8 = 0x0b;
pub const MSG_ATTRIBUTE: u8 = 0x0c;
pub const MSG_ATTRIBUTE_INFO: u8 = 0x15;

/// Message flag bit 0: constant.
pub const FLAG_CONSTANT: u8 = 0x01;

/// Why a value cannot be encoded (the caller's eligibility rule missed it).
pub type Unencodable = String;

fn padding_bits(p: StringPadding) -> u32 {
    match p {
        StringPadding::NullTerminate => 0,
        StringPadding::NullPad => 1,
        StringPadding::SpacePad => 2,
        StringPadding::Reserved(v) => u32::from(v & 0x0f),
    }
}

fn charset_bits(c: CharacterSet) -> u32 {
    match c {
        CharacterSet::Ascii => 0,
        CharacterSet::Utf8 => 1,
        CharacterSet::Reserved(v) => u32::from(v & 0x0f),
    }
}

fn order_bit(o: ByteOrder) -> u32 {
    u32::from(o != ByteOrder::LittleEndian)
}

/// The datatype version written for `t`: the input's, except that the
/// HDF5 2.0 versions 4 and 5 (same property layouts as 3) become 3, which
/// libhdf5 1.8 and 1.10 read.
/// Bytes of an opaque datatype's tag field (spec IV.A.2.d, class 5; bits
/// 0-7 of the class bits): the tag NUL-padded to a multiple of 8, with a
/// terminating NUL where that still fits in 255; libhdf5 writes its longest
/// tags (248 bytes) padded but not terminated.
fn opaque_tag_len(tag: &str) -> usize {
    let terminated = (tag.len() + 1).div_ceil(8) * 8;
    if terminated <= 255 {
        terminated
    } else {
        tag.len().div_ceil(8) * 8
    }
}

pub fn version_of(t: &Datatype) -> u8 {
    t.version.min(3)
}

/// Encodes datatype `t` (spec IV.A.2.d); `depth` bounds nesting.
pub fn datatype(t: &Datatype, out: &mut Vec<u8>) -> Result<(), Unencodable> {
    datatype_at(t, out, 0)
}

fn datatype_at(t: &Datatype, out: &mut Vec<u8>, depth: u32) -> Result<(), Unencodable> {
    if depth > crate::format::message::datatype::MAX_DEPTH {
        return Err("datatype nested too deeply".into());
    }
    let version = version_of(t);
    let (class, bits): (u8, u32) = match &t.class {
        DatatypeClass::FixedPoint {
            order,
            lo_pad,
            hi_pad,
            signed,
            ..
        } => (
            0,
            order_bit(*order)
                | u32::from(*lo_pad) << 1
                | u32::from(*hi_pad) << 2
                | u32::from(*signed) << 3,
        ),
        DatatypeClass::FloatingPoint {
            order,
            lo_pad,
            hi_pad,
            internal_pad,
            normalization,
            sign_location,
            ..
        } => {
            let o = match order {
                ByteOrder::LittleEndian => 0,
                ByteOrder::BigEndian => 0x01,
                ByteOrder::Vax => 0x41,
            };
            let n = match normalization {
                Normalization::None => 0,
                Normalization::MsbSet => 1,
                Normalization::Implied => 2,
                Normalization::Reserved => 3,
            };
            (
                1,
                o | u32::from(*lo_pad) << 1
                    | u32::from(*hi_pad) << 2
                    | u32::from(*internal_pad) << 3
                    | n << 4
                    | u32::from(*sign_location) << 8,
            )
        }
        DatatypeClass::Time { order, .. } => (2, order_bit(*order)),
        DatatypeClass::String { padding, charset } => {
            (3, padding_bits(*padding) | charset_bits(*charset) << 4)
        }
        DatatypeClass::Bitfield {
            order,
            lo_pad,
            hi_pad,
            ..
        } => (
            4,
            order_bit(*order) | u32::from(*lo_pad) << 1 | u32::from(*hi_pad) << 2,
        ),
        DatatypeClass::Opaque { tag } => {
            let len = opaque_tag_len(tag);
            if len > 255 {
                return Err("opaque tag too long".into());
            }
            (5, len as u32)
        }
        DatatypeClass::Compound { members } => {
            if members.len() > 0xffff {
                return Err("too many compound members".into());
            }
            (6, members.len() as u32)
        }
        DatatypeClass::Reference { kind, revision } => {
            if revision.is_some() {
                return Err("revised references are not written natively".into());
            }
            let k = match kind {
                ReferenceKind::Object => 0,
                ReferenceKind::DatasetRegion => 1,
                _ => return Err("revised references are not written natively".into()),
            };
            (7, k)
        }
        DatatypeClass::Enumeration { members, .. } => {
            if members.len() > 0xffff {
                return Err("too many enumeration members".into());
            }
            (8, members.len() as u32)
        }
        DatatypeClass::VariableLength {
            kind,
            padding,
            charset,
            ..
        } => {
            let k = match kind {
                VlenKind::Sequence => 0,
                VlenKind::String => 1,
                VlenKind::Reserved(v) => u32::from(*v & 0x0f),
            };
            (
                9,
                k | padding_bits(*padding) << 4 | charset_bits(*charset) << 8,
            )
        }
        DatatypeClass::Array { .. } => {
            if version < 2 {
                return Err("array datatype of version 1".into());
            }
            (10, 0)
        }
        DatatypeClass::Complex { .. } => {
            return Err("the complex class is not written natively".into())
        }
    };
    out.push(version << 4 | class);
    out.extend_from_slice(&bits.to_le_bytes()[..3]);
    out.extend_from_slice(&t.size.to_le_bytes());
    match &t.class {
        DatatypeClass::FixedPoint {
            bit_offset,
            precision,
            ..
        }
        | DatatypeClass::Bitfield {
            bit_offset,
            precision,
            ..
        } => {
            out.extend_from_slice(&bit_offset.to_le_bytes());
            out.extend_from_slice(&precision.to_le_bytes());
        }
        DatatypeClass::FloatingPoint {
            bit_offset,
            precision,
            exponent_location,
            exponent_size,
            mantissa_location,
            mantissa_size,
            exponent_bias,
            ..
        } => {
            out.extend_from_slice(&bit_offset.to_le_bytes());
            out.extend_from_slice(&precision.to_le_bytes());
            out.extend_from_slice(&[
                *exponent_location,
                *exponent_size,
                *mantissa_location,
                *mantissa_size,
            ]);
            out.extend_from_slice(&exponent_bias.to_le_bytes());
        }
        DatatypeClass::Time { precision, .. } => out.extend_from_slice(&precision.to_le_bytes()),
        DatatypeClass::String { .. } | DatatypeClass::Reference { .. } => {}
        DatatypeClass::Opaque { tag } => {
            let len = opaque_tag_len(tag);
            let start = out.len();
            out.extend_from_slice(tag.as_bytes());
            out.resize(start + len, 0);
        }
        DatatypeClass::Compound { members } => {
            for m in members {
                if version >= 3 {
                    cstring(&m.name, out);
                    let w = offset_width(t.size);
                    out.extend_from_slice(&m.offset.to_le_bytes()[..usize::from(w)]);
                } else {
                    cstring_padded8(&m.name, out);
                    let off = u32::try_from(m.offset)
                        .map_err(|_| "compound member offset too large".to_string())?;
                    out.extend_from_slice(&off.to_le_bytes());
                }
                if version == 1 {
                    // Dimensionality, reserved, permutation, reserved, 4 dims.
                    let (dims, base): (&[u32], &Datatype) = match &m.datatype.class {
                        DatatypeClass::Array { dims, base } if m.datatype.version == 1 => {
                            (dims, base)
                        }
                        _ => (&[], &m.datatype),
                    };
                    if dims.len() > 4 {
                        return Err("v1 compound member of rank above 4".into());
                    }
                    out.push(dims.len() as u8);
                    out.extend_from_slice(&[0; 3]);
                    out.extend_from_slice(&[0; 4]);
                    out.extend_from_slice(&[0; 4]);
                    for i in 0..4 {
                        out.extend_from_slice(&dims.get(i).copied().unwrap_or(0).to_le_bytes());
                    }
                    datatype_at(base, out, depth + 1)?;
                } else {
                    datatype_at(&m.datatype, out, depth + 1)?;
                }
            }
        }
        DatatypeClass::Enumeration { base, members } => {
            datatype_at(base, out, depth + 1)?;
            for m in members {
                if version >= 3 {
                    cstring(&m.name, out);
                } else {
                    cstring_padded8(&m.name, out);
                }
            }
            for m in members {
                if m.value.len() != base.size as usize {
                    return Err("enumeration value of the wrong size".into());
                }
                out.extend_from_slice(&m.value);
            }
        }
        DatatypeClass::VariableLength { base, .. } => datatype_at(base, out, depth + 1)?,
        DatatypeClass::Array { dims, base } => {
            if dims.len() > 32 {
                return Err("array rank above 32".into());
            }
            out.push(dims.len() as u8);
            if version < 3 {
                out.extend_from_slice(&[0; 3]);
            }
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            if version < 3 {
                for _ in dims {
                    out.extend_from_slice(&[0; 4]);
                }
            }
            datatype_at(base, out, depth + 1)?;
        }
        DatatypeClass::Complex { .. } => {}
    }
    Ok(())
}

fn offset_width(size: u32) -> u8 {
    if size == 0 {
        1
    } else {
        ((31 - size.leading_zeros()) / 8 + 1) as u8
    }
}

fn cstring(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn cstring_padded8(s: &str, out: &mut Vec<u8>) {
    let start = out.len();
    cstring(s, out);
    let len = out.len() - start;
    out.resize(start + len.div_ceil(8) * 8, 0);
}

/// Dataspace message version 2 (spec IV.A.2.b).
pub fn dataspace(s: &Dataspace, out: &mut Vec<u8>) -> Result<(), Unencodable> {
    let (kind, rank) = match s.kind {
        DataspaceKind::Scalar => (0u8, 0usize),
        DataspaceKind::Simple => (1, s.dims.len()),
        DataspaceKind::Null => (2, 0),
    };
    if rank > 32 || (kind == 1 && rank == 0) {
        return Err("dataspace rank out of range".into());
    }
    let max = s.max_dims.as_ref().filter(|_| kind == 1);
    if max.is_some_and(|m| m.len() != rank) {
        return Err("maximum dimensions differ in rank".into());
    }
    out.extend_from_slice(&[2, rank as u8, u8::from(max.is_some()), kind]);
    for d in s.dims.iter().take(rank) {
        out.extend_from_slice(&d.to_le_bytes());
    }
    if let Some(m) = max {
        for d in m {
            out.extend_from_slice(&d.to_le_bytes());
        }
    }
    Ok(())
}

/// Fill value message version 3 (spec IV.A.2.f). Compact datasets are
/// always allocated early; an undefined allocation time (0, damaged) is
/// libhdf5's default for the layout (H5D_ALLOC_TIME_DEFAULT), as the
/// libhdf5 backend gets it.
pub fn fill_value(f: &FillValue, size: u32, layout: &super::LayoutKind, out: &mut Vec<u8>) {
    let alloc = match (layout, f.space_allocation_time) {
        (super::LayoutKind::Compact, _) => 1,
        (_, a @ 1..=3) => a,
        _ => default_alloc(layout),
    };
    let write = f.fill_write_time.min(2);
    let value = f
        .value
        .as_ref()
        .filter(|v| !v.is_empty() && v.len() == size as usize);
    let mut flags = alloc | write << 2;
    if f.undefined && value.is_none() {
        flags |= 0x10;
    }
    if value.is_some() {
        flags |= 0x20;
    }
    out.extend_from_slice(&[3, flags]);
    if let Some(v) = value {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
}

/// The default fill value message libhdf5 writes (v3, fill written if
/// set; allocation early for compact, incremental for chunked, late for
/// contiguous data).
pub fn default_fill(layout: &super::LayoutKind, out: &mut Vec<u8>) {
    out.extend_from_slice(&[3, default_alloc(layout) | 2 << 2]);
}

/// libhdf5's default allocation time for a layout: early (1) for compact,
/// late (2) for contiguous, incremental (3) for chunked.
fn default_alloc(layout: &super::LayoutKind) -> u8 {
    match layout {
        super::LayoutKind::Compact => 1,
        super::LayoutKind::Contiguous => 2,
        super::LayoutKind::Chunked(_) => 3,
    }
}

/// Filter pipeline message version 2 (spec IV.A.2.l).
pub fn filters(p: &FilterPipeline, out: &mut Vec<u8>) -> Result<(), Unencodable> {
    if p.filters.len() > 32 {
        return Err("more than 32 filters".into());
    }
    out.extend_from_slice(&[2, p.filters.len() as u8]);
    for f in &p.filters {
        out.extend_from_slice(&f.id.to_le_bytes());
        let name = f.name.as_deref().filter(|_| f.id >= 256);
        if f.id >= 256 {
            let len = name.map_or(0, |n| n.len() + 1);
            out.extend_from_slice(&(len as u16).to_le_bytes());
        }
        out.extend_from_slice(&f.flags.to_le_bytes());
        if f.client_data.len() > 0xffff {
            return Err("too many filter parameters".into());
        }
        out.extend_from_slice(&(f.client_data.len() as u16).to_le_bytes());
        if let Some(n) = name {
            cstring(n, out);
        }
        for c in &f.client_data {
            out.extend_from_slice(&c.to_le_bytes());
        }
    }
    Ok(())
}

/// Layout message version 3 (spec IV.A.2.i).
pub enum Layout<'a> {
    Compact(&'a [u8]),
    Contiguous {
        address: u64,
        size: u64,
    },
    /// Chunk dimensions (elements), element size, B-tree address.
    Chunked {
        dims: &'a [u64],
        element_size: u32,
        btree: u64,
    },
}

pub fn layout(l: &Layout, out: &mut Vec<u8>) -> Result<(), Unencodable> {
    match l {
        Layout::Compact(data) => {
            let n = u16::try_from(data.len()).map_err(|_| "compact data above 64 KiB")?;
            out.extend_from_slice(&[3, 0]);
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(data);
        }
        Layout::Contiguous { address, size } => {
            out.extend_from_slice(&[3, 1]);
            out.extend_from_slice(&address.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
        }
        Layout::Chunked {
            dims,
            element_size,
            btree,
        } => {
            out.extend_from_slice(&[3, 2, (dims.len() + 1) as u8]);
            out.extend_from_slice(&btree.to_le_bytes());
            for d in dims.iter() {
                let d = u32::try_from(*d).map_err(|_| "chunk dimension above 2^32")?;
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&element_size.to_le_bytes());
        }
    }
    Ok(())
}

/// Attribute message version 3 (spec IV.A.2.m): `datatype` and `dataspace`
/// already encoded, `value` in file layout; `charset`: the name's.
pub fn attribute(
    name: &str,
    charset: CharacterSet,
    datatype: &[u8],
    dataspace: &[u8],
    value: &[u8],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(&[3, 0]);
    out.extend_from_slice(&((name.len() + 1) as u16).to_le_bytes());
    out.extend_from_slice(&(datatype.len() as u16).to_le_bytes());
    out.extend_from_slice(&(dataspace.len() as u16).to_le_bytes());
    out.push(charset_bits(charset) as u8);
    cstring(name, out);
    out.extend_from_slice(datatype);
    out.extend_from_slice(dataspace);
    out.extend_from_slice(value);
}

/// What a link points to.
pub enum LinkValue<'a> {
    Hard(u64),
    Soft(&'a str),
    External { file: &'a str, object: &'a str },
}

/// Link message version 1 (spec IV.A.2.g); `utf8`: the name's character
/// set.
pub fn link(name: &str, utf8: bool, value: &LinkValue, order: Option<u64>, out: &mut Vec<u8>) {
    let n = name.len();
    let width: u8 = if n <= 0xff {
        0
    } else if n <= 0xffff {
        1
    } else {
        2
    };
    let kind = match value {
        LinkValue::Hard(_) => 0u8,
        LinkValue::Soft(_) => 1,
        LinkValue::External { .. } => 64,
    };
    let flags =
        width | u8::from(order.is_some()) << 2 | u8::from(kind != 0) << 3 | u8::from(utf8) << 4;
    out.extend_from_slice(&[1, flags]);
    if kind != 0 {
        out.push(kind);
    }
    if let Some(o) = order {
        out.extend_from_slice(&o.to_le_bytes());
    }
    if utf8 {
        out.push(1);
    }
    match width {
        0 => out.push(n as u8),
        1 => out.extend_from_slice(&(n as u16).to_le_bytes()),
        _ => out.extend_from_slice(&(n as u32).to_le_bytes()),
    }
    out.extend_from_slice(name.as_bytes());
    match value {
        LinkValue::Hard(a) => out.extend_from_slice(&a.to_le_bytes()),
        LinkValue::Soft(t) => {
            out.extend_from_slice(&(t.len() as u16).to_le_bytes());
            out.extend_from_slice(t.as_bytes());
        }
        LinkValue::External { file, object } => {
            let len = 1 + file.len() + 1 + object.len() + 1;
            out.extend_from_slice(&(len as u16).to_le_bytes());
            out.push(0);
            cstring(file, out);
            cstring(object, out);
        }
    }
}

/// The link info (spec IV.A.2.c) and attribute info (IV.A.2.v) messages
/// share a layout: version 0, flags (order tracked, indexed), the maximum
/// creation index where tracked (`max`: 8 or 2 bytes), then the addresses
/// of dense storage, undefined here (compact storage).
fn info_message(tracked: bool, indexed: bool, max: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, u8::from(tracked) | u8::from(tracked && indexed) << 1]);
    if tracked {
        out.extend_from_slice(max);
    }
    let addresses = if tracked && indexed { 3 } else { 2 };
    for _ in 0..addresses {
        out.extend_from_slice(&UNDEFINED.to_le_bytes());
    }
}

/// Link info message: compact storage (no fractal heap).
pub fn link_info(tracked: bool, indexed: bool, max_order: u64, out: &mut Vec<u8>) {
    info_message(tracked, indexed, &max_order.to_le_bytes(), out);
}

/// Group info message with libhdf5's defaults (spec IV.A.2.k).
pub fn group_info(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 0]);
}

/// Attribute info message: compact storage.
pub fn attribute_info(tracked: bool, indexed: bool, max_order: u16, out: &mut Vec<u8>) {
    info_message(tracked, indexed, &max_order.to_le_bytes(), out);
}

/// Messages of an object header are built as records, one after the
/// other in one buffer: type, flags, body size (u16), body.
pub fn begin(kind: u8, flags: u8, out: &mut Vec<u8>) -> usize {
    out.extend_from_slice(&[kind, flags, 0, 0]);
    out.len()
}

/// Ends the record whose body started at `start` (from [`begin`]).
pub fn end(start: usize, out: &mut [u8]) -> Result<(), Unencodable> {
    let len = out.len() - start;
    let n = u16::try_from(len).map_err(|_| format!("message of {len} bytes (above 64 KiB)"))?;
    out[start - 2..start].copy_from_slice(&n.to_le_bytes());
    Ok(())
}

/// One record: (type, flags, body).
pub fn record(kind: u8, flags: u8, body: &[u8], out: &mut Vec<u8>) -> Result<(), Unencodable> {
    let s = begin(kind, flags, out);
    out.extend_from_slice(body);
    end(s, out)
}

/// The records of `records`: (type, flags, body).
fn records(mut records: &[u8]) -> impl Iterator<Item = (u8, u8, &[u8])> {
    std::iter::from_fn(move || {
        let (&[kind, flags, a, b], rest) = records.split_first_chunk::<4>()?;
        let n = usize::from(u16::from_le_bytes([a, b]));
        let body = rest.get(..n)?;
        records = &rest[n..];
        Some((kind, flags, body))
    })
}

/// Object header prefix options.
#[derive(Clone, Copy, Default)]
pub struct HeaderFlags {
    /// Attribute creation order tracked / indexed (flags bits 2, 3): every
    /// message then carries a 2-byte creation order.
    pub attr_tracked: bool,
    pub attr_indexed: bool,
    /// Non-default attribute phase change values (max compact, min dense).
    pub phase_change: Option<(u16, u16)>,
    /// Times stored (flags bit 5): access, modification, change, birth.
    pub times: Option<[u32; 4]>,
}

/// Size of a version-2 object header holding `records` (one chunk).
pub fn object_header_size(records: &[u8], flags: HeaderFlags) -> u64 {
    let chunk = chunk_size(records, flags);
    let phase = if flags.phase_change.is_some() { 4 } else { 0 };
    let times = if flags.times.is_some() { 16 } else { 0 };
    4 + 1 + 1 + times + phase + u64::from(size_width(chunk)) + chunk + 4
}

fn chunk_size(recs: &[u8], flags: HeaderFlags) -> u64 {
    // Each record's 4 bytes become the message header (6 with order).
    let extra = if flags.attr_tracked {
        2 * records(recs).count() as u64
    } else {
        0
    };
    recs.len() as u64 + extra
}

fn size_width(chunk: u64) -> u8 {
    if chunk <= 0xff {
        1
    } else if chunk <= 0xffff {
        2
    } else if chunk <= 0xffff_ffff {
        4
    } else {
        8
    }
}

/// A version-2 object header (spec IV.A.1.b) holding `recs` in one chunk,
/// with its checksum.
pub fn object_header(recs: &[u8], flags: HeaderFlags, out: &mut Vec<u8>) {
    let start = out.len();
    let chunk = chunk_size(recs, flags);
    let width = size_width(chunk);
    let width_bits: u8 = match width {
        1 => 0,
        2 => 1,
        4 => 2,
        _ => 3,
    };
    let hflags = width_bits
        | u8::from(flags.attr_tracked) << 2
        | u8::from(flags.attr_tracked && flags.attr_indexed) << 3
        | u8::from(flags.phase_change.is_some()) << 4
        | u8::from(flags.times.is_some()) << 5;
    out.extend_from_slice(b"OHDR");
    out.extend_from_slice(&[2, hflags]);
    for t in flags.times.iter().flatten() {
        out.extend_from_slice(&t.to_le_bytes());
    }
    if let Some((max_compact, min_dense)) = flags.phase_change {
        out.extend_from_slice(&max_compact.to_le_bytes());
        out.extend_from_slice(&min_dense.to_le_bytes());
    }
    out.extend_from_slice(&chunk.to_le_bytes()[..usize::from(width)]);
    // Creation order of attribute messages: their rank among them.
    let mut order = 0u16;
    for (kind, mflags, body) in records(recs) {
        out.push(kind);
        out.extend_from_slice(&(body.len() as u16).to_le_bytes());
        out.push(mflags);
        if flags.attr_tracked {
            let o = if kind == MSG_ATTRIBUTE { order } else { 0 };
            out.extend_from_slice(&o.to_le_bytes());
            if kind == MSG_ATTRIBUTE {
                order = order.wrapping_add(1);
            }
        }
        out.extend_from_slice(body);
    }
    let sum = hashlittle(&out[start..], 0);
    out.extend_from_slice(&sum.to_le_bytes());
}

/// Superblock version 2 (spec II.A), 48 bytes.
pub fn superblock(base: u64, eof: u64, root: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(48);
    b.extend_from_slice(b"\x89HDF\r\n\x1a\n");
    b.extend_from_slice(&[2, 8, 8, 0]);
    b.extend_from_slice(&base.to_le_bytes());
    b.extend_from_slice(&UNDEFINED.to_le_bytes());
    b.extend_from_slice(&eof.to_le_bytes());
    b.extend_from_slice(&root.to_le_bytes());
    let sum = hashlittle(&b, 0);
    b.extend_from_slice(&sum.to_le_bytes());
    b
}

/// Smallest global heap collection libhdf5 writes (and reads at once).
pub const HEAP_MIN: usize = 4096;

/// A global heap collection (spec III.E) holding `objects` (indices 1..),
/// padded to [`HEAP_MIN`] with a free-space object (a tail under 16 bytes,
/// too small for one, is free space to libhdf5 as it is).
pub fn heap_collection(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"GCOL");
    b.extend_from_slice(&[1, 0, 0, 0]);
    b.extend_from_slice(&0u64.to_le_bytes()); // size, set below
    for (i, o) in objects.iter().enumerate() {
        b.extend_from_slice(&((i + 1) as u16).to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes()); // reference count
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&(o.len() as u64).to_le_bytes());
        b.extend_from_slice(o);
        b.resize(b.len().div_ceil(8) * 8, 0);
    }
    if b.len() + 16 <= HEAP_MIN {
        let free = (HEAP_MIN - b.len()) as u64;
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&free.to_le_bytes());
        b.resize(HEAP_MIN, 0);
    }
    // Spec III.E: a collection is at least 4096 bytes.
    b.resize(b.len().max(HEAP_MIN), 0);
    let size = b.len() as u64;
    b[8..16].copy_from_slice(&size.to_le_bytes());
    b
}

/// Bytes of a global heap object (header + data padded to 8).
pub fn heap_object_size(len: usize) -> usize {
    16 + len.div_ceil(8) * 8
}

/// Entries per v1 B-tree node of chunks (2K, K = 32: the default a v2
/// superblock implies).
pub const CHUNK_NODE_ENTRIES: usize = 64;

/// One key of a chunk B-tree (spec III.A.1, node type 1).
#[derive(Clone, Debug)]
pub struct ChunkKey {
    pub size: u32,
    pub filter_mask: u32,
    /// Element offsets, rank + 1 entries (the last 0).
    pub offsets: Vec<u64>,
}

/// Bytes of a chunk B-tree node for rank `rank` (fixed: libhdf5 reads the
/// whole node whatever its entries).
pub fn chunk_node_size(rank: usize) -> usize {
    let key = 8 + 8 * (rank + 1);
    24 + CHUNK_NODE_ENTRIES * 8 + (CHUNK_NODE_ENTRIES + 1) * key
}

/// A chunk B-tree node: `keys` has one more entry than `children`.
pub fn chunk_node(
    level: u8,
    left: u64,
    right: u64,
    keys: &[ChunkKey],
    children: &[u64],
    rank: usize,
) -> Vec<u8> {
    let mut b = Vec::with_capacity(chunk_node_size(rank));
    b.extend_from_slice(b"TREE");
    b.extend_from_slice(&[1, level]);
    b.extend_from_slice(&(children.len() as u16).to_le_bytes());
    b.extend_from_slice(&left.to_le_bytes());
    b.extend_from_slice(&right.to_le_bytes());
    for (i, k) in keys.iter().enumerate() {
        b.extend_from_slice(&k.size.to_le_bytes());
        b.extend_from_slice(&k.filter_mask.to_le_bytes());
        for o in &k.offsets {
            b.extend_from_slice(&o.to_le_bytes());
        }
        if let Some(c) = children.get(i) {
            b.extend_from_slice(&c.to_le_bytes());
        }
    }
    b.resize(chunk_node_size(rank), 0);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::message::datatype;
    use crate::format::Sizes;

    fn sizes() -> Sizes {
        Sizes::DEFAULT
    }

    /// Every datatype in the fixtures parses back to itself (versions above
    /// 3 are written as 3).
    #[test]
    fn datatypes_round_trip_over_the_fixtures() {
        let mut seen = 0;
        for f in crate::write::native::tests::fixture_inventories() {
            for t in crate::write::native::tests::datatypes_of(&f) {
                let mut b = Vec::new();
                if datatype(&t, &mut b).is_err() {
                    continue;
                }
                let back = datatype::parse(&b, 0, sizes()).expect("parses");
                assert_eq!(back, crate::write::native::tests::clamp_versions(&t));
                seen += 1;
            }
        }
        assert!(seen > 100, "only {seen} datatypes checked");
    }

    /// The link name's character set is the one asked for, whatever its
    /// bytes (spec IV.A.2.g: flags bit 4, then the charset byte).
    #[test]
    fn link_names_take_the_character_set_given() {
        for (name, utf8) in [
            ("plain", false),
            ("plain", true),
            ("données", false),
            ("λ", true),
        ] {
            let mut b = Vec::new();
            link(name, utf8, &LinkValue::Soft("/x"), None, &mut b);
            let l = crate::format::message::link::parse(&b, 0, sizes()).expect("parses");
            assert_eq!((l.name.as_str(), l.charset), (name, u8::from(utf8)));
        }
    }

    /// A superblock after a user block: base address and end of file
    /// count from the start of the file, as libhdf5 writes them.
    #[test]
    fn superblock_after_a_user_block() {
        let b = superblock(512, 4096, 48);
        let sb = crate::format::superblock::parse(&b, 512).expect("parses");
        assert_eq!((sb.base_address, sb.eof_address), (512, 4096));
    }

    #[test]
    fn opaque_tags_up_to_libhdf5s_longest_round_trip() {
        for n in [0, 7, 8, 247, 248] {
            let t = Datatype {
                version: 1,
                size: 4,
                class: DatatypeClass::Opaque { tag: "t".repeat(n) },
            };
            let mut b = Vec::new();
            datatype(&t, &mut b).expect("encodes");
            assert_eq!(
                datatype::parse(&b, 0, sizes()).expect("parses"),
                t,
                "tag of {n}"
            );
        }
    }

    #[test]
    fn header_times_are_in_the_prefix() {
        let flags = HeaderFlags {
            times: Some([1, 2, 3, 4]),
            ..HeaderFlags::default()
        };
        let mut h = Vec::new();
        object_header(&[], flags, &mut h);
        assert_eq!(h.len() as u64, object_header_size(&[], flags));
        assert_eq!(h[5] & 0x20, 0x20);
        assert_eq!(&h[6..10], &1u32.to_le_bytes());
        assert_eq!(&h[18..22], &4u32.to_le_bytes());
    }

    #[test]
    fn dataspace_round_trips() {
        use crate::format::message::dataspace as ds;
        for s in [
            Dataspace {
                version: 2,
                kind: DataspaceKind::Simple,
                dims: vec![3, 4],
                max_dims: Some(vec![u64::MAX, 4]),
            },
            Dataspace {
                version: 2,
                kind: DataspaceKind::Scalar,
                dims: vec![],
                max_dims: None,
            },
            Dataspace {
                version: 2,
                kind: DataspaceKind::Null,
                dims: vec![],
                max_dims: None,
            },
        ] {
            let mut b = Vec::new();
            dataspace(&s, &mut b).unwrap();
            assert_eq!(ds::parse(&b, 0, sizes()).unwrap(), s);
        }
    }

    #[test]
    fn heap_collections_are_at_least_4_kib_and_sized() {
        let c = heap_collection(&[b"abc".to_vec(), vec![7; 5000]]);
        assert_eq!(&c[..4], b"GCOL");
        assert_eq!(
            u64::from_le_bytes(c[8..16].try_into().unwrap()),
            c.len() as u64
        );
        assert_eq!(c.len(), 16 + heap_object_size(3) + heap_object_size(5000));
        assert_eq!(heap_collection(&[b"x".to_vec()]).len(), HEAP_MIN);
        // Objects filling 4088 bytes: no room for a free-space object.
        assert_eq!(heap_collection(&[vec![1; 4088 - 32]]).len(), HEAP_MIN);
    }
}

//! Which inputs the native writer takes: decided before anything of an
//! input is written, conservatively, from its inventory. Everything else
//! goes to the libhdf5 backend (`Writer::accept`).

use super::encode;
use crate::format::message::data_layout::LayoutClass;
use crate::format::message::dataspace::Dataspace;
use crate::format::message::datatype::{Datatype, DatatypeClass, MAX_DEPTH};
use crate::inventory::{Inventory, LinkKind, Object, ObjectKind, Status, Verdict};

/// Largest attribute value written natively (its message must stay under
/// the 64 KiB of a message's size field, with name, type and space).
const MAX_ATTRIBUTE_VALUE: u64 = 48 << 10;
/// Largest message body: its size field is 2 bytes (spec IV.A.1.b).
const MAX_MESSAGE: u64 = 0xffff;
/// Longest link name (or soft/external target) written natively.
const MAX_LINK_TEXT: usize = 32 << 10;

/// `Ok` when every object of `inv` can be written by the native writer
/// exactly as the libhdf5 backend would; otherwise why not (for the report
/// and tests).
pub fn supports(inv: &Inventory) -> Result<(), String> {
    supports_file(inv)?;
    inv.objects.iter().try_for_each(supports_object)
}

/// The checks of [`supports`] on the file as a whole (superblock, verdict,
/// links); the objects are [`supports_object`]'s. A salvage streamed from
/// the walk checks each object as it comes and the file at the end.
pub fn supports_file(inv: &Inventory) -> Result<(), String> {
    let Some(sb) = &inv.superblock else {
        return Err("no superblock".into());
    };
    // Variable-length slots hold addresses of the input's width.
    if sb.size_of_offsets != 8 || sb.size_of_lengths != 8 {
        return Err("offsets or lengths other than 8 bytes".into());
    }
    if inv.verdict() != Verdict::Healthy || !inv.problems.is_empty() {
        return Err(format!("input is {}", inv.verdict().as_str()));
    }
    if inv
        .chunk_search
        .as_ref()
        .is_some_and(|c| !c.placed.is_empty() || !c.stray.is_empty())
    {
        return Err("chunks placed by allocation order".into());
    }
    if let Some(l) = inv
        .links
        .iter()
        .find(|l| !matches!(l.kind, LinkKind::Soft | LinkKind::External))
    {
        return Err(format!("{}: {} link", l.path, l.kind));
    }
    // A link is one message in a compact group: name and value under
    // 64 KiB (dense storage would be needed above).
    let long = |p: &str| p.rsplit('/').next().map_or(0, str::len) > MAX_LINK_TEXT;
    if let Some(l) = inv.links.iter().find(|l| {
        long(&l.path)
            || l.target.len() > MAX_LINK_TEXT
            || l.file.as_ref().is_some_and(|f| f.len() > MAX_LINK_TEXT)
    }) {
        return Err(format!("{}: link name or target too long", l.path));
    }
    Ok(())
}

/// The checks of [`supports`] on one object.
pub fn supports_object(o: &Object) -> Result<(), String> {
    if o.path.rsplit('/').next().map_or(0, str::len) > MAX_LINK_TEXT {
        return Err(format!("{}: link name too long", o.path));
    }
    let at = |why: &str| format!("{}: {why}", o.path);
    if o.status != Status::Intact || !o.problems.is_empty() {
        return Err(at("not intact"));
    }
    if o.hard_link_of.is_some() {
        return Err(at("second hard link"));
    }
    if o.committed_type.is_some() {
        return Err(at("committed datatype"));
    }
    for a in &o.attributes {
        let (Some(t), Some(s)) = (&a.message.datatype, &a.message.dataspace) else {
            return Err(at("attribute without type or space"));
        };
        if a.committed_type.is_some() || !a.problems.is_empty() {
            return Err(at("attribute with a committed type or a problem"));
        }
        type_supported(t, 0).map_err(|e| at(&format!("attribute {:?}: {e}", a.name)))?;
        let bytes = s
            .element_count()
            .and_then(|n| n.checked_mul(u64::from(t.size)));
        if bytes.is_none_or(|b| b > MAX_ATTRIBUTE_VALUE)
            || attribute_message_size(&a.name, t, s, bytes.unwrap_or(0)) > MAX_MESSAGE
        {
            return Err(at(&format!("attribute {:?} too large", a.name)));
        }
    }
    match o.kind {
        ObjectKind::Group => {}
        ObjectKind::Dataset => {
            let Some(ds) = &o.dataset else {
                return Err(at("dataset without description"));
            };
            type_supported(&ds.datatype, 0).map_err(|e| at(&e))?;
            if ds.external_files {
                return Err(at("external storage"));
            }
            let vlen = ds.datatype.is_variable_length();
            match &ds.layout.class {
                LayoutClass::Compact { .. } | LayoutClass::Contiguous { .. } => {}
                LayoutClass::Chunked { dims, .. } => {
                    if vlen {
                        return Err(at("chunked variable-length data"));
                    }
                    if dims.is_empty()
                        || dims.len() != ds.dataspace.dims.len()
                        || dims.iter().any(|d| *d == 0 || *d > u64::from(u32::MAX))
                    {
                        return Err(at("chunk dimensions"));
                    }
                }
                LayoutClass::Virtual { .. } => return Err(at("virtual dataset")),
            }
            if let Some(f) = &ds.fill_value {
                match &f.value {
                    Some(v) if !v.is_empty() && vlen => {
                        return Err(at("variable-length fill value"))
                    }
                    Some(v) if !v.is_empty() && v.len() != ds.datatype.size as usize => {
                        return Err(at("fill value of another size"))
                    }
                    _ => {}
                }
            }
            if let Some(p) = &ds.filters {
                if p.filters.len() > 32 {
                    return Err(at("filters"));
                }
                // The parser's own rule (a damaged input never gets here:
                // its faults make the object partial).
                if !p.faults(0).is_empty() {
                    return Err(at("deflate parameters"));
                }
            }
        }
        _ => return Err(at("committed datatype or unknown object")),
    }
    Ok(())
}

/// Bytes of the attribute message (version 3, spec IV.A.2.m) the native
/// writer makes of `name`, `t`, `s` and a value of `value` bytes; above
/// [`MAX_MESSAGE`] when `t` or `s` cannot be encoded.
fn attribute_message_size(name: &str, t: &Datatype, s: &Dataspace, value: u64) -> u64 {
    let (mut dt, mut ds) = (Vec::new(), Vec::new());
    if encode::datatype(t, &mut dt).is_err() || encode::dataspace(s, &mut ds).is_err() {
        return MAX_MESSAGE + 1;
    }
    // version, flags, three sizes, charset; the name with its NUL.
    (8 + name.len() + 1 + dt.len() + ds.len()) as u64 + value
}

/// Datatypes the native writer encodes and fills: no references, no
/// complex class, variable-length parts only one level deep.
fn type_supported(t: &Datatype, depth: u32) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("datatype nested too deeply".into());
    }
    if t.size == 0 {
        return Err("datatype of size 0".into());
    }
    match &t.class {
        DatatypeClass::Reference { .. } => Err("references".into()),
        DatatypeClass::Complex { .. } => Err("complex class".into()),
        DatatypeClass::VariableLength { base, .. } => {
            if base.is_variable_length() || base.contains_reference() {
                return Err("nested variable-length data".into());
            }
            if t.size != 16 {
                return Err("variable-length slot not 16 bytes".into());
            }
            type_supported(base, depth + 1)
        }
        DatatypeClass::Compound { members } => members
            .iter()
            .try_for_each(|m| type_supported(&m.datatype, depth + 1)),
        DatatypeClass::Array { base, .. } | DatatypeClass::Enumeration { base, .. } => {
            type_supported(base, depth + 1)
        }
        _ => Ok(()),
    }
}

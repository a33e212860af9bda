//! Which inputs the native writer takes: decided before anything of an
//! input is written, conservatively, from its inventory. Everything else
//! goes to the libhdf5 backend (`Writer::accept`).

use super::encode;
use crate::format::message::data_layout::LayoutClass;
use crate::format::message::dataspace::Dataspace;
use crate::format::message::datatype::{Datatype, DatatypeClass, MAX_DEPTH};
use crate::format::UNDEFINED as UNLIMITED;
use crate::inventory::{Dataset, Inventory, LinkKind, Object, ObjectKind, ProblemKind, Status};

/// Largest attribute value written natively (its message must stay under
/// the 64 KiB of a message's size field, with name, type and space).
const MAX_ATTRIBUTE_VALUE: u64 = 48 << 10;
/// Largest message body: its size field is 2 bytes (spec IV.A.1.b).
const MAX_MESSAGE: u64 = 0xffff;
/// Longest link name (or soft/external target) written natively.
const MAX_LINK_TEXT: usize = 32 << 10;

/// `Ok` when everything salvage writes of `inv` can be written by the
/// native writer exactly as the libhdf5 backend would; otherwise why not
/// (for the report and tests).
///
/// A damaged input is judged object by object, on what salvage writes of
/// it (`salvage::salvage_into`): lost objects and attributes write nothing;
/// partial ones are written with the same calls as intact ones (holes stay
/// unwritten, [`super::NativeWriter::write_prefix`] for a cut contiguous
/// dataset), plus marks; stray chunks become a chunked dataset under
/// `/lost+found` ([`crate::salvage::stray_dataset`]).
pub fn supports(inv: &Inventory) -> Result<(), String> {
    supports_file(inv)?;
    let mut types = Built::default();
    if let Some(search) = &inv.chunk_search {
        for st in &search.stray {
            let path = crate::salvage::stray_path(st);
            if let Some(ds) = crate::salvage::stray_dataset(st) {
                dataset_supported(&ds, &mut types).map_err(|e| format!("{path}: {e}"))?;
            }
        }
    }
    inv.objects
        .iter()
        .try_for_each(|o| supports_object(o, &mut types))
}

/// The checks of [`supports`] on the file as a whole (superblock, links);
/// the objects are [`supports_object`]'s. A salvage streamed from the walk
/// checks each object as it comes and the file at the end.
pub fn supports_file(inv: &Inventory) -> Result<(), String> {
    let Some(sb) = &inv.superblock else {
        return Err("no superblock".into());
    };
    // Variable-length slots hold addresses of the input's width.
    if sb.size_of_offsets != 8 || sb.size_of_lengths != 8 {
        return Err("offsets or lengths other than 8 bytes".into());
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
    // An external link's value (spec IV.A.2.g: flags, file, object, each
    // NUL-terminated) has a 2-byte length: file and object together.
    let long = |p: &str| p.rsplit('/').next().map_or(0, str::len) > MAX_LINK_TEXT;
    if let Some(l) = inv.links.iter().find(|l| {
        long(&l.path) || l.target.len() + l.file.as_ref().map_or(0, String::len) > MAX_LINK_TEXT
    }) {
        return Err(format!("{}: link name or target too long", l.path));
    }
    Ok(())
}

/// The checks of [`supports`] on one object; `types` remembers the
/// datatypes already asked about.
pub fn supports_object(o: &Object, types: &mut Built) -> Result<(), String> {
    if o.path.rsplit('/').next().map_or(0, str::len) > MAX_LINK_TEXT {
        return Err(format!("{}: link name too long", o.path));
    }
    object_supported(o, types).map_err(|e| format!("{}: {e}", o.path))
}

/// What salvage writes of one object: nothing of a lost one; a group, or
/// a dataset whose description is trusted, with its readable attributes.
fn object_supported(o: &Object, types: &mut Built) -> Result<(), String> {
    if o.status == Status::Lost || o.kind == ObjectKind::Unknown {
        return Ok(()); // nothing of it is written
    }
    if o.hard_link_of.is_some() {
        return Err("second hard link".into());
    }
    if o.committed_type.is_some() {
        return Err("committed datatype".into());
    }
    match o.kind {
        ObjectKind::Group => {}
        ObjectKind::Dataset => {
            let Some(ds) = &o.dataset else {
                return Ok(()); // lost: nothing written
            };
            // Lost before anything of it is written (`salvage_dataset`).
            let untrusted = o.header_checksum_failed()
                || o.problems
                    .iter()
                    .any(|p| p.kind == ProblemKind::Inconsistent);
            if untrusted {
                return Ok(());
            }
            dataset_supported(ds, types)?;
        }
        _ => return Err("committed datatype or unknown object".into()),
    }
    for a in &o.attributes {
        // Attributes with a problem, type or space missing are lost
        // (`salvage::write_attributes`): nothing written.
        let (Some(t), Some(s)) = (&a.message.datatype, &a.message.dataspace) else {
            continue;
        };
        if !a.problems.is_empty() {
            continue;
        }
        if a.committed_type.is_some() {
            return Err("attribute with a committed type".into());
        }
        type_supported(t, 0)
            .and_then(|()| types.check(t))
            .map_err(|e| format!("attribute {:?}: {e}", a.name))?;
        let bytes = s
            .element_count()
            .and_then(|n| n.checked_mul(u64::from(t.size)));
        if bytes.is_none_or(|b| b > MAX_ATTRIBUTE_VALUE)
            || attribute_message_size(&a.name, t, s, bytes.unwrap_or(0)) > MAX_MESSAGE
        {
            return Err(format!("attribute {:?} too large", a.name));
        }
        // A value shorter than its type and space fails in both writers,
        // with other words.
        if bytes.is_some_and(|b| (a.message.value.len() as u64) < b) {
            return Err(format!("attribute {:?}: value cut", a.name));
        }
    }
    Ok(())
}

/// A dataset the native writer creates exactly as libhdf5 does.
fn dataset_supported(ds: &Dataset, types: &mut Built) -> Result<(), String> {
    type_supported(&ds.datatype, 0)?;
    types.check(&ds.datatype)?;
    if ds.external_files {
        return Err("external storage".into());
    }
    let vlen = ds.datatype.is_variable_length();
    match &ds.layout.class {
        LayoutClass::Compact { .. } | LayoutClass::Contiguous { .. } => {
            // libhdf5 refuses an extendible dataset without chunks.
            if ds
                .dataspace
                .max_dims
                .as_ref()
                .is_some_and(|m| *m != ds.dataspace.dims)
            {
                return Err("extendible dataspace without chunks".into());
            }
        }
        LayoutClass::Chunked { dims, .. } => {
            if vlen {
                return Err("chunked variable-length data".into());
            }
            if dims.is_empty()
                || dims.len() != ds.dataspace.dims.len()
                || dims.iter().any(|d| *d == 0 || *d > u64::from(u32::MAX))
            {
                return Err("chunk dimensions".into());
            }
            // libhdf5 refuses chunks larger than a fixed-size dimension.
            let max = ds.dataspace.max_dims.as_ref().unwrap_or(&ds.dataspace.dims);
            if dims.iter().zip(max).any(|(c, m)| *m != UNLIMITED && c > m) {
                return Err("chunk larger than a fixed-size dimension".into());
            }
        }
        LayoutClass::Virtual { .. } => return Err("virtual dataset".into()),
    }
    if let Some(f) = &ds.fill_value {
        match &f.value {
            Some(v) if !v.is_empty() && vlen => return Err("variable-length fill value".into()),
            Some(v) if !v.is_empty() && v.len() != ds.datatype.size as usize => {
                return Err("fill value of another size".into())
            }
            _ => {}
        }
    }
    // Chunks libhdf5 allocates and fills at creation are stored by the
    // native writer too (`super::early_fill`), within bounds.
    if let (Some(_), LayoutClass::Chunked { dims, .. }) = (super::early_fill(ds), &ds.layout.class)
    {
        let chunks = ds
            .dataspace
            .dims
            .iter()
            .zip(dims)
            .try_fold(1u64, |a, (n, c)| a.checked_mul(n.div_ceil(*c)));
        let bytes = chunks.and_then(|k| k.checked_mul(ds.chunk_bytes(dims)?));
        if chunks.is_none_or(|k| k > super::MAX_EARLY_CHUNKS)
            || bytes.is_none_or(|b| b > super::MAX_EARLY_FILL)
        {
            return Err("too many early-allocated fill chunks".into());
        }
    }
    if let Some(p) = &ds.filters {
        if p.filters.len() > 32 {
            return Err("filters".into());
        }
        // The parser's own rule: parameters libhdf5's deflate refuses are
        // rewritten (with a note) by the libhdf5 backend.
        if !p.faults(0).is_empty() {
            return Err("deflate parameters".into());
        }
    }
    Ok(())
}

/// The distinct datatypes libhdf5 builds (the libhdf5 backend's
/// `types::build`, the one judge of what it accepts: a damaged type it
/// refuses loses the object there, so the native writer must not take it).
/// The last [`BUILT_KEPT`] are remembered (most objects share a few types;
/// a list of every distinct type made the look-ups quadratic in their
/// number, which is the input's).
#[derive(Default)]
pub struct Built {
    ok: std::collections::VecDeque<Datatype>,
}

/// Datatypes [`Built`] remembers.
const BUILT_KEPT: usize = 32;

impl Built {
    fn check(&mut self, t: &Datatype) -> Result<(), String> {
        if self.ok.iter().any(|k| k == t) {
            return Ok(());
        }
        // A type the writers' shared check refuses is lost the same way by
        // both (`Writer::create_dataset`, `Writer::attribute`); a mandatory
        // filter libhdf5 lacks is recorded optional by both
        // (`write::filter_flags`). libhdf5 is asked about the rest.
        if crate::write::types::check_type(t, "datatype", 0).is_err() {
            return Ok(());
        }
        crate::write::types::build(t, "datatype", 0)
            .map_err(|e| format!("libhdf5 refuses it: {e}"))?;
        if self.ok.len() >= BUILT_KEPT {
            self.ok.pop_front();
        }
        self.ok.push_back(t.clone());
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An external link whose file and object names are each under the
    /// limit but not together (their value's length field is 2 bytes) goes
    /// to libhdf5, instead of failing the native output at its end.
    #[test]
    fn external_links_too_long_together_are_not_taken() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/worker_earliest.h5");
        let mut inv = crate::scan_path(&path).unwrap();
        assert!(supports(&inv).is_ok());
        inv.links.push(crate::inventory::LinkEntry {
            path: "/ext".into(),
            kind: LinkKind::External,
            target: "o".repeat(MAX_LINK_TEXT),
            file: Some("f".repeat(MAX_LINK_TEXT)),
        });
        assert!(supports(&inv).is_err_and(|e| e.contains("too long")));
    }

    /// However many distinct datatypes an input has, the ones remembered
    /// (each looked up at every check) stay at [`BUILT_KEPT`].
    #[test]
    fn built_types_remembered_are_capped() {
        let mut b = Built::default();
        for size in 1..=500u32 {
            let t = Datatype {
                version: 1,
                size,
                class: DatatypeClass::Opaque { tag: "t".into() },
            };
            b.check(&t).unwrap();
            assert!(b.ok.len() <= BUILT_KEPT, "{} remembered", b.ok.len());
        }
        // The most recent are still known.
        assert!(b.ok.iter().any(|t| t.size == 500));
    }
}

//! `salvage`: turns the inventory of a (damaged) file into a new, valid HDF5
//! file holding every group, dataset and attribute whose bytes are present
//! and verified, and nothing else.
//!
//! Rules: nothing is invented (a dataset with holes gets
//! `h5salvage_status = "partial"` and `h5salvage_missing`), the input is only
//! read, and the output appears atomically (the writer builds a temporary
//! file next to it and renames it when complete).

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use crate::format::Image;
use crate::inventory::{Dataset, Inventory, Object, ObjectKind, Status};
use crate::read::{self, DatasetData};
use crate::source::{CarveMode, Input};
use crate::write::{WriteError, Writer};

/// Version written into the provenance attributes.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What happened to one object.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Outcome {
    pub path: String,
    pub kind: &'static str,
    /// "recovered", "partial" or "lost".
    pub result: &'static str,
    /// Why it is partial or lost (empty when recovered).
    pub reasons: Vec<String>,
    /// What is worth knowing even when it is recovered (e.g. chunks copied
    /// through a filter that cannot be verified).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// `h5salvage_missing` was written on the object.
    #[serde(skip)]
    pub missing_marked: bool,
}

/// The account of one salvage run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SalvageReport {
    pub input: String,
    pub output: String,
    pub input_size: u64,
    pub verdict: String,
    pub objects: Vec<Outcome>,
    pub recovered: u64,
    pub partial: u64,
    pub lost: u64,
    /// Attributes that could not be written.
    pub attributes_lost: u64,
    /// What carving found, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carving: Option<crate::inventory::CarveSummary>,
    /// Notes on things not recreated (soft links, second hard links, ...).
    pub notes: Vec<String>,
}

/// Why a salvage could not produce an output at all.
#[derive(Debug)]
pub enum SalvageError {
    /// The input could not be read.
    Input(std::io::Error),
    /// OUTPUT exists and `--force` was not given.
    OutputExists,
    /// Nothing readable in the input: no output is written.
    NothingRecoverable(String),
    /// The writer failed (disk full, permission, libhdf5 error).
    Write(WriteError),
}

impl std::fmt::Display for SalvageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SalvageError::Input(e) => write!(f, "cannot read input: {e}"),
            SalvageError::OutputExists => {
                write!(f, "output exists (use --force to replace it)")
            }
            SalvageError::NothingRecoverable(v) => write!(f, "nothing recoverable ({v})"),
            SalvageError::Write(e) => write!(f, "cannot write output: {e}"),
        }
    }
}

impl std::error::Error for SalvageError {}

impl From<WriteError> for SalvageError {
    fn from(e: WriteError) -> Self {
        SalvageError::Write(e)
    }
}

/// Salvages `input` into `output`, carving when the walk finds damage.
pub fn salvage(input: &Path, output: &Path, force: bool) -> Result<SalvageReport, SalvageError> {
    salvage_with(input, output, force, CarveMode::Auto)
}

/// Salvages `input` into `output` with an explicit carving mode.
pub fn salvage_with(
    input: &Path,
    output: &Path,
    force: bool,
    mode: CarveMode,
) -> Result<SalvageReport, SalvageError> {
    if output.exists() && !force {
        return Err(SalvageError::OutputExists);
    }
    let src = Input::open(input).map_err(SalvageError::Input)?;
    let bytes = src.bytes();
    let inv = crate::source::inventory(&input.display().to_string(), bytes, mode);
    let readable = inv.objects.iter().any(|o| o.status != Status::Lost);
    if !readable {
        return Err(SalvageError::NothingRecoverable(
            inv.verdict().as_str().into(),
        ));
    }
    let image = image_of(&inv, bytes);
    let mut report = SalvageReport {
        input: input.display().to_string(),
        output: output.display().to_string(),
        input_size: inv.size,
        verdict: inv.verdict().as_str().into(),
        carving: inv.carving.clone(),
        ..SalvageReport::default()
    };
    report.notes = crate::write::remove_stale_temps(output);
    let mut w = Writer::create(output)?;
    w.group("/")?;
    w.mark("/", "h5salvage_source", &input.display().to_string())?;
    w.mark("/", "h5salvage_source_size", &inv.size.to_string())?;
    w.mark("/", "h5salvage_version", VERSION)?;
    salvage_into(
        &mut w,
        &inv,
        &image,
        &|p: &str| Some(p.to_string()),
        &mut report,
    )?;
    w.finish(force)?;
    Ok(report)
}

/// Salvages the objects of one inventory into a shared writer: `select`
/// maps a source path to its path in the output (`None`: not copied).
/// Outcomes carry output paths and are appended to `report`, whose counts
/// are incremented.
///
/// Used by [`salvage_with`] (every path, unchanged) and by `merge` (the
/// chosen top-level groups of each input).
pub fn salvage_into(
    w: &mut Writer,
    inv: &Inventory,
    image: &Image,
    select: &dyn Fn(&str) -> Option<String>,
    report: &mut SalvageReport,
) -> Result<(), SalvageError> {
    let chosen: Vec<(&Object, String)> = inv
        .objects
        .iter()
        .filter(|o| o.hard_link_of.is_none())
        .filter_map(|o| select(&o.path).map(|d| (o, d)))
        .collect();
    w.set_reference_map(reference_map(&chosen));
    // Datasets holding object references go last: their targets must exist.
    type Chosen<'a, 'b> = Vec<&'b (&'a Object, String)>;
    let (with_refs, plain): (Chosen, Chosen) = chosen.iter().partition(|(o, _)| {
        o.dataset
            .as_ref()
            .is_some_and(|d| d.datatype.contains_reference())
    });
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(chosen.len());
    let mut bar = crate::progress::Bar::new(chosen.len() as u64, "writing objects");
    for (o, dest) in plain.into_iter().chain(with_refs) {
        bar.inc();
        let outcome = salvage_object(image, o, dest, w, report)?;
        match outcome.result {
            "recovered" => report.recovered += 1,
            "partial" => report.partial += 1,
            _ => report.lost += 1,
        }
        outcomes.push(outcome);
    }
    // Attributes holding references, now that every target exists.
    let index: HashMap<String, usize> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| (o.path.clone(), i))
        .collect();
    for (o, dest) in &chosen {
        let has_refs = o.attributes.iter().any(|a| {
            a.message
                .datatype
                .as_ref()
                .is_some_and(|t| t.contains_reference())
        });
        if !has_refs {
            continue;
        }
        let Some(&i) = index.get(dest.as_str()) else {
            continue;
        };
        if outcomes[i].result == "lost" {
            continue;
        }
        let mut out = outcomes[i].clone();
        let before = out.result;
        write_attributes(image, o, dest, w, report, &mut out, true);
        note_degraded(w, dest, &mut out)?;
        if !out.reasons.is_empty() && out.result == "recovered" {
            out.result = "partial";
        }
        if before == "recovered" && out.result == "partial" {
            report.recovered = report.recovered.saturating_sub(1);
            report.partial += 1;
            mark_partial(w, dest, &mut out)?;
        }
        outcomes[i] = out;
    }
    relink(inv, select, &outcomes, w, report);
    report.objects.extend(outcomes);
    Ok(())
}

/// Second hard links, soft and external links, once every object exists.
/// Link paths (and absolute soft link targets that were copied) go through
/// `select`; links outside the selection are not recreated.
fn relink(
    inv: &Inventory,
    select: &dyn Fn(&str) -> Option<String>,
    outcomes: &[Outcome],
    w: &mut Writer,
    report: &mut SalvageReport,
) {
    let written: std::collections::HashSet<&str> = outcomes
        .iter()
        .filter(|o| o.result != "lost")
        .map(|o| o.path.as_str())
        .collect();
    for o in &inv.objects {
        let Some(first) = &o.hard_link_of else {
            continue;
        };
        let Some(path) = select(&o.path) else {
            continue;
        };
        let target = select(first);
        let Some(target) = target.filter(|t| written.contains(t.as_str())) else {
            report
                .notes
                .push(format!("{path}: hard link to {first}, which was lost"));
            continue;
        };
        if let Err(e) = w.hard_link(&path, &target) {
            report
                .notes
                .push(format!("{path}: hard link not recreated: {e}"));
        }
    }
    for l in &inv.links {
        let Some(path) = select(&l.path) else {
            continue;
        };
        let done = match (l.kind, &l.file) {
            ("soft", _) => {
                let target = if l.target.starts_with('/') {
                    select(&l.target).unwrap_or_else(|| l.target.clone())
                } else {
                    l.target.clone()
                };
                w.soft_link(&path, &target)
            }
            ("external", Some(file)) => w.external_link(&path, file, &l.target),
            _ => {
                report
                    .notes
                    .push(format!("{path}: {} link not recreated", l.kind));
                continue;
            }
        };
        if let Err(e) = done {
            report
                .notes
                .push(format!("{path}: link not recreated: {e}"));
        }
    }
}

/// The byte image an inventory's addresses refer to.
pub fn image_of<'a>(inv: &Inventory, bytes: &'a [u8]) -> Image<'a> {
    let sb = inv.superblock.as_ref();
    let sizes = sb
        .and_then(|s| crate::format::Sizes::new(s.size_of_offsets, s.size_of_lengths).ok())
        .unwrap_or(crate::format::Sizes::DEFAULT);
    crate::format::Image::new(bytes, sb.map_or(0, |s| s.base_address), sizes)
}

/// Source header address -> output path, for object references.
fn reference_map(chosen: &[(&Object, String)]) -> HashMap<u64, String> {
    chosen
        .iter()
        .filter(|(o, _)| o.status != Status::Lost)
        .map(|(o, dest)| (o.address, dest.clone()))
        .collect()
}

fn salvage_object(
    image: &Image,
    o: &Object,
    dest: &str,
    w: &mut Writer,
    report: &mut SalvageReport,
) -> Result<Outcome, SalvageError> {
    let mut out = Outcome {
        path: dest.to_string(),
        kind: o.kind.as_str(),
        result: "recovered",
        reasons: Vec::new(),
        notes: Vec::new(),
        missing_marked: false,
    };
    if o.status == Status::Lost {
        out.result = "lost";
        out.reasons = o.problems.iter().map(|p| p.to_string()).collect();
        return Ok(out);
    }
    match o.kind {
        ObjectKind::Group => {
            w.group(dest)?;
        }
        ObjectKind::Dataset => match &o.dataset {
            Some(ds) => {
                salvage_dataset(image, o, dest, ds, w, &mut out)?;
                if out.result == "lost" {
                    return Ok(out);
                }
            }
            None => {
                out.result = "lost";
                out.reasons = o.problems.iter().map(|p| p.to_string()).collect();
                return Ok(out);
            }
        },
        ObjectKind::Datatype => match &o.datatype {
            Some(t) => {
                if let Err(e) = w.commit_datatype(dest, t) {
                    out.result = "lost";
                    out.reasons.push(format!("cannot recreate: {e}"));
                    return Ok(out);
                }
            }
            None => {
                out.result = "lost";
                out.reasons.push("datatype message unreadable".into());
                return Ok(out);
            }
        },
        ObjectKind::Unknown => {
            out.result = "lost";
            out.reasons.extend(o.problems.iter().map(|p| p.to_string()));
            return Ok(out);
        }
    }
    // Group problems (an unreadable member list) make the group partial.
    if o.kind == ObjectKind::Group && o.status == Status::Partial {
        out.result = "partial";
        out.reasons = o.problems.iter().map(|p| p.to_string()).collect();
    }
    write_attributes(image, o, dest, w, report, &mut out, false);
    note_degraded(w, dest, &mut out)?;
    if !out.reasons.is_empty() && out.result == "recovered" {
        out.result = "partial";
    }
    if out.result == "partial" {
        mark_partial(w, dest, &mut out)?;
    }
    Ok(out)
}

/// Marks a partial object: `h5salvage_status`, and `h5salvage_missing`
/// with the reasons unless the dataset path already listed what is missing
/// (an unreadable attribute or member list is missing too).
fn mark_partial(w: &mut Writer, dest: &str, out: &mut Outcome) -> Result<(), SalvageError> {
    w.mark(dest, "h5salvage_status", "partial")?;
    if !out.missing_marked && !out.reasons.is_empty() {
        let shown: Vec<&str> = out.reasons.iter().take(50).map(String::as_str).collect();
        w.mark(dest, "h5salvage_missing", &shown.join("\n"))?;
        out.missing_marked = true;
    }
    Ok(())
}

/// Writes the object's attributes: those without references now
/// (`references == false`), those with references in a last pass, when every
/// target exists.
fn write_attributes(
    image: &Image,
    o: &Object,
    dest: &str,
    w: &mut Writer,
    report: &mut SalvageReport,
    out: &mut Outcome,
    references: bool,
) {
    for a in &o.attributes {
        let has_refs = a
            .message
            .datatype
            .as_ref()
            .is_some_and(|t| t.contains_reference());
        if has_refs != references {
            continue;
        }
        if !a.problems.is_empty() {
            report.attributes_lost += 1;
            out.reasons
                .push(format!("attribute {:?} lost: {}", a.name, a.problems[0]));
            continue;
        }
        let (Some(t), Some(s)) = (&a.message.datatype, &a.message.dataspace) else {
            report.attributes_lost += 1;
            continue;
        };
        let heap = match read::resolve_heap_values(image, t, &a.message.value) {
            Ok(v) => v,
            Err(p) => {
                report.attributes_lost += 1;
                out.reasons
                    .push(format!("attribute {:?} lost: {p}", a.name));
                continue;
            }
        };
        if let Err(e) = w.attribute(dest, &a.name, t, s, &a.message.value, &heap) {
            report.attributes_lost += 1;
            out.reasons
                .push(format!("attribute {:?} not written: {e}", a.name));
        }
    }
}

/// Values the writer had to degrade (references written as null because
/// their target or selection could not be recreated, missing vlen values
/// written empty) make the object partial and are named
/// in `h5salvage_degraded`: nothing may pass for data it is not.
fn note_degraded(w: &mut Writer, path: &str, out: &mut Outcome) -> Result<(), SalvageError> {
    let notes = w.take_notes();
    if notes.is_empty() {
        return Ok(());
    }
    w.mark(path, "h5salvage_degraded", &notes.join("\n"))?;
    out.reasons.extend(notes);
    if out.result == "recovered" {
        out.result = "partial";
    }
    Ok(())
}

fn salvage_dataset(
    image: &Image,
    o: &Object,
    dest: &str,
    ds: &Dataset,
    w: &mut Writer,
    out: &mut Outcome,
) -> Result<(), SalvageError> {
    // A v2 header that fails its checksum may describe the data wrongly
    // (shape, type, layout): nothing it says is written.
    if o.header_checksum_failed() {
        out.result = "lost";
        out.reasons
            .push("object header fails its checksum: its description cannot be trusted".into());
        out.reasons.extend(o.problems.iter().map(|p| p.to_string()));
        return Ok(());
    }
    // Messages that contradict each other (layout size vs dataspace and
    // datatype): which one is damaged cannot be told.
    if o.problems
        .iter()
        .any(|p| p.structure == crate::walk::INCONSISTENT)
    {
        out.result = "lost";
        out.reasons.extend(o.problems.iter().map(|p| p.to_string()));
        return Ok(());
    }
    let data = read::dataset_data(image, ds);
    if let DatasetData::Unreadable { reason } = &data {
        out.result = "lost";
        out.reasons.push(reason.clone());
        return Ok(());
    }
    if let Err(e) = w.create_dataset(dest, ds) {
        out.result = "lost";
        out.reasons.push(format!("cannot recreate: {e}"));
        return Ok(());
    }
    let mut missing: Vec<String> = Vec::new();
    match data {
        DatasetData::NotAllocated | DatasetData::Unreadable { .. } => {}
        DatasetData::Contiguous { bytes, expected } => {
            let whole = bytes.len() as u64 >= expected;
            if ds.datatype.is_variable_length() {
                if !whole {
                    missing.push(format!(
                        "bytes {}..{expected} (variable-length data cut: nothing written)",
                        bytes.len()
                    ));
                } else {
                    match read::resolve_heap_values(image, &ds.datatype, bytes) {
                        Ok(v) => {
                            if let Err(e) = w.write_all(dest, ds, bytes, &v) {
                                missing.push(format!("all elements (not written: {e})"));
                            }
                        }
                        Err(p) => missing.push(format!("variable-length values: {p}")),
                    }
                }
            } else if whole {
                let bytes = &bytes[..expected as usize];
                // Without variable-length parts this cannot fail (region
                // references carry their own outcome).
                let heap =
                    read::resolve_heap_values(image, &ds.datatype, bytes).unwrap_or_default();
                if let Err(e) = w.write_all(dest, ds, bytes, &heap) {
                    missing.push(format!("all elements (not written: {e})"));
                }
            } else {
                match w.write_prefix(dest, ds, bytes) {
                    Ok(n) => {
                        let esize = u64::from(ds.datatype.size).max(1);
                        missing.push(format!(
                            "elements {n}.. (bytes {}..{expected} lie past the end of the file)",
                            n * esize
                        ));
                    }
                    Err(e) => missing.push(format!("all elements (not written: {e})")),
                }
            }
        }
        DatasetData::Chunked {
            chunks,
            unverified,
            unverified_filters,
            failed,
            chunk_bytes,
        } => {
            // Filters this crate cannot decode: the stored bytes are copied
            // through untouched (never re-encoded, never guessed) and named.
            if !unverified.is_empty() {
                let note = format!(
                    "{} chunk(s) stored with {} copied as stored, not verified",
                    unverified.len(),
                    unverified_filters.join(", ")
                );
                w.mark(dest, "h5salvage_unverified", &note)?;
                out.notes.push(note);
            }
            if Writer::needs_conversion(&ds.datatype) {
                // Variable-length data and references hold addresses of
                // the input: each chunk is decoded, its in-extent elements
                // resolved and written through libhdf5 (never as stored).
                write_converted_chunks(w, image, dest, ds, &chunks, chunk_bytes, &mut missing);
                for c in &unverified {
                    missing.push(format!(
                        "chunk {:?}: stored with {}, which cannot be decoded, and its \
                         variable-length values or references cannot be copied as stored",
                        c.offset,
                        unverified_filters.join(", ")
                    ));
                }
            } else {
                for c in chunks.iter().chain(&unverified) {
                    if let Err(e) = w.write_chunk(dest, &c.offset, c.filter_mask, c.stored) {
                        missing.push(format!("chunk {:?}: not written: {e}", c.offset));
                    }
                }
            }
            for f in &failed {
                missing.push(format!("chunk {:?}: {}", f.offset, f.reason));
            }
        }
    }
    if !ds.coverage.index_complete {
        missing.push(
            "chunk index damaged: chunks it no longer lists are missing (their offsets are unknown)"
                .to_string(),
        );
    }
    for p in &o.problems {
        out.reasons.push(p.to_string());
    }
    if !missing.is_empty() {
        out.result = "partial";
        w.mark(dest, "h5salvage_missing", &missing.join("\n"))?;
        out.missing_marked = true;
        out.reasons.extend(missing);
    }
    Ok(())
}

/// Writes verified chunks whose elements need conversion (see
/// [`Writer::needs_conversion`]): each is decoded, clipped to the extent,
/// its heap values resolved, and written as a block. A chunk that cannot be
/// resolved or written is recorded in `missing`.
fn write_converted_chunks(
    w: &mut Writer,
    image: &Image,
    dest: &str,
    ds: &Dataset,
    chunks: &[read::VerifiedChunk],
    chunk_bytes: u64,
    missing: &mut Vec<String>,
) {
    let crate::format::message::data_layout::LayoutClass::Chunked { dims, .. } = &ds.layout.class
    else {
        missing.push("all chunks: not a chunked layout".to_string());
        return;
    };
    let Ok(expected) = usize::try_from(chunk_bytes) else {
        missing.push(format!(
            "all chunks: chunk of {chunk_bytes} bytes too large"
        ));
        return;
    };
    let elem = u64::from(ds.datatype.size);
    for c in chunks {
        let block = read::decode_chunk(
            c.stored,
            ds.filters.as_ref(),
            c.filter_mask,
            ds.datatype.size,
            expected,
        )
        .and_then(|d| read::chunk_block(&d, &ds.dataspace.dims, dims, &c.offset, elem));
        let (count, bytes) = match block {
            Ok(Some(b)) => b,
            Ok(None) => continue, // entirely outside the current extent
            Err(e) => {
                missing.push(format!("chunk {:?}: {e}", c.offset));
                continue;
            }
        };
        match read::resolve_heap_values(image, &ds.datatype, &bytes) {
            Ok(heap) => {
                if let Err(e) = w.write_block(dest, ds, &c.offset, &count, &bytes, &heap) {
                    missing.push(format!("chunk {:?}: not written: {e}", c.offset));
                }
            }
            Err(p) => missing.push(format!("chunk {:?}: variable-length values: {p}", c.offset)),
        }
    }
}

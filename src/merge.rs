//! `merge`: many (damaged) worker files -> one output holding every
//! top-level group that can be saved.
//!
//! Each input is inventoried (walked, and carved when damaged) on a pool of
//! threads while one writer writes them in path order; the groups at its root are the units of a merge (`init` and any
//! other `--exclude`d name aside), and groups that carving found without a
//! name (`/lost+found/group_at_0x...`) become
//! `/lost+found/<input file stem>/group_at_0x...`. One writer then copies the
//! chosen units with the salvage rules ([`crate::salvage::salvage_into`]):
//! verified data only, partial marks, chunks copied as stored.
//!
//! Choice between copies: a unit already in OUTPUT is kept (resume); of the
//! inputs holding the same unit, an intact copy beats a partial one and
//! between equals the first input (sorted by path) wins; every conflict is
//! reported. Each merged unit gets `h5salvage_source` = input path.
//!
//! Atomicity: an existing OUTPUT is copied and the copy is added to
//! ([`Writer::open_copy`]), then renamed over OUTPUT; a merge killed at any
//! moment leaves OUTPUT as it was. One run at a time: OUTPUT's lock
//! ([`OutputLock`]) is held for the whole run, and the copy replaces OUTPUT
//! only if OUTPUT is still the file that was copied (device, inode, size,
//! mtime). An input a writer still holds open (libhdf5's lock) is skipped
//! unless `include_open`; an input that changes while it is read is an
//! error (during the inventory: that input; while its groups are written:
//! the whole run). Inputs are never modified; they are only
//! deleted (`remove_merged`) after every unit was read back from the
//! finished OUTPUT and compared, or moved (`quarantine`) when nothing could be
//! recovered from them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::carve::chunks;
use crate::format::message::datatype::{Datatype, DatatypeClass};
use crate::inventory::{Inventory, LinkKind, ObjectKind, Status};
use crate::pipeline::{CarveMode, Input};
use crate::salvage::{salvage_into, Recovery, SalvageError, SalvageReport};
use crate::write::{LockError, OutputLock, WriteError, Writer};

/// What a merge is asked to do.
#[derive(Clone, Debug, Default)]
pub struct MergeOptions {
    /// Input files (see [`expand_inputs`] for directories).
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    /// Top-level group names never copied.
    pub exclude: Vec<String>,
    /// Delete an input once all its units were read back equal from OUTPUT.
    pub remove_merged: bool,
    /// Move inputs from which nothing could be recovered here.
    pub quarantine: Option<PathBuf>,
    /// Inventory threads (0: one per core).
    pub jobs: usize,
    /// How long to wait for another run holding OUTPUT's lock.
    pub wait_lock: Duration,
    /// Merge inputs another process still holds open for writing (by
    /// default they are skipped: what is on disk is a snapshot).
    pub include_open: bool,
}

/// What happened to one unit (a top-level group) of one input.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct UnitOutcome {
    /// Path in the input.
    pub source: String,
    /// Path in OUTPUT.
    pub dest: String,
    /// "merged", "partial", "lost", "skipped (present)" or
    /// "skipped (duplicate)".
    pub result: UnitResult,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

word_enum! {
    /// What became of one unit.
    pub enum UnitResult {
        /// In OUTPUT in full.
        Merged => "merged",
        /// In OUTPUT, with something partial or lost below it.
        Partial => "partial",
        /// Not in OUTPUT.
        Lost => "lost",
        /// OUTPUT already held it (from an earlier run): kept as it was.
        SkippedPresent => "skipped (present)",
        /// Another input of this run gave the same unit.
        SkippedDuplicate => "skipped (duplicate)",
    }
}

word_enum! {
    /// What became of one input as a whole.
    #[derive(Default)]
    pub enum InputVerdict {
        /// Every unit is in OUTPUT in full.
        Complete => "complete",
        /// Something is partial or lost.
        Partial => "partial",
        /// Nothing was recovered from it.
        #[default]
        Nothing => "nothing",
        /// It could not be read.
        Error => "error",
        /// A writer still had it open (merged only with `include_open`).
        SkippedOpen => "skipped (open for writing)",
    }
}

/// The account of one input.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InputReport {
    pub input: String,
    pub size: u64,
    /// The scan verdict (healthy, damaged, empty, not_hdf5, unreadable), or
    /// "error" when it could not be read.
    pub scan: String,
    pub found: u64,
    pub merged: u64,
    pub present: u64,
    pub duplicate: u64,
    pub partial: u64,
    pub lost: u64,
    /// "complete" (every unit is in OUTPUT in full), "partial" (something
    /// is partial or lost), "nothing" (nothing recovered from it), "error",
    /// or "skipped (open for writing)".
    pub verdict: InputVerdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// "removed", "kept: <why>", "quarantined to <path>", ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Another process held the input open for writing (libhdf5's lock):
    /// skipped, or merged as a snapshot with `include_open`.
    pub open_for_write: bool,
    pub units: Vec<UnitOutcome>,
}

/// The account of one merge.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MergeReport {
    pub output: String,
    /// OUTPUT was written (false: nothing new, OUTPUT left as it was).
    pub written: bool,
    pub inputs: Vec<InputReport>,
    /// One line per unit found in several inputs: who won and why.
    pub conflicts: Vec<String>,
    /// Links not recreated and other remarks from the writer.
    pub notes: Vec<String>,
}

impl MergeReport {
    /// Exit code: 0 everything merged (or already present), 1 something
    /// merged but something partial or lost, 2 an input could not be read
    /// (the others were merged), 3 nothing merged or present.
    pub fn exit_code(&self) -> i32 {
        if self.inputs.iter().any(|i| i.error.is_some()) {
            return 2;
        }
        let in_output: u64 = self.inputs.iter().map(|i| i.merged + i.present).sum();
        let partial: u64 = self.inputs.iter().map(|i| i.partial).sum();
        if in_output == 0 && partial == 0 {
            return 3;
        }
        if self
            .inputs
            .iter()
            .all(|i| i.verdict == InputVerdict::Complete)
        {
            0
        } else {
            1
        }
    }
}

/// Why a merge could not run or could not write OUTPUT.
#[derive(Debug)]
pub enum MergeError {
    /// An argument is wrong (no inputs, a directory that cannot be read).
    Usage(String),
    /// The writer failed: OUTPUT is left as it was.
    Write(WriteError),
    /// A salvage step failed in a way that stops the writer.
    Salvage(String, SalvageError),
    /// Another run kept OUTPUT's lock (or it could not be taken).
    Lock(LockError),
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeError::Usage(m) => write!(f, "{m}"),
            MergeError::Write(e) => write!(f, "cannot write output: {e}"),
            MergeError::Salvage(input, e) => write!(f, "{input}: {e}"),
            MergeError::Lock(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for MergeError {}

impl From<WriteError> for MergeError {
    fn from(e: WriteError) -> Self {
        MergeError::Write(e)
    }
}

/// Inputs as given: files are kept, directories are searched
/// (non-recursively) for `*.h5` and `*.corrupted`. Sorted, without
/// duplicates, without `output` itself and without temporary files of
/// h5salvage writers.
pub fn expand_inputs(args: &[PathBuf], output: &Path) -> Result<Vec<PathBuf>, MergeError> {
    let mut out = Vec::new();
    for a in args {
        if a.is_dir() {
            let entries = std::fs::read_dir(a)
                .map_err(|e| MergeError::Usage(format!("{}: cannot list: {e}", a.display())))?;
            for e in entries {
                let e = e.map_err(|e| MergeError::Usage(format!("{}: {e}", a.display())))?;
                let p = e.path();
                let wanted = p.extension().is_some_and(|x| x == "h5" || x == "corrupted");
                if wanted && p.is_file() {
                    out.push(p);
                }
            }
        } else {
            out.push(a.clone());
        }
    }
    let output_id = std::fs::canonicalize(output).ok();
    out.retain(|p| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let temp = name.is_some_and(|n| n.starts_with('.') && n.contains(".h5salvage-tmp-"));
        let same = output_id.is_some() && std::fs::canonicalize(p).ok() == output_id;
        !temp && !same
    });
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err(MergeError::Usage("no input files".into()));
    }
    Ok(out)
}

/// One top-level group of one input.
#[derive(Clone, Debug)]
struct Unit {
    source: String,
    dest: String,
    /// Worst status of the objects under it.
    quality: Status,
    /// Marks an earlier salvage left under it (`h5salvage_status`,
    /// `h5salvage_unverified`): its copy is partial or unverified however
    /// whole it reads now.
    marks: Vec<&'static str>,
}

/// One input after the inventory stage.
struct Scanned {
    path: PathBuf,
    /// Kept while a unit of it may still be written (or compared).
    inv: Option<Inventory>,
    size: u64,
    /// The scan verdict, or "error".
    scan: String,
    error: Option<String>,
    units: Vec<Unit>,
    open_for_write: bool,
    /// Not read: a writer still has it open (and `include_open` is off).
    skipped: bool,
    /// Chunks were found that no description in the input matches: a
    /// sibling's datasets may describe them (see [`sibling_templates`]).
    needs_templates: bool,
    /// A healthy input's chunked datasets, as templates for its siblings.
    templates: Vec<chunks::Template>,
}

impl Scanned {
    fn failed(path: &Path, error: String) -> Scanned {
        Scanned {
            path: path.to_path_buf(),
            inv: None,
            size: 0,
            scan: "error".into(),
            error: Some(error),
            units: Vec::new(),
            open_for_write: false,
            skipped: false,
            needs_templates: false,
            templates: Vec::new(),
        }
    }
}

/// Marks a salvage leaves on what it could not give back whole or verify:
/// a unit of a salvaged input carrying one is not complete.
const EARLIER_MARKS: [&str; 2] = ["h5salvage_status", "h5salvage_unverified"];

/// The units of an inventory: named groups at the root (not excluded) and
/// every entry directly under `/lost+found`, renamed under the input's stem.
fn units_of(inv: &Inventory, stem: &str, exclude: &[String]) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    for o in inv.objects.iter().filter(|o| o.hard_link_of.is_none()) {
        let rest = o.path.strip_prefix('/').unwrap_or_default();
        let dest = if let Some(name) = rest.strip_prefix("lost+found/") {
            if name.is_empty() || name.contains('/') {
                continue;
            }
            format!("/lost+found/{stem}/{name}")
        } else {
            let named_group = o.kind == ObjectKind::Group
                && !rest.is_empty()
                && !rest.contains('/')
                && rest != "lost+found";
            if !named_group || exclude.iter().any(|x| x == rest) {
                continue;
            }
            o.path.clone()
        };
        units.push(Unit {
            source: o.path.clone(),
            dest,
            quality: o.status,
            marks: Vec::new(),
        });
    }
    // Stacks of found chunks no dataset took (written under /lost+found).
    for st in inv.chunk_search.iter().flat_map(|c| &c.stray) {
        let source = crate::salvage::stray_path(st);
        let name = source.trim_start_matches("/lost+found/");
        units.push(Unit {
            dest: format!("/lost+found/{stem}/{name}"),
            source,
            quality: Status::Partial,
            marks: Vec::new(),
        });
    }
    // Each object belongs to the unit of its nearest ancestor (units do
    // not nest): one pass, not one per unit.
    let sources: Vec<String> = units.iter().map(|u| u.source.clone()).collect();
    let by_source: HashMap<&str, usize> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    for o in &inv.objects {
        let Some(u) = nearest(&o.path, &by_source).and_then(|i| units.get_mut(i)) else {
            continue;
        };
        u.quality = u.quality.max(o.status);
        // A salvaged input: what salvage marked partial (or unverified)
        // still is.
        for mark in EARLIER_MARKS {
            if o.attributes.iter().any(|a| a.name == mark) {
                u.quality = u.quality.max(Status::Partial);
                if !u.marks.contains(&mark) {
                    u.marks.push(mark);
                }
            }
        }
    }
    units
}

/// Every path of `output` at or above an object a previous run marked
/// `h5salvage_status` (empty if it cannot be read).
fn partial_paths(output: &Path) -> HashSet<String> {
    let mut out = HashSet::new();
    let Ok(inv) = crate::pipeline::scan_path(output) else {
        return out;
    };
    for o in &inv.objects {
        if !o.attributes.iter().any(|a| a.name == "h5salvage_status") {
            continue;
        }
        let mut p = o.path.as_str();
        while out.insert(p.to_string()) {
            match p.rfind('/') {
                Some(0) | None => break,
                Some(i) => p = p.get(..i).unwrap_or("/"),
            }
        }
    }
    out
}

/// `source` or a path below it, mapped to `dest`.
/// The entry of `map` named by `path` itself or its nearest ancestor.
fn nearest(path: &str, map: &HashMap<&str, usize>) -> Option<usize> {
    let mut prefix = path;
    loop {
        if let Some(&i) = map.get(prefix) {
            return Some(i);
        }
        match prefix.rfind('/') {
            Some(0) | None => return None,
            Some(i) => prefix = &prefix[..i],
        }
    }
}

fn map_path(path: &str, source: &str, dest: &str) -> Option<String> {
    if path == source {
        return Some(dest.to_string());
    }
    let rest = path.strip_prefix(source)?;
    rest.starts_with('/').then(|| format!("{dest}{rest}"))
}

fn stem_of(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into())
        .replace('/', "_")
}

fn scan_one(path: &Path, opts: &MergeOptions) -> Scanned {
    scan_with(path, opts, &chunks::Options::default())
}

/// Inventories one input, searching for chunks no index lists with
/// `search`'s templates and rules.
fn scan_with(path: &Path, opts: &MergeOptions, search: &chunks::Options) -> Scanned {
    let name = path.display().to_string();
    let input = match Input::open(path) {
        Ok(input) => input,
        Err(e) => return Scanned::failed(path, format!("cannot read: {e}")),
    };
    let open_for_write = input.open_for_write();
    if open_for_write && !opts.include_open {
        return Scanned {
            path: path.to_path_buf(),
            inv: None,
            size: input.bytes().len() as u64,
            scan: "open".into(),
            error: None,
            units: Vec::new(),
            open_for_write,
            skipped: true,
            needs_templates: false,
            templates: Vec::new(),
        };
    }
    let inv = match input.inventory_with(&name, CarveMode::Auto, search) {
        Ok(inv) => inv,
        Err(e) => return Scanned::failed(path, e.to_string()),
    };
    let units = units_of(&inv, &stem_of(path), &opts.exclude);
    let needs_templates = inv.chunk_search.as_ref().is_some_and(|c| {
        c.stray
            .iter()
            .any(|st| st.reason == chunks::Stray::NoTemplate)
    });
    let templates = if inv.verdict() == crate::inventory::Verdict::Healthy {
        chunks::templates_of(&inv, &name)
    } else {
        Vec::new()
    };
    Scanned {
        path: path.to_path_buf(),
        size: inv.size,
        scan: inv.verdict().as_str().to_string(),
        inv: Some(inv),
        error: None,
        units,
        open_for_write,
        skipped: false,
        needs_templates,
        templates,
    }
}

/// Most templates gathered from siblings.
const MAX_TEMPLATES: usize = 100_000;

/// Templates for input `i`, whose found chunks no description of its own
/// matches: the chunked datasets of the healthy inputs before it (one per
/// path), or else of the first healthy input after it (walked here).
fn sibling_templates(
    inputs: &[PathBuf],
    i: usize,
    seen: &[chunks::Template],
) -> Vec<chunks::Template> {
    if !seen.is_empty() {
        return seen.to_vec();
    }
    for p in inputs.iter().skip(i + 1) {
        let Ok(inv) = crate::pipeline::scan_path(p) else {
            continue;
        };
        if inv.verdict() == crate::inventory::Verdict::Healthy {
            let t = chunks::templates_of(&inv, &p.display().to_string());
            if !t.is_empty() {
                return t;
            }
        }
    }
    Vec::new()
}

/// Which copy of each destination path is written, decided input by input
/// in path order while the inventories come in: an intact copy is written
/// as soon as its input comes up (an earlier intact copy would have been
/// written already); partial and lost copies wait until every input was
/// seen, and the best of them (the first among equals) is written only if
/// no intact copy came.
#[derive(Default)]
struct Plan {
    /// Destination -> every input holding it, with its quality.
    candidates: BTreeMap<String, Vec<(usize, Status)>>,
    /// Destination -> the input whose copy was written in this run.
    written: HashMap<String, usize>,
    /// Destination -> the best partial or lost copy so far.
    deferred: BTreeMap<String, (usize, Status)>,
    /// Destinations OUTPUT held before this run.
    present: HashSet<String>,
    /// Paths in OUTPUT (before this run) at or above an object marked
    /// `h5salvage_status`: a unit there is a partial copy.
    partial_in_output: HashSet<String>,
    /// Destinations whose partial copy in OUTPUT an intact copy replaces.
    replace: HashSet<String>,
}

impl Plan {
    /// Records unit `u` of input `i`; true when it is to be written now.
    fn offer(
        &mut self,
        i: usize,
        u: &Unit,
        exists: &dyn Fn(&str) -> Result<bool, WriteError>,
    ) -> Result<bool, WriteError> {
        self.candidates
            .entry(u.dest.clone())
            .or_default()
            .push((i, u.quality));
        if self.present.contains(&u.dest) || self.written.contains_key(&u.dest) {
            return Ok(false);
        }
        if exists(&u.dest)? {
            if u.quality == Status::Intact && self.partial_in_output.contains(&u.dest) {
                // An intact copy beats the partial one a previous run wrote.
                self.replace.insert(u.dest.clone());
                return Ok(true);
            }
            self.present.insert(u.dest.clone());
            return Ok(false);
        }
        if u.quality == Status::Intact {
            return Ok(true);
        }
        match self.deferred.get(&u.dest) {
            Some(&(_, q)) if q <= u.quality => {}
            _ => {
                self.deferred.insert(u.dest.clone(), (i, u.quality));
            }
        }
        Ok(false)
    }

    /// Deferred copies no intact copy replaced, per input.
    fn late(&self) -> BTreeMap<usize, Vec<String>> {
        let mut late: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (dest, (i, _)) in &self.deferred {
            if !self.written.contains_key(dest) {
                late.entry(*i).or_default().push(dest.clone());
            }
        }
        late
    }

    /// One line per destination found in several inputs.
    fn conflicts(&self, scanned: &[Scanned]) -> Vec<String> {
        let name = |i: usize| {
            scanned
                .get(i)
                .map_or(String::new(), |s| s.path.display().to_string())
        };
        let mut out = Vec::new();
        for (dest, cands) in &self.candidates {
            if cands.len() < 2 || self.present.contains(dest) {
                continue;
            }
            let Some(&win) = self.written.get(dest) else {
                continue;
            };
            let q = cands
                .iter()
                .find(|(i, _)| *i == win)
                .map_or("", |(_, q)| q.as_str());
            let others: Vec<String> = cands
                .iter()
                .filter(|(i, _)| *i != win)
                .map(|(i, q)| format!("{} ({})", name(*i), q.as_str()))
                .collect();
            out.push(format!(
                "{dest}: copy from {} ({q}) kept; also in {}",
                name(win),
                others.join(", ")
            ));
        }
        out
    }
}

/// Where the writer is: the plan, the inputs seen, what was written.
struct MergeState {
    plan: Plan,
    scanned: Vec<Scanned>,
    outcomes: Vec<HashMap<String, UnitOutcome>>,
    notes: Vec<String>,
    wrote: bool,
}

impl MergeState {
    /// Writes `dests` of input `i`; input errors are recorded on it.
    fn write(&mut self, w: &mut Writer, i: usize, dests: &[String]) -> Result<(), MergeError> {
        let Some(s) = self.scanned.get_mut(i) else {
            return Ok(());
        };
        let Some(inv) = &s.inv else {
            return Ok(());
        };
        let wanted: HashSet<&str> = dests.iter().map(String::as_str).collect();
        let units: Vec<&Unit> = s
            .units
            .iter()
            .filter(|u| wanted.contains(u.dest.as_str()))
            .collect();
        if units.is_empty() {
            return Ok(());
        }
        // Partial copies an intact one replaces are moved aside first and
        // put back if the intact copy does not come out whole.
        let mut aside: Vec<(String, String)> = Vec::new();
        for u in &units {
            if self.plan.replace.contains(&u.dest) {
                let to = format!("{}~h5salvage-replaced", u.dest);
                w.rename(&u.dest, &to)
                    .map_err(|e| MergeError::Salvage(s.path.display().to_string(), e.into()))?;
                aside.push((u.dest.clone(), to));
            }
        }
        // Where this input's paths are in OUTPUT (for virtual datasets
        // with sources in the same file): its units, less those whose
        // destination holds another copy (OUTPUT's or another input's).
        let theirs = |u: &Unit| {
            self.plan.present.contains(&u.dest)
                || self.plan.written.get(&u.dest).is_some_and(|j| *j != i)
        };
        let mine: Vec<(String, String)> = s
            .units
            .iter()
            .filter(|u| !theirs(u))
            .map(|u| (u.source.clone(), u.dest.clone()))
            .collect();
        let result = write_units(w, &s.path, inv, &units, mine);
        let merged: HashSet<String> = match &result {
            Ok((list, _)) => list
                .iter()
                .filter(|o| o.result == UnitResult::Merged)
                .map(|o| o.dest.clone())
                .collect(),
            Err(_) => HashSet::new(),
        };
        let fatal = |e: WriteError| MergeError::Salvage(s.path.display().to_string(), e.into());
        for (dest, to) in &aside {
            if merged.contains(dest) {
                w.remove(to).map_err(fatal)?;
                self.notes.push(format!(
                    "{dest}: the partial copy OUTPUT held was replaced by the intact copy from {}",
                    s.path.display()
                ));
            } else {
                if w.exists(dest).map_err(fatal)? {
                    w.remove(dest).map_err(fatal)?;
                }
                w.rename(to, dest).map_err(fatal)?;
                self.plan.replace.remove(dest);
                self.plan.present.insert(dest.clone());
            }
        }
        match result {
            Ok((mut list, notes)) => {
                // A replacement that did not come out whole was undone.
                for o in &mut list {
                    if self.plan.present.contains(&o.dest) && !merged.contains(&o.dest) {
                        o.reasons.insert(
                            0,
                            format!(
                                "not whole ({}): the partial copy in OUTPUT is kept",
                                o.result
                            ),
                        );
                        o.result = UnitResult::SkippedPresent;
                    }
                }
                self.wrote |= list.iter().any(|o| o.result != UnitResult::Lost);
                self.notes.extend(notes);
                for o in list {
                    self.plan.written.insert(o.dest.clone(), i);
                    if let Some(m) = self.outcomes.get_mut(i) {
                        m.insert(o.source.clone(), o);
                    }
                }
                Ok(())
            }
            Err(UnitsError::Input(e)) => {
                s.error = Some(e);
                Ok(())
            }
            Err(UnitsError::Fatal(e)) => Err(MergeError::Salvage(s.path.display().to_string(), e)),
        }
    }

    /// Input `i` arrives (in path order): its intact units not yet in
    /// OUTPUT are written now.
    fn arrive(
        &mut self,
        w: &mut Writer,
        i: usize,
        s: Scanned,
        keep: bool,
    ) -> Result<(), MergeError> {
        let mut now = Vec::new();
        for u in &s.units {
            if self.plan.offer(i, u, &|p: &str| w.exists(p))? {
                now.push(u.dest.clone());
            }
        }
        self.scanned.push(s);
        self.write(w, i, &now)?;
        let deferred = self.plan.deferred.values().any(|(j, _)| *j == i);
        if !keep && !deferred {
            if let Some(s) = self.scanned.get_mut(i) {
                s.inv = None;
            }
        }
        Ok(())
    }
}

/// Runs a merge: inputs are inventoried on a pool of threads (a shared
/// work queue) while this thread writes them in path order. OUTPUT is
/// written only when there is something new; it is replaced atomically (or
/// created) by the writer.
pub fn merge(opts: &MergeOptions) -> Result<MergeReport, MergeError> {
    if opts.inputs.is_empty() {
        return Err(MergeError::Usage("no input files".into()));
    }
    let _lock = OutputLock::acquire(&opts.output, opts.wait_lock, &mut |m| {
        eprintln!("h5salvage: {m}")
    })
    .map_err(MergeError::Lock)?;
    let stale = crate::write::remove_stale_temps(&opts.output);
    let existing = opts.output.exists();
    let mut w = if existing {
        Writer::open_copy(&opts.output)?
    } else {
        Writer::create_for(&opts.output, Default::default())?
    };
    let n = opts.inputs.len();
    let jobs = if opts.jobs == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.jobs
    }
    .clamp(1, n);
    let mut plan = Plan::default();
    if existing {
        plan.partial_in_output = partial_paths(&opts.output);
    }
    let mut st = MergeState {
        plan,
        scanned: Vec::with_capacity(n),
        outcomes: vec![HashMap::new(); n],
        notes: stale,
        wrote: false,
    };
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    // A bar on stderr when the command line enabled it (crate::progress).
    let mut bar = crate::progress::Bar::new(n as u64, "merging inputs");
    std::thread::scope(|scope| -> Result<(), MergeError> {
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Scanned)>();
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = opts.inputs.get(i) else {
                        break;
                    };
                    if tx.send((i, scan_one(path, opts))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, Scanned> = BTreeMap::new();
        let mut templates: Vec<chunks::Template> = Vec::new();
        for (i, path) in opts.inputs.iter().enumerate() {
            let s = loop {
                if let Some(s) = pending.remove(&i) {
                    break s;
                }
                match rx.recv() {
                    Ok((j, s)) => {
                        pending.insert(j, s);
                    }
                    Err(_) => break Scanned::failed(path, "inventory thread failed".into()),
                }
            };
            for t in &s.templates {
                if templates.len() < MAX_TEMPLATES && !templates.iter().any(|x| x.path == t.path) {
                    templates.push(t.clone());
                }
            }
            let s = if s.needs_templates {
                let found = sibling_templates(&opts.inputs, i, &templates);
                if found.is_empty() {
                    s
                } else {
                    let o = chunks::Options {
                        infer: true,
                        templates: found,
                    };
                    scan_with(path, opts, &o)
                }
            } else {
                s
            };
            if let Err(e) = st.arrive(&mut w, i, s, opts.remove_merged) {
                stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
            bar.inc();
        }
        Ok(())
    })?;
    for (i, dests) in st.plan.late() {
        st.write(&mut w, i, &dests)?;
    }
    let mut report = MergeReport {
        output: opts.output.display().to_string(),
        conflicts: st.plan.conflicts(&st.scanned),
        notes: std::mem::take(&mut st.notes),
        ..MergeReport::default()
    };
    for (i, s) in st.scanned.iter().enumerate() {
        report.inputs.push(input_report(i, s, &st));
    }
    if st.wrote {
        w.finish(existing)?;
        report.written = true;
    } else {
        drop(w);
    }
    if opts.remove_merged && opts.output.exists() {
        remove_merged(&opts.output, &st.scanned, &mut report);
    }
    if let Some(dir) = &opts.quarantine {
        quarantine(dir, &mut report);
    }
    Ok(report)
}

/// The account of input `i` once everything was written.
fn input_report(i: usize, s: &Scanned, st: &MergeState) -> InputReport {
    let mut ir = InputReport {
        input: s.path.display().to_string(),
        size: s.size,
        scan: s.scan.clone(),
        error: s.error.clone(),
        found: s.units.len() as u64,
        open_for_write: s.open_for_write,
        ..InputReport::default()
    };
    for u in &s.units {
        let written = st.outcomes.get(i).and_then(|m| m.get(&u.source));
        let o = written.cloned().unwrap_or_else(|| {
            let result = if st.plan.present.contains(&u.dest) {
                UnitResult::SkippedPresent
            } else if st.plan.written.get(&u.dest).is_some_and(|j| *j != i) {
                UnitResult::SkippedDuplicate
            } else {
                UnitResult::Lost
            };
            UnitOutcome {
                source: u.source.clone(),
                dest: u.dest.clone(),
                result,
                reasons: Vec::new(),
            }
        });
        match o.result {
            UnitResult::Merged => ir.merged += 1,
            UnitResult::Partial => ir.partial += 1,
            UnitResult::SkippedPresent => ir.present += 1,
            UnitResult::SkippedDuplicate => ir.duplicate += 1,
            UnitResult::Lost => ir.lost += 1,
        }
        ir.units.push(o);
    }
    ir.verdict = if s.skipped {
        InputVerdict::SkippedOpen
    } else {
        verdict(&ir)
    };
    ir
}

fn verdict(ir: &InputReport) -> InputVerdict {
    if ir.error.is_some() {
        return InputVerdict::Error;
    }
    let in_output = ir.merged + ir.present + ir.duplicate;
    if ir.found == 0 || (in_output == 0 && ir.partial == 0) {
        InputVerdict::Nothing
    } else if ir.partial == 0 && ir.lost == 0 {
        InputVerdict::Complete
    } else {
        InputVerdict::Partial
    }
}

enum UnitsError {
    /// This input could not be read again: its units are lost, the merge
    /// goes on.
    Input(String),
    /// The writer failed: the merge stops, OUTPUT stays as it was.
    Fatal(SalvageError),
}

/// Writes the chosen units of one input; returns one outcome per unit and
/// the writer's notes. `mine`: (source, destination) of the input's units
/// whose destination is (or is to be) its own copy.
fn write_units(
    w: &mut Writer,
    path: &Path,
    inv: &Inventory,
    units: &[&Unit],
    mine: Vec<(String, String)>,
) -> Result<(Vec<UnitOutcome>, Vec<String>), UnitsError> {
    let input = Input::open(path).map_err(|e| UnitsError::Input(format!("cannot read: {e}")))?;
    let bytes = input.bytes();
    if bytes.len() as u64 != inv.size {
        return Err(UnitsError::Input(format!(
            "changed while merging ({} bytes, {} when inventoried)",
            bytes.len(),
            inv.size
        )));
    }
    let image = inv.image(bytes);
    // Units by source and by destination path: an object belongs to the
    // unit named by its nearest ancestor (no scan of every unit per object).
    let by_source: HashMap<&str, usize> = units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.source.as_str(), i))
        .collect();
    let by_dest: HashMap<&str, usize> = units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.dest.as_str(), i))
        .collect();
    let select = |p: &str| {
        let u = units[nearest(p, &by_source)?];
        map_path(p, &u.source, &u.dest)
    };
    let mut rep = SalvageReport::default();
    // Virtual datasets name sources in the same file by their input path:
    // `mine`, every unit of the input (this call's or not), says where.
    w.set_same_file_units(Some(mine));
    let done = salvage_into(w, inv, &image, &select, &mut rep);
    w.set_same_file_units(None);
    // What was just written came from zero pages or a file being changed
    // (a failed write may be its consequence): the whole merge stops,
    // OUTPUT stays as it was.
    input
        .check_unchanged()
        .map_err(|e| UnitsError::Fatal(SalvageError::InputChanged(e)))?;
    done.map_err(UnitsError::Fatal)?;
    let source = path.display().to_string();
    let mut per_unit: Vec<Vec<&crate::salvage::Outcome>> = vec![Vec::new(); units.len()];
    for o in &rep.objects {
        if let Some(i) = nearest(&o.path, &by_dest) {
            per_unit[i].push(o);
        }
    }
    let mut out = Vec::new();
    for (u, mine) in units.iter().zip(per_unit) {
        let root_lost = mine
            .iter()
            .find(|o| o.path == u.dest)
            .is_none_or(|o| o.result == Recovery::Lost);
        let mut reasons: Vec<String> = mine
            .iter()
            .filter(|o| o.result != Recovery::Recovered)
            .map(|o| {
                let why = o.reasons.first().map_or("", String::as_str);
                format!("{} {}: {why}", o.result, o.path)
            })
            .collect();
        let result = if root_lost {
            UnitResult::Lost
        } else {
            w.mark(&u.dest, "h5salvage_source", &source)
                .map_err(|e| UnitsError::Fatal(SalvageError::Write(e)))?;
            if !u.marks.is_empty() {
                reasons.push(format!(
                    "{}: carries {} from an earlier salvage",
                    u.dest,
                    u.marks.join(", ")
                ));
            }
            if reasons.is_empty() {
                UnitResult::Merged
            } else {
                UnitResult::Partial
            }
        };
        reasons.truncate(20);
        out.push(UnitOutcome {
            source: u.source.clone(),
            dest: u.dest.clone(),
            result,
            reasons,
        });
    }
    // A user block is one file's (README: "Which writer").
    if let Some(sb) = inv.superblock.as_ref().filter(|s| s.offset > 0) {
        rep.notes.push(format!(
            "{source}: its user block ({} bytes before the superblock) is not kept: a merge's \
             output has no input's user block",
            sb.offset
        ));
    }
    Ok((out, rep.notes))
}

/// Deletes each input whose every unit reads back from OUTPUT equal to the
/// input (same objects, same shapes and types, same bytes).
fn remove_merged(output: &Path, scanned: &[Scanned], report: &mut MergeReport) {
    let out_input = match Input::open(output) {
        Ok(i) => i,
        Err(e) => {
            report
                .notes
                .push(format!("{}: cannot read back: {e}", output.display()));
            return;
        }
    };
    let out_bytes = out_input.bytes();
    let out_inv = crate::walk::walk(&output.display().to_string(), out_bytes);
    let out_image = out_inv.image(out_bytes);
    let out_index = OutIndex::of(&out_inv);
    for (s, ir) in scanned.iter().zip(report.inputs.iter_mut()) {
        let Some(inv) = &s.inv else {
            continue;
        };
        if ir.verdict != InputVerdict::Complete {
            ir.action = Some("kept: not complete in the output".into());
            continue;
        }
        let input = match Input::open(&s.path) {
            Ok(i) => i,
            Err(e) => {
                ir.action = Some(format!("kept: cannot read again: {e}"));
                continue;
            }
        };
        let image = inv.image(input.bytes());
        let mut why = same_units(inv, &image, &s.units, &out_index, &out_image)
            .err()
            .map(|(dest, e)| format!("{dest}: {e}"));
        if let (None, Err(e)) = (&why, input.check_unchanged()) {
            why = Some(e.to_string());
        }
        ir.action = Some(match why {
            Some(e) => format!("kept: {e}"),
            None => match std::fs::remove_file(&s.path) {
                Ok(()) => "removed".into(),
                Err(e) => format!("kept: cannot remove: {e}"),
            },
        });
    }
}

/// OUTPUT's objects (the first of each path, as [`Inventory::object`])
/// and links by path, made once for every input: [`same_units`] looks
/// each input path up here (principle 4: a scan of OUTPUT per input object
/// or link was quadratic in counts the inputs choose).
struct OutIndex<'a> {
    objects: HashMap<&'a str, &'a crate::inventory::Object>,
    links: HashMap<&'a str, Vec<&'a crate::inventory::LinkEntry>>,
}

impl<'a> OutIndex<'a> {
    fn of(inv: &'a Inventory) -> OutIndex<'a> {
        let mut objects = HashMap::new();
        for o in &inv.objects {
            objects.entry(o.path.as_str()).or_insert(o);
        }
        let mut links: HashMap<&str, Vec<_>> = HashMap::new();
        for l in &inv.links {
            links.entry(l.path.as_str()).or_default().push(l);
        }
        OutIndex { objects, links }
    }
}

/// Every object of the units `units` in the input has its counterpart in
/// OUTPUT: same kind; datasets with the same shape, type and bytes
/// (variable-length values compared as values). One pass over the input's
/// objects and links, each in the unit of its nearest ancestor (units do
/// not nest); the first difference, with its unit's destination.
fn same_units(
    inv: &Inventory,
    image: &crate::follow::Image,
    units: &[Unit],
    out: &OutIndex,
    out_image: &crate::follow::Image,
) -> Result<(), (String, String)> {
    let by_source: HashMap<&str, usize> = units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.source.as_str(), i))
        .collect();
    // The unit holding `path` and where `path` goes in OUTPUT.
    let place = |path: &str| {
        let u = units.get(nearest(path, &by_source)?)?;
        map_path(path, &u.source, &u.dest).map(|d| (u, d))
    };
    let fail = |u: &Unit, e: String| Err((u.dest.clone(), e));
    // Second hard links and soft or external links must be in OUTPUT too.
    for o in inv.objects.iter().filter(|o| o.hard_link_of.is_some()) {
        let Some((u, dest)) = place(&o.path) else {
            continue;
        };
        if !out.objects.contains_key(dest.as_str()) {
            return fail(u, format!("{dest}: hard link missing from the output"));
        }
    }
    for l in &inv.links {
        let Some((u, dest)) = place(&l.path) else {
            continue;
        };
        let target = if l.kind == LinkKind::Soft {
            map_path(&l.target, &u.source, &u.dest).unwrap_or_else(|| l.target.clone())
        } else {
            l.target.clone()
        };
        let found = out.links.get(dest.as_str()).is_some_and(|ms| {
            ms.iter()
                .any(|m| m.kind == l.kind && m.target == target && m.file == l.file)
        });
        if !found {
            return fail(
                u,
                format!("{dest}: {} link missing from the output", l.kind),
            );
        }
    }
    for o in inv.objects.iter().filter(|o| o.hard_link_of.is_none()) {
        let Some((u, dest)) = place(&o.path) else {
            continue;
        };
        if o.status != Status::Intact {
            return fail(
                u,
                format!("{} is {} in the input", o.path, o.status.as_str()),
            );
        }
        let Some(c) = out.objects.get(dest.as_str()) else {
            return fail(u, format!("{dest} missing from the output"));
        };
        if c.kind != o.kind {
            return fail(u, format!("{dest} is a {} in the output", c.kind.as_str()));
        }
        if let Err(e) = same_attributes(image, o, out_image, c) {
            return fail(u, format!("{dest}: {e}"));
        }
        let (Some(a), Some(b)) = (&o.dataset, &c.dataset) else {
            continue;
        };
        if a.dataspace.dims != b.dataspace.dims
            || normalized(&a.datatype) != normalized(&b.datatype)
        {
            return fail(u, format!("{dest}: shape or type differs"));
        }
        let same = crate::read::assemble(image, a)
            .map_err(|e| format!("{}: {e}", o.path))
            .and_then(|x| {
                let y = crate::read::assemble(out_image, b).map_err(|e| format!("{dest}: {e}"))?;
                same_values(image, &a.datatype, &x, out_image, &y)
                    .map_err(|e| format!("{dest}: {e}"))
            });
        if let Err(e) = same {
            return fail(u, e);
        }
    }
    Ok(())
}

/// Every attribute of the input object `o` is on its output counterpart
/// `c` with the same type, shape and value (the output's own
/// `h5salvage_*` marks aside).
fn same_attributes(
    image: &crate::follow::Image,
    o: &crate::inventory::Object,
    out_image: &crate::follow::Image,
    c: &crate::inventory::Object,
) -> Result<(), String> {
    // By name (the first of each): a scan per attribute was quadratic in
    // a header's attribute count.
    let mut theirs = HashMap::new();
    for b in &c.attributes {
        theirs.entry(b.name.as_str()).or_insert(b);
    }
    for a in &o.attributes {
        let Some(b) = theirs.get(a.name.as_str()) else {
            return Err(format!("attribute {:?} missing from the output", a.name));
        };
        let (Some(ta), Some(tb)) = (&a.message.datatype, &b.message.datatype) else {
            return Err(format!("attribute {:?}: datatype unknown", a.name));
        };
        let (Some(sa), Some(sb)) = (&a.message.dataspace, &b.message.dataspace) else {
            return Err(format!("attribute {:?}: dataspace unknown", a.name));
        };
        if sa.kind != sb.kind || sa.dims != sb.dims || normalized(ta) != normalized(tb) {
            return Err(format!("attribute {:?}: shape or type differs", a.name));
        }
        same_values(image, ta, &a.message.value, out_image, &b.message.value)
            .map_err(|e| format!("attribute {:?}: {e}", a.name))?;
    }
    Ok(())
}

/// Elements `x` of the input and `y` of the output (same datatype `t`)
/// hold the same values; variable-length values are compared as values.
fn same_values(
    image: &crate::follow::Image,
    t: &Datatype,
    x: &[u8],
    out_image: &crate::follow::Image,
    y: &[u8],
) -> Result<(), String> {
    if t.is_variable_length() {
        let vx = crate::read::vlen::resolve_vlen(image, t, x).map_err(|e| format!("input: {e}"))?;
        let vy =
            crate::read::vlen::resolve_vlen(out_image, t, y).map_err(|e| format!("output: {e}"))?;
        let len = usize::try_from(crate::format::global_heap::vlen_element_size(image.sizes))
            .unwrap_or(usize::MAX);
        if !crate::read::vlen::same_slots(&vx, &vy, len) {
            return Err("variable-length values differ".into());
        }
        // The bytes around the slots (fixed members of a compound) must be
        // equal too; the slots themselves hold heap addresses.
        let masked =
            |raw: &[u8], slots: &[crate::read::vlen::VlenSlot], img: &crate::follow::Image| {
                let len = usize::try_from(crate::format::global_heap::vlen_element_size(img.sizes))
                    .unwrap_or(usize::MAX);
                let mut m = raw.to_vec();
                for s in slots {
                    let end = s.offset.saturating_add(len).min(m.len());
                    if let Some(slot) = m.get_mut(s.offset..end) {
                        slot.fill(0);
                    }
                }
                m
            };
        if masked(x, &vx, image) != masked(y, &vy, out_image) {
            return Err("bytes differ".into());
        }
    } else if x != y {
        return Err("bytes differ".into());
    }
    Ok(())
}

/// The datatype without its message versions (the writer may encode the
/// same type with another version).
fn normalized(t: &Datatype) -> Datatype {
    let mut t = t.clone();
    strip_versions(&mut t);
    t
}

fn strip_versions(t: &mut Datatype) {
    t.version = 0;
    match &mut t.class {
        DatatypeClass::Compound { members } => {
            for m in members {
                strip_versions(&mut m.datatype);
            }
        }
        DatatypeClass::Enumeration { base, .. }
        | DatatypeClass::VariableLength { base, .. }
        | DatatypeClass::Array { base, .. }
        | DatatypeClass::Complex { base, .. } => strip_versions(base),
        _ => {}
    }
}

/// Moves inputs from which nothing was recovered into `dir`.
fn quarantine(dir: &Path, report: &mut MergeReport) {
    for ir in &mut report.inputs {
        if !matches!(ir.verdict, InputVerdict::Nothing | InputVerdict::Error) {
            continue;
        }
        let src = PathBuf::from(&ir.input);
        if !src.exists() {
            continue;
        }
        if let Err(e) = std::fs::create_dir_all(dir) {
            ir.action = Some(format!("kept: cannot create {}: {e}", dir.display()));
            continue;
        }
        let name = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "input".into());
        let mut dest = dir.join(&name);
        let mut n = 1u32;
        while dest.exists() && n < 10_000 {
            dest = dir.join(format!("{name}.{n}"));
            n = n.saturating_add(1);
        }
        ir.action = Some(match std::fs::rename(&src, &dest) {
            Ok(()) => format!("quarantined to {}", dest.display()),
            Err(e) => format!("kept: cannot move to {}: {e}", dest.display()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_below_their_unit_only() {
        assert_eq!(map_path("/a", "/a", "/x/a").as_deref(), Some("/x/a"));
        assert_eq!(map_path("/a/b", "/a", "/x/a").as_deref(), Some("/x/a/b"));
        assert_eq!(map_path("/ab", "/a", "/x/a"), None);
        assert_eq!(map_path("/", "/a", "/a"), None);
    }

    #[test]
    fn units_are_root_groups_and_lost_found_entries() {
        let mut inv = Inventory::default();
        let mut add = |p: &str, kind: ObjectKind, status: Status| {
            let mut o = crate::inventory::Object::new(p.into(), 0);
            o.kind = kind;
            o.status = status;
            inv.objects.push(o);
        };
        add("/", ObjectKind::Group, Status::Intact);
        add("/init", ObjectKind::Group, Status::Intact);
        add("/c1", ObjectKind::Group, Status::Intact);
        add("/c1/d", ObjectKind::Dataset, Status::Partial);
        add("/top_dataset", ObjectKind::Dataset, Status::Intact);
        add("/lost+found", ObjectKind::Group, Status::Intact);
        add(
            "/lost+found/group_at_0x10",
            ObjectKind::Group,
            Status::Intact,
        );
        add(
            "/lost+found/group_at_0x10/d",
            ObjectKind::Dataset,
            Status::Intact,
        );
        let u = units_of(&inv, "w1", &["init".to_string()]);
        let got: Vec<(&str, &str, Status)> = u
            .iter()
            .map(|u| (u.source.as_str(), u.dest.as_str(), u.quality))
            .collect();
        assert_eq!(
            got,
            [
                ("/c1", "/c1", Status::Partial),
                (
                    "/lost+found/group_at_0x10",
                    "/lost+found/w1/group_at_0x10",
                    Status::Intact
                ),
            ]
        );
    }

    #[test]
    fn intact_beats_partial_then_first_input_wins() {
        let unit = |q| Unit {
            source: "/c".into(),
            dest: "/c".into(),
            quality: q,
            marks: Vec::new(),
        };
        let mut plan = Plan::default();
        let absent = |_: &str| Ok(false);
        // a.h5 partial (deferred), b.h5 intact (written), c.h5 intact (not).
        assert!(!plan.offer(0, &unit(Status::Partial), &absent).unwrap());
        assert!(plan.offer(1, &unit(Status::Intact), &absent).unwrap());
        plan.written.insert("/c".into(), 1);
        assert!(!plan.offer(2, &unit(Status::Intact), &absent).unwrap());
        assert!(plan.late().is_empty());
        let scanned: Vec<Scanned> = ["a.h5", "b.h5", "c.h5"]
            .iter()
            .map(|n| Scanned::failed(Path::new(n), String::new()))
            .collect();
        let c = plan.conflicts(&scanned);
        assert_eq!(
            c,
            ["/c: copy from b.h5 (intact) kept; also in a.h5 (partial), c.h5 (intact)"]
        );
        // Only partial copies: the first is written at the end.
        let mut plan = Plan::default();
        assert!(!plan.offer(0, &unit(Status::Lost), &absent).unwrap());
        assert!(!plan.offer(1, &unit(Status::Partial), &absent).unwrap());
        assert!(!plan.offer(2, &unit(Status::Partial), &absent).unwrap());
        assert_eq!(plan.late().get(&1), Some(&vec!["/c".to_string()]));
        // Already in OUTPUT: never written.
        let mut plan = Plan::default();
        assert!(!plan.offer(0, &unit(Status::Intact), &|_| Ok(true)).unwrap());
        assert!(plan.present.contains("/c"));
    }
}

//! `write`: building the salvaged output file with libhdf5 (through the
//! `hdf5` crate's `hdf5-sys` bindings and its global library lock).
//!
//! A [`Writer`] builds one output file at a temporary path next to the
//! requested output and only renames it into place in [`Writer::finish`];
//! an unfinished writer removes its temporary file when dropped.
//!
//! To add to an existing output (`merge`), [`Writer::open_copy`] copies it
//! to that temporary path and opens the copy read-write; `finish(true)`
//! renames the copy over the output. The output is therefore replaced
//! atomically or not at all: a run killed at any moment leaves the previous
//! output exactly as it was (plus, at worst, a stale temporary file). The
//! price is a full copy of the output per run, in time and in disk space.
//!
//! Datasets are recreated from the parsed header messages (datatype,
//! dataspace, layout, filter pipeline, fill value) so that the copy has the
//! same type, shape, layout and filters; stored chunks are copied as they
//! are with `H5Dwrite_chunk` (no decompression, no recompression).
//! Writers take already-read bytes as plain arguments and do not depend on
//! the reading stage.

mod h5;
mod lock;
pub mod native;
mod shared;
mod types;
mod vds;

use std::collections::HashMap;
use std::ffi::c_void;
use std::fmt;
use std::path::{Path, PathBuf};

use hdf5::globals as g;
use hdf5_sys::h5i::hid_t;
use hdf5_sys::{h5a, h5d, h5f, h5l, h5o, h5p, h5s, h5t};

use crate::format::message::data_layout::LayoutClass;
use crate::format::message::dataspace::{Dataspace, DataspaceKind};
use crate::format::message::datatype::{CharacterSet, Datatype};
use crate::format::message::filter_pipeline::FLAG_OPTIONAL;
use crate::inventory::{CreationOrder, Dataset};
use crate::pipeline::Stamp;
use h5::{check, cstr, hid, locked, Hid, Kind};
pub use lock::{lock_path_for, LockError, OutputLock};
pub use shared::ReorderError;

/// Global heap values (variable-length data, region references) resolved
/// by the reading stage.
pub use crate::read::region::{RegionSlot, RegionValue};
pub use crate::read::vlen::VlenSlot;
pub use crate::read::HeapValues;

/// The linked libhdf5's version (major, minor, release): 2.0 and later
/// write the complex class, older ones get h5py's `{r, i}` compound.
pub fn libhdf5_version() -> (u32, u32, u32) {
    types::libversion()
}

/// A failed write: the object path, what was being done, and why
/// (libhdf5's error stack description where there is one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteError {
    pub path: String,
    pub action: String,
    pub message: String,
}

impl WriteError {
    pub fn new(path: &str, action: &str, message: impl Into<String>) -> WriteError {
        WriteError {
            path: path.to_string(),
            action: action.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.path, self.action, self.message)
    }
}

impl std::error::Error for WriteError {}

/// The flags a filter is written with, and the note saying why they
/// changed: a filter this libhdf5 cannot apply (`H5Zfilter_avail`), marked
/// mandatory, is recorded as optional, so that its chunks, copied as
/// stored, stay readable where it is available. Both backends write it
/// so (spec IV.A.2.l, flags bit 0).
pub(crate) fn filter_flags(
    f: &crate::format::message::filter_pipeline::Filter,
    path: &str,
) -> (u16, Option<String>) {
    let avail = locked(|| unsafe { hdf5_sys::h5z::H5Zfilter_avail(i32::from(f.id)) });
    if avail > 0 || f.flags & FLAG_OPTIONAL != 0 {
        return (f.flags, None);
    }
    (
        f.flags | FLAG_OPTIONAL,
        Some(format!(
            "{path}: filter {} is not available here; recorded as optional",
            f.describe()
        )),
    )
}

/// What allocating `ds` at its creation (early allocation) costs, in
/// bytes: its whole contiguous extent, or every chunk of its current
/// extent (spec III.A.1, IV.A.2.i), each chunk counted as at least
/// [`EARLY_CHUNK_COST`] (its index entry and libhdf5's work for it, which
/// do not shrink with the chunk); `None` above 2^64.
fn early_bytes(ds: &Dataset) -> Option<u64> {
    match &ds.layout.class {
        LayoutClass::Contiguous { .. } => ds.data_bytes(),
        LayoutClass::Chunked { dims, .. } => {
            let chunks = ds
                .dataspace
                .dims
                .iter()
                .zip(dims)
                .try_fold(1u64, |a, (n, c)| a.checked_mul(n.div_ceil((*c).max(1))))?;
            chunks.checked_mul(ds.chunk_bytes(dims)?.max(EARLY_CHUNK_COST))
        }
        _ => Some(0),
    }
}

/// Least cost of one early-allocated chunk (see [`early_bytes`]).
const EARLY_CHUNK_COST: u64 = 4096;

/// One output file being built.
pub struct Writer {
    file: Option<Hid>,
    tmp: PathBuf,
    output: PathBuf,
    refs: HashMap<u64, String>,
    /// Source committed datatype header address -> its path in the output
    /// (see `shared.rs`).
    committed: HashMap<u64, String>,
    /// Values written in a degraded form (see [`Writer::take_notes`]).
    notes: Vec<String>,
    /// Types written in another form than the input's, with the same bytes
    /// (a complex type as h5py's `{r, i}` compound): notes for the report
    /// ([`Writer::take_type_notes`]), and the lines of each object's
    /// `h5salvage_type_note` so far.
    type_notes: Vec<String>,
    type_marks: HashMap<String, Vec<String>>,
    /// Where the paths of the input being written go in the output, as
    /// (source, destination) pairs of the units `merge` copies, for the
    /// sources of virtual datasets in the same file (see `vds.rs`); `None`:
    /// every path keeps its name (`salvage`).
    same_file_units: Option<Vec<(String, String)>>,
    /// The upper libver bound the file was opened with (1.8 for a new
    /// output, latest for a copy), restored after a virtual dataset.
    libver_high: h5f::H5F_libver_t,
    /// The most recently opened dataset (chunk copies come in runs).
    open: Option<(String, Hid)>,
    /// Groups kept open (most recent last, at most [`OPEN_GROUPS`]): new
    /// objects are created in their parent by link name and attributes are
    /// written on the open object, so libhdf5 does not traverse the path
    /// again for every call (bench/PROFILE.md).
    open_groups: Vec<(String, Hid)>,
    /// Memory types built for the parsed datatypes written so far (at most
    /// [`TYPE_CACHE`]): most objects of a file share a few types.
    built_types: Vec<(Datatype, types::Built)>,
    /// One transfer property list for every write (its buffer size set per
    /// write), and the string type and scalar space of marks.
    xfer: Option<Hid>,
    mark_type: Option<(Hid, Hid)>,
    /// Groups known to exist (created or checked): deep paths are not
    /// re-checked level by level on every call.
    groups: std::collections::HashSet<String>,
    /// What region references may still cost libhdf5 in this output.
    region_budget: u64,
    /// The output this writer's copy was made from ([`Writer::open_copy`]):
    /// it must still be there, unchanged, when the copy replaces it.
    base: Option<Stamp>,
    /// The native backend (`native/`), while it writes this output: every
    /// call goes there and `file` is `None` (see [`Writer::create_for`]).
    native: Option<Box<native::NativeWriter>>,
    /// Creation property lists every libhdf5 object shares (see
    /// [`Plists`]), made at first use.
    plists: Option<Plists>,
    /// Output paths whose link name takes the other character set than its
    /// bytes suggest ([`Writer::other_charset`]).
    other_charset: std::collections::HashSet<String>,
    /// The input's user block, written before the superblock by
    /// [`Writer::finish`] (empty: none).
    user_block: Vec<u8>,
    /// Objects whose input header times libhdf5 could not write: how many,
    /// and the first path ([`Writer::take_times_not_kept`]).
    times_not_kept: Option<(u64, String)>,
    /// Groups to create as symbol-table groups
    /// ([`Writer::symbol_table_groups`]), and those created so.
    symbol_tables: std::collections::HashSet<String>,
    old_style: std::collections::HashSet<String>,
    /// Most bytes a dataset may have allocated when it is created
    /// ([`Writer::limit_early_allocation`]).
    early_limit: u64,
}

/// What a new output takes from its input at the file level.
#[derive(Clone, Copy, Debug, Default)]
pub struct Root<'a> {
    /// The root group's link and attribute creation order.
    pub links: CreationOrder,
    pub attrs: CreationOrder,
    /// The input's bytes before its superblock (empty, or 512, 1024, ...
    /// bytes), written before the output's superblock.
    pub user_block: &'a [u8],
    /// The root holds a soft link whose target is above 64 KiB: it must be
    /// a symbol-table group ([`Writer::symbol_table_groups`]).
    pub symbol_table: bool,
}

/// Property lists shared by the objects libhdf5 creates: groups, datasets
/// and committed datatypes without header times (libhdf5 can only stamp
/// the time of writing, which would be invented: spec IV.A.1.b flag bit
/// 5), links and attributes whose names are UTF-8 (H5Pset_char_encoding).
struct Plists {
    gcpl: Hid,
    tcpl: Hid,
    lcpl_utf8: Hid,
    acpl_utf8: Hid,
}

impl Plists {
    fn new(shown: &str) -> Result<Plists, WriteError> {
        let make = |class: hid_t, what: &str| {
            hid(
                locked(|| unsafe { h5p::H5Pcreate(class) }),
                Kind::Plist,
                shown,
                what,
            )
        };
        let gcpl = make(*g::H5P_GROUP_CREATE, "H5Pcreate(group create)")?;
        no_times(gcpl.id(), shown)?;
        let tcpl = make(*g::H5P_DATATYPE_CREATE, "H5Pcreate(datatype create)")?;
        no_times(tcpl.id(), shown)?;
        let lcpl_utf8 = make(*g::H5P_LINK_CREATE, "H5Pcreate(link create)")?;
        utf8_names(lcpl_utf8.id(), shown)?;
        let acpl_utf8 = make(*g::H5P_ATTRIBUTE_CREATE, "H5Pcreate(attribute create)")?;
        utf8_names(acpl_utf8.id(), shown)?;
        Ok(Plists {
            gcpl,
            tcpl,
            lcpl_utf8,
            acpl_utf8,
        })
    }
}

/// Object creation list `plist` stores no header times.
fn no_times(plist: hid_t, shown: &str) -> Result<(), WriteError> {
    locked(|| unsafe {
        check(
            h5p::H5Pset_obj_track_times(plist, 0),
            shown,
            "H5Pset_obj_track_times",
        )
    })?;
    Ok(())
}

/// Link or attribute creation list `plist` gives names the UTF-8
/// character set.
fn utf8_names(plist: hid_t, shown: &str) -> Result<(), WriteError> {
    locked(|| unsafe {
        check(
            h5p::H5Pset_char_encoding(plist, h5t::H5T_cset_t::H5T_CSET_UTF8),
            shown,
            "H5Pset_char_encoding",
        )
    })?;
    Ok(())
}

/// Whether the link name at the end of `path` is UTF-8: when it is not
/// ASCII, unless `other` (the input's link said the other set).
fn utf8_name(name: &str, other: bool) -> bool {
    // Not ASCII, unless other; ASCII, if other.
    name.is_ascii() == other
}

/// False when `H5SALVAGE_WRITER=libhdf5` asks for the libhdf5 backend only.
pub fn native_enabled() -> bool {
    std::env::var("H5SALVAGE_WRITER").map_or(true, |v| v != "libhdf5")
}

/// Open groups a writer keeps (see `Writer::open_groups`).
const OPEN_GROUPS: usize = 8;
/// Built memory types a writer keeps (see `Writer::built_types`).
const TYPE_CACHE: usize = 32;

/// Sets the type-conversion buffer of transfer property list `xfer` to fit
/// a write of `bytes`: libhdf5 1.10 otherwise allocates and zeroes 1 MiB
/// for every H5Dwrite that converts, which dominated salvage time
/// (bench/PROFILE.md).
fn size_transfer_buffer(xfer: hid_t, path: &str, bytes: usize) -> Result<(), WriteError> {
    let size = bytes.clamp(1, 1 << 20);
    locked(|| unsafe {
        check(
            h5p::H5Pset_buffer(xfer, size, std::ptr::null_mut(), std::ptr::null_mut()),
            path,
            "H5Pset_buffer",
        )
    })?;
    Ok(())
}

/// Creates attribute `name` on the open object `obj` with type `tid` and
/// space `sid`, deleting an attribute of that name first (attributes and
/// marks replace what is there).
fn replace_attribute(
    obj: hid_t,
    name: &std::ffi::CStr,
    (tid, sid, acpl): (hid_t, hid_t, hid_t),
    where_: &str,
) -> Result<Hid, WriteError> {
    let exists = locked(|| unsafe { h5a::H5Aexists(obj, name.as_ptr()) });
    if check(exists, where_, "H5Aexists")? > 0 {
        locked(|| unsafe { check(h5a::H5Adelete(obj, name.as_ptr()), where_, "H5Adelete") })?;
    }
    hid(
        locked(|| unsafe { h5a::H5Acreate2(obj, name.as_ptr(), tid, sid, acpl, h5p::H5P_DEFAULT) }),
        Kind::Attribute,
        where_,
        "H5Acreate2",
    )
}

/// `H5P_CRT_ORDER_*` flags for `order` (indexed only with tracked, as
/// libhdf5 requires).
fn order_flags(order: CreationOrder) -> u32 {
    match (order.tracked, order.indexed) {
        (false, _) => 0,
        (true, false) => h5p::H5P_CRT_ORDER_TRACKED,
        (true, true) => h5p::H5P_CRT_ORDER_TRACKED | h5p::H5P_CRT_ORDER_INDEXED,
    }
}

/// Sets link (`links`, groups and files only) and attribute creation
/// order on an object creation property list.
fn set_orders(
    plist: hid_t,
    links: Option<CreationOrder>,
    attrs: CreationOrder,
    path: &str,
) -> Result<(), WriteError> {
    locked(|| unsafe {
        if let Some(l) = links.filter(|l| l.tracked) {
            check(
                h5p::H5Pset_link_creation_order(plist, order_flags(l)),
                path,
                "H5Pset_link_creation_order",
            )?;
        }
        if attrs.tracked {
            check(
                h5p::H5Pset_attr_creation_order(plist, order_flags(attrs)),
                path,
                "H5Pset_attr_creation_order",
            )?;
        }
        Ok(())
    })
}

fn io_err(path: &Path, action: &str, e: std::io::Error) -> WriteError {
    WriteError::new(&path.display().to_string(), action, e.to_string())
}

/// `.{file_name}{suffix}` in the directory of `output`.
fn beside(output: &Path, suffix: &str) -> Result<PathBuf, WriteError> {
    let shown = output.display().to_string();
    let name = output
        .file_name()
        .ok_or_else(|| WriteError::new(&shown, "create", "output path has no file name"))?;
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(dir.join(format!(".{}{suffix}", name.to_string_lossy())))
}

/// `.{file_name}.h5salvage-tmp-{pid}` in the directory of `output`.
fn temp_path_for(output: &Path) -> Result<PathBuf, WriteError> {
    beside(output, &format!(".h5salvage-tmp-{}", std::process::id()))
}

/// Removes temporary files that killed writers left beside `output`
/// (`.{name}.h5salvage-tmp-{pid}` whose process is gone; Linux `/proc`
/// only, elsewhere nothing is removed). Returns one note per file removed.
pub fn remove_stale_temps(output: &Path) -> Vec<String> {
    let mut notes = Vec::new();
    let (Some(name), true) = (output.file_name(), Path::new("/proc/self").exists()) else {
        return notes;
    };
    let prefix = format!(".{}.h5salvage-tmp-", name.to_string_lossy());
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return notes;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = file.strip_prefix(&prefix) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if std::fs::remove_file(e.path()).is_ok() {
            notes.push(format!(
                "removed {}, left by an interrupted run",
                e.path().display()
            ));
        }
    }
    notes
}

/// Copies `from` to `to`, which must not exist yet; a failed copy removes
/// the partial `to`. Returns the stamp of `from`, which must not change
/// while it is copied.
fn copy_new(from: &Path, to: &Path) -> Result<Stamp, WriteError> {
    let mut src = std::fs::File::open(from).map_err(|e| io_err(from, "open", e))?;
    let before = src
        .metadata()
        .map(|m| Stamp::of(&m))
        .map_err(|e| io_err(from, "stat", e))?;
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(|e| io_err(to, "create", e))?;
    if let Err(e) = std::io::copy(&mut src, &mut dst).and_then(|_| dst.sync_all()) {
        drop(dst);
        let _ = std::fs::remove_file(to);
        return Err(io_err(to, "copy", e));
    }
    let after = src.metadata().map(|m| Stamp::of(&m)).ok();
    if after != Some(before) {
        drop(dst);
        let _ = std::fs::remove_file(to);
        return Err(WriteError::new(
            &from.display().to_string(),
            "copy",
            "changed by another process while it was copied",
        ));
    }
    Ok(before)
}

/// A file access property list: libver bounds (`low`, 1.8 or latest high)
/// and strong close degree.
fn file_access(shown: &str, high: h5f::H5F_libver_t) -> Result<Hid, WriteError> {
    let fapl = hid(
        locked(|| unsafe { h5p::H5Pcreate(*g::H5P_FILE_ACCESS) }),
        Kind::Plist,
        shown,
        "H5Pcreate(file access)",
    )?;
    locked(|| unsafe {
        // 1.8 object headers: attributes of any size (dense storage),
        // readable by every HDF5 since 1.8.
        check(
            h5p::H5Pset_libver_bounds(fapl.id(), h5f::H5F_libver_t::H5F_LIBVER_V18, high),
            shown,
            "H5Pset_libver_bounds",
        )?;
        check(
            h5p::H5Pset_fclose_degree(fapl.id(), h5f::H5F_close_degree_t::H5F_CLOSE_STRONG),
            shown,
            "H5Pset_fclose_degree",
        )?;
        cap_metadata_cache(fapl.id(), shown)
    })?;
    Ok(fapl)
}

/// Upper bound of the output's metadata cache. The cache counts an entry
/// by its size on disk, but an object header entry holds its decoded
/// messages (each attribute with its own dataspace and datatype), several
/// times that: with libhdf5's default (2 MiB, growing to 32 MiB) nearly
/// every header written stayed cached, and a salvage's memory grew with
/// the number of objects. 256 KiB: no slower in `bench/run`'s salvage and
/// merge (bench/PROFILE.md, issue 15).
const METADATA_CACHE_MAX: usize = 256 << 10;

/// Caps the metadata cache of files opened with `fapl` at
/// [`METADATA_CACHE_MAX`] (the rest of libhdf5's default configuration is
/// kept).
///
/// # Safety
/// `fapl` is a live file access property list; the caller holds the
/// libhdf5 lock.
unsafe fn cap_metadata_cache(fapl: hid_t, shown: &str) -> Result<(), WriteError> {
    let mut cfg = hdf5_sys::h5ac::H5AC_cache_config_t {
        version: hdf5_sys::h5ac::H5AC__CURR_CACHE_CONFIG_VERSION,
        ..Default::default()
    };
    check(
        h5p::H5Pget_mdc_config(fapl, &mut cfg),
        shown,
        "H5Pget_mdc_config",
    )?;
    cfg.max_size = METADATA_CACHE_MAX;
    cfg.initial_size = cfg.initial_size.min(cfg.max_size);
    cfg.min_size = cfg.min_size.min(cfg.initial_size);
    check(
        h5p::H5Pset_mdc_config(fapl, &cfg),
        shown,
        "H5Pset_mdc_config",
    )?;
    Ok(())
}

/// True when every link along the absolute `path` exists in file `fid`
/// (checked level by level: libhdf5 fails on a missing intermediate group).
fn path_exists(fid: hid_t, path: &str) -> Result<bool, WriteError> {
    let mut cur = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        cur.push('/');
        cur.push_str(part);
        let c = cstr(&cur, path, "exists")?;
        let rc = locked(|| unsafe { h5l::H5Lexists(fid, c.as_ptr(), h5p::H5P_DEFAULT) });
        if check(rc, &cur, "H5Lexists")? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The group `path` is in ("/" for a top-level path).
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => path.get(..i).unwrap_or("/"),
    }
}

fn check_path(path: &str) -> Result<(), WriteError> {
    if !path.starts_with('/') {
        return Err(WriteError::new(
            path,
            "path",
            "object paths must be absolute",
        ));
    }
    Ok(())
}

/// Marks the descriptor libhdf5 opened for `file` close-on-exec. libhdf5
/// opens without `O_CLOEXEC` and holds its `flock` on that descriptor: a
/// child started meanwhile by another thread would inherit it and keep the
/// output locked after the writer closed it, so that a later reader takes
/// the output for a file still open for writing.
fn close_on_exec(file: hid_t) {
    let mut handle: *mut c_void = std::ptr::null_mut();
    let got = locked(|| unsafe { h5f::H5Fget_vfd_handle(file, h5p::H5P_DEFAULT, &mut handle) });
    if got < 0 || handle.is_null() {
        return;
    }
    // SAFETY: the sec2 driver's handle is a pointer to its int descriptor.
    let fd = unsafe { *handle.cast::<libc::c_int>() };
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

impl Writer {
    /// Creates the output at a temporary path next to `output` (same
    /// directory, name `.{file_name}.h5salvage-tmp-{pid}`), never touching
    /// `output` itself. Fails if that temporary file already exists.
    pub fn create(output: &Path) -> Result<Writer, WriteError> {
        Writer::create_ordered(output, Root::default())
    }

    /// [`Writer::create`], with the root group tracking (and indexing)
    /// link and attribute creation order as `root` gives, its user block
    /// and, if asked, a symbol-table root group.
    pub fn create_ordered(output: &Path, root: Root) -> Result<Writer, WriteError> {
        let Root {
            links,
            attrs,
            user_block,
            ..
        } = root;
        let old_root = root.symbol_table && !links.tracked;
        let shown = output.display().to_string();
        let tmp = temp_path_for(output)?;
        let tmp_str = tmp
            .to_str()
            .ok_or_else(|| WriteError::new(&shown, "create", "path is not valid UTF-8"))?;
        let c = cstr(tmp_str, &shown, "create")?;
        // libhdf5 reports every failure to create as "unable to open file":
        // creating the file once here first gives the system's reason
        // (permission denied, read-only file system, no such directory).
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| WriteError::new(tmp_str, "create", e.to_string()))?;
        std::fs::remove_file(&tmp)
            .map_err(|e| WriteError::new(tmp_str, "create", e.to_string()))?;
        let fapl = file_access(&shown, h5f::H5F_libver_t::H5F_LIBVER_V18)?;
        if old_root {
            // The root group is made when the file is: a symbol-table root
            // needs the earliest lower bound then (set back to 1.8 below).
            locked(|| unsafe {
                check(
                    h5p::H5Pset_libver_bounds(
                        fapl.id(),
                        h5f::H5F_libver_t::H5F_LIBVER_EARLIEST,
                        h5f::H5F_libver_t::H5F_LIBVER_V18,
                    ),
                    &shown,
                    "H5Pset_libver_bounds(earliest)",
                )
            })?;
        }
        let fcpl = hid(
            locked(|| unsafe { h5p::H5Pcreate(*g::H5P_FILE_CREATE) }),
            Kind::Plist,
            &shown,
            "H5Pcreate(file create)",
        )?;
        set_orders(fcpl.id(), Some(links), attrs, &shown)?;
        // The root group's header: no times (see `Plists`).
        no_times(fcpl.id(), &shown)?;
        check_user_block(user_block, &shown)?;
        if !user_block.is_empty() {
            locked(|| unsafe {
                check(
                    h5p::H5Pset_userblock(fcpl.id(), user_block.len() as u64),
                    &shown,
                    "H5Pset_userblock",
                )
            })?;
        }
        let file = hid(
            locked(|| unsafe {
                h5f::H5Fcreate(c.as_ptr(), h5f::H5F_ACC_EXCL, fcpl.id(), fapl.id())
            }),
            Kind::File,
            tmp_str,
            "H5Fcreate",
        )?;
        let mut w = Writer::new(file, tmp, output);
        w.user_block = user_block.to_vec();
        if old_root {
            let fid = w.fid("/")?;
            w.set_low_bound(fid, h5f::H5F_libver_t::H5F_LIBVER_V18, "/")?;
            w.old_style.insert("/".to_string());
        }
        Ok(w)
    }

    /// Copies the existing `output` to the temporary path beside it and
    /// opens the copy read-write: objects are added to the copy, and
    /// [`Writer::finish`]`(true)` renames it over `output` when complete.
    /// Until then `output` is untouched, so a run killed at any moment
    /// leaves it as it was (at the cost of one full copy of `output`).
    pub fn open_copy(output: &Path) -> Result<Writer, WriteError> {
        let shown = output.display().to_string();
        let tmp = temp_path_for(output)?;
        let tmp_str = tmp
            .to_str()
            .ok_or_else(|| WriteError::new(&shown, "open copy", "path is not valid UTF-8"))?;
        let base = copy_new(output, &tmp)?;
        let c = cstr(tmp_str, &shown, "open copy")?;
        let opened = file_access(&shown, h5f::H5F_LIBVER_LATEST).and_then(|fapl| {
            hid(
                locked(|| unsafe { h5f::H5Fopen(c.as_ptr(), h5f::H5F_ACC_RDWR, fapl.id()) }),
                Kind::File,
                &shown,
                "H5Fopen(read-write copy)",
            )
        });
        match opened {
            Ok(file) => {
                let mut w = Writer::new(file, tmp, output);
                w.base = Some(base);
                w.libver_high = h5f::H5F_LIBVER_LATEST;
                Ok(w)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    fn new(file: Hid, tmp: PathBuf, output: &Path) -> Writer {
        close_on_exec(file.id());
        let mut w = Writer::fileless(tmp, output);
        w.file = Some(file);
        w
    }

    /// A new output as [`Writer::create_ordered`] makes it, written by the
    /// native backend (`native/`) until an input it does not take arrives
    /// ([`Writer::accept`]); `H5SALVAGE_WRITER=libhdf5` writes it with
    /// libhdf5 from the start.
    /// An input whose root must be a symbol-table group (`root.
    /// symbol_table`) is written by libhdf5 from the start.
    pub fn create_for(output: &Path, root: Root) -> Result<Writer, WriteError> {
        if !native_enabled() || root.symbol_table {
            return Writer::create_ordered(output, root);
        }
        let shown = output.display().to_string();
        check_user_block(root.user_block, &shown)?;
        let tmp = temp_path_for(output)?;
        let n = native::NativeWriter::create(
            &tmp,
            &shown,
            root.links,
            root.attrs,
            root.user_block.len() as u64,
        )?;
        let mut w = Writer::fileless(tmp, output);
        w.native = Some(Box::new(n));
        w.user_block = root.user_block.to_vec();
        Ok(w)
    }

    /// A writer without a file (the native backend holds it).
    fn fileless(tmp: PathBuf, output: &Path) -> Writer {
        Writer {
            file: None,
            tmp,
            output: output.to_path_buf(),
            refs: HashMap::new(),
            committed: HashMap::new(),
            notes: Vec::new(),
            type_notes: Vec::new(),
            type_marks: HashMap::new(),
            same_file_units: None,
            libver_high: h5f::H5F_libver_t::H5F_LIBVER_V18,
            open: None,
            open_groups: Vec::new(),
            built_types: Vec::new(),
            xfer: None,
            mark_type: None,
            groups: std::collections::HashSet::new(),
            region_budget: types::MAX_REGION_TOTAL,
            base: None,
            native: None,
            plists: None,
            other_charset: std::collections::HashSet::new(),
            user_block: Vec::new(),
            times_not_kept: None,
            symbol_tables: std::collections::HashSet::new(),
            old_style: std::collections::HashSet::new(),
            early_limit: u64::MAX,
        }
    }

    /// Datasets allocated early (fill value message, spec IV.A.2.f:
    /// allocation time 1) have their whole extent allocated, and filled,
    /// when they are created, by libhdf5 and by the native writer alike:
    /// above `bytes` the allocation time is not kept (libhdf5's default for
    /// the layout instead, with a note). Principle 4: the extent is the
    /// input's, 2^40 elements cost 2^40 bytes or more.
    pub fn limit_early_allocation(&mut self, bytes: u64) {
        self.early_limit = bytes;
    }

    /// `ds` with the allocation time libhdf5 defaults to for its layout
    /// when an early allocation would pass [`Writer::limit_early_allocation`]
    /// (and a note saying so); `None` to create `ds` as it is.
    fn early_allocation_capped(&mut self, path: &str, ds: &Dataset) -> Option<Dataset> {
        use crate::format::message::fill_value::alloc_time;
        let f = ds.fill_value.as_ref()?;
        let default = match ds.layout.class {
            LayoutClass::Contiguous { .. } => alloc_time::LATE,
            LayoutClass::Chunked { .. } => alloc_time::INCREMENTAL,
            _ => return None,
        };
        if f.space_allocation_time != alloc_time::EARLY {
            return None;
        }
        let bytes = early_bytes(ds);
        if bytes.is_some_and(|b| b <= self.early_limit) {
            return None;
        }
        self.notes.push(format!(
            "{path}: space allocation time 'early' not kept: it would allocate {} of the \
             output when the dataset is created (a chunk counted as at least \
             {EARLY_CHUNK_COST} bytes), above the limit of {} bytes; written with \
             libhdf5's default for the layout ({}), so storage is allocated only where \
             data is written",
            bytes.map_or("more than 2^64 bytes".to_string(), |b| format!("{b} bytes")),
            self.early_limit,
            if default == alloc_time::LATE {
                "late"
            } else {
                "incremental"
            }
        ));
        let mut capped = ds.clone();
        if let Some(f) = capped.fill_value.as_mut() {
            f.space_allocation_time = default;
        }
        Some(capped)
    }

    /// Output groups that hold a soft link whose target is longer than a
    /// link message holds (65535 bytes, spec IV.A.2.g): libhdf5 creates
    /// them as symbol-table groups (spec IV.A.2.r), whose local heap keeps
    /// the whole target, unless they track link creation order (which
    /// needs link messages). Must be called before they are created.
    pub fn symbol_table_groups(&mut self, paths: impl IntoIterator<Item = String>) {
        self.symbol_tables.extend(paths);
    }

    /// Sets the output's lower libver bound (1.8 otherwise, see
    /// [`file_access`]): the earliest only while a symbol-table group is
    /// created.
    fn set_low_bound(
        &self,
        fid: hid_t,
        low: h5f::H5F_libver_t,
        path: &str,
    ) -> Result<(), WriteError> {
        locked(|| unsafe {
            check(
                vds::H5Fset_libver_bounds(fid, low, self.libver_high),
                path,
                "H5Fset_libver_bounds",
            )
        })?;
        Ok(())
    }

    /// The shared creation property lists (made at first use).
    fn plists(&mut self, shown: &str) -> Result<&Plists, WriteError> {
        if self.plists.is_none() {
            self.plists = Some(Plists::new(shown)?);
        }
        Ok(self.plists.as_ref().expect("made above"))
    }

    /// The link creation list for a new link at `path`: its name's
    /// character set ([`Writer::other_charset`]).
    fn lcpl(&mut self, path: &str) -> Result<hid_t, WriteError> {
        let name = path.rsplit('/').next().unwrap_or_default();
        if utf8_name(name, self.other_charset.contains(path)) {
            Ok(self.plists(path)?.lcpl_utf8.id())
        } else {
            Ok(h5p::H5P_DEFAULT)
        }
    }

    /// Output paths whose link name has the other character set than its
    /// bytes suggest (the input's link says so: `Object::
    /// other_charset_names`): ASCII for a non-ASCII name, UTF-8 for an
    /// ASCII one. Every other name is written UTF-8 when it is not ASCII.
    pub fn other_charset(&mut self, paths: impl IntoIterator<Item = String>) {
        for p in paths {
            if let Some(n) = self.native.as_mut() {
                n.other_charset(&p);
            }
            self.other_charset.insert(p);
        }
    }

    /// True while the native backend writes this output.
    pub fn is_native(&self) -> bool {
        self.native.is_some()
    }

    /// Called before the objects of `inv` are written: an input the native
    /// backend does not take ([`native::supports`]) moves the output to
    /// libhdf5 (what was written so far is completed as a file and opened
    /// read-write). Returns why, when it moved.
    pub fn accept(
        &mut self,
        inv: &crate::inventory::Inventory,
    ) -> Result<Option<String>, WriteError> {
        if self.native.is_none() {
            return Ok(None);
        }
        let Err(why) = native::supports(inv) else {
            native::log(&format!("native: {}", inv.file));
            return Ok(None);
        };
        native::log(&format!("libhdf5 from {}: {why}", inv.file));
        self.move_to_libhdf5()?;
        Ok(Some(why))
    }

    /// Nothing more will be written to the object at `path` (its
    /// attributes, data and, for a group, members all written): the native
    /// backend writes its header now and keeps only its address
    /// ([`native::NativeWriter::seal`]); libhdf5 has nothing to do.
    pub fn seal(&mut self, path: &str) -> Result<(), WriteError> {
        match self.native.as_mut() {
            Some(n) => n.seal(path),
            None => Ok(()),
        }
    }

    /// Objects whose header the native backend still holds (0 for
    /// libhdf5).
    pub fn unsealed(&self) -> usize {
        self.native.as_ref().map_or(0, |n| n.unsealed())
    }

    /// False when `path` is a group sealed by the native backend (no link
    /// can be added to it) or none.
    pub fn open_group(&self, path: &str) -> bool {
        self.native.as_ref().is_none_or(|n| n.open_group(path))
    }

    /// Completes the native backend's file and continues it with libhdf5.
    fn move_to_libhdf5(&mut self) -> Result<(), WriteError> {
        let Some(n) = self.native.take() else {
            return Ok(());
        };
        n.finish()?;
        let shown = self.output.display().to_string();
        let tmp_str = self
            .tmp
            .to_str()
            .ok_or_else(|| WriteError::new(&shown, "open", "path is not valid UTF-8"))?;
        let c = cstr(tmp_str, &shown, "open")?;
        let fapl = file_access(&shown, h5f::H5F_libver_t::H5F_LIBVER_V18)?;
        let file = hid(
            locked(|| unsafe { h5f::H5Fopen(c.as_ptr(), h5f::H5F_ACC_RDWR, fapl.id()) }),
            Kind::File,
            &shown,
            "H5Fopen(native output)",
        )?;
        close_on_exec(file.id());
        self.file = Some(file);
        Ok(())
    }

    /// True when every link along `path` exists in the output ("/" always
    /// does); an error when libhdf5 cannot tell.
    pub fn exists(&self, path: &str) -> Result<bool, WriteError> {
        if let Some(n) = &self.native {
            check_path(path)?;
            return Ok(n.exists(path));
        }
        check_path(path)?;
        path_exists(self.fid(path)?, path)
    }

    /// The temporary file being written.
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Source object header address -> path in the output, used to
    /// translate object references when they are written. Targets must
    /// already exist in the output when a reference to them is written.
    pub fn set_reference_map(&mut self, map: HashMap<u64, String>) {
        self.refs = map;
    }

    /// Removes the object at source address `addr` from the reference map
    /// (it could not be written: references to it become null, said).
    pub fn forget_reference(&mut self, addr: u64) {
        self.refs.remove(&addr);
    }

    /// Notes about values written in a degraded form (null references,
    /// missing variable-length values, forced-optional filters, ...).
    pub fn take_notes(&mut self) -> Vec<String> {
        if let Some(n) = self.native.as_mut() {
            self.notes.extend(n.take_notes());
        }
        std::mem::take(&mut self.notes)
    }

    /// Notes about types written in another form, with the same bytes (a
    /// complex type as h5py's `{r, i}` compound, said on the object in
    /// `h5salvage_type_note`): worth knowing, nothing lost.
    pub fn take_type_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.type_notes)
    }

    /// Records that `dt`, just written at `path` (or as its attribute
    /// `attr`), took another form than the input's, if it did: a report
    /// note and a line of the object's `h5salvage_type_note` (an attribute
    /// cannot carry one: its owner does, naming it).
    fn note_type(
        &mut self,
        path: &str,
        attr: Option<&str>,
        dt: &Datatype,
    ) -> Result<(), WriteError> {
        let Some(note) = types::complex_substitute_note(dt) else {
            return Ok(());
        };
        let note = match attr {
            Some(a) => format!("attribute {a:?}: {note}"),
            None => note,
        };
        let lines = self.type_marks.entry(path.to_string()).or_default();
        if !lines.contains(&note) {
            lines.push(note.clone());
        }
        let text = lines.join("\n");
        self.mark(path, "h5salvage_type_note", &text)?;
        self.type_notes.push(note);
        Ok(())
    }

    fn fid(&self, path: &str) -> Result<i64, WriteError> {
        self.file
            .as_ref()
            .map(Hid::id)
            .ok_or_else(|| WriteError::new(path, "write", "the output file is closed"))
    }

    /// The group at `path`, kept open (opened by path on a miss).
    fn group_id(&mut self, path: &str) -> Result<hid_t, WriteError> {
        if let Some(i) = self.open_groups.iter().position(|(p, _)| p == path) {
            let entry = self.open_groups.remove(i);
            let id = entry.1.id();
            self.open_groups.push(entry);
            return Ok(id);
        }
        let fid = self.fid(path)?;
        let c = cstr(path, path, "open group")?;
        let h = hid(
            locked(|| unsafe { hdf5_sys::h5g::H5Gopen2(fid, c.as_ptr(), h5p::H5P_DEFAULT) }),
            Kind::Group,
            path,
            "H5Gopen2",
        )?;
        let id = h.id();
        self.keep_group(path, h);
        Ok(id)
    }

    fn keep_group(&mut self, path: &str, h: Hid) {
        if self.open_groups.len() >= OPEN_GROUPS {
            self.open_groups.remove(0);
        }
        self.open_groups.push((path.to_string(), h));
    }

    /// Where the link `path` is created: its parent group (kept open) and
    /// its name in it. A path whose last component is empty goes by its
    /// absolute path from the file.
    fn location(&mut self, path: &str) -> Result<(hid_t, std::ffi::CString), WriteError> {
        let leaf = path.rsplit('/').next().unwrap_or_default();
        if leaf.is_empty() || leaf == "." {
            return Ok((self.fid(path)?, cstr(path, path, "link name")?));
        }
        let gid = self.group_id(parent_of(path))?;
        Ok((gid, cstr(leaf, path, "link name")?))
    }

    /// The object at `path` for attribute calls: the open dataset or group
    /// of that path, else opened by path (groups and datasets then kept
    /// open; anything else is returned to be closed by the caller). Errors
    /// name `shown`.
    fn object(&mut self, path: &str, shown: &str) -> Result<(hid_t, Option<Hid>), WriteError> {
        if let Some(id) = self.open_id(path) {
            return Ok((id, None));
        }
        if self.open_groups.iter().any(|(p, _)| p == path) {
            return Ok((self.group_id(path)?, None));
        }
        let fid = self.fid(shown)?;
        let c = cstr(path, shown, "open object")?;
        let o = hid(
            locked(|| unsafe { h5o::H5Oopen(fid, c.as_ptr(), h5p::H5P_DEFAULT) }),
            Kind::Object,
            shown,
            "H5Oopen",
        )?;
        let id = o.id();
        match locked(|| unsafe { hdf5_sys::h5i::H5Iget_type(id) }) {
            hdf5_sys::h5i::H5I_type_t::H5I_GROUP => {
                self.keep_group(path, o);
                Ok((id, None))
            }
            hdf5_sys::h5i::H5I_type_t::H5I_DATASET => {
                self.open = Some((path.to_string(), o));
                Ok((id, None))
            }
            _ => Ok((id, Some(o))),
        }
    }

    /// The id of the dataset kept open, if it is the one at `path`.
    fn open_id(&self, path: &str) -> Option<hid_t> {
        self.open
            .as_ref()
            .filter(|(p, _)| p == path)
            .map(|(_, h)| h.id())
    }

    /// The memory type of `dt` (see [`types::build`]), built once per
    /// distinct datatype: its id and memory size.
    fn built(&mut self, dt: &Datatype, path: &str) -> Result<(hid_t, usize), WriteError> {
        if let Some((_, b)) = self.built_types.iter().find(|(t, _)| t == dt) {
            return Ok((b.hid.id(), b.mem_size));
        }
        let b = types::build(dt, path, 0)?;
        let got = (b.hid.id(), b.mem_size);
        if self.built_types.len() >= TYPE_CACHE {
            self.built_types.remove(0);
        }
        self.built_types.push((dt.clone(), b));
        Ok(got)
    }

    /// The writer's transfer property list, its conversion buffer sized
    /// for a write of `bytes`.
    fn transfer(&mut self, path: &str, bytes: usize) -> Result<hid_t, WriteError> {
        let xfer = match &self.xfer {
            Some(x) => x.id(),
            None => {
                let x = hid(
                    locked(|| unsafe { h5p::H5Pcreate(*g::H5P_DATASET_XFER) }),
                    Kind::Plist,
                    path,
                    "H5Pcreate(transfer)",
                )?;
                let id = x.id();
                self.xfer = Some(x);
                id
            }
        };
        size_transfer_buffer(xfer, path, bytes)?;
        Ok(xfer)
    }

    /// Closes every object the writer keeps open.
    fn close_open(&mut self) {
        self.open = None;
        self.open_groups.clear();
    }

    /// Creates a group (intermediate groups created as needed). Idempotent.
    pub fn group(&mut self, path: &str) -> Result<(), WriteError> {
        self.group_ordered(path, CreationOrder::default(), CreationOrder::default())
    }

    /// Keeps the times the source object's header stores (access,
    /// modification, change, birth; `Object::times`) on the object at
    /// `path`: the native backend writes them (object header flag bit 5).
    /// libhdf5 cannot: H5Pset_obj_track_times only stamps the time of
    /// writing, which would be invented. Its objects store no times, and
    /// objects with input times other than 0 are counted
    /// ([`Writer::take_times_not_kept`]).
    pub fn object_times(&mut self, path: &str, times: Option<[u32; 4]>) -> Result<(), WriteError> {
        if let Some(n) = self.native.as_mut() {
            return n.times(path, times);
        }
        if times.is_some_and(|t| t.iter().any(|&x| x != 0)) {
            let e = self
                .times_not_kept
                .get_or_insert_with(|| (0, path.to_string()));
            e.0 += 1;
        }
        Ok(())
    }

    /// How many objects' header times libhdf5 did not keep since the last
    /// call (see [`Writer::object_times`]), and the first one's path.
    pub fn take_times_not_kept(&mut self) -> Option<(u64, String)> {
        self.times_not_kept.take()
    }

    /// [`Writer::group`], the group itself (if it is created here) tracking
    /// link and attribute creation order as given. An existing group is
    /// left as it is.
    pub fn group_ordered(
        &mut self,
        path: &str,
        links: CreationOrder,
        attrs: CreationOrder,
    ) -> Result<(), WriteError> {
        if let Some(n) = self.native.as_mut() {
            check_path(path)?;
            return n.group(path, links, attrs).map(|_| ());
        }
        check_path(path)?;
        if self.groups.contains(path) {
            return Ok(());
        }
        let fid = self.fid(path)?;
        let mut cur = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            cur.push('/');
            cur.push_str(part);
            if self.groups.contains(&cur) {
                continue;
            }
            let c = cstr(&cur, path, "group")?;
            let exists = locked(|| unsafe { h5l::H5Lexists(fid, c.as_ptr(), h5p::H5P_DEFAULT) });
            if check(exists, &cur, "H5Lexists")? > 0 {
                let o = hid(
                    locked(|| unsafe { h5o::H5Oopen(fid, c.as_ptr(), h5p::H5P_DEFAULT) }),
                    Kind::Object,
                    &cur,
                    "H5Oopen",
                )?;
                let is_group = locked(|| unsafe { hdf5_sys::h5i::H5Iget_type(o.id()) })
                    == hdf5_sys::h5i::H5I_type_t::H5I_GROUP;
                if !is_group {
                    return Err(WriteError::new(&cur, "group", "exists and is not a group"));
                }
                self.keep_group(&cur, o);
                self.groups.insert(cur.clone());
                continue;
            }
            // A group creation list of its own only where there is an order
            // to track (the shared one otherwise: one fewer copy per group).
            let ordered = cur == path && (links.tracked || attrs.tracked);
            let gcpl = if ordered {
                let l = hid(
                    locked(|| unsafe { h5p::H5Pcreate(*g::H5P_GROUP_CREATE) }),
                    Kind::Plist,
                    &cur,
                    "H5Pcreate(group create)",
                )?;
                set_orders(l.id(), Some(links), attrs, path)?;
                no_times(l.id(), path)?;
                Some(l)
            } else {
                None
            };
            let gcpl_id = match &gcpl {
                Some(l) => l.id(),
                None => self.plists(path)?.gcpl.id(),
            };
            let lcpl = self.lcpl(&cur)?;
            let (loc, name) = self.location(&cur)?;
            let old = self.symbol_tables.contains(&cur) && !(cur == path && links.tracked);
            if old {
                self.set_low_bound(fid, h5f::H5F_libver_t::H5F_LIBVER_EARLIEST, &cur)?;
            }
            let created = hid(
                locked(|| unsafe {
                    hdf5_sys::h5g::H5Gcreate2(loc, name.as_ptr(), lcpl, gcpl_id, h5p::H5P_DEFAULT)
                }),
                Kind::Group,
                &cur,
                "H5Gcreate2",
            );
            if old {
                self.set_low_bound(fid, h5f::H5F_libver_t::H5F_LIBVER_V18, &cur)?;
                self.old_style.insert(cur.clone());
            }
            let created = created?;
            self.keep_group(&cur, created);
            self.groups.insert(cur.clone());
        }
        Ok(())
    }

    /// Where a new object at `path` goes: checks the path, creates its
    /// parent groups, returns the file id, the (open) parent group and the
    /// object's name in it.
    fn site(&mut self, path: &str) -> Result<(hid_t, hid_t, std::ffi::CString), WriteError> {
        check_path(path)?;
        self.group(parent_of(path))?;
        let fid = self.fid(path)?;
        let (loc, name) = self.location(path)?;
        Ok((fid, loc, name))
    }

    /// Adds a hard link at `path` to the existing object `target`
    /// (parent groups created as needed).
    pub fn hard_link(&mut self, path: &str, target: &str) -> Result<(), WriteError> {
        if self.native.is_some() {
            return Err(native::unsupported_call(path, "second hard link"));
        }
        let (fid, loc, cp) = self.site(path)?;
        let ct = cstr(target, path, "link target")?;
        let lcpl = self.lcpl(path)?;
        locked(|| unsafe {
            check(
                h5l::H5Lcreate_hard(fid, ct.as_ptr(), loc, cp.as_ptr(), lcpl, h5p::H5P_DEFAULT),
                path,
                "H5Lcreate_hard",
            )
        })?;
        Ok(())
    }

    /// Renames the link `from` to `to` (same file; `to` must not exist,
    /// its parent must). Forgets cached paths below `from`.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), WriteError> {
        if let Some(n) = self.native.as_mut() {
            check_path(from)?;
            check_path(to)?;
            return n.rename(from, to);
        }
        check_path(from)?;
        check_path(to)?;
        self.forget(from);
        let fid = self.fid(from)?;
        let (cf, ct) = (cstr(from, from, "rename")?, cstr(to, from, "rename to")?);
        // The moved link takes the new name's character set.
        let lcpl = self.lcpl(to)?;
        locked(|| unsafe {
            check(
                h5l::H5Lmove(fid, cf.as_ptr(), fid, ct.as_ptr(), lcpl, h5p::H5P_DEFAULT),
                from,
                "H5Lmove",
            )
        })?;
        Ok(())
    }

    /// Removes the link `path` (the object goes when no link is left).
    pub fn remove(&mut self, path: &str) -> Result<(), WriteError> {
        if let Some(n) = self.native.as_mut() {
            check_path(path)?;
            return n.remove(path);
        }
        check_path(path)?;
        self.forget(path);
        let fid = self.fid(path)?;
        let c = cstr(path, path, "remove")?;
        locked(|| unsafe {
            check(
                h5l::H5Ldelete(fid, c.as_ptr(), h5p::H5P_DEFAULT),
                path,
                "H5Ldelete",
            )
        })?;
        Ok(())
    }

    /// Drops cached state for `path` and everything below it.
    fn forget(&mut self, path: &str) {
        let below = format!("{path}/");
        if self
            .open
            .as_ref()
            .is_some_and(|(p, _)| p == path || p.starts_with(&below))
        {
            self.open = None;
        }
        self.open_groups
            .retain(|(g, _)| g != path && !g.starts_with(&below));
        self.groups.retain(|g| g != path && !g.starts_with(&below));
    }

    /// Stores `datatype` as a committed (named) datatype at `path`.
    pub fn commit_datatype(&mut self, path: &str, datatype: &Datatype) -> Result<(), WriteError> {
        if self.native.is_some() {
            return Err(native::unsupported_call(path, "committed datatype"));
        }
        let (_, loc, cp) = self.site(path)?;
        // Built here, not taken from the cache: committing changes the type.
        let t = types::build(datatype, path, 0)?;
        let lcpl = self.lcpl(path)?;
        let tcpl = self.plists(path)?.tcpl.id();
        let commit = |_: &mut Writer| {
            locked(|| unsafe {
                check(
                    h5t::H5Tcommit2(loc, cp.as_ptr(), t.hid.id(), lcpl, tcpl, h5p::H5P_DEFAULT),
                    path,
                    "H5Tcommit2",
                )
            })
        };
        self.with_formats(path, types::native_complex(datatype), commit)?;
        self.note_type(path, None, datatype)
    }

    /// Adds a soft link at `path` holding `target` (which need not exist).
    pub fn soft_link(&mut self, path: &str, target: &str) -> Result<(), WriteError> {
        if let Some(n) = self.native.as_mut() {
            check_path(path)?;
            return n.soft_link(path, target);
        }
        // A link message stores a soft link's value with a 2-byte length
        // (spec IV.A.2.g): in a link-message group libhdf5 would keep the
        // length's low 16 bits and cut the target. A symbol-table group's
        // local heap holds it whole.
        if target.len() > usize::from(u16::MAX) && !self.old_style.contains(parent_of(path)) {
            return Err(WriteError::new(
                path,
                "soft link",
                format!(
                    "target of {} bytes: a link message holds at most 65535 (spec IV.A.2.g; \
                     only a symbol-table group's local heap holds more); not written rather \
                     than cut",
                    target.len()
                ),
            ));
        }
        let (_, loc, cp) = self.site(path)?;
        let ct = cstr(target, path, "link target")?;
        let lcpl = self.lcpl(path)?;
        locked(|| unsafe {
            check(
                h5l::H5Lcreate_soft(ct.as_ptr(), loc, cp.as_ptr(), lcpl, h5p::H5P_DEFAULT),
                path,
                "H5Lcreate_soft",
            )
        })?;
        Ok(())
    }

    /// Adds an external link at `path` to `object` in file `file`.
    pub fn external_link(
        &mut self,
        path: &str,
        file: &str,
        object: &str,
    ) -> Result<(), WriteError> {
        if let Some(n) = self.native.as_mut() {
            check_path(path)?;
            return n.external_link(path, file, object);
        }
        let (_, loc, cp) = self.site(path)?;
        let (cf, co) = (
            cstr(file, path, "link file")?,
            cstr(object, path, "link target")?,
        );
        let lcpl = self.lcpl(path)?;
        locked(|| unsafe {
            check(
                h5l::H5Lcreate_external(
                    cf.as_ptr(),
                    co.as_ptr(),
                    loc,
                    cp.as_ptr(),
                    lcpl,
                    h5p::H5P_DEFAULT,
                ),
                path,
                "H5Lcreate_external",
            )
        })?;
        Ok(())
    }

    fn space(ds: &Dataspace, path: &str) -> Result<Hid, WriteError> {
        match ds.kind {
            DataspaceKind::Scalar => hid(
                locked(|| unsafe { h5s::H5Screate(h5s::H5S_class_t::H5S_SCALAR) }),
                Kind::Dataspace,
                path,
                "H5Screate(scalar)",
            ),
            DataspaceKind::Null => hid(
                locked(|| unsafe { h5s::H5Screate(h5s::H5S_class_t::H5S_NULL) }),
                Kind::Dataspace,
                path,
                "H5Screate(null)",
            ),
            DataspaceKind::Simple => {
                let rank = i32::try_from(ds.dims.len())
                    .ok()
                    .filter(|r| *r > 0 && *r <= 32)
                    .ok_or_else(|| WriteError::new(path, "dataspace", "rank out of range"))?;
                let max: Option<&Vec<u64>> = ds.max_dims.as_ref();
                if let Some(m) = max {
                    if m.len() != ds.dims.len() {
                        return Err(WriteError::new(
                            path,
                            "dataspace",
                            "maximum dimensions differ in rank",
                        ));
                    }
                }
                // UNDEFINED (all ones) is H5S_UNLIMITED.
                let maxp = max.map_or(std::ptr::null(), |m| m.as_ptr());
                hid(
                    locked(|| unsafe { h5s::H5Screate_simple(rank, ds.dims.as_ptr(), maxp) }),
                    Kind::Dataspace,
                    path,
                    "H5Screate_simple",
                )
            }
        }
    }

    /// Creates a dataset with the same datatype, shape, maximum shape,
    /// layout (compact / contiguous / chunked with the same chunk
    /// dimensions), filter pipeline and fill value as `ds`.
    ///
    /// Filters this libhdf5 cannot apply are recorded as optional (so stored
    /// chunks can still be copied through); a note says so. `fill_heap`
    /// holds the resolved variable-length values and region references of
    /// the fill value (a netCDF-4 string variable's fill value is a heap
    /// object), as for attributes. `attrs`: the attribute creation order
    /// the dataset tracks. `committed`: the source header of its committed
    /// datatype, if any (see [`Writer::note_committed`]). A virtual layout
    /// needs its mappings: [`Writer::create_virtual_dataset`].
    pub fn create_dataset(
        &mut self,
        path: &str,
        ds: &Dataset,
        fill_heap: &HeapValues,
        attrs: CreationOrder,
        committed: Option<u64>,
    ) -> Result<(), WriteError> {
        // What libhdf5 cannot create, neither backend creates.
        types::check_dataset(ds, path)?;
        let capped = self.early_allocation_capped(path, ds);
        let ds = capped.as_ref().unwrap_or(ds);
        if let Some(n) = self.native.as_mut() {
            check_path(path)?;
            return n.create_dataset(path, ds, fill_heap, attrs, committed);
        }
        self.with_formats(path, types::native_complex(&ds.datatype), |w| {
            w.create_with_layout(path, ds, fill_heap, attrs, committed, None)
        })
    }

    /// [`Writer::create_dataset`], with a virtual layout's mappings.
    fn create_with_layout(
        &mut self,
        path: &str,
        ds: &Dataset,
        fill_heap: &HeapValues,
        attrs: CreationOrder,
        committed: Option<u64>,
        maps: Option<Vec<crate::format::vds::VirtualMapping>>,
    ) -> Result<(), WriteError> {
        let (fid, loc, c) = self.site(path)?;
        let lcpl = self.lcpl(path)?;
        let (tid, mem_size) = self.built(&ds.datatype, path)?;
        let shared = self.committed_type(committed, tid, path);
        let space = Self::space(&ds.dataspace, path)?;
        let dcpl = hid(
            locked(|| unsafe { h5p::H5Pcreate(*g::H5P_DATASET_CREATE) }),
            Kind::Plist,
            path,
            "H5Pcreate(dataset create)",
        )?;
        let d = dcpl.id();
        set_orders(d, None, attrs, path)?;
        let mut compact = false;
        match &ds.layout.class {
            LayoutClass::Compact { .. } => {
                compact = true;
                locked(|| unsafe {
                    check(
                        h5p::H5Pset_layout(d, h5d::H5D_layout_t::H5D_COMPACT),
                        path,
                        "H5Pset_layout(compact)",
                    )
                })?;
            }
            LayoutClass::Contiguous { .. } => {
                locked(|| unsafe {
                    check(
                        h5p::H5Pset_layout(d, h5d::H5D_layout_t::H5D_CONTIGUOUS),
                        path,
                        "H5Pset_layout(contiguous)",
                    )
                })?;
            }
            LayoutClass::Chunked { dims, .. } => {
                if dims.len() != ds.dataspace.dims.len() {
                    return Err(WriteError::new(
                        path,
                        "chunked layout",
                        format!(
                            "{} chunk dimensions for a rank-{} dataspace",
                            dims.len(),
                            ds.dataspace.dims.len()
                        ),
                    ));
                }
                let rank = i32::try_from(dims.len())
                    .map_err(|_| WriteError::new(path, "chunked layout", "rank too large"))?;
                locked(|| unsafe {
                    check(
                        h5p::H5Pset_chunk(d, rank, dims.as_ptr()),
                        path,
                        "H5Pset_chunk",
                    )
                })?;
            }
            LayoutClass::Virtual { .. } => self.set_virtual(d, maps, &ds.dataspace, path)?,
        }
        if let Some(p) = &ds.filters {
            for f in &p.filters {
                let id = i32::from(f.id);
                let (flags, note) = filter_flags(f, path);
                let flags = u32::from(flags);
                self.notes.extend(note);
                let mut cd = f.client_data.as_slice();
                // libhdf5's deflate filter refuses, on every read, a level
                // other than one value 0-9 (H5Z_filter_deflate), so a
                // damaged level would make the written chunks unreadable.
                // The level plays no part in decoding (the chunks are
                // copied as stored): written as 9, with a note.
                if f.id == crate::format::message::filter_pipeline::DEFLATE
                    && (cd.len() != 1 || cd.first().is_some_and(|&l| l > 9))
                {
                    self.notes.push(format!(
                        "{path}: deflate filter parameters {cd:?} are not one level 0-9 \
                         (a damaged filter message?): written as level 9, which does \
                         not change the data"
                    ));
                    cd = &[9];
                }
                locked(|| unsafe {
                    check(
                        h5p::H5Pset_filter(d, id, flags, cd.len(), cd.as_ptr()),
                        path,
                        &format!("H5Pset_filter({})", f.describe()),
                    )
                })?;
            }
        }
        // The memory form of a fill value with heap parts: it (and the
        // buffers it points to) must live until libhdf5 copied it.
        let mut fill_mem = None;
        if let Some(fv) = &ds.fill_value {
            let has_vlen = types::needs_buffer(&ds.datatype, 0);
            let fsize = usize::try_from(ds.datatype.size).unwrap_or(usize::MAX);
            match &fv.value {
                Some(v) if has_vlen && v.len() == fsize && fsize > 0 => {
                    let mut fill = types::Fill::new(path, v, fill_heap, &self.refs, fid);
                    fill.region_budget = self.region_budget;
                    let filled = fill.run(&ds.datatype, 1, fsize, mem_size);
                    self.region_budget = fill.region_budget;
                    self.notes.append(&mut fill.notes);
                    filled?;
                    let ptr = fill.mem.as_ptr().cast::<c_void>();
                    locked(|| unsafe {
                        check(
                            h5p::H5Pset_fill_value(d, tid, ptr),
                            path,
                            "H5Pset_fill_value",
                        )
                    })?;
                    fill_mem = Some(fill);
                }
                Some(v) if !has_vlen && v.len() == mem_size => {
                    locked(|| unsafe {
                        check(
                            h5p::H5Pset_fill_value(d, tid, v.as_ptr().cast::<c_void>()),
                            path,
                            "H5Pset_fill_value",
                        )
                    })?;
                }
                Some(v) if !v.is_empty() => self.notes.push(format!(
                    "{path}: fill value of {} bytes not copied (datatype has {} bytes{})",
                    v.len(),
                    mem_size,
                    if has_vlen { ", variable-length" } else { "" }
                )),
                _ if fv.undefined => {
                    locked(|| unsafe {
                        check(
                            h5p::H5Pset_fill_value(d, tid, std::ptr::null()),
                            path,
                            "H5Pset_fill_value(undefined)",
                        )
                    })?;
                }
                _ => {}
            }
            let fill_time = match fv.fill_write_time {
                0 => Some(h5d::H5D_fill_time_t::H5D_FILL_TIME_ALLOC),
                1 => Some(h5d::H5D_fill_time_t::H5D_FILL_TIME_NEVER),
                2 => Some(h5d::H5D_fill_time_t::H5D_FILL_TIME_IFSET),
                _ => None,
            };
            if let Some(ft) = fill_time {
                locked(|| unsafe {
                    check(h5p::H5Pset_fill_time(d, ft), path, "H5Pset_fill_time")
                })?;
            }
            let alloc = match fv.space_allocation_time {
                1 => Some(h5d::H5D_alloc_time_t::H5D_ALLOC_TIME_EARLY),
                2 => Some(h5d::H5D_alloc_time_t::H5D_ALLOC_TIME_LATE),
                3 => Some(h5d::H5D_alloc_time_t::H5D_ALLOC_TIME_INCR),
                _ => None,
            };
            if let (Some(a), false) = (alloc, compact) {
                locked(|| unsafe {
                    check(h5p::H5Pset_alloc_time(d, a), path, "H5Pset_alloc_time")
                })?;
            }
        }
        no_times(d, path)?;
        let dset = hid(
            locked(|| unsafe {
                h5d::H5Dcreate2(
                    loc,
                    c.as_ptr(),
                    shared.as_ref().map_or(tid, Hid::id),
                    space.id(),
                    lcpl,
                    d,
                    h5p::H5P_DEFAULT,
                )
            }),
            Kind::Dataset,
            path,
            "H5Dcreate2",
        )?;
        drop(fill_mem);
        self.open = Some((path.to_string(), dset));
        self.note_type(path, None, &ds.datatype)
    }

    fn dataset(&mut self, path: &str) -> Result<i64, WriteError> {
        if let Some(id) = self.open_id(path) {
            return Ok(id);
        }
        self.open = None;
        let fid = self.fid(path)?;
        let c = cstr(path, path, "open dataset")?;
        let h = hid(
            locked(|| unsafe { h5d::H5Dopen2(fid, c.as_ptr(), h5p::H5P_DEFAULT) }),
            Kind::Dataset,
            path,
            "H5Dopen2",
        )?;
        let id = h.id();
        self.open = Some((path.to_string(), h));
        Ok(id)
    }

    /// Builds the memory buffer for the `n` elements in `bytes` (see
    /// [`types::Fill`]) and hands it to `write` with the memory type; `n`
    /// must be the number of elements `write` transfers.
    #[allow(clippy::too_many_arguments)]
    fn with_buffer(
        &mut self,
        path: &str,
        dt: &Datatype,
        n: usize,
        bytes: &[u8],
        heap: &HeapValues,
        write: impl FnOnce(i64, *const c_void) -> i32,
        what: &str,
    ) -> Result<(), WriteError> {
        let fid = self.fid(path)?;
        let (tid, mem_size) = self.built(dt, path)?;
        let fsize = usize::try_from(dt.size)
            .map_err(|_| WriteError::new(path, "datatype", "size too large"))?;
        // libhdf5 reads `n x H5Tget_size` bytes from the buffer whatever the
        // declared size says: both layouts must hold exactly `n` elements
        // (a declared size of 0 would otherwise give an empty buffer).
        let mem_bytes = n.checked_mul(mem_size);
        if n.checked_mul(fsize) != Some(bytes.len()) || mem_bytes.is_none() || fsize == 0 {
            return Err(WriteError::new(
                path,
                "memory buffer",
                format!(
                    "{} bytes given for {n} elements of {fsize} bytes ({} in memory)",
                    bytes.len(),
                    mem_size
                ),
            ));
        }
        if !types::needs_buffer(dt, 0) {
            // build() guarantees mem_size == fsize for these.
            let rc = locked(|| write(tid, bytes.as_ptr().cast::<c_void>()));
            check(rc, path, what)?;
            return Ok(());
        }
        let mut fill = types::Fill::new(path, bytes, heap, &self.refs, fid);
        fill.region_budget = self.region_budget;
        let filled = fill.run(dt, n, fsize, mem_size);
        self.region_budget = fill.region_budget;
        filled?;
        if Some(fill.mem.len()) != mem_bytes {
            return Err(WriteError::new(
                path,
                "memory buffer",
                "buffer does not hold every element",
            ));
        }
        let rc = locked(|| write(tid, fill.mem.as_ptr().cast::<c_void>()));
        let notes = std::mem::take(&mut fill.notes);
        drop(fill);
        self.notes.extend(notes);
        check(rc, path, what)?;
        Ok(())
    }

    /// Writes an attribute on the object at `path` (group or dataset),
    /// replacing one of the same name. `value` is in the file datatype's
    /// layout; only its first `elements x size` bytes are used. `heap`
    /// gives the resolved variable-length values and region references;
    /// `committed`: the source header of its committed datatype, if any
    /// (see [`Writer::note_committed`]). `charset`: the name's character
    /// set (both backends keep it).
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
        // What libhdf5 cannot create, neither backend creates.
        let where_ = format!("{path} @{name}");
        types::check_type(datatype, &where_, 0)?;
        types::check_space(dataspace, &where_)?;
        if let Some(n) = self.native.as_mut() {
            check_path(path)?;
            return n.attribute(
                path, name, charset, datatype, dataspace, value, heap, committed,
            );
        }
        check_path(path)?;
        let n = Self::elements(dataspace, &where_)?;
        let size = usize::try_from(datatype.size)
            .map_err(|_| WriteError::new(&where_, "datatype", "size too large"))?;
        let need = n
            .checked_mul(size)
            .ok_or_else(|| WriteError::new(&where_, "attribute", "size overflow"))?;
        let value = value.get(..need).ok_or_else(|| {
            WriteError::new(
                &where_,
                "attribute",
                format!("value has {} bytes, {need} needed", value.len()),
            )
        })?;
        let (built, _) = self.built(datatype, &where_)?;
        let shared = self.committed_type(committed, built, &where_);
        let tid = shared.as_ref().map_or(built, Hid::id);
        let space = Self::space(dataspace, &where_)?;
        let cn = cstr(name, &where_, "attribute name")?;
        let acpl = match charset {
            CharacterSet::Utf8 => self.plists(&where_)?.acpl_utf8.id(),
            _ => h5p::H5P_DEFAULT,
        };
        let (obj, _owned) = self.object(path, &where_)?;
        let attr = self.with_formats(&where_, types::native_complex(datatype), |_| {
            replace_attribute(obj, &cn, (tid, space.id(), acpl), &where_)
        })?;
        if n == 0 {
            drop(attr);
            return self.note_type(path, Some(name), datatype);
        }
        let aid = attr.id();
        let written = self.with_buffer(
            &where_,
            datatype,
            n,
            value,
            heap,
            |mt, buf| unsafe { h5a::H5Awrite(aid, mt, buf) },
            "H5Awrite",
        );
        if written.is_err() {
            // An attribute whose value could not be written must not stay
            // behind with whatever libhdf5 holds (zeros, empty sequences).
            drop(attr);
            let _ = locked(|| unsafe { h5a::H5Adelete(obj, cn.as_ptr()) });
            return written;
        }
        drop(attr);
        self.note_type(path, Some(name), datatype)
    }

    /// Bytes that `elements` elements of `ds` take; `bytes` must be exactly
    /// that long.
    fn byte_count(
        path: &str,
        what: &str,
        elements: u64,
        ds: &Dataset,
        bytes: &[u8],
    ) -> Result<usize, WriteError> {
        let need = elements
            .checked_mul(u64::from(ds.datatype.size))
            .and_then(|b| usize::try_from(b).ok())
            .ok_or_else(|| WriteError::new(path, what, "size overflow"))?;
        if bytes.len() != need {
            return Err(WriteError::new(
                path,
                what,
                format!("{} bytes given, {need} needed", bytes.len()),
            ));
        }
        Ok(need)
    }

    fn elements(ds: &Dataspace, path: &str) -> Result<usize, WriteError> {
        ds.element_count()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| WriteError::new(path, "dataspace", "element count overflows"))
    }

    /// Writes the whole dataset from `bytes` in the file datatype's layout
    /// (exactly elements x size bytes); `heap` as for attributes.
    pub fn write_all(
        &mut self,
        path: &str,
        ds: &Dataset,
        bytes: &[u8],
        heap: &HeapValues,
    ) -> Result<(), WriteError> {
        if let Some(n) = self.native.as_mut() {
            return n.write_all(path, ds, bytes, heap);
        }
        let n = Self::elements(&ds.dataspace, path)?;
        let need = Self::byte_count(path, "write", n as u64, ds, bytes)?;
        if n == 0 {
            return Ok(());
        }
        let did = self.dataset(path)?;
        let xid = self.transfer(path, need)?;
        self.with_buffer(
            path,
            &ds.datatype,
            n,
            bytes,
            heap,
            |mt, buf| unsafe { h5d::H5Dwrite(did, mt, h5s::H5S_ALL, h5s::H5S_ALL, xid, buf) },
            "H5Dwrite",
        )
    }

    /// True if elements of `dt` must be converted before they are written
    /// (variable-length parts or references): their stored bytes hold
    /// addresses of the input file, so chunks cannot be copied as stored.
    pub fn needs_conversion(dt: &Datatype) -> bool {
        types::needs_buffer(dt, 0)
    }

    /// Writes one block of elements: `count` elements per dimension starting
    /// at element `start`, from `bytes` (row-major, the file's datatype
    /// layout) and their resolved heap values. Used for chunks whose
    /// elements need conversion (see [`Writer::needs_conversion`]).
    pub fn write_block(
        &mut self,
        path: &str,
        ds: &Dataset,
        start: &[u64],
        count: &[u64],
        bytes: &[u8],
        heap: &HeapValues,
    ) -> Result<(), WriteError> {
        if self.native.is_some() {
            return Err(native::unsupported_call(path, "write_block"));
        }
        let rank = ds.dataspace.dims.len();
        if ds.dataspace.kind != DataspaceKind::Simple || start.len() != rank || count.len() != rank
        {
            return Err(WriteError::new(path, "write block", "rank mismatch"));
        }
        for ((s, c), d) in start.iter().zip(count).zip(&ds.dataspace.dims) {
            if s.checked_add(*c).is_none_or(|e| e > *d) {
                return Err(WriteError::new(
                    path,
                    "write block",
                    format!("block {start:?}+{count:?} outside the extent"),
                ));
            }
        }
        let elements = count
            .iter()
            .try_fold(1u64, |a, c| a.checked_mul(*c))
            .and_then(|e| usize::try_from(e).ok())
            .ok_or_else(|| WriteError::new(path, "write block", "size overflow"))?;
        let n = Self::byte_count(path, "write block", elements as u64, ds, bytes)?;
        if elements == 0 {
            return Ok(());
        }
        let did = self.dataset(path)?;
        let fspace = hid(
            locked(|| unsafe { h5d::H5Dget_space(did) }),
            Kind::Dataspace,
            path,
            "H5Dget_space",
        )?;
        h5::select_hyperslab(
            fspace.id(),
            h5s::H5S_seloper_t::H5S_SELECT_SET,
            start,
            None,
            count,
            None,
            path,
        )?;
        let r = i32::try_from(rank)
            .map_err(|_| WriteError::new(path, "write block", "rank too large"))?;
        let mspace = hid(
            locked(|| unsafe { h5s::H5Screate_simple(r, count.as_ptr(), std::ptr::null()) }),
            Kind::Dataspace,
            path,
            "H5Screate_simple",
        )?;
        let xid = self.transfer(path, n)?;
        let (mid, fid) = (mspace.id(), fspace.id());
        self.with_buffer(
            path,
            &ds.datatype,
            elements,
            bytes,
            heap,
            |mt, buf| unsafe { h5d::H5Dwrite(did, mt, mid, fid, xid, buf) },
            "H5Dwrite(block)",
        )
    }

    /// Writes a prefix of a dataset's bytes (a truncated file): the whole
    /// elements contained in `bytes` go into the first elements in
    /// row-major order; the rest stays unwritten. Returns the number of
    /// elements written. Types with variable-length parts or references are
    /// not supported here (use [`Writer::write_all`]).
    pub fn write_prefix(
        &mut self,
        path: &str,
        ds: &Dataset,
        bytes: &[u8],
    ) -> Result<u64, WriteError> {
        if types::needs_buffer(&ds.datatype, 0) {
            return Err(WriteError::new(
                path,
                "write prefix",
                "variable-length or reference data needs write_all",
            ));
        }
        let total = ds
            .dataspace
            .element_count()
            .ok_or_else(|| WriteError::new(path, "dataspace", "element count overflows"))?;
        let size = u64::from(ds.datatype.size);
        if size == 0 {
            return Err(WriteError::new(path, "write prefix", "datatype size is 0"));
        }
        let n = (bytes.len() as u64 / size).min(total);
        if n == 0 {
            return Ok(0);
        }
        let nbytes = usize::try_from(n.saturating_mul(size))
            .map_err(|_| WriteError::new(path, "write prefix", "size overflow"))?;
        let data = bytes.get(..nbytes).unwrap_or_default();
        if let Some(w) = self.native.as_mut() {
            return w.write_prefix(path, ds, data).map(|()| n);
        }
        let did = self.dataset(path)?;
        let (tid, _) = self.built(&ds.datatype, path)?;
        let fspace = hid(
            locked(|| unsafe { h5d::H5Dget_space(did) }),
            Kind::Dataspace,
            path,
            "H5Dget_space",
        )?;
        if ds.dataspace.kind == DataspaceKind::Simple {
            select_prefix(fspace.id(), &ds.dataspace.dims, n, path)?;
        }
        let mdims = [n];
        let mspace = hid(
            locked(|| unsafe { h5s::H5Screate_simple(1, mdims.as_ptr(), std::ptr::null()) }),
            Kind::Dataspace,
            path,
            "H5Screate_simple",
        )?;
        locked(|| unsafe {
            check(
                h5d::H5Dwrite(
                    did,
                    tid,
                    mspace.id(),
                    fspace.id(),
                    h5p::H5P_DEFAULT,
                    data.as_ptr().cast::<c_void>(),
                ),
                path,
                "H5Dwrite(prefix)",
            )
        })?;
        Ok(n)
    }

    /// Copies one stored chunk as it is (`H5Dwrite_chunk` with its filter
    /// mask): no decompression, no recompression. `offset` is the chunk's
    /// first element and must have the dataset's rank.
    pub fn write_chunk(
        &mut self,
        path: &str,
        offset: &[u64],
        filter_mask: u32,
        stored: &[u8],
    ) -> Result<(), WriteError> {
        if let Some(n) = self.native.as_mut() {
            return n.write_chunk(path, offset, filter_mask, stored);
        }
        let did = self.dataset(path)?;
        let space = hid(
            locked(|| unsafe { h5d::H5Dget_space(did) }),
            Kind::Dataspace,
            path,
            "H5Dget_space",
        )?;
        let rank = locked(|| unsafe { h5s::H5Sget_simple_extent_ndims(space.id()) });
        let rank = check(rank, path, "H5Sget_simple_extent_ndims")?;
        if usize::try_from(rank).ok() != Some(offset.len()) {
            return Err(WriteError::new(
                path,
                "write chunk",
                format!(
                    "chunk offset has {} coordinates, rank is {rank}",
                    offset.len()
                ),
            ));
        }
        locked(|| unsafe {
            check(
                h5d::H5Dwrite_chunk(
                    did,
                    h5p::H5P_DEFAULT,
                    filter_mask,
                    offset.as_ptr(),
                    stored.len(),
                    stored.as_ptr().cast::<c_void>(),
                ),
                path,
                &format!("H5Dwrite_chunk({offset:?})"),
            )
        })?;
        Ok(())
    }

    /// A scalar variable-length UTF-8 string attribute (replacing one of the
    /// same name); NUL characters in `value` become U+FFFD.
    pub fn mark(&mut self, path: &str, name: &str, value: &str) -> Result<(), WriteError> {
        if let Some(n) = self.native.as_mut() {
            check_path(path)?;
            return n.mark(path, name, value);
        }
        check_path(path)?;
        let where_ = format!("{path} @{name}");
        let cn = cstr(name, &where_, "attribute name")?;
        let cv = cstr(&value.replace('\0', "\u{fffd}"), &where_, "value")?;
        let (tid, sid) = self.mark_type(&where_)?;
        let (obj, _owned) = self.object(path, &where_)?;
        let attr = replace_attribute(obj, &cn, (tid, sid, h5p::H5P_DEFAULT), &where_)?;
        let ptr = cv.as_ptr();
        locked(|| unsafe {
            check(
                h5a::H5Awrite(attr.id(), tid, (&raw const ptr).cast::<c_void>()),
                &where_,
                "H5Awrite",
            )
        })?;
        Ok(())
    }

    /// The variable-length UTF-8 string type and scalar space of marks,
    /// built once.
    fn mark_type(&mut self, where_: &str) -> Result<(hid_t, hid_t), WriteError> {
        if let Some((t, s)) = &self.mark_type {
            return Ok((t.id(), s.id()));
        }
        let t = hid(
            locked(|| unsafe { h5t::H5Tcopy(*g::H5T_C_S1) }),
            Kind::Datatype,
            where_,
            "H5Tcopy",
        )?;
        locked(|| unsafe {
            check(
                h5t::H5Tset_size(t.id(), h5t::H5T_VARIABLE),
                where_,
                "H5Tset_size",
            )?;
            check(
                h5t::H5Tset_cset(t.id(), h5t::H5T_cset_t::H5T_CSET_UTF8),
                where_,
                "H5Tset_cset",
            )
        })?;
        let space = hid(
            locked(|| unsafe { h5s::H5Screate(h5s::H5S_class_t::H5S_SCALAR) }),
            Kind::Dataspace,
            where_,
            "H5Screate",
        )?;
        let ids = (t.id(), space.id());
        self.mark_type = Some((t, space));
        Ok(ids)
    }

    /// Flushes, closes, fsyncs, and renames the temporary file onto
    /// `output` (refusing to replace an existing `output` unless
    /// `overwrite`), then fsyncs the directory. On failure the temporary
    /// file is removed and `output` is left as it was.
    pub fn finish(mut self, overwrite: bool) -> Result<(), WriteError> {
        let shown = self.output.display().to_string();
        self.close_open();
        if let Some(n) = self.native.take() {
            n.finish()?;
        }
        if let Some(f) = self.file.take() {
            locked(|| unsafe {
                check(
                    h5f::H5Fflush(f.id(), h5f::H5F_scope_t::H5F_SCOPE_GLOBAL),
                    &shown,
                    "H5Fflush",
                )
            })?;
            f.close()
                .map_err(|m| WriteError::new(&shown, "H5Fclose", m))?;
        }
        self.write_user_block()?;
        std::fs::File::open(&self.tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_err(&self.tmp, "fsync", e))?;
        if let Some(base) = self.base {
            // Another process (not holding the output's lock) replaced or
            // wrote to it since it was copied: replacing it now would lose
            // that process's work.
            let now = std::fs::metadata(&self.output).map(|m| Stamp::of(&m)).ok();
            if now != Some(base) {
                return Err(WriteError::new(
                    &shown,
                    "finish",
                    "replaced or changed by another process since it was copied; left as it is, nothing added",
                ));
            }
        }
        if overwrite {
            std::fs::rename(&self.tmp, &self.output)
                .map_err(|e| io_err(&self.output, "rename", e))?;
        } else {
            // A hard link fails if `output` exists: no window in which an
            // existing file could be replaced.
            match std::fs::hard_link(&self.tmp, &self.output) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&self.tmp);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(WriteError::new(
                        &shown,
                        "finish",
                        "output exists; refusing to replace it without overwrite",
                    ));
                }
                Err(_) => {
                    // File systems without hard links.
                    if self.output.exists() {
                        return Err(WriteError::new(
                            &shown,
                            "finish",
                            "output exists; refusing to replace it without overwrite",
                        ));
                    }
                    std::fs::rename(&self.tmp, &self.output)
                        .map_err(|e| io_err(&self.output, "rename", e))?;
                }
            }
        }
        let dir = match self.output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if let Ok(d) = std::fs::File::open(&dir) {
            d.sync_all()
                .map_err(|e| io_err(&dir, "fsync directory", e))?;
        }
        Ok(())
    }
}

impl Writer {
    /// Writes the input's user block over the first bytes of the closed
    /// output, which both backends leave for it (libhdf5 zeroes them).
    fn write_user_block(&self) -> Result<(), WriteError> {
        if self.user_block.is_empty() {
            return Ok(());
        }
        use std::io::Write;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&self.tmp)
            .and_then(|mut f| f.write_all(&self.user_block))
            .map_err(|e| io_err(&self.tmp, "write user block", e))
    }
}

/// A user block libhdf5 (and the superblock search) accepts: empty, or a
/// power of two of at least 512 bytes.
fn check_user_block(bytes: &[u8], shown: &str) -> Result<(), WriteError> {
    let n = bytes.len();
    if n == 0 || (n >= 512 && n.is_power_of_two()) {
        return Ok(());
    }
    Err(WriteError::new(
        shown,
        "user block",
        format!("{n} bytes: not a power of two of at least 512"),
    ))
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close_open();
        if let Some(f) = self.file.take() {
            let _ = f.close();
        }
        // After a successful finish the temporary name no longer exists.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Selects the first `n` elements (row-major) of a simple dataspace of
/// dimensions `dims` as a union of at most `rank` hyperslabs.
fn select_prefix(space: i64, dims: &[u64], n: u64, path: &str) -> Result<(), WriteError> {
    locked(|| unsafe { check(h5s::H5Sselect_none(space), path, "H5Sselect_none") })?;
    let rank = dims.len();
    let mut start = vec![0u64; rank];
    let mut rest = n;
    for level in 0..rank {
        if rest == 0 {
            break;
        }
        // Elements in one step along dimension `level`.
        let inner = dims
            .get(level + 1..)
            .unwrap_or_default()
            .iter()
            .try_fold(1u64, |a, d| a.checked_mul(*d))
            .ok_or_else(|| WriteError::new(path, "write prefix", "size overflow"))?;
        let whole = rest.checked_div(inner).unwrap_or(0);
        if whole > 0 {
            let mut count = vec![1u64; rank];
            for (i, c) in count.iter_mut().enumerate() {
                *c = match i.cmp(&level) {
                    std::cmp::Ordering::Less => 1,
                    std::cmp::Ordering::Equal => whole,
                    std::cmp::Ordering::Greater => dims.get(i).copied().unwrap_or(1),
                };
            }
            h5::select_hyperslab(
                space,
                h5s::H5S_seloper_t::H5S_SELECT_OR,
                &start,
                None,
                &count,
                None,
                path,
            )?;
        }
        rest = rest.checked_rem(inner).unwrap_or(0);
        if let Some(s) = start.get_mut(level) {
            *s = whole;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(parent_of("/a/b/c"), "/a/b");
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/"), "/");
        assert!(check_path("a/b").is_err());
    }

    #[test]
    fn open_copy_adds_to_a_copy_renamed_over_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.h5");
        let mut w = Writer::create(&out).unwrap();
        w.group("/a/b").unwrap();
        w.finish(false).unwrap();
        let before = std::fs::read(&out).unwrap();
        // Added to, then dropped unfinished: the output is untouched.
        let mut w = Writer::open_copy(&out).unwrap();
        assert!(w.exists("/a/b").unwrap());
        assert!(w.exists("/").unwrap());
        assert!(!w.exists("/a/c").unwrap());
        assert!(!w.exists("/x/y").unwrap());
        w.group("/c").unwrap();
        assert!(w.exists("/c").unwrap());
        drop(w);
        assert_eq!(std::fs::read(&out).unwrap(), before);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Finished: the output holds both.
        let mut w = Writer::open_copy(&out).unwrap();
        w.group("/c").unwrap();
        w.finish(true).unwrap();
        let w = Writer::open_copy(&out).unwrap();
        assert!(w.exists("/a/b").unwrap() && w.exists("/c").unwrap());
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Not an HDF5 file: an error, and nothing left behind.
        std::fs::write(&out, b"not hdf5").unwrap();
        assert!(Writer::open_copy(&out).is_err());
        assert_eq!(std::fs::read(&out).unwrap(), b"not hdf5");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn errors_name_path_and_action() {
        let e = WriteError::new("/d", "H5Dcreate2", "boom");
        assert_eq!(e.to_string(), "/d: H5Dcreate2: boom");
    }

    #[test]
    fn buffer_matches_the_element_count_when_the_declared_size_is_0() {
        // An array of 3 object references declaring 0 bytes: the attribute
        // value is 0 bytes, but libhdf5 reads 24 bytes per element from the
        // memory buffer (which was built for 0 / 0 = 0 elements).
        use crate::format::message::datatype::{DatatypeClass, ReferenceKind};
        let r = Datatype {
            version: 1,
            size: 8,
            class: DatatypeClass::Reference {
                kind: ReferenceKind::Object,
                revision: None,
            },
        };
        let lying = Datatype {
            version: 2,
            size: 0,
            class: DatatypeClass::Array {
                dims: vec![3],
                base: Box::new(r),
            },
        };
        let space = Dataspace {
            version: 1,
            kind: DataspaceKind::Simple,
            dims: vec![1000],
            max_dims: None,
        };
        let scalar = Dataspace {
            kind: DataspaceKind::Scalar,
            dims: vec![],
            ..space.clone()
        };
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::create(&dir.path().join("out.h5")).unwrap();
        w.group("/").unwrap();
        for s in [&space, &scalar] {
            let e = w
                .attribute(
                    "/",
                    "r",
                    CharacterSet::Ascii,
                    &lying,
                    s,
                    &[],
                    &HeapValues::default(),
                    None,
                )
                .expect_err("refused");
            // Refused before anything is built (`types::check_type`).
            assert!(e.message.contains("declared size 0"), "{e}");
        }
        // The buffer's own guard, for a type that reaches it.
        for n in [1000, 1] {
            let e = w
                .with_buffer(
                    "/ @r",
                    &lying,
                    n,
                    &[],
                    &HeapValues::default(),
                    |_, _| 0,
                    "test",
                )
                .expect_err("refused");
            assert!(e.message.contains("0 bytes given for"), "{e}");
        }
    }

    #[test]
    fn prefix_selection_counts() {
        let dims = [3u64, 4, 5];
        for n in [0u64, 1, 4, 5, 19, 20, 21, 59, 60] {
            let space = hid(
                locked(|| unsafe { h5s::H5Screate_simple(3, dims.as_ptr(), std::ptr::null()) }),
                Kind::Dataspace,
                "/t",
                "H5Screate_simple",
            )
            .unwrap();
            select_prefix(space.id(), &dims, n, "/t").unwrap();
            let got = locked(|| unsafe { h5s::H5Sget_select_npoints(space.id()) });
            assert_eq!(got, n as i64, "n = {n}");
        }
    }
}

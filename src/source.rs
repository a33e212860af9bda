//! Opening inputs: read-only, never modified.
//!
//! Small files (up to [`COPY_LIMIT`]) are read into memory, larger ones are
//! memory-mapped read-only. A mapped file that another process truncates
//! while we read it would raise SIGBUS; copying small files removes that risk
//! where it is cheap, and for large files the risk is documented (the inputs
//! h5salvage is meant for are no longer being written).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use memmap2::Mmap;

use crate::inventory::{Inventory, Verdict};

/// Files up to this size are copied into memory instead of mapped.
pub const COPY_LIMIT: u64 = 64 << 20;

/// The bytes of one input file.
pub enum Input {
    Copied(Vec<u8>),
    Mapped(Mmap),
}

impl Input {
    /// Opens `path` read-only.
    pub fn open(path: &Path) -> io::Result<Input> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        if len <= COPY_LIMIT {
            let mut buf = Vec::with_capacity(len as usize);
            f.read_to_end(&mut buf)?;
            return Ok(Input::Copied(buf));
        }
        // SAFETY: the map is read-only; see the module note on truncation.
        let map = unsafe { Mmap::map(&f)? };
        Ok(Input::Mapped(map))
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Input::Copied(v) => v,
            Input::Mapped(m) => m,
        }
    }
}

/// When to carve (search the whole file for structures by signature).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CarveMode {
    /// Walk from the superblock; carve too when the walk finds anything
    /// wrong (a healthy file is not carved).
    #[default]
    Auto,
    /// Walk only.
    Never,
    /// Carve only, ignoring the superblock's root.
    Only,
}

/// The inventory of one file's bytes: walk, carve, or both merged.
pub fn inventory(file: &str, bytes: &[u8], mode: CarveMode) -> Inventory {
    let spin = crate::progress::Spinner::new(&format!("scanning {file}"), bytes.len() as u64);
    match mode {
        CarveMode::Only => crate::carve::carve(file, bytes),
        CarveMode::Never => crate::walk::walk(file, bytes),
        CarveMode::Auto => {
            let walked = crate::walk::walk(file, bytes);
            if walked.verdict() == Verdict::Healthy || bytes.is_empty() {
                walked
            } else {
                spin.set(&format!("carving {file}"));
                crate::carve::merge(walked, crate::carve::carve(file, bytes))
            }
        }
    }
}

/// Opens and walks one file (no carving).
pub fn scan_path(path: &Path) -> io::Result<Inventory> {
    scan_path_with(path, CarveMode::Never)
}

/// Opens one file and builds its inventory with `mode`.
pub fn scan_path_with(path: &Path, mode: CarveMode) -> io::Result<Inventory> {
    let input = Input::open(path)?;
    Ok(inventory(&path.display().to_string(), input.bytes(), mode))
}

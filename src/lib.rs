//! h5salvage: a forensic scanner and salvager for damaged HDF5 files.
//!
//! Stages, each testable alone, talking only through [`inventory::Inventory`]:
//! `format` (bytes -> typed structures) -> `walk` (tolerant traversal from the
//! superblock) / `carve` (signature search without a trusted root) ->
//! `inventory` -> `read` (dataset bytes, filters) -> `write` (hdf5 crate) ->
//! `report` (human and JSON).

pub mod carve;
pub mod follow;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod inventory;
pub mod merge;
pub mod pipeline;
pub mod progress;
pub mod read;
pub mod report;
pub mod salvage;
pub mod sigbus;
pub mod walk;
pub mod write;

pub use inventory::Inventory;
pub use pipeline::{scan_bytes, scan_path, scan_path_with, CarveMode, Input};

//! h5salvage: a forensic scanner and salvager for damaged HDF5 files.
//!
//! Stages, each testable alone, talking only through [`inventory::Inventory`]:
//! `format` (bytes -> typed structures; `format::codec` holds the sizes, the
//! reader, checksums and message framing) -> `follow` (chasing addresses
//! through the file image: object headers and continuations, B-trees, chunk
//! listings, heap objects, dense links) -> `walk` (tolerant traversal from
//! the superblock) / `carve` (signature search without a trusted root) ->
//! `pipeline` (opening inputs; walk, carve, combine) -> `inventory` (the
//! shared type and its byte image) -> `read` (dataset bytes, filters) ->
//! `write` (hdf5 crate) -> the jobs `salvage` and `merge` -> `report` (human
//! and JSON).
//!
//! Where a job is done: chunks of a dataset are listed in
//! `follow::chunks`; a checksum is checked in `format::codec`; an
//! object-header message is framed in `format::codec` (`MessageHeader`).

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

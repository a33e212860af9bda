//! Reading a dataset's raw data: from an inventory [`Dataset`] to bytes that
//! are inside the file and verified as far as the format allows (spec
//! IV.A.2.i "The Data Layout Message" for where the bytes are, IV.A.2.l
//! "The Data Storage - Filter Pipeline Message" for how chunks were
//! encoded, III.E "Global Heap" for variable-length data, in [`vlen`]).
//!
//! Principle: never invent data. A chunk is *verified* when
//! [`decode_chunk`] succeeds: its bytes are inside the file, every filter
//! could be undone (a deflate stream decodes completely with a good Adler-32,
//! a Fletcher-32 checksum matches) and the result has exactly the chunk's
//! size. Unfiltered bytes carry no check at all: for them "inside the file"
//! is all the format lets anyone verify (a flipped byte in an unfiltered
//! chunk or a contiguous dataset is undetectable). LZF carries no checksum:
//! its chunks are verified as far as its structure allows (every
//! instruction complete, no reference before the start, exactly the
//! chunk's size). A chunk whose filter cannot be undone (szip, nbit,
//! scaleoffset, any other registered filter) cannot be verified: it is
//! listed as unverified, naming the filter id.

pub mod filters;
pub mod region;
pub mod timing;
pub mod vds;
pub mod vlen;

use crate::follow::Image;
use crate::format::is_undefined;
use crate::format::message::data_layout::{
    ChunkIndex, LayoutClass, FLAG_DONT_FILTER_PARTIAL_BOUND_CHUNKS,
};
use crate::format::message::datatype::Datatype;
use crate::format::message::filter_pipeline::FilterPipeline;
use crate::inventory::{ChunkRef, Dataset};

/// Global heap values the writer needs to rebuild a buffer of elements:
/// variable-length data ([`vlen`]) and old-style region references
/// ([`region`]), each keyed by its byte offset in the buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeapValues {
    pub vlen: Vec<vlen::VlenSlot>,
    pub regions: Vec<region::RegionSlot>,
}

impl HeapValues {
    /// Only variable-length values.
    pub fn vlen(vlen: Vec<vlen::VlenSlot>) -> HeapValues {
        HeapValues {
            vlen,
            regions: Vec::new(),
        }
    }
}

/// Resolves the heap values of `raw` (whole elements of `datatype`). Fails
/// only when variable-length data cannot be resolved; each region reference
/// carries its own outcome.
pub fn resolve_heap_values(
    image: &Image,
    datatype: &Datatype,
    raw: &[u8],
) -> Result<HeapValues, crate::inventory::Problem> {
    let vlen = if datatype.is_variable_length() {
        vlen::resolve_vlen(image, datatype, raw)?
    } else {
        Vec::new()
    };
    Ok(HeapValues {
        vlen,
        regions: region::resolve_regions(image, datatype, raw),
    })
}

/// Largest buffer [`assemble`] builds (1 GiB).
pub const MAX_ASSEMBLE_BYTES: u64 = 1 << 30;

/// A stored chunk whose bytes are inside the file and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChunk<'a> {
    /// Element coordinates of the chunk's first element.
    pub offset: Vec<u64>,
    /// Bit i set: filter i was not applied to these bytes. For a partial
    /// edge chunk of a dataset with the "do not filter partial bound chunks"
    /// layout flag this has every bit set (the bytes are unfiltered).
    pub filter_mask: u32,
    /// The stored (still filtered) bytes, exactly as in the file.
    pub stored: &'a [u8],
}

/// Why stored data cannot be read or verified: callers decide on this,
/// never on the words of [`ReadError::message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Beyond a size limit (`--max-chunk-mib`, the assemble limit).
    LimitExceeded,
    /// A filter of the pipeline cannot be decoded here (szip, nbit,
    /// scaleoffset, a registered plugin): the bytes cannot be verified.
    UndecodableFilter,
    /// A filter failed: Fletcher-32 mismatch, corrupt or cut stream, output
    /// of the wrong size.
    FilterFailed,
    /// The stored bytes lie (partly) outside the file.
    OutsideFile,
    /// The index entry cannot be right: offset off the chunk grid or
    /// outside the extent, wrong rank, or listed several times.
    BadIndexEntry,
    /// The bytes overlap other structures: not trusted.
    NotTrusted,
    /// The layout or index cannot be read (sizes overflow, chunks cut, ...).
    Unreadable,
}

/// A failure to read stored data: its kind and, in words, what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    pub kind: FailureKind,
    pub message: String,
}

impl ReadError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> ReadError {
        ReadError {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A listed chunk that cannot be trusted or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkFailure {
    pub offset: Vec<u64>,
    /// HDF5 address of the stored bytes, as the index lists it.
    pub address: u64,
    /// Why, for decisions.
    pub kind: FailureKind,
    /// Why, in words.
    pub reason: String,
}

/// What a dataset's raw data amounts to; see [`dataset_data`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetData<'a> {
    /// Compact or contiguous data in the file's datatype layout. `bytes` may be a
    /// prefix of `expected` bytes when the file is cut (then the dataset is partial).
    Contiguous { bytes: &'a [u8], expected: u64 },
    /// Chunked: every listed chunk either verified or failed; `failed` includes chunks
    /// outside the file, failing fletcher32, failing decompression or decoding to the wrong size.
    Chunked {
        chunks: Vec<VerifiedChunk<'a>>,
        /// Chunks whose bytes are inside the file and pass every structural
        /// check, but pass through a filter this crate cannot decode
        /// (szip, nbit, scaleoffset, registered plugins): they can be copied
        /// as stored, not verified. `unverified_filters` names the filters.
        unverified: Vec<VerifiedChunk<'a>>,
        unverified_filters: Vec<String>,
        failed: Vec<ChunkFailure>,
        /// Offsets of listed chunks that lie wholly beyond the current
        /// extent but inside the maximum one (left by a shrink that did not
        /// prune them): they hold no element of the dataset and are not
        /// read. See [`beyond_extent`].
        beyond_extent: Vec<Vec<u64>>,
        /// Unfiltered chunk size in bytes.
        chunk_bytes: u64,
    },
    /// Storage never allocated (contiguous address undefined, or empty chunk index): reads give the fill value; nothing is lost.
    NotAllocated,
    /// Cannot be read at all (virtual layout, unknown filter that cannot even be copied, ...).
    Unreadable { reason: String },
}

/// Reverses the filter pipeline on one stored chunk (filters applied in reverse order,
/// skipping those whose bit is set in `filter_mask`): fletcher32 checksum verified and
/// stripped, deflate decompressed with an output cap of `expected_len` bytes (anything
/// larger is an error: deflate bomb), lzf decompressed the same way, shuffle undone. Unknown filters (szip, nbit,
/// scaleoffset, any registered id) -> Err naming the filter id. Result must be exactly
/// `expected_len` bytes, else Err. Chunks above [`filters::max_chunk_bytes`] are refused.
pub fn decode_chunk(
    stored: &[u8],
    pipeline: Option<&FilterPipeline>,
    filter_mask: u32,
    element_size: u32,
    expected_len: usize,
) -> Result<Vec<u8>, ReadError> {
    filters::reverse_pipeline(stored, pipeline, filter_mask, element_size, expected_len)
}

/// Where a dataset's raw data is and which of it can be trusted.
///
/// - Compact: the bytes inside the layout message (`Contiguous`).
/// - Contiguous: `NotAllocated` if the address is undefined, else the prefix
///   of the expected bytes (dataspace elements x element size, no more than
///   the layout's stored size) that lies inside the file.
/// - Chunked: each listed chunk is decoded once with [`decode_chunk`] and
///   lands in `chunks` or `failed`. No chunk listed: `NotAllocated` when the
///   index was read completely, `Unreadable` when it was not (the chunks
///   may exist but nothing says where).
/// - Virtual: `Unreadable`.
///
/// Never panics; never reads outside the file.
pub fn dataset_data<'a>(image: &Image<'a>, ds: &Dataset) -> DatasetData<'a> {
    if ds.external_files {
        return DatasetData::Unreadable {
            reason: crate::walk::dataset::EXTERNAL_NOT_READ.into(),
        };
    }
    match &ds.layout.class {
        LayoutClass::Compact {
            size, data_offset, ..
        } => {
            let expected = ds.data_bytes().unwrap_or(*size);
            let take = expected.min(*size);
            let bytes = file_range(image, *data_offset, take).unwrap_or_default();
            DatasetData::Contiguous { bytes, expected }
        }
        LayoutClass::Contiguous { address, size } => {
            if is_undefined(*address) {
                return DatasetData::NotAllocated;
            }
            let Some(expected) = ds.data_bytes().or(*size) else {
                return DatasetData::Unreadable {
                    reason: "dataset size overflows".into(),
                };
            };
            let declared = size.map_or(expected, |s| s.min(expected));
            let bytes = match image.absolute(*address) {
                Some(abs) if abs < image.len() => {
                    let avail = image.len() - abs;
                    file_range(image, abs, declared.min(avail)).unwrap_or_default()
                }
                _ => &[],
            };
            DatasetData::Contiguous { bytes, expected }
        }
        LayoutClass::Chunked {
            dims, flags, index, ..
        } => chunked(image, ds, dims, *flags, index),
        LayoutClass::Virtual { .. } => DatasetData::Unreadable {
            reason: "virtual dataset: its data lives in other datasets or files".into(),
        },
    }
}

/// `len` bytes at absolute file offset `abs`, if all inside the file.
fn file_range<'a>(image: &Image<'a>, abs: u64, len: u64) -> Option<&'a [u8]> {
    let start = usize::try_from(abs).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    image.bytes.get(start..end)
}

fn chunked<'a>(
    image: &Image<'a>,
    ds: &Dataset,
    dims: &[u64],
    flags: u8,
    index: &ChunkIndex,
) -> DatasetData<'a> {
    match plan_chunks(image, ds, dims, flags, index) {
        Staged::Chunks(plan) => plan.verify(ds, Verify::Parallel, |_, _| {}),
        Staged::Ready(data) => data,
    }
}

/// A dataset's data, or for a chunked one the plan of what to verify; see
/// [`stage_data`].
pub enum Staged<'a> {
    Ready(DatasetData<'a>),
    Chunks(ChunkPlan<'a>),
}

/// [`dataset_data`] in two steps: everything but the decoding of chunks is
/// done here; a chunked dataset's chunks are then verified by
/// [`ChunkPlan::verify`], which hands each verified chunk over as soon as
/// it is (so a writer can write while other threads verify).
pub fn stage_data<'a>(image: &Image<'a>, ds: &Dataset) -> Staged<'a> {
    if let (
        LayoutClass::Chunked {
            dims, flags, index, ..
        },
        false,
    ) = (&ds.layout.class, ds.external_files)
    {
        return plan_chunks(image, ds, dims, *flags, index);
    }
    Staged::Ready(dataset_data(image, ds))
}

/// One listed chunk after the checks that need no decoding.
enum Planned<'a> {
    Beyond(Vec<u64>),
    Failed(ChunkFailure),
    Unverified(VerifiedChunk<'a>, String),
    /// With the address the index lists.
    Decode(VerifiedChunk<'a>, u64),
}

/// The listed chunks of a dataset, checked except for their decoding.
pub struct ChunkPlan<'a> {
    entries: Vec<Planned<'a>>,
    chunk_bytes: u64,
    expected_len: usize,
}

/// How [`ChunkPlan::verify`] decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// On the worker threads of the rayon pool when there is enough to
    /// decode (the caller's thread receives the verified chunks); the
    /// decoded bytes are not kept.
    Parallel,
    /// On the caller's thread, handing the decoded bytes along.
    Decoded,
}

/// Below this many stored bytes a dataset's chunks are verified on the
/// caller's thread: handing them to other threads would cost more.
const PARALLEL_BYTES: u64 = 4 << 20;

/// How far ahead of the decoding threads the pages of a dataset's chunks
/// are asked for ([`crate::pipeline::read_ahead`]), and how far the
/// decoders may run ahead of the thread writing the verified chunks.
#[cfg(not(test))]
const READ_AHEAD_BYTES: u64 = 32 << 20;
/// Small in tests, so that the decoders do wait for the writing thread
/// (`parallel_verification_matches_sequential`: 4 chunks ahead).
#[cfg(test)]
const READ_AHEAD_BYTES: u64 = 1 << 20;

/// How often the worker-thread path ran (tests check it was taken).
#[cfg(test)]
static PARALLEL_RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl<'a> ChunkPlan<'a> {
    /// Decodes every chunk that needs it (each once) and gives the
    /// dataset's data, exactly as [`dataset_data`]. `sink` gets each
    /// verified chunk, in index order, as soon as it and every chunk
    /// before it are settled, on the caller's thread; with
    /// [`Verify::Decoded`] also its decoded bytes.
    pub fn verify(
        self,
        ds: &Dataset,
        how: Verify,
        mut sink: impl FnMut(&VerifiedChunk<'a>, Option<&[u8]>),
    ) -> DatasetData<'a> {
        let ChunkPlan {
            entries,
            chunk_bytes,
            expected_len,
        } = self;
        let decode =
            |c: &VerifiedChunk<'a>, f: Option<BytesSink>| decode_timed(ds, expected_len, c, f);
        let todo: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, Planned::Decode(..)))
            .map(|(i, _)| i)
            .collect();
        let stored: u64 = todo
            .iter()
            .filter_map(|&i| match &entries[i] {
                Planned::Decode(c, _) => Some(c.stored.len() as u64),
                _ => None,
            })
            .sum();
        let mut results: Vec<Option<Result<(), ReadError>>> = vec![None; entries.len()];
        let parallel = how == Verify::Parallel
            && todo.len() > 1
            && stored >= PARALLEL_BYTES
            && rayon::current_num_threads() > 1
            // Never block a pool thread waiting for the pool.
            && rayon::current_thread_index().is_none();
        if parallel {
            #[cfg(test)]
            PARALLEL_RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
            let next = AtomicUsize::new(0);
            // Chunks whose pages were asked for ahead of the decoders
            // (`pipeline::read_ahead`): about READ_AHEAD_BYTES ahead.
            let advised = AtomicUsize::new(0);
            let ahead = usize::try_from(READ_AHEAD_BYTES / (stored / todo.len() as u64).max(1))
                .unwrap_or(usize::MAX)
                .clamp(2, 4096);
            // Bounded: the decoders wait when they are that far ahead of
            // this thread (a slow output), so the mapped pages of chunks
            // verified but not yet written (released once written) stay
            // about READ_AHEAD_BYTES, whatever the dataset's size.
            let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Result<(), ReadError>)>(ahead);
            let (todo, entries, next, decode, advised) =
                (&todo, &entries, &next, &decode, &advised);
            rayon::in_place_scope(|scope| {
                for _ in 0..rayon::current_num_threads().min(todo.len()) {
                    let tx = tx.clone();
                    scope.spawn(move |_| loop {
                        let k = next.fetch_add(1, Relaxed);
                        let want = k.saturating_add(ahead).min(todo.len());
                        for j in advised.fetch_max(want, Relaxed)..want {
                            if let Planned::Decode(c, _) = &entries[todo[j]] {
                                crate::pipeline::read_ahead(c.stored);
                            }
                        }
                        let Some(&i) = todo.get(k) else { break };
                        let Planned::Decode(c, _) = &entries[i] else {
                            continue;
                        };
                        if tx.send((i, decode(c, None))).is_err() {
                            break;
                        }
                    });
                }
                drop(tx);
                // This thread hands the verified chunks over in order.
                let mut due = 0usize;
                let mut waited = std::time::Instant::now();
                while let Ok((i, r)) = rx.recv() {
                    timing::add(&timing::WAIT_NS, waited);
                    results[i] = Some(r);
                    while let Some(&i) = todo.get(due) {
                        match (&results[i], &entries[i]) {
                            (Some(Ok(())), Planned::Decode(c, _)) => sink(c, None),
                            (Some(_), _) => {}
                            (None, _) => break,
                        }
                        due += 1;
                    }
                    waited = std::time::Instant::now();
                }
            });
        } else {
            for &i in &todo {
                if let Planned::Decode(c, _) = &entries[i] {
                    let r = match how {
                        Verify::Decoded => decode(c, Some(&mut |d| sink(c, Some(d)))),
                        Verify::Parallel => decode(c, None).inspect(|_| sink(c, None)),
                    };
                    results[i] = Some(r);
                }
            }
        }
        let mut chunks = Vec::new();
        let mut unverified = Vec::new();
        let mut unverified_filters: Vec<String> = Vec::new();
        let mut failed = Vec::new();
        let mut beyond = Vec::new();
        for (e, r) in entries.into_iter().zip(results) {
            match e {
                Planned::Beyond(o) => beyond.push(o),
                Planned::Failed(f) => failed.push(f),
                Planned::Unverified(v, filter) => {
                    if !unverified_filters.contains(&filter) {
                        unverified_filters.push(filter);
                    }
                    unverified.push(v);
                }
                Planned::Decode(v, address) => match r {
                    Some(Ok(())) => chunks.push(v),
                    Some(Err(e)) => failed.push(ChunkFailure {
                        address,
                        offset: v.offset,
                        kind: e.kind,
                        reason: e.message,
                    }),
                    // Every planned chunk was decoded above.
                    None => failed.push(ChunkFailure {
                        address,
                        offset: v.offset,
                        kind: FailureKind::Unreadable,
                        reason: "not verified".into(),
                    }),
                },
            }
        }
        DatasetData::Chunked {
            chunks,
            unverified,
            unverified_filters,
            failed,
            beyond_extent: beyond,
            chunk_bytes,
        }
    }
}

/// Where decoded bytes go.
type BytesSink<'f> = &'f mut dyn FnMut(&[u8]);

/// Undoes the filters of one planned chunk (the verification, see
/// [`decode_chunk`]) on this thread's reused buffers, hands the decoded
/// bytes to `f` when there is one (else they are not all produced:
/// [`filters::verify_reversed`]), and counts the decoding time in
/// [`timing::DECODE_NS`].
fn decode_timed(
    ds: &Dataset,
    expected_len: usize,
    c: &VerifiedChunk,
    f: Option<BytesSink>,
) -> Result<(), ReadError> {
    let start = std::time::Instant::now();
    let (stored, pipeline, mask, size) = (
        c.stored,
        ds.filters.as_ref(),
        c.filter_mask,
        ds.datatype.size,
    );
    let Some(f) = f else {
        let r = filters::verify_reversed(stored, pipeline, mask, size, expected_len);
        timing::add(&timing::DECODE_NS, start);
        return r;
    };
    // The time until `f` is called, not what `f` does.
    let r = filters::with_reversed(stored, pipeline, mask, size, expected_len, |d| {
        timing::add(&timing::DECODE_NS, start);
        f(d)
    });
    if r.is_err() {
        timing::add(&timing::DECODE_NS, start);
    }
    r
}

/// What [`decode_all`] decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeTotals {
    /// Chunks whose filters were undone (verified or failed).
    pub chunks: u64,
    /// Their stored bytes.
    pub stored: u64,
    /// Bytes out of the verified ones.
    pub decoded: u64,
    /// Chunks that failed verification.
    pub failed: u64,
}

/// Verifies every listed chunk of `datasets` exactly as `salvage` does
/// (the same checks, decoder and per-thread buffers), on all the threads
/// of the rayon pool at once, and keeps nothing: what verification alone
/// costs, with no writing and no ordering (the "decode floor" of
/// `bench/run`'s data-heavy case, `examples/decode_floor.rs`).
pub fn decode_all(image: &Image, datasets: &[&Dataset]) -> DecodeTotals {
    use rayon::prelude::*;
    let plans: Vec<(&Dataset, ChunkPlan)> = datasets
        .iter()
        .filter_map(|&ds| match stage_data(image, ds) {
            Staged::Chunks(p) => Some((ds, p)),
            Staged::Ready(_) => None,
        })
        .collect();
    let work: Vec<(&Dataset, usize, &VerifiedChunk)> = plans
        .iter()
        .flat_map(|(ds, p)| {
            p.entries.iter().filter_map(move |e| match e {
                Planned::Decode(c, _) => Some((*ds, p.expected_len, c)),
                _ => None,
            })
        })
        .collect();
    work.par_iter()
        .map(|&(ds, expected_len, c)| {
            let r = decode_timed(ds, expected_len, c, None);
            DecodeTotals {
                chunks: 1,
                stored: c.stored.len() as u64,
                decoded: if r.is_ok() { expected_len as u64 } else { 0 },
                failed: u64::from(r.is_err()),
            }
        })
        .reduce(DecodeTotals::default, |a, b| DecodeTotals {
            chunks: a.chunks + b.chunks,
            stored: a.stored + b.stored,
            decoded: a.decoded + b.decoded,
            failed: a.failed + b.failed,
        })
}

fn plan_chunks<'a>(
    image: &Image<'a>,
    ds: &Dataset,
    dims: &[u64],
    flags: u8,
    index: &ChunkIndex,
) -> Staged<'a> {
    let rank = ds.dataspace.dims.len();
    if dims.len() != rank || rank == 0 {
        return Staged::Ready(DatasetData::Unreadable {
            reason: format!(
                "chunk rank {} does not match dataspace rank {rank}",
                dims.len()
            ),
        });
    }
    let Some(chunk_bytes) = ds.chunk_bytes(dims) else {
        return Staged::Ready(DatasetData::Unreadable {
            reason: "chunk size overflows".into(),
        });
    };
    if ds.chunks.is_empty() {
        return Staged::Ready(if ds.coverage.index_complete {
            DatasetData::NotAllocated
        } else {
            DatasetData::Unreadable {
                reason: "the chunk index could not be read: no chunk is known".into(),
            }
        });
    }
    let expected_len = usize::try_from(chunk_bytes).unwrap_or(usize::MAX);
    // An offset the index lists more than once: a key was damaged (v1
    // B-tree keys carry no checksum), so which entry holds that offset
    // cannot be told, and the chunk whose key it was lost its own offset.
    let mut listed: std::collections::HashMap<&[u64], usize> = std::collections::HashMap::new();
    for c in &ds.chunks {
        *listed.entry(c.offset.as_slice()).or_default() += 1;
    }
    let keys_checked = !matches!(index, ChunkIndex::BtreeV1 { .. });
    let no_hole = grid_listed_whole(ds, dims, listed.keys().copied());
    let mut entries = Vec::with_capacity(ds.chunks.len());
    for c in &ds.chunks {
        if beyond_extent(ds, dims, &c.offset) && (keys_checked || no_hole) {
            entries.push(Planned::Beyond(c.offset.clone()));
            continue;
        }
        let times = listed.get(c.offset.as_slice()).copied().unwrap_or(0);
        if times > 1 {
            entries.push(Planned::Failed(ChunkFailure {
                offset: c.offset.clone(),
                address: c.address,
                kind: FailureKind::BadIndexEntry,
                reason: format!(
                    "offset listed {times} times by the chunk index: which entry holds it \
                     cannot be told, and a chunk whose key was damaged is missing at an \
                     unknown offset (its elements read as the fill value)"
                ),
            }));
            continue;
        }
        entries.push(match check_chunk(image, ds, dims, flags, c) {
            Ok((v, None)) => Planned::Decode(v, c.address),
            Ok((v, Some(filter))) => Planned::Unverified(v, filter),
            Err(e) => Planned::Failed(ChunkFailure {
                offset: c.offset.clone(),
                address: c.address,
                kind: e.kind,
                reason: e.message,
            }),
        });
    }
    Staged::Chunks(ChunkPlan {
        entries,
        chunk_bytes,
        expected_len,
    })
}

/// True if a chunk at `offset` lies wholly beyond the dataset's current
/// extent in some dimension but inside its maximum extent in every one, on
/// the chunk grid: legal (spec IV.A.2.i: chunks cover the maximum extent;
/// shrinking a dataset need not free them, and libhdf5 before 1.8 or a
/// converter leave them), and holding no element h5py reads.
pub fn beyond_extent(ds: &Dataset, dims: &[u64], offset: &[u64]) -> bool {
    let extent = &ds.dataspace.dims;
    let max = ds.dataspace.max_dims.as_ref().unwrap_or(extent);
    if offset.len() != dims.len() || extent.len() != dims.len() || max.len() != dims.len() {
        return false;
    }
    let on_grid = offset.iter().zip(dims).all(|(&o, &d)| d != 0 && o % d == 0);
    let inside_max = offset
        .iter()
        .zip(max)
        .all(|(&o, &m)| is_undefined(m) || o < m);
    let past = offset.iter().zip(extent).any(|(&o, &e)| o >= e);
    on_grid && inside_max && past
}

/// True if `listed` (chunk offsets of a version-1 B-tree, whose keys carry
/// no checksum) covers every chunk-grid position inside the current
/// extent. Only then can a chunk listed beyond the extent not be an
/// in-extent chunk whose key was damaged (its own place would be empty).
fn grid_listed_whole<'k>(
    ds: &Dataset,
    dims: &[u64],
    listed: impl Iterator<Item = &'k [u64]>,
) -> bool {
    let extent = &ds.dataspace.dims;
    let Some(positions) = extent.iter().zip(dims).try_fold(1u64, |n, (&e, &d)| {
        n.checked_mul(e.checked_div(d)? + u64::from(e % d.max(1) != 0))
    }) else {
        return false;
    };
    let inside = listed
        .filter(|o| {
            o.len() == dims.len()
                && o.iter()
                    .zip(dims)
                    .zip(extent)
                    .all(|((&o, &d), &e)| d != 0 && o % d == 0 && o < e)
        })
        .count() as u64;
    inside == positions
}

/// The first filter of the pipeline that is applied to a chunk with
/// `mask` and that [`decode_chunk`] cannot reverse.
fn undecodable_filter(ds: &Dataset, mask: u32) -> Option<String> {
    let p = ds.filters.as_ref()?;
    p.filters
        .iter()
        .enumerate()
        .filter(|(i, _)| *i >= 32 || mask & (1u32 << i) == 0)
        .map(|(_, f)| f)
        .find(|f| !filters::can_decode(f.id))
        .map(|f| format!("{} (id {})", f.describe(), f.id))
}

/// True if the chunk at `offset` reaches past the dataset's current extent.
fn is_partial_edge(offset: &[u64], chunk: &[u64], extent: &[u64]) -> bool {
    offset
        .iter()
        .zip(chunk)
        .zip(extent)
        .any(|((&o, &c), &e)| o.checked_add(c).is_none_or(|end| end > e))
}

/// The filter mask that actually applies to a chunk: with the layout flag
/// "do not filter partial bound chunks" (spec IV.A.2.i, layout v4 flags bit
/// 0) partial edge chunks are stored unfiltered whatever their mask says.
fn effective_mask(ds: &Dataset, dims: &[u64], flags: u8, c: &ChunkRef) -> u32 {
    if flags & FLAG_DONT_FILTER_PARTIAL_BOUND_CHUNKS != 0
        && is_partial_edge(&c.offset, dims, &ds.dataspace.dims)
    {
        u32::MAX
    } else {
        c.filter_mask
    }
}

/// The checks of one listed chunk that need no decoding: `Some(filter)`
/// when a filter it passes through cannot be decoded (then it can only be
/// copied as stored).
fn check_chunk<'a>(
    image: &Image<'a>,
    ds: &Dataset,
    dims: &[u64],
    flags: u8,
    c: &ChunkRef,
) -> Result<(VerifiedChunk<'a>, Option<String>), ReadError> {
    let bad_entry = |m: String| Err(ReadError::new(FailureKind::BadIndexEntry, m));
    if c.offset.len() != dims.len() {
        return bad_entry(format!(
            "chunk offset {:?} has rank {}, the dataset {}",
            c.offset,
            c.offset.len(),
            dims.len()
        ));
    }
    if let Some((i, _)) = c
        .offset
        .iter()
        .zip(dims)
        .enumerate()
        .find(|(_, (&o, &d))| d == 0 || o % d != 0)
    {
        return bad_entry(format!(
            "chunk offset {:?} is not on the chunk grid (dimension {i})",
            c.offset
        ));
    }
    // A chunk starting at or past the dataset's extent holds no element of
    // it: a damaged index key (spec III.A.1 chunk keys hold the offsets).
    if let Some(i) = c
        .offset
        .iter()
        .zip(&ds.dataspace.dims)
        .position(|(&o, &extent)| o >= extent)
    {
        return bad_entry(format!(
            "chunk offset {:?} lies outside the dataset's extent {:?} (dimension {i})",
            c.offset, ds.dataspace.dims
        ));
    }
    if !image.contains(c.address, c.size) {
        return Err(ReadError::new(
            FailureKind::OutsideFile,
            format!(
                "stored bytes ({} at address {:#x}) lie outside the file",
                c.size, c.address
            ),
        ));
    }
    if !c.present {
        return Err(ReadError::new(
            FailureKind::NotTrusted,
            "not trusted: its bytes overlap other structures (see the dataset's problems)",
        ));
    }
    let stored = image
        .slice("chunk", c.address, c.size)
        .map_err(|e| ReadError::new(FailureKind::OutsideFile, e.to_string()))?;
    let mask = effective_mask(ds, dims, flags, c);
    let chunk = VerifiedChunk {
        offset: c.offset.clone(),
        filter_mask: mask,
        stored,
    };
    Ok((chunk, undecodable_filter(ds, mask)))
}

/// The fill value bytes of one element: the stored fill value when it has
/// the element's size, else zeros (the library default).
pub fn fill_element(ds: &Dataset) -> Vec<u8> {
    let size = usize::try_from(ds.datatype.size).unwrap_or(0);
    match ds.fill_value.as_ref().and_then(|f| f.value.as_ref()) {
        Some(v) if v.len() == size => v.clone(),
        _ => vec![0; size.min(1 << 20)],
    }
}

/// FOR VERIFICATION ONLY (tests and whole-dataset checks), never for
/// salvage output: the full dataset bytes in the file's datatype layout,
/// row-major. Chunks are decoded and their in-extent part copied (edge
/// chunks clipped to the dataset extent); chunks the index does not list are
/// filled with the fill value (or zeros), as a reader would. Any failed
/// chunk, a cut contiguous dataset or an unreadable layout is an Err: this
/// function never returns bytes it could not read or verify except the fill
/// of unallocated chunks. Refuses datasets above [`MAX_ASSEMBLE_BYTES`].
pub fn assemble(image: &Image, ds: &Dataset) -> Result<Vec<u8>, ReadError> {
    let unreadable = |m: &str| ReadError::new(FailureKind::Unreadable, m);
    let total = ds
        .data_bytes()
        .ok_or_else(|| unreadable("dataset size overflows"))?;
    if total > MAX_ASSEMBLE_BYTES {
        return Err(ReadError::new(
            FailureKind::LimitExceeded,
            format!(
                "dataset of {total} bytes exceeds the {MAX_ASSEMBLE_BYTES}-byte assemble limit"
            ),
        ));
    }
    // total <= 1 GiB fits in usize on every supported target.
    let total = usize::try_from(total).map_err(|_| unreadable("dataset too large"))?;
    // A chunked dataset's chunks are decoded once, on this thread, each
    // copied into place as it is verified.
    let mut buf = Vec::new();
    let data = match &ds.layout.class {
        LayoutClass::Chunked {
            dims, flags, index, ..
        } if !ds.external_files => match plan_chunks(image, ds, dims, *flags, index) {
            Staged::Chunks(plan) => {
                buf = filled(ds, total);
                let mut copied = Ok(());
                let data = plan.verify(ds, Verify::Decoded, |c, decoded| {
                    if let (Some(d), Ok(())) = (decoded, &copied) {
                        let elem = u64::from(ds.datatype.size);
                        copied = copy_chunk(&mut buf, &ds.dataspace.dims, dims, &c.offset, elem, d);
                    }
                });
                copied.map_err(|m| ReadError::new(FailureKind::Unreadable, m))?;
                data
            }
            Staged::Ready(data) => data,
        },
        _ => dataset_data(image, ds),
    };
    match data {
        DatasetData::Contiguous { bytes, expected } => match bytes.get(..total) {
            Some(b) => Ok(b.to_vec()),
            None => Err(ReadError::new(
                FailureKind::OutsideFile,
                format!(
                    "contiguous data cut: {} of {expected} bytes in the file",
                    bytes.len()
                ),
            )),
        },
        DatasetData::NotAllocated => Ok(filled(ds, total)),
        DatasetData::Unreadable { reason } => Err(ReadError::new(FailureKind::Unreadable, reason)),
        DatasetData::Chunked {
            unverified,
            unverified_filters,
            failed,
            ..
        } => {
            if !unverified.is_empty() {
                return Err(ReadError::new(
                    FailureKind::UndecodableFilter,
                    format!(
                        "{} chunk(s) use filters that cannot be decoded: {}",
                        unverified.len(),
                        unverified_filters.join(", ")
                    ),
                ));
            }
            if let Some(f) = failed.first() {
                return Err(ReadError::new(
                    f.kind,
                    format!(
                        "{} chunk(s) failed, first at {:?}: {}",
                        failed.len(),
                        f.offset,
                        f.reason
                    ),
                ));
            }
            // Every verified chunk was copied into `buf` as it was decoded.
            if buf.len() != total {
                return Err(unreadable("chunks not copied"));
            }
            Ok(buf)
        }
    }
}

/// Element count per dimension and row-major bytes of a block of elements.
pub type Block = (Vec<u64>, Vec<u8>);

/// The part of a decoded chunk at element `offset` that lies inside the
/// dataset's `extent`: its element count per dimension and its bytes in
/// row-major order (edge chunks clipped). `None` if the chunk lies entirely
/// outside the extent. Used where elements must be converted before they
/// are written (variable-length data, references), so a chunk cannot be
/// copied as stored.
pub fn chunk_block(
    decoded: &[u8],
    extent: &[u64],
    chunk: &[u64],
    offset: &[u64],
    elem: u64,
) -> Result<Option<Block>, String> {
    if extent.len() != chunk.len() || offset.len() != chunk.len() {
        return Err("rank mismatch".into());
    }
    let mut count = Vec::with_capacity(chunk.len());
    for ((&e, &c), &o) in extent.iter().zip(chunk).zip(offset) {
        if o >= e {
            return Ok(None);
        }
        count.push(c.min(e - o));
    }
    // The block is never larger than the decoded chunk it comes from.
    let bytes = count
        .iter()
        .try_fold(elem, |a, c| a.checked_mul(*c))
        .filter(|b| *b <= decoded.len() as u64)
        .ok_or("chunk block larger than the decoded chunk")?;
    let mut block = vec![0u8; bytes as usize];
    let zero = vec![0u64; chunk.len()];
    copy_chunk(&mut block, &count, chunk, &zero, elem, decoded)?;
    Ok(Some((count, block)))
}

/// `total` bytes of repeated fill value.
fn filled(ds: &Dataset, total: usize) -> Vec<u8> {
    let fill = fill_element(ds);
    if fill.iter().all(|&b| b == 0) || fill.is_empty() {
        return vec![0; total];
    }
    fill.iter().copied().cycle().take(total).collect()
}

/// Copies the part of a decoded chunk at element `offset` that lies inside
/// `extent` into the row-major dataset buffer `buf`.
fn copy_chunk(
    buf: &mut [u8],
    extent: &[u64],
    chunk: &[u64],
    offset: &[u64],
    elem: u64,
    decoded: &[u8],
) -> Result<(), String> {
    let rank = extent.len();
    if rank == 0 || chunk.len() != rank || offset.len() != rank {
        return Err("rank mismatch".into());
    }
    // Elements of the chunk inside the extent, per dimension.
    let mut span = Vec::with_capacity(rank);
    for i in 0..rank {
        if offset[i] >= extent[i] {
            return Ok(()); // entirely outside the current extent
        }
        span.push(chunk[i].min(extent[i] - offset[i]));
    }
    let strides = |d: &[u64]| -> Option<Vec<u64>> {
        let mut s = vec![elem; rank];
        for i in (0..rank - 1).rev() {
            s[i] = s[i + 1].checked_mul(d[i + 1])?;
        }
        Some(s)
    };
    let src_stride = strides(chunk).ok_or("chunk stride overflow")?;
    let dst_stride = strides(extent).ok_or("dataset stride overflow")?;
    let row = usize::try_from(span[rank - 1].checked_mul(elem).ok_or("row overflow")?)
        .map_err(|_| "row too large")?;
    // Odometer over the leading rank-1 dimensions.
    let mut idx = vec![0u64; rank];
    loop {
        let mut src = 0u64;
        let mut dst = 0u64;
        for i in 0..rank {
            src = src
                .checked_add(idx[i].checked_mul(src_stride[i]).ok_or("overflow")?)
                .ok_or("overflow")?;
            let pos = offset[i].checked_add(idx[i]).ok_or("overflow")?;
            dst = dst
                .checked_add(pos.checked_mul(dst_stride[i]).ok_or("overflow")?)
                .ok_or("overflow")?;
        }
        let src = usize::try_from(src).map_err(|_| "offset too large")?;
        let dst = usize::try_from(dst).map_err(|_| "offset too large")?;
        let from = src
            .checked_add(row)
            .and_then(|e| decoded.get(src..e))
            .ok_or("decoded chunk shorter than its extent")?;
        let to = dst
            .checked_add(row)
            .and_then(|e| buf.get_mut(dst..e))
            .ok_or("chunk reaches outside the dataset buffer")?;
        to.copy_from_slice(from);
        // Advance the odometer over dimensions 0..rank-1.
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return Ok(());
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < span[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_block_clips_edge_chunks() {
        // Dataset 3x5 of 1-byte elements, chunks 2x4, chunk values 0..8.
        let decoded: Vec<u8> = (0..8).collect();
        let (count, b) = chunk_block(&decoded, &[3, 5], &[2, 4], &[2, 4], 1)
            .unwrap()
            .unwrap();
        assert_eq!((count, b), (vec![1, 1], vec![0]));
        let (count, b) = chunk_block(&decoded, &[3, 5], &[2, 4], &[2, 0], 1)
            .unwrap()
            .unwrap();
        assert_eq!((count, b), (vec![1, 4], vec![0, 1, 2, 3]));
        let (count, b) = chunk_block(&decoded, &[3, 5], &[2, 4], &[0, 4], 1)
            .unwrap()
            .unwrap();
        assert_eq!((count, b), (vec![2, 1], vec![0, 4]));
        assert_eq!(
            chunk_block(&decoded, &[3, 5], &[2, 4], &[4, 0], 1).unwrap(),
            None
        );
        // A decoded chunk too short for its block, and a rank mismatch.
        assert!(chunk_block(&decoded[..3], &[3, 5], &[2, 4], &[0, 0], 1).is_err());
        assert!(chunk_block(&decoded, &[3], &[2, 4], &[0, 0], 1).is_err());
    }

    #[test]
    fn copy_chunk_clips_edges() {
        // Dataset 3x5 of 1-byte elements, chunks 2x4.
        let extent = [3, 5];
        let chunk = [2, 4];
        let mut buf = vec![0u8; 15];
        let c = |base: u8| (0..8).map(|i| base + i).collect::<Vec<u8>>();
        for (off, base) in [([0, 0], 10), ([0, 4], 20), ([2, 0], 30), ([2, 4], 40)] {
            copy_chunk(&mut buf, &extent, &chunk, &off, 1, &c(base)).unwrap();
        }
        assert_eq!(
            buf,
            [10, 11, 12, 13, 20, 14, 15, 16, 17, 24, 30, 31, 32, 33, 40]
        );
        // A chunk past the extent is ignored; a short chunk is an error.
        copy_chunk(&mut buf, &extent, &chunk, &[4, 0], 1, &c(0)).unwrap();
        assert!(copy_chunk(&mut buf, &extent, &chunk, &[0, 0], 1, &[1, 2]).is_err());
        assert!(copy_chunk(&mut buf, &extent, &chunk, &[0], 1, &c(0)).is_err());
    }

    #[test]
    fn copy_chunk_3d_multibyte() {
        let extent = [2, 3, 3];
        let chunk = [2, 2, 2];
        let elem = 2u64;
        let mut buf = vec![0u8; 2 * 3 * 3 * 2];
        let mut expected = vec![0u8; buf.len()];
        for off in [[0, 0, 0], [0, 0, 2], [0, 2, 0], [0, 2, 2]] {
            let mut dec = vec![0u8; 16];
            for a in 0..2u64 {
                for b in 0..2u64 {
                    for c in 0..2u64 {
                        let (x, y, z) = (off[0] + a, off[1] + b, off[2] + c);
                        let v = (x * 9 + y * 3 + z) as u8;
                        let s = ((a * 4 + b * 2 + c) * 2) as usize;
                        dec[s] = v;
                        dec[s + 1] = 0xA0;
                        if y < 3 && z < 3 {
                            let d = ((x * 9 + y * 3 + z) * 2) as usize;
                            expected[d] = v;
                            expected[d + 1] = 0xA0;
                        }
                    }
                }
            }
            copy_chunk(&mut buf, &extent, &chunk, &off, elem, &dec).unwrap();
        }
        assert_eq!(buf, expected);
    }

    use crate::format::message::data_layout::{ChunkIndex, DataLayout};
    use crate::format::message::dataspace::{Dataspace, DataspaceKind};
    use crate::format::message::datatype::{ByteOrder, Datatype, DatatypeClass};
    use crate::format::message::filter_pipeline::{Filter, FilterPipeline, DEFLATE};
    use crate::format::{Sizes, UNDEFINED};
    use crate::inventory::Coverage;

    fn i4() -> Datatype {
        Datatype {
            version: 1,
            size: 4,
            class: DatatypeClass::FixedPoint {
                order: ByteOrder::LittleEndian,
                lo_pad: false,
                hi_pad: false,
                signed: true,
                bit_offset: 0,
                precision: 32,
            },
        }
    }

    fn chunked_ds(dims: Vec<u64>, chunk: Vec<u64>, chunks: Vec<ChunkRef>) -> Dataset {
        Dataset {
            datatype: i4(),
            dataspace: Dataspace {
                version: 1,
                kind: DataspaceKind::Simple,
                dims,
                max_dims: None,
            },
            layout: DataLayout {
                version: 3,
                class: LayoutClass::Chunked {
                    dims: chunk,
                    element_size: Some(4),
                    flags: 0,
                    index: ChunkIndex::BtreeV1 { address: 0 },
                },
            },
            filters: None,
            fill_value: None,
            external_files: false,
            chunks,
            coverage: Coverage {
                index_complete: true,
                ..Coverage::default()
            },
            beyond_index: Default::default(),
        }
    }

    fn chunk(offset: Vec<u64>, address: u64, size: u64) -> ChunkRef {
        ChunkRef {
            offset,
            address,
            size,
            filter_mask: 0,
            present: true,
        }
    }

    /// Enough stored bytes for the worker threads: the same verdicts, in
    /// the same order, as decoding on the caller's thread, and the sink
    /// gets exactly the verified chunks, in index order.
    #[test]
    fn parallel_verification_matches_sequential() {
        use std::io::Write;
        let n = 65536u64; // elements per chunk: 256 KiB
        let mut file = Vec::new();
        let mut refs = Vec::new();
        for i in 0..24u64 {
            // Noise: each chunk stays about 256 KiB stored, so the 24 of
            // them are above PARALLEL_BYTES.
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ i;
            let plain: Vec<u8> = (0..n * 4)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect();
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(1));
            e.write_all(&plain).unwrap();
            let mut z = e.finish().unwrap();
            match i % 7 {
                3 => {
                    let mid = z.len() / 2;
                    z[mid] ^= 0x55; // corrupt
                }
                5 => z.truncate(z.len() - 9), // cut
                _ => {}
            }
            refs.push(chunk(vec![i * n], file.len() as u64, z.len() as u64));
            file.extend_from_slice(&z);
        }
        let img = Image::new(&file, 0, Sizes::DEFAULT);
        let mut ds = chunked_ds(vec![24 * n], vec![n], refs);
        ds.filters = Some(FilterPipeline {
            version: 2,
            filters: vec![Filter {
                id: DEFLATE,
                name: None,
                flags: 0,
                client_data: vec![1],
            }],
        });
        let LayoutClass::Chunked {
            dims, flags, index, ..
        } = ds.layout.class.clone()
        else {
            panic!()
        };
        let run = |how: Verify| {
            let Staged::Chunks(plan) = plan_chunks(&img, &ds, &dims, flags, &index) else {
                panic!()
            };
            let mut seen = Vec::new();
            let data = plan.verify(&ds, how, |c, decoded| {
                assert_eq!(decoded.is_some(), how == Verify::Decoded);
                seen.push(c.offset[0]);
                // A slow writer: the decoders fill the bounded channel
                // (READ_AHEAD_BYTES) and wait.
                std::thread::sleep(std::time::Duration::from_millis(3));
            });
            (data, seen)
        };
        let before = PARALLEL_RUNS.load(std::sync::atomic::Ordering::Relaxed);
        let (par, par_seen) = run(Verify::Parallel);
        if rayon::current_num_threads() > 1 {
            assert!(
                PARALLEL_RUNS.load(std::sync::atomic::Ordering::Relaxed) > before,
                "the worker-thread path was not taken"
            );
        } else {
            eprintln!("one rayon thread: the worker-thread path cannot run here");
        }
        let (seq, seq_seen) = run(Verify::Decoded);
        assert_eq!(par, seq);
        assert_eq!(par_seen, seq_seen);
        let DatasetData::Chunked { chunks, failed, .. } = par else {
            panic!()
        };
        let verified: Vec<u64> = chunks.iter().map(|c| c.offset[0]).collect();
        assert_eq!(par_seen, verified);
        assert_eq!(failed.len(), 6, "{failed:?}");
        assert_eq!(chunks.len(), 18);
        assert!(failed
            .iter()
            .all(|f| f.offset[0] / n % 7 == 3 || f.offset[0] / n % 7 == 5));
        // The decode floor's pass gives the same verdicts.
        let stored: u64 = ds.chunks.iter().map(|c| c.size).sum();
        assert_eq!(
            decode_all(&img, &[&ds]),
            DecodeTotals {
                chunks: 24,
                stored,
                decoded: 18 * n * 4,
                failed: 6
            }
        );
    }

    #[test]
    fn chunked_sorts_good_and_bad_chunks() {
        let file: Vec<u8> = (0..64u8).collect();
        let img = Image::new(&file, 0, Sizes::DEFAULT);
        let ds = chunked_ds(
            vec![24],
            vec![4],
            vec![
                chunk(vec![0], 0, 16),
                chunk(vec![4], 16, 16),
                chunk(vec![8], 60, 16),         // past the end of the file
                chunk(vec![12], UNDEFINED, 16), // undefined address
                chunk(vec![16], u64::MAX - 3, 16),
                chunk(vec![0, 0], 0, 16), // wrong rank
                chunk(vec![2], 0, 16),    // off the grid
                chunk(vec![20], 0, 12),   // wrong size
            ],
        );
        let DatasetData::Chunked {
            chunks,
            unverified,
            failed,
            chunk_bytes,
            ..
        } = dataset_data(&img, &ds)
        else {
            panic!()
        };
        assert!(unverified.is_empty());
        assert_eq!(chunk_bytes, 16);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1].stored, &file[16..32]);
        let reasons: Vec<&str> = failed.iter().map(|f| f.reason.as_str()).collect();
        assert_eq!(failed.len(), 6, "{reasons:?}");
        assert_eq!(failed[0].kind, FailureKind::OutsideFile, "{reasons:?}");
        assert_eq!(failed[5].kind, FailureKind::FilterFailed, "{reasons:?}");
        assert!(reasons[5].contains("expected 16"));
        // assemble refuses while any chunk failed; with the good ones only,
        // the second chunk is clipped to the extent (6 elements).
        assert!(assemble(&img, &ds).is_err());
        let good = chunked_ds(vec![6], vec![4], ds.chunks[..2].to_vec());
        assert_eq!(assemble(&img, &good).unwrap(), &file[..24]);
    }

    #[test]
    fn chunked_edge_cases() {
        let file = [0u8; 64];
        let img = Image::new(&file, 0, Sizes::DEFAULT);
        // No chunk, complete index: never written, fill value.
        let mut ds = chunked_ds(vec![3], vec![2], vec![]);
        assert_eq!(dataset_data(&img, &ds), DatasetData::NotAllocated);
        ds.fill_value = Some(crate::format::message::fill_value::FillValue {
            version: 2,
            space_allocation_time: 2,
            fill_write_time: 2,
            defined: true,
            undefined: false,
            value: Some(vec![1, 2, 3, 4]),
        });
        assert_eq!(assemble(&img, &ds).unwrap(), [1, 2, 3, 4].repeat(3));
        // No chunk, unreadable index: unreadable, not "nothing lost".
        ds.coverage.index_complete = false;
        assert!(matches!(
            dataset_data(&img, &ds),
            DatasetData::Unreadable { .. }
        ));
        // Rank mismatch and overflowing chunk size.
        let ds = chunked_ds(vec![3, 3], vec![2], vec![chunk(vec![0], 0, 8)]);
        assert!(matches!(
            dataset_data(&img, &ds),
            DatasetData::Unreadable { .. }
        ));
        let ds = chunked_ds(vec![3], vec![u64::MAX], vec![chunk(vec![0], 0, 8)]);
        assert!(matches!(
            dataset_data(&img, &ds),
            DatasetData::Unreadable { .. }
        ));
        // Huge (but not overflowing) chunks fail, never allocate.
        let ds = chunked_ds(vec![3], vec![1 << 40], vec![chunk(vec![0], 0, 8)]);
        let DatasetData::Chunked { failed, .. } = dataset_data(&img, &ds) else {
            panic!()
        };
        assert_eq!(
            failed[0].kind,
            FailureKind::LimitExceeded,
            "{}",
            failed[0].reason
        );
        // Huge datasets are refused by assemble.
        let ds = chunked_ds(vec![1 << 40], vec![4], vec![]);
        assert_eq!(
            assemble(&img, &ds).unwrap_err().kind,
            FailureKind::LimitExceeded
        );
        let ds = chunked_ds(vec![u64::MAX, 2], vec![4, 1], vec![]);
        assert!(assemble(&img, &ds).is_err());
    }

    #[test]
    fn unknown_filter_chunks_fail_with_the_id() {
        let file = [0u8; 64];
        let img = Image::new(&file, 0, Sizes::DEFAULT);
        let mut ds = chunked_ds(vec![4], vec![4], vec![chunk(vec![0], 0, 16)]);
        ds.filters = Some(FilterPipeline {
            version: 2,
            filters: vec![
                Filter {
                    id: 32026,
                    name: Some("blosc2".into()),
                    flags: 0,
                    client_data: vec![],
                },
                Filter {
                    id: DEFLATE,
                    name: None,
                    flags: 0,
                    client_data: vec![4],
                },
            ],
        });
        ds.chunks[0].filter_mask = 0b10; // deflate skipped, blosc2 applied
        let DatasetData::Chunked {
            chunks,
            unverified,
            unverified_filters,
            failed,
            ..
        } = dataset_data(&img, &ds)
        else {
            panic!()
        };
        // Copied through as stored, never decoded: named, not verified.
        assert!(chunks.is_empty() && failed.is_empty());
        assert_eq!(unverified.len(), 1);
        assert_eq!(unverified_filters, ["blosc2(32026) (id 32026)"]);
        // With blosc2 skipped by the mask, deflate applies and must verify.
        ds.chunks[0].filter_mask = 0b01;
        let DatasetData::Chunked { failed, .. } = dataset_data(&img, &ds) else {
            panic!()
        };
        assert_eq!(failed.len(), 1, "zeros are no zlib stream");
    }

    #[test]
    fn offsets_listed_twice_fail() {
        let file: Vec<u8> = (0..64u8).collect();
        let img = Image::new(&file, 0, Sizes::DEFAULT);
        let ds = chunked_ds(
            vec![12],
            vec![4],
            vec![
                chunk(vec![0], 0, 16),
                chunk(vec![0], 16, 16),
                chunk(vec![8], 32, 16),
            ],
        );
        let DatasetData::Chunked { chunks, failed, .. } = dataset_data(&img, &ds) else {
            panic!()
        };
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].offset, [8]);
        assert_eq!(failed.len(), 2);
        assert_eq!(failed[0].kind, FailureKind::BadIndexEntry);
        assert!(failed[0].reason.contains("listed 2 times"));
        assert!(assemble(&img, &ds).is_err());
    }

    #[test]
    fn chunks_outside_the_extent_fail() {
        let file = [0u8; 64];
        let img = Image::new(&file, 0, Sizes::DEFAULT);
        let ds = chunked_ds(vec![8], vec![4], vec![chunk(vec![8], 0, 16)]);
        let DatasetData::Chunked { failed, .. } = dataset_data(&img, &ds) else {
            panic!()
        };
        assert_eq!(failed[0].kind, FailureKind::BadIndexEntry);
        assert!(failed[0].reason.contains("outside the dataset's extent"));
    }

    /// Chunks beyond the current extent but inside the maximum one (a
    /// shrink that did not prune them) hold nothing and are legal: set
    /// aside, not failed. Under a version-1 B-tree (keys without checksum)
    /// only while every in-extent position is listed: otherwise a damaged
    /// key cannot be ruled out.
    #[test]
    fn chunks_beyond_the_extent_inside_the_maximum() {
        let file: Vec<u8> = (0..64u8).collect();
        let img = Image::new(&file, 0, Sizes::DEFAULT);
        let mut ds = chunked_ds(
            vec![6],
            vec![4],
            vec![
                chunk(vec![0], 0, 16),
                chunk(vec![4], 16, 16),
                chunk(vec![8], 32, 16),
            ],
        );
        ds.dataspace.max_dims = Some(vec![UNDEFINED]);
        let split = |ds: &Dataset| match dataset_data(&img, ds) {
            DatasetData::Chunked {
                chunks,
                failed,
                beyond_extent,
                ..
            } => (chunks.len(), failed.len(), beyond_extent),
            other => panic!("{other:?}"),
        };
        assert_eq!(split(&ds), (2, 0, vec![vec![8]]));
        assert_eq!(assemble(&img, &ds).unwrap(), &file[..24]);
        // A hole inside the extent: the v1 key may have been [4] once.
        let mut holed = ds.clone();
        holed.chunks.remove(1);
        let (good, failed, beyond) = split(&holed);
        assert_eq!((good, failed), (1, 1));
        assert!(beyond.is_empty());
        // A checksummed index: the keys are proven, the hole is unwritten.
        holed.layout.class = LayoutClass::Chunked {
            dims: vec![4],
            element_size: Some(4),
            flags: 0,
            index: ChunkIndex::ExtensibleArray {
                address: 0,
                max_bits: 32,
                index_elements: 4,
                min_pointers: 4,
                min_elements: 16,
                page_bits: 10,
            },
        };
        assert_eq!(split(&holed), (1, 0, vec![vec![8]]));
        // Beyond a fixed maximum, or off the grid: damaged, as before.
        ds.dataspace.max_dims = Some(vec![8]);
        assert_eq!(split(&ds).1, 1);
        ds.dataspace.max_dims = Some(vec![UNDEFINED]);
        ds.chunks[2].offset = vec![9];
        assert_eq!(split(&ds).1, 1);
    }

    #[test]
    fn contiguous_and_compact() {
        let file: Vec<u8> = (0..40u8).collect();
        let img = Image::new(&file, 8, Sizes::DEFAULT);
        let mut ds = chunked_ds(vec![4], vec![4], vec![]);
        ds.layout.class = LayoutClass::Contiguous {
            address: 4,
            size: Some(16),
        };
        assert_eq!(
            dataset_data(&img, &ds),
            DatasetData::Contiguous {
                bytes: &file[12..28],
                expected: 16
            }
        );
        // Cut: a prefix. Address past the end or overflowing: empty.
        ds.layout.class = LayoutClass::Contiguous {
            address: 24,
            size: Some(16),
        };
        assert_eq!(
            dataset_data(&img, &ds),
            DatasetData::Contiguous {
                bytes: &file[32..40],
                expected: 16
            }
        );
        assert_eq!(
            assemble(&img, &ds).unwrap_err().kind,
            FailureKind::OutsideFile
        );
        for address in [100, u64::MAX - 4] {
            ds.layout.class = LayoutClass::Contiguous {
                address,
                size: Some(16),
            };
            assert_eq!(
                dataset_data(&img, &ds),
                DatasetData::Contiguous {
                    bytes: &[],
                    expected: 16
                }
            );
        }
        ds.layout.class = LayoutClass::Contiguous {
            address: UNDEFINED,
            size: Some(16),
        };
        assert_eq!(dataset_data(&img, &ds), DatasetData::NotAllocated);
        ds.layout.class = LayoutClass::Compact {
            size: 16,
            data_offset: 30,
            data: vec![],
        };
        assert_eq!(
            dataset_data(&img, &ds),
            DatasetData::Contiguous {
                bytes: &[],
                expected: 16
            },
            "compact bytes past the end are not returned"
        );
        ds.layout.class = LayoutClass::Compact {
            size: 16,
            data_offset: 2,
            data: vec![],
        };
        assert_eq!(assemble(&img, &ds).unwrap(), &file[2..18]);
        ds.layout.class = LayoutClass::Virtual {
            heap_address: 0,
            index: 0,
        };
        assert!(matches!(
            dataset_data(&img, &ds),
            DatasetData::Unreadable { .. }
        ));
    }

    #[test]
    fn partial_edges() {
        assert!(!is_partial_edge(&[0, 0], &[2, 2], &[4, 4]));
        assert!(is_partial_edge(&[2, 0], &[2, 2], &[3, 4]));
        assert!(is_partial_edge(&[u64::MAX, 0], &[2, 2], &[3, 4]));
    }
}

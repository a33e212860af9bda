//! A dataset's description and an account of its raw data: for compact and
//! contiguous layouts whether the bytes are inside the file, for chunked
//! layouts every chunk the index lists and whether its bytes are present
//! (spec IV.A.2.i data layout, Appendix C chunk indexes).

use crate::follow::{self, Image};
use crate::format::is_undefined;
use crate::format::message::data_layout::{ChunkIndex, LayoutClass};
use crate::format::message::dataspace::Dataspace;
use crate::inventory::{
    BeyondIndex, ChunkRef, Coverage, Dataset, Object, Problem, ProblemKind, Status,
};

use super::object::HeaderContents;

pub fn describe(image: &Image, h: &HeaderContents, obj: &mut Object) -> Option<Dataset> {
    let at = image.absolute(obj.address);
    let (Some(datatype), Some(dataspace), Some(layout)) =
        (h.datatype.clone(), h.dataspace.clone(), h.layout.clone())
    else {
        obj.damage(
            Status::Partial,
            Problem::new(
                ProblemKind::Unreadable,
                at,
                "dataset",
                "datatype, dataspace or layout message missing or unreadable",
            ),
        );
        return None;
    };
    let mut ds = Dataset {
        datatype,
        dataspace,
        layout,
        filters: h.filters.clone(),
        fill_value: h.fill_value.clone(),
        external_files: h.external_files,
        chunks: Vec::new(),
        coverage: Coverage::default(),
        beyond_index: BeyondIndex::default(),
    };
    account(image, &mut ds, obj);
    Some(ds)
}

fn account(image: &Image, ds: &mut Dataset, obj: &mut Object) {
    if ds.external_files {
        // The layout's address is undefined: not "never written".
        obj.damage(
            Status::Partial,
            Problem::new(
                ProblemKind::Unsupported,
                None,
                "data layout",
                EXTERNAL_NOT_READ,
            ),
        );
        return;
    }
    match ds.layout.class.clone() {
        LayoutClass::Compact { size, .. } => {
            ds.coverage.bytes_expected = Some(size);
            ds.coverage.bytes_present = Some(size);
            ds.coverage.index_complete = true;
            check_size(image, ds, size, obj);
        }
        LayoutClass::Contiguous { address, size } => {
            if let Some(size) = size {
                check_size(image, ds, size, obj);
            }
            let expected = size.or_else(|| ds.data_bytes()).unwrap_or(0);
            ds.coverage.bytes_expected = Some(expected);
            ds.coverage.index_complete = true;
            if is_undefined(address) {
                // Never written: reads give the fill value. Nothing is lost.
                ds.coverage.bytes_present = Some(0);
                return;
            }
            let present = match image.absolute(address) {
                Some(a) if a < image.len() => (image.len() - a).min(expected),
                _ => 0,
            };
            ds.coverage.bytes_present = Some(present);
            // Data over the dataset's own header: the layout's address is
            // damaged (as for chunks, see `distrust_overlaps`).
            if let Some(start) = image.absolute(address).filter(|_| present > 0) {
                let end = start.saturating_add(present);
                if obj.header_spans.iter().any(|&(s, e)| start < e && s < end) {
                    obj.damage(
                        Status::Partial,
                        Problem::new(
                            ProblemKind::Inconsistent,
                            Some(start),
                            INCONSISTENT,
                            "contiguous data overlaps the dataset's own object header",
                        ),
                    );
                }
            }
            if present < expected {
                obj.damage(
                    Status::Partial,
                    Problem::new(
                        ProblemKind::Truncated,
                        image.absolute(address),
                        "contiguous data",
                        format!(
                            "{} of {expected} bytes inside the file ({} missing past the end)",
                            present,
                            expected - present
                        ),
                    ),
                );
            }
        }
        LayoutClass::Chunked { dims, index, .. } => chunked(image, ds, &dims, &index, obj),
        LayoutClass::Virtual { .. } => {
            // The data stays in the source files; the mappings must read.
            if let Some(Err(p)) = crate::read::vds::mappings(image, &ds.layout.class) {
                obj.damage(Status::Partial, p);
            }
        }
    }
}

/// A dataset with external storage: its data is not in the file.
pub const EXTERNAL_NOT_READ: &str =
    "external storage: the raw data lives in other files, which are not read";

/// Problem structure name for a dataset whose messages contradict each other.
pub const INCONSISTENT: &str = "dataset description";

/// The layout's byte count must be what the dataspace and datatype imply; if
/// not, one of the three messages is damaged and none can be trusted.
fn check_size(image: &Image, ds: &Dataset, size: u64, obj: &mut Object) {
    let implied = ds.data_bytes();
    if implied != Some(size) {
        obj.damage(
            Status::Partial,
            Problem::new(
                ProblemKind::Inconsistent,
                image.absolute(obj.address),
                INCONSISTENT,
                format!(
                    "layout holds {size} bytes, dataspace x datatype imply {}",
                    implied.map_or("an overflowing size".to_string(), |b| b.to_string())
                ),
            ),
        );
    }
}

/// A chunk may not be larger than a fixed (not unlimited) maximum dimension
/// (libhdf5 refuses to create such a dataset): one that is means the layout
/// or the dataspace is damaged. Returns (dimension, chunk, maximum).
fn chunk_past_fixed_max(space: &Dataspace, dims: &[u64]) -> Option<(usize, u64, u64)> {
    let max = space.max_dims.as_ref().unwrap_or(&space.dims);
    dims.iter()
        .zip(max)
        .enumerate()
        .find(|(_, (&c, &m))| !is_undefined(m) && c > m.max(1))
        .map(|(i, (&c, &m))| (i, c, m))
}

fn chunked(image: &Image, ds: &mut Dataset, dims: &[u64], index: &ChunkIndex, obj: &mut Object) {
    if let Some((i, c, m)) = chunk_past_fixed_max(&ds.dataspace, dims) {
        obj.damage(
            Status::Partial,
            Problem::new(
                ProblemKind::Inconsistent,
                image.absolute(obj.address),
                INCONSISTENT,
                format!("chunk dimension {i} is {c}, larger than the fixed maximum {m}"),
            ),
        );
    }
    // A version 1 B-tree key stores a chunk's size in 32 bits (spec III.A.1,
    // "Size of chunk in bytes"): a chunk of 4 GiB or more cannot be indexed
    // so (libhdf5 2.0: "chunk size must be < 4GB with v1 b-tree index";
    // the other indexes of layout v4 allow it).
    let chunk_bytes = dims
        .iter()
        .try_fold(u64::from(ds.datatype.size), |acc, d| acc.checked_mul(*d));
    if matches!(index, ChunkIndex::BtreeV1 { .. })
        && chunk_bytes.is_none_or(|b| b > u64::from(u32::MAX))
    {
        obj.damage(
            Status::Partial,
            Problem::new(
                ProblemKind::BadValue,
                image.absolute(obj.address),
                "data layout",
                format!(
                    "chunk of {dims:?} elements x {} bytes is 4 GiB or more",
                    ds.datatype.size
                ),
            ),
        );
    }
    let follow::chunks::ChunkListing { mut chunks, errors } =
        follow::chunks::list(image, ds, dims, index);
    let index_complete = errors.is_empty();
    for e in errors {
        obj.damage(Status::Partial, e.into());
    }
    let mut missing = Vec::new();
    for c in &mut chunks {
        c.present = image.contains(c.address, c.size);
        if !c.present {
            missing.push(c.offset.clone());
        }
    }
    distrust_overlaps(image, index, &mut chunks, obj);
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(8).map(|o| format!("{o:?}")).collect();
        obj.damage(
            Status::Partial,
            Problem::new(
                ProblemKind::Truncated,
                None,
                "chunk",
                format!(
                    "{} of {} chunks lie past the end of the file (at {}{})",
                    missing.len(),
                    chunks.len(),
                    shown.join(", "),
                    if missing.len() > 8 { ", ..." } else { "" }
                ),
            ),
        );
    }
    ds.coverage = Coverage {
        chunks_total: Some(chunks.len() as u64),
        chunks_present: Some(chunks.iter().filter(|c| c.present).count() as u64),
        bytes_expected: None,
        bytes_present: None,
        index_complete,
    };
    ds.beyond_index.indexed = chunks.len() as u64;
    ds.chunks = chunks;
    // The extent grows over listed chunks only in a file its writer did not
    // close (`walk::grow_stale_extents`): in a closed file, chunks past the
    // extent are legal leftovers of a shrink.
}

/// Recounts `coverage` after chunks were added to `ds.chunks` (see
/// `carve::chunk_records`): presence, overlaps, totals.
pub(crate) fn recount(image: &Image, ds: &mut Dataset, added: &[usize], obj: &mut Object) {
    for &i in added {
        if let Some(c) = ds.chunks.get_mut(i) {
            c.present = image.contains(c.address, c.size);
        }
    }
    let index = match &ds.layout.class {
        LayoutClass::Chunked { index, .. } => index.clone(),
        _ => return,
    };
    distrust_overlaps(image, &index, &mut ds.chunks, obj);
    ds.coverage.chunks_total = Some(ds.chunks.len() as u64);
    ds.coverage.chunks_present = Some(ds.chunks.iter().filter(|c| c.present).count() as u64);
}

/// Structure named by the problem of a dataset whose extent was grown.
pub const EXTENT_GROWN: &str = "dataset extent";

/// Grows the extent of a chunked dataset to cover every present chunk its
/// index lists: a killed writer's header keeps the dataspace of its last
/// flush while its index (or records beyond it) already lists newer chunks
/// (issue 13), so the stored dims are a lower bound. Only dimensions whose
/// maximum allows it grow (unlimited, or a larger fixed maximum; a chunk
/// past a fixed maximum stays outside and is reported by `read`). Each
/// grown dimension ends where the last chunk ends: elements the writer had
/// not written yet read as the fill value. The stored dims are kept in
/// `beyond_index.stored_dims` and the object is marked partial with the
/// reason.
pub(crate) fn grow_extent(image: &Image, ds: &mut Dataset, obj: &mut Object) {
    let LayoutClass::Chunked { dims: chunk, .. } = &ds.layout.class else {
        return;
    };
    let old = ds.dataspace.dims.clone();
    let rank = old.len();
    if rank == 0 || chunk.len() != rank || chunk.contains(&0) {
        return;
    }
    // Grown before (by the walk, then by records beyond the index): count
    // from the stored dims, and say it once.
    let stored = ds
        .beyond_index
        .stored_dims
        .clone()
        .unwrap_or_else(|| old.clone());
    let cap: Vec<u64> = match &ds.dataspace.max_dims {
        Some(m) if m.len() == rank => m
            .iter()
            .zip(&old)
            .map(|(&m, &d)| if is_undefined(m) { u64::MAX } else { m.max(d) })
            .collect(),
        _ => old.clone(),
    };
    let mut new = old.clone();
    let mut grown = 0usize;
    for c in ds
        .chunks
        .iter()
        .filter(|c| c.present && c.offset.len() == rank)
    {
        let fits = c
            .offset
            .iter()
            .zip(chunk)
            .zip(&cap)
            .all(|((&o, &k), &m)| o % k == 0 && o < m);
        // An edge chunk reaching past the extent is normal: only a chunk
        // starting at or past the extent in some dimension grows it (there).
        if !fits || c.offset.iter().zip(&stored).all(|(&o, &d)| o < d) {
            continue;
        }
        grown += 1;
        for i in (0..rank).filter(|&i| c.offset[i] >= stored[i]) {
            let end = c.offset[i].saturating_add(chunk[i]).min(cap[i]);
            new[i] = new[i].max(end);
        }
    }
    if new == old {
        return;
    }
    ds.beyond_index.stored_dims = Some(stored.clone());
    ds.dataspace.dims = new.clone();
    obj.problems.retain(|p| p.kind != ProblemKind::ExtentGrown);
    obj.damage(
        Status::Partial,
        Problem::new(
            ProblemKind::ExtentGrown,
            image.absolute(obj.address),
            EXTENT_GROWN,
            format!(
                "extent grown from {stored:?} to {new:?}: {grown} chunk(s) the index lists lie past the \
                 stored extent (a stale header: the writer was not closed); elements the writer \
                 had not written read as the fill value"
            ),
        ),
    );
}

/// A chunk whose bytes overlap another chunk of the dataset, the chunk
/// index's root node or the dataset's own header cannot hold its data: an
/// index entry was damaged (v1 B-tree nodes carry no checksum). Such chunks
/// are marked not present, so nothing reads them, and reported.
pub(crate) fn distrust_overlaps(
    image: &Image,
    index: &ChunkIndex,
    chunks: &mut [ChunkRef],
    obj: &mut Object,
) {
    // Single-chunk and implicit indexes have no node: their "index address"
    // is the data itself.
    let root = match index {
        ChunkIndex::SingleChunk { .. } | ChunkIndex::Implicit { .. } => None,
        _ => image.absolute(index.address()),
    };
    let mut order: Vec<usize> = (0..chunks.len()).filter(|&i| chunks[i].present).collect();
    order.sort_by_key(|&i| chunks[i].address);
    let mut bad = vec![false; chunks.len()];
    for w in order.windows(2) {
        let (a, b) = (&chunks[w[0]], &chunks[w[1]]);
        if a.address.saturating_add(a.size) > b.address {
            bad[w[0]] = true;
            bad[w[1]] = true;
        }
    }
    for &i in &order {
        let c = &chunks[i];
        let (Some(start), Some(end)) = (
            image.absolute(c.address),
            image
                .absolute(c.address)
                .and_then(|s| s.checked_add(c.size)),
        ) else {
            continue;
        };
        let hits_root = root.is_some_and(|r| start <= r && r < end);
        let hits_header = obj.header_spans.iter().any(|&(s, e)| start < e && s < end);
        if hits_root || hits_header {
            bad[i] = true;
        }
    }
    for (c, _) in chunks.iter_mut().zip(&bad).filter(|(_, &b)| b) {
        c.present = false;
        obj.damage(
            Status::Partial,
            Problem::new(
                ProblemKind::Overlap,
                image.absolute(c.address),
                "chunk",
                format!(
                    "chunk {:?} ({} bytes) overlaps another chunk or the index/header: not trusted",
                    c.offset, c.size
                ),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_may_not_pass_a_fixed_maximum() {
        use crate::format::message::dataspace::DataspaceKind;
        let space = |dims: Vec<u64>, max_dims: Option<Vec<u64>>| Dataspace {
            version: 2,
            kind: DataspaceKind::Simple,
            dims,
            max_dims,
        };
        // Fixed 10x7 (no maximum stored: the current dims are the maximum).
        assert_eq!(
            chunk_past_fixed_max(&space(vec![10, 7], None), &[4, 7]),
            None
        );
        assert_eq!(
            chunk_past_fixed_max(&space(vec![10, 7], None), &[4, 8]),
            Some((1, 8, 7))
        );
        // Unlimited first dimension: any chunk size there.
        let grow = space(vec![0, 7], Some(vec![u64::MAX, 7]));
        assert_eq!(chunk_past_fixed_max(&grow, &[1 << 20, 7]), None);
        assert_eq!(
            chunk_past_fixed_max(&grow, &[1, u64::from(u32::MAX)]),
            Some((1, u64::from(u32::MAX), 7))
        );
        // A larger fixed maximum than the current size.
        assert_eq!(
            chunk_past_fixed_max(&space(vec![2], Some(vec![100])), &[50]),
            None
        );
    }

    fn grow_case(dims: Vec<u64>, max: Vec<u64>, offsets: &[Vec<u64>]) -> (Vec<u64>, Object) {
        use crate::format::message::dataspace::DataspaceKind;
        use crate::format::message::datatype::{ByteOrder, Datatype, DatatypeClass};
        let layout = crate::format::message::data_layout::DataLayout {
            version: 4,
            class: LayoutClass::Chunked {
                dims: vec![8, 5],
                element_size: Some(8),
                flags: 0,
                index: ChunkIndex::BtreeV1 { address: 0 },
            },
        };
        let mut ds = Dataset {
            datatype: Datatype {
                version: 1,
                size: 8,
                class: DatatypeClass::FixedPoint {
                    order: ByteOrder::LittleEndian,
                    lo_pad: false,
                    hi_pad: false,
                    signed: true,
                    bit_offset: 0,
                    precision: 64,
                },
            },
            dataspace: Dataspace {
                version: 2,
                kind: DataspaceKind::Simple,
                dims,
                max_dims: Some(max),
            },
            layout,
            filters: None,
            fill_value: None,
            external_files: false,
            chunks: offsets
                .iter()
                .map(|o| ChunkRef {
                    offset: o.clone(),
                    address: 0,
                    size: 320,
                    filter_mask: 0,
                    present: true,
                })
                .collect(),
            coverage: Coverage::default(),
            beyond_index: BeyondIndex::default(),
        };
        let bytes = [0u8; 64];
        let image = Image::new(&bytes, 0, crate::format::Sizes::DEFAULT);
        let mut obj = Object::new("/d".into(), 0);
        grow_extent(&image, &mut ds, &mut obj);
        (ds.dataspace.dims, obj)
    }

    #[test]
    fn the_extent_grows_to_cover_listed_chunks_only_where_allowed() {
        let unl = u64::MAX;
        // Edge chunks reaching past the extent are normal.
        let (d, o) = grow_case(vec![20, 5], vec![unl, 5], &[vec![0, 0], vec![16, 0]]);
        assert_eq!((d, o.status), (vec![20, 5], Status::Intact));
        // Chunks past a stale extent: it grows to their end, partial.
        let (d, o) = grow_case(vec![20, 5], vec![unl, 5], &[vec![16, 0], vec![32, 0]]);
        assert_eq!(d, vec![40, 5]);
        assert_eq!(o.status, Status::Partial);
        assert!(o.problems[0].message.contains("from [20, 5] to [40, 5]"));
        // A fixed maximum caps the growth; a chunk past it does not count.
        let (d, _) = grow_case(vec![20, 5], vec![36, 5], &[vec![32, 0], vec![40, 0]]);
        assert_eq!(d, vec![36, 5]);
        // Off the chunk grid: a damaged key, nothing grows.
        let (d, _) = grow_case(vec![20, 5], vec![unl, 5], &[vec![33, 0]]);
        assert_eq!(d, vec![20, 5]);
    }
}

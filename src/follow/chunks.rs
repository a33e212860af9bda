//! Chunk listings (spec IV.A.2.i "Data Layout Message" v3/v4, VII "Chunk
//! Indexes"): every chunk a dataset's index lists, whatever the index type
//! (v1 B-tree, single chunk, implicit, fixed array, extensible array, v2
//! B-tree), behind one result, [`ChunkListing`]: chunk references in element
//! coordinates and the faults met while reading the index. The one answer to
//! "where are the chunks of a dataset found?"; shared by `crate::walk` and
//! `crate::carve`. Also the chunk grid arithmetic (linear index <->
//! element coordinates, the extensible array's swizzled order).

use super::Image;
use crate::format::btree_v2::{self, Record};
use crate::format::message::data_layout::ChunkIndex;
use crate::format::message::dataspace::Dataspace;
use crate::format::{fixed_array, is_undefined, Error};
use crate::inventory::{ChunkRef, Dataset};

/// The chunks a dataset's index lists, and the faults met reading it.
#[derive(Clone, Debug, Default)]
pub struct ChunkListing {
    /// One reference per listed chunk (`present` not yet decided).
    pub chunks: Vec<ChunkRef>,
    /// Faults of the index structures; empty when the index read cleanly.
    pub errors: Vec<Error>,
}

/// Lists the chunks that `index` holds for `ds`, whose chunks measure `dims`
/// elements.
pub fn list(image: &Image, ds: &Dataset, dims: &[u64], index: &ChunkIndex) -> ChunkListing {
    let rank = ds.dataspace.dims.len();
    let chunk_bytes = ds.chunk_bytes(dims);
    let mut errors: Vec<crate::format::Error> = Vec::new();
    let mut chunks: Vec<ChunkRef> = Vec::new();
    let unfiltered = chunk_bytes.unwrap_or(0);
    match index {
        ChunkIndex::BtreeV1 { address } => {
            if !is_undefined(*address) {
                let (recs, errs) = super::btree_v1::collect_chunks(image, *address, rank);
                errors.extend(errs);
                chunks.extend(recs.into_iter().map(|r| ChunkRef {
                    offset: r.offsets.into_iter().take(rank).collect(),
                    address: r.address,
                    size: r.size,
                    filter_mask: r.filter_mask,
                    present: false,
                }));
            }
        }
        ChunkIndex::SingleChunk {
            address,
            filtered_size,
            filter_mask,
        } => {
            if !is_undefined(*address) {
                chunks.push(ChunkRef {
                    offset: vec![0; rank],
                    address: *address,
                    size: filtered_size.unwrap_or(unfiltered),
                    filter_mask: filter_mask.unwrap_or(0),
                    present: false,
                });
            }
        }
        ChunkIndex::Implicit { address } => {
            if !is_undefined(*address) {
                let g = grid(&max_extent(&ds.dataspace), dims).unwrap_or_default();
                let n: u64 = g.iter().product();
                if n.checked_mul(unfiltered).is_none_or(|b| b > image.len()) {
                    errors.push(crate::format::Error::invalid(
                        "implicit chunk index",
                        image.base.saturating_add(*address),
                        format!("{n} chunks of {unfiltered} bytes cannot fit in the file"),
                    ));
                } else {
                    for i in 0..n {
                        if let Some(off) = coords(i, &g, dims) {
                            chunks.push(ChunkRef {
                                offset: off,
                                address: address.saturating_add(i * unfiltered),
                                size: unfiltered,
                                filter_mask: 0,
                                present: false,
                            });
                        }
                    }
                }
            }
        }
        ChunkIndex::FixedArray { address, .. } => {
            if !is_undefined(*address) {
                let g = grid(&max_extent(&ds.dataspace), dims).unwrap_or_default();
                let (els, errs) = super::fixed_array::collect_chunks(image, *address, unfiltered);
                errors.extend(errs);
                let at = image.base.saturating_add(*address);
                place(
                    els,
                    unfiltered,
                    ("FADB", at),
                    |i| coords(i, &g, dims),
                    &mut chunks,
                    &mut errors,
                );
            }
        }
        ChunkIndex::ExtensibleArray { address, .. } => {
            if !is_undefined(*address) {
                let (els, errs) =
                    super::extensible_array::collect_chunks(image, *address, unfiltered);
                errors.extend(errs);
                let g = ea_grid(&ds.dataspace, dims);
                let at = image.base.saturating_add(*address);
                let to_coords = |i| {
                    g.as_ref()
                        .and_then(|(g, unlim)| ea_coords(i, g, *unlim, dims))
                };
                place(
                    els,
                    unfiltered,
                    ("EADB", at),
                    to_coords,
                    &mut chunks,
                    &mut errors,
                );
            }
        }
        ChunkIndex::BtreeV2 { address, .. } => {
            if !is_undefined(*address) {
                let ctx = btree_v2::RecordContext {
                    rank,
                    ..Default::default()
                };
                let (_, recs, errs) = super::btree_v2::collect_records(image, *address, ctx);
                errors.extend(errs);
                for r in recs {
                    if let Record::Chunk {
                        address,
                        size,
                        filter_mask,
                        scaled_offsets,
                    } = r
                    {
                        let off: Option<Vec<u64>> = scaled_offsets
                            .iter()
                            .zip(dims)
                            .map(|(&s, &c)| s.checked_mul(c))
                            .collect();
                        chunks.push(ChunkRef {
                            offset: off.unwrap_or_default(),
                            address,
                            size: size.unwrap_or(unfiltered),
                            filter_mask,
                            present: false,
                        });
                    }
                }
            }
        }
    }
    ChunkListing { chunks, errors }
}

/// Chunk grid: chunks per dimension for `extent` (current or maximum dims).
pub(crate) fn grid(extent: &[u64], chunk: &[u64]) -> Option<Vec<u64>> {
    if extent.len() != chunk.len() {
        return None;
    }
    extent
        .iter()
        .zip(chunk)
        .map(|(&d, &c)| if c == 0 { None } else { Some(d.div_ceil(c)) })
        .collect()
}

/// Row-major linear chunk index -> element coordinates of the chunk.
pub(crate) fn coords(mut index: u64, grid: &[u64], chunk: &[u64]) -> Option<Vec<u64>> {
    let mut out = vec![0u64; grid.len()];
    for i in (0..grid.len()).rev() {
        let g = grid[i].max(1);
        out[i] = (index % g).checked_mul(chunk[i])?;
        index /= g;
    }
    (index == 0).then_some(out)
}

pub(crate) fn max_extent(space: &Dataspace) -> Vec<u64> {
    match &space.max_dims {
        Some(m) if m.len() == space.dims.len() => m
            .iter()
            .zip(&space.dims)
            .map(|(&m, &d)| if is_undefined(m) { d } else { m.max(d) })
            .collect(),
        _ => space.dims.clone(),
    }
}

/// Turns array elements (linear chunk index -> address) into chunk
/// references with element coordinates; an index off the grid is an error
/// of the array's data block (`block` names it and its offset).
fn place(
    elements: Vec<fixed_array::ChunkElement>,
    unfiltered: u64,
    block: (&'static str, u64),
    to_coords: impl Fn(u64) -> Option<Vec<u64>>,
    chunks: &mut Vec<ChunkRef>,
    errors: &mut Vec<crate::format::Error>,
) {
    for e in elements {
        match to_coords(e.index) {
            Some(offset) => chunks.push(ChunkRef {
                offset,
                address: e.address,
                size: e.size.unwrap_or(unfiltered),
                filter_mask: e.filter_mask,
                present: false,
            }),
            None => errors.push(crate::format::Error::invalid(
                block.0,
                block.1,
                format!("element {} outside the chunk grid", e.index),
            )),
        }
    }
}

/// Extensible-array chunk grid: HDF5 orders chunks with the unlimited
/// dimension slowest (H5Dearray "swizzled" dimensions). Returns the grid in
/// swizzled order and the unlimited dimension.
pub(crate) fn ea_grid(space: &Dataspace, chunk: &[u64]) -> Option<(Vec<u64>, usize)> {
    let max = space.max_dims.as_ref()?;
    let unlim = max.iter().position(|&m| is_undefined(m))?;
    let mut g = grid(&max_extent(space), chunk)?;
    let mut c = chunk.to_vec();
    let gu = g.remove(unlim);
    g.insert(0, gu);
    let cu = c.remove(unlim);
    c.insert(0, cu);
    Some((g, unlim))
}

pub(crate) fn ea_coords(
    index: u64,
    swizzled_grid: &[u64],
    unlim: usize,
    chunk: &[u64],
) -> Option<Vec<u64>> {
    let mut c = chunk.to_vec();
    let cu = c.remove(unlim);
    c.insert(0, cu);
    // The unlimited dimension has no fixed extent: do not bound it.
    let mut g = swizzled_grid.to_vec();
    g[0] = u64::MAX;
    let mut sw = coords(index, &g, &c)?;
    let u = sw.remove(0);
    sw.insert(unlim, u);
    Some(sw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coords_row_major() {
        let g = [2, 3];
        let c = [10, 4];
        assert_eq!(coords(0, &g, &c), Some(vec![0, 0]));
        assert_eq!(coords(1, &g, &c), Some(vec![0, 4]));
        assert_eq!(coords(3, &g, &c), Some(vec![10, 0]));
        assert_eq!(coords(5, &g, &c), Some(vec![10, 8]));
        assert_eq!(coords(6, &g, &c), None);
    }

    #[test]
    fn grid_rounds_up_and_rejects_zero_chunks() {
        assert_eq!(grid(&[10, 7], &[4, 7]), Some(vec![3, 1]));
        assert_eq!(grid(&[10], &[0]), None);
        assert_eq!(grid(&[10], &[1, 2]), None);
    }

    #[test]
    fn ea_coords_put_the_unlimited_dim_back() {
        // dims (N, 6) unlimited in dim 0, chunks (2, 3): grid in dim 1 is 2.
        let g = vec![u64::MAX, 2];
        assert_eq!(ea_coords(0, &g, 0, &[2, 3]), Some(vec![0, 0]));
        assert_eq!(ea_coords(1, &g, 0, &[2, 3]), Some(vec![0, 3]));
        assert_eq!(ea_coords(2, &g, 0, &[2, 3]), Some(vec![2, 0]));
        // unlimited dim 1 of (6, N), chunks (3, 2): swizzled grid (inf, 2).
        assert_eq!(ea_coords(1, &g, 1, &[3, 2]), Some(vec![3, 0]));
        assert_eq!(ea_coords(2, &g, 1, &[3, 2]), Some(vec![0, 2]));
    }
}

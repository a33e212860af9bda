//! STUB (integration placeholder until the arrays branch lands).

use crate::format::{Error, Image};

pub use super::fixed_array::ChunkElement;

pub fn collect_chunks(
    image: &Image,
    addr: u64,
    _unfiltered: u64,
) -> (Vec<ChunkElement>, Vec<Error>) {
    (
        Vec::new(),
        vec![Error::invalid(
            "EAHD",
            image.base.saturating_add(addr),
            "extensible arrays not implemented yet",
        )],
    )
}

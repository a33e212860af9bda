//! STUB (integration placeholder until the arrays branch lands).

use crate::format::{Error, Image};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkElement {
    pub index: u64,
    pub address: u64,
    pub size: Option<u64>,
    pub filter_mask: u32,
}

pub fn collect_chunks(
    image: &Image,
    addr: u64,
    _unfiltered: u64,
) -> (Vec<ChunkElement>, Vec<Error>) {
    (
        Vec::new(),
        vec![Error::invalid(
            "FAHD",
            image.base.saturating_add(addr),
            "fixed arrays not implemented yet",
        )],
    )
}

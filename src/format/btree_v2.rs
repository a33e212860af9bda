//! STUB (integration placeholder until the btree branch lands).

use crate::format::{Error, Image};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtreeV2Header {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    LinkName {
        hash: u32,
        heap_id: [u8; 7],
    },
    AttributeName {
        heap_id: [u8; 8],
        flags: u8,
        creation_order: u32,
        hash: u32,
    },
    Chunk {
        address: u64,
        size: Option<u64>,
        filter_mask: u32,
        scaled_offsets: Vec<u64>,
    },
    Raw(Vec<u8>),
}

#[derive(Clone, Copy, Debug, Default)]
pub struct RecordContext {
    pub rank: usize,
    pub chunk_size_len: usize,
}

pub fn collect_records(
    image: &Image,
    addr: u64,
    _ctx: RecordContext,
) -> (Option<BtreeV2Header>, Vec<Record>, Vec<Error>) {
    (
        None,
        Vec::new(),
        vec![Error::invalid(
            "BTHD",
            image.base.saturating_add(addr),
            "v2 B-trees not implemented yet",
        )],
    )
}

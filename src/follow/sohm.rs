//! The file-wide shared-message heaps (spec III.I): from the superblock
//! extension's shared message table message to the table (`SMTB`) it
//! names, which gives each index's fractal heap.

use super::object_header::read_all_messages;
use super::Image;
use crate::format::message::kind;
use crate::format::sohm::{self, SharedHeaps, STRUCTURE};
use crate::format::{Error, Result};

/// Reads the table the superblock extension at `extension` names; an
/// empty table when the extension holds no shared message table message.
pub fn read(image: &Image, extension: u64) -> Result<SharedHeaps> {
    let (_, raws, _) = read_all_messages(image, extension);
    let Some(raw) = raws.iter().find(|r| r.kind == kind::SHARED_MESSAGE_TABLE) else {
        return Ok(SharedHeaps::default());
    };
    let at = raw.body_offset;
    let body = usize::try_from(at)
        .ok()
        .and_then(|s| image.bytes.get(s..s.checked_add(usize::from(raw.size))?))
        .ok_or_else(|| Error::invalid(STRUCTURE, at, "message body outside the file"))?;
    let (table, count) = sohm::parse_message(body, at, image.sizes)?;
    let data = image.at(STRUCTURE, table)?;
    let abs = image.absolute(table).unwrap_or(table);
    sohm::parse_table(data, abs, count, image.sizes)
}

//! An object header and its continuation blocks (spec IV.A.1, IV.A.2.q):
//! reads the header at an address, follows every continuation message
//! through the file image with overlap and size bounds, and returns every
//! message framed. Prefixes, chunks and messages are parsed by
//! [`crate::format::object_header`].

use std::collections::{BTreeMap, VecDeque};

use super::Image;
use crate::format::message::{continuation, kind};
use crate::format::object_header::*;
use crate::format::truncated;
use crate::format::Error;

/// Reads an object header at relative address `addr` and follows its
/// continuation messages (type 0x10) through `image`, breadth first.
///
/// Never fails: returns the prefix (if it could be read), every message framed
/// in every chunk reached, and the problems met (framing errors, truncation,
/// checksum mismatches, undecodable continuation messages, continuation blocks
/// that overlap an already-read chunk or the header itself, too many blocks or
/// bytes, and a v1 message count that does not match the messages found).
pub fn read_all_messages(
    image: &Image,
    addr: u64,
) -> (Option<HeaderPrefix>, Vec<RawMessage>, Vec<Error>) {
    let mut problems = Vec::new();
    let data = match image.at(HEADER, addr) {
        Ok(d) => d,
        Err(e) => return (None, Vec::new(), vec![e]),
    };
    let abs = image.absolute(addr).unwrap_or(addr);
    let (prefix, chunk0) = match parse_header(data, abs, image.sizes) {
        Ok(p) => p,
        Err(e) => return (None, Vec::new(), vec![e]),
    };
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    seen.insert(abs, prefix.end_abs().max(abs.saturating_add(1)));
    let mut total = prefix.chunk0_len;
    let mut messages = Vec::new();
    let mut queue = VecDeque::new();
    let mut blocks = 0usize;
    absorb(image, chunk0, &mut messages, &mut queue, &mut problems);
    while let Some((cont, from)) = queue.pop_front() {
        let cont: continuation::Continuation = cont;
        if blocks >= MAX_CONTINUATION_BLOCKS {
            problems.push(Error::bad_value(
                BLOCK,
                from,
                "continuation blocks (cap reached)",
                (blocks + 1 + queue.len()) as u64,
            ));
            break;
        }
        if cont.length == 0 {
            problems.push(Error::bad_value(BLOCK, from, "continuation length", 0));
            continue;
        }
        let Some(start) = image.absolute(cont.address) else {
            problems.push(Error::bad_value(
                BLOCK,
                from,
                "continuation address",
                cont.address,
            ));
            continue;
        };
        let Some(end) = start.checked_add(cont.length) else {
            problems.push(Error::bad_value(
                BLOCK,
                from,
                "continuation length",
                cont.length,
            ));
            continue;
        };
        if let Some((&s, &e)) = seen.range(..end).next_back() {
            if e > start {
                problems.push(Error::invalid(
                    BLOCK,
                    start,
                    format!(
                        "continuation block [{start:#x}, {end:#x}) overlaps an already-read chunk [{s:#x}, {e:#x}) (referenced from {from:#x})"
                    ),
                ));
                continue;
            }
        }
        total = total.saturating_add(cont.length);
        if total > MAX_TOTAL_BYTES {
            problems.push(Error::bad_value(
                BLOCK,
                start,
                "total header bytes (cap reached)",
                total,
            ));
            break;
        }
        seen.insert(start, end);
        blocks += 1;
        let block = match image.at(BLOCK, cont.address) {
            Ok(d) => d,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        match parse_continuation_block(block, start, cont.length, prefix.version, prefix.flags) {
            Ok(chunk) => absorb(image, chunk, &mut messages, &mut queue, &mut problems),
            Err(e) => problems.push(e),
        }
    }
    if let Some(count) = prefix.message_count {
        if usize::from(count) != messages.len() {
            problems.push(Error::invalid(
                HEADER,
                abs,
                format!(
                    "header declares {count} messages, {} found in its chunks",
                    messages.len()
                ),
            ));
        }
    }
    (Some(prefix), messages, problems)
}

/// Appends a chunk's messages and problems, queueing its continuation messages
/// (with the absolute offset of the message body, for reports).
fn absorb(
    image: &Image,
    chunk: ChunkMessages,
    messages: &mut Vec<RawMessage>,
    queue: &mut VecDeque<(continuation::Continuation, u64)>,
    problems: &mut Vec<Error>,
) {
    problems.extend(chunk.error);
    problems.extend(chunk.checksum_error);
    for m in &chunk.messages {
        if m.kind != kind::CONTINUATION {
            continue;
        }
        let parsed = match m.body(image.bytes) {
            Some(body) => continuation::parse(body, m.body_offset, image.sizes),
            None => Err(truncated(BLOCK, m.body_offset, u64::from(m.size), 0)),
        };
        match parsed {
            Ok(c) => queue.push_back((c, m.body_offset)),
            Err(e) => problems.push(e),
        }
    }
    messages.extend(chunk.messages);
}

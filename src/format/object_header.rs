//! Object headers (spec IV.A.1, "Disk Format: Level 2A1 - Data Object Header
//! Prefix") and their continuation blocks (spec IV.A.2.q): the prefix of
//! version 1 (no signature) and version 2 (`OHDR`) headers, and the framing of
//! the header messages in chunk 0 and in continuation blocks (bare messages
//! for v1, `OCHK` + messages + checksum for v2).
//!
//! Each message header is decoded by [`MessageHeader`] (the one framing of a
//! message, in `format::codec`); `parse_chunk` frames a chunk with it: every
//! message body must lie inside its chunk. A chunk whose framing breaks
//! part-way yields the messages before the break together with the error
//! ([`ChunkMessages`]).
//! Message bodies are not decoded here: [`RawMessage`] gives their type, flags
//! and file position, and [`RawMessage::decode`] hands the body to
//! `crate::format::message::parse`.
//!
//! The parsers do not follow continuation messages:
//! [`crate::follow::object_header::read_all_messages`] does, through the
//! file image, with a cycle check and caps.

use nom::bytes::complete::take;
use nom::number::complete::{le_u16, le_u32, u8 as le_u8};
use nom::IResult;

use super::message::{self, kind, Message};
use super::{
    expect_signature, truncated, uint, verify_checksum, Error, ErrorKind, MessageHeader, Result,
    Sizes,
};

/// Signature of a version 2 object header (spec IV.A.1.b).
pub const SIGNATURE: &[u8; 4] = b"OHDR";
/// Signature of a version 2 continuation block (spec IV.A.2.q).
pub const CONTINUATION_SIGNATURE: &[u8; 4] = b"OCHK";
/// Most continuation blocks [`crate::follow::object_header::read_all_messages`]
/// follows for one header.
pub const MAX_CONTINUATION_BLOCKS: usize = 4096;
/// Most bytes of chunks [`crate::follow::object_header::read_all_messages`]
/// reads for one header.
pub const MAX_TOTAL_BYTES: u64 = 64 << 20;

pub(crate) const HEADER: &str = "object header";
pub(crate) const BLOCK: &str = "object header continuation block";

/// Size of the version 1 prefix; chunk 0's messages start right after it.
pub(crate) const V1_PREFIX_LEN: usize = 16;

/// The prefix of an object header (spec IV.A.1.a for v1, IV.A.1.b for v2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderPrefix {
    /// 1 or 2.
    pub version: u8,
    /// Absolute file offset of the header (the prefix's first byte).
    pub address_abs: u64,
    /// v2 "Flags" (bits 0-1 chunk-0 size width, 2 attribute creation order
    /// tracked, 3 indexed, 4 phase change values stored, 5 times stored); 0 for v1.
    pub flags: u8,
    /// v1 "Object Reference Count". v2 stores it in a reference count message
    /// (type 0x16), absent meaning 1.
    pub ref_count: Option<u32>,
    /// v1 "Total Number of Header Messages", counting all chunks.
    pub message_count: Option<u16>,
    /// Absolute file offset of chunk 0's first message.
    pub chunk0_address_abs: u64,
    /// Declared bytes of messages (and v2 gap) in chunk 0: v1 "Object Header
    /// Size", v2 "Size of Chunk #0". Excludes the v2 checksum.
    pub chunk0_len: u64,
    /// v2 "Access time" (seconds since the epoch, flag bit 5).
    pub access_time: Option<u32>,
    /// v2 "Modification Time" (flag bit 5).
    pub modification_time: Option<u32>,
    /// v2 "Change Time" (flag bit 5).
    pub change_time: Option<u32>,
    /// v2 "Birth Time" (flag bit 5).
    pub birth_time: Option<u32>,
    /// v2 "Maximum # of compact attributes" (flag bit 4).
    pub max_compact_attributes: Option<u16>,
    /// v2 "Minimum # of dense attributes" (flag bit 4).
    pub min_dense_attributes: Option<u16>,
    /// v2 chunk 0 checksum: `Some(true/false)`, or `None` for v1 and when the
    /// chunk is truncated before its checksum.
    pub checksum_ok: Option<bool>,
}

impl HeaderPrefix {
    /// v2 flag bit 2: messages carry a creation order field.
    pub fn creation_order_tracked(&self) -> bool {
        self.version == 2 && self.flags & 0x04 != 0
    }

    /// v2 flag bit 3: attribute creation order is indexed.
    pub fn creation_order_indexed(&self) -> bool {
        self.version == 2 && self.flags & 0x08 != 0
    }

    /// Absolute offset one past chunk 0 (after the v2 checksum), saturating.
    pub fn end_abs(&self) -> u64 {
        let checksum = if self.version == 2 { 4 } else { 0 };
        self.chunk0_address_abs
            .saturating_add(self.chunk0_len)
            .saturating_add(checksum)
    }
}

/// One header message as framed in its chunk; the body is not decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage {
    /// "Header Message Type" (u16 in v1, u8 in v2), see `message::kind`.
    pub kind: u16,
    /// "Header Message Flags" (bit 1: shared, see `message::FLAG_SHARED`).
    pub flags: u8,
    /// v2 "Header Message Creation Order" (if header flag bit 2).
    pub creation_order: Option<u16>,
    /// Absolute file offset of the message body.
    pub body_offset: u64,
    /// "Size of Header Message Data" (v1: includes padding to 8).
    pub size: u16,
}

impl RawMessage {
    /// The body inside the whole file's bytes `file` (absolute offsets).
    pub fn body<'a>(&self, file: &'a [u8]) -> Option<&'a [u8]> {
        let start = usize::try_from(self.body_offset).ok()?;
        let end = start.checked_add(usize::from(self.size))?;
        file.get(start..end)
    }

    /// Decodes the body with `message::parse` (`file` is the whole file).
    pub fn decode(&self, file: &[u8], sizes: Sizes) -> Result<Message> {
        let body = self.body(file).ok_or_else(|| {
            Error::new(
                "header message",
                self.body_offset,
                ErrorKind::Truncated {
                    needed: u64::from(self.size),
                    available: (file.len() as u64).saturating_sub(self.body_offset),
                },
            )
        })?;
        message::parse(self.kind, self.flags, body, self.body_offset, sizes)
    }

    /// Flag bit 1: the body is a shared message pointing elsewhere.
    pub fn is_shared(&self) -> bool {
        self.flags & message::FLAG_SHARED != 0
    }
}

/// The messages of one chunk, with what went wrong in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkMessages {
    /// The messages framed correctly, in order, up to the first framing error.
    pub messages: Vec<RawMessage>,
    /// The framing error that stopped the chunk (a message running past the
    /// chunk, a misaligned v1 message, or the chunk being truncated).
    pub error: Option<Error>,
    /// v2 chunk checksum: `Some(true/false)`; `None` for v1 and when the
    /// checksum lies beyond the available bytes.
    pub checksum_ok: Option<bool>,
    /// The checksum problem: the mismatch (stored and computed values) when
    /// `checksum_ok` is `Some(false)`, or Truncated when the chunk's messages
    /// are complete but the checksum bytes are missing.
    pub checksum_error: Option<Error>,
}

/// Parses an object header's prefix and chunk 0's messages. `data` starts at
/// the header (absolute offset `at`) and may run to the end of the file.
///
/// Err only when the prefix itself is unusable (not a v1 prefix nor `OHDR`,
/// unknown version or flags, truncated prefix). Framing errors in chunk 0, a
/// truncated chunk and a checksum mismatch are reported in [`ChunkMessages`]
/// (and the checksum also in `HeaderPrefix::checksum_ok`).
pub fn parse_header(data: &[u8], at: u64, _sizes: Sizes) -> Result<(HeaderPrefix, ChunkMessages)> {
    if data.starts_with(SIGNATURE) {
        return parse_v2_header(data, at);
    }
    match data.first() {
        Some(1) => parse_v1_header(data, at),
        Some(_) => Err(Error::invalid(
            HEADER,
            at,
            "neither a version 1 prefix nor an OHDR signature",
        )),
        None => Err(truncated(HEADER, at, 1, 0)),
    }
}

/// The available part of a declared region `[start, start + len)` of `data`,
/// and whether it is complete.
fn region(data: &[u8], start: usize, len: u64) -> (&[u8], bool) {
    let tail = data.get(start..).unwrap_or(&[]);
    match usize::try_from(len).ok().and_then(|l| tail.get(..l)) {
        Some(area) => (area, true),
        None => (tail, false),
    }
}

/// The fixed 16-byte prefix of a version 1 object header (IV.A.1.a).
pub(crate) struct V1Prefix {
    pub(crate) message_count: u16,
    pub(crate) ref_count: u32,
    pub(crate) header_size: u32,
}

pub(crate) fn v1_prefix(i: &[u8]) -> IResult<&[u8], V1Prefix> {
    let (i, _version) = le_u8(i)?;
    let (i, _reserved) = le_u8(i)?;
    let (i, message_count) = le_u16(i)?;
    let (i, ref_count) = le_u32(i)?;
    let (i, header_size) = le_u32(i)?;
    let (i, _padding) = take(4usize)(i)?;
    Ok((
        i,
        V1Prefix {
            message_count,
            ref_count,
            header_size,
        },
    ))
}

fn parse_v1_header(data: &[u8], at: u64) -> Result<(HeaderPrefix, ChunkMessages)> {
    let (_, p) = v1_prefix(data).map_err(|e| Error::from_nom(HEADER, at, data, e))?;
    let chunk0_address_abs = at.saturating_add(V1_PREFIX_LEN as u64);
    let len = u64::from(p.header_size);
    let (area, complete) = region(data, V1_PREFIX_LEN, len);
    let (messages, error) = parse_chunk(area, len, complete, chunk0_address_abs, 1, false, HEADER);
    let prefix = HeaderPrefix {
        version: 1,
        address_abs: at,
        flags: 0,
        ref_count: Some(p.ref_count),
        message_count: Some(p.message_count),
        chunk0_address_abs,
        chunk0_len: len,
        access_time: None,
        modification_time: None,
        change_time: None,
        birth_time: None,
        max_compact_attributes: None,
        min_dense_attributes: None,
        checksum_ok: None,
    };
    let chunk = ChunkMessages {
        messages,
        error,
        checksum_ok: None,
        checksum_error: None,
    };
    Ok((prefix, chunk))
}

struct V2Prefix {
    version: u8,
    flags: u8,
    times: Option<[u32; 4]>,
    phase_change: Option<(u16, u16)>,
    chunk0_len: u64,
}

fn v2_prefix(i: &[u8]) -> IResult<&[u8], V2Prefix> {
    let (i, _signature) = take(4usize)(i)?;
    let (i, version) = le_u8(i)?;
    let (i, flags) = le_u8(i)?;
    let (i, times) = if flags & 0x20 != 0 {
        let (i, a) = le_u32(i)?;
        let (i, m) = le_u32(i)?;
        let (i, c) = le_u32(i)?;
        let (i, b) = le_u32(i)?;
        (i, Some([a, m, c, b]))
    } else {
        (i, None)
    };
    let (i, phase_change) = if flags & 0x10 != 0 {
        let (i, max) = le_u16(i)?;
        let (i, min) = le_u16(i)?;
        (i, Some((max, min)))
    } else {
        (i, None)
    };
    let (i, chunk0_len) = uint(1 << (flags & 0x03))(i)?;
    Ok((
        i,
        V2Prefix {
            version,
            flags,
            times,
            phase_change,
            chunk0_len,
        },
    ))
}

fn parse_v2_header(data: &[u8], at: u64) -> Result<(HeaderPrefix, ChunkMessages)> {
    match data.get(4) {
        Some(2) => {}
        Some(&v) => {
            return Err(Error::new(
                HEADER,
                at.saturating_add(4),
                ErrorKind::UnsupportedVersion(v),
            ))
        }
        None => return Err(truncated(HEADER, at, 5, data.len())),
    }
    if let Some(&flags) = data.get(5) {
        if flags & 0xC0 != 0 {
            return Err(Error::bad_value(
                HEADER,
                at.saturating_add(5),
                "flags",
                u64::from(flags),
            ));
        }
    }
    let (rest, p) = v2_prefix(data).map_err(|e| Error::from_nom(HEADER, at, data, e))?;
    let start = data.len() - rest.len();
    let chunk0_address_abs = at.saturating_add(start as u64);
    let creation_order = p.flags & 0x04 != 0;
    let (area, complete) = region(data, start, p.chunk0_len);
    let (messages, error) = parse_chunk(
        area,
        p.chunk0_len,
        complete,
        chunk0_address_abs,
        2,
        creation_order,
        HEADER,
    );
    let (checksum_ok, checksum_error) = if complete {
        // `complete` means start + chunk0_len <= data.len(), so this fits usize.
        checksum(HEADER, at, data, start + area.len())
    } else {
        (None, None)
    };
    let [access_time, modification_time, change_time, birth_time] = match p.times {
        Some(t) => t.map(Some),
        None => [None; 4],
    };
    let prefix = HeaderPrefix {
        version: p.version,
        address_abs: at,
        flags: p.flags,
        ref_count: None,
        message_count: None,
        chunk0_address_abs,
        chunk0_len: p.chunk0_len,
        access_time,
        modification_time,
        change_time,
        birth_time,
        max_compact_attributes: p.phase_change.map(|(max, _)| max),
        min_dense_attributes: p.phase_change.map(|(_, min)| min),
        checksum_ok,
    };
    let chunk = ChunkMessages {
        messages,
        error,
        checksum_ok,
        checksum_error,
    };
    Ok((prefix, chunk))
}

/// Verifies the lookup3 checksum after `data[..covered]`: `(None, Some(Truncated))`
/// when the checksum bytes are missing.
fn checksum(
    structure: &'static str,
    at: u64,
    data: &[u8],
    covered: usize,
) -> (Option<bool>, Option<Error>) {
    let end = covered.saturating_add(4);
    if end > data.len() {
        let e = truncated(
            structure,
            at.saturating_add(covered as u64),
            end as u64,
            data.len(),
        );
        return (None, Some(e));
    }
    match verify_checksum(structure, at, data, covered) {
        Ok(()) => (Some(true), None),
        Err(e) => (Some(false), Some(e)),
    }
}

/// Parses one continuation block of `len` bytes (the continuation message's
/// "Length") starting at `data[0]` (absolute offset `at`), for a header of the
/// given `version`. `header_flags` are the v2 header's flags (bit 2 says
/// whether messages carry a creation order); ignored for v1.
///
/// Err for an unknown version, a missing `OCHK` signature or a v2 length too
/// small for signature and checksum. A block shorter on disk than `len` yields
/// the messages that fit and a Truncated error in [`ChunkMessages::error`].
pub fn parse_continuation_block(
    data: &[u8],
    at: u64,
    len: u64,
    version: u8,
    header_flags: u8,
) -> Result<ChunkMessages> {
    match version {
        1 => {
            let (area, complete) = region(data, 0, len);
            let (messages, error) = parse_chunk(area, len, complete, at, 1, false, BLOCK);
            Ok(ChunkMessages {
                messages,
                error,
                checksum_ok: None,
                checksum_error: None,
            })
        }
        2 => {
            expect_signature(BLOCK, at, data, CONTINUATION_SIGNATURE)?;
            if len < 8 {
                return Err(Error::bad_value(BLOCK, at, "continuation length", len));
            }
            let area_len = len - 8;
            let (area, complete) = region(data, 4, area_len);
            let creation_order = header_flags & 0x04 != 0;
            let area_at = at.saturating_add(4);
            let (messages, error) =
                parse_chunk(area, area_len, complete, area_at, 2, creation_order, BLOCK);
            let (checksum_ok, checksum_error) = if complete {
                checksum(BLOCK, at, data, 4 + area.len())
            } else {
                (None, None)
            };
            Ok(ChunkMessages {
                messages,
                error,
                checksum_ok,
                checksum_error,
            })
        }
        v => Err(Error::new(BLOCK, at, ErrorKind::UnsupportedVersion(v))),
    }
}

/// Frames the messages of one chunk's message area (spec IV.A.1.a/b).
///
/// `area` holds the available bytes of a region declared `declared` bytes
/// long (`complete` is false when the file ends first); `area_at` is its
/// absolute offset. v1: 8-byte message headers, sizes multiples of 8, no gap.
/// v2: 4-byte headers (6 with creation order), a trailing gap smaller than a
/// message header is padding.
fn parse_chunk(
    area: &[u8],
    declared: u64,
    complete: bool,
    area_at: u64,
    version: u8,
    creation_order: bool,
    structure: &'static str,
) -> (Vec<RawMessage>, Option<Error>) {
    let header_len = MessageHeader::len(version, creation_order);
    let mut messages = Vec::new();
    let mut pos = 0usize;
    let at_pos = |pos: usize| area_at.saturating_add(pos as u64);
    let error = loop {
        let Some(rest) = area.get(pos..).filter(|r| !r.is_empty()) else {
            break None;
        };
        let Some(header) = MessageHeader::parse(rest, version, creation_order) else {
            if version == 2 && complete {
                break None; // a gap
            }
            break Some(Error::invalid(
                structure,
                at_pos(pos),
                format!(
                    "{} bytes left in the chunk, less than a message header",
                    rest.len()
                ),
            ));
        };
        let MessageHeader {
            kind,
            size,
            flags,
            creation_order: order,
            ..
        } = header;
        if version == 1 && size % 8 != 0 {
            break Some(Error::bad_value(
                structure,
                at_pos(pos),
                "v1 message size (not a multiple of 8)",
                u64::from(size),
            ));
        }
        let body_start = pos + header_len;
        let body_end = body_start + usize::from(size);
        if body_end > area.len() {
            break Some(Error::invalid(
                structure,
                at_pos(pos),
                format!(
                    "message of type {kind:#06x} with {size} bytes runs past the end of its chunk"
                ),
            ));
        }
        messages.push(RawMessage {
            kind,
            flags,
            creation_order: order,
            body_offset: at_pos(body_start),
            size,
        });
        pos = body_end;
    };
    if !complete {
        // Whatever stopped the loop, the root cause is the missing bytes.
        return (
            messages,
            Some(truncated(structure, area_at, declared, area.len())),
        );
    }
    (messages, error)
}

/// Strict test for a signature-less version 1 object header at the start of
/// `data`, for carving: version 1, reserved bytes zero, message count >= 1,
/// header size a non-zero multiple of 8 that fits in `data`, and chunk 0
/// framing exactly into messages of known types (at most the declared count)
/// with zero reserved bytes, at least one of them not NIL.
pub fn looks_like_v1_header(data: &[u8]) -> bool {
    let Ok((_, p)) = v1_prefix(data) else {
        return false;
    };
    if data.get(1) != Some(&0) || data.get(12..16) != Some(&[0, 0, 0, 0][..]) {
        return false;
    }
    let size = u64::from(p.header_size);
    if p.message_count == 0 || size == 0 || size % 8 != 0 || size > 1 << 24 {
        return false;
    }
    let (area, complete) = region(data, V1_PREFIX_LEN, size);
    if !complete {
        return false;
    }
    let (messages, error) = parse_chunk(area, size, true, 0, 1, false, HEADER);
    if error.is_some() || messages.is_empty() || messages.len() > usize::from(p.message_count) {
        return false;
    }
    let reserved_zero = messages.iter().all(|m| {
        // body_offset is relative to the area here (area_at = 0).
        let hdr = usize::try_from(m.body_offset)
            .ok()
            .and_then(|b| b.checked_sub(3))
            .and_then(|s| area.get(s..s + 3));
        hdr == Some(&[0, 0, 0][..])
    });
    reserved_zero
        && messages.iter().all(|m| m.kind <= kind::MAX_KNOWN)
        && messages.iter().any(|m| m.kind != kind::NIL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::message::continuation;
    use crate::format::test_support::object_header::*;
    use crate::format::test_support::{hex, seal};

    fn v2_msg(kind: u8, flags: u8, order: Option<u16>, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as u16).to_le_bytes());
        m.push(flags);
        if let Some(o) = order {
            m.extend_from_slice(&o.to_le_bytes());
        }
        m.extend_from_slice(body);
        m
    }

    /// v2 header with times, phase change values, creation order, 2-byte
    /// chunk size, three messages and a 3-byte gap.
    fn v2_header() -> Vec<u8> {
        let flags = 0x01 | 0x04 | 0x10 | 0x20;
        let msgs = [
            v2_msg(0x01, 0, Some(0), &[2, 0, 0, 0, 5, 0, 0, 0]),
            v2_msg(0x0C, 0x04, Some(1), b"attr-bytes"),
            v2_msg(0x00, 0, Some(2), &[]),
        ]
        .concat();
        let chunk_len = msgs.len() + 3;
        let mut h = b"OHDR".to_vec();
        h.extend_from_slice(&[2, flags]);
        for t in [10u32, 20, 30, 40] {
            h.extend_from_slice(&t.to_le_bytes());
        }
        h.extend_from_slice(&12u16.to_le_bytes());
        h.extend_from_slice(&6u16.to_le_bytes());
        h.extend_from_slice(&(chunk_len as u16).to_le_bytes());
        h.extend_from_slice(&msgs);
        h.extend_from_slice(&[0, 0, 0]);
        seal(h)
    }

    #[test]
    fn v1_header_with_several_messages() {
        let h = v1_header(
            3,
            &[
                v1_msg(0x01, &[1, 1, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]),
                v1_msg(0x00, &[0; 8]),
                v1_msg(0x10, &cont_body(0x400, 64)),
            ],
        );
        let (p, c) = parse_header(&h, 0x100, Sizes::DEFAULT).unwrap();
        assert_eq!(p.version, 1);
        assert_eq!(p.message_count, Some(3));
        assert_eq!(p.ref_count, Some(1));
        assert_eq!(p.chunk0_address_abs, 0x110);
        assert_eq!(p.chunk0_len, 24 + 16 + 24);
        assert_eq!(p.end_abs(), 0x110 + 64);
        assert_eq!(c.error, None);
        assert_eq!(c.checksum_ok, None);
        let kinds: Vec<u16> = c.messages.iter().map(|m| m.kind).collect();
        assert_eq!(kinds, [1, 0, 0x10]);
        assert_eq!(c.messages[0].body_offset, 0x118);
        assert_eq!(c.messages[1].body_offset, 0x118 + 24);
        assert_eq!(c.messages[2].size, 16);
        assert!(looks_like_v1_header(&h));
    }

    #[test]
    fn v2_header_with_all_optional_fields() {
        let h = v2_header();
        let (p, c) = parse_header(&h, 1000, Sizes::DEFAULT).unwrap();
        assert_eq!(p.version, 2);
        assert_eq!(
            (
                p.access_time,
                p.modification_time,
                p.change_time,
                p.birth_time
            ),
            (Some(10), Some(20), Some(30), Some(40))
        );
        assert_eq!(
            (p.max_compact_attributes, p.min_dense_attributes),
            (Some(12), Some(6))
        );
        assert!(p.creation_order_tracked());
        assert!(!p.creation_order_indexed());
        assert_eq!(p.chunk0_address_abs, 1000 + 4 + 2 + 16 + 4 + 2);
        assert_eq!(p.end_abs(), 1000 + h.len() as u64);
        assert_eq!(p.checksum_ok, Some(true));
        assert_eq!(c.error, None);
        assert_eq!(c.messages.len(), 3);
        assert_eq!(c.messages[1].kind, 0x0C);
        assert_eq!(c.messages[1].flags, 0x04);
        assert_eq!(c.messages[1].creation_order, Some(1));
        let m = &c.messages[1];
        let mut file = vec![0u8; 1000];
        file.extend_from_slice(&h);
        assert_eq!(m.body(&file), Some(&b"attr-bytes"[..]));
        assert!(!looks_like_v1_header(&h));
    }

    #[test]
    fn v2_bad_checksum_keeps_messages() {
        let mut h = v2_header();
        let n = h.len();
        h[n - 10] ^= 0xFF; // inside the second message's body
        let (p, c) = parse_header(&h, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(p.checksum_ok, Some(false));
        assert_eq!(c.checksum_ok, Some(false));
        assert!(matches!(
            c.checksum_error.as_ref().unwrap().kind,
            ErrorKind::BadChecksum { .. }
        ));
        assert_eq!(c.messages.len(), 3);
    }

    #[test]
    fn message_running_past_its_chunk() {
        let mut h = v1_header(2, &[v1_msg(0x11, &[0; 16]), v1_msg(0x0C, &[0; 16])]);
        // Second message claims 24 bytes of body; only 16 remain.
        h[16 + 24 + 2] = 24;
        let (_, c) = parse_header(&h, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(c.messages.len(), 1);
        let e = c.error.unwrap();
        assert_eq!(e.offset, 16 + 24);
        assert!(matches!(e.kind, ErrorKind::Invalid(_)), "{e}");
        assert!(!looks_like_v1_header(&h));

        // The same in v2: the next bytes (the checksum) must not be read as body.
        let msgs = [
            v2_msg(0x02, 0, None, &[0; 4]),
            v2_msg(0x0C, 0, None, &[1; 4]),
        ]
        .concat();
        let mut h = b"OHDR".to_vec();
        h.extend_from_slice(&[2, 0, msgs.len() as u8]);
        h.extend_from_slice(&msgs);
        let at_second = h.len() - 8;
        h[at_second + 1] = 8;
        let h = seal(h);
        let (p, c) = parse_header(&h, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(c.messages.len(), 1);
        assert_eq!(c.error.unwrap().offset, at_second as u64);
        assert_eq!(p.checksum_ok, Some(true));

        // A misaligned v1 size is a framing error too.
        let mut h = v1_header(1, &[v1_msg(0x11, &[0; 16])]);
        h[18] = 15;
        let (_, c) = parse_header(&h, 0, Sizes::DEFAULT).unwrap();
        assert!(c.messages.is_empty());
        assert!(matches!(c.error.unwrap().kind, ErrorKind::BadValue { .. }));
    }

    #[test]
    fn truncation_never_panics_and_is_reported() {
        let v1 = v1_header(2, &[v1_msg(0x11, &[7; 16]), v1_msg(0x0C, &[9; 8])]);
        for full in [v1, v2_header(), hex(H5PY_V1_ROOT), hex(H5PY_V2_ROOT)] {
            for n in 0..full.len() {
                match parse_header(&full[..n], 0, Sizes::DEFAULT) {
                    Err(_) => {}
                    Ok((p, c)) => {
                        assert!(
                            c.error.is_some() || c.checksum_error.is_some(),
                            "prefix {n} accepted silently"
                        );
                        assert_eq!(p.checksum_ok, None);
                        assert!(!looks_like_v1_header(&full[..n]));
                    }
                }
            }
        }
        let block = hex(H5PY_V2_BLOCK);
        for n in 0..block.len() {
            match parse_continuation_block(&block[..n], 0, block.len() as u64, 2, 0) {
                Err(_) => {}
                Ok(c) => {
                    let e = c.error.or(c.checksum_error).unwrap();
                    assert!(matches!(e.kind, ErrorKind::Truncated { .. }), "{n}: {e}");
                    assert_eq!(c.checksum_ok, None);
                }
            }
        }
    }

    #[test]
    fn bad_signature_version_and_flags() {
        assert!(parse_header(&[], 0, Sizes::DEFAULT).is_err());
        assert!(parse_header(&[0; 64], 0, Sizes::DEFAULT).is_err());
        let mut h = v2_header();
        h[4] = 3;
        assert_eq!(
            parse_header(&h, 0, Sizes::DEFAULT).unwrap_err().kind,
            ErrorKind::UnsupportedVersion(3)
        );
        let mut h = v2_header();
        h[5] |= 0x80;
        assert!(matches!(
            parse_header(&h, 0, Sizes::DEFAULT).unwrap_err().kind,
            ErrorKind::BadValue { .. }
        ));
        let mut b = hex(H5PY_V2_BLOCK);
        b[0] = b'X';
        assert!(matches!(
            parse_continuation_block(&b, 0, b.len() as u64, 2, 0)
                .unwrap_err()
                .kind,
            ErrorKind::BadSignature { .. }
        ));
        assert!(parse_continuation_block(b"OCHK", 0, 4, 2, 0).is_err());
        assert!(parse_continuation_block(&b, 0, 8, 3, 0).is_err());
    }

    #[test]
    fn hostile_sizes() {
        // v2 chunk 0 size of 2^64-1 (8-byte width).
        let mut h = b"OHDR".to_vec();
        h.extend_from_slice(&[2, 0x03]);
        h.extend_from_slice(&[0xFF; 8]);
        h.extend_from_slice(&[0; 32]);
        let (p, c) = parse_header(&h, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(p.chunk0_len, u64::MAX);
        assert!(matches!(c.error.unwrap().kind, ErrorKind::Truncated { .. }));
        // v1 header size of 4 GiB on 64 bytes.
        let mut h = v1_header(1, &[v1_msg(0x11, &[0; 16])]);
        h[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        let (_, c) = parse_header(&h, 0, Sizes::DEFAULT).unwrap();
        assert_eq!(c.messages.len(), 1);
        assert!(c.error.is_some());
        assert!(!looks_like_v1_header(&h));
        // Continuation length beyond the file.
        let c = parse_continuation_block(&[0; 16], 0, u64::MAX, 1, 0).unwrap();
        assert!(matches!(c.error.unwrap().kind, ErrorKind::Truncated { .. }));
    }

    #[test]
    fn continuation_blocks() {
        // v1: bare messages.
        let b = [v1_msg(0x11, &[1; 16]), v1_msg(0x00, &[0; 8])].concat();
        let c = parse_continuation_block(&b, 0x500, b.len() as u64, 1, 0).unwrap();
        assert_eq!(c.error, None);
        assert_eq!(c.messages.len(), 2);
        assert_eq!(c.messages[0].body_offset, 0x508);
        // v2 with creation order and a gap of 5 bytes.
        let mut b = b"OCHK".to_vec();
        b.extend_from_slice(&v2_msg(0x0C, 0, Some(7), &[3; 10]));
        b.extend_from_slice(&[0; 5]);
        let b = seal(b);
        let c = parse_continuation_block(&b, 0x800, b.len() as u64, 2, 0x04).unwrap();
        assert_eq!(c.error, None);
        assert_eq!(c.checksum_ok, Some(true));
        assert_eq!(c.messages[0].creation_order, Some(7));
        assert_eq!(c.messages[0].body_offset, 0x800 + 4 + 6);
        let mut bad = b.clone();
        bad[12] ^= 1;
        let c = parse_continuation_block(&bad, 0x800, bad.len() as u64, 2, 0x04).unwrap();
        assert_eq!(c.checksum_ok, Some(false));
        assert_eq!(c.messages.len(), 1);
    }

    #[test]
    fn real_h5py_v1_root_header() {
        let h = hex(H5PY_V1_ROOT);
        assert!(looks_like_v1_header(&h));
        let (p, c) = parse_header(&h, 96, Sizes::DEFAULT).unwrap();
        assert_eq!((p.message_count, p.ref_count), (Some(3), Some(1)));
        assert_eq!(p.chunk0_len, 24);
        assert_eq!(c.error, None);
        assert_eq!(c.messages.len(), 1);
        let m = &c.messages[0];
        assert_eq!((m.kind, m.size, m.body_offset), (0x10, 16, 120));
        let body = &h[24..40];
        let cont = continuation::parse(body, 120, Sizes::DEFAULT).unwrap();
        assert_eq!((cont.address, cont.length), (4152, 80));

        let b = hex(H5PY_V1_BLOCK);
        let c = parse_continuation_block(&b, 4152, 80, 1, 0).unwrap();
        assert_eq!(c.error, None);
        let kinds: Vec<u16> = c.messages.iter().map(|m| m.kind).collect();
        assert_eq!(kinds, [0x11, 0x0C]);
        let mut file = vec![0u8; 4152];
        file.extend_from_slice(&b);
        match c.messages[0].decode(&file, Sizes::DEFAULT).unwrap() {
            Message::SymbolTable(s) => {
                assert_eq!((s.btree_address, s.heap_address), (136, 680))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn real_h5py_v2_root_header() {
        let h = hex(H5PY_V2_ROOT);
        assert_eq!(h.len(), 131);
        let (p, c) = parse_header(&h, 48, Sizes::DEFAULT).unwrap();
        assert_eq!(p.flags, 0);
        assert_eq!(p.chunk0_len, 120);
        assert_eq!(p.chunk0_address_abs, 55);
        assert_eq!(p.checksum_ok, Some(true));
        assert_eq!(c.error, None);
        let kinds: Vec<u16> = c.messages.iter().map(|m| m.kind).collect();
        assert_eq!(kinds, [0x02, 0x0A, 0x06, 0x06, 0x15, 0x10, 0x00]);
        assert_eq!(c.messages[1].flags, 0x01);
        let mut file = vec![0u8; 48];
        file.extend_from_slice(&h);
        match c.messages[2].decode(&file, Sizes::DEFAULT).unwrap() {
            Message::Link(l) => assert_eq!(l.name, "g"),
            other => panic!("{other:?}"),
        }
        let b = hex(H5PY_V2_BLOCK);
        let c = parse_continuation_block(&b, 0x242, 0x2f, 2, p.flags).unwrap();
        assert_eq!(c.error, None);
        assert_eq!(c.checksum_ok, Some(true));
        assert_eq!(c.messages.len(), 1);
        assert_eq!((c.messages[0].kind, c.messages[0].size), (0x0C, 35));
    }

    #[test]
    fn v1_heuristic_rejects_noise() {
        assert!(!looks_like_v1_header(&[]));
        assert!(!looks_like_v1_header(&[0; 64]));
        assert!(!looks_like_v1_header(&[1; 64]));
        // Only NIL messages.
        let h = v1_header(1, &[v1_msg(0x00, &[0; 8])]);
        assert!(!looks_like_v1_header(&h));
        // Unknown message type.
        let h = v1_header(1, &[v1_msg(0x99, &[0; 8])]);
        assert!(!looks_like_v1_header(&h));
        // Nonzero reserved byte in a message header.
        let mut h = v1_header(1, &[v1_msg(0x11, &[0; 16])]);
        h[16 + 6] = 1;
        assert!(!looks_like_v1_header(&h));
        // More messages in chunk 0 than declared.
        let h = v1_header(1, &[v1_msg(0x11, &[0; 16]), v1_msg(0x0C, &[0; 8])]);
        assert!(!looks_like_v1_header(&h));
        // Count zero.
        let h = v1_header(0, &[v1_msg(0x11, &[0; 16])]);
        assert!(!looks_like_v1_header(&h));
    }
}

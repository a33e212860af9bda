//! The codec of the HDF5 format: everything the structure parsers share, so
//! that each low-level job is written once.
//!
//! - [`Sizes`]: "size of offsets" / "size of lengths" from the superblock,
//!   and the field readers [`uint`], [`offset`], [`length`] (nom parsers).
//! - `Reader`: the one cursor style, a bounded cursor over those nom
//!   parsers whose failures become [`Error`]s at the field's file offset.
//! - [`Error`] / [`ErrorKind`]: typed parse errors (structure, offset, what).
//! - Checksummed blocks (spec III.H, lookup3): [`expect_signature`],
//!   [`block_prefix`] (signature, version, client ID, owner address),
//!   [`checksum`] (stored vs computed), [`checksum_matches`],
//!   [`verify_checksum`], [`bad_checksum`].
//! - Object-header message framing (spec IV.A.1.a/b): [`MessageHeader`].

use std::fmt;

use nom::number::complete::{le_u16, le_u32, le_u8};
use nom::IResult;

use super::lookup3;

/// The undefined address ("all bits set"), widened to 64 bits.
pub const UNDEFINED: u64 = u64::MAX;

/// "Size of offsets" and "size of lengths" from the superblock (spec: Superblock).
///
/// Both are 8 in practice; 2, 4 and 8 are legal. Constructed only through
/// [`Sizes::new`], so every parser can rely on legal widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sizes {
    offset: u8,
    length: u8,
}

impl Sizes {
    /// The widths written by every current HDF5 library.
    pub const DEFAULT: Sizes = Sizes {
        offset: 8,
        length: 8,
    };

    /// Accepts widths of 2, 4 or 8 bytes (the spec also names 16 for lengths,
    /// which no library writes; it is refused).
    pub fn new(offset: u8, length: u8) -> std::result::Result<Sizes, ErrorKind> {
        for (field, v) in [("size of offsets", offset), ("size of lengths", length)] {
            if !matches!(v, 2 | 4 | 8) {
                return Err(ErrorKind::BadValue {
                    field,
                    value: u64::from(v),
                });
            }
        }
        Ok(Sizes { offset, length })
    }

    /// Bytes in a file address.
    pub fn offset(self) -> u8 {
        self.offset
    }

    /// Bytes in a length field.
    pub fn length(self) -> u8 {
        self.length
    }
}

/// What went wrong while parsing one structure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The structure runs past the end of the available bytes.
    Truncated { needed: u64, available: u64 },
    /// The magic bytes are not the expected ones.
    BadSignature {
        expected: &'static [u8],
        found: Vec<u8>,
    },
    /// A version this parser does not know.
    UnsupportedVersion(u8),
    /// A stored lookup3 (or Fletcher-32) checksum does not match the bytes.
    BadChecksum { stored: u32, computed: u32 },
    /// A field holds a value that is illegal or beyond a safety cap.
    BadValue { field: &'static str, value: u64 },
    /// Anything else, described in words.
    Invalid(String),
}

/// A parse failure: which structure, where in the file, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub structure: &'static str,
    /// Absolute file offset of the offending field (or of the structure).
    pub offset: u64,
    pub kind: ErrorKind,
}

impl Error {
    pub fn new(structure: &'static str, offset: u64, kind: ErrorKind) -> Error {
        Error {
            structure,
            offset,
            kind,
        }
    }

    pub fn invalid(structure: &'static str, offset: u64, what: impl Into<String>) -> Error {
        Error::new(structure, offset, ErrorKind::Invalid(what.into()))
    }

    pub fn bad_value(
        structure: &'static str,
        offset: u64,
        field: &'static str,
        value: u64,
    ) -> Error {
        Error::new(structure, offset, ErrorKind::BadValue { field, value })
    }

    /// Translates a nom failure inside `data` (which starts at file offset `at`)
    /// into an [`Error`] at the position where nom stopped.
    pub fn from_nom(
        structure: &'static str,
        at: u64,
        data: &[u8],
        err: nom::Err<nom::error::Error<&[u8]>>,
    ) -> Error {
        match err {
            nom::Err::Incomplete(needed) => {
                let needed = match needed {
                    nom::Needed::Size(n) => n.get() as u64,
                    nom::Needed::Unknown => 1,
                };
                Error::new(
                    structure,
                    at,
                    ErrorKind::Truncated {
                        needed,
                        available: data.len() as u64,
                    },
                )
            }
            nom::Err::Error(e) | nom::Err::Failure(e) => {
                let consumed = data.len().saturating_sub(e.input.len()) as u64;
                let offset = at.saturating_add(consumed);
                if e.input.len() < 16 && is_length_error(e.code) {
                    Error::new(
                        structure,
                        offset,
                        ErrorKind::Truncated {
                            needed: consumed.saturating_add(1),
                            available: data.len() as u64,
                        },
                    )
                } else {
                    Error::new(
                        structure,
                        offset,
                        ErrorKind::Invalid(format!("malformed ({:?})", e.code)),
                    )
                }
            }
        }
    }
}

fn is_length_error(code: nom::error::ErrorKind) -> bool {
    matches!(
        code,
        nom::error::ErrorKind::Eof | nom::error::ErrorKind::Complete
    )
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} available")
            }
            ErrorKind::BadSignature { expected, found } => write!(
                f,
                "bad signature: expected {:?}, found {:?}",
                String::from_utf8_lossy(expected),
                String::from_utf8_lossy(found)
            ),
            ErrorKind::UnsupportedVersion(v) => write!(f, "unsupported version {v}"),
            ErrorKind::BadChecksum { stored, computed } => write!(
                f,
                "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            ErrorKind::BadValue { field, value } => write!(f, "bad {field}: {value}"),
            ErrorKind::Invalid(s) => f.write_str(s),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {:#x}: {}", self.structure, self.offset, self.kind)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Little-endian unsigned integer of `width` bytes (1..=8), widened to u64.
pub fn uint(width: u8) -> impl Fn(&[u8]) -> IResult<&[u8], u64> {
    move |input: &[u8]| {
        let w = usize::from(width);
        if w == 0 || w > 8 {
            return Err(nom::Err::Error(nom::error::Error::new(
                input,
                nom::error::ErrorKind::Verify,
            )));
        }
        let (rest, bytes) = nom::bytes::complete::take(w)(input)?;
        let mut v = 0u64;
        for (i, b) in bytes.iter().enumerate() {
            v |= u64::from(*b) << (8 * i);
        }
        Ok((rest, v))
    }
}

/// A file address of "size of offsets" bytes; all-ones becomes [`UNDEFINED`].
pub fn offset(sizes: Sizes) -> impl Fn(&[u8]) -> IResult<&[u8], u64> {
    move |input: &[u8]| {
        let (rest, v) = uint(sizes.offset)(input)?;
        Ok((rest, widen_address(v, sizes.offset)))
    }
}

/// A length of "size of lengths" bytes.
pub fn length(sizes: Sizes) -> impl Fn(&[u8]) -> IResult<&[u8], u64> {
    move |input: &[u8]| uint(sizes.length)(input)
}

/// Widens an address of `width` bytes, mapping the all-ones pattern to [`UNDEFINED`].
pub fn widen_address(v: u64, width: u8) -> u64 {
    let all = if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * u32::from(width))) - 1
    };
    if v == all {
        UNDEFINED
    } else {
        v
    }
}

/// True for the undefined address.
pub fn is_undefined(addr: u64) -> bool {
    addr == UNDEFINED
}

/// Checks a 4-byte magic at the start of `data`.
pub fn expect_signature(
    structure: &'static str,
    at: u64,
    data: &[u8],
    magic: &'static [u8],
) -> Result<()> {
    match data.get(..magic.len()) {
        Some(s) if s == magic => Ok(()),
        Some(s) => Err(Error::new(
            structure,
            at,
            ErrorKind::BadSignature {
                expected: magic,
                found: s.to_vec(),
            },
        )),
        None => Err(Error::new(
            structure,
            at,
            ErrorKind::Truncated {
                needed: magic.len() as u64,
                available: data.len() as u64,
            },
        )),
    }
}

/// The lookup3 checksum stored in the 4 bytes after `data[..len]` and the
/// one computed over `data[..len]` (spec III.H): `(stored, computed)`, or
/// `None` when `data` ends before the stored checksum. Every checksummed
/// block of the format is checked through this function.
pub fn checksum(data: &[u8], len: usize) -> Option<(u32, u32)> {
    let end = len.checked_add(4)?;
    let b = data.get(len..end)?;
    let stored = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    Some((stored, lookup3::hashlittle(&data[..len], 0)))
}

/// True if `data[len..len + 4]` is the lookup3 checksum of `data[..len]`.
pub fn checksum_ok(data: &[u8], len: usize) -> bool {
    checksum(data, len).is_some_and(|(stored, computed)| stored == computed)
}

/// [`checksum`] of a block whose 4 checksum bytes at `at` are counted as
/// zeros in a checksum over the whole `block` (fractal heap direct blocks,
/// spec III.G).
pub fn checksum_zeroed(block: &[u8], at: usize) -> Option<(u32, u32)> {
    let end = at.checked_add(4)?;
    let b = block.get(at..end)?;
    let stored = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    Some((stored, lookup3::hashlittle_zeroed(block, 0, at)))
}

/// The error for a structure at `at` that needs `needed` bytes where only
/// `available` are there.
pub fn truncated(structure: &'static str, at: u64, needed: u64, available: usize) -> Error {
    Error::new(
        structure,
        at,
        ErrorKind::Truncated {
            needed,
            available: available as u64,
        },
    )
}

/// The error for checksum bytes missing after `data[..len]`.
fn checksum_truncated(structure: &'static str, at: u64, data: &[u8], len: usize) -> Error {
    truncated(structure, at, (len as u64).saturating_add(4), data.len())
}

/// Compares the lookup3 checksum stored after `data[..len]`: `Ok(false)` on
/// a mismatch, `Err` only when the 4 bytes are missing.
pub fn checksum_matches(structure: &'static str, at: u64, data: &[u8], len: usize) -> Result<bool> {
    checksum(data, len)
        .map(|(stored, computed)| stored == computed)
        .ok_or_else(|| checksum_truncated(structure, at, data, len))
}

/// Verifies the lookup3 checksum stored in the 4 bytes after `data[..len]`.
/// Returns the error at the checksum's offset on mismatch or truncation.
pub fn verify_checksum(structure: &'static str, at: u64, data: &[u8], len: usize) -> Result<()> {
    match checksum(data, len) {
        None => Err(checksum_truncated(structure, at, data, len)),
        Some((stored, computed)) if stored == computed => Ok(()),
        Some((stored, computed)) => Err(Error::new(
            structure,
            at.saturating_add(len as u64),
            ErrorKind::BadChecksum { stored, computed },
        )),
    }
}

/// The error reported for a block of `len` bytes (checksum included) whose
/// checksum does not match.
pub fn bad_checksum(structure: &'static str, at: u64, data: &[u8], len: u64) -> Error {
    let len = usize::try_from(len.saturating_sub(4)).unwrap_or(usize::MAX);
    let (stored, computed) = checksum(data, len).unwrap_or((0, 0));
    Error::new(
        structure,
        at.saturating_add(len as u64),
        ErrorKind::BadChecksum { stored, computed },
    )
}

/// The start of the array and heap structures (spec III.G, VII): the
/// signature `magic`, then a version byte that must be 0. Returns the bytes
/// after the version, and the version.
pub fn signature_v0<'a>(
    structure: &'static str,
    magic: &'static [u8],
    data: &'a [u8],
    at: u64,
) -> Result<(&'a [u8], u8)> {
    expect_signature(structure, at, data, magic)?;
    let body = data.get(magic.len()..).unwrap_or_default();
    let (rest, version) = le_u8(body).map_err(|e| Error::from_nom(structure, at, data, e))?;
    if version != 0 {
        return Err(Error::new(
            structure,
            at.saturating_add(magic.len() as u64),
            ErrorKind::UnsupportedVersion(version),
        ));
    }
    Ok((rest, version))
}

/// The prefix of an array or heap block that names its owner (spec VII.A
/// "Fixed Array Data Block", VII.B extensible array index, secondary and
/// data blocks, III.G "Fractal Heap Indirect Block"): signature, version
/// (only 0 is defined), the client ID where the structure has one (it must
/// be `client`), then the owning header's address. Returns the bytes after
/// the prefix, the version and the owner's address.
pub fn block_prefix<'a>(
    structure: &'static str,
    magic: &'static [u8],
    data: &'a [u8],
    at: u64,
    sizes: Sizes,
    client: Option<u8>,
) -> Result<(&'a [u8], u8, u64)> {
    let (mut rest, version) = signature_v0(structure, magic, data, at)?;
    let nom_err = |e| Error::from_nom(structure, at, data, e);
    if let Some(client) = client {
        let (r, client_id) = le_u8(rest).map_err(nom_err)?;
        if client_id != client {
            return Err(Error::bad_value(
                structure,
                at.saturating_add(5),
                "client ID",
                u64::from(client_id),
            ));
        }
        rest = r;
    }
    let (rest, owner) = offset(sizes)(rest).map_err(nom_err)?;
    Ok((rest, version, owner))
}

/// The header of one object-header message (spec IV.A.1.a "Version 1 Object
/// Header" message entries, IV.A.1.b "Version 2 Object Header"): the one
/// place where a message is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageHeader {
    /// Header message type.
    pub kind: u16,
    /// Size of the message body in bytes.
    pub size: u16,
    /// Header message flags.
    pub flags: u8,
    /// v2 headers whose object tracks creation order.
    pub creation_order: Option<u16>,
    /// v1: the 3 reserved bytes are zero (always true for v2).
    pub reserved_zero: bool,
}

impl MessageHeader {
    /// Bytes of a message header: 8 in a v1 object header, 4 in a v2 one
    /// (6 when the object tracks creation order).
    pub fn len(version: u8, creation_order: bool) -> usize {
        match (version, creation_order) {
            (1, _) => 8,
            (_, false) => 4,
            (_, true) => 6,
        }
    }

    /// Decodes the message header at the start of `bytes` for an object
    /// header of `version` (1 or 2); `None` when `bytes` is shorter.
    pub fn parse(bytes: &[u8], version: u8, creation_order: bool) -> Option<MessageHeader> {
        let h = bytes.get(..MessageHeader::len(version, creation_order))?;
        let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        Some(if version == 1 {
            MessageHeader {
                kind: u16_at(0),
                size: u16_at(2),
                flags: h[4],
                creation_order: None,
                reserved_zero: h[5..8] == [0, 0, 0],
            }
        } else {
            MessageHeader {
                kind: u16::from(h[0]),
                size: u16_at(1),
                flags: h[3],
                creation_order: creation_order.then(|| u16_at(4)),
                reserved_zero: true,
            }
        })
    }

    /// The whole message (header and body) in bytes.
    pub fn total_len(&self, version: u8) -> usize {
        MessageHeader::len(version, self.creation_order.is_some()) + usize::from(self.size)
    }
}

/// A bounded cursor over one structure's bytes, reading fields with nom.
///
/// Every read is checked against the bytes available; failures become
/// [`Error`]s naming the structure and the absolute offset of the field.
pub(crate) struct Reader<'a> {
    structure: &'static str,
    data: &'a [u8],
    at: u64,
    pos: usize,
}

impl<'a> Reader<'a> {
    /// `data` starts at the structure, which lies at absolute offset `at`.
    pub(crate) fn new(structure: &'static str, data: &'a [u8], at: u64) -> Reader<'a> {
        Reader {
            structure,
            data,
            at,
            pos: 0,
        }
    }

    /// Absolute file offset of the structure's first byte.
    pub(crate) fn start(&self) -> u64 {
        self.at
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Absolute file offset of the next byte.
    pub(crate) fn abs(&self) -> u64 {
        self.at.saturating_add(self.pos as u64)
    }

    /// The unread bytes.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// Runs a nom parser on the unread bytes.
    pub(crate) fn run<T>(
        &mut self,
        mut parser: impl FnMut(&'a [u8]) -> IResult<&'a [u8], T>,
    ) -> Result<T> {
        match parser(self.rest()) {
            Ok((rest, v)) => {
                self.pos = self.data.len().saturating_sub(rest.len());
                Ok(v)
            }
            Err(e) => Err(Error::from_nom(self.structure, self.at, self.data, e)),
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        self.run(le_u8)
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        self.run(le_u16)
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        self.run(le_u32)
    }

    /// Little-endian unsigned integer of `width` (1..=8) bytes.
    pub(crate) fn uint(&mut self, width: u8) -> Result<u64> {
        self.run(uint(width))
    }

    /// A file address ("size of offsets" bytes, all-ones -> UNDEFINED).
    pub(crate) fn offset(&mut self, sizes: Sizes) -> Result<u64> {
        self.run(offset(sizes))
    }

    /// A "size of lengths" field.
    pub(crate) fn length(&mut self, sizes: Sizes) -> Result<u64> {
        self.run(length(sizes))
    }

    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        match self.rest().get(..n) {
            Some(s) => {
                self.pos = self.pos.saturating_add(n);
                Ok(s)
            }
            None => Err(self.truncated(n)),
        }
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }

    /// A truncation error for a field of `n` bytes at the current position.
    pub(crate) fn truncated(&self, n: usize) -> Error {
        Error::new(
            self.structure,
            self.abs(),
            ErrorKind::Truncated {
                needed: n as u64,
                available: self.remaining() as u64,
            },
        )
    }

    /// A NUL-terminated string (the NUL is consumed, not returned).
    pub(crate) fn cstring(&mut self) -> Result<String> {
        let rest = self.rest();
        let Some(len) = rest.iter().position(|&b| b == 0) else {
            return Err(self.truncated(rest.len().saturating_add(1)));
        };
        let s = until_nul(rest);
        self.skip(len + 1)?;
        Ok(s)
    }

    /// A NUL-terminated string padded with NULs to a multiple of 8 bytes.
    pub(crate) fn cstring_padded8(&mut self) -> Result<String> {
        let rest = self.rest();
        let Some(len) = rest.iter().position(|&b| b == 0) else {
            return Err(self.truncated(rest.len().saturating_add(1)));
        };
        let s = until_nul(rest);
        self.skip((len + 1).div_ceil(8) * 8)?;
        Ok(s)
    }

    /// Refuses `count` entries of at least `min_each` bytes when they cannot
    /// fit in the unread bytes (guards allocations sized by file fields).
    pub(crate) fn check_count(
        &self,
        field: &'static str,
        count: usize,
        min_each: usize,
    ) -> Result<()> {
        match count.checked_mul(min_each) {
            Some(n) if n <= self.remaining() => Ok(()),
            _ => Err(Error::bad_value(
                self.structure,
                self.abs(),
                field,
                count as u64,
            )),
        }
    }
}

pub(crate) fn until_nul(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_accept_legal_widths_only() {
        assert!(Sizes::new(8, 8).is_ok());
        assert!(Sizes::new(4, 2).is_ok());
        assert_eq!(
            Sizes::new(3, 8),
            Err(ErrorKind::BadValue {
                field: "size of offsets",
                value: 3
            })
        );
        assert!(Sizes::new(8, 16).is_err());
    }

    #[test]
    fn offsets_widen_and_map_undefined() {
        let s4 = Sizes::new(4, 4).unwrap();
        let (rest, v) = offset(s4)(&[0x10, 0, 0, 0, 0xAA]).unwrap();
        assert_eq!((v, rest), (0x10, &[0xAA][..]));
        let (_, v) = offset(s4)(&[0xFF; 4]).unwrap();
        assert_eq!(v, UNDEFINED);
        let (_, v) = offset(Sizes::DEFAULT)(&[0xFF; 8]).unwrap();
        assert_eq!(v, UNDEFINED);
        let (_, v) = length(s4)(&[0xFF; 4]).unwrap();
        assert_eq!(v, 0xFFFF_FFFF);
    }

    #[test]
    fn nom_errors_carry_the_offset() {
        let data = [1u8, 2, 3];
        let err = offset(Sizes::DEFAULT)(&data[1..]).unwrap_err();
        let e = Error::from_nom("test", 100, &data, err);
        assert_eq!(e.offset, 101);
        assert!(matches!(e.kind, ErrorKind::Truncated { .. }), "{e}");
    }

    #[test]
    fn signature_and_checksum_checks() {
        assert!(expect_signature("SNOD", 0, b"SNOD\x01", b"SNOD").is_ok());
        let e = expect_signature("SNOD", 7, b"TREE", b"SNOD").unwrap_err();
        assert_eq!(e.offset, 7);
        let mut block = b"OHDRabcd".to_vec();
        let c = lookup3::hashlittle(&block, 0);
        block.extend_from_slice(&c.to_le_bytes());
        assert!(verify_checksum("OHDR", 0, &block, 8).is_ok());
        block[1] ^= 1;
        let e = verify_checksum("OHDR", 40, &block, 8).unwrap_err();
        assert_eq!(e.offset, 48);
        assert!(verify_checksum("OHDR", 0, &block[..10], 8).is_err());
    }
}

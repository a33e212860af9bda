//! On-disk structures of the HDF5 file format, one module per structure.
//!
//! Every parser here is a pure function from bytes to a typed, owned struct
//! (HDF5 File Format Specification 4.0, `H5.format.4.0.dox`). Parsers never
//! chase pointers: they return addresses, and `crate::walk` / `crate::carve`
//! decide whether and how to follow them. Errors carry the file offset and the
//! structure's name.
//!
//! Conventions shared by all modules:
//! - `data` is the slice that starts at the structure (it may run to the end of
//!   the file; parsers take only what they need), `at` is the structure's
//!   absolute file offset, used only for error messages.
//! - Variable-width fields go through [`Sizes`] ("size of offsets" and "size of
//!   lengths" from the superblock) and [`offset`] / [`length`].
//! - The undefined address (all bits set, at any width) is widened to
//!   [`UNDEFINED`].

use std::fmt;

use nom::IResult;

pub mod btree_v1;
pub mod btree_v2;
pub mod extensible_array;
pub mod fixed_array;
pub mod fractal_heap;
pub mod global_heap;
pub mod local_heap;
pub mod lookup3;
pub mod message;
pub mod object_header;
pub mod selection;
pub mod sohm;
pub mod superblock;
pub mod symbol_table_node;
pub mod vds;

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

/// Verifies the lookup3 checksum stored in the 4 bytes after `data[..len]`.
/// Returns the error at the checksum's offset on mismatch or truncation.
pub fn verify_checksum(structure: &'static str, at: u64, data: &[u8], len: usize) -> Result<()> {
    let end = len
        .checked_add(4)
        .ok_or_else(|| Error::invalid(structure, at, "size overflow"))?;
    let Some(block) = data.get(..end) else {
        return Err(Error::new(
            structure,
            at,
            ErrorKind::Truncated {
                needed: end as u64,
                available: data.len() as u64,
            },
        ));
    };
    let stored = u32::from_le_bytes([block[len], block[len + 1], block[len + 2], block[len + 3]]);
    let computed = lookup3::hashlittle(&block[..len], 0);
    if stored == computed {
        Ok(())
    } else {
        Err(Error::new(
            structure,
            at.saturating_add(len as u64),
            ErrorKind::BadChecksum { stored, computed },
        ))
    }
}

/// The whole file as mapped bytes, with the superblock's base address.
///
/// All pointer chasing goes through [`Image::at`], which resolves a relative
/// address with checked arithmetic and never reads outside the file.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    pub bytes: &'a [u8],
    /// Absolute offset that HDF5 addresses are relative to (superblock base).
    pub base: u64,
    pub sizes: Sizes,
    /// The file's shared-object-header-message heaps (spec III.I), when
    /// its superblock extension names a table; empty otherwise.
    pub shared_heaps: sohm::SharedHeaps,
}

impl<'a> Image<'a> {
    pub fn new(bytes: &'a [u8], base: u64, sizes: Sizes) -> Image<'a> {
        Image {
            bytes,
            base,
            sizes,
            shared_heaps: sohm::SharedHeaps::default(),
        }
    }

    /// Size of the file in bytes.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Absolute file offset of the relative address `addr`, if it is defined
    /// and does not overflow.
    pub fn absolute(&self, addr: u64) -> Option<u64> {
        if is_undefined(addr) {
            None
        } else {
            self.base.checked_add(addr)
        }
    }

    /// The bytes from relative address `addr` to the end of the file.
    /// `structure` names what is expected there, for the error.
    pub fn at(&self, structure: &'static str, addr: u64) -> Result<&'a [u8]> {
        let abs = self
            .absolute(addr)
            .ok_or_else(|| Error::bad_value(structure, addr, "address", addr))?;
        usize::try_from(abs)
            .ok()
            .and_then(|a| self.bytes.get(a..))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::new(
                    structure,
                    abs,
                    ErrorKind::Truncated {
                        needed: 1,
                        available: 0,
                    },
                )
            })
    }

    /// Exactly `len` bytes at relative address `addr`.
    pub fn slice(&self, structure: &'static str, addr: u64, len: u64) -> Result<&'a [u8]> {
        let data = self.at(structure, addr)?;
        match usize::try_from(len).ok().and_then(|l| data.get(..l)) {
            Some(s) => Ok(s),
            None => Err(Error::new(
                structure,
                self.base.saturating_add(addr),
                ErrorKind::Truncated {
                    needed: len,
                    available: data.len() as u64,
                },
            )),
        }
    }

    /// True if `[addr, addr+len)` lies entirely inside the file.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        self.absolute(addr)
            .and_then(|a| a.checked_add(len))
            .is_some_and(|end| end <= self.len())
    }
}

/// Shared by the format modules' tests.
#[cfg(test)]
pub(crate) mod test_support {
    /// The h5py fixtures of `testdata/` (generated by `testdata/generate.py`),
    /// when present, with the superblock's base (user block size).
    pub fn fixtures() -> Vec<(String, Vec<u8>, u64)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "h5") {
                let bytes = std::fs::read(&path).unwrap();
                let base = [0usize, 512, 1024, 2048, 4096, 8192]
                    .into_iter()
                    .find(|&b| bytes.get(b..b + 8) == Some(&b"\x89HDF\r\n\x1a\n"[..]));
                if let Some(base) = base {
                    out.push((path.display().to_string(), bytes, base as u64));
                }
            }
        }
        out
    }
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
    fn image_never_reads_outside() {
        let bytes = [0u8; 16];
        let img = Image::new(&bytes, 4, Sizes::DEFAULT);
        assert_eq!(img.at("x", 0).unwrap().len(), 12);
        assert!(img.at("x", 12).is_err());
        assert!(img.at("x", UNDEFINED).is_err());
        assert!(img.at("x", u64::MAX - 2).is_err());
        assert!(img.slice("x", 8, 4).is_ok());
        assert!(img.slice("x", 8, 5).is_err());
        assert!(img.contains(0, 12));
        assert!(!img.contains(0, 13));
        assert!(!img.contains(u64::MAX - 8, 4));
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

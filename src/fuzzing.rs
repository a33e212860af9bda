//! Entry points of the fuzz targets that take structured input (fuzz/,
//! issue 16), kept in the library so that `tests/regressions.rs` replays a
//! finding through exactly the code the target ran. Each takes arbitrary
//! bytes and must return without a panic, a hang or an unbounded
//! allocation.

use crate::follow::Image;
use crate::format::message::datatype;
use crate::format::message::filter_pipeline::{
    Filter, FilterPipeline, DEFLATE, FLETCHER32, LZF, SHUFFLE,
};
use crate::format::Sizes;
use crate::read::{filters, vlen};

/// The chunk decoding path: a filter pipeline (deflate, shuffle,
/// Fletcher-32, lzf, blosc, or another id) reversed on stored bytes and
/// held to the chunk size ([`filters::reverse_pipeline`]), and the lzf,
/// blosc and blosclz decoders on their own.
///
/// Layout: byte 0 the number of filters (low 2 bits, 0-3), then per filter
/// an id selector (mod 6: deflate, shuffle, fletcher32, lzf, 5 blosc, else
/// the byte itself as the id) and one client-data byte (0: none); then the filter
/// mask (1 byte), the element size (1 byte) and the chunk size (2 bytes,
/// little-endian); the rest is the stored chunk. `fuzz/seeds.py` writes
/// real chunks in this layout.
pub fn filters(data: &[u8]) {
    let Some((&n, mut rest)) = data.split_first() else {
        return;
    };
    let mut pipeline = FilterPipeline {
        version: 2,
        filters: Vec::new(),
    };
    for _ in 0..(n & 3) {
        let [sel, client, tail @ ..] = rest else {
            return;
        };
        let id = match sel % 6 {
            0 => DEFLATE,
            1 => SHUFFLE,
            2 => FLETCHER32,
            3 => LZF,
            5 => filters::BLOSC,
            _ => u16::from(*sel),
        };
        pipeline.filters.push(Filter {
            id,
            name: None,
            flags: 0,
            client_data: match client {
                0 => Vec::new(),
                c => vec![u32::from(*c)],
            },
        });
        rest = tail;
    }
    let [mask, elem, lo, hi, stored @ ..] = rest else {
        return;
    };
    let expected = usize::from(u16::from_le_bytes([*lo, *hi]));
    let decoded = filters::reverse_pipeline(
        stored,
        Some(&pipeline),
        u32::from(*mask),
        u32::from(*elem),
        expected,
    );
    if let Ok(out) = decoded {
        assert_eq!(out.len(), expected, "a decoded chunk has the chunk's size");
    }
    if let Ok(out) = filters::lzf_decompress(stored, expected) {
        assert!(out.len() <= expected, "lzf output stays within its cap");
    }
    let mut out = Vec::new();
    if filters::blosc_decompress(stored, expected, &mut out).is_ok() {
        assert!(out.len() <= expected, "blosc output stays within its cap");
    }
    let mut block = vec![0u8; expected];
    if let Ok(n) = filters::blosclz_decompress(stored, &mut block) {
        assert!(n <= expected, "blosclz output stays within its block");
    }
}

/// Nested variable-length resolution ([`vlen::resolve_vlen`]): a datatype
/// parsed from the front of the input, then values of that type resolved
/// against the whole input taken as a file image (global heap collections
/// anywhere in it).
///
/// Layout: byte 0 the number of elements (low 4 bits + 1), then a datatype
/// encoding (a datatype message body), then the elements' raw bytes; the
/// image is the whole input at base 0 with 8-byte offsets and lengths.
pub fn vlen(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let Ok((dt, used)) = datatype::parse_datatype(rest, 1, Sizes::DEFAULT, 0) else {
        return;
    };
    let count = usize::from(n & 15) + 1;
    let Some(len) = usize::try_from(dt.size)
        .ok()
        .and_then(|s| s.checked_mul(count))
    else {
        return;
    };
    let Some(raw) = rest.get(used..).and_then(|r| r.get(..len)) else {
        return;
    };
    let image = Image::new(data, 0, Sizes::DEFAULT);
    let _ = vlen::resolve_vlen(&image, &dt, raw);
}

/// The superblock signature (spec II.A).
const SUPERBLOCK_SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Carving without a superblock: every superblock signature in the input
/// is broken first, so that carving infers the base address and the sizes
/// ([`crate::carve::base`]) and carves with what it inferred.
pub fn carve_base(data: &[u8]) {
    let mut bytes = data.to_vec();
    let mut from = 0;
    while let Some(p) = bytes
        .get(from..)
        .and_then(|b| b.windows(8).position(|w| w == SUPERBLOCK_SIGNATURE))
    {
        bytes[from + p] = 0;
        from += p + 1;
    }
    let _ = crate::carve::carve("fuzz", &bytes);
}

/// The search for chunks no index lists ([`crate::carve::chunks`]): the
/// deflate-stream framing and allocation-chain walk over bytes with some
/// ranges claimed, then the whole recovery (walk, templates, placement by
/// order) on the same bytes.
///
/// Layout: byte 0 the number of claimed ranges (low 2 bits), each 4 bytes
/// (start, length: u16 little-endian); then the output cap (u16 + 1); the
/// rest is the file. Checks: streams come in file order, inside the file,
/// outside every claimed range, their output within the cap.
pub fn chunks(data: &[u8]) {
    use crate::carve::chunks::{find_streams, recover, Claimed, Options};
    let Some((&n, mut rest)) = data.split_first() else {
        return;
    };
    let mut claimed = Claimed::default();
    let mut spans = Vec::new();
    for _ in 0..(n & 3) {
        let [a, b, c, d, tail @ ..] = rest else {
            return;
        };
        let start = u64::from(u16::from_le_bytes([*a, *b]));
        let end = start + u64::from(u16::from_le_bytes([*c, *d]));
        claimed.add(start, end);
        spans.push((start, end));
        rest = tail;
    }
    claimed.seal();
    let [lo, hi, bytes @ ..] = rest else {
        return;
    };
    let cap = usize::from(u16::from_le_bytes([*lo, *hi])) + 1;
    let (streams, _) = find_streams(bytes, &claimed, cap);
    let mut end = 0;
    for s in &streams {
        assert!(s.offset >= end, "streams in file order, not overlapping");
        end = s.end();
        assert!(end <= bytes.len() as u64, "a stream inside the file");
        assert!(
            s.inflated_len <= cap as u64,
            "a stream's output within the cap"
        );
        assert!(
            spans.iter().all(|&(a, b)| b <= s.offset || a >= end),
            "a stream outside every claimed range"
        );
    }
    let mut inv = crate::walk::walk("fuzz", bytes);
    recover(&mut inv, bytes, &Options::default());
}

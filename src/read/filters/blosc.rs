//! The blosc filter (id 32001 in The HDF Group's registry; PyTables and
//! pandas write it with `complib='blosc:*'`): each stored chunk is one
//! blosc 1.x buffer, decoded here from its format (c-blosc's README_HEADER
//! and the decoder's checks), over pure-Rust codecs.
//!
//! - Header (16 bytes, integers little-endian): format version (2),
//!   codec format version (1), flags, type size, `nbytes` (decoded size),
//!   `blocksize`, `cbytes` (the whole buffer's size, header included).
//!   Flags: bit 0 byte shuffle, bit 1 "memcpyed" (the data follows the
//!   header as is), bit 2 bit shuffle, bit 3 reserved (must be clear),
//!   bit 4 blocks not split, bits 5-7 the codec (0 blosclz, 1 lz4 and
//!   lz4hc, 2 snappy, 3 zlib, 4 zstd).
//! - Then one 32-bit start offset per block (`ceil(nbytes / blocksize)`
//!   blocks, the last one the remainder). A block is split into `typesize`
//!   equal streams when splitting is on, the type size is at most 16, the
//!   block holds at least 128 elements and it is not the last, short
//!   block; otherwise it is one stream. Each stream is a 32-bit
//!   compressed size then that many bytes; a stream whose size equals its
//!   decoded size is stored as is.
//! - A block is then byte-unshuffled (type size above 1), or
//!   bit-unshuffled when its element count is a multiple of 8 (the bytes
//!   after the whole elements stay as they are).
//!
//! blosc carries no checksum: a chunk is verified by every stream decoding
//! to exactly its size, every offset lying inside the buffer, the blocks
//! tiling the buffer after the offsets (each byte in exactly one block, in
//! any order: c-blosc's threads write blocks as they finish; its writer
//! leaves no gaps, a buffer it cannot fill being stored "memcpyed"), the
//! buffer's size being the stored size and the decoded size being the
//! chunk's.
//! Memory: the output (at most `cap` bytes, checked before anything is
//! allocated) and one block.

/// blosc, filter id 32001 (PyTables, pandas; hdf5-blosc).
pub const BLOSC: u16 = 32001;

const HEADER: usize = 16;
const SHUFFLE: u8 = 0x1;
const MEMCPYED: u8 = 0x2;
const BITSHUFFLE: u8 = 0x4;
const RESERVED: u8 = 0x8;
const DONT_SPLIT: u8 = 0x10;
/// Streams per block at most (c-blosc's MAX_SPLITS) and elements per
/// stream at least (MIN_BUFFERSIZE) for a block to be split.
const MAX_SPLITS: usize = 16;
const MIN_SPLIT_ELEMENTS: usize = 128;

/// The codecs of the header's bits 5-7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Codec {
    BloscLz,
    Lz4,
    Snappy,
    Zlib,
    Zstd,
}

/// The fields of a blosc 1.x header.
struct Header {
    flags: u8,
    typesize: usize,
    nbytes: usize,
    blocksize: usize,
    cbytes: usize,
}

fn le32(b: &[u8], at: usize) -> Option<usize> {
    let w = b.get(at..at.checked_add(4)?)?;
    usize::try_from(u32::from_le_bytes([w[0], w[1], w[2], w[3]])).ok()
}

fn header(stored: &[u8]) -> Result<(Header, Option<Codec>), String> {
    let [version, codec_version, flags, typesize, ..] = *stored else {
        return Err(format!(
            "blosc: {} stored bytes, fewer than the 16-byte header",
            stored.len()
        ));
    };
    let field = |at| le32(stored, at).ok_or_else(|| "blosc: header cut".to_string());
    let h = Header {
        flags,
        typesize: usize::from(typesize),
        nbytes: field(4)?,
        blocksize: field(8)?,
        cbytes: field(12)?,
    };
    if version != 2 {
        return Err(format!("blosc: format version {version}, not 2"));
    }
    if flags & RESERVED != 0 {
        return Err(format!(
            "blosc: reserved flag bit 3 set (flags {flags:#04x})"
        ));
    }
    if h.cbytes != stored.len() {
        return Err(format!(
            "blosc: the header says {} bytes, {} are stored",
            h.cbytes,
            stored.len()
        ));
    }
    if flags & MEMCPYED != 0 {
        return Ok((h, None));
    }
    let codec = match flags >> 5 {
        0 => Codec::BloscLz,
        1 => Codec::Lz4,
        2 => Codec::Snappy,
        3 => Codec::Zlib,
        4 => Codec::Zstd,
        c => return Err(format!("blosc: unknown codec {c}")),
    };
    if codec_version != 1 {
        return Err(format!(
            "blosc: {codec:?} format version {codec_version}, not 1"
        ));
    }
    Ok((h, Some(codec)))
}

/// Decodes one blosc buffer (the whole of `stored`) into `out` (replaced;
/// its memory is reused): exactly the header's `nbytes`, which may not
/// exceed `cap`. See the module documentation for what is checked.
pub fn decompress(stored: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    let (h, codec) = header(stored)?;
    if h.nbytes > cap {
        return Err(format!(
            "blosc: {} decoded bytes claimed, more than the expected {cap}",
            h.nbytes
        ));
    }
    let Some(codec) = codec else {
        // Stored as is after the header.
        if h.cbytes != h.nbytes.saturating_add(HEADER) {
            return Err(format!(
                "blosc: a copied buffer of {} bytes holds {} bytes, not {}",
                h.cbytes,
                h.cbytes - HEADER,
                h.nbytes
            ));
        }
        out.extend_from_slice(&stored[HEADER..]);
        return Ok(());
    };
    if h.nbytes == 0 {
        return Ok(());
    }
    if h.blocksize == 0 || h.blocksize > h.nbytes || h.typesize == 0 {
        return Err(format!(
            "blosc: block size {} for {} bytes of type size {}",
            h.blocksize, h.nbytes, h.typesize
        ));
    }
    let nblocks = h.nbytes.div_ceil(h.blocksize);
    if nblocks > (h.cbytes - HEADER) / 4 {
        return Err(format!(
            "blosc: {nblocks} blocks cannot start in a buffer of {} bytes",
            h.cbytes
        ));
    }
    out.resize(h.nbytes, 0);
    let mut scratch = Scratch::default();
    // (start, end, block) of each block, to check they tile the buffer.
    let mut spans = Vec::with_capacity(nblocks);
    for (j, dest) in out.chunks_mut(h.blocksize).enumerate() {
        let start = le32(stored, HEADER + 4 * j).unwrap_or(usize::MAX);
        let end = decode_block(stored, start, &h, codec, dest, &mut scratch)
            .map_err(|e| format!("blosc: block {j} (at {start}): {e}"))?;
        spans.push((start, end, j));
    }
    tiled(&mut spans, HEADER + 4 * nblocks, h.cbytes)
}

/// Checks that the blocks' byte ranges (`(start, end, block)`) cover
/// `first..cbytes` exactly, each byte in one block: c-blosc writes each
/// block's streams back to back and the blocks one after the other, in the
/// order its threads finish them (so not necessarily the order of the
/// offsets), and nothing else after the offsets. Two offsets naming the
/// same bytes, or bytes no block claims, are a damaged buffer even when
/// every block decodes to its size.
fn tiled(spans: &mut [(usize, usize, usize)], first: usize, cbytes: usize) -> Result<(), String> {
    spans.sort_unstable();
    // The end of what is claimed so far, and by what.
    let mut at = first;
    let mut by = "the block offsets".to_string();
    for &(start, end, j) in spans.iter() {
        if start != at {
            let what = if start < at {
                "overlaps"
            } else {
                "leaves a gap after"
            };
            return Err(format!(
                "blosc: block {j} (at {start}) {what} {by} (ending at {at})"
            ));
        }
        at = end;
        by = format!("block {j}");
    }
    if at != cbytes {
        return Err(format!(
            "blosc: bytes {at}..{cbytes} after {by} belong to no block"
        ));
    }
    Ok(())
}

/// What the blocks of one buffer reuse: the shuffled block, the zlib
/// output and the zstd decoder.
#[derive(Default)]
struct Scratch {
    block: Vec<u8>,
    zlib: Vec<u8>,
    zstd: Option<ruzstd::frame_decoder::FrameDecoder>,
}

/// Decodes the block starting at `start` into `dest` (its decoded size);
/// returns the offset after its last stream.
fn decode_block(
    stored: &[u8],
    mut start: usize,
    h: &Header,
    codec: Codec,
    dest: &mut [u8],
    scratch: &mut Scratch,
) -> Result<usize, String> {
    let size = dest.len();
    let ts = h.typesize;
    let shuffle = h.flags & SHUFFLE != 0 && ts > 1;
    let bitshuffle = h.flags & BITSHUFFLE != 0 && size >= ts;
    let short = size < h.blocksize;
    let splits = if h.flags & DONT_SPLIT == 0
        && ts <= MAX_SPLITS
        && size / ts >= MIN_SPLIT_ELEMENTS
        && !short
    {
        ts
    } else {
        1
    };
    if size % splits != 0 {
        return Err(format!("{size} bytes do not split into {splits} streams"));
    }
    let Scratch { block, zlib, zstd } = scratch;
    let target: &mut [u8] = if shuffle || bitshuffle {
        block.clear();
        block.resize(size, 0);
        block
    } else {
        dest
    };
    for part in target.chunks_mut(size / splits) {
        let clen = le32(stored, start).ok_or("stream size outside the buffer")?;
        let body = start
            .checked_add(4)
            .and_then(|s| stored.get(s..s.checked_add(clen)?))
            .ok_or_else(|| format!("stream of {clen} bytes at {start} outside the buffer"))?;
        start += 4 + clen;
        if clen == part.len() {
            part.copy_from_slice(body);
        } else {
            decode_stream(codec, body, part, zlib, zstd)?;
        }
    }
    if shuffle {
        super::unshuffle_slice(block, ts, dest);
    } else if bitshuffle {
        bitunshuffle(block, ts, dest);
    }
    Ok(start)
}

/// Decodes one compressed stream into exactly `part`.
fn decode_stream(
    codec: Codec,
    body: &[u8],
    part: &mut [u8],
    zlib: &mut Vec<u8>,
    zstd: &mut Option<ruzstd::frame_decoder::FrameDecoder>,
) -> Result<(), String> {
    let want = part.len();
    let got = match codec {
        Codec::BloscLz => blosclz_decompress(body, part)?,
        Codec::Lz4 => {
            lz4_flex::block::decompress_into(body, part).map_err(|e| format!("lz4: {e}"))?
        }
        Codec::Snappy => {
            let n = snap::raw::decompress_len(body).map_err(|e| format!("snappy: {e}"))?;
            if n != want {
                return Err(format!("snappy: {n} bytes claimed, {want} expected"));
            }
            snap::raw::Decoder::new()
                .decompress(body, part)
                .map_err(|e| format!("snappy: {e}"))?
        }
        Codec::Zlib => {
            super::inflate(body, want, zlib)?;
            let n = zlib.len();
            part.get_mut(..n)
                .ok_or("zlib: too long")?
                .copy_from_slice(zlib);
            n
        }
        Codec::Zstd => {
            let window = zstd_window(body).ok_or("zstd: no frame header")?;
            // Encoders size the window to the input (at least 1 KiB): a
            // larger one is refused before the decoder reserves it.
            let most = (want as u64).saturating_mul(2).max(1 << 20);
            if window > most {
                return Err(format!("zstd: window of {window} bytes for {want}"));
            }
            zstd_frame(
                body,
                part,
                zstd.get_or_insert_with(ruzstd::frame_decoder::FrameDecoder::new),
            )?
        }
    };
    if got != want {
        return Err(format!(
            "{codec:?} stream gave {got} bytes, {want} expected"
        ));
    }
    Ok(())
}

/// Decodes `body`, which must be exactly one zstd frame (c-blosc writes
/// one per stream), into `part`, returning the bytes written. Only the
/// first frame's window was checked: a second frame is refused before its
/// header is read (the decoder would reserve its window, up to 100 MiB).
fn zstd_frame(
    body: &[u8],
    part: &mut [u8],
    dec: &mut ruzstd::frame_decoder::FrameDecoder,
) -> Result<usize, String> {
    use std::io::Read;
    let err = |e: &dyn std::fmt::Display| format!("zstd: {e}");
    let mut input = body;
    dec.reset(&mut input).map_err(|e| err(&e))?;
    let mut got = 0;
    loop {
        // Each round reads one block (or fails): it ends.
        dec.decode_blocks(
            &mut input,
            ruzstd::frame_decoder::BlockDecodingStrategy::UptoBlocks(1),
        )
        .map_err(|e| err(&e))?;
        got += dec.read(&mut part[got..]).map_err(|e| err(&e))?;
        if dec.can_collect() != 0 {
            return Err(format!("zstd: more than {} bytes", part.len()));
        }
        if dec.is_finished() {
            break;
        }
    }
    if !input.is_empty() {
        return Err(format!(
            "zstd: {} bytes after the frame's {}",
            input.len(),
            body.len() - input.len()
        ));
    }
    Ok(got)
}

/// The window size a zstd frame header declares (RFC 8878 3.1.1.1), or the
/// content size of a single-segment frame; `None` if `frame` does not
/// start with a zstd frame header.
fn zstd_window(frame: &[u8]) -> Option<u64> {
    let [0x28, 0xb5, 0x2f, 0xfd, fhd, rest @ ..] = frame else {
        return None;
    };
    if fhd & 0x20 == 0 {
        let wd = *rest.first()?;
        let base = 1u64 << (10 + (wd >> 3));
        return Some(base + base / 8 * u64::from(wd & 7));
    }
    // Single segment: no window descriptor; the window is the content size.
    let dict = [0, 1, 2, 4][usize::from(fhd & 3)];
    let fcs = rest.get(dict..)?;
    Some(match fhd >> 6 {
        0 => u64::from(*fcs.first()?),
        1 => u64::from(u16::from_le_bytes([*fcs.first()?, *fcs.get(1)?])) + 256,
        2 => u64::from(u32::from_le_bytes(fcs.get(..4)?.try_into().ok()?)),
        _ => u64::from_le_bytes(fcs.get(..8)?.try_into().ok()?),
    })
}

/// Decodes one blosclz stream (c-blosc's LZ77 variant of FastLZ) into
/// exactly `out`, returning the bytes written. Tokens: a control byte
/// whose top 3 bits are 0 starts a literal run of `ctrl + 1` bytes (the
/// first control byte is always a literal run, its top bits ignored);
/// otherwise a match of length `(ctrl >> 5) + 2` (7 in the top bits: 255s
/// and a last byte added), distance `((ctrl & 31) << 8) + next + 1`, or,
/// when that byte is 255 and `ctrl & 31` is 31, 8192 plus a 16-bit
/// big-endian distance that follows. The stream ends after a literal run;
/// a match is always followed by another token.
pub fn blosclz_decompress(input: &[u8], out: &mut [u8]) -> Result<usize, String> {
    let cut = || "blosclz: stream cut inside a token".to_string();
    let mut ip = 0usize;
    let mut op = 0usize;
    let Some(&first) = input.first() else {
        return Ok(0);
    };
    let mut ctrl = usize::from(first & 31);
    ip += 1;
    loop {
        if ctrl < 32 {
            let run = ctrl + 1;
            let src = input.get(ip..ip + run).ok_or_else(cut)?;
            out.get_mut(op..op + run)
                .ok_or("blosclz: literals past the block")?
                .copy_from_slice(src);
            op += run;
            ip += run;
        } else {
            let mut len = (ctrl >> 5) - 1;
            let mut next = || {
                let b = input.get(ip).copied().ok_or_else(cut);
                ip += 1;
                b
            };
            if len == 6 {
                loop {
                    let b = next()?;
                    len += usize::from(b);
                    if b != 255 {
                        break;
                    }
                }
            }
            let code = next()?;
            len += 3;
            let high = (ctrl & 31) << 8;
            let distance = if code == 255 && high == 31 << 8 {
                let hi = next()?;
                let lo = next()?;
                (usize::from(hi) << 8 | usize::from(lo)) + 8192
            } else {
                high + usize::from(code) + 1
            };
            if op + len > out.len() {
                return Err("blosclz: match past the block".into());
            }
            let from = op
                .checked_sub(distance)
                .ok_or("blosclz: match before the block's start")?;
            if ip >= input.len() {
                return Err("blosclz: stream ends with a match".into());
            }
            if distance >= len {
                out.copy_within(from..from + len, op);
            } else {
                // Overlapping: each byte copied after the one it may repeat.
                for k in 0..len {
                    out[op + k] = out[from + k];
                }
            }
            op += len;
        }
        let Some(&c) = input.get(ip) else {
            return Ok(op);
        };
        ctrl = usize::from(c);
        ip += 1;
    }
}

/// Undoes blosc's bit shuffle on `src` (elements of `ts` bytes) into
/// `dest` (as long): with `n` whole elements, `n` a multiple of 8, the
/// input holds for each byte position `j` and bit `k` a row of `n / 8`
/// bytes, bit `m` of row byte `i` being bit `k` of byte `j` of element
/// `8 i + m`; the bytes after the whole elements are copied. With `n` not
/// a multiple of 8 nothing was shuffled.
pub fn bitunshuffle(src: &[u8], ts: usize, dest: &mut [u8]) {
    let n = src.len() / ts.max(1);
    if n % 8 != 0 || ts == 0 {
        dest.copy_from_slice(src);
        return;
    }
    let whole = n * ts;
    let row = n / 8;
    for j in 0..ts {
        for i in 0..row {
            // 8 bytes (bits k = 0..8 of byte j, elements 8i..8i+8) as the
            // rows of an 8x8 bit matrix, transposed into one byte each.
            let mut x = 0u64;
            for k in 0..8 {
                x |= u64::from(src[(j * 8 + k) * row + i]) << (8 * k);
            }
            x = transpose8(x);
            for m in 0..8 {
                dest[(8 * i + m) * ts + j] = (x >> (8 * m)) as u8;
            }
        }
    }
    dest[whole..].copy_from_slice(&src[whole..]);
}

/// Transposes the 8x8 bit matrix held in `x` (byte r, bit c <-> byte c,
/// bit r) in three swaps of ever larger blocks.
fn transpose8(mut x: u64) -> u64 {
    let mut t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA;
    x ^= t ^ (t << 7);
    t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC;
    x ^= t ^ (t << 14);
    t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0;
    x ^= t ^ (t << 28);
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose8_swaps_rows_and_columns() {
        for seed in [1u64, 0x0123_4567_89ab_cdef, u64::MAX, 0x8000_0000_0000_0001] {
            let x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let y = transpose8(x);
            for r in 0..8 {
                for c in 0..8 {
                    assert_eq!((x >> (8 * r + c)) & 1, (y >> (8 * c + r)) & 1);
                }
            }
        }
    }

    /// Bit shuffle written bit by bit from its definition.
    fn bitshuffle(plain: &[u8], ts: usize) -> Vec<u8> {
        let n = plain.len() / ts;
        if n % 8 != 0 {
            return plain.to_vec();
        }
        let row = n / 8;
        let mut out = vec![0u8; plain.len()];
        for e in 0..n {
            for j in 0..ts {
                for k in 0..8 {
                    let bit = (plain[e * ts + j] >> k) & 1;
                    out[(j * 8 + k) * row + e / 8] |= bit << (e % 8);
                }
            }
        }
        out[n * ts..].copy_from_slice(&plain[n * ts..]);
        out
    }

    #[test]
    fn bitunshuffle_inverts_the_definition() {
        for (ts, len) in [(1, 64), (4, 96), (8, 64 * 8 + 3), (3, 3 * 20)] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let mut back = vec![0; len];
            bitunshuffle(&bitshuffle(&plain, ts), ts, &mut back);
            assert_eq!(back, plain, "{ts} {len}");
        }
    }

    #[test]
    fn blosclz_tokens() {
        // "abcd" literal, match of 6 at distance 4 (ctrl 4<<5, code 3),
        // then literal "z".
        let stream = [3, b'a', b'b', b'c', b'd', 4 << 5, 3, 0, b'z'];
        let mut out = [0u8; 11];
        assert_eq!(blosclz_decompress(&stream, &mut out), Ok(11));
        assert_eq!(&out, b"abcdabcdabz");
        // A run: distance 1, length 7 + 2 extra (ctrl 7<<5, extra 2).
        let stream = [0, b'x', 7 << 5, 2, 0, 0, b'y'];
        let mut out = [0u8; 13];
        assert_eq!(blosclz_decompress(&stream, &mut out), Ok(13));
        assert_eq!(&out, b"xxxxxxxxxxxxy");
        // Cut, ending with a match, reaching before the start or past the end.
        let mut out = [0u8; 12];
        for bad in [
            &[3, b'a', b'b'][..],
            &[0, b'x', 7 << 5, 2, 0][..],
            &[0, b'x', 1 << 5, 5, 0, b'y'][..],
            &[0, b'x', 7 << 5, 40, 0, 0, b'y'][..],
        ] {
            assert!(blosclz_decompress(bad, &mut out).is_err(), "{bad:?}");
        }
    }

    /// A blosc buffer built by hand: `blocks` is each block's list of
    /// streams.
    fn buffer(flags: u8, ts: u8, nbytes: u32, blocksize: u32, blocks: &[Vec<Vec<u8>>]) -> Vec<u8> {
        let mut body = Vec::new();
        let first = HEADER + 4 * blocks.len();
        let mut starts = Vec::new();
        for b in blocks {
            starts.extend_from_slice(&((first + body.len()) as u32).to_le_bytes());
            for s in b {
                body.extend_from_slice(&(s.len() as u32).to_le_bytes());
                body.extend_from_slice(s);
            }
        }
        let cbytes = (first + body.len()) as u32;
        let mut v = vec![2, 1, flags, ts];
        for w in [nbytes, blocksize, cbytes] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v.extend(starts);
        v.extend(body);
        v
    }

    fn lz4(b: &[u8]) -> Vec<u8> {
        // Literals only (a valid LZ4 block): token, length, bytes.
        let mut v = vec![0xf0];
        let mut rest = b.len() - 15;
        while rest >= 255 {
            v.push(255);
            rest -= 255;
        }
        v.push(rest as u8);
        v.extend_from_slice(b);
        v
    }

    #[test]
    fn buffers_of_each_codec_and_layout() {
        let plain: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 13) as u8).collect();
        let zlib = |b: &[u8]| {
            use std::io::Write;
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(4));
            e.write_all(b).unwrap();
            e.finish().unwrap()
        };
        let mut out = Vec::new();
        // Two blocks (600 + 400), lz4 (codec 1), no shuffle, not split.
        let b = buffer(
            1 << 5 | DONT_SPLIT,
            1,
            1000,
            600,
            &[vec![lz4(&plain[..600])], vec![lz4(&plain[600..])]],
        );
        decompress(&b, 1000, &mut out).unwrap();
        assert_eq!(out, plain);
        assert!(decompress(&b, 999, &mut out).is_err(), "over the cap");
        // Snappy, byte shuffle of 4-byte elements, blocks of 1000 split in 4.
        let shuffled = &plain;
        let unshuffled = super::super::unshuffle(shuffled, 4);
        let streams: Vec<Vec<u8>> = shuffled
            .chunks(250)
            .map(|s| snap::raw::Encoder::new().compress_vec(s).unwrap())
            .collect();
        let b = buffer(2 << 5 | SHUFFLE, 4, 1000, 1000, &[streams]);
        decompress(&b, 1000, &mut out).unwrap();
        assert_eq!(out, unshuffled);
        // Memcpyed.
        let mut b = buffer(MEMCPYED, 1, 1000, 1000, &[]);
        b.extend_from_slice(&plain);
        b[12..16].copy_from_slice(&1016u32.to_le_bytes());
        decompress(&b, 1000, &mut out).unwrap();
        assert_eq!(out, plain);
        // Zlib, bit shuffle of 8-byte elements (125 of them: not a multiple
        // of 8, so not shuffled), a stream stored as is.
        let z = zlib(&plain);
        let b = buffer(
            3 << 5 | BITSHUFFLE | DONT_SPLIT,
            8,
            1000,
            1000,
            &[vec![z.clone()]],
        );
        decompress(&b, 1000, &mut out).unwrap();
        assert_eq!(out, plain);
        let b = buffer(4 << 5 | DONT_SPLIT, 1, 1000, 1000, &[vec![plain.clone()]]);
        decompress(&b, 1000, &mut out).unwrap();
        assert_eq!(out, plain);
        // Every cut and every single flipped byte: an error or, where the
        // flip is in bytes no check covers, never a panic.
        let good = buffer(3 << 5 | DONT_SPLIT, 1, 1000, 1000, &[vec![z]]);
        for n in 0..good.len() {
            assert!(decompress(&good[..n], 1000, &mut out).is_err(), "{n}");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x41;
            let _ = decompress(&bad, 1000, &mut out);
        }
    }

    /// Random buffers behind a plausible header (every codec and flag,
    /// block starts and stream sizes mostly inside the buffer): an error or
    /// exactly `nbytes` within the cap, never a panic.
    #[test]
    fn random_buffers_never_panic() {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut out = Vec::new();
        for _ in 0..20_000 {
            let len = 16 + (next() % 120) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| (next() % 24) as u8).collect();
            b[0] = 2;
            b[1] = 1;
            b[2] = (next() as u8) & !RESERVED;
            b[3] = 1 + (next() % 9) as u8;
            let nbytes = (next() % 400) as u32;
            let blocksize = 1 + (next() % 400) as u32;
            b[4..8].copy_from_slice(&nbytes.to_le_bytes());
            b[8..12].copy_from_slice(&blocksize.to_le_bytes());
            b[12..16].copy_from_slice(&(len as u32).to_le_bytes());
            let cap = (next() % 500) as usize;
            if decompress(&b, cap, &mut out).is_ok() {
                assert!(out.len() == nbytes as usize && out.len() <= cap);
            }
            let mut block = vec![0u8; cap];
            if let Ok(n) = blosclz_decompress(&b, &mut block) {
                assert!(n <= cap);
            }
        }
    }

    /// Offsets that do not tile the buffer: two naming the same bytes (the
    /// second block decodes to the right size from the first's stream),
    /// a byte between blocks, a byte after the last. Blocks written out of
    /// order (as c-blosc's threads may) still decode.
    #[test]
    fn blocks_must_tile_the_buffer() {
        let plain: Vec<u8> = (0..1200u32).map(|i| (i * 7 % 13) as u8).collect();
        let (p0, p1) = (lz4(&plain[..600]), lz4(&plain[600..]));
        let flags = 1 << 5 | DONT_SPLIT;
        let mut out = Vec::new();
        let good = buffer(flags, 1, 1200, 600, &[vec![p0.clone()], vec![p1.clone()]]);
        decompress(&good, 1200, &mut out).unwrap();
        assert_eq!(out, plain);
        let mut dup = good.clone();
        dup.copy_within(16..20, 20);
        assert!(decompress(&dup, 1200, &mut out).is_err(), "same start");
        // Block 1's bytes first, then block 0's.
        let mut swapped = buffer(flags, 1, 1200, 600, &[vec![p1], vec![p0]]);
        let (a, b) = (swapped[16..20].to_vec(), swapped[20..24].to_vec());
        swapped[16..20].copy_from_slice(&b);
        swapped[20..24].copy_from_slice(&a);
        decompress(&swapped, 1200, &mut out).unwrap();
        assert_eq!(out, plain);
        // One byte inserted before block 1 (its offset moved past it), or
        // after the end.
        let cut = le32(&good, 20).unwrap();
        for (at, moved) in [(cut, true), (good.len(), false)] {
            let mut gap = good.clone();
            gap.insert(at, 0);
            let cbytes = gap.len() as u32;
            gap[12..16].copy_from_slice(&cbytes.to_le_bytes());
            if moved {
                gap[20..24].copy_from_slice(&(cut as u32 + 1).to_le_bytes());
            }
            assert!(decompress(&gap, 1200, &mut out).is_err(), "gap at {at}");
        }
    }

    /// A zstd frame of `data` as one raw block, its size in the header.
    fn zstd_raw(data: &[u8]) -> Vec<u8> {
        let mut v = vec![0x28, 0xb5, 0x2f, 0xfd, 0x20, data.len() as u8];
        v.extend_from_slice(&((data.len() as u32) << 3 | 1).to_le_bytes()[..3]);
        v.extend_from_slice(data);
        v
    }

    /// A zstd stream is exactly one frame: a second frame (which decoding
    /// every frame would append) or trailing bytes are refused.
    #[test]
    fn zstd_stream_is_one_frame() {
        let plain: Vec<u8> = (0..200u32).map(|i| (i % 7) as u8).collect();
        let flags = 4 << 5 | DONT_SPLIT;
        let mut out = Vec::new();
        let one = zstd_raw(&plain);
        decompress(
            &buffer(flags, 1, 200, 200, &[vec![one.clone()]]),
            200,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, plain);
        let mut two = zstd_raw(&plain[..100]);
        two.extend(zstd_raw(&plain[100..]));
        let b = buffer(flags, 1, 200, 200, &[vec![two]]);
        assert!(decompress(&b, 200, &mut out).is_err(), "two frames");
        let mut tail = one;
        tail.push(0);
        let b = buffer(flags, 1, 200, 200, &[vec![tail]]);
        assert!(decompress(&b, 200, &mut out).is_err(), "trailing byte");
    }

    #[test]
    fn zstd_window_is_read_from_the_frame_header() {
        // Window descriptor 0x00: 1 KiB; single segment with a 1-byte size.
        assert_eq!(zstd_window(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0]), Some(1024));
        assert_eq!(zstd_window(&[0x28, 0xb5, 0x2f, 0xfd, 0x20, 200]), Some(200));
        assert_eq!(zstd_window(&[0x28, 0xb5, 0x2f, 0xfd, 0x40]), None);
        assert_eq!(zstd_window(b"not zstd"), None);
    }
}

//! The filters h5salvage can undo: three of HDF5's predefined pipeline
//! (spec IV.A.2.l "The Data Storage - Filter Pipeline Message": 1 deflate,
//! 2 shuffle, 3 fletcher32) and the registered lzf (32000, h5py's), written
//! from the definitions, bzip2 (307, PyTables'; the `bzip2` crate, its CRCs
//! checked), blosc (32001, PyTables' and pandas'; the buffer format in
//! [`blosc`], its codecs from pure-Rust crates and blosclz written from
//! its format), and [`reverse_pipeline`], which undoes a whole
//! pipeline on one stored chunk, in pipeline order, each filter's output
//! held to the size the filters before it imply.
//!
//! - Deflate (id 1): the stored bytes are one zlib stream (RFC 1950, with
//!   its Adler-32 trailer). Decompression writes into a buffer that grows
//!   with the real output and never beyond a cap (the expected chunk size):
//!   a stream that would produce more is rejected as a deflate bomb before
//!   the memory is taken. The stream must reach its end marker; a cut
//!   stream is an error, never a short chunk. Bytes after the end marker
//!   are ignored (libhdf5 ignores them too; the Adler-32 has already
//!   covered everything decoded).
//! - Shuffle (id 2): bytes were regrouped by significance (all first bytes
//!   of the N elements, then all second bytes, ...); bytes past the last
//!   whole element were left in place. Client data value 0 is the element
//!   size.
//! - Fletcher32 (id 3): a 4-byte checksum appended to the (already
//!   filtered) bytes. The spec names the filter only; the algorithm is the
//!   one libhdf5 uses (H5checksum.c): the data is read as 16-bit words with
//!   the FIRST byte of each pair the high-order byte, a trailing odd byte is
//!   a word with that byte high, both sums are folded into 16 bits by adding
//!   the carry (so a non-zero sum never folds to 0), and the result is
//!   `sum2 << 16 | sum1`, stored little-endian. libhdf5 also accepts the
//!   checksum with the bytes of each 16-bit half swapped (files from HDF5
//!   1.6.0-1.6.2 on little-endian machines); so does [`verify_fletcher32`].

pub mod blosc;
pub use blosc::{blosclz_decompress, decompress as blosc_decompress, BLOSC};

use super::{FailureKind, ReadError};
use crate::format::message::filter_pipeline::{
    Filter, FilterPipeline, DEFLATE, FLETCHER32, LZF, NBIT, SCALEOFFSET, SHUFFLE, SZIP,
};

/// Default largest decoded chunk accepted (1 GiB): larger chunks are
/// refused rather than allocated on the word of a possibly hostile layout
/// message. A deflate stream is never inflated beyond its chunk's expected
/// size, so this is also the cap on decompression. See [`max_chunk_bytes`].
pub const MAX_CHUNK_BYTES: usize = 1 << 30;

static CHUNK_CAP: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(MAX_CHUNK_BYTES);

/// The largest decoded chunk accepted now: [`MAX_CHUNK_BYTES`] unless
/// [`set_max_chunk_bytes`] changed it (the CLI's `--max-chunk-mib`).
pub fn max_chunk_bytes() -> usize {
    CHUNK_CAP.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets the cap on decoded (and decompressed) chunk size for the whole
/// process, e.g. lower on a small machine or higher for datasets with
/// chunks above 1 GiB (HDF5 chunks are below 4 GiB).
pub fn set_max_chunk_bytes(bytes: usize) {
    CHUNK_CAP.store(bytes, std::sync::atomic::Ordering::Relaxed);
}

/// HDF5's Fletcher-32 of `data` (see the module documentation).
pub fn fletcher32(data: &[u8]) -> u32 {
    // The sums are kept modulo 65535 by folding, which never turns a
    // non-zero sum into 0: the result is the one libhdf5's 32-bit
    // arithmetic gives (it depends only on each sum's residue and on
    // whether it is zero). Word by word, `sum1 += w; sum2 += sum1`; over a
    // block of `n` words that is `sum2 += n * sum1 + sum((n - i) * w_i)`,
    // `sum1 += sum(w_i)`, which the compiler vectorizes (no dependency
    // from word to word). 2048 words a block: at most 2048^2 * 65535 in
    // the weighted sum, far from overflowing.
    const BLOCK_WORDS: usize = 2048;
    let fold = |mut s: u64| {
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s
    };
    let mut sum1: u64 = 0;
    let mut sum2: u64 = 0;
    let even = data.len() & !1;
    for block in data[..even].chunks(2 * BLOCK_WORDS) {
        let n = (block.len() / 2) as u64;
        let (mut plain, mut weighted) = (0u64, 0u64);
        for (i, p) in block.chunks_exact(2).enumerate() {
            let w = (u64::from(p[0]) << 8) | u64::from(p[1]);
            plain += w;
            weighted += (n - i as u64) * w;
        }
        sum2 = fold(sum2 + n * sum1 + weighted);
        sum1 = fold(sum1 + plain);
    }
    if let Some(&b) = data.get(even) {
        sum1 += u64::from(b) << 8;
        sum2 += sum1;
    }
    // Both folded values are <= 0xffff.
    ((fold(sum2) as u32) << 16) | fold(sum1) as u32
}

/// Checks and strips the Fletcher-32 checksum stored in the last 4 bytes of
/// `data`. Accepts the checksum as libhdf5 writes it (little-endian) and in
/// the pair-swapped form libhdf5 also accepts.
pub fn verify_fletcher32(data: &[u8]) -> Result<&[u8], String> {
    let Some(split) = data.len().checked_sub(4) else {
        return Err(format!(
            "fletcher32: {} stored bytes, fewer than the 4-byte checksum",
            data.len()
        ));
    };
    let (body, sum) = data.split_at(split);
    let computed = fletcher32(body);
    let stored = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
    let swapped = u32::from_le_bytes([sum[1], sum[0], sum[3], sum[2]]);
    if computed == stored || computed == swapped {
        Ok(body)
    } else {
        Err(format!(
            "fletcher32 mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ))
    }
}

/// Inflates one zlib stream into `out` (replaced; its memory is reused),
/// producing at most `cap` bytes: the one place chunks are inflated. The
/// same verdict as [`inflate_capped`] (a complete stream with a good
/// Adler-32, at most `cap` bytes out, bytes after the stream ignored) from
/// a whole-buffer decoder (libdeflate), about twice as fast as the
/// streaming one. Memory: at most `cap` bytes, and never more than the
/// stream could expand to (deflate's limit is 1032 bytes out per byte
/// in). A stream libdeflate rejects is decoded again by the streaming
/// decoder, which gives the error (and, were the two decoders ever to
/// disagree, the verdict h5salvage always gave).
pub fn inflate(stored: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<(), String> {
    thread_local! {
        static INFLATER: std::cell::RefCell<Option<libdeflater::Decompressor>> =
            const { std::cell::RefCell::new(None) };
    }
    let fast = INFLATER.with(|cell| {
        let mut guard = cell.try_borrow_mut().ok()?;
        let d = guard.get_or_insert_with(libdeflater::Decompressor::new);
        let mut size = stored.len().saturating_add(1).saturating_mul(1032).min(cap);
        loop {
            // Only growth is zeroed: a buffer reused at the same size is not.
            if out.len() < size {
                out.resize(size, 0);
            }
            match d.zlib_decompress(stored, &mut out[..size]) {
                Ok(n) => {
                    out.truncate(n);
                    return Some(());
                }
                Err(libdeflater::DecompressionError::InsufficientSpace) if size < cap => {
                    size = size.saturating_mul(2).min(cap);
                }
                Err(_) => return None,
            }
        }
    });
    if fast.is_some() {
        return Ok(());
    }
    let mut d = flate2::Decompress::new(true);
    inflate_into(&mut d, stored, cap, out).map(|_| ())
}

/// Frames the zlib stream at the start of `stored` with the whole-buffer
/// decoder (libdeflate): `Some((stream length, output length))` for a
/// complete stream (header, deflate data, good Adler-32: RFC 1950) whose
/// output is at most `cap` bytes; `None` when libdeflate rejects it, and
/// the caller decodes it again with [`inflate_into`] for the verdict and
/// the error (the chunk search's budget counts that decoder's output).
/// The output itself is not kept: the decoder writes into a scratch
/// buffer of this thread, grown by doubling from 1 MiB up to `cap` as a
/// stream asks for more (so at most twice the work of one decode, and
/// never more memory than the largest output framed).
pub fn frame_zlib(stored: &[u8], cap: usize) -> Option<(usize, usize)> {
    struct Lib {
        d: std::ptr::NonNull<libdeflate_sys::libdeflate_decompressor>,
        scratch: Vec<u8>,
    }
    impl Drop for Lib {
        fn drop(&mut self) {
            // SAFETY: `d` came from `libdeflate_alloc_decompressor` and is
            // freed once, here.
            unsafe { libdeflate_sys::libdeflate_free_decompressor(self.d.as_ptr()) }
        }
    }
    thread_local! {
        static LIB: std::cell::RefCell<Option<Lib>> = const { std::cell::RefCell::new(None) };
    }
    LIB.with(|cell| {
        let mut guard = cell.try_borrow_mut().ok()?;
        if guard.is_none() {
            // SAFETY: no arguments; a null result is handled.
            let d = unsafe { libdeflate_sys::libdeflate_alloc_decompressor() };
            *guard = Some(Lib {
                d: std::ptr::NonNull::new(d)?,
                scratch: Vec::new(),
            });
        }
        let lib = guard.as_mut()?;
        let mut avail = cap.min(1 << 20).max(lib.scratch.capacity().min(cap));
        loop {
            if lib.scratch.capacity() < avail {
                lib.scratch.reserve_exact(avail);
            }
            let (mut n_in, mut n_out) = (0usize, 0usize);
            // SAFETY: `stored` is a live slice; the output pointer has
            // `avail` bytes of allocated capacity, which libdeflate only
            // writes (never read here: the scratch's length stays 0, so no
            // uninitialized byte is ever seen by Rust); both result
            // pointers are valid.
            let r = unsafe {
                libdeflate_sys::libdeflate_zlib_decompress_ex(
                    lib.d.as_ptr(),
                    stored.as_ptr().cast(),
                    stored.len(),
                    lib.scratch.as_mut_ptr().cast(),
                    avail,
                    &mut n_in,
                    &mut n_out,
                )
            };
            match r {
                libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS => {
                    return (n_in <= stored.len() && n_out <= cap).then_some((n_in, n_out));
                }
                libdeflate_sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE if avail < cap => {
                    avail = avail.saturating_mul(2).min(cap);
                }
                _ => return None,
            }
        }
    })
}

/// Inflates one zlib stream, producing at most `cap` bytes. More output
/// than `cap`, a corrupt stream, a bad Adler-32 or a stream that ends
/// before its end marker are errors. Memory grows with the actual output
/// and never exceeds `cap + 1` bytes.
pub fn inflate_capped(stored: &[u8], cap: usize) -> Result<Vec<u8>, String> {
    let mut d = flate2::Decompress::new(true);
    let mut out = Vec::new();
    inflate_into(&mut d, stored, cap, &mut out)?;
    Ok(out)
}

/// Inflates the zlib stream at the start of `stored` into `out` (cleared
/// first; its capacity is reused) with the decompressor `d` (reset first),
/// producing at most `cap` bytes, and returns the length of the complete
/// stream (header, deflate data and Adler-32 trailer): bytes after it are
/// not read. The errors are those of [`inflate_capped`]. Used both to
/// decode an indexed chunk and to frame a chunk no index lists
/// ([`crate::carve::chunks`]), where the stream's length is its extent.
pub fn inflate_into(
    d: &mut flate2::Decompress,
    stored: &[u8],
    cap: usize,
    out: &mut Vec<u8>,
) -> Result<usize, String> {
    use flate2::{FlushDecompress, Status};
    d.reset(true);
    out.clear();
    let limit = cap.checked_add(1).ok_or("deflate: output cap overflow")?;
    let first = stored
        .len()
        .saturating_mul(4)
        .clamp(4096.min(limit), limit)
        .min(1 << 20);
    out.reserve_exact(first);
    loop {
        // Checked whatever the buffer's capacity: a reused buffer may have
        // more room than `limit`.
        if out.len() >= limit {
            return Err(format!(
                "deflate: output exceeds the expected {cap} bytes (deflate bomb or wrong chunk size)"
            ));
        }
        if out.len() == out.capacity() {
            let grow = out.len().max(4096).min(limit - out.len());
            out.reserve_exact(grow);
        }
        let consumed = usize::try_from(d.total_in()).unwrap_or(usize::MAX);
        let input = stored.get(consumed..).unwrap_or_default();
        let before = (d.total_in(), d.total_out());
        let status = d
            .decompress_vec(input, out, FlushDecompress::None)
            .map_err(|e| {
                format!(
                    "deflate: corrupt stream after {} output bytes: {e}",
                    out.len()
                )
            })?;
        if status == Status::StreamEnd {
            break;
        }
        let progressed = (d.total_in(), d.total_out()) != before;
        if !progressed && out.len() < out.capacity() {
            return Err(format!(
                "deflate: stream ends before its end marker ({} of {} bytes consumed, {} bytes out)",
                d.total_in(),
                stored.len(),
                out.len()
            ));
        }
    }
    if out.len() > cap {
        return Err(format!(
            "deflate: output exceeds the expected {cap} bytes (deflate bomb or wrong chunk size)"
        ));
    }
    usize::try_from(d.total_in()).map_err(|_| "deflate: stream length overflows".to_string())
}

/// Undoes the shuffle filter for elements of `size` bytes (a trailing
/// partial element is copied as it is, as the filter left it).
pub fn unshuffle(data: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    unshuffle_into(data, size, &mut out);
    out
}

/// [`unshuffle`] into `out` (replaced; its memory is reused, and not
/// zeroed first: every byte is written).
pub fn unshuffle_into(data: &[u8], size: usize, out: &mut Vec<u8>) {
    out.resize(data.len(), 0);
    unshuffle_slice(data, size, out);
}

/// [`unshuffle`] into `out`, as long as `data`.
pub fn unshuffle_slice(data: &[u8], size: usize, out: &mut [u8]) {
    let n = data.len().checked_div(size).unwrap_or(0);
    if size <= 1 || n <= 1 {
        out.copy_from_slice(data);
        return;
    }
    let whole = n * size;
    match size {
        2 => unshuffle_planes::<2>(&data[..whole], n, &mut out[..whole]),
        4 => unshuffle_planes::<4>(&data[..whole], n, &mut out[..whole]),
        8 => unshuffle_planes::<8>(&data[..whole], n, &mut out[..whole]),
        // Element i's byte b was stored at b * n + i.
        _ => {
            for (elem, dst) in out[..whole].chunks_exact_mut(size).enumerate() {
                for (byte, slot) in dst.iter_mut().enumerate() {
                    *slot = data[byte * n + elem];
                }
            }
        }
    }
    out[whole..].copy_from_slice(&data[whole..]);
}

/// [`unshuffle_slice`] for `N`-byte elements (`data` and `out` both hold
/// exactly `n` of them): the `N` planes of `n` bytes are interleaved 16
/// elements at a time with SSE2 byte unpacks for 4- and 8-byte elements on
/// x86-64 (the element-by-element loop took half the time of inflate +
/// unshuffle on shuffled float32 chunks), else a block of 32 elements at a
/// time with every index known at compile time.
fn unshuffle_planes<const N: usize>(data: &[u8], n: usize, out: &mut [u8]) {
    const BLOCK: usize = 32;
    let planes: [&[u8]; N] = std::array::from_fn(|b| &data[b * n..(b + 1) * n]);
    #[cfg(target_arch = "x86_64")]
    let mut done = sse2::interleave(&planes, out);
    #[cfg(not(target_arch = "x86_64"))]
    let mut done = 0;
    let blocks = (n - done) / BLOCK;
    for (k, dst) in out[done * N..]
        .chunks_exact_mut(BLOCK * N)
        .take(blocks)
        .enumerate()
    {
        let at = done + k * BLOCK;
        let src: [&[u8]; N] = std::array::from_fn(|b| &planes[b][at..at + BLOCK]);
        for e in 0..BLOCK {
            for b in 0..N {
                dst[e * N + b] = src[b][e];
            }
        }
    }
    done += blocks * BLOCK;
    for (e, dst) in out[done * N..].chunks_exact_mut(N).enumerate() {
        for (b, slot) in dst.iter_mut().enumerate() {
            *slot = planes[b][done + e];
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    //! The shuffle filter's byte planes interleaved 16 elements at a time
    //! (SSE2 is part of x86-64: no detection needed).
    use std::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm_storeu_si128, _mm_unpackhi_epi16, _mm_unpackhi_epi32,
        _mm_unpackhi_epi8, _mm_unpacklo_epi16, _mm_unpacklo_epi32, _mm_unpacklo_epi8,
    };

    /// Interleaves the first multiple of 16 elements of `planes` (all of one
    /// length, `N` of them) into `out` (at least `N` times as long) when `N`
    /// is 4 or 8; returns how many elements it did (0 for other sizes).
    pub fn interleave<const N: usize>(planes: &[&[u8]; N], out: &mut [u8]) -> usize {
        let n = planes.iter().map(|p| p.len()).min().unwrap_or(0);
        let n = (n / 16 * 16).min(out.len() / N / 16 * 16);
        let mut i = 0;
        while i < n {
            // SAFETY: `i + 16 <= n`, every plane holds at least `n` bytes
            // and `out` at least `n * N`: each unaligned 16-byte load reads
            // `plane[i..i + 16]` and each store writes inside
            // `out[i * N..(i + 16) * N]`.
            unsafe {
                let at = |b: usize| _mm_loadu_si128(planes[b].as_ptr().add(i).cast());
                let dst = out.as_mut_ptr().add(i * N).cast::<__m128i>();
                match N {
                    4 => {
                        let (a, b, c, d) = (at(0), at(1), at(2), at(3));
                        let (ab_lo, ab_hi) = (_mm_unpacklo_epi8(a, b), _mm_unpackhi_epi8(a, b));
                        let (cd_lo, cd_hi) = (_mm_unpacklo_epi8(c, d), _mm_unpackhi_epi8(c, d));
                        _mm_storeu_si128(dst, _mm_unpacklo_epi16(ab_lo, cd_lo));
                        _mm_storeu_si128(dst.add(1), _mm_unpackhi_epi16(ab_lo, cd_lo));
                        _mm_storeu_si128(dst.add(2), _mm_unpacklo_epi16(ab_hi, cd_hi));
                        _mm_storeu_si128(dst.add(3), _mm_unpackhi_epi16(ab_hi, cd_hi));
                    }
                    8 => {
                        // Bytes 0-3 and 4-7 of 16 elements, each as four
                        // registers of 4 elements.
                        let quads = |p: usize| {
                            let (a, b, c, d) = (at(p), at(p + 1), at(p + 2), at(p + 3));
                            let (ab_lo, ab_hi) = (_mm_unpacklo_epi8(a, b), _mm_unpackhi_epi8(a, b));
                            let (cd_lo, cd_hi) = (_mm_unpacklo_epi8(c, d), _mm_unpackhi_epi8(c, d));
                            [
                                _mm_unpacklo_epi16(ab_lo, cd_lo),
                                _mm_unpackhi_epi16(ab_lo, cd_lo),
                                _mm_unpacklo_epi16(ab_hi, cd_hi),
                                _mm_unpackhi_epi16(ab_hi, cd_hi),
                            ]
                        };
                        let (low, high) = (quads(0), quads(4));
                        for k in 0..4 {
                            _mm_storeu_si128(dst.add(2 * k), _mm_unpacklo_epi32(low[k], high[k]));
                            _mm_storeu_si128(
                                dst.add(2 * k + 1),
                                _mm_unpackhi_epi32(low[k], high[k]),
                            );
                        }
                    }
                    _ => return 0,
                }
            }
            i += 16;
        }
        i
    }
}

/// Filters [`reverse_pipeline`] can undo (and so verify).
pub fn can_decode(id: u16) -> bool {
    matches!(id, DEFLATE | SHUFFLE | FLETCHER32 | LZF | BZIP2 | BLOSC)
}

/// bzip2, filter id 307 in The HDF Group's registry (PyTables writes it):
/// one bzip2 stream per chunk.
pub const BZIP2: u16 = 307;

/// Decompresses one bzip2 stream (the whole of `stored`) into at most
/// `cap` bytes. bzip2 checks a CRC of every block and of the stream: an
/// error, a stream cut short, bytes after its end or more than `cap`
/// bytes of output are refused.
pub fn bzip2_decompress(stored: &[u8], cap: usize) -> Result<Vec<u8>, String> {
    use bzip2::{Decompress, Status};
    let mut d = Decompress::new(false);
    let mut out: Vec<u8> = Vec::new();
    loop {
        if out.len() == out.capacity() {
            if out.len() > cap {
                return Err(format!("bzip2: output exceeds the expected {cap} bytes"));
            }
            // Grow in steps: the cap may be far above what the stream holds.
            let step = (cap + 1 - out.len()).min(1 << 20);
            out.reserve_exact(step);
        }
        let (used, made) = (d.total_in(), out.len());
        let rest = usize::try_from(used)
            .ok()
            .and_then(|u| stored.get(u..))
            .unwrap_or_default();
        let status = d
            .decompress_vec(rest, &mut out)
            .map_err(|e| format!("bzip2: {e}"))?;
        if out.len() > cap {
            return Err(format!("bzip2: output exceeds the expected {cap} bytes"));
        }
        if status == Status::StreamEnd {
            break;
        }
        if d.total_in() == used && out.len() == made {
            return Err(format!(
                "bzip2: stream cut after {used} of {} bytes",
                stored.len()
            ));
        }
    }
    if d.total_in() != stored.len() as u64 {
        return Err(format!(
            "bzip2: {} bytes after the end of the stream",
            stored.len() as u64 - d.total_in()
        ));
    }
    Ok(out)
}

/// Decompresses one LZF block (the format of liblzf, which h5py's filter
/// 32000 stores without a header): a control byte below 32 is followed by
/// that many plus one literal bytes; otherwise its top three bits are a
/// length (7: plus the next byte), the low five bits and the next byte a
/// distance back into the output, and length + 2 bytes are copied from
/// there (the copy may overlap what it writes). LZF has no checksum: a
/// stream is accepted only if every instruction is complete, every
/// back-reference lies inside what was already decoded, and the output
/// stays within `cap` bytes (never allocated beyond that).
pub fn lzf_decompress(stored: &[u8], cap: usize) -> Result<Vec<u8>, String> {
    let mut out: Vec<u8> = Vec::with_capacity(stored.len().saturating_mul(2).min(cap));
    let mut i = 0usize;
    let cut = |i: usize| format!("lzf: stream cut inside the instruction at byte {i}");
    let over = || format!("lzf: output exceeds the expected {cap} bytes");
    while let Some(&ctrl) = stored.get(i) {
        let at = i;
        i += 1;
        if ctrl < 32 {
            let len = usize::from(ctrl) + 1;
            let lit = stored.get(i..i + len).ok_or_else(|| cut(at))?;
            if out.len() + len > cap {
                return Err(over());
            }
            out.extend_from_slice(lit);
            i += len;
            continue;
        }
        let mut len = usize::from(ctrl >> 5);
        if len == 7 {
            len += usize::from(*stored.get(i).ok_or_else(|| cut(at))?);
            i += 1;
        }
        let low = usize::from(*stored.get(i).ok_or_else(|| cut(at))?);
        i += 1;
        let back = (usize::from(ctrl & 0x1f) << 8) + low + 1;
        let len = len + 2;
        let Some(from) = out.len().checked_sub(back) else {
            return Err(format!(
                "lzf: back-reference at byte {at} reaches {back} bytes back, before the start \
                 ({} bytes decoded)",
                out.len()
            ));
        };
        if out.len() + len > cap {
            return Err(over());
        }
        // Byte by byte: the source may overlap the bytes being written.
        for k in 0..len {
            let b = out[from + k];
            out.push(b);
        }
    }
    Ok(out)
}

/// The size of the bytes entering each filter of `filters` as libhdf5
/// applied them to a chunk of `chunk_len` bytes with `mask` (bit i set:
/// filter i skipped): `exact` when the filters before it determine it
/// (shuffle keeps the size, Fletcher-32 adds its 4 bytes), and always an
/// upper `bound` (a compressor may expand its input a little: libhdf5's
/// deflate gives itself 0.1% + 12 bytes; lzf gives up rather than expand).
/// Entry `filters.len()` describes the stored bytes.
fn forward_sizes(filters: &[Filter], mask: u32, chunk_len: usize) -> Vec<(Option<usize>, usize)> {
    let mut sizes = Vec::with_capacity(filters.len() + 1);
    let mut cur = (Some(chunk_len), chunk_len);
    sizes.push(cur);
    for (i, f) in filters.iter().enumerate() {
        if applied(mask, i) {
            let (exact, bound) = cur;
            cur = match f.id {
                SHUFFLE => cur,
                FLETCHER32 => (
                    exact.and_then(|e| e.checked_add(4)),
                    bound.saturating_add(4),
                ),
                _ => (None, bound.saturating_add(bound / 1000).saturating_add(12)),
            };
        }
        sizes.push(cur);
    }
    sizes
}

/// Bit i of a chunk's filter mask clear: filter i was applied. Filters past
/// the 32 bits of the mask are always applied.
fn applied(mask: u32, i: usize) -> bool {
    u32::try_from(i)
        .ok()
        .and_then(|i| 1u32.checked_shl(i))
        .is_none_or(|bit| mask & bit == 0)
}

/// Reverses `pipeline` on one stored chunk; see [`crate::read::decode_chunk`].
/// Filters are undone from the last to the first, and each one's output is
/// held to the size the filters before it imply ([`forward_sizes`]): where
/// that size is known (Fletcher-32 placed before deflate: the chunk plus 4
/// bytes) a compressor must produce exactly that, elsewhere it may produce
/// at most the bound, and the result must be exactly the chunk's size.
pub fn reverse_pipeline(
    stored: &[u8],
    pipeline: Option<&FilterPipeline>,
    filter_mask: u32,
    element_size: u32,
    expected_len: usize,
) -> Result<Vec<u8>, ReadError> {
    with_reversed(
        stored,
        pipeline,
        filter_mask,
        element_size,
        expected_len,
        <[u8]>::to_vec,
    )
}

/// [`reverse_pipeline`] handing the decoded chunk to `f` instead of
/// returning it: the intermediate and final buffers are this thread's,
/// reused from chunk to chunk (no allocation, no copy), which is what
/// verification (decode, check, discard) wants.
pub fn with_reversed<T>(
    stored: &[u8],
    pipeline: Option<&FilterPipeline>,
    filter_mask: u32,
    element_size: u32,
    expected_len: usize,
    f: impl FnOnce(&[u8]) -> T,
) -> Result<T, ReadError> {
    let chunk = (stored, pipeline, filter_mask, element_size, expected_len);
    on_scratch(chunk, true, f)
}

/// The verdict of [`reverse_pipeline`] (the same checks, the same
/// errors) when the decoded bytes are not wanted (a chunk copied as
/// stored): a shuffle that would be undone after every check is skipped,
/// since a permutation of the bytes cannot fail and keeps their length.
pub fn verify_reversed(
    stored: &[u8],
    pipeline: Option<&FilterPipeline>,
    filter_mask: u32,
    element_size: u32,
    expected_len: usize,
) -> Result<(), ReadError> {
    let chunk = (stored, pipeline, filter_mask, element_size, expected_len);
    on_scratch(chunk, false, |_| ())
}

/// A stored chunk and what undoing its filters needs: stored bytes,
/// pipeline, filter mask, element size and expected decoded length.
type ChunkInput<'s> = (&'s [u8], Option<&'s FilterPipeline>, u32, u32, usize);

/// [`reverse_into`] on this thread's scratch buffers (see
/// [`with_reversed`]); `keep`: the decoded bytes are wanted.
fn on_scratch<T>(
    (stored, pipeline, filter_mask, element_size, expected_len): ChunkInput,
    keep: bool,
    f: impl FnOnce(&[u8]) -> T,
) -> Result<T, ReadError> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<[Vec<u8>; 2]> = const {
            std::cell::RefCell::new([Vec::new(), Vec::new()])
        };
    }
    SCRATCH.with(|cell| {
        // The thread's buffers, or fresh ones when re-entered from `f`.
        let mut fresh = [Vec::new(), Vec::new()];
        let mut held = cell.try_borrow_mut().ok();
        let bufs = held.as_deref_mut().unwrap_or(&mut fresh);
        let result = reverse_into(
            stored,
            pipeline,
            filter_mask,
            element_size,
            expected_len,
            keep,
            bufs,
        )
        .map(f);
        // Keep ordinary chunk buffers for the next chunk, not a huge one.
        for b in bufs.iter_mut() {
            if b.capacity() > KEEP_SCRATCH_BYTES {
                *b = Vec::new();
            }
        }
        result
    })
}

/// Largest scratch buffer kept by a thread between chunks (64 MiB).
const KEEP_SCRATCH_BYTES: usize = 64 << 20;

/// Where the bytes being decoded are: a prefix of the stored bytes or of
/// one of the two scratch buffers.
#[derive(Clone, Copy)]
enum Held {
    Stored(usize),
    Buf(usize, usize),
}

/// The body of [`with_reversed`]: each filter reads the bytes it is given
/// and writes into the scratch buffer that does not hold them. Without
/// `keep`, a shuffle undone after every filter that checks anything is
/// skipped (see [`verify_reversed`]): the bytes returned are then not the
/// decoded chunk, only as long as it.
#[allow(clippy::too_many_arguments)]
fn reverse_into<'s>(
    stored: &'s [u8],
    pipeline: Option<&FilterPipeline>,
    filter_mask: u32,
    element_size: u32,
    expected_len: usize,
    keep: bool,
    bufs: &'s mut [Vec<u8>; 2],
) -> Result<&'s [u8], ReadError> {
    let cap = max_chunk_bytes();
    if expected_len > cap {
        return Err(ReadError::new(
            FailureKind::LimitExceeded,
            format!("chunk of {expected_len} bytes exceeds the {cap}-byte limit (--max-chunk-mib)"),
        ));
    }
    let failed = |m: String| ReadError::new(FailureKind::FilterFailed, m);
    let filters = pipeline.map(|p| p.filters.as_slice()).unwrap_or_default();
    let sizes = forward_sizes(filters, filter_mask, expected_len);
    let mut held = Held::Stored(stored.len());
    for (i, f) in filters.iter().enumerate().rev() {
        if !applied(filter_mask, i) {
            continue;
        }
        let (exact, bound) = sizes[i];
        let limit = exact.unwrap_or(bound).min(cap);
        let [a, b] = &mut *bufs;
        let (input, output, into) = match held {
            Held::Stored(n) => (&stored[..n], a, 0),
            Held::Buf(0, n) => (&a[..n], b, 1),
            Held::Buf(_, n) => (&b[..n], a, 0),
        };
        // Only shuffles remain to be undone: a permutation, nothing to check.
        let only_shuffles_left = || {
            filters[..=i]
                .iter()
                .enumerate()
                .all(|(j, g)| g.id == SHUFFLE || !applied(filter_mask, j))
        };
        held = match f.id {
            SHUFFLE if !keep && only_shuffles_left() => held,
            // The checksum is stripped: the body is a prefix of the input.
            FLETCHER32 => {
                let n = verify_fletcher32(input).map_err(failed)?.len();
                match held {
                    Held::Stored(_) => Held::Stored(n),
                    Held::Buf(k, _) => Held::Buf(k, n),
                }
            }
            DEFLATE => {
                inflate(input, limit, output).map_err(failed)?;
                Held::Buf(into, output.len())
            }
            LZF => {
                *output = lzf_decompress(input, limit).map_err(failed)?;
                Held::Buf(into, output.len())
            }
            BZIP2 => {
                *output = bzip2_decompress(input, limit).map_err(failed)?;
                Held::Buf(into, output.len())
            }
            BLOSC => {
                blosc_decompress(input, limit, output).map_err(failed)?;
                Held::Buf(into, output.len())
            }
            SHUFFLE => {
                let size = match f.client_data.first() {
                    Some(&s) if s > 0 => usize::try_from(s).unwrap_or(usize::MAX),
                    _ => usize::try_from(element_size).unwrap_or(usize::MAX),
                };
                unshuffle_into(input, size, output);
                Held::Buf(into, output.len())
            }
            id => {
                let what = match id {
                    SZIP => "szip",
                    NBIT => "nbit",
                    SCALEOFFSET => "scaleoffset",
                    _ => "unsupported",
                };
                return Err(ReadError::new(
                    FailureKind::UndecodableFilter,
                    format!(
                        "filter id {id} ({}, {what}) cannot be decoded: the stored bytes cannot be verified",
                        f.describe()
                    ),
                ));
            }
        };
        let len = match held {
            Held::Stored(n) | Held::Buf(_, n) => n,
        };
        if let Some(e) = exact.filter(|&e| e != len) {
            return Err(failed(format!(
                "{} (filter {i}) gave {len} bytes where the pipeline implies {e}",
                f.describe()
            )));
        }
    }
    let out: &'s [u8] = match held {
        Held::Stored(n) => &stored[..n],
        Held::Buf(k, n) => &bufs[k][..n],
    };
    if out.len() != expected_len {
        return Err(failed(format!(
            "decoded chunk is {} bytes, expected {expected_len}",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn filter(id: u16, client_data: Vec<u32>) -> Filter {
        Filter {
            id,
            name: None,
            flags: 0,
            client_data,
        }
    }

    fn pipeline(filters: Vec<Filter>) -> FilterPipeline {
        FilterPipeline {
            version: 2,
            filters,
        }
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(4));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Shuffle as the filter applies it, written independently for tests.
    fn shuffle(data: &[u8], size: usize) -> Vec<u8> {
        let n = data.len() / size;
        let mut out = Vec::new();
        for b in 0..size {
            for i in 0..n {
                out.push(data[i * size + b]);
            }
        }
        out.extend_from_slice(&data[n * size..]);
        out
    }

    fn with_fletcher(data: &[u8]) -> Vec<u8> {
        let mut v = data.to_vec();
        v.extend_from_slice(&fletcher32(data).to_le_bytes());
        v
    }

    #[test]
    fn unshuffle_transposes_bytes() {
        // 3 elements of 4 bytes: shuffled = all byte 0s, all byte 1s, ...
        let plain: Vec<u8> = (0..12).collect();
        let shuffled = [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11];
        assert_eq!(shuffle(&plain, 4), shuffled);
        assert_eq!(unshuffle(&shuffled, 4), plain);
        // Trailing partial element stays in place.
        let plain: Vec<u8> = (0..14).collect();
        assert_eq!(unshuffle(&shuffle(&plain, 4), 4), plain);
        // Degenerate sizes copy.
        assert_eq!(unshuffle(&[1, 2, 3], 1), [1, 2, 3]);
        assert_eq!(unshuffle(&[1, 2, 3], 8), [1, 2, 3]);
        assert_eq!(unshuffle(&[1, 2, 3], 0), [1, 2, 3]);
        assert!(unshuffle(&[], 4).is_empty());
    }

    #[test]
    fn unshuffle_blocks_equal_the_definition() {
        // Element sizes with and without a block path, lengths around the
        // block (32 elements) with trailing partial elements, into a
        // reused buffer holding other bytes.
        let mut out = vec![0xaa; 7];
        for size in 1..=9usize {
            for len in [
                0usize,
                5,
                31 * size,
                32 * size,
                32 * size + 3,
                97 * size + 1,
                4096,
            ] {
                let plain: Vec<u8> = (0..len).map(|i| (i * 131 + i / 7) as u8).collect();
                let shuffled = shuffle(&plain, size);
                unshuffle_into(&shuffled, size, &mut out);
                assert_eq!(out, plain, "size {size}, length {len}");
            }
        }
    }

    #[test]
    fn fletcher32_known_values() {
        assert_eq!(fletcher32(&[]), 0);
        // One word 0x0102: sum1 = 0x0102, sum2 = 0x0102 (big-endian pairing).
        assert_eq!(fletcher32(&[1, 2]), 0x0102_0102);
        // Odd byte is the high byte of a word.
        assert_eq!(fletcher32(&[1, 2, 3]), ((0x0102 + 0x0402) << 16) | 0x0402);
        // All-ones folds to 0xffff, not 0 (the carry-add reduction).
        assert_eq!(fletcher32(&[0xff, 0xff]), 0xffff_ffff);
        // Long inputs (several 2048-word blocks, odd and even lengths,
        // sums that reach multiples of 65535) equal a u128 word-by-word
        // reference sum.
        let red = |s: u128| if s == 0 { 0 } else { (s - 1) % 65535 + 1 };
        let patterns: [&dyn Fn(u32) -> u8; 3] = [&|i| (i * 7 + 3) as u8, &|_| 0xff, &|i| {
            (i.wrapping_mul(2_654_435_761) >> 13) as u8
        }];
        for len in [10_001u32, 4096, 4097, 8191, 100_000, 1_000_003] {
            for pat in patterns {
                let data: Vec<u8> = (0..len).map(pat).collect();
                let (mut s1, mut s2) = (0u128, 0u128);
                for p in data.chunks(2) {
                    let w = (u128::from(p[0]) << 8) | p.get(1).map_or(0, |&b| u128::from(b));
                    s1 += w;
                    s2 += s1;
                }
                assert_eq!(
                    u128::from(fletcher32(&data)),
                    (red(s2) << 16) | red(s1),
                    "blocked folding equals the reference ({len} bytes)"
                );
            }
        }
    }

    #[test]
    fn fletcher32_verify_and_swapped_form() {
        let data = b"some chunk bytes!";
        let good = with_fletcher(data);
        assert_eq!(verify_fletcher32(&good).unwrap(), data);
        let mut swapped = good.clone();
        let n = swapped.len();
        swapped.swap(n - 4, n - 3);
        swapped.swap(n - 2, n - 1);
        assert_eq!(verify_fletcher32(&swapped).unwrap(), data);
        let mut bad = good.clone();
        bad[3] ^= 0x10;
        assert!(verify_fletcher32(&bad).unwrap_err().contains("mismatch"));
        for len in 0..4 {
            assert!(verify_fletcher32(&good[..len]).is_err());
        }
    }

    #[test]
    fn inflate_roundtrip_and_cap() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let z = zlib(&data);
        assert_eq!(inflate_capped(&z, data.len()).unwrap(), data);
        // Smaller cap: rejected, not truncated.
        assert!(inflate_capped(&z, data.len() - 1)
            .unwrap_err()
            .contains("exceeds"));
        // Larger cap: fine here (the size check is the caller's).
        assert_eq!(inflate_capped(&z, data.len() + 100).unwrap(), data);
    }

    /// The whole-buffer decoder gives the streaming decoder's verdict and,
    /// on a rejection, its error text; its buffer is reused.
    #[test]
    fn inflate_agrees_with_the_streaming_decoder() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 253) as u8).collect();
        let z = zlib(&data);
        let mut out = vec![9u8; 3];
        inflate(&z, data.len(), &mut out).unwrap();
        assert_eq!(out, data);
        // Trailing bytes after the stream are ignored, as before.
        let mut longer = z.clone();
        longer.extend_from_slice(b"trailing");
        inflate(&longer, data.len(), &mut out).unwrap();
        assert_eq!(out, data);
        let mut cases: Vec<(Vec<u8>, usize)> = vec![
            (z.clone(), data.len() - 1),
            (zlib(&vec![0u8; 8 << 20]), 1 << 20),
            (b"not a zlib stream".to_vec(), 100),
            (Vec::new(), 10),
        ];
        for len in (0..z.len()).step_by(97) {
            cases.push((z[..len].to_vec(), data.len()));
        }
        for i in (0..z.len()).step_by(101) {
            let mut bad = z.clone();
            bad[i] ^= 0x21;
            cases.push((bad, data.len()));
        }
        for (stored, cap) in cases {
            let old = inflate_capped(&stored, cap);
            let new = inflate(&stored, cap, &mut out).map(|()| out.clone());
            assert_eq!(new, old, "{} bytes, cap {cap}", stored.len());
        }
    }

    #[test]
    fn inflate_bomb_stops_at_the_cap() {
        // 64 MiB of zeros compresses to ~64 KiB; the cap is 1 MiB.
        let z = zlib(&vec![0u8; 64 << 20]);
        let err = inflate_capped(&z, 1 << 20).unwrap_err();
        assert!(err.contains("exceeds"), "{err}");
    }

    #[test]
    fn inflate_rejects_cut_and_corrupt_streams() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 13 % 256) as u8).collect();
        let z = zlib(&data);
        for len in 0..z.len() {
            assert!(
                inflate_capped(&z[..len], data.len()).is_err(),
                "prefix {len}"
            );
        }
        // Adler-32 trailer flipped.
        let mut bad = z.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(inflate_capped(&bad, data.len()).is_err());
        assert!(inflate_capped(b"not a zlib stream", 100).is_err());
    }

    #[test]
    fn pipeline_gzip_shuffle_fletcher() {
        let plain: Vec<u8> = (0..64u64)
            .flat_map(|i| (i * 1000003).to_le_bytes())
            .collect();
        let stored = with_fletcher(&zlib(&shuffle(&plain, 8)));
        let p = pipeline(vec![
            filter(SHUFFLE, vec![8]),
            filter(DEFLATE, vec![4]),
            filter(FLETCHER32, vec![]),
        ]);
        assert_eq!(
            reverse_pipeline(&stored, Some(&p), 0, 8, plain.len()).unwrap(),
            plain
        );
        // Wrong expected size (either way) fails.
        assert!(reverse_pipeline(&stored, Some(&p), 0, 8, plain.len() - 8).is_err());
        assert!(reverse_pipeline(&stored, Some(&p), 0, 8, plain.len() + 8).is_err());
        // Truncated stored bytes: never a result.
        for len in 0..stored.len() {
            assert!(
                reverse_pipeline(&stored[..len], Some(&p), 0, 8, plain.len()).is_err(),
                "prefix {len}"
            );
        }
        // A flipped byte anywhere is caught (fletcher32 covers everything).
        for i in 0..stored.len() {
            let mut bad = stored.clone();
            bad[i] ^= 0x40;
            assert!(reverse_pipeline(&bad, Some(&p), 0, 8, plain.len()).is_err());
        }
    }

    #[test]
    fn verify_only_gives_the_same_verdicts() {
        let plain: Vec<u8> = (0..256u64)
            .flat_map(|i| (i * 1000003).to_le_bytes())
            .collect();
        let verdict = |stored: &[u8], p: &FilterPipeline, mask: u32, len: usize| {
            let full = reverse_pipeline(stored, Some(p), mask, 8, len).map(|_| ());
            let quick = verify_reversed(stored, Some(p), mask, 8, len);
            assert_eq!(full, quick, "mask {mask}, length {len}");
            quick.is_ok()
        };
        // Shuffle undone last (skipped), and shuffle undone before the
        // Fletcher-32 check (kept: the checksum covers the shuffled bytes).
        let last = pipeline(vec![filter(SHUFFLE, vec![8]), filter(DEFLATE, vec![4])]);
        let first = pipeline(vec![
            filter(FLETCHER32, vec![]),
            filter(SHUFFLE, vec![8]),
            filter(DEFLATE, vec![4]),
        ]);
        let cases = [
            (zlib(&shuffle(&plain, 8)), &last),
            (zlib(&shuffle(&with_fletcher(&plain), 8)), &first),
        ];
        for (stored, p) in cases {
            assert!(verdict(&stored, p, 0, plain.len()));
            assert!(!verdict(&stored, p, 0, plain.len() + 8));
            for i in (0..stored.len()).step_by(7) {
                let mut bad = stored.clone();
                bad[i] ^= 0x40;
                verdict(&bad, p, 0, plain.len());
            }
            verdict(&stored[..stored.len() - 1], p, 0, plain.len());
        }
        // A shuffle whose bytes a later check reads is undone: a flipped
        // byte there fails both ways (the stream was re-made, so only the
        // Fletcher-32 sees it).
        let mut inner = shuffle(&with_fletcher(&plain), 8);
        inner[5] ^= 1;
        assert!(!verdict(&zlib(&inner), &first, 0, plain.len()));
        // Deflate skipped by the mask: the shuffle alone remains.
        assert!(verdict(&shuffle(&plain, 8), &last, 0b10, plain.len()));
    }

    #[test]
    fn filter_mask_skips_filters() {
        let plain: Vec<u8> = (0..40u8).collect();
        let p = pipeline(vec![filter(SHUFFLE, vec![4]), filter(DEFLATE, vec![6])]);
        // Deflate (bit 1) skipped: only shuffled.
        let stored = shuffle(&plain, 4);
        assert_eq!(
            reverse_pipeline(&stored, Some(&p), 0b10, 4, 40).unwrap(),
            plain
        );
        // Everything skipped: stored as is.
        assert_eq!(
            reverse_pipeline(&plain, Some(&p), u32::MAX, 4, 40).unwrap(),
            plain
        );
        // Shuffle skipped: only deflated.
        assert_eq!(
            reverse_pipeline(&zlib(&plain), Some(&p), 0b01, 4, 40).unwrap(),
            plain
        );
        // Shuffle without client data uses the element size.
        let p = pipeline(vec![filter(SHUFFLE, vec![])]);
        assert_eq!(
            reverse_pipeline(&shuffle(&plain, 4), Some(&p), 0, 4, 40).unwrap(),
            plain
        );
    }

    #[test]
    fn unknown_filters_are_named() {
        for id in [SZIP, NBIT, SCALEOFFSET, 32026] {
            let p = pipeline(vec![filter(id, vec![])]);
            let err = reverse_pipeline(&[0; 16], Some(&p), 0, 4, 16).unwrap_err();
            assert_eq!(err.kind, FailureKind::UndecodableFilter, "{err}");
            assert!(err.message.contains(&format!("filter id {id}")), "{err}");
            // Skipped by the mask: no decoding needed.
            assert!(reverse_pipeline(&[0; 16], Some(&p), 1, 4, 16).is_ok());
        }
    }

    /// LZF streams built by hand: literals, overlapping back-references,
    /// the extended length byte.
    #[test]
    fn lzf_decodes_literals_and_back_references() {
        // "abc" literal, then copy 3+2... : ctrl = (len-2)<<5 | (back-1)>>8.
        let s = [2, b'a', b'b', b'c', (1 << 5), 2];
        assert_eq!(lzf_decompress(&s, 100).unwrap(), b"abcabc");
        // Overlapping run: "x" then 9 more "x" (len 9 = 7 + 2: extended).
        let s = [0, b'x', 7 << 5, 0, 0];
        assert_eq!(lzf_decompress(&s, 100).unwrap(), [b'x'; 10]);
        // Distance above 255 uses the control byte's low bits.
        let mut s = vec![31];
        s.extend(0..32u8);
        let mut plain: Vec<u8> = (0..32).collect();
        for _ in 0..9 {
            s.push(31);
            s.extend(0..32u8);
            plain.extend(0..32u8);
        }
        s.extend([(1 << 5) | 1, 0x3f]); // back 0x140 = 320, 3 bytes
        let from = plain.len() - 320;
        plain.extend_from_within(from..from + 3);
        assert_eq!(lzf_decompress(&s, 1000).unwrap(), plain);
        assert!(lzf_decompress(&[], 10).unwrap().is_empty());
    }

    #[test]
    fn lzf_rejects_bad_streams() {
        // Back-reference before the start.
        assert!(lzf_decompress(&[0, b'a', 1 << 5, 1], 100)
            .unwrap_err()
            .contains("before the start"));
        // Cut inside a literal, inside a reference, inside the extension.
        for s in [&[3, 1, 2][..], &[0, 1, 1 << 5], &[0, 1, 7 << 5, 4]] {
            assert!(lzf_decompress(s, 100).unwrap_err().contains("cut"), "{s:?}");
        }
        // Output cap: literal and reference both stop before allocating.
        assert!(lzf_decompress(&[3, 1, 2, 3, 4], 3).is_err());
        assert!(lzf_decompress(&[0, b'x', 7 << 5, 255, 0], 50).is_err());
        assert_eq!(
            lzf_decompress(&[0, b'x', 7 << 5, 255, 0], 265)
                .unwrap()
                .len(),
            265
        );
    }

    /// Hostile streams: never a panic, never more than the cap.
    #[test]
    fn lzf_survives_random_streams() {
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let stream: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let cap = (next() % 300) as usize;
            if let Ok(out) = lzf_decompress(&stream, cap) {
                assert!(out.len() <= cap);
            }
        }
    }

    /// PyTables and h5repack put Fletcher-32 before deflate: the inflated
    /// stream is the chunk plus its checksum.
    /// bzip2 streams (written by the crate's encoder, as libbz2 writes
    /// them): decoded whole; cut, corrupted, padded or oversized ones
    /// refused, never a panic.
    #[test]
    fn bzip2_streams_are_verified() {
        use std::io::Write;
        let plain: Vec<u8> = (0..5000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(9));
        e.write_all(&plain).unwrap();
        let stream = e.finish().unwrap();
        assert_eq!(bzip2_decompress(&stream, plain.len()).unwrap(), plain);
        assert!(bzip2_decompress(&stream, plain.len() - 1).is_err());
        for n in [0, 4, 10, stream.len() / 2, stream.len() - 1] {
            assert!(bzip2_decompress(&stream[..n], plain.len()).is_err(), "{n}");
        }
        let mut padded = stream.clone();
        padded.push(0);
        assert!(bzip2_decompress(&padded, plain.len()).is_err());
        for i in (4..stream.len()).step_by(7) {
            let mut bad = stream.clone();
            bad[i] ^= 0x20;
            if let Ok(out) = bzip2_decompress(&bad, plain.len()) {
                // A flip the CRCs cannot see would have to give the same bytes.
                assert_eq!(out, plain, "{i}");
            }
        }
        let p = pipeline(vec![filter(SHUFFLE, vec![4]), filter(BZIP2, vec![])]);
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(5));
        e.write_all(&shuffle(&plain, 4)).unwrap();
        let stored = e.finish().unwrap();
        assert_eq!(
            reverse_pipeline(&stored, Some(&p), 0, 4, plain.len()).unwrap(),
            plain
        );
    }

    #[test]
    fn fletcher32_before_deflate() {
        let plain: Vec<u8> = (0..256u32).flat_map(|i| (i * 7919).to_le_bytes()).collect();
        let p = pipeline(vec![
            filter(SHUFFLE, vec![4]),
            filter(FLETCHER32, vec![]),
            filter(DEFLATE, vec![5]),
        ]);
        let stored = zlib(&with_fletcher(&shuffle(&plain, 4)));
        assert_eq!(
            reverse_pipeline(&stored, Some(&p), 0, 4, plain.len()).unwrap(),
            plain
        );
        // The inflated size is held to chunk + 4 exactly: a stream of the
        // right content but 4 bytes longer or shorter fails.
        let mut longer = with_fletcher(&shuffle(&plain, 4));
        longer.extend([0; 4]);
        assert!(reverse_pipeline(&zlib(&longer), Some(&p), 0, 4, plain.len()).is_err());
        assert!(reverse_pipeline(&zlib(&plain), Some(&p), 0, 4, plain.len()).is_err());
        // A flipped byte never yields other values: caught by adler-32 or
        // fletcher-32, or (the padding bits after the final deflate block)
        // decoded to the same chunk.
        for i in 0..stored.len() {
            let mut bad = stored.clone();
            bad[i] ^= 0x08;
            if let Ok(v) = reverse_pipeline(&bad, Some(&p), 0, 4, plain.len()) {
                assert_eq!(v, plain, "{i}");
            }
        }
        // Fletcher-32 skipped by the mask: deflate gives the chunk itself.
        assert_eq!(
            reverse_pipeline(&zlib(&shuffle(&plain, 4)), Some(&p), 0b010, 4, plain.len()).unwrap(),
            plain
        );
        // A bomb is still stopped at the bound.
        let bomb = zlib(&vec![0u8; 1 << 20]);
        assert!(reverse_pipeline(&bomb, Some(&p), 0, 4, plain.len()).is_err());
    }

    #[test]
    fn sizes_follow_the_pipeline() {
        let f = |id| filter(id, vec![]);
        let s = forward_sizes(
            &[f(SHUFFLE), f(FLETCHER32), f(DEFLATE), f(FLETCHER32)],
            0,
            100,
        );
        assert_eq!(s[0], (Some(100), 100));
        assert_eq!(s[2], (Some(104), 104));
        assert_eq!(s[3].0, None);
        assert!(s[3].1 >= 104 + 12);
        assert_eq!(s[4].0, None);
        // Skipped filters change nothing.
        let s = forward_sizes(&[f(FLETCHER32), f(DEFLATE)], 0b01, 100);
        assert_eq!(s[1], (Some(100), 100));
        assert!(applied(0, 40), "filters past bit 31 always apply");
    }

    #[test]
    fn lzf_pipeline_with_shuffle() {
        // Four 4-byte elements, shuffled: 16 bytes as one literal run.
        let plain: Vec<u8> = (0..16).collect();
        let sh = shuffle(&plain, 4);
        let mut stored = vec![15];
        stored.extend(&sh);
        let p = pipeline(vec![
            filter(SHUFFLE, vec![4]),
            filter(LZF, vec![4, 261, 16]),
        ]);
        assert_eq!(
            reverse_pipeline(&stored, Some(&p), 0, 4, 16).unwrap(),
            plain
        );
        // Too short a stream is the wrong size, never a short chunk.
        assert!(reverse_pipeline(&stored[..9], Some(&p), 0, 4, 16).is_err());
        // Skipped (h5py stores incompressible chunks raw with the bit set).
        assert_eq!(reverse_pipeline(&sh, Some(&p), 0b10, 4, 16).unwrap(), plain);
    }

    #[test]
    fn no_pipeline_checks_the_size_only() {
        assert_eq!(
            reverse_pipeline(&[1, 2, 3], None, 0, 1, 3).unwrap(),
            [1, 2, 3]
        );
        assert!(reverse_pipeline(&[1, 2, 3], None, 0, 1, 4).is_err());
        assert!(reverse_pipeline(&[], None, 0, 1, MAX_CHUNK_BYTES + 1).is_err());
    }
}

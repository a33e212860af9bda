//! Review of the native writer on damaged inputs (branch nativedmg): each
//! test shows one finding, where the native writer's output differs from
//! the libhdf5 backend's (`H5SALVAGE_WRITER=libhdf5`, the reference) or
//! breaks a principle. Inputs are made by the tests (h5py, then damaged);
//! every libhdf5 or h5py run on a damaged file has a timeout.

mod common;

use std::path::{Path, PathBuf};

use common::{have_h5py, python_timed};

/// One salvage run: exit code, JSON report (without the output's name),
/// stderr (with the writer log).
struct Run {
    code: Option<i32>,
    report: Option<serde_json::Value>,
    stderr: String,
}

/// `h5salvage salvage --json INPUT -o OUT` with the native writer
/// (`libhdf5` false) or the libhdf5 backend.
fn salvage(input: &Path, out: &Path, libhdf5: bool) -> Run {
    let args: [&std::ffi::OsStr; 5] = [
        "salvage".as_ref(),
        "--json".as_ref(),
        input.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ];
    let o = common::h5salvage_with_writer(&args, libhdf5);
    let report = serde_json::from_slice::<serde_json::Value>(&o.stdout)
        .ok()
        .map(|mut v| {
            common::comparable_report(&mut v);
            v
        });
    Run {
        code: o.status.code(),
        report,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Salvages `input` with both writers into `dir`: (native output, its
/// run, libhdf5 output, its run). The native writer must have been taken.
fn both(input: &Path, dir: &Path) -> (PathBuf, Run, PathBuf, Run) {
    let stem = input.file_stem().unwrap().to_string_lossy().to_string();
    let nat = dir.join(format!("{stem}.native.h5"));
    let lib = dir.join(format!("{stem}.libhdf5.h5"));
    let n = salvage(input, &nat, false);
    let l = salvage(input, &lib, true);
    assert!(
        n.stderr.contains("writer: native:"),
        "{}: native writer not taken: {}",
        input.display(),
        n.stderr
    );
    (nat, n, lib, l)
}

/// `python3 -c CODE ARGS` under a timeout: (success, stdout + stderr).
fn py(code: &str, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let o = python_timed(300)
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python3");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Makes `dir/NAME.h5` with the Python code `make` (its path, then
/// `args`), salvages it with both writers and reads both outputs with the
/// Python code `read` (which prints what it sees). Returns the
/// differences: empty when the native output reads as the libhdf5 one,
/// with the same exit code and the same report.
fn differences(dir: &Path, name: &str, make: &str, args: &[&str], read: &str) -> Vec<String> {
    let input = dir.join(format!("{name}.h5"));
    let mut all: Vec<&std::ffi::OsStr> = vec![input.as_os_str()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    let (ok, text) = py(make, &all);
    assert!(ok, "{name}: {text}");
    let (nat, n, lib, l) = both(&input, dir);
    let (ok, got_lib) = py(read, &[lib.as_os_str()]);
    assert!(ok, "{name}: the libhdf5 output: {got_lib}");
    let (ok_nat, got_nat) = py(read, &[nat.as_os_str()]);
    let mut wrong = Vec::new();
    if !ok_nat || got_nat != got_lib {
        // A failed read: its last line (the error) is enough.
        let shown = if ok_nat {
            got_nat.trim_end()
        } else {
            got_nat.lines().last().unwrap_or_default()
        };
        wrong.push(format!(
            "{name}: native output: {shown}\n  libhdf5 output: {}",
            got_lib.trim_end()
        ));
    }
    if n.code != l.code {
        wrong.push(format!("{name}: exit {:?} vs {:?}", n.code, l.code));
    }
    if n.report != l.report {
        wrong.push(format!("{name}: the reports differ"));
    }
    wrong
}

/// The test `test` (skipped without h5py, as every test here): each
/// variant (file name, optional argument to `make`) of the input made by
/// `make` must read as the libhdf5 backend's output ([`differences`]);
/// all variants are tried before failing, so that each one shows.
fn same_as_libhdf5(test: &str, make: &str, read: &str, variants: &[(&str, Option<&str>)]) {
    if !have_h5py(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut wrong = Vec::new();
    for (name, arg) in variants {
        let args: Vec<&str> = arg.iter().copied().collect();
        wrong.extend(differences(dir.path(), name, make, &args, read));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Finding: a chunked, filtered dataset with space allocation time EARLY
/// and fill write time NEVER, one chunk failing verification (a damaged
/// deflate stream). The libhdf5 backend creates the dataset with the same
/// allocation time: libhdf5 allocates every chunk at creation and, because
/// the dataset has filters, fills them with the fill value even though the
/// fill time is "never" (H5D__chunk_allocate), so the missing chunk reads 7
/// there. The native writer leaves the chunk out of its index (it does not
/// follow the EARLY allocation time, src/write/native/mod.rs chunk index
/// from the written chunks only), and an unallocated chunk with fill time
/// "never" reads as whatever the reader's buffer held (zeros in h5py).
/// Same input, same marks, different values in the unwritten part.
#[test]
fn early_allocated_filtered_chunks_with_fill_never_read_as_libhdf5_fills_them() {
    const MAKE: &str = r#"
import sys, h5py, numpy as np
out = sys.argv[1]
with h5py.File(out, "w", libver="earliest") as f:
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((1000,))
    dcpl.set_deflate(4)
    dcpl.set_fill_value(np.array(7, dtype="<i4"))
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    d = h5py.h5d.create(f.id, b"d", h5py.h5t.STD_I32LE, h5py.h5s.create_simple((10000,)), dcpl=dcpl)
    d.write(h5py.h5s.ALL, h5py.h5s.ALL, (np.arange(10000, dtype="<i4") * 7919) % 100003)
    info = d.get_chunk_info(4)
# Damage: 16 bytes in the middle of chunk 4's deflate stream.
with open(out, "r+b") as f:
    f.seek(info.byte_offset + info.size // 2)
    f.write(b"\xde\xad\xbe\xef" * 4)
"#;
    const READ: &str = r#"
import sys, h5py
d = h5py.File(sys.argv[1], "r")["d"]
print(d.attrs["h5salvage_status"], [int(x) for x in d[4000:4003]], int(d[3999]))
"#;
    same_as_libhdf5(
        "early_allocated_filtered_chunks_with_fill_never_read_as_libhdf5_fills_them",
        MAKE,
        READ,
        &[("early_never", None)],
    );
}

/// Finding: a damaged dataspace whose maximum (50) is smaller than its
/// size (100), on a chunked dataset in a version-1 header (no checksum to
/// catch it; our scan calls the file healthy). The libhdf5 backend cannot
/// create it (H5Screate_simple: maxdims smaller than dims): the dataset is
/// LOST, said in the report. The native writer's eligibility
/// (src/write/native/eligible.rs `dataset_supported`, the Chunked arm
/// checks chunk dims only, max >= dims is checked for no layout) takes
/// it and writes a dataset libhdf5 refuses to open ("dataspace dim 0 size
/// of 100 is greater than maxdim size of 50"), reported recovered intact,
/// exit 0 instead of 1.
#[test]
fn dataspace_max_below_size_is_not_written_natively() {
    const MAKE: &str = r#"
import sys, struct, h5py, numpy as np
out = sys.argv[1]
with h5py.File(out, "w", libver="earliest") as f:
    f.create_dataset("d", data=np.arange(100, dtype="<i4"), maxshape=(200,), chunks=(10,))
b = bytearray(open(out, "rb").read())
# Dataspace message v1: version 1, rank 1, flags 1 (max present), 5
# reserved bytes, size 100, max 200. The max becomes 50.
pat = bytes([1, 1, 1, 0, 0, 0, 0, 0]) + struct.pack("<QQ", 100, 200)
i = b.find(pat)
assert i > 0 and b.find(pat, i + 1) < 0
b[i + 16:i + 24] = struct.pack("<Q", 50)
open(out, "wb").write(b)
"#;
    const READ: &str = r#"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
if "d" in f:
    d = f["d"]
    print(d.shape, d.maxshape, int(d[0]))
else:
    print("no d")
"#;
    same_as_libhdf5(
        "dataspace_max_below_size_is_not_written_natively",
        MAKE,
        READ,
        &[("max_below", None)],
    );
}

/// Finding: a damaged chunk dimension (100 -> 0x40000064, one flipped
/// high byte in the layout message of a version-1 header) on an
/// unlimited dimension: each chunk dimension fits in 32 bits, but one
/// chunk is 4 GiB and more, which libhdf5 refuses ("chunk size must be <
/// 4GB with v1 b-tree index"). The libhdf5 backend loses the dataset
/// (cannot recreate); the native writer's eligibility
/// (src/write/native/eligible.rs `dataset_supported`: each dim <=
/// u32::MAX, never the chunk's size in bytes) takes it and writes a
/// dataset libhdf5 cannot open, reported partial instead of lost.
#[test]
fn chunk_of_four_gib_or_more_is_not_written_natively() {
    const MAKE: &str = r#"
import sys, struct, h5py, numpy as np
out = sys.argv[1]
with h5py.File(out, "w", libver="earliest") as f:
    f.create_dataset("d", data=np.arange(100, dtype="<i4"), maxshape=(None,), chunks=(100,))
b = bytearray(open(out, "rb").read())
# Layout message v3: version 3, class 2 (chunked), rank + 1 = 2, B-tree
# address (8 bytes), chunk dims (100, element size 4).
i = b.find(bytes([3, 2, 2]))
while i >= 0 and b[i + 11:i + 19] != struct.pack("<II", 100, 4):
    i = b.find(bytes([3, 2, 2]), i + 1)
assert i > 0
b[i + 11:i + 15] = struct.pack("<I", 0x40000064)
open(out, "wb").write(b)
"#;
    const READ: &str = r#"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
if "d" in f:
    d = f["d"]
    print(d.shape, d.chunks, d.attrs.get("h5salvage_status"))
else:
    print("no d")
"#;
    same_as_libhdf5(
        "chunk_of_four_gib_or_more_is_not_written_natively",
        MAKE,
        READ,
        &[("big_chunk", None)],
    );
}

/// Finding: a damaged compound member offset (one byte of the member's
/// offset in a version-1 datatype message; no checksum): the member now
/// extends past the compound's size (offset 8 -> 12 in a 16-byte type) or
/// overlaps the previous member (8 -> 2). The libhdf5 backend refuses both
/// types (its own check "a member extends past the compound's size";
/// H5Tinsert for the overlap): the dataset is LOST. The native writer's
/// eligibility (src/write/native/eligible.rs `type_supported`: a compound
/// is supported when its members' types are, their offsets are never
/// checked) takes it and writes a datatype libhdf5 refuses to decode
/// ("member type extends outside its parent compound type", "member
/// overlaps with previous member"): an unopenable dataset reported as
/// recovered intact, exit 0 instead of 1. The same `type_supported` is
/// used for attributes.
#[test]
fn compound_with_misplaced_member_is_not_written_natively() {
    const MAKE: &str = r#"
import sys, struct, h5py, numpy as np
out, newoff = sys.argv[1], int(sys.argv[2])
dt = np.dtype([("amember", "<i4"), ("bmember", "<f8")], align=True)
with h5py.File(out, "w", libver="earliest") as f:
    a = np.zeros(10, dtype=dt)
    a["amember"] = np.arange(10)
    a["bmember"] = np.arange(10) / 2
    f.create_dataset("c", data=a)
b = bytearray(open(out, "rb").read())
# Compound member v1: name padded to 8 bytes, then its offset (u32).
pat = b"bmember\x00" + struct.pack("<I", 8)
i = b.find(pat)
assert i > 0 and b.find(pat, i + 1) < 0
b[i + 8:i + 12] = struct.pack("<I", newoff)
open(out, "wb").write(b)
"#;
    const READ: &str = r#"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
if "c" in f:
    d = f["c"]
    print(d.dtype, d[:2])
else:
    print("no c")
"#;
    same_as_libhdf5(
        "compound_with_misplaced_member_is_not_written_natively",
        MAKE,
        READ,
        &[("member_at_12", Some("12")), ("member_at_2", Some("2"))],
    );
}

/// Finding: a damaged filter id (deflate 1 -> 257, one byte of a version-1
/// filter pipeline message) on a filter marked mandatory (flags 0). No
/// libhdf5 knows filter 257: the libhdf5 backend records it as optional
/// (src/write/mod.rs, the H5Zfilter_avail branch of create_dataset) and
/// says so: `h5salvage_degraded`, `h5salvage_status = partial`, exit 1.
/// The native writer copies the pipeline with its mandatory flag and says
/// nothing (no note in src/write/native/, no refusal in
/// src/write/native/eligible.rs `dataset_supported`): the same input is
/// "recovered" with exit 0, without the marks.
#[test]
fn mandatory_unknown_filter_is_marked_as_by_libhdf5() {
    const MAKE: &str = r#"
import sys, h5py, numpy as np
out = sys.argv[1]
with h5py.File(out, "w", libver="earliest") as f:
    f.create_dataset("z", data=np.arange(1000, dtype="<i4"), chunks=(100,),
                     compression="gzip", compression_opts=5)
b = bytearray(open(out, "rb").read())
# Filter pipeline v1: version 1, 1 filter, 6 reserved bytes, then id 1
# (u16), name length, flags (u16), ... The id becomes 257, flags 0.
i = b.find(bytes([1, 1, 0, 0, 0, 0, 0, 0, 1, 0]))
assert i > 0 and b.find(bytes([1, 1, 0, 0, 0, 0, 0, 0, 1, 0]), i + 1) < 0
b[i + 9] = 1
b[i + 12] = 0
open(out, "wb").write(b)
"#;
    const READ: &str = r#"
import sys, h5py
d = h5py.File(sys.argv[1], "r")["z"]
print(sorted(k for k in d.attrs if k.startswith("h5salvage_")))
print(d.id.get_create_plist().get_filter(0)[1])
"#;
    same_as_libhdf5(
        "mandatory_unknown_filter_is_marked_as_by_libhdf5",
        MAKE,
        READ,
        &[("filter_257", None)],
    );
}

/// Finding: a damaged string datatype (the class bit field of a version-1
/// datatype message: character set 5 or padding type 5, both reserved).
/// The libhdf5 backend refuses them ("string datatype: reserved character
/// set 5" / "reserved padding type 5"): the dataset is LOST, exit 1. The
/// native writer's eligibility (src/write/native/eligible.rs
/// `type_supported`: `_ => Ok(())` takes every string) writes them:
/// h5py cannot read the native output's dataset ("Unknown string encoding
/// (value 5)", "no appropriate function for conversion path"), and it is
/// reported as recovered intact, exit 0.
#[test]
fn string_with_reserved_charset_or_padding_is_not_written_natively() {
    const MAKE: &str = r#"
import sys, struct, h5py, numpy as np
out, bits = sys.argv[1], int(sys.argv[2], 0)
with h5py.File(out, "w", libver="earliest") as f:
    f.create_dataset("s", data=np.array([b"abcdefghijk", b"xyz"], dtype="S11"))
b = bytearray(open(out, "rb").read())
# Datatype message v1, class 3 (string): 0x13, class bits (padding in
# bits 0-3, character set in bits 4-7), 0, 0, size 11.
pat = bytes([0x13, 0x01, 0, 0]) + struct.pack("<I", 11)
i = b.find(pat)
assert i > 0 and b.find(pat, i + 1) < 0
b[i + 1] = bits
open(out, "wb").write(b)
"#;
    const READ: &str = r#"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
print(f["s"][:].tolist() if "s" in f else "no s")
"#;
    same_as_libhdf5(
        "string_with_reserved_charset_or_padding_is_not_written_natively",
        MAKE,
        READ,
        &[("charset5", Some("0x51")), ("padding5", Some("0x05"))],
    );
}

/// Finding: damaged atomic datatypes in version-1 datatype messages that
/// libhdf5 refuses: an integer whose precision (32 -> 288) or bit offset
/// (0 -> 16) no longer fits in its 4 bytes, a float with the reserved
/// normalization 3. The libhdf5 backend's type builder refuses them
/// ("declared size 4 disagrees with its parts", "reserved float
/// normalization"): the dataset is LOST, exit 1. The native writer's
/// eligibility (src/write/native/eligible.rs `type_supported`, `_ =>
/// Ok(())` for every atomic class) writes them as they are: libhdf5
/// cannot open the native output's dataset ("integer offset+precision out
/// of bounds", "unknown floating-point normalization"), reported as
/// recovered intact, exit 0. (Same gap as the string and compound
/// findings: the eligibility does not ask what libhdf5 accepts.)
#[test]
fn atomic_types_libhdf5_refuses_are_not_written_natively() {
    const MAKE: &str = r#"
import sys, struct, h5py, numpy as np
out, kind = sys.argv[1], sys.argv[2]
with h5py.File(out, "w", libver="earliest") as f:
    f.create_dataset("i", data=np.arange(5, dtype="<i4"))
    f.create_dataset("f", data=np.arange(5, dtype="<f8") / 3)
b = bytearray(open(out, "rb").read())
# v1 fixed-point: 0x10, bits 0x08 (signed), 0, 0, size 4, bit offset
# (u16), precision (u16). v1 float: 0x11, bits (normalization in bits
# 4-5: 2 = implied), sign location 63, 0, size 8.
intpat = bytes([0x10, 0x08, 0, 0]) + struct.pack("<IHH", 4, 0, 32)
fpat = bytes([0x11, 0x20, 0x3f, 0x00]) + struct.pack("<I", 8)
pat = fpat if kind == "floatnorm" else intpat
i = b.find(pat)
assert i > 0 and b.find(pat, i + 1) < 0
if kind == "intprec":
    b[i + 10:i + 12] = struct.pack("<H", 0x120)
elif kind == "intoff":
    b[i + 8:i + 10] = struct.pack("<H", 0x10)
else:
    b[i + 1] = 0x30
open(out, "wb").write(b)
"#;
    const READ: &str = r#"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
print([(k, f[k][:].tolist()) for k in f])
"#;
    same_as_libhdf5(
        "atomic_types_libhdf5_refuses_are_not_written_natively",
        MAKE,
        READ,
        &[
            ("intprec", Some("intprec")),
            ("intoff", Some("intoff")),
            ("floatnorm", Some("floatnorm")),
        ],
    );
}

/// Finding: the same eligibility gap on an attribute: a fixed-string
/// attribute whose character set is damaged to the reserved value 5. The
/// libhdf5 backend does not write it ("attribute "units" not written ...
/// reserved character set 5"), marks the dataset partial and counts one
/// attribute lost (exit 1). The native writer (src/write/native/eligible.rs
/// `object_supported` -> `type_supported` for attributes) writes it: h5py
/// lists it but cannot read it ("Unknown string encoding (value 5)"), so
/// reading the dataset's attributes fails, and the dataset is reported
/// recovered intact, no attribute lost, exit 0.
#[test]
fn attribute_with_reserved_charset_is_not_written_natively() {
    const MAKE: &str = r#"
import sys, struct, h5py, numpy as np
out = sys.argv[1]
with h5py.File(out, "w", libver="earliest") as f:
    d = f.create_dataset("d", data=np.arange(5))
    d.attrs["units"] = np.bytes_(b"metres per s")
    d.attrs["scale"] = np.int32(3)
b = bytearray(open(out, "rb").read())
# The attribute's datatype message v1, class 3 (string) of 12 bytes:
# character set (bits 4-7 of the class bits) set to 5.
for bits in (0x00, 0x01):
    pat = bytes([0x13, bits, 0, 0]) + struct.pack("<I", 12)
    i = b.find(pat)
    if i > 0:
        break
assert i > 0 and b.find(pat, i + 1) < 0
b[i + 1] = (b[i + 1] & 0x0F) | 0x50
open(out, "wb").write(b)
"#;
    const READ: &str = r#"
import sys, h5py
d = h5py.File(sys.argv[1], "r")["d"]
print(sorted((k, str(v)) for k, v in d.attrs.items()))
"#;
    same_as_libhdf5(
        "attribute_with_reserved_charset_is_not_written_natively",
        MAKE,
        READ,
        &[("attr_charset5", None)],
    );
}

/// Finding: header times copied from a header that fails its checksum.
/// A group's version-2 object header stores its times (flags bit 5); one
/// byte of the modification time is damaged, so the header fails its
/// Jenkins checksum (the scan says so; the group is written, partial).
/// The native writer copies the stored times into the output anyway
/// (src/salvage.rs `salvage_object`: `w.object_times(dest, o.times)` with
/// no regard to `o.header_checksum_failed()`; src/write/native/mod.rs
/// `times`), so the output carries the damaged modification time (1992
/// instead of the input's) as the group's own: bytes the format could
/// verify, and that failed verification, written as good (principle 1).
/// The libhdf5 backend writes no source times (the output's own).
#[test]
fn times_from_a_header_failing_its_checksum_are_not_copied() {
    if !have_h5py("times_from_a_header_failing_its_checksum_are_not_copied") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("group_times.h5");
    let make = r#"
import sys, struct, h5py, numpy as np
out = sys.argv[1]
with h5py.File(out, "w", libver="latest") as f:
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(True)
    h5py.h5g.create(f.id, b"g", gcpl=gcpl)
    f["g"].attrs["a"] = 1
    f["g"].create_dataset("x", data=np.arange(3))
b = bytearray(open(out, "rb").read())
# The first OHDR storing times: signature, version, flags, then access,
# modification, change and birth times (u32 each).
i = b.find(b"OHDR")
while i >= 0 and not (b[i + 5] & 0x20):
    i = b.find(b"OHDR", i + 1)
assert i > 0
mtime = struct.unpack_from("<I", b, i + 10)[0]
b[i + 13] ^= 0x40
print(mtime, struct.unpack_from("<I", b, i + 10)[0])
open(out, "wb").write(b)
"#;
    let (ok, text) = py(make, &[input.as_os_str()]);
    assert!(ok, "{text}");
    let mut it = text.split_whitespace();
    let (_good, damaged) = (it.next().unwrap(), it.next().unwrap());
    let (nat, n, lib, l) = both(&input, dir.path());
    assert_eq!(n.code, l.code, "{}\n{}", n.stderr, l.stderr);
    let mtime = r#"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
print(h5py.h5o.get_info(h5py.h5o.open(f.id, b"g")).mtime, f["g"].attrs["h5salvage_status"])
"#;
    let (ok, got_lib) = py(mtime, &[lib.as_os_str()]);
    assert!(ok, "{got_lib}");
    let (ok, got_nat) = py(mtime, &[nat.as_os_str()]);
    assert!(ok, "{got_nat}");
    assert!(
        !got_nat.starts_with(&format!("{damaged} ")),
        "the native output's /g carries the damaged modification time {damaged} \
         (libhdf5 output: {got_lib})"
    );
}

/// Finding: an array datatype whose declared size is damaged (12 -> 16
/// for `array[3](<i4)`, version-1 datatype message) on a chunked dataset
/// (the layout's element size still says 12; our scan calls the file
/// healthy). The libhdf5 backend refuses the type ("declared size 16
/// disagrees with its parts"): LOST. The native writer's eligibility
/// (src/write/native/eligible.rs `type_supported`: an array is supported
/// when its base is; the declared size is never checked against base x
/// count) creates the dataset: libhdf5 cannot open it ("stored datatype
/// size in chunk layout does not match datatype description"); it is
/// reported partial (its chunks "decoded chunk is 60 bytes, expected 80")
/// instead of lost.
#[test]
fn array_type_with_a_wrong_size_is_not_written_natively() {
    const MAKE: &str = r#"
import sys, struct, h5py, numpy as np
out = sys.argv[1]
with h5py.File(out, "w", libver="earliest") as f:
    d = f.create_dataset("arr", shape=(10,), dtype=np.dtype(("<i4", (3,))), chunks=(5,))
    d[...] = np.arange(30, dtype="<i4").reshape(10, 3)
b = bytearray(open(out, "rb").read())
# Datatype message, class 10 (array), version 1 or 2: class byte, 3 bit
# field bytes, size 12 (u32) -> 16.
for cls in (0x1A, 0x2A):
    pat = bytes([cls, 0, 0, 0]) + struct.pack("<I", 12)
    i = b.find(pat)
    if i > 0:
        break
assert i > 0 and b.find(pat, i + 1) < 0
b[i + 4:i + 8] = struct.pack("<I", 16)
open(out, "wb").write(b)
"#;
    const READ: &str = r#"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
print(f["arr"][:].tolist() if "arr" in f else "no arr")
"#;
    same_as_libhdf5(
        "array_type_with_a_wrong_size_is_not_written_natively",
        MAKE,
        READ,
        &[("array_size", None)],
    );
}

/// Finding (minor; compare_h5.py does not compare allocation or fill
/// times, so the branch's own tests cannot see it): a damaged space
/// allocation time 0 (not a defined value, spec IV.A.2.f) in the
/// version-2 fill value message of a chunked dataset. The libhdf5 backend
/// leaves the allocation time unset (src/write/mod.rs: `_ => None`), so
/// libhdf5 gives a chunked dataset its default, incremental (3); the
/// native writer writes late (2) for every layout
/// (src/write/native/encode.rs `fill_value`: `_ => 2`). The two outputs
/// of the same input differ in their dataset creation properties.
#[test]
fn undefined_allocation_time_is_written_as_libhdf5_defaults_it() {
    const MAKE: &str = r#"
import sys, struct, h5py, numpy as np
out = sys.argv[1]
with h5py.File(out, "w", libver="earliest") as f:
    f.create_dataset("c", data=np.arange(100, dtype="<i4"), chunks=(10,), fillvalue=9)
b = bytearray(open(out, "rb").read())
# Fill value message v2: version 2, allocation time 3 (incremental), fill
# time 2 (if set), defined 1, size 4, value 9. The allocation time -> 0.
pat = bytes([2, 3, 2, 1]) + struct.pack("<I", 4) + struct.pack("<i", 9)
i = b.find(pat)
assert i > 0 and b.find(pat, i + 1) < 0
b[i + 1] = 0
open(out, "wb").write(b)
"#;
    const READ: &str = r#"
import sys, h5py
d = h5py.File(sys.argv[1], "r")["c"]
p = d.id.get_create_plist()
print("alloc time", p.get_alloc_time(), "fill time", p.get_fill_time(), d.fillvalue)
"#;
    same_as_libhdf5(
        "undefined_allocation_time_is_written_as_libhdf5_defaults_it",
        MAKE,
        READ,
        &[("alloc_time_0", None)],
    );
}

//! Review of the native writer (src/write/native/, session 7): each test
//! shows one defect found by the review and fails until it is fixed. Every
//! input is a small healthy file made here with h5py; the output is written
//! by the default backend (native where `native::supports` takes the
//! input) and checked with h5py / compare_h5.py.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bin, have_h5py, py_script, python_code, run_python};

/// Runs `h5salvage salvage INPUT -o OUT` with the writer log on; returns
/// (exit code, stderr).
fn salvage(input: &Path, out: &Path, env: &[(&str, &str)]) -> (i32, String) {
    let _ = std::fs::remove_file(out);
    let mut c = Command::new(bin());
    c.arg("salvage")
        .arg(input)
        .arg("-o")
        .arg(out)
        .env("H5SALVAGE_WRITER_LOG", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("h5salvage");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Salvages `input` into DIR/out.h5, which must take the native path and
/// succeed; returns the output.
fn native_output(input: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("out.h5");
    let (code, log) = salvage(input, &out, &[]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("writer: native:"), "{log}");
    out
}

/// compare_h5.py ORIG OUT: (ok, output).
fn compare_h5(orig: &Path, out: &Path) -> (bool, String) {
    let script = py_script("compare_h5.py");
    run_python(&[script.as_os_str(), orig.as_os_str(), out.as_os_str()])
}

/// Writes `code` (h5py, `sys.argv[1]` = the path) to make an input.
fn make(dir: &Path, name: &str, code: &str) -> PathBuf {
    let p = dir.join(name);
    python_code(code, &[p.as_os_str()]);
    p
}

/// Bytes in use (objects, without the free-space object) of the first
/// global heap collection of `path`, and its collection size.
fn first_heap_collection(path: &Path) -> (u64, u64) {
    let code = r#"
import sys, struct
d = open(sys.argv[1], "rb").read()
i = d.find(b"GCOL")
size = struct.unpack("<Q", d[i + 8:i + 16])[0]
p, used = i + 16, 16
while p + 16 <= i + size:
    idx, _, _, n = struct.unpack("<HHIQ", d[p:p + 16])
    if idx == 0:
        break
    step = 16 + (n + 7) // 8 * 8
    used += step
    p += step
print(used, size)
"#;
    let got = python_code(code, &[path.as_os_str()]);
    let v: Vec<u64> = got.split_whitespace().map(|x| x.parse().unwrap()).collect();
    (v[0], v[1])
}

/// Review finding, since fixed; the test keeps it fixed. Was:
/// encode.rs `heap_collection`: when the objects fill 4081..4095 bytes no
/// free-space object fits, and the collection is written smaller than the
/// 4096 bytes the spec (III.E) requires; HDF5 2.0 (h5py) then fails every
/// read and write of the data ("global heap size is too small").
#[test]
fn heap_collections_are_at_least_4_kib() {
    if !have_h5py("heap_collections_are_at_least_4_kib") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gen = r#"
import sys, h5py, numpy as np
n = int(sys.argv[2])
with h5py.File(sys.argv[1], "w") as f:
    f.create_dataset("s", data=np.array(["x" * n], dtype=h5py.string_dtype()))
"#;
    let input = dir.path().join("heap.h5");
    let out = dir.path().join("out.h5");
    // The root's h5salvage_* marks share the collection: measure, then size
    // the string so that the objects take exactly 4088 bytes.
    let mut n = 3000u64;
    for _ in 0..3 {
        python_code(gen, &[input.as_os_str(), n.to_string().as_ref()]);
        let (code, log) = salvage(&input, &out, &[]);
        assert_eq!(code, 0, "{log}");
        assert!(log.contains("writer: native:"), "{log}");
        let (used, _) = first_heap_collection(&out);
        if used == 4088 {
            break;
        }
        n = (n as i64 + 4088 - used as i64) as u64;
    }
    let (used, size) = first_heap_collection(&out);
    assert_eq!(used, 4088, "the input did not fill the collection as meant");
    let (ok, text) = compare_h5(&input, &out);
    assert!(
        ok && size >= 4096,
        "collection of {size} bytes (spec minimum 4096); h5py: {text}"
    );
}

/// Review finding, since fixed; the test keeps it fixed. Was:
/// eligible.rs checks only the size of an attribute's value (48 KiB), not
/// its whole message: an attribute with a long name (or a large datatype)
/// passes `supports`, NativeWriter::attribute then refuses it ("attribute
/// above 64 KiB") and the attribute of a healthy input is lost (root marked
/// partial, exit 1), where the libhdf5 backend writes it exactly.
#[test]
fn attribute_message_above_64_kib_goes_to_libhdf5() {
    if !have_h5py("attribute_message_above_64_kib_goes_to_libhdf5") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = make(
        dir.path(),
        "longattr.h5",
        r#"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w", libver="latest") as f:
    f.attrs["n" * 30000] = np.arange(5000, dtype="i8")
    f.create_dataset("d", data=np.arange(4))
"#,
    );
    // The libhdf5 backend: exact.
    let lib = dir.path().join("lib.h5");
    let (code, log) = salvage(&input, &lib, &[("H5SALVAGE_WRITER", "libhdf5")]);
    assert_eq!(code, 0, "{log}");
    assert!(compare_h5(&input, &lib).0);
    // The default backend must be as exact.
    let out = dir.path().join("out.h5");
    let (code, log) = salvage(&input, &out, &[]);
    let short: String = log.chars().take(600).collect();
    assert_eq!(code, 0, "healthy input salvaged with a loss: {short}");
    let (ok, text) = compare_h5(&input, &out);
    assert!(ok, "{}", text.chars().take(600).collect::<String>());
}

/// Review finding, since fixed; the test keeps it fixed. Was:
/// Low: the native writer's object headers carry no modification time
/// message and no "times stored" flag (encode.rs object_header), so h5py
/// shows track_times False on every dataset, also where the input has True
/// (libhdf5's default, most h5py files). (The libhdf5 backend does not copy
/// the flag either: it writes True everywhere.)
#[test]
fn dataset_track_times_is_kept() {
    if !have_h5py("dataset_track_times_is_kept") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = make(
        dir.path(),
        "times.h5",
        r#"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f.create_dataset("d", data=np.arange(4), track_times=True)
"#,
    );
    let out = native_output(&input, dir.path());
    let code = r#"
import sys, h5py
for p in sys.argv[1:]:
    with h5py.File(p, "r") as f:
        print(f["d"].id.get_create_plist().get_obj_track_times())
"#;
    let got = python_code(code, &[input.as_os_str(), out.as_os_str()]);
    let v: Vec<&str> = got.split_whitespace().collect();
    assert_eq!(v[0], "1", "the input tracks times");
    assert_eq!(v[0], v[1], "track_times: input {} output {}", v[0], v[1]);
}

/// Review finding, since fixed; the test keeps it fixed. Was:
/// Low: encode.rs `attribute` writes the name's character set from the
/// bytes (UTF-8 when not ASCII), not the input's: h5py shows cset 1 for an
/// attribute the input (and the libhdf5 backend) has with cset 0 (ASCII).
#[test]
fn attribute_name_character_set_is_kept() {
    if !have_h5py("attribute_name_character_set_is_kept") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = make(
        dir.path(),
        "cset.h5",
        r#"
import sys, h5py
with h5py.File(sys.argv[1], "w") as f:
    f.attrs["\u00e9t\u00e9"] = 1
"#,
    );
    let out = native_output(&input, dir.path());
    let code = r#"
import sys, h5py
for p in sys.argv[1:]:
    with h5py.File(p, "r") as f:
        print(h5py.h5a.get_info(f.id, "\u00e9t\u00e9".encode()).cset)
"#;
    let got = python_code(code, &[input.as_os_str(), out.as_os_str()]);
    let v: Vec<&str> = got.split_whitespace().collect();
    assert_eq!(
        v[0], v[1],
        "attribute name cset: input {} output {}",
        v[0], v[1]
    );
}

/// Fixed on `native` at 6465ee2 (names and targets above 32 KiB are
/// ineligible); kept as a regression test. Was: eligible.rs did not bound
/// link messages: a soft link value (or link name) above 64 KiB, legal in
/// an old-style group (local heap), passed `supports`, and
/// NativeWriter::finish then failed the WHOLE output
/// ("message of type 0x6 is 70008 bytes"): nothing is written, not even the
/// other objects (in a merge, every input's groups). The input must go to
/// libhdf5 (or the one link be reported), with the rest of the file written.
#[test]
fn soft_link_above_64_kib_goes_to_libhdf5() {
    if !have_h5py("soft_link_above_64_kib_goes_to_libhdf5") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = make(
        dir.path(),
        "longsoft.h5",
        r#"
import sys, h5py
with h5py.File(sys.argv[1], "w") as f:
    f.create_group("g")
    f["g/s"] = h5py.SoftLink("/" + "a" * 70000)
    f["g/t"] = h5py.SoftLink("/g")
    f.create_dataset("d", data=[1, 2, 3])
"#,
    );
    let out = dir.path().join("out.h5");
    let (code, log) = salvage(&input, &out, &[]);
    let short: String = log.chars().take(600).collect();
    assert!(out.exists(), "no output at all (exit {code}): {short}");
    let got = python_code(
        "import sys, h5py\nf = h5py.File(sys.argv[1], 'r')\nprint([int(v) for v in f['d'][:]], f['g'].get('t', getlink=True).path)",
        &[out.as_os_str()],
    );
    assert!(got.contains("[1, 2, 3] /g"), "{got}");
}

/// Review finding, since fixed; the test keeps it fixed. Was:
/// High: native object headers of objects that do not track attribute
/// creation order carry no attribute info message (native/mod.rs
/// header_messages writes it only when tracked). libhdf5 counts the
/// attributes of a version-2 object header from that message, so
/// H5Oget_info's num_attrs and h5py's len(obj.attrs) are 0 on the root
/// (its h5salvage_* marks) and on every untracked group and dataset of a
/// native output, while iteration lists them; libhdf5 writes the message
/// on every version-2 header.
#[test]
fn attribute_count_is_seen_by_libhdf5() {
    if !have_h5py("attribute_count_is_seen_by_libhdf5") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = make(
        dir.path(),
        "count.h5",
        r#"
import sys, h5py
with h5py.File(sys.argv[1], "w") as f:
    g = f.create_group("g")
    d = g.create_dataset("d", data=[1, 2])
    for i in range(3):
        g.attrs["a%d" % i] = i
        d.attrs["b%d" % i] = i
    for i in range(12):
        d.attrs["c%d" % i] = i
"#,
    );
    let out = native_output(&input, dir.path());
    let code = r#"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    for o in (f, f["g"], f["g/d"]):
        n = len(list(o.attrs))
        print(o.name, n, len(o.attrs), h5py.h5o.get_info(o.id).num_attrs)
"#;
    let got = python_code(code, &[out.as_os_str()]);
    for line in got.lines() {
        let v: Vec<&str> = line.split_whitespace().collect();
        assert!(
            v[1] == v[2] && v[1] == v[3],
            "{}: {} attributes listed, len(attrs) {}, num_attrs {}\n{got}",
            v[0],
            v[1],
            v[2],
            v[3]
        );
    }
}

/// Review finding, since fixed; the test keeps it fixed. Was:
/// Medium (principle 4, bounded): the native writer holds every contiguous
/// variable-length dataset's slots (16 bytes an element) and their heap
/// patches (24 bytes) in memory until `finish` (Data::Held), so a merge's
/// peak memory grows with the variable-length elements of ALL its inputs
/// (about 40 MB per million strings; measured 251 MB for 1 input, 446 MB
/// for 6), where the libhdf5 backend stays flat (284 MB for 1 and for 6).
#[test]
fn merge_memory_does_not_grow_with_variable_length_inputs() {
    if !have_h5py("merge_memory_does_not_grow_with_variable_length_inputs")
        || !common::have_tool("/usr/bin/time", "peak memory of a merge")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    python_code(
        r#"
import sys, os, h5py, numpy as np
s = np.array(["v%d" % i for i in range(600_000)], dtype=object)
for k in range(6):
    with h5py.File(os.path.join(sys.argv[1], "w%d.h5" % k), "w") as f:
        f.create_group("g%d" % k).create_dataset("s", data=s, dtype=h5py.string_dtype())
"#,
        &[dir.path().as_os_str()],
    );
    let peak = |n: usize| -> u64 {
        let out = dir.path().join(format!("m{n}.h5"));
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "maxrss=%M", bin(), "merge", "-o"]).arg(&out);
        for k in 0..n {
            c.arg(dir.path().join(format!("w{k}.h5")));
        }
        let o = c.env("H5SALVAGE_WRITER_LOG", "1").output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        assert_eq!(err.matches("writer: native:").count(), n, "{err}");
        err.rsplit("maxrss=")
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (one, six) = (peak(1), peak(6));
    assert!(
        six <= one + 32 * 1024,
        "peak memory {one} kB merging 1 input, {six} kB merging 6 alike"
    );
}

/// Review finding, since fixed; the test keeps it fixed. Was:
/// encode.rs `datatype` (opaque) always adds a NUL before padding the tag
/// to 8, so a tag of 248 bytes (what libhdf5 writes for the longest tags:
/// 248, padded, not NUL-terminated) needs 256 > 255 and is refused after
/// `supports` took the input: the dataset is LOST from a healthy input.
#[test]
fn opaque_tag_of_248_bytes_is_kept() {
    if !have_h5py("opaque_tag_of_248_bytes_is_kept") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = make(
        dir.path(),
        "opaque.h5",
        r#"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as h:
    tid = h5py.h5t.create(h5py.h5t.OPAQUE, 4)
    tid.set_tag(b"t" * 248)
    ds = h5py.h5d.create(h.id, b"o", tid, h5py.h5s.create_simple((2,)))
    ds.write(h5py.h5s.ALL, h5py.h5s.ALL, np.frombuffer(b"abcdefgh", "V4").copy(), mtype=tid)
with h5py.File(sys.argv[1], "r") as h:
    assert len(h["o"].id.get_type().get_tag()) == 248
"#,
    );
    let out = dir.path().join("out.h5");
    let (code, log) = salvage(&input, &out, &[]);
    assert_eq!(code, 0, "{log}");
    let (ok, text) = compare_h5(&input, &out);
    assert!(ok, "{log}\n{text}");
}

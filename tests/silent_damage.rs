//! Damage that scan and salvage used to pass over in silence (review of
//! session 8): attribute names damaged into duplicates or cut by a NUL,
//! attributes of a group whose v2 header fails its checksum, and datatype /
//! dataspace / layout fields libhdf5 refuses. Every input is a small h5py
//! file made here with a few bytes patched; scan must call it damaged and
//! salvage must account for what it did not write (exit 1).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bin, have_h5py, python_code, python_timed};
use serde_json::Value;

/// Makes DIR/NAME with h5py `code` (`p` = the path), then replaces the one
/// occurrence of the hex bytes `old` by `new` (same length).
fn make_patched(dir: &Path, name: &str, code: &str, old: &str, new: &str) -> PathBuf {
    let p = dir.join(name);
    let script = format!(
        r#"
import sys, h5py, numpy as np
p = sys.argv[1]
{code}
old, new = bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
assert len(old) == len(new)
b = open(p, 'rb').read()
assert b.count(old) == 1, ('pattern found', b.count(old), old.hex())
open(p, 'wb').write(b.replace(old, new))
"#
    );
    python_code(&script, &[p.as_os_str(), old.as_ref(), new.as_ref()]);
    p
}

/// `h5salvage scan --json PATH`: (exit code, report).
fn scan(path: &Path) -> (i32, Value) {
    let o = Command::new(bin())
        .args(["scan", "--json"])
        .arg(path)
        .output()
        .expect("h5salvage");
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "scan json: {e}: {}",
            String::from_utf8_lossy(&o.stderr).into_owned()
        )
    });
    (o.status.code().unwrap_or(-1), v)
}

/// Every problem of a scan report (file, objects and attributes), as text.
fn problems(v: &Value) -> String {
    let mut out = Vec::new();
    let mut push = |ps: &Value| {
        for p in ps.as_array().into_iter().flatten() {
            out.push(p.to_string());
        }
    };
    push(&v["problems"]);
    for o in v["objects"].as_array().into_iter().flatten() {
        push(&o["problems"]);
        for a in o["attributes"].as_array().into_iter().flatten() {
            push(&a["problems"]);
        }
    }
    out.join("\n")
}

/// `h5salvage salvage --json INPUT -o OUT`: (exit code, account).
fn salvage(input: &Path, out: &Path) -> (i32, Value) {
    let o = Command::new(bin())
        .args(["salvage", "--json", "--force"])
        .arg(input)
        .arg("-o")
        .arg(out)
        .output()
        .expect("h5salvage");
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.code().unwrap_or(-1), v)
}

/// The attributes of `obj` in `path` (h5py, 60 s limit) as JSON
/// {name: value as a list or scalar}.
fn attrs(path: &Path, obj: &str) -> Value {
    let code = r#"
import sys, json, h5py, numpy as np
with h5py.File(sys.argv[1], 'r') as f:
    a = f[sys.argv[2]].attrs
    out = {}
    for k in a:
        v = a[k]
        out[k] = v.tolist() if hasattr(v, 'tolist') else str(v)
    print(json.dumps(out, default=str))
"#;
    let o = python_timed(60)
        .args(["-c", code])
        .arg(path)
        .arg(obj)
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stderr).into_owned()
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A name damaged into another's: scan says damaged, salvage keeps the first
/// and counts the second lost.
#[test]
fn duplicate_attribute_name_is_damage() {
    if !have_h5py("duplicate_attribute_name_is_damage") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let code = "with h5py.File(p, 'w', libver='earliest') as f:\n    g = f.create_group('g')\n    g.attrs['zqa1'] = np.int32(11)\n    g.attrs['zqa2'] = np.int32(22)";
    // "zqa2\0" -> "zqa1\0"
    let input = make_patched(dir.path(), "dup.h5", code, "7a71613200", "7a71613100");
    let (code, v) = scan(&input);
    assert_eq!(code, 1, "scan exit: {}", problems(&v));
    assert!(problems(&v).contains("duplicate attribute name"), "{v}");
    let out = dir.path().join("out.h5");
    let (code, r) = salvage(&input, &out);
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["attributes_lost"], 1, "{r}");
    let a = attrs(&out, "g");
    assert_eq!(a["zqa1"], 11, "{a}");
    assert_eq!(a["h5salvage_status"], "partial", "{a}");
}

/// A NUL inside the stored name: damage, the value is written under the
/// escaped whole name next to the attribute its cut name equals.
#[test]
fn attribute_name_with_nul_inside_is_damage() {
    if !have_h5py("attribute_name_with_nul_inside_is_damage") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let code = "with h5py.File(p, 'w', libver='earliest') as f:\n    g = f.create_group('g')\n    g.attrs['abc'] = np.int32(1)\n    g.attrs['abcXefg'] = np.int32(2)";
    // "abcXefg" -> "abc\0efg"
    let input = make_patched(
        dir.path(),
        "nul.h5",
        code,
        "61626358656667",
        "61626300656667",
    );
    let (code, v) = scan(&input);
    assert_eq!(code, 1, "scan exit: {}", problems(&v));
    assert!(problems(&v).contains("NUL inside"), "{v}");
    let out = dir.path().join("out.h5");
    let (code, r) = salvage(&input, &out);
    assert_eq!(code, 1, "{r}");
    let a = attrs(&out, "g");
    assert_eq!(a["abc"], 1, "{a}");
    assert_eq!(a["abc%00efg"], 2, "{a}");
    assert_eq!(a["h5salvage_status"], "partial", "{a}");
}

/// A group attribute in a v2 header that fails its checksum: not written,
/// counted lost (as a dataset's description from such a header is).
#[test]
fn group_attributes_from_a_failed_header_are_not_written() {
    if !have_h5py("group_attributes_from_a_failed_header_are_not_written") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let code = "with h5py.File(p, 'w', libver='latest') as f:\n    g = f.create_group('g')\n    g.attrs['zzv'] = np.int64(0x1122334455667788)";
    let input = make_patched(
        dir.path(),
        "sum.h5",
        code,
        "8877665544332211",
        "8877665544332299",
    );
    let (code, _) = scan(&input);
    assert_eq!(code, 1);
    let out = dir.path().join("out.h5");
    let (code, r) = salvage(&input, &out);
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["attributes_lost"], 1, "{r}");
    let a = attrs(&out, "g");
    assert!(a.get("zzv").is_none(), "damaged value written: {a}");
    assert_eq!(a["h5salvage_status"], "partial", "{a}");
}

/// One field libhdf5 refuses: scan says damaged with a problem whose text
/// contains `says`, salvage exits 1.
fn refused(name: &str, code: &str, old: &str, new: &str, says: &str) {
    if !have_h5py(name) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = make_patched(dir.path(), &format!("{name}.h5"), code, old, new);
    let (exit, v) = scan(&input);
    assert_eq!(exit, 1, "{name}: scan exit {exit}: {}", problems(&v));
    let text = problems(&v);
    assert!(text.contains(says), "{name}: {text}");
    let (exit, r) = salvage(&input, &dir.path().join("out.h5"));
    assert_eq!(exit, 1, "{name}: salvage exit {exit}: {r}");
}

const EARLY: &str = "with h5py.File(p, 'w', libver='earliest') as f:\n";

const COMPOUND: &str = "    t = np.dtype({'names': ['mema', 'memb'], 'formats': ['<i4', '<i4'], 'offsets': [0, 4], 'itemsize': 8})\n    f.create_dataset('d', data=np.zeros(3, dtype=t))";

/// Dataspace v1, rank 1: size 10, maximum 20 -> 5 (chunk 2 fits).
#[test]
fn maximum_below_size() {
    refused(
        "maximum_below_size",
        &format!("{EARLY}    f.create_dataset('d', data=np.arange(10, dtype='<i8'), maxshape=(20,), chunks=(2,))"),
        "0a000000000000001400000000000000",
        "0a000000000000000500000000000000",
        "below the current size",
    );
}

/// Layout v3 chunk dims (4, 4) + element size 8 -> (65536, 8192): 4 GiB.
#[test]
fn chunk_of_4_gib() {
    refused(
        "chunk_of_4_gib",
        &format!("{EARLY}    f.create_dataset('d', data=np.zeros((10, 10)), maxshape=(None, None), chunks=(4, 4))"),
        "040000000400000008000000",
        "000001000020000008000000",
        "4 GiB or more",
    );
}

/// Compound v1 member "memb" (name padded to 8) at offset 4 -> 6.
#[test]
fn compound_member_past_size() {
    refused(
        "compound_member_past_size",
        &format!("{EARLY}{COMPOUND}"),
        "6d656d62000000000400000000",
        "6d656d62000000000600000000",
        "runs past",
    );
}

/// Compound v1 member "memb" at offset 4 -> 2: overlaps "mema" (0..4).
#[test]
fn compound_members_overlap() {
    refused(
        "compound_members_overlap",
        &format!("{EARLY}{COMPOUND}"),
        "6d656d62000000000400000000",
        "6d656d62000000000200000000",
        "overlap",
    );
}

/// Fixed string of 7 bytes, null padded (1) -> padding 14.
#[test]
fn string_padding_reserved() {
    refused(
        "string_padding_reserved",
        &format!("{EARLY}    f.create_dataset('d', data=np.array([b'abcdefg'], dtype='S7'))"),
        "1301000007000000",
        "130e000007000000",
        "string padding",
    );
}

/// Fixed string of 7 bytes: character set 0 -> 5 (reserved).
#[test]
fn string_charset_reserved() {
    refused(
        "string_charset_reserved",
        &format!("{EARLY}    f.create_dataset('d', data=np.array([b'abcdefg'], dtype='S7'))"),
        "1301000007000000",
        "1351000007000000",
        "string character set",
    );
}

/// 16-bit integer: offset 0, precision 16 -> 17.
#[test]
fn integer_precision_past_size() {
    refused(
        "integer_precision_past_size",
        &format!("{EARLY}    f.create_dataset('d', data=np.arange(3, dtype='<i2'))"),
        "10080000020000000000100000",
        "10080000020000000000110000",
        "precision",
    );
}

/// 32-bit float: normalization implied (2) -> reserved (3).
#[test]
fn float_normalization_reserved() {
    refused(
        "float_normalization_reserved",
        &format!("{EARLY}    f.create_dataset('d', data=np.arange(3, dtype='<f4'))"),
        "11201f0004000000",
        "11301f0004000000",
        "float normalization",
    );
}

/// Attribute of a compound whose member is an array type (3 x <i2,
/// 6 bytes, datatype v2) declared 4 bytes.
#[test]
fn array_size_disagrees() {
    refused(
        "array_size_disagrees",
        &format!("{EARLY}    f.attrs.create('a', data=np.zeros(2, dtype=[('x', '<i2', (3,))]))"),
        "2a00000006000000",
        "2a00000004000000",
        "array type",
    );
}

// Rules the writers applied alone before (`check_type`), now stated once
// (`Datatype::faults`): scan used to call these files healthy while salvage
// lost the dataset.

/// 16-bit integer: precision 16 -> 0 (H5Tset_precision refuses 0; HDF5 2.0
/// does not decode it: "precision is zero").
#[test]
fn integer_precision_zero() {
    refused(
        "integer_precision_zero",
        &format!("{EARLY}    f.create_dataset('d', data=np.arange(3, dtype='<i2'))"),
        "10080000020000000000100000",
        "10080000020000000000000000",
        "integer of precision 0",
    );
}

/// 32-bit float: sign bit 31 -> 23, inside the exponent (23..31)
/// (H5Tset_fields: "sign bit appears within exponent field").
#[test]
fn float_sign_inside_exponent() {
    refused(
        "float_sign_inside_exponent",
        &format!("{EARLY}    f.create_dataset('d', data=np.arange(3, dtype='<f4'))"),
        "11201f0004000000",
        "1120170004000000",
        "the sign bit inside",
    );
}

/// Compound v1 member "memb" renamed "mema": two members of one name
/// (H5Tinsert: "member name is not unique"; HDF5 2.0 does not decode it).
#[test]
fn compound_member_names_twice() {
    refused(
        "compound_member_names_twice",
        &format!("{EARLY}{COMPOUND}"),
        "6d656d62000000000400000000",
        "6d656d61000000000400000000",
        "named \\\"mema\\\" twice",
    );
}

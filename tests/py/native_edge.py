"""Edge cases for the native writer (tests/native_writer.rs).

usage: native_edge.py make OUT.h5 earliest|latest   # writes the fixture
       native_edge.py modify FILE.h5                # h5py changes a salvaged copy, checks it
"""
import sys

import h5py
import numpy as np


def make(path, libver):
    with h5py.File(path, "w", libver=libver, track_order=(libver == "latest")) as f:
        g = f.create_group("edge")
        g.create_dataset("null", data=h5py.Empty("f4"))
        g.create_dataset("scalar", data=np.float64(3.5))
        g.create_dataset("empty_chunked", shape=(0, 4), maxshape=(None, 4), chunks=(8, 4), dtype="i2")
        many = np.arange(200 * 300, dtype="<i4").reshape(200, 300)
        g.create_dataset("many_chunks", data=many, chunks=(2, 3))  # 10000 chunks: 3-level index
        g.create_dataset("many_gzip", data=many, chunks=(4, 5), compression="gzip", shuffle=True, fletcher32=True)
        g.create_dataset("partial", shape=(100,), chunks=(10,), dtype="f8", fillvalue=-1.5)[:25] = np.arange(25)
        g.create_dataset("unlimited", data=np.arange(50), maxshape=(None,), chunks=(16,))
        g.create_dataset("vlen_compact", data=np.array(["a", "", "long" * 30], dtype=h5py.string_dtype()),
                         dcpl=None)
        g.create_dataset("vlen_contig", data=np.array(["x%d" % i * (i % 7) for i in range(500)], dtype=h5py.string_dtype()))
        g.create_dataset("vlen_seq", data=np.array([np.arange(i, dtype="f4") for i in range(6)], dtype=h5py.vlen_dtype("f4")))
        cdt = np.dtype([("id", "<i4"), ("name", h5py.string_dtype()), ("v", ">f8"), ("arr", "<i2", (2, 2))])
        c = np.zeros(4, dtype=cdt)
        for i in range(4):
            c[i] = (i, "n%d" % i, i * 1.5, [[i, i], [i, i]])
        g.create_dataset("compound_vlen", data=c)
        g.create_dataset("enum", data=np.array([0, 1, 2, 1], dtype="u1"), dtype=h5py.enum_dtype({"R": 0, "G": 1, "B": 2}, basetype="u1"))
        g.create_dataset("opaque", data=np.array([b"abcd", b"efgh"], dtype="V4"))
        g.create_dataset("bool", data=np.array([True, False]))
        g.create_dataset("be", data=np.arange(5, dtype=">u8"))
        g.create_dataset("f16", data=np.arange(5, dtype="f2"))
        g.create_dataset("fixed_str", data=np.array([b"abc", b"de"], dtype="S5"))
        g.create_dataset("unicode_\u00e9\u4e2d", data=np.arange(3))
        for i in range(15):
            g.attrs["a%02d" % i] = i
        g.attrs["vlen_arr"] = np.array(["p", "qq", "rrr"], dtype=h5py.string_dtype())
        g.attrs["unicode_\u00e9"] = "valeur \u00e9"
        g.attrs["null"] = h5py.Empty("i4")
        g.attrs["compound"] = c[:2]
        g["soft"] = h5py.SoftLink("/edge/scalar")
        g["ext"] = h5py.ExternalLink("other.h5", "/x")
        t = f.create_group("tracked", track_order=True)
        for n in ["zeta", "alpha", "mid"]:
            t.create_dataset(n, data=[1])
            t.attrs[n] = 1
        f.create_dataset("root_ds", data=np.arange(4))


def modify(p):
    with h5py.File(p, "a") as f:
        g = f["edge"]
        g.attrs["added"] = np.arange(3)
        d = g["unlimited"]
        d.resize((200,))
        d[50:] = np.arange(50, 200)
        g["many_chunks"][100:110, 0:30] = -7
        g["partial"][90:] = 9
        g["vlen_contig"][0] = "changed"
        f["tracked"].create_dataset("new", data=[2])
        f["tracked"].attrs["new"] = 2
    with h5py.File(p) as f:
        g = f["edge"]
        assert list(g["unlimited"][:]) == list(range(200))
        m = np.arange(200 * 300, dtype="<i4").reshape(200, 300)
        m[100:110, 0:30] = -7
        assert (g["many_chunks"][:] == m).all()
        assert g["partial"][95] == 9 and g["partial"][50] == -1.5 and g["partial"][3] == 3
        assert g["vlen_contig"][0] == b"changed" and g["vlen_contig"][1] == b"x1"
        assert len(g.attrs) == 20, len(g.attrs)
        assert list(f["tracked"]) == ["zeta", "alpha", "mid", "new"], list(f["tracked"])
        assert list(f["tracked"].attrs) == ["zeta", "alpha", "mid", "new"], list(f["tracked"].attrs)
    print("modified ok")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    else:
        modify(sys.argv[2])

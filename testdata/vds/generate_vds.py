#!/usr/bin/env python3
"""Write the virtual-dataset fixtures of this folder (h5py).

    python3 testdata/vds/generate_vds.py      (from any working directory)

* source.h5: the source datasets /a (10 x i4), /b (10 x i4), /grow
  (resizable, 6 x f8 of maxshape None).
* vds_{earliest,latest}.h5: virtual datasets mapping them:
  /stack (3 x 10 i4, fill -1): row 0 <- all of source.h5:/a, row 1 cols
  0..5 <- source.h5:/b[5:], row 2 every other column <- this file's /local
  (source file "."); /strided (4 x 5): a strided block of /a;
  /unlimited (2 x unlimited f8) <- source.h5:/grow, unlimited selections;
  /missing (4 i4, fill 7) <- a source file that does not exist.
  An attribute on /stack. `h5salvage salvage` must recreate every mapping so
  that h5py reads the same values from the output when source.h5 lies
  beside it.
"""

import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LIBVERS = {"earliest": ("earliest", "latest"), "latest": ("latest", "latest")}


def source():
    with h5py.File(os.path.join(HERE, "source.h5"), "w", track_order=False) as s:
        s.create_dataset("a", data=np.arange(10, dtype="<i4"), track_times=False)
        s.create_dataset("b", data=np.arange(10, 20, dtype="<i4"), track_times=False)
        s.create_dataset("grow", data=np.linspace(0, 1, 6), maxshape=(None,), chunks=(3,),
                         track_times=False)


def vds(libver):
    path = os.path.join(HERE, "vds_%s.h5" % libver)
    with h5py.File(path, "w", libver=LIBVERS[libver]) as f:
        f.create_dataset("local", data=np.arange(100, 110, dtype="<i4"), track_times=False)
        lay = h5py.VirtualLayout(shape=(3, 10), dtype="<i4")
        lay[0] = h5py.VirtualSource("source.h5", "a", shape=(10,))
        lay[1, :5] = h5py.VirtualSource("source.h5", "b", shape=(10,))[5:]
        lay[2, ::2] = h5py.VirtualSource(".", "local", shape=(10,))[:5]
        f.create_virtual_dataset("stack", lay, fillvalue=-1)
        f["stack"].attrs["about"] = "three mappings"
    # The strided and unlimited mappings use h5py's low-level calls.
    with h5py.File(path, "a") as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        vspace = h5py.h5s.create_simple((4, 5))
        vspace.select_hyperslab((1, 0), (2, 3), stride=(1, 2))
        sspace = h5py.h5s.create_simple((10,))
        sspace.select_hyperslab((1,), (6,))
        dcpl.set_virtual(vspace, b"source.h5", b"a", sspace)
        h5py.h5d.create(f.id, b"strided", h5py.h5t.STD_I32LE, h5py.h5s.create_simple((4, 5)),
                        dcpl=dcpl)
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        vspace = h5py.h5s.create_simple((2, 6), (2, h5py.h5s.UNLIMITED))
        vspace.select_hyperslab((1, 0), (1, h5py.h5s.UNLIMITED), block=(1, 1))
        sspace = h5py.h5s.create_simple((6,), (h5py.h5s.UNLIMITED,))
        sspace.select_hyperslab((0,), (h5py.h5s.UNLIMITED,), block=(1,))
        dcpl.set_virtual(vspace, b"source.h5", b"grow", sspace)
        dcpl.set_fill_value(np.array(-2.5))
        h5py.h5d.create(f.id, b"unlimited", h5py.h5t.IEEE_F64LE,
                        h5py.h5s.create_simple((2, 6), (2, h5py.h5s.UNLIMITED)), dcpl=dcpl)
        lay = h5py.VirtualLayout(shape=(4,), dtype="<i4")
        lay[:] = h5py.VirtualSource("no_such_file.h5", "x", shape=(4,))
        f.create_virtual_dataset("missing", lay, fillvalue=7)


def main():
    source()
    for libver in ("earliest", "latest"):
        vds(libver)
    for n in sorted(os.listdir(HERE)):
        if n.endswith(".h5"):
            print("%-20s %6d bytes" % (n, os.path.getsize(os.path.join(HERE, n))))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Write complex_hdf5_2.h5 next to this script (h5py 3.16, HDF5 2.0).

    python3 testdata/unsupported/generate_complex.py

HDF5 2.0's complex datatype class (class 11): a contiguous dataset /c16 of
complex128, a chunked /c8 of complex64, an attribute @ca of complex64 on
the root, next to h5py's usual {r, i} compound form (/compound) and a
plain dataset. The libhdf5 1.10 the command line links cannot create the
class: salvage writes h5py's {r, i} compound there (same bytes) and says so
in `h5salvage_type_note`; a libhdf5 2.0 (the wheel's) writes the class.
"""

import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    path = os.path.join(HERE, "complex_hdf5_2.h5")
    with h5py.File(path, "w") as f:
        sid = h5py.h5s.create_simple((3,))
        d = h5py.h5d.create(f.id, b"c16", h5py.h5t.COMPLEX_IEEE_F64LE, sid)
        d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([1 + 2j, 3 - 4j, -5j]))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((2,))
        d = h5py.h5d.create(f.id, b"c8", h5py.h5t.COMPLEX_IEEE_F32LE,
                            h5py.h5s.create_simple((4,)), dcpl=dcpl)
        d.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([1j, 2, 3 + 3j, -1], "<c8"))
        a = h5py.h5a.create(f.id, b"ca", h5py.h5t.COMPLEX_IEEE_F32LE, h5py.h5s.create_simple((2,)))
        a.write(np.array([1 + 1j, 2 - 3j], dtype="<c8"))
        f.create_dataset("compound", data=np.array([1 + 2j, 3 - 4j]).view(
            np.dtype([("r", "<f8"), ("i", "<f8")])), track_times=False)
        f.create_dataset("plain", data=np.arange(4), track_times=False)
    print(path, os.path.getsize(path))


if __name__ == "__main__":
    main()

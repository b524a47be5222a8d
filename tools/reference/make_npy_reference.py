#!/usr/bin/env python3
"""Writes tests/engine/data/reference/: small .npy and .npz files made by NumPy itself (a
reference tool, never a runtime dependency of Ember), which the data tests read back and
compare with the values below, restated in tests/engine/data/npy_reference_test.cpp.
Run from the repository root:

    pip install numpy && python3 tools/reference/make_npy_reference.py

Each array is tiny; together the files take a few KiB.
"""
import pathlib

import numpy as np

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "engine" / "data" / "reference"


def save(name, array, version=None):
    with open(OUT / name, "wb") as f:
        np.lib.format.write_array(f, array, version=version, allow_pickle=False)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    # One file per supported dtype, little-endian and C order unless the name says otherwise.
    save("float32.npy", (np.arange(6, dtype="<f4").reshape(2, 3) * 0.5 - 1.0))
    save("float64_fortran.npy", np.asfortranarray(np.arange(24, dtype="<f8").reshape(2, 3, 4) / 8))
    save("float64_big_endian.npy", np.array([1.5, -2.25, np.inf, 1e-300], dtype=">f8"))
    save("int8.npy", np.array([-128, -1, 0, 1, 127], dtype="i1"))
    save("int16_big_endian.npy", np.array([-32768, -2, 0, 300, 32767], dtype=">i2"))
    save("int32_fortran.npy", np.asfortranarray(np.array([[1, -2, 3], [-4, 5, -6]], dtype="<i4")))
    save("int64.npy", np.array([-(2**62), -1, 0, 2**62 + 7], dtype="<i8"))
    save("uint8.npy", np.array([0, 1, 128, 255], dtype="u1"))
    save("uint16.npy", np.array([0, 65535], dtype="<u2"))
    save("uint32_big_endian.npy", np.array([0, 4294967295], dtype=">u4"))
    save("bool.npy", np.array([[True, False], [False, True]]))
    save("scalar.npy", np.array(3.25, dtype="<f8"))
    save("empty.npy", np.zeros((0, 3), dtype="<f4"))
    # Header format versions 2.0 and 3.0 (4-byte header length; 3.0 allows UTF-8).
    save("version2.npy", np.array([1.0, 2.0], dtype="<f4"), version=(2, 0))
    save("version3.npy", np.array([7, 8, 9], dtype="<i8"), version=(3, 0))
    # numpy.savez (stored members, Zip64 local headers) and numpy.savez_compressed (deflated).
    x = np.arange(12, dtype="<f8").reshape(3, 4) / 4
    y = np.array([3, 1, 2], dtype="<i8")
    np.savez(OUT / "savez.npz", x=x, y=y)
    np.savez_compressed(OUT / "savez_compressed.npz", x=x, y=y, flags=np.array([True, False]))


if __name__ == "__main__":
    main()

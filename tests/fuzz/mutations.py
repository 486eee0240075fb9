"""Byte-level mutations of a valid file, shared by the fuzz targets."""

from __future__ import annotations

from hypothesis import strategies as st


def byte_mutation(reach: int):
    """One mutation (kind, position, byte) reaching the first ``reach`` bytes of a file."""
    return st.one_of(
        st.tuples(st.just("set"), st.integers(0, reach), st.integers(0, 255)),
        st.tuples(st.just("insert"), st.integers(0, reach), st.integers(0, 255)),
        st.tuples(st.just("delete"), st.integers(0, reach), st.just(0)),
        st.tuples(st.just("cut"), st.integers(0, reach), st.just(0)),
    )


def mutate(data: bytes, changes) -> bytes:
    """Apply (kind, position, byte) changes in order; positions wrap to the current length."""
    data = bytearray(data)
    for kind, position, value in changes:
        position = position % (len(data) + 1)
        if kind == "set" and position < len(data):
            data[position] = value
        elif kind == "insert":
            data.insert(position, value)
        elif kind == "delete" and position < len(data):
            del data[position]
        elif kind == "cut":
            del data[position:]
    return bytes(data)

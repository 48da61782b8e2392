"""Arrays too large for memory: written chunk by chunk into a .npy file, read back memory-mapped.

A data stage streams its images through these, so its peak memory depends on the chunk, not on the dataset.
"""

import io
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fer.core.errors import FerError, one_line
from fer.core.storage import existing_file


def _header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The .npy header np.save writes for a C-ordered array of this dtype and shape (format 1.0)."""
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        stream, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    )
    return stream.getvalue()


class NpyAppender:
    """A .npy file grown by appending rows (arrays of shape (k, *row_shape)); the header is written by finish().

    The file is byte for byte what np.save writes for the whole array, so outputs do not depend on whether
    they were streamed. As a context manager it finishes on success; on an exception the partial file is left
    for the caller's atomic_path to remove.
    """

    def __init__(self, path: str | os.PathLike, row_shape: tuple[int, ...], dtype=np.uint8):
        self.path, self.row_shape, self.dtype = Path(path), tuple(row_shape), np.dtype(dtype)
        self.rows = 0
        self.reserved = len(_header(self.dtype, (0, *self.row_shape)))
        self.file = open(self.path, "wb")  # noqa: SIM115 (closed by finish or __exit__)
        self.file.write(b"\0" * self.reserved)

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"{self.path}: rows of shape {rows.shape[1:]} appended to rows of {self.row_shape}")
        self.file.write(rows.data)
        self.rows += len(rows)

    def __enter__(self):
        return self

    def __exit__(self, kind, *_):
        if kind is None:
            self.finish()
        self.file.close()

    def finish(self) -> None:
        """Close the file with its header: it then holds every row appended."""
        self.file.close()
        header = _header(self.dtype, (self.rows, *self.row_shape))
        # np.save pads its header to 128 bytes for any shape below ~10^40 elements, so it fits the reserved space.
        if len(header) != self.reserved:
            raise ValueError(f"{self.path}: the header for shape {(self.rows, *self.row_shape)} outgrew its space")
        with open(self.path, "r+b") as file:
            file.write(header)


class NpyRows:
    """The rows of a .npy file, read from disk a slice at a time (plain reads, not a memory map, so that the
    pages read land in the page cache rather than in the reader's resident memory)."""

    def __init__(self, path: str | os.PathLike, what: str):
        self.path = existing_file(path, what)
        try:
            with open(self.path, "rb") as file:
                version = np.lib.format.read_magic(file)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                self.shape, fortran_order, self.dtype = read_header(file)
                self.offset = file.tell()
        except (ValueError, OSError, EOFError) as err:
            raise FerError(f"{self.path}: not a readable .npy array ({one_line(err)}); expected {what}") from None
        if fortran_order or self.dtype.hasobject or not self.shape:
            raise FerError(
                f"{self.path}: not a readable .npy array (not C-ordered rows of plain numbers); expected {what}"
            )
        self.row_shape = tuple(self.shape[1:])
        self.row_items = int(np.prod(self.row_shape, dtype=np.int64))
        expected = self.offset + len(self) * self.row_items * self.dtype.itemsize
        if self.path.stat().st_size != expected:
            raise FerError(
                f"{self.path}: not a readable .npy array ({self.path.stat().st_size} bytes where its header "
                f"promises {expected}: truncated?); expected {what}"
            )

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 as an array."""
        start, stop = max(0, start), min(len(self), stop)
        count = max(0, stop - start) * self.row_items
        offset = self.offset + start * self.row_items * self.dtype.itemsize
        return np.fromfile(self.path, self.dtype, count, offset=offset).reshape(-1, *self.row_shape)

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, step = rows.indices(len(self))
        if step != 1:
            raise ValueError("NpyRows reads consecutive rows only")
        return self.read(start, stop)

    def __iter__(self) -> Iterator[np.ndarray]:
        for start in range(0, len(self), chunk_rows(self)):
            yield from self.read(start, start + chunk_rows(self))


# Rows read or written at once when streaming: a few MB, so that memory stays flat while the
# per-call overhead stays small.
CHUNK_BYTES = 8 * 2**20


def chunk_rows(images) -> int:
    """How many rows of `images` (an array or NpyRows) make one chunk."""
    row_bytes = int(np.prod(images.shape[1:], dtype=np.int64)) * images.dtype.itemsize
    return max(1, CHUNK_BYTES // max(1, row_bytes))


def read_ahead(read: Callable, keys: Sequence) -> Iterator:
    """read(key) for each key in order, the next one read in a thread while the caller works on this one: reading
    from disk (and decoding) overlaps with the work, which for a detector or a model runs on the other cores."""
    with ThreadPoolExecutor(1) as reader:
        upcoming = reader.submit(read, keys[0]) if len(keys) else None
        for k in range(len(keys)):
            value = upcoming.result()
            if k + 1 < len(keys):
                upcoming = reader.submit(read, keys[k + 1])
            yield value

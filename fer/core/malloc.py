"""Fix glibc's mmap threshold for a process whose large allocations come in many sizes (glibc only).

glibc serves blocks over its mmap threshold by mmap and returns them whole on free, but raises that threshold
each time such a block is freed, up to 32 MB, after which large blocks come from the heap (or a thread's
arena), whose freed holes a later block of another size may not fit, and which keeps them resident. A fixed
threshold keeps the blocks above it mapped and unmapped, at the cost of faulting their pages in again on every
allocation: the lower it is, the flatter the memory and the slower the work. Each caller chooses its value.
"""

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h); setting it turns the dynamic threshold off
GLIBC_START_BYTES = 128 * 1024  # glibc's own starting value: every block over it mapped


def map_large_blocks(threshold_bytes: int) -> None:
    """Fix glibc's mmap threshold for this process; nothing to do where the C library is not glibc."""
    mallopt = getattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallopt", None)
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, threshold_bytes)

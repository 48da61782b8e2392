"""Keep a long run of large, differently sized allocations from growing the C heap (glibc only).

glibc serves blocks over its mmap threshold by mmap and returns them whole on free, but raises that threshold
each time such a block is freed, up to 32 MB, after which large blocks come from the heap, whose freed holes a
later block of another size may not fit. MTCNN over a folder of photos of many sizes allocates exactly that way:
its align stage's peak grew batch after batch (1.17 -> 1.44 GB over five batches of 256 photos) while the
same batch repeated stayed flat. A fixed threshold keeps large blocks mapped and unmapped (1.05 -> 1.08 GB).
"""

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h); setting it turns the dynamic threshold off
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value


def map_large_blocks() -> bool:
    """Fix glibc's mmap threshold for this process; False where the C library is not glibc (nothing to do)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    mallopt = getattr(libc, "mallopt", None)
    return mallopt is not None and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1

"""Keep a long run of large, differently sized allocations from growing the C heap (glibc only).

glibc serves blocks over its mmap threshold by mmap and returns them whole on free, but raises that threshold
each time such a block is freed, up to 32 MB, after which large blocks come from the heap, whose freed holes a
later block of another size may not fit. MTCNN over a folder of photos of many sizes allocates exactly that way:
its align stage's peak grew batch after batch (1.17 -> 1.44 GB over five batches of 256 photos) while the
same batch repeated stayed flat. A fixed threshold keeps the blocks above it mapped and unmapped, at the cost
of faulting their pages in again on every call: the lower it is, the flatter the peak and the slower the stage.
Measured on the align stage of full-size Human Face Emotions (59,099 photos, docs/data-scale.md): 128 kB
(glibc's starting value) 1022 s and 1.14 GB, 8 MB 749 s and 1.75 GB, 16 MB 672 s and 1.90 GB; glibc's own
rising threshold runs as fast as 32 MB fixed but peaks higher, 1.7 GB already at a tenth of the photos.
"""

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h); setting it turns the dynamic threshold off
MMAP_THRESHOLD_BYTES = 8 * 2**20  # under the 2 GB the data stages are held to, with room to spare (above)


def map_large_blocks() -> bool:
    """Fix glibc's mmap threshold for this process; False where the C library is not glibc (nothing to do)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    mallopt = getattr(libc, "mallopt", None)
    return mallopt is not None and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1

"""Keep freed frame buffers in the process for the next frame instead of handing them back.

libzmq allocates every received message with malloc and the worker frees it once the batch is
handled. With glibc's defaults a freed 1 MB buffer at the top of a thread's heap is returned to
the kernel (madvise), and the next frame's receive faults 256 fresh zeroed pages back in: about
a tenth of a worker's CPU per frame went to page faults, page clearing and madvise (profile in
docs/performance.md). Raising the trim and mmap thresholds keeps such buffers on the heap for
reuse; what a worker keeps is bounded by TRIM_BYTES per heap, twice the default credit
window. glibc only; elsewhere this does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc malloc.h
MMAP_BYTES = 32 << 20  # glibc's largest mmap threshold on 64-bit: frames up to 32 MB reuse heap memory
TRIM_BYTES = 32 << 20  # free memory at a heap's top kept for the next frames: twice the default credit window

log = logging.getLogger(__name__)
_done = False


def reuse_freed_buffers() -> bool:
    """Set glibc's thresholds once per process; False where malloc is not glibc's."""
    global _done
    if _done:
        return True
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_BYTES))
    if not ok:
        log.info("malloc refused the frame buffer thresholds; freed frames go back to the kernel")
    _done = ok
    return ok

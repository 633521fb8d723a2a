"""streamrec.heap gives freed heap pages back: RSS falls after trim, not before."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streamrec import heap

PROBE = r"""
import sys
from streamrec import heap

def rss_mb():
    return int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1]) / 1024

chunks = [bytearray(3000) for _ in range(50_000)]   # ~150 MB from malloc's heap (below the mmap threshold)
sentinel = bytearray(3000)                            # keeps the freed chunks off the top of the heap
del chunks
before = rss_mb()
released = heap.trim()
after = rss_mb()
print(before, after, released)
"""


@pytest.mark.skipif(not heap.available(), reason="the C library has no malloc_trim")
def test_trim_returns_freed_heap_pages_to_the_os() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    before, after, released = float(out[0]), float(out[1]), out[2]
    assert before > 120, f"the freed chunks should still count in RSS before the trim ({before:.0f} MB)"
    assert before - after > 100, f"RSS {before:.0f} MB -> {after:.0f} MB after trim"
    assert released == "True"



def test_tune_gc_freezes_what_is_alive_and_raises_the_young_threshold() -> None:
    import gc

    before = gc.get_threshold()
    try:
        heap.tune_gc(0)  # 0: nothing changes
        assert gc.get_threshold() == before and gc.get_freeze_count() == 0
        heap.tune_gc(12_345)
        assert gc.get_threshold() == (12_345, 20, 20)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)

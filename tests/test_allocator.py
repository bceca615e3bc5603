"""keep_freed_memory: glibc's thresholds raised, so a training step stops faulting its pages in."""

import subprocess
import sys

import pytest

import tinygrad_rnn as tg

# a loop freeing and allocating 4 MB of arrays, as a training step does; prints its page faults
LOOP = """
import resource, sys
import numpy as np
import tinygrad_rnn as tg
applied = tg.keep_freed_memory() if sys.argv[1] == "keep" else None
for _ in range(3):
    kept = [np.ones(2**15) for _ in range(16)]  # 16 x 256 KB
    del kept
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    kept = [np.ones(2**15) for _ in range(16)]
    del kept
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", LOOP, mode], capture_output=True, text=True, check=True)
    applied, count = out.stdout.split()
    return applied, int(count)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_kept_memory_is_not_faulted_in_again_every_step():
    applied, kept = faults("keep")
    _, default = faults("default")
    if applied != "True":
        pytest.skip("the C library is not glibc")
    assert kept < 100 < default  # 50 steps x 4 MB: ~50,000 faults by default (1,024 pages a step)


def test_bad_thresholds_are_named():
    with pytest.raises(ValueError, match="mmap_mb in 1..32"):
        tg.keep_freed_memory(mmap_mb=64)
    with pytest.raises(ValueError, match="trim_mb in 0..2047"):
        tg.keep_freed_memory(trim_mb=-1)
    with pytest.raises(ValueError, match="trim_mb in 0..2047 \\(mallopt takes a C int of bytes\\)"):
        tg.keep_freed_memory(trim_mb=4096)  # 2**32 bytes overflowed the int: glibc trimmed at every free
    with pytest.raises(ValueError):
        tg.keep_freed_memory(trim_mb=True)

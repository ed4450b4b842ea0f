import os

__version__ = "0.1.0"

# Large arrays without numpy's transparent-huge-page advice: a job's arrays are touched once, and
# with the advice the kernel's synchronous huge-page work made that first touch up to 4x slower
# (docs/benchmarks.md, "drip-matte at 27 MP"). Only when numpy is not imported yet, and a user's
# own NUMPY_MADVISE_HUGEPAGE wins.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

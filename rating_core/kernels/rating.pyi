"""Rating kernel (see rating.pyx and rating_core/reference.py for the rules)."""
import numpy as np
import numpy.typing as npt

CODES: dict[str, dict[str, int]]
OUTPUT: tuple[tuple[str, type[np.generic]], ...]
HISTORY: dict[str, type[np.generic]]  # the optional history arrays of a live view, name -> dtype

def rate(
    tables: dict[str, npt.NDArray[np.generic]],
    cdr: dict[str, npt.NDArray[np.int64]],
    state: dict[str, npt.NDArray[np.generic]],
    threads: int = 2,
    out: dict[str, npt.NDArray[np.generic]] | None = None,
) -> dict[str, npt.NDArray[np.generic]]: ...

DEBUG_BUILD: bool  # built with RATING400_DEBUG=1 (bounds checks on)

def bound(tables: dict[str, npt.NDArray[np.generic]]) -> object: ...

MAX_BUCKETS_LOG2: int  # at most 2**16 buckets in the account-order index

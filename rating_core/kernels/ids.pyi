import numpy as np
import numpy.typing as npt

def hash_strings(offsets: npt.NDArray[np.int32], data: npt.NDArray[np.uint8], out: npt.NDArray[np.uint64]) -> None: ...
def later_copies(
    offsets: npt.NDArray[np.int32], data: npt.NDArray[np.uint8], consider: npt.NDArray[np.uint8], later: npt.NDArray[np.uint8],
    hash_bits: int = ...,
) -> int: ...

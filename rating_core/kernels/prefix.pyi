import numpy as np
import numpy.typing as npt

def pow11(n: int) -> int: ...
def encode_strings(offsets: npt.NDArray[np.int32], data: npt.NDArray[np.uint8], out: npt.NDArray[np.int64]) -> None: ...
def number_cells(
    offsets: npt.NDArray[np.int32],
    data: npt.NDArray[np.uint8],
    bitmap: npt.NDArray[np.uint8],
    bit_offset: int,
    present: npt.NDArray[np.uint8],
    plain: npt.NDArray[np.uint8],
    is_400: npt.NDArray[np.uint8],
    keys: npt.NDArray[np.int64],
) -> None: ...
def separated_numbers(
    offsets: npt.NDArray[np.int32],
    data: npt.NDArray[np.uint8],
    rows: npt.NDArray[np.int64],
    ok: npt.NDArray[np.uint8],
    out_offsets: npt.NDArray[np.int32],
    out_data: npt.NDArray[np.uint8],
    keys: npt.NDArray[np.int64],
    is_400: npt.NDArray[np.uint8],
) -> int: ...
def flatten(
    keys: npt.NDArray[np.int64], lengths: npt.NDArray[np.int32], values: npt.NDArray[np.int32]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]: ...
def exact_rows(table: npt.NDArray[np.int64], keys: npt.NDArray[np.int64], out: npt.NDArray[np.int64]) -> None: ...
def lookup(
    starts: npt.NDArray[np.int64], values: npt.NDArray[np.int32], keys: npt.NDArray[np.int64]
) -> npt.NDArray[np.int32]: ...

from typing import Iterable

import numpy as np
import numpy.typing as npt

def merge(
    keys: list[bytes],
    stored: Iterable[tuple[bytes, bytes]],
    agg: npt.NDArray[np.int64],
    ids: npt.NDArray[np.uint32],
) -> tuple[list[bytes | None], list[tuple[bytes, bytes]]]: ...
def call_entries(
    offsets: npt.NDArray[np.int32], data: npt.NDArray[np.uint8], batch: int
) -> tuple[list[bytes], list[bytes]]: ...
def group(
    acc_offsets: npt.NDArray[np.int32],
    acc_data: npt.NDArray[np.uint8],
    caller_offsets: npt.NDArray[np.int32],
    caller_data: npt.NDArray[np.uint8],
    rank: npt.NDArray[np.int64],
    ranked: bool,
    rows: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    start_valid: npt.NDArray[np.uint8],
    answered: npt.NDArray[np.uint8],
    billable: npt.NDArray[np.int64],
    known: npt.NDArray[np.uint8],
) -> tuple[list[bytes], npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def _group_digits(
    acc_offsets: npt.NDArray[np.int32],
    acc_data: npt.NDArray[np.uint8],
    caller_offsets: npt.NDArray[np.int32],
    caller_data: npt.NDArray[np.uint8],
    rank: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    start_valid: npt.NDArray[np.uint8],
    answered: npt.NDArray[np.uint8],
    billable: npt.NDArray[np.int64],
    known: npt.NDArray[np.uint8],
) -> tuple[list[bytes], npt.NDArray[np.int64], npt.NDArray[np.int64]] | None: ...

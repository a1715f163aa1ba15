import numpy as np
import numpy.typing as npt

def judge_times(
    start: npt.NDArray[np.int64],
    ivr: npt.NDArray[np.int64],
    agent: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    present: npt.NDArray[np.uint8],
    valid: npt.NDArray[np.uint8],
    field: npt.NDArray[np.int8],
    reason: npt.NDArray[np.int8],
    *,
    min_ms: int,
    max_ms: int,
    max_call_ms: int,
    first_day: int,
    last_day: int,
    f_start: int,
    f_ivr: int,
    f_agent: int,
    f_end: int,
    missing: int,
    not_a_time: int,
    out_of_range: int,
    before_start: int,
    after_end: int,
    end_before_start: int,
    too_long: int,
    outside_calendar: int,
) -> int: ...
def int64_times(
    values: npt.NDArray[np.int64],
    bitmap: npt.NDArray[np.uint8],
    bit_offset: int,
    shift: int,
    out: npt.NDArray[np.int64],
    present: npt.NDArray[np.uint8],
) -> None: ...
def splice_strings(
    offsets: npt.NDArray[np.int32],
    data: npt.NDArray[np.uint8],
    rows: npt.NDArray[np.int64],
    new_offsets: npt.NDArray[np.int32],
    new_data: npt.NDArray[np.uint8],
    out_offsets: npt.NDArray[np.int32],
    out_data: npt.NDArray[np.uint8],
) -> None: ...
def text_cells(
    offsets: npt.NDArray[np.int32],
    data: npt.NDArray[np.uint8],
    bitmap: npt.NDArray[np.uint8],
    bit_offset: int,
    check_utf8: bool,
    forbidden: npt.NDArray[np.int32],
    max_bytes: int,
    out: npt.NDArray[np.uint8],
) -> int: ...

# cython: freethreading_compatible=True
"""The edge's compiled passes: the reject mask over a batch's times in one
pass (see edge.pxd), int64 times read from their Arrow buffers, and string
cells replaced in place of pyarrow's ``replace_with_mask``.

``rating_core/cdr.py`` parses the four time columns to epoch ms with a
present and a valid mask each, then calls ``judge_times``; before it the
same judgement took some forty NumPy passes. tests/test_cdr_edge.py checks
this pass against those NumPy rules (``judge_times_by_numpy``) with
hypothesis, row for row, field and reason.
"""
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy

from .common cimport LOCAL_OFFSET_MS, MS_PER_DAY, NO_TIME


def judge_times(const int64_t[::1] start, const int64_t[::1] ivr, const int64_t[::1] agent,
                const int64_t[::1] end, const uint8_t[:, ::1] present, const uint8_t[:, ::1] valid,
                int8_t[::1] field, int8_t[::1] reason, *,
                int64_t min_ms, int64_t max_ms, int64_t max_call_ms, int64_t first_day, int64_t last_day,
                int8_t f_start, int8_t f_ivr, int8_t f_agent, int8_t f_end,
                int8_t missing, int8_t not_a_time, int8_t out_of_range, int8_t before_start,
                int8_t after_end, int8_t end_before_start, int8_t too_long, int8_t outside_calendar):
    """For each row i, the first bad time field in column order (start,
    ivr_answer, agent_answer, end) and its reason, into ``field[i]`` /
    ``reason[i]``; rows with sound times get field -1, reason 0.

    Inputs: epoch ms (int64, any value where not valid); ``present`` and
    ``valid`` are (4, n) uint8 masks in that column order: present, the
    cell holds something; valid, it parsed as a time. A valid time outside
    [min_ms, max_ms) is out of range (and counts as no time below). Within
    a field the reasons rank: missing (start, end only), out of range, not a
    time, then start outside the calendar [first_day, last_day] (local
    days); an answer before start or after end (judged only when start and
    end are sound and end >= start); end before start; a call of
    max_call_ms or more. Returns how many valid times were out of range.
    """
    cdef TimeRule rule
    rule.min_ms, rule.max_ms, rule.max_call_ms = min_ms, max_ms, max_call_ms
    rule.first_day, rule.last_day = first_day, last_day
    rule.f_start, rule.f_ivr, rule.f_agent, rule.f_end = f_start, f_ivr, f_agent, f_end
    rule.missing, rule.not_a_time, rule.out_of_range = missing, not_a_time, out_of_range
    rule.before_start, rule.after_end = before_start, after_end
    rule.end_before_start, rule.too_long, rule.outside_calendar = end_before_start, too_long, outside_calendar
    cdef Py_ssize_t i, n = field.shape[0]
    cdef Py_ssize_t wild = 0
    cdef int64_t s, e, day
    cdef bint s_ok, e_ok, sound
    cdef int8_t f, r
    if not (start.shape[0] == ivr.shape[0] == agent.shape[0] == end.shape[0] == reason.shape[0] == n
            and present.shape[0] == valid.shape[0] == 4 and present.shape[1] == valid.shape[1] == n):
        raise ValueError("judge_times: arrays of different lengths")
    with nogil:
        for i in range(n):
            s = start[i]
            e = end[i]
            s_ok = valid[0, i] != 0 and in_range(&rule, s)
            e_ok = valid[3, i] != 0 and in_range(&rule, e)
            wild += (valid[0, i] != 0 and not s_ok) + (valid[3, i] != 0 and not e_ok)
            wild += (valid[1, i] != 0 and not in_range(&rule, ivr[i]))
            wild += (valid[2, i] != 0 and not in_range(&rule, agent[i]))
            f = -1
            r = 0
            if not present[0, i]:
                f, r = rule.f_start, rule.missing
            elif valid[0, i] != 0 and not s_ok:
                f, r = rule.f_start, rule.out_of_range
            elif not s_ok:
                f, r = rule.f_start, rule.not_a_time
            else:
                day = (s + LOCAL_OFFSET_MS) // MS_PER_DAY  # s >= min_ms >= 0: C division floors
                if day < rule.first_day or day > rule.last_day:
                    f, r = rule.f_start, rule.outside_calendar
            if f < 0:
                sound = s_ok and e_ok and e >= s
                r = answer(&rule, ivr[i], present[1, i], valid[1, i], sound, s, e)
                if r >= 0:
                    f = rule.f_ivr
                else:
                    r = answer(&rule, agent[i], present[2, i], valid[2, i], sound, s, e)
                    if r >= 0:
                        f = rule.f_agent
                    else:
                        r = 0
            if f < 0:
                f = rule.f_end
                if not present[3, i]:
                    r = rule.missing
                elif valid[3, i] != 0 and not e_ok:
                    r = rule.out_of_range
                elif not e_ok:
                    r = rule.not_a_time
                elif s_ok and e < s:
                    r = rule.end_before_start
                elif s_ok and e - s >= rule.max_call_ms:
                    r = rule.too_long
                else:
                    f, r = -1, 0
            field[i] = f
            reason[i] = r
    return wild


cdef inline int8_t answer(const TimeRule *rule, int64_t t, uint8_t present, uint8_t valid, bint sound,
                          int64_t s, int64_t e) noexcept nogil:
    # The reason an optional answer time is bad, or -1.
    cdef bint ok = valid != 0 and in_range(rule, t)
    if valid != 0 and not ok:
        return rule.out_of_range
    if present != 0 and not ok:
        return rule.not_a_time
    if sound and ok and t < s:
        return rule.before_start
    if sound and ok and t > e:
        return rule.after_end
    return -1


def int64_times(const int64_t[::1] values, const uint8_t[::1] bitmap, Py_ssize_t bit_offset, int64_t shift,
                int64_t[::1] out, uint8_t[::1] present):
    """Epoch ms of an int64 or timestamp[ms] Arrow column, from its value
    buffer and validity bitmap (``bitmap`` empty: no nulls; read from bit
    ``bit_offset``): ``out[i] = values[i] - shift`` (wrapping, as pyarrow's
    unchecked subtract), NO_TIME where null; ``present[i]`` 1 where not null.
    ``shift``: LOCAL_OFFSET_MS for a naive (Shanghai wall time) timestamp,
    else 0."""
    cdef Py_ssize_t i, bit, n = out.shape[0]
    cdef bint nulls = bitmap.shape[0] > 0
    cdef uint8_t here
    if values.shape[0] != n or present.shape[0] != n or (nulls and bitmap.shape[0] * 8 < bit_offset + n):
        raise ValueError("int64_times: arrays of different lengths")
    with nogil:
        for i in range(n):
            here = 1
            if nulls:
                bit = bit_offset + i
                here = (bitmap[bit >> 3] >> (bit & 7)) & 1
            present[i] = here
            out[i] = <int64_t>(<uint64_t>values[i] - <uint64_t>shift) if here else NO_TIME


def splice_strings(const int32_t[::1] offsets, const uint8_t[::1] data, const int64_t[::1] rows,
                   const int32_t[::1] new_offsets, const uint8_t[::1] new_data,
                   int32_t[::1] out_offsets, uint8_t[::1] out_data):
    """An Arrow string array's buffers with some cells replaced: cell i of
    the output is cell k of (``new_offsets``, ``new_data``) where
    ``rows[k] == i``, else cell i of (``offsets``, ``data``). ``rows``
    ascending, one per new cell; ``out_offsets`` has one more entry than the
    input has cells, ``out_data`` exactly the output's bytes (the caller
    sizes it). Untouched runs of cells are copied whole (``memcpy``), so a
    few replaced cells cost about one copy of the buffers (pyarrow's
    ``replace_with_mask`` rebuilds the array cell by cell)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, k = rows.shape[0], i, r, w = 0, run
    cdef int32_t a, b
    if new_offsets.shape[0] != k + 1 or out_offsets.shape[0] != n + 1:
        raise ValueError("splice_strings: offsets of the wrong length")
    cdef Py_ssize_t size = offsets[n] - offsets[0] + new_offsets[k] - new_offsets[0]
    for r in range(k):
        if not 0 <= rows[r] < n or (r and rows[r] <= rows[r - 1]):
            raise ValueError("splice_strings: rows must be ascending cell numbers")
        size -= offsets[rows[r] + 1] - offsets[rows[r]]
    if out_data.shape[0] != size:
        raise ValueError("splice_strings: out_data of the wrong size")
    with nogil:
        i = 0
        out_offsets[0] = 0
        for r in range(k + 1):
            run = rows[r] if r < k else n  # cells i .. run - 1 are kept as they are
            if run > i:
                a = offsets[i]
                b = offsets[run]
                if b > a:
                    memcpy(&out_data[w], &data[a], b - a)
                for i in range(i, run):
                    out_offsets[i + 1] = out_offsets[i] + offsets[i + 1] - offsets[i]
                w += b - a
                i = run
            if r < k:
                a = new_offsets[r]
                b = new_offsets[r + 1]
                if b > a:
                    memcpy(&out_data[w], &new_data[a], b - a)
                w += b - a
                out_offsets[i + 1] = <int32_t>w
                i += 1


def text_cells(const int32_t[::1] offsets, const uint8_t[::1] data, const uint8_t[::1] bitmap,
               Py_ssize_t bit_offset, bint check_utf8, const int32_t[::1] forbidden, Py_ssize_t max_bytes,
               uint8_t[::1] out):
    """One pass over an Arrow string or binary array's buffers (int32
    offsets): ``out[i]`` is 3 where cell i is longer than ``max_bytes``
    (its bytes are then not read), else 2 where it is not UTF-8 (only
    judged with ``check_utf8``, for a binary column: a string column's bytes
    are UTF-8 by Arrow's own rule), else 1 where it holds a character of
    ``forbidden`` (code point ranges, inclusive, as a flat sorted array
    lo0, hi0, lo1, hi1...: ``cdr.FORBIDDEN_TEXT``), else 0; null cells
    (``bitmap``, empty when none, read from bit ``bit_offset``) are 0.
    Returns how many cells are not 0. The UTF-8 rule is RFC 3629's: no
    overlong form, no surrogate, nothing past U+10FFFF (tests/test_cdr_edge.py
    checks it against Python's decoder; tests/test_text_cells.py checks the
    forbidden characters against ``cdr.check_text``)."""
    cdef Py_ssize_t i, j, k, bit, n = out.shape[0], bad = 0, nf = forbidden.shape[0]
    cdef bint nulls = bitmap.shape[0] > 0
    cdef int32_t a, b, cp
    cdef uint8_t c, c1, flag
    cdef int need
    cdef uint8_t ascii_bad[128]  # the forbidden ASCII characters (C0, DEL), one load a byte
    if offsets.shape[0] != n + 1 or (nulls and bitmap.shape[0] * 8 < bit_offset + n):
        raise ValueError("text_cells: arrays of different lengths")
    if n and (offsets[0] < 0 or offsets[n] > data.shape[0] or offsets[0] > offsets[n]):
        raise ValueError("text_cells: offsets outside the data buffer")
    if nf % 2:
        raise ValueError("text_cells: forbidden ranges come in (lo, hi) pairs")
    for k in range(128):
        ascii_bad[k] = 0
        j = 0
        while j < nf and forbidden[j] <= k:
            if k <= forbidden[j + 1]:
                ascii_bad[k] = 1
            j += 2
        if ascii_bad[k] and 0x20 <= k < 0x7F:
            raise ValueError("text_cells: a printable ASCII character among the forbidden (see the fast path)")
    with nogil:
        for i in range(n):
            out[i] = 0
            if nulls:
                bit = bit_offset + i
                if not (bitmap[bit >> 3] >> (bit & 7)) & 1:
                    continue
            a = offsets[i]
            b = offsets[i + 1]
            if b - a > max_bytes:
                out[i] = 3
                bad += 1
                continue
            flag = 0
            j = a
            while j < b:
                c = data[j]
                if <uint8_t>(c - 0x20) < 0x5F:  # printable ASCII (never forbidden): one compare
                    j += 1
                    continue
                if c < 0x80:
                    if ascii_bad[c]:
                        flag = 1
                        if not check_utf8:
                            break
                    j += 1
                    continue
                # Lead byte: C2-DF one continuation, E0-EF two, F0-F4 three.
                if 0xC2 <= c <= 0xDF:
                    need = 1
                elif 0xE0 <= c <= 0xEF:
                    need = 2
                elif 0xF0 <= c <= 0xF4:
                    need = 3
                elif check_utf8:
                    flag = 2
                    break
                else:  # a string column is UTF-8: not reached; never read past the cell
                    j += 1
                    continue
                if j + need >= b:
                    if check_utf8:
                        flag = 2
                    break
                c1 = data[j + 1]
                if check_utf8:
                    # The second byte's range narrows after E0 (overlong), ED
                    # (surrogates), F0 (overlong) and F4 (past U+10FFFF).
                    if (c1 & 0xC0) != 0x80 or (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 > 0x9F) \
                            or (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 > 0x8F):
                        flag = 2
                        break
                    if need >= 2 and (data[j + 2] & 0xC0) != 0x80:
                        flag = 2
                        break
                    if need == 3 and (data[j + 3] & 0xC0) != 0x80:
                        flag = 2
                        break
                if flag == 0:
                    if need == 1:
                        cp = ((c & 0x1F) << 6) | (c1 & 0x3F)
                    elif need == 2:
                        cp = ((c & 0x0F) << 12) | ((c1 & 0x3F) << 6) | (data[j + 2] & 0x3F)
                    else:
                        cp = ((c & 0x07) << 18) | ((c1 & 0x3F) << 12) | ((data[j + 2] & 0x3F) << 6) \
                            | (data[j + 3] & 0x3F)
                    k = 0
                    while k < nf and forbidden[k] <= cp:
                        if cp <= forbidden[k + 1]:
                            flag = 1
                            break
                        k += 2
                    if flag and not check_utf8:
                        break
                j += need + 1
            out[i] = flag
            bad += flag != 0
    return bad

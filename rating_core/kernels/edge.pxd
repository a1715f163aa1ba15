# The edge's judgement of a CDR's times (rating_core/cdr.py ``prepare``), one
# row at a time: which time field is the first bad one in column order, and
# why. The reason codes and field ids are rating_core/cdr.py's (REASONS,
# FIELDS), handed in by the caller, so they are written once; the bounds are
# cdr.MIN_TIME_MS / MAX_TIME_MS / MAX_CALL_MS and the snapshot's calendar.
from libc.stdint cimport int8_t, int64_t

cdef struct TimeRule:
    int64_t min_ms  # a time is in range when min_ms <= t < max_ms
    int64_t max_ms
    int64_t max_call_ms  # end - start must stay below it
    int64_t first_day  # the calendar's local epoch days, inclusive
    int64_t last_day
    int8_t f_start, f_ivr, f_agent, f_end  # field ids
    int8_t missing, not_a_time, out_of_range, before_start, after_end  # reason codes
    int8_t end_before_start, too_long, outside_calendar

cdef inline bint in_range(const TimeRule *rule, int64_t t) noexcept nogil:
    return rule.min_ms <= t < rule.max_ms

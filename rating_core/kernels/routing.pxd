# Routing kernel: the decision for a call at setup (see
# rating_core/reference_routing.py for the rules in readable Python, and
# rating_core/compile/routing.py for the route_* tables).
from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t

# Order is the id: rating_core.router.ROUTE_REASON (tests check).
cdef enum:
    R_OK = 0
    R_UNKNOWN_NUMBER = 1
    R_NUMBER_NOT_ACTIVE = 2
    R_NUMBER_SUSPENDED = 3
    R_PENDING_VERIFICATION = 4
    R_ACCOUNT_SUSPENDED = 5
    R_PACKAGE_NOT_STARTED = 6
    R_CALLER_BLOCKED = 7
    R_REGION_BLOCKED = 8
    R_INVALID_IVR_KEY = 9
    R_NO_ROUTE = 10
    R_ALL_DESTINATIONS_BUSY = 11
    R_NO_RATE = 12
    R_OUT_OF_CREDIT = 13

# catalog.routing.STRATEGIES
cdef enum:
    SEQUENTIAL = 0
    ROUND_ROBIN = 1
    RANDOM = 2
    WEIGHTED = 3

cdef enum:
    MAX_HOPS = 10  # catalog.routing.MAX_HOPS_LIMIT
    MAX_GROUP = 100  # destinations in one group, at most
    MAX_CHAIN = 16  # groups followed through overflow, at most
    MAX_CALL_SECONDS = 86400  # a bound on any one call (and on max_duration)

cdef struct Call:
    int64_t number_key  # the 400 number
    int64_t number_row  # its row in number_key (find_exact), -1 unknown
    int64_t caller_key  # 0: unknown / withheld caller
    int64_t at_ms  # epoch ms, within the calendar (the edge checks)
    int64_t ivr_path  # key path code, -1 invalid keys
    int64_t memory_key  # line key that last answered this caller here, 0 none
    int64_t credit_left  # money budget (minor units): the ledger's available balance
    int64_t bundle_used  # bundle seconds used in bundle_period
    int32_t bundle_period  # day_month of bundle_used, -1 none
    uint64_t rand  # this call's random seed

cdef struct Outcome:
    int8_t reason
    int8_t caller_class
    int8_t billing_start
    int32_t plan
    int32_t rule  # matched rule id, -1: none (IVR leaf default or denial)
    int32_t group
    int32_t n_dest
    int32_t city
    int32_t province
    int32_t carrier
    int32_t rate
    int32_t max_duration  # seconds from billing start; 0: no limit
    int32_t announcement  # text id, -1 none
    int64_t menu_path  # IVR menu to play (key path code), -1: none
    # carried from selection to ordering (not returned)
    int8_t band
    bint limited  # all but a bundle that sells overage: max duration applies
    int32_t n_classes  # distinct destination classes listed and priced (limited calls)
    int32_t classes[MAX_HOPS]
    int32_t package
    int64_t budget  # money (minor units) or bundle seconds the call may use


cdef inline uint64_t mix64(uint64_t z) noexcept nogil:
    # splitmix64 finaliser: the decision's only source of randomness, so a
    # seed reproduces a decision exactly (reference_routing.mix64).
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    return z ^ (z >> 31)

cdef inline uint64_t call_seed(uint64_t seed, uint64_t i) noexcept nogil:
    return mix64(seed + (i + 1) * <uint64_t>0x9E3779B97F4A7C15)

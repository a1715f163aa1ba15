import numpy as np
import numpy.typing as npt

OUTCOME_FIELDS: tuple[str, ...]
MAX_DESTINATIONS: int
CALL_SECONDS_LIMIT: int

def seed_of(seed: int, i: int) -> int: ...

class RoutingCore:
    def __init__(self, t: dict[str, np.ndarray], active: npt.NDArray[np.int32], cursor: npt.NDArray[np.int32]) -> None: ...
    def set_state(self, active: npt.NDArray[np.int32], cursor: npt.NDArray[np.int32]) -> None: ...
    def number_index(self, number_key: int) -> int: ...
    def number_rows(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]: ...
    def decide_one(
        self,
        number_key: int,
        caller_key: int,
        at_ms: int,
        ivr_path: int = 0,
        memory_key: int = 0,
        credit_left: int = 0,
        bundle_used: int = 0,
        bundle_period: int = -1,
        seed: int = 0,
        index: int = 0,
        with_classes: bool = False,
    ) -> tuple: ...
    def grant(self, package: int, caller_class: int, at_ms: int, classes: tuple[int, ...], budget: int,
              money: bool) -> tuple[int, int]: ...
    def cost(self, package: int, caller_class: int, at_ms: int, classes: tuple[int, ...], seconds: int,
             money: bool) -> int: ...
    def overage_charge(self, package: int, seconds: int) -> int: ...
    def bundle_hold(self, package: int, caller_class: int, at_ms: int, classes: tuple[int, ...], seconds: int,
                    seconds_left: int, slack_in: int, slack_over: int) -> tuple[int, int]: ...
    def bundle_grant(self, package: int, caller_class: int, at_ms: int, classes: tuple[int, ...],
                     seconds_left: int, money_left: int, slack_in: int, slack_over: int,
                     limit: int) -> tuple[int, int, int]: ...
    def decide_batch(
        self,
        calls: dict[str, np.ndarray],
        seed: int = 0,
        index: int = 0,
        reserve: bool = True,
        active: npt.NDArray[np.int32] | None = None,
        cursor: npt.NDArray[np.int32] | None = None,
        threads: int = 2,
    ) -> dict[str, np.ndarray]: ...

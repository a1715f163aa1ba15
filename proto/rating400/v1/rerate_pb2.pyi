from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RerateRequest(_message.Message):
    __slots__ = ("catalog_version", "from_day", "to_day", "account", "number", "reason", "dry_run")
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    FROM_DAY_FIELD_NUMBER: _ClassVar[int]
    TO_DAY_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    catalog_version: int
    from_day: str
    to_day: str
    account: str
    number: str
    reason: str
    dry_run: bool
    def __init__(self, catalog_version: _Optional[int] = ..., from_day: _Optional[str] = ..., to_day: _Optional[str] = ..., account: _Optional[str] = ..., number: _Optional[str] = ..., reason: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class RerateAdjustment(_message.Message):
    __slots__ = ("call_id", "account", "catalog_version", "old_charge_minor", "new_charge_minor", "delta_minor", "ledger_delta_minor", "reason", "rerated_at_ms")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    OLD_CHARGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    NEW_CHARGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    DELTA_MINOR_FIELD_NUMBER: _ClassVar[int]
    LEDGER_DELTA_MINOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RERATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    account: str
    catalog_version: int
    old_charge_minor: int
    new_charge_minor: int
    delta_minor: int
    ledger_delta_minor: int
    reason: str
    rerated_at_ms: int
    def __init__(self, call_id: _Optional[str] = ..., account: _Optional[str] = ..., catalog_version: _Optional[int] = ..., old_charge_minor: _Optional[int] = ..., new_charge_minor: _Optional[int] = ..., delta_minor: _Optional[int] = ..., ledger_delta_minor: _Optional[int] = ..., reason: _Optional[str] = ..., rerated_at_ms: _Optional[int] = ...) -> None: ...

class RerateCorrection(_message.Message):
    __slots__ = ("account", "credit_change_minor", "package_kind", "charge_change_minor", "billed_change_minor")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    CREDIT_CHANGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_KIND_FIELD_NUMBER: _ClassVar[int]
    CHARGE_CHANGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    BILLED_CHANGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    account: str
    credit_change_minor: int
    package_kind: str
    charge_change_minor: int
    billed_change_minor: int
    def __init__(self, account: _Optional[str] = ..., credit_change_minor: _Optional[int] = ..., package_kind: _Optional[str] = ..., charge_change_minor: _Optional[int] = ..., billed_change_minor: _Optional[int] = ...) -> None: ...

class RerateResponse(_message.Message):
    __slots__ = ("catalog_version", "dry_run", "adjustments", "corrections", "seen", "unchanged", "skipped", "not_rerated", "delta_total_minor", "credit_change_total_minor")
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    ADJUSTMENTS_FIELD_NUMBER: _ClassVar[int]
    CORRECTIONS_FIELD_NUMBER: _ClassVar[int]
    SEEN_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    NOT_RERATED_FIELD_NUMBER: _ClassVar[int]
    DELTA_TOTAL_MINOR_FIELD_NUMBER: _ClassVar[int]
    CREDIT_CHANGE_TOTAL_MINOR_FIELD_NUMBER: _ClassVar[int]
    catalog_version: int
    dry_run: bool
    adjustments: _containers.RepeatedCompositeFieldContainer[RerateAdjustment]
    corrections: _containers.RepeatedCompositeFieldContainer[RerateCorrection]
    seen: int
    unchanged: int
    skipped: int
    not_rerated: int
    delta_total_minor: int
    credit_change_total_minor: int
    def __init__(self, catalog_version: _Optional[int] = ..., dry_run: _Optional[bool] = ..., adjustments: _Optional[_Iterable[_Union[RerateAdjustment, _Mapping]]] = ..., corrections: _Optional[_Iterable[_Union[RerateCorrection, _Mapping]]] = ..., seen: _Optional[int] = ..., unchanged: _Optional[int] = ..., skipped: _Optional[int] = ..., not_rerated: _Optional[int] = ..., delta_total_minor: _Optional[int] = ..., credit_change_total_minor: _Optional[int] = ...) -> None: ...

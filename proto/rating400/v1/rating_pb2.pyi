import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from rating400.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Cdr(_message.Message):
    __slots__ = ("call_id", "caller", "number", "forwarded_to", "start_time", "ivr_answer_time", "agent_answer_time", "end_time", "hangup_cause")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    FORWARDED_TO_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    IVR_ANSWER_TIME_FIELD_NUMBER: _ClassVar[int]
    AGENT_ANSWER_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    HANGUP_CAUSE_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    caller: str
    number: str
    forwarded_to: str
    start_time: _timestamp_pb2.Timestamp
    ivr_answer_time: _timestamp_pb2.Timestamp
    agent_answer_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    hangup_cause: str
    def __init__(self, call_id: _Optional[str] = ..., caller: _Optional[str] = ..., number: _Optional[str] = ..., forwarded_to: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ivr_answer_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., agent_answer_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hangup_cause: _Optional[str] = ...) -> None: ...

class RatedCdr(_message.Message):
    __slots__ = ("call_id", "account", "package", "destination_class", "caller_region", "time_band", "billable_seconds", "billed_seconds", "units", "charge", "credit_consumed", "bundle_seconds_consumed", "overage", "balance_after", "status", "rate", "caller_class", "credit_after_minor", "bundle_left_seconds", "charge_minor", "credit_consumed_minor", "overage_minor")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_CLASS_FIELD_NUMBER: _ClassVar[int]
    CALLER_REGION_FIELD_NUMBER: _ClassVar[int]
    TIME_BAND_FIELD_NUMBER: _ClassVar[int]
    BILLABLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BILLED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    CHARGE_FIELD_NUMBER: _ClassVar[int]
    CREDIT_CONSUMED_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_SECONDS_CONSUMED_FIELD_NUMBER: _ClassVar[int]
    OVERAGE_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    CALLER_CLASS_FIELD_NUMBER: _ClassVar[int]
    CREDIT_AFTER_MINOR_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_LEFT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CHARGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CREDIT_CONSUMED_MINOR_FIELD_NUMBER: _ClassVar[int]
    OVERAGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    account: str
    package: str
    destination_class: str
    caller_region: _common_pb2.CallerRegion
    time_band: str
    billable_seconds: int
    billed_seconds: int
    units: int
    charge: int
    credit_consumed: int
    bundle_seconds_consumed: int
    overage: int
    balance_after: int
    status: str
    rate: str
    caller_class: str
    credit_after_minor: int
    bundle_left_seconds: int
    charge_minor: int
    credit_consumed_minor: int
    overage_minor: int
    def __init__(self, call_id: _Optional[str] = ..., account: _Optional[str] = ..., package: _Optional[str] = ..., destination_class: _Optional[str] = ..., caller_region: _Optional[_Union[_common_pb2.CallerRegion, _Mapping]] = ..., time_band: _Optional[str] = ..., billable_seconds: _Optional[int] = ..., billed_seconds: _Optional[int] = ..., units: _Optional[int] = ..., charge: _Optional[int] = ..., credit_consumed: _Optional[int] = ..., bundle_seconds_consumed: _Optional[int] = ..., overage: _Optional[int] = ..., balance_after: _Optional[int] = ..., status: _Optional[str] = ..., rate: _Optional[str] = ..., caller_class: _Optional[str] = ..., credit_after_minor: _Optional[int] = ..., bundle_left_seconds: _Optional[int] = ..., charge_minor: _Optional[int] = ..., credit_consumed_minor: _Optional[int] = ..., overage_minor: _Optional[int] = ...) -> None: ...

class RateCdrRequest(_message.Message):
    __slots__ = ("cdr",)
    CDR_FIELD_NUMBER: _ClassVar[int]
    cdr: Cdr
    def __init__(self, cdr: _Optional[_Union[Cdr, _Mapping]] = ...) -> None: ...

class RateCdrResponse(_message.Message):
    __slots__ = ("rated_cdr", "replayed", "catalog_version")
    RATED_CDR_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    rated_cdr: RatedCdr
    replayed: bool
    catalog_version: int
    def __init__(self, rated_cdr: _Optional[_Union[RatedCdr, _Mapping]] = ..., replayed: _Optional[bool] = ..., catalog_version: _Optional[int] = ...) -> None: ...

class CdrColumns(_message.Message):
    __slots__ = ("call_id", "caller", "number", "forwarded_to", "start_ms", "ivr_answer_ms", "agent_answer_ms", "end_ms", "hangup_cause")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    FORWARDED_TO_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    IVR_ANSWER_MS_FIELD_NUMBER: _ClassVar[int]
    AGENT_ANSWER_MS_FIELD_NUMBER: _ClassVar[int]
    END_MS_FIELD_NUMBER: _ClassVar[int]
    HANGUP_CAUSE_FIELD_NUMBER: _ClassVar[int]
    call_id: _containers.RepeatedScalarFieldContainer[str]
    caller: _containers.RepeatedScalarFieldContainer[str]
    number: _containers.RepeatedScalarFieldContainer[str]
    forwarded_to: _containers.RepeatedScalarFieldContainer[str]
    start_ms: _containers.RepeatedScalarFieldContainer[int]
    ivr_answer_ms: _containers.RepeatedScalarFieldContainer[int]
    agent_answer_ms: _containers.RepeatedScalarFieldContainer[int]
    end_ms: _containers.RepeatedScalarFieldContainer[int]
    hangup_cause: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, call_id: _Optional[_Iterable[str]] = ..., caller: _Optional[_Iterable[str]] = ..., number: _Optional[_Iterable[str]] = ..., forwarded_to: _Optional[_Iterable[str]] = ..., start_ms: _Optional[_Iterable[int]] = ..., ivr_answer_ms: _Optional[_Iterable[int]] = ..., agent_answer_ms: _Optional[_Iterable[int]] = ..., end_ms: _Optional[_Iterable[int]] = ..., hangup_cause: _Optional[_Iterable[str]] = ...) -> None: ...

class RatedCdrColumns(_message.Message):
    __slots__ = ("row", "call_id", "account", "package", "destination_class", "caller_province", "caller_city", "caller_carrier", "time_band", "billable_seconds", "billed_seconds", "units", "charge", "credit_consumed", "bundle_seconds_consumed", "overage", "balance_after", "status", "replayed", "rate", "caller_class", "credit_after_minor", "bundle_left_seconds", "credit_after_minor_set", "bundle_left_seconds_set", "charge_minor", "credit_consumed_minor", "overage_minor")
    ROW_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_CLASS_FIELD_NUMBER: _ClassVar[int]
    CALLER_PROVINCE_FIELD_NUMBER: _ClassVar[int]
    CALLER_CITY_FIELD_NUMBER: _ClassVar[int]
    CALLER_CARRIER_FIELD_NUMBER: _ClassVar[int]
    TIME_BAND_FIELD_NUMBER: _ClassVar[int]
    BILLABLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BILLED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    CHARGE_FIELD_NUMBER: _ClassVar[int]
    CREDIT_CONSUMED_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_SECONDS_CONSUMED_FIELD_NUMBER: _ClassVar[int]
    OVERAGE_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    CALLER_CLASS_FIELD_NUMBER: _ClassVar[int]
    CREDIT_AFTER_MINOR_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_LEFT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CREDIT_AFTER_MINOR_SET_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_LEFT_SECONDS_SET_FIELD_NUMBER: _ClassVar[int]
    CHARGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CREDIT_CONSUMED_MINOR_FIELD_NUMBER: _ClassVar[int]
    OVERAGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    row: _containers.RepeatedScalarFieldContainer[int]
    call_id: _containers.RepeatedScalarFieldContainer[str]
    account: _containers.RepeatedScalarFieldContainer[str]
    package: _containers.RepeatedScalarFieldContainer[str]
    destination_class: _containers.RepeatedScalarFieldContainer[str]
    caller_province: _containers.RepeatedScalarFieldContainer[str]
    caller_city: _containers.RepeatedScalarFieldContainer[str]
    caller_carrier: _containers.RepeatedScalarFieldContainer[str]
    time_band: _containers.RepeatedScalarFieldContainer[str]
    billable_seconds: _containers.RepeatedScalarFieldContainer[int]
    billed_seconds: _containers.RepeatedScalarFieldContainer[int]
    units: _containers.RepeatedScalarFieldContainer[int]
    charge: _containers.RepeatedScalarFieldContainer[int]
    credit_consumed: _containers.RepeatedScalarFieldContainer[int]
    bundle_seconds_consumed: _containers.RepeatedScalarFieldContainer[int]
    overage: _containers.RepeatedScalarFieldContainer[int]
    balance_after: _containers.RepeatedScalarFieldContainer[int]
    status: _containers.RepeatedScalarFieldContainer[str]
    replayed: _containers.RepeatedScalarFieldContainer[bool]
    rate: _containers.RepeatedScalarFieldContainer[str]
    caller_class: _containers.RepeatedScalarFieldContainer[str]
    credit_after_minor: _containers.RepeatedScalarFieldContainer[int]
    bundle_left_seconds: _containers.RepeatedScalarFieldContainer[int]
    credit_after_minor_set: _containers.RepeatedScalarFieldContainer[bool]
    bundle_left_seconds_set: _containers.RepeatedScalarFieldContainer[bool]
    charge_minor: _containers.RepeatedScalarFieldContainer[int]
    credit_consumed_minor: _containers.RepeatedScalarFieldContainer[int]
    overage_minor: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, row: _Optional[_Iterable[int]] = ..., call_id: _Optional[_Iterable[str]] = ..., account: _Optional[_Iterable[str]] = ..., package: _Optional[_Iterable[str]] = ..., destination_class: _Optional[_Iterable[str]] = ..., caller_province: _Optional[_Iterable[str]] = ..., caller_city: _Optional[_Iterable[str]] = ..., caller_carrier: _Optional[_Iterable[str]] = ..., time_band: _Optional[_Iterable[str]] = ..., billable_seconds: _Optional[_Iterable[int]] = ..., billed_seconds: _Optional[_Iterable[int]] = ..., units: _Optional[_Iterable[int]] = ..., charge: _Optional[_Iterable[int]] = ..., credit_consumed: _Optional[_Iterable[int]] = ..., bundle_seconds_consumed: _Optional[_Iterable[int]] = ..., overage: _Optional[_Iterable[int]] = ..., balance_after: _Optional[_Iterable[int]] = ..., status: _Optional[_Iterable[str]] = ..., replayed: _Optional[_Iterable[bool]] = ..., rate: _Optional[_Iterable[str]] = ..., caller_class: _Optional[_Iterable[str]] = ..., credit_after_minor: _Optional[_Iterable[int]] = ..., bundle_left_seconds: _Optional[_Iterable[int]] = ..., credit_after_minor_set: _Optional[_Iterable[bool]] = ..., bundle_left_seconds_set: _Optional[_Iterable[bool]] = ..., charge_minor: _Optional[_Iterable[int]] = ..., credit_consumed_minor: _Optional[_Iterable[int]] = ..., overage_minor: _Optional[_Iterable[int]] = ...) -> None: ...

class Reject(_message.Message):
    __slots__ = ("row", "call_id", "field", "reason", "value", "code")
    ROW_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    row: int
    call_id: str
    field: str
    reason: str
    value: str
    code: str
    def __init__(self, row: _Optional[int] = ..., call_id: _Optional[str] = ..., field: _Optional[str] = ..., reason: _Optional[str] = ..., value: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class RateCdrBatchesRequest(_message.Message):
    __slots__ = ("batch_id", "cdrs", "cdrs_arrow_ipc", "dry_run")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    CDRS_FIELD_NUMBER: _ClassVar[int]
    CDRS_ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    cdrs: CdrColumns
    cdrs_arrow_ipc: bytes
    dry_run: bool
    def __init__(self, batch_id: _Optional[int] = ..., cdrs: _Optional[_Union[CdrColumns, _Mapping]] = ..., cdrs_arrow_ipc: _Optional[bytes] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class RateCdrBatchesResponse(_message.Message):
    __slots__ = ("batch_id", "rated", "rated_arrow_ipc", "rejects", "catalog_version")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    RATED_FIELD_NUMBER: _ClassVar[int]
    RATED_ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    REJECTS_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    rated: RatedCdrColumns
    rated_arrow_ipc: bytes
    rejects: _containers.RepeatedCompositeFieldContainer[Reject]
    catalog_version: int
    def __init__(self, batch_id: _Optional[int] = ..., rated: _Optional[_Union[RatedCdrColumns, _Mapping]] = ..., rated_arrow_ipc: _Optional[bytes] = ..., rejects: _Optional[_Iterable[_Union[Reject, _Mapping]]] = ..., catalog_version: _Optional[int] = ...) -> None: ...

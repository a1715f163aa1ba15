from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExplainChargeRequest(_message.Message):
    __slots__ = ("call_id", "lang")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    LANG_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    lang: str
    def __init__(self, call_id: _Optional[str] = ..., lang: _Optional[str] = ...) -> None: ...

class ChargeStep(_message.Message):
    __slots__ = ("start_seconds", "band", "rate", "tier", "count", "increment_seconds", "price", "unit_seconds", "cost", "price_minor", "cost_minor")
    START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    INCREMENT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    UNIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    COST_MINOR_FIELD_NUMBER: _ClassVar[int]
    start_seconds: int
    band: str
    rate: str
    tier: int
    count: int
    increment_seconds: int
    price: int
    unit_seconds: int
    cost: str
    price_minor: int
    cost_minor: str
    def __init__(self, start_seconds: _Optional[int] = ..., band: _Optional[str] = ..., rate: _Optional[str] = ..., tier: _Optional[int] = ..., count: _Optional[int] = ..., increment_seconds: _Optional[int] = ..., price: _Optional[int] = ..., unit_seconds: _Optional[int] = ..., cost: _Optional[str] = ..., price_minor: _Optional[int] = ..., cost_minor: _Optional[str] = ...) -> None: ...

class ExplainChargeResponse(_message.Message):
    __slots__ = ("call_id", "text", "account", "package", "rate", "bands", "billing_start_mode", "billing_start_used", "billable_rule", "billable_seconds", "billed_seconds", "units", "steps", "exact_total", "rounding", "connect_fee", "charge", "credit_consumed", "bundle_seconds_consumed", "overage", "balance_after", "consistent", "catalog_version", "rule_index", "reservation", "connect_fee_minor", "charge_minor", "credit_consumed_minor", "overage_minor", "credit_after_minor", "bundle_left_seconds", "exact_total_minor")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    BANDS_FIELD_NUMBER: _ClassVar[int]
    BILLING_START_MODE_FIELD_NUMBER: _ClassVar[int]
    BILLING_START_USED_FIELD_NUMBER: _ClassVar[int]
    BILLABLE_RULE_FIELD_NUMBER: _ClassVar[int]
    BILLABLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BILLED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    EXACT_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ROUNDING_FIELD_NUMBER: _ClassVar[int]
    CONNECT_FEE_FIELD_NUMBER: _ClassVar[int]
    CHARGE_FIELD_NUMBER: _ClassVar[int]
    CREDIT_CONSUMED_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_SECONDS_CONSUMED_FIELD_NUMBER: _ClassVar[int]
    OVERAGE_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    CONSISTENT_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    RULE_INDEX_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    CONNECT_FEE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CHARGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CREDIT_CONSUMED_MINOR_FIELD_NUMBER: _ClassVar[int]
    OVERAGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CREDIT_AFTER_MINOR_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_LEFT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXACT_TOTAL_MINOR_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    text: str
    account: str
    package: str
    rate: str
    bands: _containers.RepeatedScalarFieldContainer[str]
    billing_start_mode: str
    billing_start_used: str
    billable_rule: str
    billable_seconds: int
    billed_seconds: int
    units: int
    steps: _containers.RepeatedCompositeFieldContainer[ChargeStep]
    exact_total: str
    rounding: str
    connect_fee: int
    charge: int
    credit_consumed: int
    bundle_seconds_consumed: int
    overage: int
    balance_after: int
    consistent: bool
    catalog_version: int
    rule_index: int
    reservation: SettledReservation
    connect_fee_minor: int
    charge_minor: int
    credit_consumed_minor: int
    overage_minor: int
    credit_after_minor: int
    bundle_left_seconds: int
    exact_total_minor: str
    def __init__(self, call_id: _Optional[str] = ..., text: _Optional[str] = ..., account: _Optional[str] = ..., package: _Optional[str] = ..., rate: _Optional[str] = ..., bands: _Optional[_Iterable[str]] = ..., billing_start_mode: _Optional[str] = ..., billing_start_used: _Optional[str] = ..., billable_rule: _Optional[str] = ..., billable_seconds: _Optional[int] = ..., billed_seconds: _Optional[int] = ..., units: _Optional[int] = ..., steps: _Optional[_Iterable[_Union[ChargeStep, _Mapping]]] = ..., exact_total: _Optional[str] = ..., rounding: _Optional[str] = ..., connect_fee: _Optional[int] = ..., charge: _Optional[int] = ..., credit_consumed: _Optional[int] = ..., bundle_seconds_consumed: _Optional[int] = ..., overage: _Optional[int] = ..., balance_after: _Optional[int] = ..., consistent: _Optional[bool] = ..., catalog_version: _Optional[int] = ..., rule_index: _Optional[int] = ..., reservation: _Optional[_Union[SettledReservation, _Mapping]] = ..., connect_fee_minor: _Optional[int] = ..., charge_minor: _Optional[int] = ..., credit_consumed_minor: _Optional[int] = ..., overage_minor: _Optional[int] = ..., credit_after_minor: _Optional[int] = ..., bundle_left_seconds: _Optional[int] = ..., exact_total_minor: _Optional[str] = ...) -> None: ...

class SettledReservation(_message.Message):
    __slots__ = ("reserved_minor", "reserved_seconds", "granted_seconds", "authorized_ms", "settled_minor", "settled_seconds", "held_seconds")
    RESERVED_MINOR_FIELD_NUMBER: _ClassVar[int]
    RESERVED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GRANTED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZED_MS_FIELD_NUMBER: _ClassVar[int]
    SETTLED_MINOR_FIELD_NUMBER: _ClassVar[int]
    SETTLED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HELD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    reserved_minor: int
    reserved_seconds: int
    granted_seconds: int
    authorized_ms: int
    settled_minor: int
    settled_seconds: int
    held_seconds: int
    def __init__(self, reserved_minor: _Optional[int] = ..., reserved_seconds: _Optional[int] = ..., granted_seconds: _Optional[int] = ..., authorized_ms: _Optional[int] = ..., settled_minor: _Optional[int] = ..., settled_seconds: _Optional[int] = ..., held_seconds: _Optional[int] = ...) -> None: ...

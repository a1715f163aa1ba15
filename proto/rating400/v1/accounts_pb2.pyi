from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OperationMeta(_message.Message):
    __slots__ = ("request_id", "actor", "at_ms")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    actor: str
    at_ms: int
    def __init__(self, request_id: _Optional[str] = ..., actor: _Optional[str] = ..., at_ms: _Optional[int] = ...) -> None: ...

class OpenAccountRequest(_message.Message):
    __slots__ = ("meta", "account", "company")
    META_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    account: str
    company: str
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., account: _Optional[str] = ..., company: _Optional[str] = ...) -> None: ...

class DocumentRef(_message.Message):
    __slots__ = ("kind", "reference", "at_ms")
    KIND_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    reference: str
    at_ms: int
    def __init__(self, kind: _Optional[str] = ..., reference: _Optional[str] = ..., at_ms: _Optional[int] = ...) -> None: ...

class SubmitDocumentsRequest(_message.Message):
    __slots__ = ("meta", "account", "documents")
    META_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    account: str
    documents: _containers.RepeatedCompositeFieldContainer[DocumentRef]
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., account: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[DocumentRef, _Mapping]]] = ...) -> None: ...

class ReviewRealNameRequest(_message.Message):
    __slots__ = ("meta", "account", "approve", "note")
    META_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    account: str
    approve: bool
    note: str
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., account: _Optional[str] = ..., approve: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("meta", "account", "package", "start_ms")
    META_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    account: str
    package: str
    start_ms: int
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., account: _Optional[str] = ..., package: _Optional[str] = ..., start_ms: _Optional[int] = ...) -> None: ...

class AccountRequest(_message.Message):
    __slots__ = ("meta", "account")
    META_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    account: str
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., account: _Optional[str] = ...) -> None: ...

class ChangePackageRequest(_message.Message):
    __slots__ = ("meta", "account", "package", "effective_ms")
    META_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_MS_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    account: str
    package: str
    effective_ms: int
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., account: _Optional[str] = ..., package: _Optional[str] = ..., effective_ms: _Optional[int] = ...) -> None: ...

class AmountRequest(_message.Message):
    __slots__ = ("meta", "account", "amount_minor")
    META_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    account: str
    amount_minor: int
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., account: _Optional[str] = ..., amount_minor: _Optional[int] = ...) -> None: ...

class AdjustRequest(_message.Message):
    __slots__ = ("meta", "account", "amount_minor", "reason", "reopen")
    META_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REOPEN_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    account: str
    amount_minor: int
    reason: str
    reopen: bool
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., account: _Optional[str] = ..., amount_minor: _Optional[int] = ..., reason: _Optional[str] = ..., reopen: _Optional[bool] = ...) -> None: ...

class TransitionRequest(_message.Message):
    __slots__ = ("meta", "account", "number", "action", "reason")
    META_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    account: str
    number: str
    action: str
    reason: str
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., account: _Optional[str] = ..., number: _Optional[str] = ..., action: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SetNotificationsRequest(_message.Message):
    __slots__ = ("meta", "account", "credit_below_minor", "expiry_within_days", "webhook_url", "credit_below_days")
    META_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    CREDIT_BELOW_MINOR_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_WITHIN_DAYS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    CREDIT_BELOW_DAYS_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    account: str
    credit_below_minor: int
    expiry_within_days: int
    webhook_url: str
    credit_below_days: int
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., account: _Optional[str] = ..., credit_below_minor: _Optional[int] = ..., expiry_within_days: _Optional[int] = ..., webhook_url: _Optional[str] = ..., credit_below_days: _Optional[int] = ...) -> None: ...

class AddNumbersRequest(_message.Message):
    __slots__ = ("meta", "numbers", "grade")
    META_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    GRADE_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    numbers: _containers.RepeatedScalarFieldContainer[str]
    grade: str
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., numbers: _Optional[_Iterable[str]] = ..., grade: _Optional[str] = ...) -> None: ...

class SearchNumbersRequest(_message.Message):
    __slots__ = ("pattern", "grade", "state", "limit")
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    GRADE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    pattern: str
    grade: str
    state: str
    limit: int
    def __init__(self, pattern: _Optional[str] = ..., grade: _Optional[str] = ..., state: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class NumberOffer(_message.Message):
    __slots__ = ("number", "grade", "state", "opening_fee_minor", "monthly_rental_minor")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    GRADE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OPENING_FEE_MINOR_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_RENTAL_MINOR_FIELD_NUMBER: _ClassVar[int]
    number: str
    grade: str
    state: str
    opening_fee_minor: int
    monthly_rental_minor: int
    def __init__(self, number: _Optional[str] = ..., grade: _Optional[str] = ..., state: _Optional[str] = ..., opening_fee_minor: _Optional[int] = ..., monthly_rental_minor: _Optional[int] = ...) -> None: ...

class SearchNumbersResponse(_message.Message):
    __slots__ = ("numbers",)
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    numbers: _containers.RepeatedCompositeFieldContainer[NumberOffer]
    def __init__(self, numbers: _Optional[_Iterable[_Union[NumberOffer, _Mapping]]] = ...) -> None: ...

class LockNumberRequest(_message.Message):
    __slots__ = ("meta", "number", "account")
    META_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    number: str
    account: str
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., number: _Optional[str] = ..., account: _Optional[str] = ...) -> None: ...

class NumberRequest(_message.Message):
    __slots__ = ("meta", "number")
    META_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    number: str
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., number: _Optional[str] = ...) -> None: ...

class ActivateNumberRequest(_message.Message):
    __slots__ = ("meta", "number", "home_city", "billing_start")
    META_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    HOME_CITY_FIELD_NUMBER: _ClassVar[int]
    BILLING_START_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    number: str
    home_city: str
    billing_start: str
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., number: _Optional[str] = ..., home_city: _Optional[str] = ..., billing_start: _Optional[str] = ...) -> None: ...

class DestinationRequest(_message.Message):
    __slots__ = ("meta", "number", "destination", "proof")
    META_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    number: str
    destination: str
    proof: str
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., number: _Optional[str] = ..., destination: _Optional[str] = ..., proof: _Optional[str] = ...) -> None: ...

class SetRoutingRequest(_message.Message):
    __slots__ = ("meta", "number", "template", "plan_json")
    META_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PLAN_JSON_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    number: str
    template: str
    plan_json: str
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., number: _Optional[str] = ..., template: _Optional[str] = ..., plan_json: _Optional[str] = ...) -> None: ...

class SetCapsRequest(_message.Message):
    __slots__ = ("meta", "number", "spend_minor", "calls")
    META_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    number: str
    spend_minor: int
    calls: int
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., number: _Optional[str] = ..., spend_minor: _Optional[int] = ..., calls: _Optional[int] = ...) -> None: ...

class SweepRequest(_message.Message):
    __slots__ = ("at_ms", "actor")
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    at_ms: int
    actor: str
    def __init__(self, at_ms: _Optional[int] = ..., actor: _Optional[str] = ...) -> None: ...

class SweepResponse(_message.Message):
    __slots__ = ("applied",)
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    applied: _containers.RepeatedCompositeFieldContainer[OperationResult]
    def __init__(self, applied: _Optional[_Iterable[_Union[OperationResult, _Mapping]]] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: str
    def __init__(self, account: _Optional[str] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("account", "from_ms", "to_ms", "limit", "after_seq")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    FROM_MS_FIELD_NUMBER: _ClassVar[int]
    TO_MS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    account: str
    from_ms: int
    to_ms: int
    limit: int
    after_seq: int
    def __init__(self, account: _Optional[str] = ..., from_ms: _Optional[int] = ..., to_ms: _Optional[int] = ..., limit: _Optional[int] = ..., after_seq: _Optional[int] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AccountEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[AccountEvent, _Mapping]]] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("account", "after_seq")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    account: str
    after_seq: int
    def __init__(self, account: _Optional[str] = ..., after_seq: _Optional[int] = ...) -> None: ...

class Account(_message.Message):
    __slots__ = ("id", "row", "company", "created_ms", "status", "realname", "realname_note", "documents", "package", "package_start_ms", "period_end_ms", "opening_credit_minor", "features", "pending_package", "pending_effective_ms", "suspended_ms", "suspend_reason", "frozen_ms", "alert_credit_below_minor", "alert_expiry_days", "webhook_url", "alerts", "alert_credit_days", "billing_from_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REALNAME_FIELD_NUMBER: _ClassVar[int]
    REALNAME_NOTE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_START_MS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_MS_FIELD_NUMBER: _ClassVar[int]
    OPENING_CREDIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    PENDING_PACKAGE_FIELD_NUMBER: _ClassVar[int]
    PENDING_EFFECTIVE_MS_FIELD_NUMBER: _ClassVar[int]
    SUSPENDED_MS_FIELD_NUMBER: _ClassVar[int]
    SUSPEND_REASON_FIELD_NUMBER: _ClassVar[int]
    FROZEN_MS_FIELD_NUMBER: _ClassVar[int]
    ALERT_CREDIT_BELOW_MINOR_FIELD_NUMBER: _ClassVar[int]
    ALERT_EXPIRY_DAYS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    ALERT_CREDIT_DAYS_FIELD_NUMBER: _ClassVar[int]
    BILLING_FROM_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    row: int
    company: str
    created_ms: int
    status: str
    realname: str
    realname_note: str
    documents: _containers.RepeatedCompositeFieldContainer[DocumentRef]
    package: str
    package_start_ms: int
    period_end_ms: int
    opening_credit_minor: int
    features: _containers.RepeatedScalarFieldContainer[str]
    pending_package: str
    pending_effective_ms: int
    suspended_ms: int
    suspend_reason: str
    frozen_ms: int
    alert_credit_below_minor: int
    alert_expiry_days: int
    webhook_url: str
    alerts: _containers.RepeatedScalarFieldContainer[str]
    alert_credit_days: int
    billing_from_ms: int
    def __init__(self, id: _Optional[str] = ..., row: _Optional[int] = ..., company: _Optional[str] = ..., created_ms: _Optional[int] = ..., status: _Optional[str] = ..., realname: _Optional[str] = ..., realname_note: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[DocumentRef, _Mapping]]] = ..., package: _Optional[str] = ..., package_start_ms: _Optional[int] = ..., period_end_ms: _Optional[int] = ..., opening_credit_minor: _Optional[int] = ..., features: _Optional[_Iterable[str]] = ..., pending_package: _Optional[str] = ..., pending_effective_ms: _Optional[int] = ..., suspended_ms: _Optional[int] = ..., suspend_reason: _Optional[str] = ..., frozen_ms: _Optional[int] = ..., alert_credit_below_minor: _Optional[int] = ..., alert_expiry_days: _Optional[int] = ..., webhook_url: _Optional[str] = ..., alerts: _Optional[_Iterable[str]] = ..., alert_credit_days: _Optional[int] = ..., billing_from_ms: _Optional[int] = ...) -> None: ...

class BoundDestination(_message.Message):
    __slots__ = ("number", "bound_ms", "verified", "proof", "verified_ms")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    BOUND_MS_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_MS_FIELD_NUMBER: _ClassVar[int]
    number: str
    bound_ms: int
    verified: bool
    proof: str
    verified_ms: int
    def __init__(self, number: _Optional[str] = ..., bound_ms: _Optional[int] = ..., verified: _Optional[bool] = ..., proof: _Optional[str] = ..., verified_ms: _Optional[int] = ...) -> None: ...

class StateChange(_message.Message):
    __slots__ = ("state", "at_ms")
    STATE_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    state: str
    at_ms: int
    def __init__(self, state: _Optional[str] = ..., at_ms: _Optional[int] = ...) -> None: ...

class Number(_message.Message):
    __slots__ = ("number", "grade", "state", "since_ms", "history", "account", "billing_start", "home_city", "plan_name", "plan_json", "destinations", "cooling_until_ms", "cap_spend_minor", "cap_calls", "month_use")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    GRADE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    BILLING_START_FIELD_NUMBER: _ClassVar[int]
    HOME_CITY_FIELD_NUMBER: _ClassVar[int]
    PLAN_NAME_FIELD_NUMBER: _ClassVar[int]
    PLAN_JSON_FIELD_NUMBER: _ClassVar[int]
    DESTINATIONS_FIELD_NUMBER: _ClassVar[int]
    COOLING_UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    CAP_SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    CAP_CALLS_FIELD_NUMBER: _ClassVar[int]
    MONTH_USE_FIELD_NUMBER: _ClassVar[int]
    number: str
    grade: str
    state: str
    since_ms: int
    history: _containers.RepeatedCompositeFieldContainer[StateChange]
    account: str
    billing_start: str
    home_city: str
    plan_name: str
    plan_json: str
    destinations: _containers.RepeatedCompositeFieldContainer[BoundDestination]
    cooling_until_ms: int
    cap_spend_minor: int
    cap_calls: int
    month_use: NumberMonthUse
    def __init__(self, number: _Optional[str] = ..., grade: _Optional[str] = ..., state: _Optional[str] = ..., since_ms: _Optional[int] = ..., history: _Optional[_Iterable[_Union[StateChange, _Mapping]]] = ..., account: _Optional[str] = ..., billing_start: _Optional[str] = ..., home_city: _Optional[str] = ..., plan_name: _Optional[str] = ..., plan_json: _Optional[str] = ..., destinations: _Optional[_Iterable[_Union[BoundDestination, _Mapping]]] = ..., cooling_until_ms: _Optional[int] = ..., cap_spend_minor: _Optional[int] = ..., cap_calls: _Optional[int] = ..., month_use: _Optional[_Union[NumberMonthUse, _Mapping]] = ...) -> None: ...

class NumberMonthUse(_message.Message):
    __slots__ = ("month", "calls", "spend_minor", "open_reservations", "reserved_minor", "counted_calls", "counted_spend_minor")
    MONTH_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    OPEN_RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_MINOR_FIELD_NUMBER: _ClassVar[int]
    COUNTED_CALLS_FIELD_NUMBER: _ClassVar[int]
    COUNTED_SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    month: str
    calls: int
    spend_minor: int
    open_reservations: int
    reserved_minor: int
    counted_calls: int
    counted_spend_minor: int
    def __init__(self, month: _Optional[str] = ..., calls: _Optional[int] = ..., spend_minor: _Optional[int] = ..., open_reservations: _Optional[int] = ..., reserved_minor: _Optional[int] = ..., counted_calls: _Optional[int] = ..., counted_spend_minor: _Optional[int] = ...) -> None: ...

class Balance(_message.Message):
    __slots__ = ("account", "kind", "credit_minor", "reserved_minor", "available_minor", "credit_limit_minor", "bundle_left_seconds", "reserved_seconds", "available_seconds", "open_reservations", "package_start_ms", "package", "period_end_ms", "statements")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CREDIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    RESERVED_MINOR_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CREDIT_LIMIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_LEFT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OPEN_RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_START_MS_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_MS_FIELD_NUMBER: _ClassVar[int]
    STATEMENTS_FIELD_NUMBER: _ClassVar[int]
    account: str
    kind: str
    credit_minor: int
    reserved_minor: int
    available_minor: int
    credit_limit_minor: int
    bundle_left_seconds: int
    reserved_seconds: int
    available_seconds: int
    open_reservations: int
    package_start_ms: int
    package: str
    period_end_ms: int
    statements: StatementPosition
    def __init__(self, account: _Optional[str] = ..., kind: _Optional[str] = ..., credit_minor: _Optional[int] = ..., reserved_minor: _Optional[int] = ..., available_minor: _Optional[int] = ..., credit_limit_minor: _Optional[int] = ..., bundle_left_seconds: _Optional[int] = ..., reserved_seconds: _Optional[int] = ..., available_seconds: _Optional[int] = ..., open_reservations: _Optional[int] = ..., package_start_ms: _Optional[int] = ..., package: _Optional[str] = ..., period_end_ms: _Optional[int] = ..., statements: _Optional[_Union[StatementPosition, _Mapping]] = ...) -> None: ...

class StatementPosition(_message.Message):
    __slots__ = ("month", "unpaid_minor", "credit_minor", "payments_carried_out_minor")
    MONTH_FIELD_NUMBER: _ClassVar[int]
    UNPAID_MINOR_FIELD_NUMBER: _ClassVar[int]
    CREDIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    PAYMENTS_CARRIED_OUT_MINOR_FIELD_NUMBER: _ClassVar[int]
    month: str
    unpaid_minor: int
    credit_minor: int
    payments_carried_out_minor: int
    def __init__(self, month: _Optional[str] = ..., unpaid_minor: _Optional[int] = ..., credit_minor: _Optional[int] = ..., payments_carried_out_minor: _Optional[int] = ...) -> None: ...

class AccountView(_message.Message):
    __slots__ = ("account", "numbers", "balance")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    account: Account
    numbers: _containers.RepeatedCompositeFieldContainer[Number]
    balance: Balance
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ..., numbers: _Optional[_Iterable[_Union[Number, _Mapping]]] = ..., balance: _Optional[_Union[Balance, _Mapping]] = ...) -> None: ...

class OperationResult(_message.Message):
    __slots__ = ("request_id", "operation", "seq", "replayed", "account", "number", "balance", "detail_json")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_JSON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    operation: str
    seq: int
    replayed: bool
    account: Account
    number: Number
    balance: Balance
    detail_json: str
    def __init__(self, request_id: _Optional[str] = ..., operation: _Optional[str] = ..., seq: _Optional[int] = ..., replayed: _Optional[bool] = ..., account: _Optional[_Union[Account, _Mapping]] = ..., number: _Optional[_Union[Number, _Mapping]] = ..., balance: _Optional[_Union[Balance, _Mapping]] = ..., detail_json: _Optional[str] = ...) -> None: ...

class AccountEvent(_message.Message):
    __slots__ = ("seq", "at_ms", "recorded_ms", "actor", "operation", "request_id", "account", "number", "detail_json", "before_json", "after_json")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    RECORDED_MS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    DETAIL_JSON_FIELD_NUMBER: _ClassVar[int]
    BEFORE_JSON_FIELD_NUMBER: _ClassVar[int]
    AFTER_JSON_FIELD_NUMBER: _ClassVar[int]
    seq: int
    at_ms: int
    recorded_ms: int
    actor: str
    operation: str
    request_id: str
    account: str
    number: str
    detail_json: str
    before_json: str
    after_json: str
    def __init__(self, seq: _Optional[int] = ..., at_ms: _Optional[int] = ..., recorded_ms: _Optional[int] = ..., actor: _Optional[str] = ..., operation: _Optional[str] = ..., request_id: _Optional[str] = ..., account: _Optional[str] = ..., number: _Optional[str] = ..., detail_json: _Optional[str] = ..., before_json: _Optional[str] = ..., after_json: _Optional[str] = ...) -> None: ...

class SetBillingFromRequest(_message.Message):
    __slots__ = ("meta", "account", "billing_from_ms")
    META_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    BILLING_FROM_MS_FIELD_NUMBER: _ClassVar[int]
    meta: OperationMeta
    account: str
    billing_from_ms: int
    def __init__(self, meta: _Optional[_Union[OperationMeta, _Mapping]] = ..., account: _Optional[str] = ..., billing_from_ms: _Optional[int] = ...) -> None: ...

class ListAccountsRequest(_message.Message):
    __slots__ = ("status", "package", "after", "limit")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    status: _containers.RepeatedScalarFieldContainer[str]
    package: str
    after: str
    limit: int
    def __init__(self, status: _Optional[_Iterable[str]] = ..., package: _Optional[str] = ..., after: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class AccountSummary(_message.Message):
    __slots__ = ("id", "company", "status", "suspend_reason", "suspended_ms", "frozen_ms", "realname", "package", "package_kind", "period_end_ms", "credit_minor", "available_minor")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SUSPEND_REASON_FIELD_NUMBER: _ClassVar[int]
    SUSPENDED_MS_FIELD_NUMBER: _ClassVar[int]
    FROZEN_MS_FIELD_NUMBER: _ClassVar[int]
    REALNAME_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_KIND_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_MS_FIELD_NUMBER: _ClassVar[int]
    CREDIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    id: str
    company: str
    status: str
    suspend_reason: str
    suspended_ms: int
    frozen_ms: int
    realname: str
    package: str
    package_kind: str
    period_end_ms: int
    credit_minor: int
    available_minor: int
    def __init__(self, id: _Optional[str] = ..., company: _Optional[str] = ..., status: _Optional[str] = ..., suspend_reason: _Optional[str] = ..., suspended_ms: _Optional[int] = ..., frozen_ms: _Optional[int] = ..., realname: _Optional[str] = ..., package: _Optional[str] = ..., package_kind: _Optional[str] = ..., period_end_ms: _Optional[int] = ..., credit_minor: _Optional[int] = ..., available_minor: _Optional[int] = ...) -> None: ...

class ListAccountsResponse(_message.Message):
    __slots__ = ("accounts",)
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    accounts: _containers.RepeatedCompositeFieldContainer[AccountSummary]
    def __init__(self, accounts: _Optional[_Iterable[_Union[AccountSummary, _Mapping]]] = ...) -> None: ...

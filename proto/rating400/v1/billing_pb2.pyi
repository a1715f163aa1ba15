from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AdviseRequest(_message.Message):
    __slots__ = ("account", "from_month", "to_month")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    FROM_MONTH_FIELD_NUMBER: _ClassVar[int]
    TO_MONTH_FIELD_NUMBER: _ClassVar[int]
    account: str
    from_month: str
    to_month: str
    def __init__(self, account: _Optional[str] = ..., from_month: _Optional[str] = ..., to_month: _Optional[str] = ...) -> None: ...

class PackageAdvice(_message.Message):
    __slots__ = ("package", "name", "kind", "applicable", "unpriced_calls", "usage_minor", "fixed_minor", "total_minor", "monthly_minor", "saving_monthly_minor", "has_break_even", "break_even_calls_per_month", "rank", "current")
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    APPLICABLE_FIELD_NUMBER: _ClassVar[int]
    UNPRICED_CALLS_FIELD_NUMBER: _ClassVar[int]
    USAGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    FIXED_MINOR_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MINOR_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_MINOR_FIELD_NUMBER: _ClassVar[int]
    SAVING_MONTHLY_MINOR_FIELD_NUMBER: _ClassVar[int]
    HAS_BREAK_EVEN_FIELD_NUMBER: _ClassVar[int]
    BREAK_EVEN_CALLS_PER_MONTH_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    package: str
    name: str
    kind: str
    applicable: bool
    unpriced_calls: int
    usage_minor: int
    fixed_minor: int
    total_minor: int
    monthly_minor: int
    saving_monthly_minor: int
    has_break_even: bool
    break_even_calls_per_month: int
    rank: int
    current: bool
    def __init__(self, package: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ..., applicable: _Optional[bool] = ..., unpriced_calls: _Optional[int] = ..., usage_minor: _Optional[int] = ..., fixed_minor: _Optional[int] = ..., total_minor: _Optional[int] = ..., monthly_minor: _Optional[int] = ..., saving_monthly_minor: _Optional[int] = ..., has_break_even: _Optional[bool] = ..., break_even_calls_per_month: _Optional[int] = ..., rank: _Optional[int] = ..., current: _Optional[bool] = ...) -> None: ...

class AdviseResponse(_message.Message):
    __slots__ = ("account", "current_package", "months", "calls", "calls_per_month", "packages", "left_out_calls")
    class LeftOutCallsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PACKAGE_FIELD_NUMBER: _ClassVar[int]
    MONTHS_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    CALLS_PER_MONTH_FIELD_NUMBER: _ClassVar[int]
    PACKAGES_FIELD_NUMBER: _ClassVar[int]
    LEFT_OUT_CALLS_FIELD_NUMBER: _ClassVar[int]
    account: str
    current_package: str
    months: _containers.RepeatedScalarFieldContainer[str]
    calls: int
    calls_per_month: float
    packages: _containers.RepeatedCompositeFieldContainer[PackageAdvice]
    left_out_calls: _containers.ScalarMap[str, int]
    def __init__(self, account: _Optional[str] = ..., current_package: _Optional[str] = ..., months: _Optional[_Iterable[str]] = ..., calls: _Optional[int] = ..., calls_per_month: _Optional[float] = ..., packages: _Optional[_Iterable[_Union[PackageAdvice, _Mapping]]] = ..., left_out_calls: _Optional[_Mapping[str, int]] = ...) -> None: ...

class StatementRequest(_message.Message):
    __slots__ = ("account", "month", "lang", "include_html", "rerating_page_size", "rerating_page_token")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    LANG_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_HTML_FIELD_NUMBER: _ClassVar[int]
    RERATING_PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    RERATING_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    account: str
    month: str
    lang: str
    include_html: bool
    rerating_page_size: int
    rerating_page_token: str
    def __init__(self, account: _Optional[str] = ..., month: _Optional[str] = ..., lang: _Optional[str] = ..., include_html: _Optional[bool] = ..., rerating_page_size: _Optional[int] = ..., rerating_page_token: _Optional[str] = ...) -> None: ...

class StatementResponse(_message.Message):
    __slots__ = ("account", "company", "month", "period_start", "period_end", "package", "calls", "answered", "billed_seconds", "usage_minor", "credit_consumed_minor", "overage_minor", "minimum_topup_minor", "rental_minor", "features_minor", "opening_credit_minor", "closing_credit_minor", "amount_due_minor", "json", "html", "next_rerating_page_token", "rerating_calls", "package_credit_minor", "credit_adjustments_minor", "expired_credit_minor", "top_ups_minor", "adjustments_minor", "rerating_minor", "rerating_credit_minor", "earlier_unpaid_minor", "paid_to_earlier_minor", "paid_to_charges_minor", "amount_payable_minor", "rounding_minor", "payments_minor", "payments_carried_in_minor", "payments_carried_out_minor", "refunds_minor", "payments_reopened_minor", "outstanding_minor", "rentals", "package_label")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    BILLED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    USAGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CREDIT_CONSUMED_MINOR_FIELD_NUMBER: _ClassVar[int]
    OVERAGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_TOPUP_MINOR_FIELD_NUMBER: _ClassVar[int]
    RENTAL_MINOR_FIELD_NUMBER: _ClassVar[int]
    FEATURES_MINOR_FIELD_NUMBER: _ClassVar[int]
    OPENING_CREDIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CLOSING_CREDIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_DUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    HTML_FIELD_NUMBER: _ClassVar[int]
    NEXT_RERATING_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RERATING_CALLS_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_CREDIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CREDIT_ADJUSTMENTS_MINOR_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_CREDIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    TOP_UPS_MINOR_FIELD_NUMBER: _ClassVar[int]
    ADJUSTMENTS_MINOR_FIELD_NUMBER: _ClassVar[int]
    RERATING_MINOR_FIELD_NUMBER: _ClassVar[int]
    RERATING_CREDIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    EARLIER_UNPAID_MINOR_FIELD_NUMBER: _ClassVar[int]
    PAID_TO_EARLIER_MINOR_FIELD_NUMBER: _ClassVar[int]
    PAID_TO_CHARGES_MINOR_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_PAYABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    ROUNDING_MINOR_FIELD_NUMBER: _ClassVar[int]
    PAYMENTS_MINOR_FIELD_NUMBER: _ClassVar[int]
    PAYMENTS_CARRIED_IN_MINOR_FIELD_NUMBER: _ClassVar[int]
    PAYMENTS_CARRIED_OUT_MINOR_FIELD_NUMBER: _ClassVar[int]
    REFUNDS_MINOR_FIELD_NUMBER: _ClassVar[int]
    PAYMENTS_REOPENED_MINOR_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_MINOR_FIELD_NUMBER: _ClassVar[int]
    RENTALS_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_LABEL_FIELD_NUMBER: _ClassVar[int]
    account: str
    company: str
    month: str
    period_start: str
    period_end: str
    package: str
    calls: int
    answered: int
    billed_seconds: int
    usage_minor: int
    credit_consumed_minor: int
    overage_minor: int
    minimum_topup_minor: int
    rental_minor: int
    features_minor: int
    opening_credit_minor: int
    closing_credit_minor: int
    amount_due_minor: int
    json: str
    html: str
    next_rerating_page_token: str
    rerating_calls: int
    package_credit_minor: int
    credit_adjustments_minor: int
    expired_credit_minor: int
    top_ups_minor: int
    adjustments_minor: int
    rerating_minor: int
    rerating_credit_minor: int
    earlier_unpaid_minor: int
    paid_to_earlier_minor: int
    paid_to_charges_minor: int
    amount_payable_minor: int
    rounding_minor: int
    payments_minor: int
    payments_carried_in_minor: int
    payments_carried_out_minor: int
    refunds_minor: int
    payments_reopened_minor: int
    outstanding_minor: int
    rentals: _containers.RepeatedCompositeFieldContainer[StatementRental]
    package_label: str
    def __init__(self, account: _Optional[str] = ..., company: _Optional[str] = ..., month: _Optional[str] = ..., period_start: _Optional[str] = ..., period_end: _Optional[str] = ..., package: _Optional[str] = ..., calls: _Optional[int] = ..., answered: _Optional[int] = ..., billed_seconds: _Optional[int] = ..., usage_minor: _Optional[int] = ..., credit_consumed_minor: _Optional[int] = ..., overage_minor: _Optional[int] = ..., minimum_topup_minor: _Optional[int] = ..., rental_minor: _Optional[int] = ..., features_minor: _Optional[int] = ..., opening_credit_minor: _Optional[int] = ..., closing_credit_minor: _Optional[int] = ..., amount_due_minor: _Optional[int] = ..., json: _Optional[str] = ..., html: _Optional[str] = ..., next_rerating_page_token: _Optional[str] = ..., rerating_calls: _Optional[int] = ..., package_credit_minor: _Optional[int] = ..., credit_adjustments_minor: _Optional[int] = ..., expired_credit_minor: _Optional[int] = ..., top_ups_minor: _Optional[int] = ..., adjustments_minor: _Optional[int] = ..., rerating_minor: _Optional[int] = ..., rerating_credit_minor: _Optional[int] = ..., earlier_unpaid_minor: _Optional[int] = ..., paid_to_earlier_minor: _Optional[int] = ..., paid_to_charges_minor: _Optional[int] = ..., amount_payable_minor: _Optional[int] = ..., rounding_minor: _Optional[int] = ..., payments_minor: _Optional[int] = ..., payments_carried_in_minor: _Optional[int] = ..., payments_carried_out_minor: _Optional[int] = ..., refunds_minor: _Optional[int] = ..., payments_reopened_minor: _Optional[int] = ..., outstanding_minor: _Optional[int] = ..., rentals: _Optional[_Iterable[_Union[StatementRental, _Mapping]]] = ..., package_label: _Optional[str] = ...) -> None: ...

class StatementRental(_message.Message):
    __slots__ = ("package", "name", "from_date", "rental_minor")
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_DATE_FIELD_NUMBER: _ClassVar[int]
    RENTAL_MINOR_FIELD_NUMBER: _ClassVar[int]
    package: str
    name: str
    from_date: str
    rental_minor: int
    def __init__(self, package: _Optional[str] = ..., name: _Optional[str] = ..., from_date: _Optional[str] = ..., rental_minor: _Optional[int] = ...) -> None: ...

class ListCallersRequest(_message.Message):
    __slots__ = ("account", "caller", "tag", "awaiting_callback", "page_size", "page_token")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    AWAITING_CALLBACK_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    account: str
    caller: str
    tag: str
    awaiting_callback: bool
    page_size: int
    page_token: str
    def __init__(self, account: _Optional[str] = ..., caller: _Optional[str] = ..., tag: _Optional[str] = ..., awaiting_callback: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class CallerRecordMessage(_message.Message):
    __slots__ = ("caller", "first_ms", "last_ms", "calls", "answered", "missed", "talk_seconds", "destination", "province", "city", "carrier", "awaiting_callback", "tags", "notes")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    FIRST_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_MS_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    MISSED_FIELD_NUMBER: _ClassVar[int]
    TALK_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    PROVINCE_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    AWAITING_CALLBACK_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    caller: str
    first_ms: int
    last_ms: int
    calls: int
    answered: int
    missed: int
    talk_seconds: int
    destination: str
    province: str
    city: str
    carrier: str
    awaiting_callback: bool
    tags: _containers.RepeatedScalarFieldContainer[str]
    notes: int
    def __init__(self, caller: _Optional[str] = ..., first_ms: _Optional[int] = ..., last_ms: _Optional[int] = ..., calls: _Optional[int] = ..., answered: _Optional[int] = ..., missed: _Optional[int] = ..., talk_seconds: _Optional[int] = ..., destination: _Optional[str] = ..., province: _Optional[str] = ..., city: _Optional[str] = ..., carrier: _Optional[str] = ..., awaiting_callback: _Optional[bool] = ..., tags: _Optional[_Iterable[str]] = ..., notes: _Optional[int] = ...) -> None: ...

class UpdateCallerRequest(_message.Message):
    __slots__ = ("account", "caller", "add_tags", "remove_tags", "note", "called_back")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    ADD_TAGS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_TAGS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    CALLED_BACK_FIELD_NUMBER: _ClassVar[int]
    account: str
    caller: str
    add_tags: _containers.RepeatedScalarFieldContainer[str]
    remove_tags: _containers.RepeatedScalarFieldContainer[str]
    note: str
    called_back: bool
    def __init__(self, account: _Optional[str] = ..., caller: _Optional[str] = ..., add_tags: _Optional[_Iterable[str]] = ..., remove_tags: _Optional[_Iterable[str]] = ..., note: _Optional[str] = ..., called_back: _Optional[bool] = ...) -> None: ...

class ListCallersResponse(_message.Message):
    __slots__ = ("callers", "next_page_token")
    CALLERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    callers: _containers.RepeatedCompositeFieldContainer[CallerRecordMessage]
    next_page_token: str
    def __init__(self, callers: _Optional[_Iterable[_Union[CallerRecordMessage, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ExportCallersResponse(_message.Message):
    __slots__ = ("csv", "callers", "next_page_token")
    CSV_FIELD_NUMBER: _ClassVar[int]
    CALLERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    csv: bytes
    callers: int
    next_page_token: str
    def __init__(self, csv: _Optional[bytes] = ..., callers: _Optional[int] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ReportRequest(_message.Message):
    __slots__ = ("by", "account", "from_month", "to_month", "campaigns")
    BY_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    FROM_MONTH_FIELD_NUMBER: _ClassVar[int]
    TO_MONTH_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    by: str
    account: str
    from_month: str
    to_month: str
    campaigns: _containers.RepeatedCompositeFieldContainer[CampaignTag]
    def __init__(self, by: _Optional[str] = ..., account: _Optional[str] = ..., from_month: _Optional[str] = ..., to_month: _Optional[str] = ..., campaigns: _Optional[_Iterable[_Union[CampaignTag, _Mapping]]] = ...) -> None: ...

class CampaignTag(_message.Message):
    __slots__ = ("campaign", "number", "ivr_keys")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    IVR_KEYS_FIELD_NUMBER: _ClassVar[int]
    campaign: str
    number: str
    ivr_keys: str
    def __init__(self, campaign: _Optional[str] = ..., number: _Optional[str] = ..., ivr_keys: _Optional[str] = ...) -> None: ...

class ReportRow(_message.Message):
    __slots__ = ("key", "calls", "answered", "answer_rate", "billed_seconds", "charge_minor")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    ANSWER_RATE_FIELD_NUMBER: _ClassVar[int]
    BILLED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CHARGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    key: _containers.RepeatedScalarFieldContainer[str]
    calls: int
    answered: int
    answer_rate: float
    billed_seconds: int
    charge_minor: int
    def __init__(self, key: _Optional[_Iterable[str]] = ..., calls: _Optional[int] = ..., answered: _Optional[int] = ..., answer_rate: _Optional[float] = ..., billed_seconds: _Optional[int] = ..., charge_minor: _Optional[int] = ...) -> None: ...

class ReportResponse(_message.Message):
    __slots__ = ("key_names", "rows")
    KEY_NAMES_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    key_names: _containers.RepeatedScalarFieldContainer[str]
    rows: _containers.RepeatedCompositeFieldContainer[ReportRow]
    def __init__(self, key_names: _Optional[_Iterable[str]] = ..., rows: _Optional[_Iterable[_Union[ReportRow, _Mapping]]] = ...) -> None: ...

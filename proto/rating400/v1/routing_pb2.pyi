import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from rating400.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DenyReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DENY_REASON_UNSPECIFIED: _ClassVar[DenyReason]
    DENY_REASON_UNKNOWN_NUMBER: _ClassVar[DenyReason]
    DENY_REASON_NUMBER_NOT_ACTIVE: _ClassVar[DenyReason]
    DENY_REASON_NUMBER_SUSPENDED: _ClassVar[DenyReason]
    DENY_REASON_PENDING_VERIFICATION: _ClassVar[DenyReason]
    DENY_REASON_ACCOUNT_SUSPENDED: _ClassVar[DenyReason]
    DENY_REASON_PACKAGE_NOT_STARTED: _ClassVar[DenyReason]
    DENY_REASON_CALLER_BLOCKED: _ClassVar[DenyReason]
    DENY_REASON_REGION_BLOCKED: _ClassVar[DenyReason]
    DENY_REASON_INVALID_IVR_KEY: _ClassVar[DenyReason]
    DENY_REASON_NO_ROUTE: _ClassVar[DenyReason]
    DENY_REASON_ALL_DESTINATIONS_BUSY: _ClassVar[DenyReason]
    DENY_REASON_NO_RATE: _ClassVar[DenyReason]
    DENY_REASON_OUT_OF_CREDIT: _ClassVar[DenyReason]
    DENY_REASON_OTHER: _ClassVar[DenyReason]
    DENY_REASON_MONTHLY_SPEND_CAP: _ClassVar[DenyReason]
    DENY_REASON_MONTHLY_CALLS_CAP: _ClassVar[DenyReason]

class BillingStart(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BILLING_START_UNSPECIFIED: _ClassVar[BillingStart]
    BILLING_START_RINGING: _ClassVar[BillingStart]
    BILLING_START_IVR_ANSWER: _ClassVar[BillingStart]
    BILLING_START_AGENT_ANSWER: _ClassVar[BillingStart]

class CallEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALL_EVENT_KIND_UNSPECIFIED: _ClassVar[CallEventKind]
    CALL_EVENT_KIND_STARTED: _ClassVar[CallEventKind]
    CALL_EVENT_KIND_ANSWERED: _ClassVar[CallEventKind]
    CALL_EVENT_KIND_ENDED: _ClassVar[CallEventKind]
    CALL_EVENT_KIND_INTERIM: _ClassVar[CallEventKind]
DENY_REASON_UNSPECIFIED: DenyReason
DENY_REASON_UNKNOWN_NUMBER: DenyReason
DENY_REASON_NUMBER_NOT_ACTIVE: DenyReason
DENY_REASON_NUMBER_SUSPENDED: DenyReason
DENY_REASON_PENDING_VERIFICATION: DenyReason
DENY_REASON_ACCOUNT_SUSPENDED: DenyReason
DENY_REASON_PACKAGE_NOT_STARTED: DenyReason
DENY_REASON_CALLER_BLOCKED: DenyReason
DENY_REASON_REGION_BLOCKED: DenyReason
DENY_REASON_INVALID_IVR_KEY: DenyReason
DENY_REASON_NO_ROUTE: DenyReason
DENY_REASON_ALL_DESTINATIONS_BUSY: DenyReason
DENY_REASON_NO_RATE: DenyReason
DENY_REASON_OUT_OF_CREDIT: DenyReason
DENY_REASON_OTHER: DenyReason
DENY_REASON_MONTHLY_SPEND_CAP: DenyReason
DENY_REASON_MONTHLY_CALLS_CAP: DenyReason
BILLING_START_UNSPECIFIED: BillingStart
BILLING_START_RINGING: BillingStart
BILLING_START_IVR_ANSWER: BillingStart
BILLING_START_AGENT_ANSWER: BillingStart
CALL_EVENT_KIND_UNSPECIFIED: CallEventKind
CALL_EVENT_KIND_STARTED: CallEventKind
CALL_EVENT_KIND_ANSWERED: CallEventKind
CALL_EVENT_KIND_ENDED: CallEventKind
CALL_EVENT_KIND_INTERIM: CallEventKind

class AuthorizeRequest(_message.Message):
    __slots__ = ("call_id", "number", "caller", "ivr_keys", "at")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    IVR_KEYS_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    number: str
    caller: str
    ivr_keys: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, call_id: _Optional[str] = ..., number: _Optional[str] = ..., caller: _Optional[str] = ..., ivr_keys: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Destination(_message.Message):
    __slots__ = ("number", "ring_timeout_seconds")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    RING_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    number: str
    ring_timeout_seconds: int
    def __init__(self, number: _Optional[str] = ..., ring_timeout_seconds: _Optional[int] = ...) -> None: ...

class IvrOption(_message.Message):
    __slots__ = ("key", "label", "group", "submenu")
    KEY_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    SUBMENU_FIELD_NUMBER: _ClassVar[int]
    key: str
    label: str
    group: str
    submenu: IvrMenu
    def __init__(self, key: _Optional[str] = ..., label: _Optional[str] = ..., group: _Optional[str] = ..., submenu: _Optional[_Union[IvrMenu, _Mapping]] = ...) -> None: ...

class IvrMenu(_message.Message):
    __slots__ = ("prompt", "options")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    options: _containers.RepeatedCompositeFieldContainer[IvrOption]
    def __init__(self, prompt: _Optional[str] = ..., options: _Optional[_Iterable[_Union[IvrOption, _Mapping]]] = ...) -> None: ...

class AuthorizeResponse(_message.Message):
    __slots__ = ("allow", "deny_reason", "reason", "destinations", "ivr_menu", "billing_start", "caller_region", "max_duration_seconds", "catalog_version", "announcement", "caller_class", "route_group", "rate", "reserved_minor", "reserved_bundle_seconds", "detail")
    ALLOW_FIELD_NUMBER: _ClassVar[int]
    DENY_REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DESTINATIONS_FIELD_NUMBER: _ClassVar[int]
    IVR_MENU_FIELD_NUMBER: _ClassVar[int]
    BILLING_START_FIELD_NUMBER: _ClassVar[int]
    CALLER_REGION_FIELD_NUMBER: _ClassVar[int]
    MAX_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCEMENT_FIELD_NUMBER: _ClassVar[int]
    CALLER_CLASS_FIELD_NUMBER: _ClassVar[int]
    ROUTE_GROUP_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    RESERVED_MINOR_FIELD_NUMBER: _ClassVar[int]
    RESERVED_BUNDLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    allow: bool
    deny_reason: DenyReason
    reason: str
    destinations: _containers.RepeatedCompositeFieldContainer[Destination]
    ivr_menu: IvrMenu
    billing_start: BillingStart
    caller_region: _common_pb2.CallerRegion
    max_duration_seconds: int
    catalog_version: int
    announcement: str
    caller_class: str
    route_group: str
    rate: str
    reserved_minor: int
    reserved_bundle_seconds: int
    detail: str
    def __init__(self, allow: _Optional[bool] = ..., deny_reason: _Optional[_Union[DenyReason, str]] = ..., reason: _Optional[str] = ..., destinations: _Optional[_Iterable[_Union[Destination, _Mapping]]] = ..., ivr_menu: _Optional[_Union[IvrMenu, _Mapping]] = ..., billing_start: _Optional[_Union[BillingStart, str]] = ..., caller_region: _Optional[_Union[_common_pb2.CallerRegion, _Mapping]] = ..., max_duration_seconds: _Optional[int] = ..., catalog_version: _Optional[int] = ..., announcement: _Optional[str] = ..., caller_class: _Optional[str] = ..., route_group: _Optional[str] = ..., rate: _Optional[str] = ..., reserved_minor: _Optional[int] = ..., reserved_bundle_seconds: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class CallEventRequest(_message.Message):
    __slots__ = ("call_id", "number", "kind", "destination", "caller", "at")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    number: str
    kind: CallEventKind
    destination: str
    caller: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, call_id: _Optional[str] = ..., number: _Optional[str] = ..., kind: _Optional[_Union[CallEventKind, str]] = ..., destination: _Optional[str] = ..., caller: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CallEventResponse(_message.Message):
    __slots__ = ("catalog_version", "accepted", "max_duration_seconds")
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    MAX_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    catalog_version: int
    accepted: bool
    max_duration_seconds: int
    def __init__(self, catalog_version: _Optional[int] = ..., accepted: _Optional[bool] = ..., max_duration_seconds: _Optional[int] = ...) -> None: ...

from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class CallerRegion(_message.Message):
    __slots__ = ("province", "city", "carrier")
    PROVINCE_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    province: str
    city: str
    carrier: str
    def __init__(self, province: _Optional[str] = ..., city: _Optional[str] = ..., carrier: _Optional[str] = ...) -> None: ...

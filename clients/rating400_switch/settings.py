"""Switch settings: one TOML file, validated once when the switch starts.

Example (every key optional except ``gateways``)::

    engine = "127.0.0.1:50051"        # Rating400 gRPC address
    authorize_timeout_ms = 300        # deadline of Authorize at call setup
    event_timeout_ms = 1000           # deadline of CallEvent / RateCdr
    spool_dir = "/var/spool/kamailio/rating400"
    cdr_journal = ""                  # optional JSON-lines file of every CDR and its RateCdr answer
    ivr_keys_header = "X-IVR-Keys"    # IVR keys from this header, else the R-URI parameter ivr=
    unreachable_after_ms = 3000       # no provisional reply in this time: next destination
    cut_margin_s = 2                  # cut this long before the grant (calls.CUT_MARGIN_S)
    interim_before_s = 30             # ask for more (CallEvent interim) this long before the cut
    ivr_uri = ""                      # where calls go that still need the IVR menu ("" -> 484)
    tls_ca = ""                       # TLS to the engine: PEM of the CA that signed its certificate
    tls_cert = ""                     # mutual TLS: this switch's certificate and key (PEM; OU = roles)
    tls_key = ""
    token_file = ""                   # or a bearer token, read from this file (needs TLS)

    [[gateways]]                      # first matching prefix wins; "" matches every number
    prefix = "0571"
    uri = "sip:{number}@10.0.0.7:5060"
    [[gateways]]
    prefix = ""
    uri = "sip:{number}@carrier.example:5060"

Behind a server with identities (``--tls-client-ca`` or ``--tokens``) the
switch needs the roles ``softswitch`` (Authorize, CallEvent) and ``billing``
(RateCdr): a certificate with both OUs, or a tokens-file line
``softswitch,billing TOKEN``. Any of the four TLS keys turns TLS on (with
no ``tls_ca``, the system's roots).

The switch finds the file in ``$RATING400_SWITCH_CONFIG`` (default
``/etc/kamailio/rating400.toml``).
"""
from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from rating400_client import credentials

from .calls import CUT_MARGIN_S

DEFAULT_PATH = "/etc/kamailio/rating400.toml"
CONFIG_ENV = "RATING400_SWITCH_CONFIG"  # the settings file's path (default DEFAULT_PATH)
MAX_FILE_BYTES = 1 << 20  # the settings file and each PEM / token file it names
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _read_small(path: Path, what: str) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES (never
    /dev/zero or a FIFO: either would hang or exhaust memory at start)."""
    if "\0" in str(path):  # os.stat would raise ValueError
        raise SettingsError(f"{what}: {str(path)[:80]!r} is not a file path")
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise SettingsError(f"{what}: {path} is not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise SettingsError(f"{what}: {path} is larger than {MAX_FILE_BYTES} bytes")
        with path.open("rb") as f:
            return f.read(MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES]
    except OSError as e:
        raise SettingsError(f"{what}: cannot read {path} ({e.strerror})") from None


class SettingsError(ValueError):
    """A bad settings file: the message names the file and the key."""


@dataclass(frozen=True)
class Settings:
    """Validated switch settings (see module doc for each key and unit)."""

    engine: str = "127.0.0.1:50051"
    authorize_timeout_ms: int = 300
    event_timeout_ms: int = 1000
    spool_dir: str = "/var/spool/kamailio/rating400"
    cdr_journal: str = ""
    ivr_keys_header: str = "X-IVR-Keys"
    unreachable_after_ms: int = 3000
    cut_margin_s: int = CUT_MARGIN_S
    interim_before_s: int = 30
    ivr_uri: str = ""
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    token_file: str = ""
    gateways: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert or self.token_file)

    def credentials(self):
        """gRPC channel credentials for the engine (TLS, client certificate,
        bearer token), or None for a plaintext channel on loopback."""
        if not self.tls:
            return None
        token = _read_small(Path(self.token_file), "token_file").decode("ascii").strip() if self.token_file else None
        return credentials(ca=self.tls_ca or None, cert=self.tls_cert or None, key=self.tls_key or None,
                           token=token)

    def gateway_uri(self, number: str) -> str | None:
        """SIP URI for a destination number (the first gateway whose prefix
        it starts with), or None when no gateway serves it."""
        for prefix, uri in self.gateways:
            if number.startswith(prefix):
                return uri.replace("{number}", number)
        return None

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "Settings":
        """Read and validate; raises ``SettingsError`` naming file and key."""
        if path is None and os.environ.get(CONFIG_ENV):
            raw_env = os.environ[CONFIG_ENV]
            if _CONTROL.search(raw_env):
                raise SettingsError(f"{CONFIG_ENV}={raw_env[:80]!r}: a file path without control characters")
            path = raw_env
        path = Path(path or DEFAULT_PATH)
        data = _read_small(path, str(path))
        try:
            raw = tomllib.loads(data.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise SettingsError(f"{path}: not UTF-8 text (byte {e.start})") from None
        except tomllib.TOMLDecodeError as e:
            raise SettingsError(f"{path}: {e}") from None
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: dict, source: str = "settings") -> "Settings":
        known = {f for f in cls.__dataclass_fields__}
        for key in raw:
            if key not in known:
                raise SettingsError(f"{source}: {key}: unknown setting")
        values: dict = {}
        for key in ("engine", "spool_dir", "cdr_journal", "ivr_keys_header", "ivr_uri", "tls_ca", "tls_cert",
                    "tls_key", "token_file"):
            if key in raw:
                if not isinstance(raw[key], str) or _CONTROL.search(raw[key]):
                    raise SettingsError(f"{source}: {key}: must be a string without control characters")
                values[key] = raw[key]
        for key in ("engine", "spool_dir"):
            if key in values and not values[key].strip():
                raise SettingsError(f"{source}: {key}: must not be empty")
        for key, low, high in (("authorize_timeout_ms", 10, 10_000), ("event_timeout_ms", 10, 60_000),
                               ("unreachable_after_ms", 500, 60_000), ("cut_margin_s", 0, 10),
                               ("interim_before_s", 2, 600)):
            if key in raw:
                v = raw[key]
                if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
                    raise SettingsError(f"{source}: {key}: must be an integer in [{low}, {high}]")
                values[key] = v
        if bool(values.get("tls_cert")) != bool(values.get("tls_key")):
            raise SettingsError(f"{source}: tls_cert: tls_cert and tls_key go together")
        for key in ("tls_ca", "tls_cert", "tls_key", "token_file"):
            if values.get(key):
                content = _read_small(Path(values[key]), f"{source}: {key}")
                if key == "token_file":
                    # A bearer token travels in HTTP/2 metadata: printable ASCII, one line.
                    token = content.strip()
                    if not token or not token.isascii() or any(c < 0x21 or c > 0x7e for c in token):
                        raise SettingsError(f"{source}: token_file: {values[key]} must hold one token of "
                                            "printable ASCII characters")
                elif b"-----BEGIN " not in content:
                    raise SettingsError(f"{source}: {key}: {values[key]} is not a PEM file")
        gws = raw.get("gateways")
        if not isinstance(gws, list) or not gws:
            raise SettingsError(f"{source}: gateways: at least one [[gateways]] entry is required")
        out = []
        for i, gw in enumerate(gws):
            where = f"{source}: gateways[{i}]"
            if not isinstance(gw, dict) or set(gw) - {"prefix", "uri"}:
                raise SettingsError(f"{where}: only 'prefix' and 'uri' are allowed")
            prefix, uri = gw.get("prefix", ""), gw.get("uri")
            if not isinstance(prefix, str) or prefix and not (prefix.isascii() and prefix.isdigit()):
                raise SettingsError(f"{where}.prefix: digits or \"\"")
            if (not isinstance(uri, str) or not uri.startswith("sip:") or "{number}" not in uri
                    or _CONTROL.search(uri) or " " in uri):
                raise SettingsError(f"{where}.uri: a sip: URI containing {{number}}")
            out.append((prefix, uri))
        values["gateways"] = tuple(out)
        return cls(**values)

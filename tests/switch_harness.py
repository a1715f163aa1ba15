"""Real programs for the softswitch tests: ``rating400 serve``, Kamailio with
the project's KEMI script, SIPp user agents, all on loopback with free ports.

Used by tests/test_switch_e2e.py and benchmarks/bench_switch.py. Every
process is started in its own session and stopped by its own process group
id, never by name.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from demo_server import Server

ROOT = Path(__file__).resolve().parents[1]
KAMAILIO_DIR = ROOT / "clients" / "kamailio"
SIPP_DIR = KAMAILIO_DIR / "sipp"
APP_PYTHON3 = "/usr/lib/x86_64-linux-gnu/kamailio/modules/app_python3.so"
RATING400 = Path(sys.executable).with_name("rating400")


def missing() -> str | None:
    """Why the switch tests cannot run here, or None. Only a missing program
    is a reason: ``make install`` installs kamailio, kamailio-python3-modules
    and sip-tester."""
    if not shutil.which("kamailio"):
        return "kamailio is not installed (make install: apt-get install kamailio kamailio-python3-modules)"
    if not Path(APP_PYTHON3).exists():
        return "kamailio-python3-modules (app_python3) is not installed"
    if not shutil.which("sipp"):
        return "sipp is not installed (make install: apt-get install sip-tester)"
    return None


def free_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen | None, sig=signal.SIGTERM, wait: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


# -- catalog ---------------------------------------------------------------
E2E_PREPAID = "4009000001"  # prepaid on 6-second billing with 0.05 yuan: a granted maximum of seconds
E2E_DESK = "4009000002"  # the demo's service desk plan, agents at every hour (round robin, deterministic)


def write_catalog(directory: Path) -> Path:
    """The demo catalog plus what the switch tests need and the demo lacks:
    a prepaid account whose credit allows only a few seconds (so the cut at
    the granted maximum shows in a short test), and the service desk plan
    without its schedule (round robin at any wall-clock hour)."""
    from rating_core.demo import write_demo_catalog

    path = write_demo_catalog(directory)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["packages"]["prepaid_6s"] = {"kind": "prepaid", "name": "Prepaid on 6-second billing", "fee": 100,
                                     "period_months": 12, "rates": [{"rate": "six_six_018"}]}
    desk = copy.deepcopy(doc["routing_plans"]["service_desk"])
    desk["rules"] = [{"group": "agents"}]
    doc["routing_plans"]["desk_24h"] = desk
    doc["accounts"]["e2e_prepaid"] = {
        "name": "E2E prepaid", "package": "prepaid_6s", "package_start": "2026-01-01", "opening_credit": "0.05",
        "numbers": [{"number": E2E_PREPAID, "home_city": "Shenzhen", "billing_start": "agent_answer",
                     "routing": "hunt"}]}
    doc["accounts"]["e2e_desk"] = {
        "name": "E2E desk", "package": "payg_015", "package_start": "2026-01-01",
        "numbers": [{"number": E2E_DESK, "home_city": "Shenzhen", "billing_start": "agent_answer",
                     "routing": "desk_24h"}]}
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def make_store(root: Path) -> Path:
    """Compile and activate the test catalog with the real CLI."""
    catalog = write_catalog(root / "catalog")
    store = root / "store"
    for args in (["catalog", "compile", str(catalog), "--store", str(store)],
                 ["catalog", "activate", "1", "--store", str(store)]):
        subprocess.run([str(RATING400), *args], check=True, capture_output=True)
    return store


# -- the engine ------------------------------------------------------------
class Engine(Server):
    """``rating400_server`` on loopback (``test_service_grpc.Server``, one
    worker); ``kill()`` is kill -9 of its whole process group (a crash),
    ``start()`` again reuses the same port."""

    def __init__(self, store: Path, tmp: Path, workers: int = 1):
        super().__init__(store, tmp, workers=workers)
        self.port = 0

    def start(self) -> "Engine":
        super().start(self.port)
        self.port = self.info["port"]
        return self

    def kill(self) -> None:
        self.kill9()


# -- kamailio --------------------------------------------------------------
class Kamailio:
    """Kamailio with clients/kamailio/kamailio.cfg and the KEMI script,
    foreground (-DD -E), on a free UDP port; the switch settings (TOML) are
    written next to its logs."""

    def __init__(self, tmp: Path, engine_target: str, gateways: list[tuple[str, str]], children: int = 4,
                 kemi: Path | None = None, **settings):
        self.tmp = tmp
        self.port = free_port()
        self.spool = tmp / "spool"
        self.journal = tmp / "cdr-journal.jsonl"
        self.kemi = kemi or KAMAILIO_DIR / "rating400_kemi.py"
        self.children = children
        lines = [f'engine = "{engine_target}"', f'spool_dir = "{self.spool}"', f'cdr_journal = "{self.journal}"']
        lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
        for prefix, uri in gateways:
            lines += ["[[gateways]]", f'prefix = "{prefix}"', f'uri = "{uri}"']
        self.config = tmp / "rating400.toml"
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.proc = None

    def start(self, site_packages: str | None = None) -> "Kamailio":
        """Start and wait until it answers OPTIONS. ``site_packages``
        replaces ``$RATING400_SITE_PACKAGES`` (default: where rating400 is
        installed); raises RuntimeError with the log's tail if it exits."""
        paths = sysconfig.get_paths()
        site_dirs = dict.fromkeys([paths["purelib"], paths["platlib"]])  # where rating400 is installed
        env_names, argv = readme_command()
        values = {"RATING400_SWITCH_CONFIG": str(self.config),
                  "RATING400_SITE_PACKAGES": ":".join(site_dirs) if site_packages is None else site_packages}
        assert set(env_names) == set(values), env_names
        env = {**os.environ, **values}
        argv = [a.replace("udp:10.0.0.5:5060", f"udp:127.0.0.1:{self.port}")
                 .replace("/opt/rating400/clients/kamailio/rating400_kemi.py", str(self.kemi))
                 .replace("clients/kamailio/kamailio.cfg", str(KAMAILIO_DIR / "kamailio.cfg")) for a in argv]
        self.log_path = self.tmp / "kamailio.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            argv + ["-m", "64", "-M", "16", "-w", str(self.tmp), "-P", str(self.tmp / "kamailio.pid"),
                    "-A", f"CHILDREN={self.children}"],
            stdout=log, stderr=log, env=env, start_new_session=True)
        # Ready when it answers OPTIONS.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("kamailio exited:\n" + self.log_path.read_text()[-3000:])
            if options_ping(self.port):
                return self
        raise RuntimeError("kamailio did not answer OPTIONS:\n" + self.log_path.read_text()[-3000:])

    def stop(self) -> None:
        _stop(self.proc)

    def journal_lines(self) -> list[dict]:
        if not self.journal.exists():
            return []
        return [json.loads(line) for line in self.journal.read_text(encoding="utf-8").splitlines() if line]

    def await_journal(self, call_ids: set[str], timeout: float = 20.0) -> set[str]:
        """Wait until the CDR journal holds every call id in ``call_ids``;
        returns those still missing. Kamailio ends a dialog (and sends its
        CDR) only when both sides have answered its BYEs, which may come
        after the caller has seen its own BYE and exited."""
        deadline = time.monotonic() + timeout
        while True:
            missing = call_ids - {j["cdr"]["call_id"] for j in self.journal_lines()}
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.2)

    def log_errors(self) -> list[str]:
        text = self.log_path.read_text(errors="replace")
        return [line for line in text.splitlines() if "Traceback" in line or "Unhandled exception" in line]


def diagnostics(tmp: Path, procs: dict[str, subprocess.Popen | None]) -> str:
    """A short account of the switch run for a failed assertion (a CI log
    is often all there is of a failure seen elsewhere): which helper
    processes have exited, the spool, what the engine refused for good, the
    SIPp destinations' own complaints, and the last warnings of Kamailio and
    the engine."""
    from rating400_switch import Spool

    report = [f"exited: {sorted(n for n, p in procs.items() if p is not None and p.poll() is not None)}"]
    spool = tmp / "spool"
    if spool.exists():
        sp = Spool(spool)
        report.append(f"spool pending: {sp.pending()}; rejected: {sp.rejected()[:5]}")
    for path in sorted(tmp.glob("uas-*.out")) + [tmp / "kamailio.log", tmp / "server.log"]:
        if not path.exists():
            continue
        lines = path.read_text(errors="replace").splitlines()
        if path.suffix != ".out":
            lines = [ln for ln in lines if re.search(r"WARN|ERR|CRIT|Traceback|error", ln)]
        if lines:
            report.append(f"{path.name}: " + " | ".join(ln[-200:] for ln in lines[-12:]))
    return "\n".join(report)


def readme_command() -> tuple[list[str], list[str]]:
    """The run command of clients/kamailio/README.md ("Install and run"):
    (environment variable names it exports, kamailio argv). The tests start
    Kamailio with exactly that command, with their own addresses and paths."""
    text = (KAMAILIO_DIR / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text.split("## Install and run", 1)[1], re.S).group(1)
    block = block.replace("\\\n", " ")
    names = re.findall(r"^export (\w+)=", block, re.M)
    (line,) = [ln for ln in block.splitlines() if ln.startswith("kamailio ")]
    return names, shlex.split(line)


def options_ping(port: int, timeout: float = 0.3) -> bool:
    """Send one SIP OPTIONS to 127.0.0.1:port; True on a 200."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(timeout)
        lport = s.getsockname()[1]
        tag = time.monotonic_ns()
        msg = (f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK-ping{tag}\r\n"
               f"From: <sip:ping@127.0.0.1:{lport}>;tag={tag}\r\nTo: <sip:ping@127.0.0.1:{port}>\r\n"
               f"Call-ID: ping-{tag}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        s.sendto(msg.encode(), ("127.0.0.1", port))
        try:
            return s.recv(4096).startswith(b"SIP/2.0 200")
        except (socket.timeout, ConnectionRefusedError):
            return False


# -- SIPp ------------------------------------------------------------------
# SIPp ends its whole run when its main loop was late (> 0.5 s) 120 times or
# (> 3 s) 10 times: on a loaded test machine that is the machine, not the
# switch. The switch's own timing is what the tests assert.
NO_WATCHDOG = ["-watchdog_minor_maxtriggers", "1000000", "-watchdog_major_maxtriggers", "1000000"]


class SippUas:
    """A SIPp destination (scenario ``uas_answer`` / ``uas_busy`` /
    ``uas_silent``) tracing every message it gets."""

    def __init__(self, tmp: Path, role: str):
        self.role, self.tmp = role, tmp
        self.port = free_port()
        self.trace = tmp / f"uas-{role}.msg"
        self.proc = None

    def start(self) -> "SippUas":
        log = open(self.tmp / f"uas-{self.role}.out", "ab")
        self.proc = subprocess.Popen(
            ["sipp", "-sf", str(SIPP_DIR / f"uas_{self.role}.xml"), "-i", "127.0.0.1", "-p", str(self.port),
             "-nostdin", "-trace_msg", "-message_file", str(self.trace), "-max_recv_loops", "10000", *NO_WATCHDOG],
            stdout=log, stderr=log, cwd=self.tmp, start_new_session=True)
        return self

    @property
    def uri(self) -> str:
        return f"sip:{{number}}@127.0.0.1:{self.port}"

    def invites(self) -> list["Seen"]:
        """INVITEs received: (time, call id, R-URI user), in order."""
        return [m for m in read_trace(self.trace) if m.received and m.method == "INVITE"]

    def stop(self) -> None:
        _stop(self.proc, signal.SIGKILL)


class MuteGateway:
    """A destination that cannot be reached: a UDP port that takes packets
    and never answers (no provisional reply, so the switch's
    ``unreachable_after_ms`` timer moves on). ``call_ids()`` lists the calls
    whose INVITE came here."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self._seen: set[str] = set()

    @property
    def uri(self) -> str:
        return f"sip:{{number}}@127.0.0.1:{self.port}"

    def call_ids(self) -> set[str]:
        while True:
            try:
                data = self.sock.recv(65535).decode(errors="replace")
            except BlockingIOError:
                return set(self._seen)
            if data.startswith("INVITE"):
                m = re.search(r"^Call-ID:\s*(\S+)", data, re.M | re.I)
                if m:
                    self._seen.add(m.group(1))

    def close(self) -> None:
        self.sock.close()


@dataclass(frozen=True)
class Seen:
    at: float  # epoch seconds
    received: bool
    method: str  # request method, or "" for a response
    status: int  # response code, or 0
    user: str  # R-URI user of a request
    call_id: str
    branch: str = ""  # the top Via's branch: a retransmission repeats it, a new attempt does not


_BLOCK = re.compile(r"^-{40,} (\d{4}-\d\d-\d\d[ \t]\d\d:\d\d:\d\d\.\d+)\s*$", re.M)


def read_trace(path: Path) -> list[Seen]:
    """Parse a SIPp ``-trace_msg`` file into messages."""
    if not path.exists():
        return []
    text = path.read_text(errors="replace")
    parts = _BLOCK.split(text)
    out = []
    for stamp, body in zip(parts[1::2], parts[2::2]):
        lines = body.strip("\n").splitlines()
        if len(lines) < 3:
            continue
        received = "received" in lines[0]
        first = lines[2] if len(lines) > 2 else ""
        at = time.mktime(time.strptime(stamp.split(".")[0].replace("\t", " "), "%Y-%m-%d %H:%M:%S")) + \
            float("0." + stamp.split(".")[1])
        call_id = next((ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("call-id:")), "")
        via = next((ln for ln in lines if ln.lower().startswith(("via:", "v:"))), "")
        branch = via.split("branch=", 1)[1].split(";", 1)[0].strip() if "branch=" in via else ""
        if first.startswith("SIP/2.0"):
            out.append(Seen(at, received, "", int(first.split()[1]), "", call_id))
        else:
            method, _, rest = first.partition(" ")
            user = rest.split("sip:", 1)[-1].split("@", 1)[0] if "@" in rest else ""
            out.append(Seen(at, received, method, 0, user, call_id, branch))
    return out


@dataclass(frozen=True)
class Outcome:
    call_id: str
    caller: str
    number: str
    keys: str
    code: int


class SippUac:
    """A SIPp caller placing one call per (caller, number, ivr keys) row."""

    def __init__(self, tmp: Path, name: str, switch_port: int, rows: list[tuple[str, str, str]], *,
                 hold_ms: int = 1000, rate: int = 20, limit: int = 40, scenario: str = "uac"):
        self.tmp, self.name, self.rows = tmp, name, rows
        self.port = free_port()
        self.csv = tmp / f"uac-{name}.csv"
        self.csv.write_text("SEQUENTIAL\n" + "".join(f"{c};{n};{k}\n" for c, n, k in rows), encoding="utf-8")
        self.log = tmp / f"uac-{name}.log"
        self.args = ["sipp", f"127.0.0.1:{switch_port}", "-sf", str(SIPP_DIR / f"{scenario}.xml"),
                     "-inf", str(self.csv), "-i", "127.0.0.1", "-p", str(self.port), "-m", str(len(rows)),
                     "-r", str(rate), "-l", str(limit), "-d", str(hold_ms), "-nostdin",
                     "-trace_logs", "-log_file", str(self.log), "-timeout", "120s", "-timeout_error", *NO_WATCHDOG]
        self.proc = None

    def start(self) -> "SippUac":
        out = open(self.tmp / f"uac-{self.name}.out", "ab")
        self.proc = subprocess.Popen(self.args, stdout=out, stderr=out, cwd=self.tmp, start_new_session=True)
        return self

    def wait(self, timeout: float = 120) -> list[Outcome]:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop(self.proc, signal.SIGKILL)
            raise
        return self.outcomes()

    def run(self, timeout: float = 120) -> list[Outcome]:
        return self.start().wait(timeout)

    def outcomes(self) -> list[Outcome]:
        out = []
        if self.log.exists():
            for line in self.log.read_text().splitlines():
                f = line.split(";")
                if len(f) >= 5 and f[4].isdigit():
                    out.append(Outcome(f[0], f[1], f[2], f[3], int(f[4])))
        return out

    def cut_calls(self) -> set[str]:
        """Calls the switch hung up (uac_hold scenario)."""
        if not self.log.exists():
            return set()
        return {ln.split(";")[0] for ln in self.log.read_text().splitlines() if ln.endswith(";cut")}

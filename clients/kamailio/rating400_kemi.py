"""Kamailio KEMI routing script for Rating400 (app_python3, Kamailio 5.6).

Loaded by ``kamailio.cfg``. Kamailio's embedded Python is the system's
(Debian bookworm: /usr/bin/python3 = CPython 3.11); grpcio, the contract and
``rating400_switch`` come from where the project is installed for a CPython
of the same minor version (the project's 3.11 virtual environment):
``$RATING400_SITE_PACKAGES`` names those site-packages directories
(``:``-separated), added with ``site.addsitedir`` so their ``.pth`` files --
the editable install -- apply too.

Per call (see README.md here for the full contract):
INVITE to a 400 number -> Authorize (deadline ``authorize_timeout_ms``);
refused -> the SIP answer for the reason; engine unreachable -> 503;
allowed -> dialog + record-route, serial hunt over the destinations with each
one's ring timeout (``failure_route`` on busy / no answer / unreachable),
``started`` on each destination rung, ``answered`` on 200 OK with the dialog
timeout set to the granted maximum duration, ``ended`` and the CDR
(``RateCdr``) at hang-up, through the spool.
"""
import logging
import os
import site

import KSR  # provided by app_python3


def _site_packages(raw):
    """The directories named by ``$RATING400_SITE_PACKAGES``, each checked:
    a wrong entry is one line naming the variable and the entry (the
    imports below would otherwise fail with a traceback about grpc)."""
    dirs = [p for p in raw.split(":") if p]
    for p in dirs:
        if any(ord(c) < 32 or c == "\x7f" for c in p) or not os.path.isdir(p):
            raise ImportError("RATING400_SITE_PACKAGES: %r is not a directory (the project's site-packages)" % p[:120])
    return dirs


try:
    for _sp in _site_packages(os.environ.get("RATING400_SITE_PACKAGES", "")):
        site.addsitedir(_sp)
except ImportError as _e:
    KSR.err("rating400: %s\n" % _e)  # one line; the module does not load and Kamailio does not start
    raise

from rating400_switch import (Hunt, LiveCalls, Leg, Settings, SettingsError, caller_of, cdr_of,  # noqa: E402
                              cut_at_ms, dialog_timeout, event_op, interim_due, is_400_number, now_ms)
from rating400_switch.answers import (HUNT_EXHAUSTED_NO_ANSWER, IVR_KEYS_REQUIRED, NOT_A_400_NUMBER,  # noqa: E402
                                      answer_for_reason)
from rating400_switch.link import EngineLink, cdr_op  # noqa: E402

BILLING = {1: "ring", 2: "ivr_answer", 3: "agent_answer"}  # routing.proto BillingStart
LEG, HUNT, DONE = "$dlg_var(r4_leg)", "$dlg_var(r4_hunt)", "$dlg_var(r4_done)"
INTERIM_EVERY_S = 5


class _KsrLog(logging.Handler):
    def emit(self, record):
        text = "rating400: " + self.format(record) + "\n"
        (KSR.err if record.levelno >= logging.ERROR else
         KSR.warn if record.levelno >= logging.WARNING else KSR.info)(text)


def mod_init():
    """Called once in Kamailio's main process, before the workers fork."""
    logger = logging.getLogger("rating400_switch")
    logger.addHandler(_KsrLog())
    logger.setLevel(logging.INFO)
    try:
        settings = Settings.load()
    except SettingsError as e:
        KSR.err("rating400: %s\n" % e)  # one line naming file and key; Kamailio does not start
        return None
    return Rating400(settings)


class Rating400:
    def __init__(self, settings):
        self.settings = settings
        self.link = EngineLink(settings)  # the channel opens lazily, in each worker
        self.live = LiveCalls(settings.spool_dir)

    def child_init(self, rank):
        return 0

    # Kamailio calls these for every reply / outgoing request; nothing to do.
    def ksr_reply_route(self, msg):
        return 1

    def ksr_onsend_route(self, msg):
        return 1

    # -- requests ----------------------------------------------------------
    def ksr_request_route(self, msg):
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if KSR.siputils.has_totag() > 0:
            return self.in_dialog()
        if KSR.is_CANCEL():
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        if KSR.is_ACK():
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        if KSR.is_OPTIONS():
            KSR.sl.sl_send_reply(200, "OK")
            return 1
        if not KSR.is_INVITE():
            KSR.sl.sl_send_reply(405, "Method Not Allowed")
            return 1
        if KSR.tm.t_check_trans() == 0:
            return 1  # a retransmission, absorbed by its transaction
        return self.invite()

    def in_dialog(self):
        if KSR.rr.loose_route() > 0 or KSR.is_ACK():
            if KSR.is_ACK() and KSR.tm.t_check_trans() == 0:
                return 1
            KSR.tm.t_relay()
            return 1
        KSR.sl.sl_send_reply(404, "Not Here")
        return 1

    def invite(self):
        start = now_ms()
        number = is_400_number(KSR.pv.gete("$rU"))
        if number is None:
            return self.refuse(NOT_A_400_NUMBER)
        caller = caller_of(KSR.pv.gete("$fU"))
        keys = KSR.pv.gete("$hdr(%s)" % self.settings.ivr_keys_header) or KSR.pv.gete("$(ru{uri.param,ivr})")
        call_id = KSR.pv.gete("$ci")
        decision, answer = self.link.authorize(number, caller, keys, call_id, start)
        if answer is not None:
            return self.refuse(answer, decision)
        hunt = Hunt.of(decision)
        leg = Leg(call_id=call_id, number=number, caller=caller, start_ms=start,
                  billing_start=BILLING.get(decision.billing_start, "agent_answer"),
                  max_duration_s=int(decision.max_duration_seconds),
                  ivr_answer_ms=start if keys else 0)
        if not hunt.destinations:
            # Allowed, but the number's IVR menu must be played first.
            if self.settings.ivr_uri:
                KSR.pv.sets("$ru", self.settings.ivr_uri.replace("{number}", number))
                KSR.tm.t_relay()
                return 1
            return self.give_up(leg, IVR_KEYS_REQUIRED)
        first = self.pick(leg, hunt)
        if first is None:  # every line refused at ``started`` (caps)
            return self.give_up(leg, answer_for_reason("all_destinations_busy"))
        if leg.max_duration_s > 0:
            # An upper bound from the start; set exactly at the answer.
            KSR.pv.seti("$avp(r4_timeout)", leg.max_duration_s)
        KSR.dialog.dlg_manage()
        KSR.rr.record_route()
        KSR.tm.t_on_reply("ksr_onreply_hunt")
        while first is not None:
            if self.relay(leg, first):
                return 1
            first = self.pick(leg, first[3])
        KSR.sl.sl_reply_error()
        return 1

    def refuse(self, answer, decision=None):
        KSR.hdr.append_to_reply("X-Rating400-Reason: %s\r\n" % answer.reason)
        if decision is not None and decision.announcement:
            KSR.hdr.append_to_reply("X-Rating400-Announcement: %s\r\n" % decision.announcement)
        KSR.sl.sl_send_reply(answer.code, answer.phrase)
        return 1

    def give_up(self, leg, answer):
        """Refuse a call the engine had allowed: ``ended`` releases what it
        holds for the call (line slot, credit reservation); no CDR."""
        self.link.report(leg.call_id, [event_op(leg.call_id, leg.number, "ended", now_ms(), "", leg.caller)])
        return self.refuse(answer)

    def pick(self, leg, hunt):
        """The next destination the engine accepts (``started``, which also
        moves round-robin cursors) as (number, ring seconds, SIP URI, rest of
        the hunt), or None when none is left."""
        while True:
            dest, hunt = hunt.pop()
            if dest is None:
                return None
            number, ring_s = dest
            uri = self.settings.gateway_uri(number)
            if uri is None:
                logging.getLogger("rating400_switch").error("no gateway for %s (call %s)", number, leg.call_id)
                continue
            if self.link.started(leg.call_id, leg.number, number, leg.caller, now_ms()):
                return number, ring_s, uri, hunt

    def relay(self, leg, picked):
        """Ring ``picked`` (from ``pick``) as a new tm branch with its ring
        timeout; the dialog variables name it and what is left to try."""
        number, ring_s, uri, rest = picked
        leg = Leg(**{**leg.__dict__, "destination": number})
        KSR.pv.sets(LEG, leg.text())
        KSR.pv.sets(HUNT, rest.text())
        KSR.pv.sets("$ru", uri)
        KSR.tm.t_set_fr(ring_s * 1000, self.settings.unreachable_after_ms)
        KSR.tm.t_on_failure("ksr_failure_hunt")
        return KSR.tm.t_relay() >= 0

    # -- replies -----------------------------------------------------------
    def ksr_failure_hunt(self, msg):
        """A destination was busy, did not answer in its ring time, or could
        not be reached: try the next one."""
        if KSR.tm.t_is_canceled() > 0:
            return 1  # the caller hung up
        code = int(KSR.pv.get("$T_reply_code") or 0)
        if 200 <= code < 300:
            return 1
        leg = Leg.parse(KSR.pv.gete(LEG))
        picked = self.pick(leg, Hunt.parse(KSR.pv.gete(HUNT)))
        while picked is not None:
            if self.relay(leg, picked):
                return 1
            picked = self.pick(leg, picked[3])
        if code == 408:  # the last destination rang out
            KSR.hdr.append_to_reply("X-Rating400-Reason: no_answer\r\n")
            KSR.tm.t_reply(HUNT_EXHAUSTED_NO_ANSWER.code, HUNT_EXHAUSTED_NO_ANSWER.phrase)
        return 1

    def ksr_onreply_hunt(self, msg):
        code = int(KSR.pv.get("$rs") or 0)
        if not 200 <= code < 300 or KSR.pv.gete("$rm") != "INVITE":
            return 1
        text = KSR.pv.gete(LEG)
        if not text:
            return 1
        leg = Leg.parse(text)
        if leg.answer_ms:
            return 1  # a retransmitted 200 OK
        answered = now_ms()
        leg = Leg(**{**leg.__dict__, "answer_ms": answered})
        KSR.pv.sets(LEG, leg.text())
        limit = dialog_timeout(leg, answered, self.settings.cut_margin_s)
        if limit:
            KSR.dialog.dlg_set_timeout(limit)
            # The interim timer may extend the grant before the cut.
            self.live.put({"call_id": leg.call_id, "number": leg.number, "caller": leg.caller,
                           "h_entry": int(KSR.pv.get("$dlg(h_entry)") or 0),
                           "h_id": int(KSR.pv.get("$dlg(h_id)") or 0),
                           "billing_start_ms": leg.billing_start_ms(answered), "grant": leg.max_duration_s,
                           "cut_ms": cut_at_ms(leg, leg.max_duration_s, answered, self.settings.cut_margin_s)})
        self.link.report(leg.call_id, [event_op(leg.call_id, leg.number, "answered", answered,
                                                leg.destination, leg.caller)])
        return 1

    # -- dialog end, timer -------------------------------------------------
    def ksr_dialog_event(self, msg, evname=None):
        """dialog:end (BYE from either side, the cut when no race, see
        ``ksr_tm_event``) and dialog:failed (never answered)."""
        if evname not in ("dialog:end", "dialog:failed"):
            return 1
        return self.call_ended(evname == "dialog:failed")

    def ksr_tm_event(self, msg, evname=None):
        """tm:local-request: a request Kamailio sends itself. A BYE here is
        the dialog module ending the call: the cut at the granted maximum
        (dialog timeout with ``send_bye``) or an operator's ``dlg.end_dlg``.

        The call ends here, not in dialog:end: Kamailio 5.6 runs dialog:end
        after sending both BYEs only if the dialog is still confirmed then,
        and under load the caller's 200 OK to the first BYE, taken by another
        worker, has often deleted it already (the second BYE fails with
        "terminating non-confirmed dialogs not supported"): no dialog:end,
        so the answered call was never billed and its credit hold never
        released. This runs in the dialog's timer process before the first
        BYE leaves, whatever the replies do."""
        if evname != "tm:local-request" or KSR.pv.gete("$rm") != "BYE":
            return 1
        text = KSR.pv.gete(LEG)
        if text and not KSR.pv.gete(DONE):
            logging.getLogger("rating400_switch").info("call %s ended by the switch (BYE)", Leg.parse(text).call_id)
        return self.call_ended(False)

    def call_ended(self, failed):
        """``ended`` and the CDR for the dialog of the current message, once:
        the dialog variable ``r4_done`` marks a call already reported (a cut
        is seen at its first BYE, then maybe again as dialog:end)."""
        text = KSR.pv.gete(LEG)
        if not text or KSR.pv.gete(DONE):
            return 1
        KSR.pv.sets(DONE, "1")
        leg = Leg.parse(text)
        ended = now_ms()
        self.live.drop(leg.call_id)
        cause = "no_answer" if failed or not leg.answer_ms else "normal_clearing"
        self.link.report(leg.call_id, [
            event_op(leg.call_id, leg.number, "ended", ended, leg.destination, leg.caller),
            cdr_op(cdr_of(leg, ended, cause)),
        ])
        return 1

    def ksr_spool_timer(self, msg, evname=None):
        """Every second (rtimer): send what the spool holds, and ask the
        engine to extend live calls whose cut is near (``interim``)."""
        self.link.flush()
        self.extend_live_calls()
        return 1

    def extend_live_calls(self):
        now = now_ms()
        margin = self.settings.cut_margin_s
        for rec in self.live.records():
            if rec["cut_ms"] + 3_600_000 < now:
                self.live.drop(rec["call_id"])  # its end was missed; long past its cut
                continue
            # Asked again every INTERIM_EVERY_S while the cut is near: a
            # top-up during the call can still extend it.
            if (not interim_due(rec["cut_ms"], now, self.settings.interim_before_s)
                    or now - rec.get("asked_ms", 0) < INTERIM_EVERY_S * 1000):
                continue
            rec["asked_ms"] = now
            grant = self.link.interim(rec["call_id"], rec["number"], rec["caller"], now)
            if grant and grant > rec["grant"]:
                cut = rec["billing_start_ms"] + max(1, grant - margin) * 1000
                if KSR.dialog.dlg_set_timeout_id(max(1, (cut - now + 999) // 1000),
                                                 rec["h_entry"], rec["h_id"]) < 0:
                    self.live.drop(rec["call_id"])  # the dialog is gone
                    continue
                rec.update(grant=grant, cut_ms=cut)
            self.live.put(rec)

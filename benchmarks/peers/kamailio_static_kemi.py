"""Peer for the call-setup latency benchmark: the same Kamailio, modules and
per-call work as clients/kamailio/rating400_kemi.py (dialog, record-route,
one stateful tm branch) without the engine: every INVITE goes straight to
``$RATING400_STATIC_GATEWAY`` (host:port) with the dialled number kept.
The difference between the two is what asking the engine costs."""
import os

import KSR

GATEWAY = os.environ.get("RATING400_STATIC_GATEWAY", "127.0.0.1:5080")


def mod_init():
    return Static()


class Static:
    def child_init(self, rank):
        return 0

    def ksr_reply_route(self, msg):
        return 1

    def ksr_onsend_route(self, msg):
        return 1

    def ksr_dialog_event(self, msg, evname=None):
        return 1

    def ksr_spool_timer(self, msg, evname=None):
        return 1

    def ksr_request_route(self, msg):
        if KSR.siputils.has_totag() > 0:
            if KSR.rr.loose_route() > 0 or KSR.is_ACK():
                if KSR.is_ACK() and KSR.tm.t_check_trans() == 0:
                    return 1
                KSR.tm.t_relay()
            return 1
        if KSR.is_CANCEL() or KSR.is_ACK():
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        if KSR.is_OPTIONS():
            KSR.sl.sl_send_reply(200, "OK")
            return 1
        if KSR.tm.t_check_trans() == 0:
            return 1
        KSR.dialog.dlg_manage()
        KSR.rr.record_route()
        KSR.pv.sets("$ru", "sip:%s@%s" % (KSR.pv.gete("$rU"), GATEWAY))
        KSR.tm.t_relay()
        return 1

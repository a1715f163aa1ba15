"""Switch side of the Rating400 softswitch integration (import name ``rating400_switch``).

The logic a SIP switch needs around the engine, apart from any switch so it
is unit-testable without one: which SIP answer fits a refusal
(:mod:`.answers`), the hunt list carried in dialog variables and the dialog
timeout for the granted maximum duration (:mod:`.calls`), the per-process
gRPC link with deadlines that fails closed (:mod:`.link`), and the spool that
keeps post-call events and CDRs until the engine has them (:mod:`.spool`).
Settings come from one TOML file (:mod:`.settings`).

``clients/kamailio/rating400_kemi.py`` is the Kamailio KEMI script built on
it; ``clients/kamailio/README.md`` documents the contract and the recipes for
FreeSWITCH and OpenSIPS.
"""
from .answers import ENGINE_DOWN, SipAnswer, answer_for_decision, answer_for_rpc_error
from .calls import Hunt, Leg, caller_of, cdr_of, cut_at_ms, dialog_timeout, interim_due, is_400_number
from .link import EngineLink, cdr_op, event_op, now_ms
from .settings import Settings, SettingsError
from .spool import LiveCalls, Spool

__all__ = ["ENGINE_DOWN", "SipAnswer", "answer_for_decision", "answer_for_rpc_error", "Hunt", "Leg",
           "caller_of", "cdr_of", "cut_at_ms", "dialog_timeout", "interim_due", "is_400_number", "EngineLink", "cdr_op", "event_op", "now_ms", "Settings",
           "SettingsError", "Spool", "LiveCalls"]

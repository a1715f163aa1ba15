"""The edge's text rule (``cdr.FORBIDDEN_TEXT`` through ``cdr.check_characters``)
on the remaining free-text inputs: ``bill --events`` cells, the account
operations' strings (company, reasons, notes, document references), campaign
tags, and a catalog numbers.csv cell the schema refuses (shown escaped)."""
import grpc
import pytest

from rating400.v1 import accounts_pb2 as pb
from rating400.v1 import accounts_pb2_grpc
from rating_core.billing.reports import read_campaigns
from rating_core.cli import main
from rating_core.errors import InvalidInput

import test_accounts
import test_accounts_server
import test_billing
from test_accounts import T0, rid
from test_catalog import GOOD, problems

env = test_accounts.env
world = test_billing.world
server = test_accounts_server.server  # a two-worker server on loopback
_meta = test_accounts_server._meta


def test_bill_events_note_with_a_control_character_is_one_line_exit_2(world, tmp_path, capsys):
    d, _ = world
    args = ["bill", str(d / "rated.parquet"), "--store", str(d / "store"), "--out", str(tmp_path / "b.csv")]
    for note, shown in (("goodwill\x07bell", "\\x07"), ("good\u202ewill", "\\u202e")):
        (tmp_path / "e.csv").write_text(f"account,at,kind,amount,note\ntea,2026-11-05T10:00:00+08:00,top_up,1,{note}\n")
        with pytest.raises(SystemExit) as e:
            main(args + ["--events", str(tmp_path / "e.csv")])
        err = capsys.readouterr().err
        assert e.value.code == 2 and len(err.strip().splitlines()) == 1, err
        assert "e.csv row 1: note: contains a control character" in err and shown in err, err
        assert note not in err


def test_account_operations_refuse_forbidden_text_naming_the_field(env, capsys):
    ops = env
    for call, field in (
            (lambda: ops.open_account(rid(), "acme2", "深圳\u202e公司", at_ms=T0), "company"),
            (lambda: ops.submit_documents(rid(), "acme2", [("other", "doc\u200b1")], at_ms=T0),
             "documents[0][1]"),
            (lambda: ops.adjust(rid(), "acme2", 100, "good\x07will", at_ms=T0), "reason")):
        with pytest.raises(InvalidInput) as e:
            call()
        assert e.value.field == field and "contains a control character" in str(e.value), str(e.value)
    store = str(ops.store.root)
    ops.ledger.close()
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["accounts", "open", "--store", store, "--company", "深圳\u202e公司", "acme2"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "company: contains a control character" in err and "\\u202e" in err and "\u202e" not in err, err


def test_campaign_name_with_a_bidi_override_is_refused(tmp_path):
    (tmp_path / "c.csv").write_text("campaign,number,ivr_keys\nsea\u202erch ads,4001000005,\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as e:
        read_campaigns(tmp_path / "c.csv")
    assert str(e.value).startswith(f"{tmp_path / 'c.csv'} row 1: campaign: contains a control character")
    assert "\\u202e" in str(e.value) and "\u202e" not in str(e.value)


def test_catalog_numbers_cell_refused_by_the_schema_shows_the_value_escaped(tmp_path):
    p = problems(tmp_path, GOOD, numbers="number,account,status,billing_start,home_city\n"
                                         "4009990001,acme,act\u200bive,ring,Beijing\n")
    line = [x for x in p if "numbers.csv: line 2: status" in x]
    assert line and "'act\\u200bive'" in line[0] and "\u200b" not in line[0], p


def test_grpc_open_account_company_with_a_bidi_override_is_invalid_argument(server):
    with grpc.insecure_channel(f"127.0.0.1:{server['port']}") as ch:
        acc = accounts_pb2_grpc.AccountServiceStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            acc.OpenAccount(pb.OpenAccountRequest(meta=_meta("te1"), account="acme2", company="深圳\u202e公司"))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details().startswith("company: contains a control character"), e.value.details()
        assert "\\u202e" in e.value.details()


@pytest.mark.parametrize("change, record", [
    (("  acme:\n    package: p1", "  acme:\n    name: \"ACME\u202e\u7532\"\n    package: p1"), "accounts.acme.name"),
    (("  p1: {kind", "  p\u200b1: {kind"), "packages.'p\\u200b1'"),
    (("destination_classes: [mobile, landline]", "destination_classes: [mobile, \"land\u2066line\"]"),
     "destination_classes[1]"),
    (("name: t\n", "name: t\nlabels:\n  en: {mobile: \"Mo\u2028bile\"}\n"), "labels.en.mobile"),
    (("  - {name: offpeak}", "  - {name: \"off\u00adpeak\"}"), "time_bands[1].name"),
])
def test_catalog_text_with_forbidden_characters_is_refused_naming_record_and_field(tmp_path, change, record):
    p = problems(tmp_path, GOOD.replace(*change))
    found = [x for x in p if x.startswith(f"{tmp_path / 'catalog.yaml'}: {record}: contains a control character")]
    assert found, p
    assert "(line " in found[0], found
    bad = change[1][[i for i, c in enumerate(change[1]) if ord(c) > 0x7f][0]]
    assert ascii(bad)[1:-1] in found[0] and not any(bad in x for x in p), p
    assert not any(record in x and "Input should" in x for x in p), p  # said once, in the edge's words


def test_catalog_csv_cells_with_forbidden_characters_name_file_line_and_column(tmp_path):
    p = problems(tmp_path, GOOD, prefixes="prefix,class\n13,mobile\n0,land\u202eline\n",
                 numbers="number,account,status,billing_start,home_city\n4009990001,acme,active,ring,Bei\u200bjing\n")
    assert any(x.startswith(f"{tmp_path / 'prefixes.csv'}: line 3: class: contains a control character: "
                            "'land\\u202eline'") for x in p), p
    assert any(x.startswith(f"{tmp_path / 'numbers.csv'}: line 2: home_city: contains a control character: "
                            "'Bei\\u200bjing'") for x in p), p
    assert not any("\u202e" in x or "\u200b" in x for x in p), p


def test_accounts_import_refuses_a_catalog_with_a_bidi_account_name(tmp_path, capsys):
    from test_catalog import write

    store = str(tmp_path / "store")
    (tmp_path / "good").mkdir()
    with pytest.raises(SystemExit) as e:
        main(["catalog", "compile", str(write(tmp_path / "good", GOOD)), "--store", store, "--activate"])
    assert e.value.code == 0
    cat = write(tmp_path, GOOD.replace("  acme:\n    package: p1", "  acme:\n    name: \"ACME\u202e\"\n    package: p1"))
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["accounts", "import", str(cat), "--store", store])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "accounts.acme.name: contains a control character" in err, err
    assert "\\u202e" in err and "\u202e" not in err, err

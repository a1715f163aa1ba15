"""The one yuan parser (``rating_core.money.parse_yuan``) and the places
that read a person's amount through it: catalog money, `rating400 accounts`
amounts, `bill --events` amounts."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from rating_core.money import MAX_AMOUNT_MINOR, AmountTooLarge, parse_yuan


@pytest.mark.parametrize("text,minor", [("12", 120000), ("0.12", 1200), ("600", 6000000), ("1.50000", 15000),
                                        (" 3.0001 ", 30001), ("-2.5", -25000), ("0", 0), ("0.5", 5000),
                                        (0.12, 1200), (3000, 30000000)])
def test_plain_amounts(text, minor):
    assert parse_yuan(text, signed=True) == minor


@pytest.mark.parametrize("text", ["599.99999999999999999999999999999", "600.0000000000000000000000000001",
                                  "0.00001", "1.23456"])
def test_finer_than_the_minor_unit_is_refused_exactly(text):
    """Breaker: Decimal's 28-digit context rounded the first two to exactly
    600 yuan, which passed both the precision check and a 600-yuan minimum."""
    with pytest.raises(ValueError, match="finer than 1/10000 yuan"):
        parse_yuan(text)


@pytest.mark.parametrize("text", ["NaN", "sNaN", "Infinity", "-inf", "1e400", "1E+20", "1_000", "１２", "١٢", "",
                                  "1.2.3", "0x10", "+", ".5", True, "+0.15", "1.", "-0", "-0.00"])
def test_not_an_amount(text):
    with pytest.raises(ValueError):
        parse_yuan(text, signed=True)


def test_bounds_and_sign():
    assert parse_yuan("100000000000", most_minor=MAX_AMOUNT_MINOR) == MAX_AMOUNT_MINOR
    with pytest.raises(AmountTooLarge, match="too large"):
        parse_yuan("100000000000.0001", most_minor=MAX_AMOUNT_MINOR)
    with pytest.raises(AmountTooLarge, match="too large"):
        parse_yuan("9" * 5000)
    with pytest.raises(ValueError, match="negative"):
        parse_yuan("-1")


@given(st.integers(-10**18, 10**18))
def test_every_minor_amount_written_in_yuan_reads_back(minor):
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10_000)
    assert parse_yuan(f"{sign}{whole}.{frac:04d}", signed=True) == minor


def test_a_top_up_finer_than_the_minor_unit_is_refused_by_the_cli():
    import click
    from rating_core.cli_accounts import _yuan

    with pytest.raises(click.BadParameter, match="finer than 1/10000 yuan"):
        _yuan("599.99999999999999999999999999999", "YUAN")
    assert _yuan("600", "YUAN") == 6_000_000


def test_the_cli_says_its_bound_is_per_operation_only_for_an_amount_too_large():
    import click
    from rating_core.cli_accounts import _yuan

    with pytest.raises(click.BadParameter, match=r"too large \(at most 100000000000 yuan\) \(per operation\)"):
        _yuan("100000000000.0001", "YUAN")
    with pytest.raises(click.BadParameter) as e:
        _yuan("1.00001", "YUAN")
    assert "per operation" not in e.value.message


@pytest.mark.parametrize("amount", ["sNaN", "1e400", "Infinity", "1E+20", "1_000", "１２", "100000000000.0001"])
def test_events_amounts_are_a_row_error(tmp_path, amount):
    from rating_core.billing.events import read_events
    from rating_core.errors import InvalidInput

    p = tmp_path / "events.csv"
    p.write_text(f"account,at,kind,amount\nacme,2026-10-20,adjustment,{amount}\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as e:
        read_events(p)
    assert e.value.field == "amount" and "row 1" in str(e.value), e.value


RANGE = "time outside 1970-01-01 .. 2199-12-31 (UTC)"  # the edge's reason for a call's time (cdr.REASONS)


@pytest.mark.parametrize("header,row,field,said", [
    ("account,at,kind,amount", "acme,9999-12-31,adjustment,1", "at", RANGE),
    ("account,at,kind,amount", "acme,0001-01-01,adjustment,1", "at", RANGE),
    ("account,at,kind,amount", "acme,2300-01-01,adjustment,1", "at", RANGE),
    ("account,at,kind,amount,amount", "acme,2026-10-20,adjustment,1,2", "amount", "column named twice"),
])
def test_events_times_and_header_are_checked(tmp_path, header, row, field, said):
    """Breaker: an `at` of 9999-12-31 was an OverflowError, year 0001
    dropped the row silently, year 2300 made 3,280 monthly statements; a
    header naming `amount` twice used the second silently."""
    from rating_core.billing.events import read_events
    from rating_core.errors import InvalidInput

    p = tmp_path / "events.csv"
    p.write_text(f"{header}\n{row}\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as e:
        read_events(p)
    assert e.value.field == field and said in str(e.value), e.value


def test_a_gbk_events_file_says_so(tmp_path):
    from rating_core.billing.events import read_events
    from rating_core.errors import InvalidInput

    p = tmp_path / "events.csv"
    p.write_bytes("account,at,kind,amount,note\nacme,2026-10-20,adjustment,1,补差价\n".encode("gbk"))
    with pytest.raises(InvalidInput) as e:
        read_events(p)
    assert "not UTF-8 text" in str(e.value), e.value


@pytest.mark.parametrize("text", ["012", "007.10", "00", "-012", "00.5"])
def test_a_leading_zero_before_more_digits_is_refused_in_every_place_money_is_typed(tmp_path, text):
    """Breaker 2 F5: a catalog price quoted "012" (0.12 typed without its
    point) compiled as 12 yuan a minute, 926.35 yuan for calls worth 73.15,
    and ``accounts top-up X 012`` booked 12.00. An amount a person types
    never has a leading zero before more digits; it is refused, naming it,
    by the one parser: the catalog (quoted or not), the CLI and events files."""
    import click
    from rating_core.billing.events import read_events
    from rating_core.cli_accounts import _yuan
    from rating_core.errors import InvalidInput

    with pytest.raises(ValueError, match="a leading zero before more digits: write 12 or 0.12"):
        parse_yuan(text, signed=True)
    with pytest.raises(click.BadParameter, match="leading zero"):
        _yuan(text.lstrip("-"), "YUAN")
    path = tmp_path / "ev.csv"
    path.write_text(f"account,at,kind,amount,feature,note\nacme,2026-10-01,adjustment,{text},,\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="leading zero"):
        read_events(path)


def test_a_message_says_money_in_yuan_exactly_where_2_decimals_would_round():
    from rating_core.money import in_yuan

    assert [in_yuan(m) for m in (0, 50_0000, 50_0001, -100_0000, 5, 1234_5678)] == [
        "0.00 yuan", "50.00 yuan", "50.0001 yuan", "-100.00 yuan", "0.0005 yuan", "1234.5678 yuan"]


@pytest.mark.parametrize("minor,shown", [(-20, "0.00"), (-49, "0.00"), (-50, "-0.01"), (0, "0.00"), (49, "0.00"),
                                         (50, "0.01"), (-1_000_000, "-100.00")])
def test_money_in_yuan_is_never_a_negative_zero(minor, shown):
    """Newcomer N10-2 finding 8: a credit of -0.0020 yuan (a sub-fen rest
    of a payment of the payable amount) read ``"credit_yuan": "-0.00"``."""
    from rating_core.cli_accounts import with_yuan
    from rating_core.rater import yuan

    assert yuan(minor) == shown
    assert with_yuan({"credit_minor": minor})["credit_yuan"] == shown

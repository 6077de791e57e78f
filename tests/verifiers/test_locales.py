"""Locale round trips: numbers, money and percentages formatted with Babel score right through the verifiers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from deltaprompts.generators.locales import (CURRENCY_OF, LOCALES, LocaleError, format_date, format_money,
                                             format_number, format_percent, is_english)
from deltaprompts.tolerances import printed_decimals
from deltaprompts.verifiers import VerifierError, answer_class, score_answer
from deltaprompts.verifiers.numbers import delocalize, locale_marks

CENTS = (5, 99, 1234, 103500, 1234567, 100000000, 98765432)


def test_babel_prints_the_documented_forms():
    assert format_money(103500, "EUR", "de_DE") == "1.035,00\xa0€"
    assert format_money(103500, "USD", "en_US") == "$1,035.00"
    assert format_money(103500, "EUR", "fr_FR") == "1\u202f035,00\xa0€"
    assert format_money(103500, "JPY", "ja_JP") == "￥1,035"
    assert format_money(Decimal("1035.5"), "JPY", "ja_JP") == "￥1,036"  # no decimals for yen, half up
    assert format_money(103500, "EUR", "es_ES") == "1.035,00\xa0€"
    assert format_money(103500, "CNY", "zh_CN") == "¥1,035.00"
    assert format_number(1234.5, "de_DE", 2) == "1.234,50"
    assert format_percent(725, "de_DE", basis_points=True) == "7,25\xa0%"
    assert format_percent(20, "en_US") == "20%"
    assert format_date(dt.date(2021, 3, 16), "de_DE", "long") == "16. März 2021"
    assert format_date(dt.date(2021, 3, 16), "en_GB", "long") == "16 March 2021"
    assert format_date(dt.date(2021, 3, 16), "ja_JP", "long") == "2021年3月16日"
    assert format_date(dt.date(2021, 3, 16), "fr_FR", "iso") == "2021-03-16"


def test_supported_locales_and_bad_names():
    assert {"en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "ja_JP", "zh_CN"} <= set(LOCALES)
    assert set(CURRENCY_OF) == set(LOCALES)
    assert is_english("en_GB") and is_english(None) and not is_english("de_DE")
    with pytest.raises(LocaleError, match="unknown locale 'xx_YY'"):
        format_money(100, "EUR", "xx_YY")
    with pytest.raises(LocaleError, match="unknown currency"):
        format_money(100, "EURO", "de_DE")


@pytest.mark.parametrize("locale", LOCALES)
def test_money_round_trips_through_score_answer(locale):
    currency = CURRENCY_OF[locale]
    digits = 0 if currency == "JPY" else 2
    for cents in CENTS:
        units = round(cents / 100, digits)
        printed = format_money(cents, currency, locale)
        truth = f"{units:.{digits}f}"
        assert score_answer(printed, truth, "currency", locale=locale, rel_tol=0, abs_tol=0.005) == 1.0, printed
        assert score_answer(f"The total is {printed}.", truth, "currency", locale=locale, rel_tol=0,
                            abs_tol=0.005) == 1.0
        wrong = f"{units + 1:.{digits}f}"
        assert score_answer(printed, wrong, "currency", locale=locale, rel_tol=0, abs_tol=0.005) == 0.0


@pytest.mark.parametrize("locale", LOCALES)
def test_numbers_and_percentages_round_trip(locale):
    for value in (0.5, 7.25, 1035, 12345.678, 1234567.5):
        printed = format_number(value, locale)
        assert score_answer(printed, str(value), "number", locale=locale, rel_tol=0, abs_tol=1e-9) == 1.0, printed
    for bp in (5, 725, 2000, 12550):
        printed = format_percent(bp, locale, basis_points=True)
        assert score_answer(printed, f"{bp / 100}%", "percent", locale=locale, rel_tol=0, abs_tol=1e-9) == 1.0
    for n in (3, 1035, 250000):
        assert score_answer(format_number(n, locale), str(n), "count", locale=locale) == 1.0


def test_english_answers_to_a_german_question_where_unambiguous():
    de = {"locale": "de_DE", "rel_tol": 0, "abs_tol": 0.005}
    assert score_answer("1.035,00 €", "€1035.00", "currency", **de) == 1.0
    assert score_answer("€1,035.00", "€1035.00", "currency", **de) == 1.0  # both marks: English order
    assert score_answer("1035", "€1035.00", "currency", **de) == 1.0
    assert score_answer("2.5", "2.5", "number", locale="de_DE") == 1.0  # not a valid German grouping
    assert score_answer("1.035", "1035", "number", locale="de_DE") == 1.0  # both read: the locale wins
    assert score_answer("1,5", "1.5", "number", locale="de_DE") == 1.0
    assert score_answer("1,035", "1035", "number", locale="de_DE", rel_tol=0) == 0.0  # 1,035 is 1.035 in German
    # without a locale the same German text is not read as 1035
    assert score_answer("1.035,00 €", "€1035.00", "currency", rel_tol=0, abs_tol=0.005) == 0.0


def test_french_spaces_and_signs():
    assert delocalize("1 035,5", "fr_FR") == "1035.5"
    assert delocalize("-1\u202f035,50 €", "fr_FR") == "-1035.50 €"
    assert delocalize("total 1.035,00 € on 16.03.2021", "de_DE") == "total 1035.00 € on 16.03.2021"
    assert score_answer("-1\u202f035,50 €", "-1035.5", "currency", locale="fr_FR", rel_tol=0) == 1.0
    assert score_answer("3 items", "3", "count", locale="fr_FR") == 1.0


def test_answer_class_and_bad_locales():
    assert answer_class("1.035,00 €", "currency", locale="de_DE") == answer_class("€1035", "currency")
    assert locale_marks("ja_JP") is None and locale_marks("en_US") is None and locale_marks("de_CH") is None
    assert locale_marks("pt-BR") == (",", ".")
    with pytest.raises(VerifierError, match="locale 'de DE' is not a locale name"):
        score_answer("1", "1", "number", locale="de DE")


def test_printed_decimals_read_in_the_locale():
    assert printed_decimals("1.035,00\xa0€", "de_DE") == 2
    assert printed_decimals("5,43 €", "fr_FR") == 2
    assert printed_decimals("26\u202f372", "fr_FR") == 0
    assert printed_decimals("$1,035.5") == 1


def test_vendored_scorer_reads_locales():
    from deltaprompts.exports.lmms_eval import scoring_source

    ns: dict = {}
    exec(compile(scoring_source(), "deltaprompts_scoring.py", "exec"), ns)  # noqa: S102 (our own generated module)
    assert ns["score_answer"]("1.035,00 €", "€1035.00", "currency", locale="de_DE") == 1.0
    item = type("I", (), {"question": type("Q", (), {"answer": "€1035.00", "answer_type": "currency",
                                                     "options": None, "locale": "de_DE"})()})()
    assert ns["score_item_answer"](item, "1.035,00 €") == 1.0

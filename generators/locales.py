"""Locale-aware formatting for documents: money, numbers, percentages and dates via Babel (CLDR)."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel import dates as _dates
from babel import numbers as _numbers

from deltaprompts.errors import UserError

#: Locales the document families print in: each one's currency and the Faker locale for its names.
LOCALES: tuple[str, ...] = ("de_DE", "en_GB", "en_US", "es_ES", "fr_FR", "it_IT", "ja_JP", "nl_NL", "zh_CN")
CURRENCY_OF = {"en_US": "USD", "en_GB": "GBP", "de_DE": "EUR", "fr_FR": "EUR", "es_ES": "EUR", "it_IT": "EUR",
               "nl_NL": "EUR", "ja_JP": "JPY", "zh_CN": "CNY"}
FAKER_LOCALE = {loc: loc for loc in LOCALES}  # Faker ships every one of them under the same name
#: Locales whose scripts need a CJK font (the layouts' DejaVu fonts have no kana or hanzi, nor U+FFE5 ￥).
CJK_LOCALES = frozenset({"ja_JP", "zh_CN"})
#: Date styles a document may print: CLDR's short/medium/long and ISO 8601.
DATE_FORMATS: tuple[str, ...] = ("short", "medium", "long", "iso")


class LocaleError(UserError, ValueError):
    """An unknown locale or currency was asked for."""


@lru_cache(maxsize=64)
def _locale(name: str) -> Locale:
    try:
        return Locale.parse(name)
    except (UnknownLocaleError, ValueError, TypeError):
        raise LocaleError(f"unknown locale {name!r}; supported: {', '.join(LOCALES)}") from None


def is_english(locale: str | None) -> bool:
    """Whether `locale` prints numbers in English conventions and needs no Question.locale (None, en_*)."""
    return locale is None or locale.split("_")[0] == "en"


def currency_digits(currency: str) -> int:
    """How many decimals `currency` prints (2 for EUR, 0 for JPY), from CLDR."""
    return _numbers.get_currency_precision(currency)


def _units(amount: int | Decimal) -> Decimal:
    """An int is hundredths of the currency unit (cents, as the documents store money); a Decimal is units."""
    if isinstance(amount, bool) or not isinstance(amount, (int, Decimal)):
        raise TypeError(f"money amount must be int cents or a Decimal, not {type(amount).__name__}")
    return Decimal(amount) / 100 if isinstance(amount, int) else amount


def format_money(amount: int | Decimal, currency: str, locale: str) -> str:
    """Money as `locale` prints it: int cents or a Decimal of units, an ISO currency code, a locale.

    de_DE -> '1.035,00\\xa0€', en_US -> '$1,035.00', fr_FR -> '1\\u202f035,00\\xa0€', ja_JP -> '￥1,035'
    (the currency's own decimals: none for JPY, rounded half up). Babel's spaces are kept (no-break
    space, narrow no-break space). Raises LocaleError for an unknown locale or currency.
    """
    loc = _locale(locale)
    if currency not in _numbers.list_currencies():
        raise LocaleError(f"unknown currency {currency!r}; use an ISO 4217 code such as EUR")
    value = _units(amount).quantize(Decimal(1).scaleb(-currency_digits(currency)), rounding=ROUND_HALF_UP)
    return _numbers.format_currency(value, currency, locale=loc)


def format_number(value: int | float | Decimal, locale: str, decimals: int | None = None) -> str:
    """A number with `locale`'s grouping and decimal mark; `decimals` fixes the decimals (half up),
    None keeps the value's own. de_DE: 1234.5 -> '1.234,5'. Raises LocaleError for an unknown locale."""
    loc = _locale(locale)
    num = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if decimals is None:
        return _numbers.format_decimal(num, locale=loc, decimal_quantization=False)
    num = num.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return _numbers.format_decimal(num, format=pattern, locale=loc)


def format_percent(value: int | float | Decimal, locale: str, basis_points: bool = False) -> str:
    """A percentage in `locale`'s style, value in percent (7.25) or, with basis_points, in basis
    points (725): en_US '7.25%', de_DE '7,25\\xa0%'. Trailing zeros are dropped (20%, not 20.00%)."""
    loc = _locale(locale)
    pct = Decimal(value) / 100 if basis_points else Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    return _numbers.format_percent(pct / 100, locale=loc, decimal_quantization=False)


def format_date(day: dt.date, locale: str, style: str = "medium") -> str:
    """A date in `locale`'s style: 'short', 'medium', 'long', 'full' (CLDR), 'iso' (2021-03-16) or a
    CLDR pattern such as 'dd.MM.yyyy'. de_DE long: '16. März 2021'. Raises LocaleError for an unknown locale."""
    if style == "iso":
        return day.isoformat()
    return _dates.format_date(day, format=style, locale=_locale(locale))


def format_time(moment: dt.time | dt.datetime, locale: str, style: str = "short") -> str:
    """A time of day in `locale`'s style (en_US '2:05\\u202fPM', de_DE '14:05')."""
    return _dates.format_time(moment, format=style, locale=_locale(locale))


def currency_symbol(currency: str, locale: str) -> str:
    """The symbol `locale` prints for `currency` (EUR -> '€', JPY in ja_JP -> '￥')."""
    return _numbers.get_currency_symbol(currency, locale=_locale(locale))


def decimal_mark(locale: str) -> str:
    """The decimal mark of `locale` ('.' or ',')."""
    return _numbers.get_decimal_symbol(_locale(locale))


def format_unit_price(value: Decimal, currency: str, locale: str) -> str:
    """A price per unit with the decimals it has (a tariff such as 0.3124 per kWh), in `locale`'s
    money style: de_DE '0,3124\\xa0€', en_US '$0.3124'. Raises LocaleError for an unknown locale."""
    return _numbers.format_currency(value, currency, locale=_locale(locale), currency_digits=False,
                                    decimal_quantization=False)


def format_month(day: dt.date, locale: str) -> str:
    """A month and year as `locale` writes them (CLDR skeleton yMMMM): 'March 2024', 'März 2024',
    'marzo de 2024'."""
    return _dates.format_skeleton("yMMMM", day, locale=_locale(locale))

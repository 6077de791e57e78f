"""Numbers in free text: thousands separators, scientific notation, scale words, number words, currencies."""

from __future__ import annotations

import functools
import math
import re
from typing import NamedTuple


class Num(NamedTuple):
    """One number found in text: its value and whether a percent sign or word followed it."""

    value: float
    percent: bool


# Digits may carry commas; whether they are valid thousands separators is checked afterwards, so that
# "1,00" is read as the two numbers 1 and 0 rather than as 100 or silently as 1.
_NUMBER = re.compile(
    r"""
    (?<![\w.^])
    (?P<sign>[-+]?)
    (?P<digits>\d+(?:,\d+)*(?:\.\d+)?|\.\d+)
    (?:[eE](?P<exp>[-+]?\d{1,4})(?!\d))?
    (?:\s*(?P<word>hundred|thousand|million|billion|trillion)s?\b
      |(?P<abbr>k|K|M|m|B|bn|Bn|BN|mn|Mn|MM)(?![A-Za-z]))?
    (?P<pct>\s*(?:%|percent\b|per\s?cent\b|pct\b))?
    """,
    re.VERBOSE | re.ASCII,
)
# ASCII digits only: NFKC already folds full-width digits, and other scripts' digits are not numbers here.
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", re.ASCII)
_FRACTION = re.compile(r"([-+]?)(\d+)\s*/\s*(\d+)", re.ASCII)
_DIGIT = re.compile(r"\d", re.ASCII)
_WORD = re.compile(r"[a-z]+")

_SCALE_WORDS = {"hundred": 1e2, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_SCALE_ABBR = {"k": 1e3, "K": 1e3, "M": 1e6, "m": 1e6, "MM": 1e6, "mn": 1e6, "Mn": 1e6,
               "B": 1e9, "bn": 1e9, "Bn": 1e9, "BN": 1e9}
UNIT_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
TENS_WORDS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}


def _words_to_numbers(text: str) -> list[Num]:
    """Numbers written as English words: 'three', 'twenty-one', 'five hundred', 'two million'."""
    tokens = _WORD.findall(text.lower())
    found: list[Num] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in TENS_WORDS:
            value = TENS_WORDS[tok]
            if i + 1 < len(tokens) and 0 < UNIT_WORDS.get(tokens[i + 1], 0) < 10:
                value += UNIT_WORDS[tokens[i + 1]]
                i += 1
        elif tok in UNIT_WORDS:
            value = UNIT_WORDS[tok]
        else:
            i += 1
            continue
        if i + 1 < len(tokens) and tokens[i + 1].rstrip("s") in _SCALE_WORDS:
            value *= _SCALE_WORDS[tokens[i + 1].rstrip("s")]
            i += 1
        found.append(Num(float(value), i + 1 < len(tokens) and tokens[i + 1] == "percent"))
        i += 1
    return found


def find_numbers(text: str, *, money: bool = False, words: bool = True) -> list[Num]:
    """Every number in `text`, in order.

    Takes free text. Digits may use ',' as thousands separator only in valid positions
    ("1,000", "12,345.6"); anything else splits at the commas. Scientific notation ("1e3") and a
    leading sign are kept. Scale words (hundred/thousand/million/billion/trillion) multiply; the
    abbreviations k/K/M/m/MM/mn/B/bn directly after the digits multiply only when `money` is true
    (in plain numbers "300K" may be kelvin and "5m" metres). When the text has no digit at all and
    `words` is true, English number words ("three", "twenty-one") are read instead.
    Returns a list of `Num`; never raises.
    """
    if not _DIGIT.search(text):
        return _words_to_numbers(text) if words else []
    found: list[Num] = []
    for m in _NUMBER.finditer(text):
        digits = m["digits"]
        negative = m["sign"] == "-"
        if "," in digits and not _GROUPED.fullmatch(digits):
            parts = digits.split(",")
            found.extend(Num(-float(p) if negative and k == 0 else float(p), False) for k, p in enumerate(parts))
            continue
        value = float(digits.replace(",", ""))
        if m["exp"]:
            try:
                value *= 10.0 ** int(m["exp"])
            except OverflowError:
                value = math.inf if value else 0.0
        if m["word"]:
            value *= _SCALE_WORDS[m["word"].lower()]
        elif m["abbr"] and money:
            value *= _SCALE_ABBR[m["abbr"]]
        found.append(Num(-value if negative else value, m["pct"] is not None))
    return found


def parse_fraction(text: str) -> float | None:
    """The value of a text that is exactly a plain fraction such as '3/4' or '-1 / 8', else None."""
    m = _FRACTION.fullmatch(text)
    if m is None:
        return None
    num, den = float(m[2]), float(m[3])  # float, not int: int() refuses strings over 4,300 digits
    if den == 0 or math.isinf(num) and math.isinf(den):
        return None
    return -num / den if m[1] == "-" else num / den


def single_value(nums: list[Num]) -> tuple[Num | None, str]:
    """The one distinct number of `nums`; (None, 'no_number') or (None, 'ambiguous') otherwise."""
    if not nums:
        return None, "no_number"
    first = nums[0]
    for other in nums[1:]:
        if other.value != first.value:
            return None, "ambiguous"
    return Num(first.value, any(n.percent for n in nums)), ""


def close(pred: float, truth: float, rel_tol: float, abs_tol: float) -> bool:
    """Whether |pred - truth| <= max(rel_tol * |truth|, abs_tol); infinities only equal themselves."""
    if math.isinf(pred) or math.isinf(truth):
        return pred == truth
    return abs(pred - truth) <= max(rel_tol * abs(truth), abs_tol)


def format_number(value: float) -> str:
    """A canonical text for a value: integers without '.0', others with 12 significant digits."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".12g")


# Currencies. "$" and "¥" are families: a bare "$" is compatible with any dollar, "¥" with yen and yuan.
_DOLLARS = frozenset({"USD", "CAD", "AUD", "HKD", "SGD", "NZD", "TWD", "MXN"})
_FAMILIES = {"$": _DOLLARS, "¥": frozenset({"JPY", "CNY"})}
_SYMBOLS = {"US$": "USD", "C$": "CAD", "CA$": "CAD", "A$": "AUD", "AU$": "AUD", "HK$": "HKD",
            "S$": "SGD", "NZ$": "NZD", "NT$": "TWD", "R$": "BRL", "$": "$", "€": "EUR", "£": "GBP",
            "¥": "¥", "₹": "INR", "₩": "KRW", "₽": "RUB", "₺": "TRY", "₪": "ILS", "₫": "VND",
            "฿": "THB", "₱": "PHP"}
_CODES = ("USD EUR GBP JPY CNY RMB INR CAD AUD CHF HKD SGD NZD KRW BRL MXN RUB ZAR SEK NOK DKK "
          "TRY PLN TWD THB PHP VND ILS").split()
_WORDS = {"dollar": "$", "euro": "EUR", "pound": "GBP", "sterling": "GBP", "yen": "JPY", "yuan": "CNY",
          "renminbi": "CNY", "rmb": "CNY", "rupee": "INR"}
_CURRENCY = re.compile(
    "(?P<sym>" + "|".join(re.escape(s) for s in sorted(_SYMBOLS, key=len, reverse=True)) + ")"
    r"|\b(?P<code>" + "|".join(_CODES) + r")\b"
    r"|\b(?P<word>(?i:" + "|".join(_WORDS) + r"))s?\b"
)


def currencies_compatible(a: str, b: str) -> bool:
    """Whether two currency codes (or the family marks '$', '¥') can name the same currency."""
    if a == b:
        return True
    return b in _FAMILIES.get(a, ()) or a in _FAMILIES.get(b, ())


def split_currency(text: str) -> tuple[set[str], str]:
    """The currencies named in `text` (ISO codes, or '$'/'¥' for a bare symbol) and the text without them.

    A symbol is removed outright so that "-$5" keeps its sign; codes and words become a space.
    """
    found: set[str] = set()

    def _strip(m: re.Match[str]) -> str:
        if m["sym"]:
            found.add(_SYMBOLS[m["sym"]])
            return ""
        found.add("CNY" if m["code"] == "RMB" else m["code"] or _WORDS[m["word"].lower()])
        return " "

    return found, _CURRENCY.sub(_strip, text)


# Locales. A question printed in a locale (Question.locale, e.g. de_DE) is answered in its number
# conventions: "1.035,00" is 1035 there. Language -> (decimal mark, thousands marks after NFKC, which
# turns the no-break and narrow no-break spaces Babel prints into plain spaces). Languages not
# listed write numbers in English conventions (en, ja, zh, ko, ...): nothing to convert.
_LOCALE_MARKS = {
    **dict.fromkeys(("de", "es", "it", "nl", "pt", "da", "id", "tr", "el", "ro", "hr", "sl"), (",", ".")),
    **dict.fromkeys(("fr", "ru", "pl", "sv", "nb", "no", "fi", "cs", "sk", "uk", "hu", "bg", "lt", "lv", "et"),
                    (",", " ")),
}
_POINT_LOCALES = frozenset({"de_CH", "fr_CH", "it_CH", "de_LI", "es_MX", "es_US"})
_LOCALE_NAME = re.compile(r"[a-z]{2,3}(?:[_-][A-Za-z]{2,4})?(?:[_-][A-Z]{2}|[_-]\d{3})?")
_NUMBER_SPACES = " \u00a0\u202f\u2009"


def locale_marks(locale: str | None) -> tuple[str, str] | None:
    """(decimal mark, thousands mark) of a decimal-comma locale such as de_DE (',', '.') or fr_FR
    (',', ' '); None for English conventions (None, en_US, ja_JP, de_CH, ...).
    Raises ValueError for a text that is not a locale name (de_DE, fr, pt-BR)."""
    if locale is None:
        return None
    if not isinstance(locale, str) or not _LOCALE_NAME.fullmatch(locale):
        raise ValueError(f"locale {locale!r} is not a locale name such as de_DE or fr_FR")
    if locale.replace("-", "_") in _POINT_LOCALES:
        return None
    return _LOCALE_MARKS.get(locale.split("_")[0].split("-")[0])


@functools.lru_cache(maxsize=32)
def _locale_patterns(decimal: str, group: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    g = "[" + re.escape(_NUMBER_SPACES) + "]" if group == " " else re.escape(group)
    d = re.escape(decimal)
    grouped = rf"\d{{1,3}}(?:{g}\d{{3}})+(?:{d}\d+)?(?!\d)"
    token = re.compile(rf"(?<![\w.,])(?:{grouped}|\d+(?:[.,]\d+)*)", re.ASCII)
    local = re.compile(rf"{grouped}|\d+(?:{d}\d+)?", re.ASCII)
    return token, local


def delocalize(text: str, locale: str | None) -> str:
    """`text` with the numbers written in `locale`'s conventions rewritten in English ones, for
    find_numbers: de_DE '1.035,00 €' -> '1035.00 €', fr_FR '1 035,5' -> '1035.5'.

    A number that is not valid in the locale but valid in English conventions ('1,035.00', '2.5'
    for de_DE) is left as it is, so an English-style answer still reads right where that is
    unambiguous; where both read ('1.035' in de_DE), the locale wins. Raises ValueError for a
    malformed locale name.
    """
    marks = locale_marks(locale)
    if marks is None or not _DIGIT.search(text):
        return text
    decimal, group = marks
    token, local = _locale_patterns(decimal, group)

    def _rewrite(m: re.Match[str]) -> str:
        s = m.group()
        if not local.fullmatch(s):
            return s
        whole, _, frac = s.partition(decimal)
        whole = re.sub("[" + re.escape(_NUMBER_SPACES + group) + "]", "", whole)
        return f"{whole}.{frac}" if frac else whole

    return token.sub(_rewrite, text)

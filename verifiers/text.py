"""Word-level answer rules: normalised strings, yes/no, and multiple-choice letters."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from deltaprompts.verifiers.numbers import TENS_WORDS, UNIT_WORDS

_NON_WORD = re.compile(r"[\W_]+")
_ARTICLES = frozenset({"a", "an", "the"})
_DIGIT_WORDS = {w: str(v) for w, v in {**UNIT_WORDS, **TENS_WORDS}.items()}

_YES = frozenset({"yes", "y", "true", "correct", "yeah", "yep"})
_NO = frozenset({"no", "n", "false", "incorrect", "nope"})

# Letter forms, tried on the whole answer: "B", "(B)", "B.", "B)", "B:", "[B]", optionally followed by text.
_LEAD_LETTER = re.compile(r"[(\[]?([A-Za-z])(?:[)\]]|[.:)](?=\s|$)|$)\s*(.*)", re.DOTALL)
# Letter forms that are unambiguous anywhere in a sentence: "(B)", "option B", "choice (b)".
_INNER_LETTER = re.compile(r"\(([A-Za-z])\)|\b(?:option|choice|letter)\s*\(?([A-Za-z])\b\)?", re.IGNORECASE)


def _strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def normalize_string(text: str) -> str:
    """Normalise free text for exact comparison.

    Takes any text; returns it casefolded, without accents, with punctuation as spaces, the articles
    a/an/the dropped, number words 0-99 written as digits ("twenty-one" -> "21"), single-spaced.
    """
    text = text.casefold()
    if not text.isascii():
        text = _strip_accents(text)
    tokens = [t for t in _NON_WORD.sub(" ", text).split() if t not in _ARTICLES]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in TENS_WORDS and i + 1 < len(tokens) and 0 < UNIT_WORDS.get(tokens[i + 1], 0) < 10:
            out.append(str(TENS_WORDS[tok] + UNIT_WORDS[tokens[i + 1]]))
            i += 2
            continue
        out.append(_DIGIT_WORDS.get(tok, tok))
        i += 1
    return " ".join(out)


def synonym_map(synonyms: Mapping[str, list[str]] | None) -> dict[str, str]:
    """Map every normalised synonym (and each key itself) to its normalised key."""
    if not synonyms:
        return {}
    table: dict[str, str] = {}
    for key, alternatives in synonyms.items():
        canon = normalize_string(key)
        table[canon] = canon
        for alt in alternatives:
            table[normalize_string(alt)] = canon
    return table


def parse_yes_no(text: str) -> tuple[str | None, str]:
    """Read a yes/no answer.

    The first word decides when it is one of yes/y/true/correct/yeah/yep or no/n/false/incorrect/nope;
    otherwise the answer must contain the word "yes" or the word "no" but not both.
    Returns ("yes" | "no", "") or (None, "no_answer" | "ambiguous").
    """
    words = _NON_WORD.sub(" ", text.casefold()).split()
    if not words:
        return None, "no_answer"
    if words[0] in _YES:
        return "yes", ""
    if words[0] in _NO:
        return "no", ""
    has_yes, has_no = "yes" in words, "no" in words
    if has_yes != has_no:
        return ("yes" if has_yes else "no"), ""
    return None, ("ambiguous" if has_yes else "no_answer")


def _letters_in(text: str) -> set[str]:
    return {(a or b).upper() for a, b in _INNER_LETTER.findall(text)}


def _text_match(norm: str, option_norms: Mapping[str, str]) -> tuple[str | None, str]:
    """The option whose text the normalised answer equals, else the single one it mentions."""
    for letter, opt in option_norms.items():
        if norm == opt:
            return letter, ""
    padded = f" {norm} "
    hits = {letter: opt for letter, opt in option_norms.items() if opt and f" {opt} " in padded}
    # "black cat" mentions the option "cat" as well; the longer option text is the one meant.
    hits = {k: v for k, v in hits.items() if not any(v != w and f" {v} " in f" {w} " for w in hits.values())}
    if len(hits) == 1:
        return next(iter(hits)), ""
    return None, ("ambiguous" if hits else "no_option")


def parse_choice(text: str, option_norms: Mapping[str, str] | None) -> tuple[str | None, str]:
    """Read a multiple-choice answer as an option letter.

    Takes the extracted answer and the options as {LETTER: normalised option text} (None: letters
    only). Accepted: the answer is a letter form ("B", "b", "(B)", "B.", "B)", "[B]"), possibly followed
    by text that must not be another option's text; else exactly one distinct "(B)" / "option B"
    inside the answer; else the answer equals or mentions exactly one option's text. A bare capital
    inside a sentence is never read as a letter (the article in "A cat" is not option A), and an
    answer is never snapped to the nearest option.
    Returns (LETTER, "") or (None, reason) with reason "no_option" or "ambiguous".
    """
    m = _LEAD_LETTER.fullmatch(text)
    if m is not None:
        letter, rest = m[1].upper(), m[2]
        if rest and option_norms:
            other, _ = _text_match(normalize_string(rest), option_norms)
            if other is not None and other != letter:
                return None, "ambiguous"
        return letter, ""
    letters = _letters_in(text)
    if option_norms:
        letters &= option_norms.keys()
    if len(letters) == 1:
        return letters.pop(), ""
    if letters:
        return None, "ambiguous"
    if not option_norms:
        return None, "no_option"
    return _text_match(normalize_string(text), option_norms)

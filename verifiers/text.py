"""Word-level answer rules: normalised strings, yes/no, and multiple-choice letters."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping

from deltaprompts.verifiers.numbers import TENS_WORDS, UNIT_WORDS

_NON_WORD = re.compile(r"[\W_]+")
_ARTICLES = frozenset({"a", "an", "the"})
_DIGIT_WORDS = {w: str(v) for w, v in {**UNIT_WORDS, **TENS_WORDS}.items()}

_YES = frozenset({"yes", "y", "true", "correct", "yeah", "yep"})
_NO = frozenset({"no", "n", "false", "incorrect", "nope"})
# A verdict standing as a clause of its own (a lone "y" or "n" there is too likely something else).
_VERDICTS = {**{w: "yes" for w in _YES - {"y"}}, **{w: "no" for w in _NO - {"n"}}}
# Clause boundaries: punctuation (not '-', which joins "no-one"), a spaced dash, and the conjunctions.
_CLAUSE = re.compile(r"[.,;:!?/()\[\]{}\n\"]|\s[-\u2013\u2014]+\s|\b(?:and|or|but|nor)\b")
# Words that hedge or pad a verdict without changing it: "maybe yes", "either yes or no", "I think no".
_FILLERS = frozenset("either both maybe perhaps possibly probably actually wait hmm well also rather then so oh "
                     "i think guess would d say".split())

# Letter forms, tried on the whole answer: "B", "(B)", "B.", "B)", "B:", "[B]", optionally followed by text.
_LEAD_LETTER = re.compile(r"[(\[]?([A-Za-z])(?:[)\]]|[.:)](?=\s|$)|$)\s*(.*)", re.DOTALL)
# Letter forms that are unambiguous anywhere in a sentence: "(B)", "option B", "choice (b)".
_INNER_LETTER = re.compile(r"\(([A-Za-z])\)|\b(?:option|choice|letter)\s*\(?([A-Za-z])\b\)?", re.IGNORECASE)
# Alternatives between letters: "B or C", "A/B", "B, C", "B and/or C"; capitals anywhere in a sentence,
# any case when they are the whole answer ("either b or c").
_ALT = r"\s*(?:,\s*(?:or|and)\b|,|/|&|\band/or\b|\bor\b|\band\b|\bnor\b)\s*"
_LETTER_PAIR = re.compile(r"(?<![\w'\u2019])[(\[]?([A-Z])[)\]]?" + _ALT + r"[(\[]?([A-Z])[)\]]?(?![\w'\u2019])")
# An alternative between option texts after a letter: "B. dog or cat", "B, either dog or cat".
_EITHER = re.compile(r"\b(?:or|either|and/or)\b")
_LIST_LETTER = re.compile(r"(?<![A-Za-z])([A-Za-z])(?![A-Za-z])")
_LETTER_LIST = re.compile(r"(?:(?:either|both)\s+)?[(\[]?[A-Za-z][)\].]?(?:" + _ALT + r"[(\[]?[A-Za-z][)\].]?)+",
                          re.IGNORECASE)


def _strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def normalize_string(text: str) -> str:
    """Normalise free text for exact comparison.

    Takes any text; returns it casefolded, without accents, with punctuation as spaces, the articles
    a/an/the dropped (unless nothing else is left: a lone "A" is an answer), number words 0-99 written as digits ("twenty-one" -> "21"), single-spaced.
    """
    text = text.casefold()
    if not text.isascii():
        text = _strip_accents(text)
    words = _NON_WORD.sub(" ", text).split()
    tokens = [t for t in words if t not in _ARTICLES] or words  # a lone "A" (an option's letter) is the answer
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


def _standalone_verdicts(text: str) -> set[str]:
    """The verdicts stated as a clause of their own: "Yes and no", "yes or no", "Yes. Actually, no"."""
    found = set()
    for clause in _CLAUSE.split(text.casefold()):
        words = [w for w in _NON_WORD.sub(" ", clause).split() if w not in _FILLERS]
        if len(words) == 1 and words[0] in _VERDICTS:
            found.add(_VERDICTS[words[0]])
    return found


def parse_yes_no(text: str) -> tuple[str | None, str]:
    """Read a yes/no answer.

    The first word decides when it is one of yes/y/true/correct/yeah/yep or no/n/false/incorrect/nope
    ("Yes, there is no gap" is yes); otherwise the answer must contain the word "yes" or the word
    "no" but not both. An answer that also states the other verdict as a clause of its own is a
    hedge and reads as nothing: "Yes and no", "yes or no", "Yes/No", "either yes or no", "Yes.
    Actually, no" (clauses split at punctuation and and/or/but/nor; fillers such as maybe,
    perhaps, actually, either are ignored).
    Returns ("yes" | "no", "") or (None, "no_answer" | "ambiguous").
    """
    words = _NON_WORD.sub(" ", text.casefold()).split()
    if not words:
        return None, "no_answer"
    verdicts = _standalone_verdicts(text)
    if words[0] in _YES or words[0] in _NO:
        verdicts.add("yes" if words[0] in _YES else "no")
    if len(verdicts) == 2:
        return None, "ambiguous"
    if verdicts:
        return verdicts.pop(), ""
    has_yes, has_no = "yes" in words, "no" in words
    if has_yes != has_no:
        return ("yes" if has_yes else "no"), ""
    return None, ("ambiguous" if has_yes else "no_answer")


def _letters_in(text: str, keys: Collection[str] | None) -> set[str]:
    """Option letters named anywhere: "(B)", "option B", and letters joined as alternatives ("B or C",
    "A/B"); with `keys`, only those letters, and alternatives only where both are ("Q&A" names none)."""
    found = {(a or b).upper() for a, b in _INNER_LETTER.findall(text)}
    pairs = [(m[1], m[2]) for m in _LETTER_PAIR.finditer(text)]
    if _LETTER_LIST.fullmatch(text):
        pairs.append(tuple(c.upper() for c in _LIST_LETTER.findall(text)))
    for pair in pairs:
        if keys is None or all(c in keys for c in pair):
            found.update(pair)
    return found if keys is None else found & set(keys)


def _mentioned(norm: str, option_norms: Mapping[str, str]) -> set[str]:
    """The options whose text a normalised answer mentions as whole words; where one matching text
    contains another ("black cat" and "cat"), only the longer counts."""
    padded = f" {norm} "
    hits = {letter: opt for letter, opt in option_norms.items() if opt and f" {opt} " in padded}
    return {k for k, v in hits.items() if not any(v != w and f" {v} " in f" {w} " for w in hits.values())}


def _text_match(norm: str, option_norms: Mapping[str, str]) -> tuple[str | None, str]:
    """The option whose text the normalised answer equals, else the single one it mentions."""
    for letter, opt in option_norms.items():
        if norm == opt:
            return letter, ""
    hits = _mentioned(norm, option_norms)
    if len(hits) == 1:
        return hits.pop(), ""
    return None, ("ambiguous" if hits else "no_option")


def parse_choice(text: str, option_norms: Mapping[str, str] | None) -> tuple[str | None, str]:
    """Read a multiple-choice answer as an option letter.

    Takes the extracted answer and the options as {LETTER: normalised option text} (None: letters
    only). Accepted: the answer is a letter form ("B", "b", "(B)", "B.", "B)", "[B]"), possibly
    followed by text; else exactly one distinct "(B)" / "option B" inside the answer; else the
    answer equals or mentions exactly one option's text. A bare capital inside a sentence is never
    read as a letter (the article in "A cat" is not option A), and an answer is never snapped to
    the nearest option. Two or more options named in any way make the answer a hedge, read as
    nothing: two letters ("B or C", "A/B", "either (B) or (C)", "B, C"), two option texts ("cat
    or dog"), or a letter with another option's text only or as an alternative ("B. cat", "B. dog or
    cat"); a letter explained by its own option against another stands ("B. the dog, not the cat").
    Returns (LETTER, "") or (None, reason) with reason "no_option" or "ambiguous".
    """
    letters = _letters_in(text, option_norms.keys() if option_norms else None)
    if len(letters) > 1:
        return None, "ambiguous"
    m = _LEAD_LETTER.fullmatch(text)
    if m is not None:
        letter, rest = m[1].upper(), m[2]
        letters.add(letter)
    elif letters:
        letter, rest = next(iter(letters)), text
    else:
        if not option_norms:
            return None, "no_option"
        return _text_match(normalize_string(text), option_norms)
    if len(letters) > 1:
        return None, "ambiguous"
    if rest and option_norms:
        norm = normalize_string(rest)
        named = _mentioned(norm, option_norms)
        # "B. cat" (another option's text only) or "B. dog or cat" hedge; "B. the dog, not the cat" explains.
        if named - {letter} and (letter not in named or _EITHER.search(norm)):
            return None, "ambiguous"
    return letter, ""

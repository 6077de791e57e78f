"""Pull the final answer out of a (reasoning) model's output and normalise its surface form."""

from __future__ import annotations

import re
import unicodedata

#: Whole outputs up to this many characters count as the answer when no marker is found;
#: longer ones are reasoning without a conclusion, and guessing a span from them is worse than None.
SHORT_OUTPUT_CHARS = 200

# "Answer:", "Final answer:", "The answer is", "**Answer**:"; anchored at the word "answer", whose
# last occurrence is found with rfind, so long reasoning is not scanned by a regex.
_MARKER = re.compile(r"answer\b[*_]*\s*(?:is\b\s*:?|[:=])[ \t*_]*", re.IGNORECASE)
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_LATEX_WRAPPER = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}")
_LATEX_ESCAPES = (("\\%", "%"), ("\\$", "$"), ("\\,", ""), ("\\!", ""), ("\\ ", " "), ("\\left", ""), ("\\right", ""))
# Single-delimiter emphasis (_x_, *x*) only where the delimiters hug a word, so snake_case survives.
_EMPHASIS = re.compile(r"(?<![\w*])([*_])(?=\S)([^*_\n]+?)(?<=\S)\1(?![\w*])")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_QUOTES = "\"'“”‘’«»`"
_TRAILING = ".,;:!?。、 \n"
_LEADING = ":;, \n"  # no '-': a leading minus is a sign


def normalize_text(text: str) -> str:
    """Return `text` in NFKC with the Unicode minus (U+2212) as '-'; ASCII text is returned as is."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text).replace("\u2212", "-")


def _lower(text: str) -> str:
    """`text` lower-cased with the same length, so that offsets found in it index `text` too."""
    lower = text.lower()
    # A few characters (U+0130) lower-case to two; the tags and markers searched for are ASCII.
    return lower if len(lower) == len(text) else text.translate(_ASCII_LOWER)


def _boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (balanced braces), or None when there is none or it is unclosed."""
    start = text.rfind("\\boxed")
    while start != -1:
        i = start + len("\\boxed")
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            depth = 0
            for j in range(i, len(text)):
                ch = text[j]
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                    if depth == 0:
                        return text[i + 1 : j]
            return None
        start = text.rfind("\\boxed", 0, start)
    return None


def _after_marker(text: str) -> str | None:
    """Text after the last answer marker: the rest of its line, or the next non-empty line."""
    lower = _lower(text)
    end = len(lower)
    while (at := lower.rfind("answer", 0, end)) != -1:
        end = at
        if at and (lower[at - 1].isalnum() or lower[at - 1] == "_"):
            continue  # "reanswer", "_answer"
        m = _MARKER.match(text, at)
        if m is None:
            continue
        for line in text[m.end() :].split("\n"):
            if line.strip(" \t*_#:"):
                return line
        return None
    return None


def _locate(text: str) -> str | None:
    """Pick the answer region of an output whose reasoning block is already cut off."""
    lower = _lower(text)
    open_at = lower.rfind("<answer>")
    if open_at != -1:
        close_at = lower.find("</answer>", open_at)
        inner = text[open_at + 8 : close_at if close_at != -1 else len(text)]
        # Some models box or mark the answer inside the tag too; the inner marker is the answer.
        return _boxed(inner) or _after_marker(inner) or inner
    boxed = _boxed(text)
    if boxed is not None:
        return boxed
    marked = _after_marker(text)
    if marked is not None:
        return marked
    if len(text.strip()) <= SHORT_OUTPUT_CHARS:
        return text
    return None


def clean_answer(answer: str) -> str:
    """Normalise an answer's surface form: LaTeX text wrappers, markdown, quotes, outer punctuation.

    Takes an already extracted answer; returns it with `\\text{}`-style wrappers and `\\%`/`\\$`
    escapes undone, a single pair of enclosing `$...$` removed, markdown bold/code/emphasis
    removed, spaces collapsed, enclosing quotes and trailing punctuation (.,;:!?) stripped.
    """
    if "\\" in answer:
        for old, new in _LATEX_ESCAPES:
            answer = answer.replace(old, new)
        answer = _LATEX_WRAPPER.sub(r"\1", answer)
    answer = answer.replace("**", "").replace("__", "").replace("`", "")
    if "*" in answer or "_" in answer:
        answer = _EMPHASIS.sub(r"\2", answer)
    answer = _SPACES.sub(" ", answer).strip(" \n#")
    for _ in range(3):  # wrappers nest: '"$5$".' -> 5
        answer = answer.rstrip(_TRAILING).lstrip(_LEADING)
        if len(answer) >= 2 and answer[0] in _QUOTES and answer[-1] in _QUOTES:
            answer = answer[1:-1].strip()
        elif len(answer) > 2 and answer[0] == "$" and answer[-1] == "$" and answer.count("$") == 2:
            answer = answer[1:-1].strip()
        else:
            break
    return answer


def extract_answer(text: str) -> str | None:
    """Extract the final answer from a model output.

    Takes the raw output. Rules, in order: NFKC and U+2212 -> '-'; cut through the last
    `</think>` (an unclosed `<think>` means the model never answered -> None); then the last
    `<answer>...</answer>` (unclosed: to the end), else the last balanced `\\boxed{...}`, else the
    text after the last "Answer:" / "Final answer:" / "The answer is" marker (to the end of its
    line), else the whole output when it has at most SHORT_OUTPUT_CHARS characters.
    Returns the cleaned answer (see `clean_answer`), or None when no answer can be found or
    it is empty. Never raises on a string.
    """
    if not isinstance(text, str):
        return None
    text = normalize_text(text)
    lower = _lower(text)
    close_at = lower.rfind("</think>")
    if close_at != -1:
        text = text[close_at + len("</think>") :]
    elif "<think>" in lower:
        return None
    region = _locate(text)
    if region is None:
        return None
    answer = clean_answer(region)
    return answer or None

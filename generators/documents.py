"""Document families: invoices and receipts from layout files, drawn with reportlab, rasterised with PyMuPDF."""

from __future__ import annotations

import datetime as dt
import os
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pymupdf
import yaml
from faker import Faker
from PIL import Image, ImageFilter

from deltaprompts.errors import RenderError, TemplateError, UnknownNameError
from deltaprompts.generators.base import Generator, Rendered, choice, png_bytes, register
from deltaprompts.generators.doc_layout import Drawing, draw, layout_digest, load_layout, locate
from deltaprompts.generators.locales import format_date, format_money, format_percent
from deltaprompts.knobs import Knob
from deltaprompts.records import Entity, Facts, Spec, TextSpan
from deltaprompts.rng import base_values, extensible_choice

LAYOUT_DIR = Path(str(resources.files("deltaprompts.templates") / "documents"))
#: Extra folders of layout files (os.pathsep-separated), so a user adds a layout without touching the package.
LAYOUT_PATH_ENV = "DELTAPROMPTS_LAYOUT_PATH"
_SUFFIX = ".yaml.j2"

CURRENCIES = {"USD": "$", "EUR": "€", "GBP": "£"}
_LOCALES = {"USD": ("en_US",), "GBP": ("en_GB",), "EUR": ("de_DE", "fr_FR", "nl_NL", "it_IT", "es_ES")}
_TLD = {"en_US": "com", "en_GB": "co.uk", "de_DE": "de", "fr_FR": "fr", "nl_NL": "nl", "it_IT": "it", "es_ES": "es"}
# Tax rates in basis points: US sales tax, UK VAT, euro-area VAT.
_TAX_BP = {"USD": (400, 500, 600, 625, 650, 700, 725, 800, 825, 950), "GBP": (2000, 2000, 2000, 500),
           "EUR": (1900, 2000, 2100, 2200, 1000, 700)}
_DATE_STYLES = ("short", "medium", "long", "iso")  # Babel (CLDR) date styles of the document's locale
_ACCENTS = ("#1f4e79", "#2e7d32", "#8e2430", "#37474f", "#5b3f8c", "#0b6e6e", "#b35c00", "#263238")
ALWAYS_FIELDS = {"currency", "n_items"}  # facts the page implies without printing them as a value
_fakers: dict[str, Faker] = {}  # building a Faker costs ~50 ms; each use re-seeds it, so sharing is safe


# ---------------------------------------------------------------- files


def layout_files(kind: str) -> dict[str, Path]:
    """The layout files for `kind` ("invoice" or "receipt"): name (file stem) -> path.

    Built-in files come from templates/documents; folders in $DELTAPROMPTS_LAYOUT_PATH add to
    (or override) them.
    """
    dirs = [LAYOUT_DIR, *(Path(p) for p in os.environ.get(LAYOUT_PATH_ENV, "").split(os.pathsep) if p)]
    out: dict[str, Path] = {}
    for d in dirs:
        for f in sorted(d.glob(f"{kind}_*{_SUFFIX}")):
            out[f.name.removesuffix(_SUFFIX)] = f
    return out


@lru_cache(maxsize=1)
def vocabulary() -> dict[str, Any]:
    """The curated line-item vocabulary (templates/documents/vocabulary.yaml)."""
    return yaml.safe_load((LAYOUT_DIR / "vocabulary.yaml").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- formatting and sampling helpers


def doc_money(cents: int, data: dict[str, Any]) -> str:
    """Integer cents as a document prints them in its locale (data["locale"], data["currency"]):
    de_DE '1.035,00\xa0€', en_US '$1,035.00'."""
    return format_money(int(cents), data["currency"], data["locale"])


def doc_pct(bp: int, data: dict[str, Any]) -> str:
    """Basis points as a document prints a rate in its locale: en_US '7.25%', de_DE '7,25\xa0%'."""
    return format_percent(int(bp), data["locale"], basis_points=True)


def money(cents: int, symbol: str) -> str:
    """Integer cents as the documents print money: symbol, thousands commas, two decimals ($1,234.50)."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{symbol}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def pct(bp: int) -> str:
    """Basis points as a percentage without trailing zeros: 725 -> '7.25%', 2000 -> '20%'."""
    return f"{bp / 100:.2f}".rstrip("0").rstrip(".") + "%"


def _half_up(num: int, den: int) -> int:
    """num / den rounded half up, in integers (tax and discount on cents)."""
    return (2 * num + den) // (2 * den)


def _fmt_date(d: dt.date, style: str, locale: str) -> str:
    return format_date(d, locale, style)


def _hash_free(fake: Faker) -> Faker:
    """Faker with its set-built word lists put in a fixed order: Faker's it_IT address provider lists its
    cities as list(set(...)), whose order (and so every seeded draw) changes with PYTHONHASHSEED."""
    for provider in fake.get_providers():
        if provider.__module__ == "faker.providers.address.it_IT" and isinstance(getattr(provider, "cities", None), list):
            provider.cities = sorted(provider.cities)
    return fake


def _faker(locale: str, rng: np.random.Generator) -> Faker:
    fake = _fakers.get(locale)
    if fake is None:
        fake = _fakers[locale] = _hash_free(Faker(locale))
    fake.seed_instance(int(rng.integers(2**31)))
    return fake


def _price(rng: np.random.Generator, lo: float, hi: float) -> int:
    """A plausible unit price in cents between lo and hi: round for big tickets, .99/.49-style for small."""
    x = float(rng.uniform(lo, hi))
    if hi >= 300:
        return int(round(x / 5)) * 500
    if hi >= 40:
        return int(x) * 100 + int(choice(rng, (0, 0, 50, 95, 99)))
    return int(x) * 100 + int(choice(rng, (0, 25, 49, 50, 79, 89, 99, int(rng.integers(0, 100)))))


def _items(rng: np.random.Generator, pool: list[list], n: int, single_p: float, caps: bool) -> list[dict]:
    """n distinct line items from `pool`, with quantity, unit price and amount in cents."""
    picks = rng.choice(len(pool), size=n, replace=False)
    out = []
    for i, k in enumerate(picks, 1):
        desc, lo, hi, qlo, qhi = pool[int(k)]
        qty = 1 if rng.random() < single_p else int(rng.integers(int(qlo), int(qhi) + 1))
        unit = max(_price(rng, float(lo), float(hi)), 1)
        out.append({"line": i, "description": desc.upper() if caps else desc, "quantity": qty,
                    "unit_price": unit, "amount": qty * unit})
    return out


def _totals(rng: np.random.Generator, items: list[dict], currency: str, discount: str, rates: tuple[int, ...]) -> dict:
    """Subtotal, optional discount, tax and total in integer cents, so they add up exactly."""
    subtotal = sum(it["amount"] for it in items)
    has_discount = discount == "yes" or (discount == "random" and rng.random() < 0.35)
    disc_pct = int(choice(rng, rates)) if has_discount else 0
    disc = _half_up(subtotal * disc_pct, 100)
    tax_bp = int(choice(rng, _TAX_BP[currency]))
    tax = _half_up((subtotal - disc) * tax_bp, 10000)
    return {"subtotal": subtotal, "discount": disc if has_discount else None, "discount_pct": disc_pct,
            "tax_rate_bp": tax_bp, "tax": tax, "total": subtotal - disc + tax}


def _address(fake: Faker) -> list[str]:
    return [ln.strip() for ln in fake.address().split("\n") if ln.strip()]


_LEGAL = {"and", "inc", "llc", "ltd", "plc", "group", "sons", "gmbh", "ag", "kg", "bv", "sa", "spa", "srl", "sl"}


def _slug(name: str) -> str:
    """A domain-like name from a company name: its words minus legal forms, at most ~18 letters."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = [w for w in re.findall(r"[a-z0-9]+", ascii_name) if w not in _LEGAL] or ["mail"]
    out = words[0]
    for w in words[1:]:
        if len(out) + len(w) > 18:
            break
        out += w
    return out


def _phone(fake: Faker) -> str:
    return fake.phone_number().split("x")[0].strip()


def _currency(rng: np.random.Generator, knob: str) -> str:
    return str(choice(rng, sorted(CURRENCIES))) if knob == "random" else knob


def _layout(rng: np.random.Generator, kind: str, knob: str) -> str:
    names = sorted(layout_files(kind))
    if knob == "random":  # an added layout file takes its share of items and moves none from another layout
        return extensible_choice(rng, names, base=base_values(f"layouts.{kind}"))
    if knob not in names:
        raise UnknownNameError(f"{kind} layout", knob, names)
    return knob


def _n_items(rng: np.random.Generator, knob: int, lo: int, hi: int) -> int:
    return int(knob) if knob else int(rng.integers(lo, hi + 1))


def _style(rng: np.random.Generator) -> dict[str, str]:
    accent = str(choice(rng, _ACCENTS))
    rgb = [int(accent[i:i + 2], 16) for i in (1, 3, 5)]
    tint = "#" + "".join(f"{int(c + (255 - c) * 0.88):02x}" for c in rgb)
    return {"accent": accent, "tint": tint}


def _noise(img: Image.Image, level: str, seed: int) -> Image.Image:
    """Scan-like degradation that moves no pixel: blur, grain, a paper tint. Boxes stay valid."""
    if level == "none":
        return img
    blur, grain, floor = {"light": (0.5, 5.0, 0), "scan": (0.9, 10.0, 18)}[level]
    arr = np.asarray(img.filter(ImageFilter.GaussianBlur(blur)), dtype=np.float32)
    rng = np.random.default_rng(seed)
    arr = floor + arr * (1 - floor / 255) + rng.normal(0, grain, arr.shape[:2])[..., None]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


# ---------------------------------------------------------------- families


@dataclass(frozen=True)
class LayoutKnob(Knob):
    """The `layout` knob: its choices are the layout files found when asked (not at import), so a
    file added to a $DELTAPROMPTS_LAYOUT_PATH folder is a valid value."""

    kind: str = "invoice"

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        return ("random", *sorted(layout_files(self.kind)))

    @choices.setter
    def choices(self, _given: tuple[str, ...]) -> None:
        pass  # Knob's __init__ sets the field; the layout files decide instead


def _knobs(kind: str, max_items: int, default_range: str, dpi: int) -> tuple[Knob, ...]:
    return (
        Knob("n_items", "int", 0, f"number of line items; 0 samples {default_range}", lo=0, hi=max_items,
             difficulty="higher is harder"),
        Knob("dpi", "int", dpi, "raster resolution of the page", lo=60, hi=300, difficulty="lower is harder"),
        LayoutKnob("layout", "choice", "random", f"{kind} layout file (templates/documents/{kind}_*.yaml.j2 "
                   f"and ${LAYOUT_PATH_ENV})", difficulty="none", kind=kind),
        Knob("currency", "choice", "random", "currency (sets symbol, locale of names and addresses, tax rates)",
             choices=("random", *sorted(CURRENCIES)), difficulty="none"),
        Knob("discount", "choice", "random", "whether a discount line appears (random: 35%)",
             choices=("random", "yes", "no"), difficulty="yes is harder (one more term in the totals)"),
        Knob("noise", "choice", "none", "scan-like blur and grain (no geometric change)",
             choices=("none", "light", "scan"), difficulty="higher is harder"),
    )


class _Document(Generator):
    """Shared render path: layout file -> reportlab PDF -> PyMuPDF raster and words -> Facts."""

    domain = "document"
    kind: ClassVar[str]

    def template_context(self, data: dict[str, Any]) -> dict[str, Any]:
        """What a layout file sees: the data plus `money(cents)` and `pct(basis_points)` helpers,
        which print in the document's locale (Babel)."""
        return {**data, "money": lambda c: doc_money(int(c), data), "pct": lambda bp: doc_pct(int(bp), data)}

    def fields(self, data: dict[str, Any]) -> dict[str, Any]:
        """Named facts of the document (money as float units), before dropping what the page omits."""
        raise NotImplementedError

    def context(self, data: dict[str, Any]) -> dict[str, Any]:
        """Words for phrasing questions."""
        return {"doc": self.kind, "currency_symbol": data["currency_symbol"], "currency": data["currency"],
                "item_noun": "item", "locale": data["locale"]}

    def entities(self, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """(table row id, attrs) of each entity; its box is the row's. Default: the line items."""
        return [(f"line{it['line']}", {"description": it["description"], "quantity": it["quantity"],
                                       "unit_price": it["unit_price"] / 100, "amount": it["amount"] / 100,
                                       "line": it["line"]}) for it in data["items"]]

    def build_pdf(self, spec: Spec, page: int | None = None) -> tuple[Drawing, str]:
        """Draw a Spec's layout (with `page`, that page of a multi-page layout, which sees `page`):
        return (Drawing, layout file sha256 prefix). Raises TemplateError, RenderError."""
        data = spec.data
        files = layout_files(self.kind)
        if data["layout"] not in files:
            raise RenderError(f"{self.name}: layout {data['layout']!r} not found; have {sorted(files)}")
        path = files[data["layout"]]
        context = self.template_context(data) if page is None else {**self.template_context(data), "page": page}
        try:
            drawing = draw(load_layout(path, context))
        except (TemplateError, RenderError) as e:
            where = "" if page is None else f" (page {page + 1})"
            msg = str(e) if str(path) in str(e) else f"layout {path}{where}: {e}"
            raise type(e)(msg) from None
        return drawing, layout_digest(path)[:12]

    def render(self, spec: Spec) -> Rendered:
        """Render a Spec to PNG bytes and Facts whose text boxes come from PyMuPDF's words."""
        data = spec.data
        drawing, sha = self.build_pdf(spec)
        dpi = int(data["dpi"])
        scale = dpi / 72.0
        with pymupdf.open(stream=drawing.pdf, filetype="pdf") as doc:
            page = doc[0]
            pix = page.get_pixmap(dpi=dpi, alpha=False)
            img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
            words = [tuple(w[:5]) for w in page.get_text("words")]

        def px(b: tuple[float, ...]) -> tuple[float, float, float, float]:
            return tuple(round(v * scale, 2) for v in b)  # type: ignore[return-value]

        texts = []
        for d in drawing.drawn:
            try:
                box = locate(d, words)  # type: ignore[arg-type]
            except RenderError as e:
                raise RenderError(f"layout {data['layout']}: {e}") from None
            texts.append(TextSpan(text=d.value, box=px(box), role=d.role))
        shown = {t.role.removeprefix("field:") for t in texts if t.role.startswith("field:")}
        fields = {k: (v if k in shown or k in ALWAYS_FIELDS else None) for k, v in self.fields(data).items()}
        entities = []
        for rid, attrs in self.entities(data):
            if rid not in drawing.rows:
                raise RenderError(f"layout {data['layout']}: no table row with id {rid!r}")
            entities.append(Entity(id=rid, box=px(drawing.rows[rid]), attrs=attrs))
        img = _noise(img, data.get("noise", "none"), int(data.get("noise_seed", 0)))
        facts = Facts(domain="document", kind=data["layout"], width=img.width, height=img.height,
                      entities=entities, fields=fields, texts=texts, context=self.context(data),
                      extra={"layout": data["layout"], "layout_sha256": sha, "dpi": dpi,
                             "page_size_pt": [drawing.width, drawing.height], "noise": data.get("noise", "none")})
        return Rendered(png=png_bytes(img), facts=facts)

    def _common(self, rng: np.random.Generator, knobs: dict[str, Any]) -> tuple[dict[str, Any], Faker]:
        layout = _layout(rng, self.kind, str(knobs["layout"]))
        currency = _currency(rng, str(knobs["currency"]))
        locale = str(choice(rng, _LOCALES[currency]))
        fake = _faker(locale, rng)
        data = {"layout": layout, "dpi": int(knobs["dpi"]), "currency": currency,
                "currency_symbol": CURRENCIES[currency], "locale": locale, "style": _style(rng),
                "noise": str(knobs["noise"]), "noise_seed": int(rng.integers(2**31))}
        return data, fake


def _money_fields(data: dict[str, Any]) -> dict[str, Any]:
    cents = lambda k: None if data[k] is None else data[k] / 100  # noqa: E731
    return {"subtotal": cents("subtotal"), "discount": cents("discount"),
            "discount_rate": data["discount_pct"] or None, "tax_rate": data["tax_rate_bp"] / 100,
            "tax": cents("tax"), "total": cents("total"), "currency": data["currency"], "n_items": len(data["items"])}


@register
class Invoice(_Document):
    """A business invoice: seller and buyer, dated, line items, totals that add up to the cent."""

    name = "document.invoice"
    kind = "invoice"
    version = "2"  # 2: money, rates and dates in the locale's conventions (Babel)
    description = "Invoice with Faker parties, curated line items and exact totals; layouts from templates/documents."
    knobs = _knobs("invoice", 15, "3-8", 100)

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        data, fake = self._common(rng, knobs)
        tld = _TLD[data["locale"]]
        seller, buyer = fake.company(), fake.company()
        vocab = vocabulary()["invoice"]
        cats = [str(c) for c in rng.permutation(sorted(vocab))]
        n = _n_items(rng, int(knobs["n_items"]), 3, 8)
        pool = [row for c in cats[:1 + (n > len(vocab[cats[0]]))] for row in vocab[c]]
        items = _items(rng, pool, n, 0.25, caps=False)
        issue = dt.date(2019, 1, 1) + dt.timedelta(days=int(rng.integers(0, 7 * 365)))
        terms = int(choice(rng, (14, 15, 30, 30, 45, 60)))
        datefmt = str(choice(rng, _DATE_STYLES))
        num = int(rng.integers(1, 99999))
        initials = "".join(w[0] for w in re.findall(r"[A-Za-z]+", seller)[:3]).upper() or "INV"
        number = str(choice(rng, (f"INV-{issue.year}-{num:05d}", f"{num:06d}", f"INV{num:05d}",
                                  f"{initials}-{num:04d}", f"{issue.year}{issue.month:02d}-{num % 1000:03d}")))
        bank = (f"IBAN {fake.iban()}" if data["currency"] != "USD"
                else f"Account {fake.numerify('#########')}  Routing {fake.numerify('0########')}")
        data.update({
            "seller": {"name": seller, "address": _address(fake), "phone": _phone(fake),
                       "email": f"{choice(rng, ('billing', 'accounts', 'invoices', 'info'))}@{_slug(seller)}.{tld}"},
            "buyer": {"name": buyer, "contact": fake.name(), "address": _address(fake),
                      "email": f"{choice(rng, ('ap', 'finance', 'payables', 'office'))}@{_slug(buyer)}.{tld}"},
            "invoice_number": number, "issue_date": _fmt_date(issue, datefmt, data["locale"]),
            "due_date": _fmt_date(issue + dt.timedelta(days=terms), datefmt, data["locale"]), "terms": f"Net {terms}",
            "bank": bank, "items": items,
            **_totals(rng, items, data["currency"], str(knobs["discount"]), (5, 10, 15, 20)),
        })
        return data

    def fields(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"invoice_number": data["invoice_number"], "issue_date": data["issue_date"],
                "due_date": data["due_date"], "terms": data["terms"], "seller": data["seller"]["name"],
                "buyer": data["buyer"]["name"], "seller_email": data["seller"]["email"],
                "buyer_email": data["buyer"]["email"], **_money_fields(data)}

    def context(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**super().context(data), "seller": data["seller"]["name"], "buyer": data["buyer"]["name"]}


@register
class Receipt(_Document):
    """A shop receipt: store, date and time, items, totals, payment method and change."""

    name = "document.receipt"
    kind = "receipt"
    version = "2"  # 2: money, rates and dates in the locale's conventions (Babel)
    description = "Narrow till receipt with a store, items, tax, payment and change; layouts from templates/documents."
    knobs = _knobs("receipt", 14, "3-10", 150)

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        data, fake = self._common(rng, knobs)
        vocab = vocabulary()["receipt"]
        store_type = str(choice(rng, sorted(vocab)))
        pattern = str(choice(rng, vocab[store_type]["stores"]))
        store = pattern.format(last_name=fake.last_name(), city=fake.city())
        n = _n_items(rng, int(knobs["n_items"]), 3, 10)
        items = _items(rng, vocab[store_type]["items"], n, 0.6, caps=bool(rng.random() < 0.5))
        totals = _totals(rng, items, data["currency"], str(knobs["discount"]), (5, 10))
        when = dt.datetime(2019, 1, 1, 7) + dt.timedelta(days=int(rng.integers(0, 7 * 365)),
                                                         minutes=int(rng.integers(0, 14 * 60)))
        us = data["currency"] == "USD"
        if us and rng.random() < 0.7:  # US tills mostly print 12-hour times
            time = f"{(when.hour - 1) % 12 + 1}:{when.minute:02d} {'AM' if when.hour < 12 else 'PM'}"
        else:
            time = f"{when.hour:02d}:{when.minute:02d}"
        method = str(choice(rng, ("Cash", "Cash", "Visa", "Mastercard", "Debit", "Amex")))
        tendered = change = None
        if method == "Cash":
            total = totals["total"]
            bills = sorted({-(-total // step) * step for step in (100, 500, 1000, 2000, 5000, 10000)} - {total})
            tendered = int(choice(rng, bills[:3] or [total]))
            change = tendered - total
        data.update({
            "store": {"name": store, "type": store_type, "address": _address(fake)[:3], "phone": _phone(fake)},
            "date": _fmt_date(when.date(), str(choice(rng, _DATE_STYLES[:3])), data["locale"]), "time": time,
            "receipt_number": f"{int(rng.integers(1, 999999)):06d}", "register": int(rng.integers(1, 12)),
            "cashier": fake.first_name(), "items": items, **totals, "payment_method": method,
            "card_last4": None if method == "Cash" else f"{int(rng.integers(0, 10000)):04d}",
            "tendered": tendered, "change": change,
        })
        return data

    def fields(self, data: dict[str, Any]) -> dict[str, Any]:
        cents = lambda k: None if data[k] is None else data[k] / 100  # noqa: E731
        return {"store": data["store"]["name"], "date": data["date"], "time": data["time"],
                "receipt_number": data["receipt_number"], "cashier": data["cashier"],
                "payment_method": data["payment_method"], "card_last4": data["card_last4"],
                "tendered": cents("tendered"), "change": cents("change"), **_money_fields(data)}

    def context(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**super().context(data), "store": data["store"]["name"], "seller": data["store"]["name"]}

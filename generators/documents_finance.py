"""Finance and order document families (bank statement, payslip, utility bill, purchase order, menu), printed per locale."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import yaml

from deltaprompts.generators.base import choice, register
from deltaprompts.generators.documents import (LAYOUT_DIR, LAYOUT_PATH_ENV, LayoutKnob, _Document, _faker, _half_up,
                                               _items, _layout, _n_items, _style, doc_money, doc_pct, vocabulary)
from deltaprompts.generators.locales import (CJK_LOCALES, CURRENCY_OF, LOCALES, currency_symbol, format_date,
                                             format_month, format_number, format_unit_price)
from deltaprompts.knobs import Knob

#: Locales a `random` locale knob draws from: the Latin-script ones, so that a machine without
#: fonts-noto-cjk renders every default item; ja_JP and zh_CN print when the knob names them.
DOC_LOCALES: tuple[str, ...] = tuple(loc for loc in LOCALES if loc not in CJK_LOCALES)
_VAT_BP = {"USD": (0, 400, 600, 700), "GBP": (500, 2000), "EUR": (700, 1000, 1900, 2000, 2100),
           "CNY": (600, 900, 1300)}
#: The locale knob's values: ja_JP is left out (yen print no decimals, so amounts would have to be whole yen).
KNOB_LOCALES: tuple[str, ...] = tuple(loc for loc in LOCALES if loc != "ja_JP")


@lru_cache(maxsize=1)
def finance_vocabulary() -> dict[str, Any]:
    """The curated vocabulary of these families (templates/documents/vocabulary_finance.yaml)."""
    return yaml.safe_load((LAYOUT_DIR / "vocabulary_finance.yaml").read_text(encoding="utf-8"))


def _cents(rng: np.random.Generator, lo: float, hi: float) -> int:
    """An amount in cents between lo and hi units."""
    return int(round(float(rng.uniform(lo, hi)) * 100))


def _day(rng: np.random.Generator) -> dt.date:
    return dt.date(2019, 1, 1) + dt.timedelta(days=int(rng.integers(0, 7 * 365)))


def _knobs(kind: str, dpi: int, *extra: Knob) -> tuple[Knob, ...]:
    return (
        Knob("dpi", "int", dpi, "raster resolution of the page", lo=60, hi=300, difficulty="lower is harder"),
        LayoutKnob("layout", "choice", "random", f"{kind} layout file (templates/documents/{kind}_*.yaml.j2 "
                   f"and ${LAYOUT_PATH_ENV})", difficulty="none", kind=kind),
        Knob("locale", "choice", "random", "locale of numbers, money, dates and names (sets the currency)",
             choices=("random", *KNOB_LOCALES), difficulty="none"),
        *extra,
        Knob("noise", "choice", "none", "scan-like blur and grain (no geometric change)",
             choices=("none", "light", "scan"), difficulty="higher is harder"),
    )


class _LocaleDocument(_Document):
    """A document printed in a sampled locale: money, numbers and dates through Babel."""

    noun: ClassVar[str]
    money_fields: ClassVar[frozenset[str]] = frozenset()
    number_fields: ClassVar[frozenset[str]] = frozenset()

    def template_context(self, data: dict[str, Any]) -> dict[str, Any]:
        """The data plus `money(cents)`, `pct(basis_points)` and `num(value, decimals)` in the locale."""
        return {**super().template_context(data), "num": lambda v, d=None: format_number(v, data["locale"], d)}

    def printed(self, name: str, value: Any, data: dict[str, Any]) -> str:
        """How field `name` with Facts value `value` is printed on the page."""
        if name in self.money_fields:
            return doc_money(round(value * 100), data)
        if name in self.number_fields:
            return format_number(value, data["locale"])
        if name == "tax_rate":
            return doc_pct(round(value * 100), data)
        return str(value)

    def context(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**super().context(data), "doc": self.noun}

    def _start(self, rng: np.random.Generator, knobs: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        layout = _layout(rng, self.kind, str(knobs["layout"]))
        locale = str(choice(rng, DOC_LOCALES)) if knobs["locale"] == "random" else str(knobs["locale"])
        currency = CURRENCY_OF[locale]
        fake = _faker(locale, rng)
        data = {"layout": layout, "dpi": int(knobs["dpi"]), "currency": currency,
                "currency_symbol": currency_symbol(currency, locale), "locale": locale, "style": _style(rng),
                "noise": str(knobs["noise"]), "noise_seed": int(rng.integers(2**31))}
        return data, fake

    def _date(self, day: dt.date, style: str, data: dict[str, Any]) -> str:
        return format_date(day, data["locale"], style)


def _unique(rng: np.random.Generator, make, taken: set[str], tries: int = 8) -> str:
    """A text from make() not yet in `taken` (a numbered one after `tries` repeats); added to `taken`."""
    for _ in range(tries):
        s = make()
        if s not in taken:
            break
    else:
        s = f"{make()} #{len(taken) + 1}"
    taken.add(s)
    return s


@register
class BankStatement(_LocaleDocument):
    """A monthly bank statement: opening balance, dated transactions with a running balance, closing balance."""

    name = "document.bank_statement"
    kind = "bank_statement"
    noun = "bank statement"
    version = "1"
    description = "Bank statement with dated deposits and withdrawals, a running balance and a closing balance."
    knobs = _knobs("bank_statement", 100,
                   Knob("n_items", "int", 0, "number of transactions; 0 samples 6-12", lo=0, hi=16,
                        difficulty="higher is harder"),
                   Knob("misprint", "choice", "random", "whether the printed closing balance disagrees with the "
                        "transactions (random: 20%)", choices=("random", "yes", "no"), difficulty="none"))
    money_fields = frozenset({"opening_balance", "closing_balance", "total_deposits", "total_withdrawals"})

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        data, fake = self._start(rng, knobs)
        voc = finance_vocabulary()["bank"]
        n = _n_items(rng, int(knobs["n_items"]), 6, 12)
        start = _day(rng).replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        days = sorted(int(d) for d in rng.integers(0, end.day, size=n))
        style = str(choice(rng, ("short", "medium", "iso")))
        balance = _cents(rng, 300, 6000)
        opening, taken, rows = balance, set(), []
        for i, day in enumerate(days, 1):
            deposit = bool((i == 1 and rng.random() < 0.5) or rng.random() < 0.3)
            text, cents = self._transaction(rng, voc, fake, "deposits" if deposit else "withdrawals", taken)
            if not deposit and cents > balance:  # no overdraft: a withdrawal larger than the balance is a deposit
                taken.discard(text)
                deposit = True
                text, cents = self._transaction(rng, voc, fake, "deposits", taken)
            balance += cents if deposit else -cents
            rows.append({"line": i, "date": self._date(start.replace(day=day + 1), style, data), "details": text,
                         "deposit": cents if deposit else None, "withdrawal": None if deposit else cents,
                         "balance": balance})
        misprint = knobs["misprint"] == "yes" or (knobs["misprint"] == "random" and rng.random() < 0.2)
        closing = balance
        if misprint:
            delta = int(choice(rng, (900, 1000, 9000, 10000, 4500)))
            closing = balance + (delta if balance < delta or rng.random() < 0.5 else -delta)
        bank = str(choice(rng, voc["names"])).format(city=fake.city(), last_name=fake.last_name())
        acct = fake.iban() if data["currency"] in ("EUR", "GBP") else fake.numerify("##########")
        data.update({
            "bank": bank, "holder": fake.name(), "address": [ln.strip() for ln in fake.address().split("\n")][:3],
            "account_number": acct, "period_start": self._date(start, style, data),
            "period_end": self._date(end, style, data), "items": rows, "opening_balance": opening,
            "closing_balance": closing, "true_closing": balance, "misprint": misprint,
            "total_deposits": sum(r["deposit"] or 0 for r in rows),
            "total_withdrawals": sum(r["withdrawal"] or 0 for r in rows),
        })
        return data

    @staticmethod
    def _transaction(rng: np.random.Generator, voc: dict[str, Any], fake: Any, kind: str,
                     taken: set[str]) -> tuple[str, int]:
        """Details (new on this statement) and amount in cents of one deposit or withdrawal."""
        def make() -> tuple[str, int]:
            details, lo, hi = choice(rng, voc[kind])
            who = choice(rng, voc["merchants"]) if "Card" in details or "Online" in details else fake.last_name()
            return str(details).format(who=who), _cents(rng, float(lo), float(hi))

        for _ in range(12):
            text, cents = make()
            if text not in taken:
                break
        else:
            text = f"{text} ({len(taken) + 1})"
        taken.add(text)
        return text, cents

    def entities(self, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        return [(f"tx{r['line']}", {"line": r["line"], "date": r["date"], "details": r["details"],
                                    "deposit": (r["deposit"] or 0) / 100, "withdrawal": (r["withdrawal"] or 0) / 100,
                                    "balance": r["balance"] / 100,
                                    "type": "deposit" if r["deposit"] else "withdrawal"}) for r in data["items"]]

    def fields(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"bank": data["bank"], "account_holder": data["holder"], "account_number": data["account_number"],
                "period_start": data["period_start"], "period_end": data["period_end"],
                **{k: data[k] / 100 for k in sorted(self.money_fields)}, "currency": data["currency"],
                "n_items": len(data["items"])}

    def context(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**super().context(data), "item_noun": "transaction", "holder": data["holder"]}


@register
class Payslip(_LocaleDocument):
    """A monthly payslip: earnings that add up to gross pay, deductions, and the net pay."""

    name = "document.payslip"
    kind = "payslip"
    noun = "payslip"
    version = "1"
    description = "Payslip with earnings, deductions and net pay that add up to the cent."
    knobs = _knobs("payslip", 100)
    money_fields = frozenset({"gross_pay", "total_deductions", "net_pay"})

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        data, fake = self._start(rng, knobs)
        voc = finance_vocabulary()["payslip"]
        base = int(rng.integers(22, 76)) * 10000 + int(choice(rng, (0, 0, 2500, 5000, 7500)))
        extra = [voc["earnings"][int(k)] for k in rng.choice(len(voc["earnings"]), int(rng.integers(0, 4)), False)]
        earnings = [("Basic salary", base)] + [(str(n), max(_half_up(base * int(rng.integers(
            int(lo * 1000), int(hi * 1000) + 1)), 1000), 100)) for n, lo, hi in extra]
        gross = sum(a for _, a in earnings)
        pool = voc["deductions"]
        picks = [0, 1] + sorted(int(k) + 2 for k in rng.choice(len(pool) - 2, int(rng.integers(1, 4)), False))
        deductions = []
        for k in picks:
            n, lo, hi = pool[k]
            deductions.append((str(n), max(_half_up(gross * int(rng.integers(int(lo * 10000), int(hi * 10000) + 1)),
                                                    10000), 1)))
        pay_day = _day(rng)
        style = str(choice(rng, ("short", "medium", "long")))
        total_ded = sum(a for _, a in deductions)
        data.update({
            "employer": fake.company(), "employee": fake.name(), "employee_id": f"E{int(rng.integers(10000, 99999))}",
            "title": str(choice(rng, voc["titles"])), "period": format_month(pay_day, data["locale"]),
            "pay_date": self._date(pay_day, style, data),
            "earnings": [{"line": i, "name": n, "amount": a} for i, (n, a) in enumerate(earnings, 1)],
            "deductions": [{"line": i, "name": n, "amount": a} for i, (n, a) in enumerate(deductions, 1)],
            "gross_pay": gross, "total_deductions": total_ded, "net_pay": gross - total_ded,
        })
        return data

    def entities(self, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        return [(f"{kind[:4]}{r['line']}", {"name": r["name"], "type": kind[:-1], "amount": r["amount"] / 100})
                for kind in ("earnings", "deductions") for r in data[kind]]

    def fields(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"employer": data["employer"], "employee": data["employee"], "employee_id": data["employee_id"],
                "job_title": data["title"],
                "pay_date": data["pay_date"], "period": data["period"],
                **{k: data[k] / 100 for k in sorted(self.money_fields)}, "currency": data["currency"],
                "n_items": len(data["earnings"]) + len(data["deductions"])}

    def context(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**super().context(data), "item_noun": "pay line", "employee": data["employee"]}


@register
class UtilityBill(_LocaleDocument):
    """A utility bill: meter readings, usage times the unit rate, a fixed charge, tax and the total."""

    name = "document.utility_bill"
    kind = "utility_bill"
    noun = "utility bill"
    version = "1"
    description = "Electricity, gas or water bill: meter readings, usage x rate, fixed charge, tax, total."
    knobs = _knobs("utility_bill", 100)
    money_fields = frozenset({"subtotal", "tax", "total"})  # the two charges are table rows (entities)
    number_fields = frozenset({"previous_reading", "current_reading", "usage"})

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        data, fake = self._start(rng, knobs)
        service = finance_vocabulary()["utility"][int(rng.integers(len(finance_vocabulary()["utility"])))]
        usage = int(rng.integers(service["usage"][0], service["usage"][1] + 1))
        previous = int(rng.integers(1000, 90000)) if usage > 50 else int(rng.integers(100, 2000))
        digits = 4 if service["unit"] == "kWh" else 2
        rate = Decimal(str(round(float(rng.uniform(*service["rate"])), digits)))
        energy = int((usage * rate * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        fixed = _cents(rng, *service["fixed"])
        tax_bp = int(choice(rng, _VAT_BP[data["currency"]]))
        tax = _half_up((energy + fixed) * tax_bp, 10000)
        start = _day(rng)
        end = start + dt.timedelta(days=int(rng.integers(28, 32)))
        style = str(choice(rng, ("short", "medium", "long")))
        data.update({
            "provider": str(service["name"]).format(city=fake.city()), "service": service["service"],
            "unit": service["unit"], "customer": fake.name(),
            "address": [ln.strip() for ln in fake.address().split("\n")][:3],
            "account_number": fake.numerify("####-####-##"), "meter_number": fake.bothify("M??-#######").upper(),
            "period_start": self._date(start, style, data), "period_end": self._date(end, style, data),
            "due_date": self._date(end + dt.timedelta(days=21), style, data),
            "previous_reading": previous, "current_reading": previous + usage, "usage": usage,
            "rate": str(rate), "rate_text": format_unit_price(rate, data["currency"], data["locale"]),
            "energy_charge": energy, "fixed_charge": fixed, "subtotal": energy + fixed,
            "tax_rate_bp": tax_bp, "tax": tax if tax_bp else None, "total": energy + fixed + tax,
        })
        return data

    def entities(self, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        return [("usage", {"charge": f"{data['service']} usage", "kind": "usage", "amount": data["energy_charge"] / 100}),
                ("fixed", {"charge": "Fixed charge", "kind": "fixed", "amount": data["fixed_charge"] / 100})]

    def printed(self, name: str, value: Any, data: dict[str, Any]) -> str:
        if name == "rate":
            return data["rate_text"]
        return super().printed(name, value, data)

    def fields(self, data: dict[str, Any]) -> dict[str, Any]:
        money = {k: None if data[k] is None else data[k] / 100 for k in sorted(self.money_fields)}
        return {"provider": data["provider"], "customer": data["customer"], "account_number": data["account_number"],
                "meter_number": data["meter_number"], "due_date": data["due_date"],
                "period_start": data["period_start"], "period_end": data["period_end"],
                **{k: data[k] for k in sorted(self.number_fields)}, "rate": float(data["rate"]), **money,
                "tax_rate": data["tax_rate_bp"] / 100 if data["tax"] is not None else None,
                "currency": data["currency"], "n_items": 2}

    def context(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**super().context(data), "item_noun": "charge", "unit": data["unit"],
                "service": data["service"].lower()}


@register
class PurchaseOrder(_LocaleDocument):
    """A purchase order: buyer and vendor, SKUs with quantities and prices, shipping, tax and total."""

    name = "document.purchase_order"
    kind = "purchase_order"
    noun = "purchase order"
    version = "1"
    description = "Purchase order with SKUs, quantities, unit prices, shipping, tax and an exact total."
    knobs = _knobs("purchase_order", 100,
                   Knob("n_items", "int", 0, "number of line items; 0 samples 3-9", lo=0, hi=14,
                        difficulty="higher is harder"))
    money_fields = frozenset({"subtotal", "shipping", "tax", "total"})

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        data, fake = self._start(rng, knobs)
        vocab = vocabulary()["invoice"]
        cats = [str(c) for c in rng.permutation(sorted(vocab))]
        n = _n_items(rng, int(knobs["n_items"]), 3, 9)
        pool = [row for c in cats[:1 + (n > len(vocab[cats[0]]))] for row in vocab[c]]
        items = _items(rng, pool, n, 0.2, caps=False)
        skus: set[str] = set()
        for it in items:
            it["sku"] = _unique(rng, lambda: fake.bothify("??-####").upper(), skus)
        subtotal = sum(it["amount"] for it in items)
        shipping = int(choice(rng, (0, 1500, 2500, 4900, 7500, 12000)))
        tax_bp = int(choice(rng, _VAT_BP[data["currency"]][1:]))
        tax = _half_up((subtotal + shipping) * tax_bp, 10000)
        order = _day(rng)
        style = str(choice(rng, ("short", "medium", "long", "iso")))
        voc = finance_vocabulary()["purchase_order"]
        data.update({
            "buyer": {"name": fake.company(), "address": [ln.strip() for ln in fake.address().split("\n")][:3]},
            "vendor": {"name": fake.company(), "address": [ln.strip() for ln in fake.address().split("\n")][:3]},
            "contact": fake.name(), "po_number": f"PO-{order.year}-{int(rng.integers(1, 99999)):05d}",
            "order_date": self._date(order, style, data),
            "delivery_date": self._date(order + dt.timedelta(days=int(rng.integers(5, 45))), style, data),
            "terms": str(choice(rng, voc["terms"])), "ship_via": str(choice(rng, voc["shipping"])),
            "items": items, "subtotal": subtotal, "shipping": shipping, "tax_rate_bp": tax_bp, "tax": tax,
            "total": subtotal + shipping + tax,
        })
        return data

    def entities(self, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        return [(rid, {**attrs, "sku": it["sku"]}) for (rid, attrs), it in zip(super().entities(data), data["items"])]

    def fields(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"po_number": data["po_number"], "order_date": data["order_date"],
                "delivery_date": data["delivery_date"], "buyer": data["buyer"]["name"],
                "vendor": data["vendor"]["name"], "terms": data["terms"], "ship_via": data["ship_via"],
                **{k: data[k] / 100 for k in sorted(self.money_fields)}, "tax_rate": data["tax_rate_bp"] / 100,
                "currency": data["currency"], "n_items": len(data["items"])}

    def context(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**super().context(data), "seller": data["vendor"]["name"], "buyer": data["buyer"]["name"]}


@register
class Menu(_LocaleDocument):
    """A restaurant menu: sections of dishes with prices and dietary marks (V, VG, GF)."""

    name = "document.menu"
    kind = "menu"
    noun = "menu"
    version = "1"
    description = "Restaurant menu with sections, priced dishes and dietary marks (vegetarian, vegan, gluten-free)."
    knobs = _knobs("menu", 100)

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        data, fake = self._start(rng, knobs)
        voc = finance_vocabulary()["menu"]
        names = list(voc["sections"])
        keep = sorted(int(k) for k in rng.choice(len(names), int(rng.integers(3, len(names) + 1)), False))
        sections, line = [], 0
        for k in keep:
            pool = voc["sections"][names[k]]
            dishes = []
            for j in sorted(int(x) for x in rng.choice(len(pool), int(rng.integers(3, 6)), False)):
                dish, lo, hi, marks = pool[j]
                line += 1
                cents = int(rng.integers(int(lo) * 2, int(hi) * 2 + 1)) * 50
                dishes.append({"line": line, "dish": dish, "price": cents, "marks": ", ".join(marks)})
            sections.append({"name": names[k], "dishes": dishes})
        data.update({"restaurant": str(choice(rng, voc["names"])).format(city=fake.city(), last_name=fake.last_name()),
                     "address": fake.street_address(), "phone": fake.phone_number().split("x")[0].strip(),
                     "sections": sections})
        return data

    def entities(self, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for sec in data["sections"]:
            for d in sec["dishes"]:
                marks = set(d["marks"].split(", ")) if d["marks"] else set()
                out.append((f"dish{d['line']}", {
                    "dish": d["dish"], "section": sec["name"], "price": d["price"] / 100, "marks": d["marks"],
                    "vegetarian": "yes" if marks & {"V", "VG"} else "no", "vegan": "yes" if "VG" in marks else "no",
                    "gluten_free": "yes" if "GF" in marks else "no"}))
        return out

    def fields(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"restaurant": data["restaurant"], "currency": data["currency"],
                "n_items": sum(len(s["dishes"]) for s in data["sections"])}

    def context(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**super().context(data), "item_noun": "dish", "restaurant": data["restaurant"]}

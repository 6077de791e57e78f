"""Record documents: a financial statement (merged headers, subtotals, footnotes), a form (fields,
checkboxes, signature) and a timetable; layouts in templates/documents, boxes read back with PyMuPDF."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from deltaprompts.generators.base import choice, register
from deltaprompts.generators.locales import format_date
from deltaprompts.generators.records_base import RecordDocument, record_knobs, short

_STATEMENTS = (
    ("Statement of Operations", "Operating income",
     (("Revenue", "Total revenue", ("Product sales", "Subscription revenue", "Services", "Licensing",
                                    "Maintenance contracts", "Other income")),
      ("Operating expenses", "Total operating expenses", ("Salaries and wages", "Rent and utilities", "Marketing",
                                                          "Research and development", "Depreciation",
                                                          "General and administrative", "Travel")))),
    ("Budget Report", "Surplus",
     (("Income", "Total income", ("Grants", "Membership fees", "Donations", "Ticket sales", "Interest income")),
      ("Expenditure", "Total expenditure", ("Staff costs", "Premises", "Programme delivery", "Insurance",
                                            "IT and equipment", "Professional fees")))),
    ("Segment Results", "Segment profit",
     (("Net sales", "Total net sales", ("Hardware", "Software", "Cloud services", "Consulting", "Support")),
      ("Costs", "Total costs", ("Cost of goods sold", "Distribution", "Selling expenses", "Administration",
                                "Amortisation")))),
)
_FOOTNOTES = ("Restated to reflect the new segment structure.", "Net of returns and allowances.",
              "Includes a one-off gain from the sale of equipment.", "Excludes share-based compensation.",
              "Unaudited figures.", "Includes costs of the office relocation.", "Converted at average rates.",
              "Reclassified from other income.", "Includes two months of the acquired business.")
_FORMS = (
    ("Membership Application", ("Full name", "Date of birth", "Email", "Phone", "City", "Postal code", "Member number"),
     (("Membership type", ("Individual", "Family", "Student", "Senior"), True),
      ("Interests", ("Newsletters", "Events", "Volunteering", "Workshops", "Sports"), False))),
    ("Change of Address Request", ("Full name", "Customer number", "New street address", "City", "Postal code",
                                   "Phone", "Effective date"),
     (("Apply the change to", ("Billing", "Delivery", "Both"), True),
      ("Notify me by", ("Email", "SMS", "Post", "Phone call"), False))),
    ("Patient Registration", ("Patient name", "Date of birth", "Phone", "Email", "Insurance number",
                              "Emergency contact"),
     (("Do you have any of the following?", ("Allergies", "Diabetes", "Asthma", "Heart condition", "Migraine"), False),
      ("Preferred appointment time", ("Morning", "Afternoon", "Evening"), True))),
)
_STOPS = ("Central Station", "Market Square", "Old Town", "Harbour", "Civic Centre", "Park Road", "Mill Lane",
          "University", "Hospital", "Riverside", "North Gate", "Church Street", "Sports Ground", "Bus Depot",
          "Airport", "Museum", "High Street", "Castle Hill", "West End", "Library", "Oak Avenue", "Town Hall",
          "Lakeside", "Fire Station", "Stadium", "Beach Road", "Science Park", "Quarry Lane", "Kings Cross",
          "Station Road")


def _fmt_time(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}"


@register
class Statement(RecordDocument):
    """A financial statement: two column groups under merged headers, two sections with subtotals,
    a bottom line, footnote markers on rows and the footnotes; one subtotal may be misprinted."""

    name = "document.statement"
    kind = "statement"
    version = "1"
    description = "Financial statement table with merged column headers, subtotals and footnotes."
    knobs = record_knobs("statement", 100)

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        data, fake = self.common(rng, knobs)
        title, bottom, secs = _STATEMENTS[int(rng.integers(len(_STATEMENTS)))]
        y = int(rng.integers(2016, 2025))
        groups, subs = choice(rng, (((f"FY{y}", f"FY{y + 1}"), ("H1", "H2")), ((str(y), str(y + 1)), ("Q3", "Q4")),
                                    (("Actual", "Budget"), (str(y), str(y + 1)))))
        sections, totals = [], []
        for si, (sname, stotal, pool) in enumerate(secs):
            n = int(rng.integers(3, min(6, len(pool)) + 1))
            labels = [str(x) for x in rng.choice(pool, size=n, replace=False)]
            scale = 1.0 if si == 0 else float(rng.uniform(0.6, 0.95)) * len(sections[0]["rows"]) / n
            rows = [{"id": f"s{si}r{k}", "label": lab, "note": "",
                     "values": [int(rng.integers(80, 2400) * scale) for _ in range(4)]} for k, lab in enumerate(labels)]
            sub = [sum(r["values"][c] for r in rows) for c in range(4)]
            sections.append({"id": f"s{si}", "name": sname, "rows": rows,
                             "subtotal": {"id": f"s{si}sub", "label": stotal, "values": sub}})
        misprint = None
        if rng.random() < 0.5:  # one printed subtotal disagrees with its lines (an audit question finds it)
            si, col = int(rng.integers(2)), int(rng.integers(4))
            off = int(choice(rng, (-1, 1))) * int(choice(rng, (10, 20, 50, 90, 100, 110)))
            sections[si]["subtotal"]["values"][col] += off
            misprint = [si, col]
        totals = [sections[0]["subtotal"]["values"][c] - sections[1]["subtotal"]["values"][c] for c in range(4)]
        items = [r for s in sections for r in s["rows"]]
        notes = [str(x) for x in rng.choice(_FOOTNOTES, size=int(rng.integers(2, 4)), replace=False)]
        marked = sorted(int(i) for i in rng.choice(len(items), size=len(notes), replace=False))
        for marker, i in zip("abc", marked):
            items[i]["note"] = marker
        data.update({"company": short(fake.company(), 48), "title": title, "groups": list(groups),
                     "subs": list(subs), "sections": sections,
                     "total": {"id": "total", "label": bottom, "values": totals}, "misprint": misprint,
                     "footnotes": [{"marker": m, "text": t} for m, t in zip("abc", notes)],
                     "unit_note": "(in thousands)", "doc_noun": "statement"})
        return data

    def entities(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        cols = [(g, c) for g in data["groups"] for c in data["subs"]]
        for s in data["sections"]:
            for kind, row in [*(("item", r) for r in s["rows"]), ("subtotal", s["subtotal"])]:
                for k, (g, c) in enumerate(cols):
                    attrs = {"row": row["label"], "section": s["name"], "group": g, "column": c,
                             "value": row["values"][k], "kind": kind}
                    if row.get("note"):
                        attrs["footnote"] = row["note"]
                    role = f"cell:{row['id']}:v{k}"
                    out.append({"id": f"{row['id']}.v{k}", "attrs": attrs, "page": 0, "roles": [role],
                                "printed": {"value": role}})
        for k, (g, c) in enumerate(cols):
            role = f"cell:total:v{k}"
            out.append({"id": f"total.v{k}", "page": 0, "roles": [role], "printed": {"value": role},
                        "attrs": {"row": data["total"]["label"], "group": g, "column": c,
                                  "value": data["total"]["values"][k], "kind": "total"}})
        return out

    def fields(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"company": data["company"], "title": data["title"],
                **{f"footnote_{f['marker']}": f["text"] for f in data["footnotes"]}}

    def context(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**super().context(data), "unit": "thousands", "company": data["company"]}


@register
class Form(RecordDocument):
    """A filled-in form: labelled fields, checkbox groups with some boxes ticked, a signature line."""

    name = "document.form"
    kind = "form"
    version = "1"
    description = "Filled-in form with key-value fields, ticked and empty checkboxes and a signature line."
    knobs = record_knobs("form", 100)

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        data, fake = self.common(rng, knobs)
        title, labels, groups = _FORMS[int(rng.integers(len(_FORMS)))]
        loc = data["locale"]
        name = fake.name()
        born = dt.date(1945, 1, 1) + dt.timedelta(days=int(rng.integers(0, 60 * 365)))
        signed = dt.date(2019, 1, 1) + dt.timedelta(days=int(rng.integers(0, 6 * 365)))
        values = {"Full name": name, "Patient name": name, "Date of birth": format_date(born, loc, "medium"),
                  "Email": fake.ascii_free_email(), "Phone": fake.phone_number().split("x")[0].strip(),
                  "City": fake.city(), "Postal code": fake.postcode(),
                  "Member number": f"M-{int(rng.integers(10000, 99999))}",
                  "Customer number": f"{int(rng.integers(10**7, 10**8))}",
                  "New street address": short(fake.street_address(), 40),
                  "Effective date": format_date(signed + dt.timedelta(days=int(rng.integers(7, 60))), loc, "medium"),
                  "Insurance number": f"{fake.bothify('??#######').upper()}", "Emergency contact": fake.name()}
        fields = [{"id": f"f{i}", "label": lab, "value": short(str(values[lab]), 40)} for i, lab in enumerate(labels)]
        boxes = []
        for g, (gname, options, single) in enumerate(groups):
            n_tick = 1 if single else int(rng.integers(1, len(options)))
            ticked = {int(i) for i in rng.choice(len(options), size=n_tick, replace=False)}
            boxes.append({"id": f"g{g}", "name": gname, "single": single, "options": [
                {"id": f"o{g}_{k}", "label": o, "ticked": k in ticked} for k, o in enumerate(options)]})
        data.update({"title": title, "org": short(fake.company(), 44), "form_number": f"{int(rng.integers(100, 999))}-"
                     f"{choice(rng, 'ABCDEFGH')}", "fields": fields, "groups": boxes, "signer": name,
                     "signed_on": format_date(signed, loc, "medium"), "doc_noun": "form"})
        return data

    def entities(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        out = [{"id": f["id"], "page": 0, "roles": [f"label:{f['id']}", f"cell:{f['id']}:value"],
                "attrs": {"field": f["label"], "value": f["value"]}} for f in data["fields"]]
        for g in data["groups"]:
            for o in g["options"]:
                out.append({"id": o["id"], "page": 0, "roles": [f"cell:{o['id']}:box", f"cell:{o['id']}:option"],
                            "attrs": {"group": g["name"], "option": o["label"], "ticked": "yes" if o["ticked"] else "no"}})
        return out

    def fields(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"title": data["title"], "signed_on": data["signed_on"], "signer": data["signer"]}


@register
class Timetable(RecordDocument):
    """A bus or train timetable: stops by departures, times in 24-hour clock, some stops skipped."""

    name = "document.timetable"
    kind = "timetable"
    version = "1"
    description = "Bus or train timetable: departure times of several services at each stop."
    knobs = record_knobs("timetable", 100)

    def sample_data(self, rng: np.random.Generator, knobs: dict[str, Any]) -> dict[str, Any]:
        data, fake = self.common(rng, knobs)
        mode = str(choice(rng, ("Bus", "Train")))
        n_stops, n_trips = int(rng.integers(6, 10)), int(rng.integers(4, 8))
        stops = [str(s) for s in rng.choice(_STOPS, size=n_stops, replace=False)]
        legs = [int(rng.integers(2, 9 if mode == "Bus" else 16)) for _ in range(n_stops - 1)]
        first = int(rng.integers(5 * 60 + 30, 9 * 60))
        headway = int(choice(rng, (10, 12, 15, 20, 30, 45, 60)))
        base = int(rng.integers(10, 90)) * (100 if mode == "Train" else 1)
        trips = []
        for j in range(n_trips):
            t = first + j * headway + int(rng.integers(-2, 3)) * (j > 0)
            times = []
            for i in range(n_stops):
                skip = 0 < i < n_stops - 1 and rng.random() < 0.08
                times.append(None if skip else t)
                if i < n_stops - 1:
                    t += legs[i] + int(rng.integers(0, 2))
            trips.append({"id": f"t{j}", "number": str(base + 2 * j), "times": times})
        line = f"{choice(rng, ('Line', 'Route'))} {int(rng.integers(1, 99))}" if mode == "Bus" else \
            f"{choice(rng, ('RE', 'RB', 'IC', 'S'))} {int(rng.integers(1, 40))}"
        data.update({"mode": mode, "line": line, "operator": short(fake.company(), 40), "stops": stops,
                     "trips": [{**t, "text": [None if m is None else _fmt_time(m) for m in t["times"]]} for t in trips],
                     "valid_from": format_date(dt.date(2020, 1, 1) + dt.timedelta(days=int(rng.integers(0, 5 * 365))),
                                               data["locale"], "medium"),
                     "days": str(choice(rng, ("Monday to Friday", "Saturdays", "Sundays and holidays", "Daily"))),
                     "doc_noun": "timetable"})
        return data

    def entities(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        board = "board" in data["layout"]
        out = []
        for i, stop in enumerate(data["stops"]):
            for t in data["trips"]:
                m = t["times"][i]
                if m is None:
                    continue
                role = f"cell:{t['id']}:s{i}" if board else f"cell:s{i}:{t['id']}"
                out.append({"id": f"s{i}{t['id']}", "page": 0, "roles": [role], "printed": {"minutes": role},
                            "attrs": {"stop": stop, "trip": t["number"], "time": _fmt_time(m), "minutes": m}})
        return out

    def fields(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"line": data["line"], "days": data["days"]}

    def context(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**super().context(data), "mode": data["mode"].lower(), "line": data["line"],
                "service": "train" if data["mode"] == "Train" else "bus"}

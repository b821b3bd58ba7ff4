"""Who answered what: authors by thematic area (or GCM objective), counting the answers each gave.

A reader of 39 voluntary reports first wants to know where the material is thin: which areas a
State left blank, which objectives only civil society wrote about. Counts come from the forms read
at indexing (:mod:`gcm_qa.forms`); an answer that says "no information" is not counted, and a
questionnaire whose layout could not be read is listed with no counts rather than with zeros, since
nothing is known about it. Pure tabulation, plus the heat map and the CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gcm_qa.forms import FormReading
from gcm_qa.types import DocMeta

By = Literal["area", "objective"]


@dataclass
class Coverage:
    by: By
    columns: list[int]  # area or objective numbers
    authors: list[str]
    stakeholders: list[str]
    counts: list[list[int | None]]  # per author, per column; None: the author's forms were not read
    unread: dict[str, list[str]] = field(default_factory=dict)  # author -> files without a form layout

    def total(self, row: int) -> int | None:
        values = self.counts[row]
        return None if any(v is None for v in values) else sum(v or 0 for v in values)

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        label = "thematic area" if self.by == "area" else "objective"
        writer.writerow(["author", "stakeholder", *[f"{label} {c}" for c in self.columns], "total"])
        for i, author in enumerate(self.authors):
            cells = ["" if v is None else v for v in self.counts[i]]
            total = self.total(i)
            writer.writerow([author, self.stakeholders[i], *cells, "" if total is None else total])
        return out.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "columns": self.columns,
                "rows": [{"author": a, "stakeholder": s, "counts": c}
                         for a, s, c in zip(self.authors, self.stakeholders, self.counts, strict=True)],
                "unread": self.unread}


def tabulate(documents: Sequence[DocMeta], forms: Mapping[str, FormReading], by: By = "area",
             columns: Sequence[int] = ()) -> Coverage:
    """``documents``: every indexed document (only questionnaires count); ``forms``: by doc id.
    ``columns``: the areas (or objectives) to show, default every one that any answer touches,
    1-5 for areas and 1-23 for objectives."""
    columns = list(columns) or (list(range(1, 6)) if by == "area" else list(range(1, 24)))
    rows: dict[str, list[int | None]] = {}
    kinds: dict[str, str] = {}
    unread: dict[str, list[str]] = {}
    for meta in documents:
        if meta.kind != "questionnaire":
            continue
        row = rows.setdefault(meta.author, [0] * len(columns))
        kinds.setdefault(meta.author, meta.stakeholder)
        form = forms.get(meta.doc_id)
        if form is None or not form.detected:
            unread.setdefault(meta.author, []).append(meta.file)
            continue
        for record in form.records:
            if not record.answered:
                continue
            tags = record.areas if by == "area" else record.objectives
            for t in set(tags):
                if t in columns:
                    j = columns.index(t)
                    row[j] = (row[j] or 0) + 1
    authors = sorted(rows, key=lambda a: (kinds[a], a))
    counts: list[list[int | None]] = []
    for a in authors:
        read_any = a not in unread or len(unread[a]) < sum(
            1 for m in documents if m.author == a and m.kind == "questionnaire")
        counts.append(rows[a] if read_any else [None] * len(columns))
    return Coverage(by, columns, authors, [kinds[a] for a in authors], counts, unread)


def heat_map(coverage: Coverage) -> bytes:
    """A PNG: authors down, areas or objectives across, each cell shaded and labelled with its count;
    a form that could not be read is hatched grey, not shown as zero."""
    import matplotlib

    matplotlib.use("Agg")  # no display; safe in the chat's worker threads
    import matplotlib.pyplot as plt
    import numpy as np

    n_rows, n_cols = len(coverage.authors), len(coverage.columns)
    data = np.array([[np.nan if v is None else v for v in row] for row in coverage.counts], dtype=float)
    data = data.reshape(n_rows, n_cols)
    width = max(5.0, 1.2 + 0.55 * n_cols + 0.07 * max((len(a) for a in coverage.authors), default=10))
    fig, ax = plt.subplots(figsize=(width, max(2.0, 0.9 + 0.38 * n_rows)), dpi=110)
    try:
        cmap = matplotlib.colormaps["YlGnBu"].with_extremes(bad="#dddddd")
        image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, aspect="auto", vmin=0,
                          vmax=max(1.0, float(np.nanmax(data)) if np.isfinite(data).any() else 1.0))
        label = "Thematic area" if coverage.by == "area" else "Objective"
        ax.set_xticks(range(n_cols), [str(c) for c in coverage.columns])
        ax.set_xlabel(label)
        ax.set_yticks(range(n_rows), [f"{a} ({s})" for a, s in zip(coverage.authors, coverage.stakeholders,
                                                                       strict=True)])
        ax.xaxis.set_label_position("top")
        ax.xaxis.tick_top()
        top = np.nanmax(data) if np.isfinite(data).any() else 0
        for i in range(n_rows):
            for j in range(n_cols):
                value = data[i, j]
                if not np.isnan(value):
                    ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8,
                            color="white" if value > top * 0.6 else "black")
            if np.isnan(data[i]).all():
                ax.text((n_cols - 1) / 2, i, "form layout not read", ha="center", va="center", fontsize=8)
        fig.colorbar(image, ax=ax, label="answers given", fraction=0.04, pad=0.02)
        ax.set_title("Answers per author", fontsize=10, loc="left", pad=24)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)

"""PNG plots of how cost grows (matplotlib), one per curve of the results: each series is a
line over x, Orders' figures and their peers' on the same axes."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

from bench.report import load_suites


def write_plots(results: dict[str, Any], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    suites = load_suites(results)
    written = []
    for curve in (c for s in suites for c in s["curves"]):
        lines: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for figure in (f for s in suites for f in s["figures"]):
            if figure.curve == curve.id and figure.x is not None:
                lines[figure.series or figure.label].append((figure.x, figure.value))
        figure_, axes = plt.subplots(figsize=(7, 4.2), dpi=100)
        for series, points in lines.items():
            points.sort()
            axes.plot([x for x, _ in points], [y for _, y in points], marker="o", label=series)
        if curve.log_x:
            axes.set_xscale("log")
            xs = sorted({x for points in lines.values() for x, _ in points})
            axes.set_xticks(xs, [f"{x:,g}" for x in xs])
            axes.minorticks_off()
        if curve.log_y:
            axes.set_yscale("log")
        axes.set_title(curve.title, fontsize=10)
        axes.set_xlabel(curve.x_label)
        axes.set_ylabel(curve.y_label)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8)
        figure_.text(
            0.99,
            0.01,
            f"{results['run']['date']}, scale {results['run']['scale']}",
            ha="right",
            fontsize=6,
            color="gray",
        )
        figure_.tight_layout()
        path = directory / f"{curve.id}.png"
        # No timestamp in the PNG's metadata: the same figures give the same file.
        figure_.savefig(path, metadata={"Software": None})
        plt.close(figure_)
        written.append(path)
    return written

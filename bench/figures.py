"""What a benchmark reports to `make bench`: figures, what bounds them, targets and curves.

A benchmark module in `bench/suites/` registers itself with `@suite(...)`; its function gets
a `Run` and reports through it:

    @suite("relay", order=70, title="Kafka relay")
    async def relay(run: Run) -> None:
        mine = run.figure("relay.events", "relay, 100k events into Kafka", rate, "events/s")
        bare = run.figure("relay.bare", "bare transactional producer", bare_rate, "events/s",
                          peer=True)
        run.bound(mine, bare, "ceiling", at_least=0.5)

Nothing else lists it: `python -m bench` finds every module of `bench.suites`, runs each in
a process of its own, and the table, the README sections and the plots are built from the
figures and bounds alone (bench/report.py, bench/plots.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

T = TypeVar("T")

BoundKind = Literal["peer", "ceiling"]


@dataclass(frozen=True)
class Figure:
    """One measured number. `peer` figures (a peer's or a ceiling's) are shown beside the
    figures they bound, not as rows of their own. A figure on a curve names the curve, its
    series (a line of the plot) and its x."""

    id: str
    label: str
    value: float
    unit: str
    detail: str = ""
    lower_is_better: bool = False
    peer: bool = False
    curve: str | None = None
    series: str | None = None
    x: float | None = None


@dataclass(frozen=True)
class Bound:
    """`figure` measured beside `against` (a peer doing the same work, or a ceiling no
    implementation of the work can pass) in the same run; `at_least` is the target ratio."""

    figure: str
    against: str
    kind: BoundKind
    at_least: float | None = None


@dataclass(frozen=True)
class Target:
    """An absolute target for one figure (in its unit)."""

    figure: str
    at_least: float | None = None
    at_most: float | None = None


@dataclass(frozen=True)
class Curve:
    """A plot: each series of its figures is a line over x."""

    id: str
    title: str
    x_label: str
    y_label: str
    log_x: bool = True
    log_y: bool = False


def ratio(figure: Figure, against: Figure) -> float:
    """How `figure` compares with `against`, larger is better for Orders either way."""
    if figure.lower_is_better:
        return against.value / figure.value if figure.value else float("inf")
    return figure.value / against.value if against.value else float("inf")


@dataclass(frozen=True)
class Scale:
    """How long and how large each benchmark runs: `full` for `make bench`, `smoke` to prove
    inside `make test` that every benchmark still runs and prints (no figure is meaningful)."""

    name: Literal["full", "smoke"]

    @property
    def smoke(self) -> bool:
        return self.name == "smoke"

    def pick(self, full: T, smoke: T) -> T:
        return smoke if self.smoke else full

    @property
    def seconds(self) -> float:
        """Length of one steady-state measurement."""
        return self.pick(5.0, 0.5)

    @property
    def warmup(self) -> float:
        return self.pick(1.0, 0.0)

    @property
    def clients(self) -> tuple[int, ...]:
        """The client counts of every scaling curve."""
        return self.pick((1, 4, 16, 64), (2,))

    def sizes(self, name: str, full: tuple[int, ...], smoke: tuple[int, ...]) -> tuple[int, ...]:
        """The points of a curve of work sizes; BENCH_<NAME>=a,b,... overrides the full
        scale's (the run records every override beside its results)."""
        given = os.environ.get(f"BENCH_{name.upper()}")
        if given and not self.smoke:
            return tuple(int(size) for size in given.split(","))
        return self.pick(full, smoke)

    @staticmethod
    def from_environment() -> Scale:
        name = os.environ.get("BENCH_SCALE", "full")
        if name == "full":
            return Scale("full")
        if name == "smoke":
            return Scale("smoke")
        raise SystemExit(f"BENCH_SCALE must be full or smoke, not {name!r}")


@dataclass
class Run:
    """What one benchmark reports; printed as it goes, saved as JSON for the report."""

    scale: Scale
    workdir: Path
    profile: bool = False
    figures: list[Figure] = field(default_factory=list)
    bounds: list[Bound] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)

    def figure(
        self,
        id: str,
        label: str,
        value: float,
        unit: str,
        detail: str = "",
        *,
        lower_is_better: bool = False,
        peer: bool = False,
        curve: str | None = None,
        series: str | None = None,
        x: float | None = None,
    ) -> Figure:
        if any(f.id == id for f in self.figures):
            raise ValueError(f"figure {id!r} reported twice")
        figure = Figure(
            id, label, float(value), unit, detail, lower_is_better, peer, curve, series, x
        )
        self.figures.append(figure)
        shown = f" ({detail})" if detail else ""
        print(f"  {label}: {format_value(figure)}{shown}", flush=True)
        return figure

    def bound(
        self, figure: Figure, against: Figure, kind: BoundKind, at_least: float | None = None
    ) -> None:
        self.bounds.append(Bound(figure.id, against.id, kind, at_least))
        print(
            f"    beside {kind} {against.label}: {format_value(against)}, "
            f"ratio {ratio(figure, against):.2f}",
            flush=True,
        )

    def target(
        self, figure: Figure, at_least: float | None = None, at_most: float | None = None
    ) -> None:
        self.targets.append(Target(figure.id, at_least, at_most))

    def curve(self, curve: Curve) -> None:
        self.curves.append(curve)

    def to_json(self) -> dict[str, Any]:
        return {
            "figures": [asdict(f) for f in self.figures],
            "bounds": [asdict(b) for b in self.bounds],
            "targets": [asdict(t) for t in self.targets],
            "curves": [asdict(c) for c in self.curves],
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1))


def format_value(figure: Figure) -> str:
    value = float(figure.value)  # a results file may hold it as an int
    if value != value:  # NaN: nothing measured
        return "n/a"
    if abs(value) >= 100 or value.is_integer():
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {figure.unit}"


# A benchmark: an async function of the run.
SuiteRun = Callable[["Run"], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Suite:
    name: str
    order: int
    title: str
    needs: tuple[str, ...]  # "postgres", "mongo", "kafka": from tests/services/with-services
    run: SuiteRun


SUITES: dict[str, Suite] = {}


def suite(
    name: str, *, order: int, title: str, needs: tuple[str, ...] = ()
) -> Callable[[SuiteRun], SuiteRun]:
    """Register a benchmark: `python -m bench` runs every registered suite in `order`."""

    def register(run: SuiteRun) -> SuiteRun:
        if name in SUITES:
            raise ValueError(f"two benchmarks named {name!r}")
        SUITES[name] = Suite(name, order, title, needs, run)
        return run

    return register

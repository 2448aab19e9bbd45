"""Counters, gauges and histograms, rendered in the Prometheus text format.

Hand-written rather than ``prometheus_client``: a node needs three metric
kinds with labels, no global registry, no threads of their own and nothing
that touches the event loop; the text format (version 0.0.4) is a page of
code. The event loop updates the metrics (one exception: fsync timings,
which the compaction thread reports too, through storage's ``FsyncStats``);
the monitor thread only renders (``render`` copies each label table before
iterating it, an atomic step under the GIL, so a label set added meanwhile
cannot break it).

``RecentLatency`` keeps the last few seconds of request latencies in
one-second histogram slots, for the status feed's requests/s and p99.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

# Seconds. Fine at the low end (a prediction takes ~0.1 ms), up to a minute.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536)
DURATION_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


_Child = TypeVar("_Child")


class _Metric(Generic[_Child]):
    """A metric family: one child (a value or a set of buckets) per label set."""

    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._children: dict[tuple[str, ...], _Child] = {}

    def _labels_text(self, values: tuple[str, ...], extra: str = "") -> str:
        parts = [f'{k}="{_escape(v)}"' for k, v in zip(self.label_names, values, strict=True)]
        if extra:
            parts.append(extra)
        return "{" + ",".join(parts) + "}" if parts else ""

    def _head(self, name: str | None = None) -> list[str]:
        name = name or self.name
        return [f"# HELP {name} {self.help}", f"# TYPE {name} {self.kind}"]

    def render(self) -> list[str]:
        raise NotImplementedError


class _Value:
    """One counter or gauge sample (the child of one label set)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def set(self, value: float) -> None:
        self.value = value


class Counter(_Metric[_Value]):
    """A value that only grows; rendered as ``<name>_total``. ``labels(*values)``
    is the child of one label set, ``inc`` the unlabelled one."""

    kind = "counter"

    def labels(self, *values: str) -> _Value:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = _Value()
        return child

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)

    def value(self, *values: str) -> float:
        child = self._children.get(values)
        return child.value if child is not None else 0.0

    def render(self) -> list[str]:
        name = self.name + "_total"  # text format 0.0.4: the family is named as its samples
        lines = self._head(name)
        for values, child in list(self._children.items()):
            lines.append(f"{name}{self._labels_text(values)} {_number(child.value)}")
        return lines


class Gauge(Counter):
    """A value that is ``set``: a level read from the node's state."""

    kind = "gauge"

    def set(self, value: float) -> None:
        self.labels().set(value)

    def render(self) -> list[str]:
        lines = self._head()
        for values, child in list(self._children.items()):
            lines.append(f"{self.name}{self._labels_text(values)} {_number(child.value)}")
        return lines


class _Buckets:
    """One histogram's counts per bucket, sum and count (one label set)."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound (+Inf)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1


class Histogram(_Metric[_Buckets]):
    """Observations counted into fixed ``buckets`` (upper bounds), rendered
    cumulatively with ``_bucket{le=...}``, ``_sum`` and ``_count``."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        super().__init__(name, help_text, labels)
        self.bounds = tuple(float(b) for b in buckets)

    def labels(self, *values: str) -> _Buckets:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = _Buckets(self.bounds)
        return child

    def observe(self, value: float) -> None:
        self.labels().observe(value)

    def render(self) -> list[str]:
        lines = self._head()
        for values, child in list(self._children.items()):
            counts, total, count = list(child.counts), child.sum, child.count
            running = 0
            for bound, n in zip((*self.bounds, math.inf), counts, strict=True):
                running += n
                le = 'le="' + _number(bound) + '"'
                lines.append(f"{self.name}_bucket{self._labels_text(values, le)} {running}")
            lines.append(f"{self.name}_sum{self._labels_text(values)} {_number(total)}")
            lines.append(f"{self.name}_count{self._labels_text(values)} {count}")
        return lines


_M = TypeVar("_M", bound=_Metric[Any])


class Registry:
    """The metrics of one node, in the order they were made."""

    def __init__(self, prefix: str = "zmqnode_") -> None:
        self.prefix = prefix
        self._metrics: list[_Metric[Any]] = []

    def _add(self, metric: _M) -> _M:
        self._metrics.append(metric)
        return metric

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        return self._add(Counter(self.prefix + name, help_text, labels))

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        return self._add(Gauge(self.prefix + name, help_text, labels))

    def histogram(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> Histogram:
        return self._add(Histogram(self.prefix + name, help_text, labels, buckets))

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics:
            lines += metric.render()
        return "\n".join(lines) + "\n"


class RecentLatency:
    """Requests/s and latency quantiles over the last ``seconds`` (one-second slots)."""

    def __init__(self, seconds: int = 5, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._slots: dict[int, _Buckets] = {}

    def observe(self, latency: float, second: int | None = None) -> None:
        """Record one latency (``second``: ``int(clock())`` if the caller has it)."""
        if second is None:
            second = int(self.clock())
        slot = self._slots.get(second)
        if slot is None:
            slot = self._slots[second] = _Buckets(LATENCY_BUCKETS)
            for old in [s for s in self._slots if s <= second - self.seconds]:
                del self._slots[old]
        slot.observe(latency)

    def _window(self) -> list[_Buckets]:
        now = int(self.clock())
        return [b for s, b in self._slots.items() if now - self.seconds < s <= now]

    def rate(self) -> float:
        """Requests per second over the window (a partial current second included)."""
        window = self._window()
        if not window:
            return 0.0
        elapsed = self.seconds - 1 + (self.clock() % 1.0)
        return sum(b.count for b in window) / max(elapsed, 1.0)

    def quantile(self, q: float) -> float | None:
        """The bucket bound below which a fraction ``q`` of the window's latencies lie."""
        window = self._window()
        total = sum(b.count for b in window)
        if not total:
            return None
        counts = [sum(b.counts[i] for b in window) for i in range(len(LATENCY_BUCKETS) + 1)]
        rank, running = q * total, 0
        for bound, n in zip((*LATENCY_BUCKETS, math.inf), counts, strict=True):
            running += n
            if running >= rank:
                return bound
        return math.inf

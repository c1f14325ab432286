"""Reading `/metrics` answers (with prometheus_client's own parser) and multiprocess files."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


@dataclass(frozen=True)
class Scrape:
    families: dict[str, str]  # name -> type
    samples: tuple[Sample, ...]

    def value(self, sample: str, **labels: str) -> float:
        """The sum of the samples named `sample` whose labels include `labels`
        (0 when there are none, as for a series nothing has recorded yet)."""
        return sum(s.value for s in self.samples if s.name == sample
                   and all(s.labels.get(k) == v for k, v in labels.items()))

    def series(self, sample: str) -> list[dict[str, str]]:
        """The label sets of the samples named `sample`."""
        return [s.labels for s in self.samples if s.name == sample]


def read_metrics(text: str) -> Scrape:
    """A `/metrics` answer, parsed."""
    return of_families(text_string_to_metric_families(text))


def of_families(families: Iterable[Metric]) -> Scrape:
    """Metric families (parsed, or read from multiprocess files) as a `Scrape`."""
    families = list(families)
    return Scrape({f.name: f.type for f in families},
                  tuple(sample for f in families for sample in f.samples))

"""The protocol a suite runs and, for a paper's protocol, the numbers the paper publishes.

A suite's ``protocol:`` section names the experiment (Park et al. 2023's, Hyper-Modulation's,
this benchmark's few-shot one), says where the suite had to decide something the paper leaves
open, and carries the paper's published values, or only its rankings where that is all the paper
gives, keyed by target, metric and the paper's own method names::

    protocol:
      name: Park et al. 2023
      paper: 'Park et al. 2023, "How to train your pre-trained GAN models", Applied Intelligence 53(22)'
      notes: [the layer numbering is not defined; mapped onto blocks as ...]
      methods: {partial fine-tuning: partial, MineGAN with GLO: null}   # the paper's name -> our label
      published: {cars: {fid: {partial fine-tuning: 10.84}}}
      rankings: {cars: {coverage: {best: partial fine-tuning, worst: MineGAN}}}

A run writes the section into the results store (``runs/<suite>/protocol.yaml``) so that the
report, which reads only the store, can put the published values beside ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from benchmark.errors import BenchmarkError
from benchmark.metrics.registry import all_metrics

if TYPE_CHECKING:
    from benchmark.store import ResultsStore

RANKS = ("best", "worst")
PROTOCOL_KEYS = ("name", "paper", "notes", "methods", "published", "rankings")


@dataclass(frozen=True)
class ProtocolConfig:
    """The experiment a suite runs, and what its paper reports.

    Args:
        name: a short name for tables and the dry run ("Park et al. 2023", "few-shot").
        paper: the full reference; None for this benchmark's own protocols.
        notes: where the suite decides what the paper leaves open, and how it maps the paper's
            settings onto ours.
        methods: the paper's method names -> our method labels (None: a method we do not run).
        published: ``{target: {metric: {paper method: value}}}``, the paper's numbers as it prints
            them (text: "57.30" keeps its trailing zero).
        rankings: ``{target: {metric: {"best": [paper methods], "worst": [...]}}}``, where the
            paper says which method is best or worst (with or without a number).
    """

    name: str
    paper: str | None = None
    notes: tuple[str, ...] = ()
    methods: dict = field(default_factory=dict)
    published: dict = field(default_factory=dict)
    rankings: dict = field(default_factory=dict)

    def label(self, paper_method: str) -> str | None:
        """Our label of one of the paper's methods (None when we do not run it)."""
        return self.methods.get(paper_method)

    def shown_name(self, paper_method: str) -> str:
        """How a published row is labelled: our label, or the paper's name with "(not run)"."""
        label = self.label(paper_method)
        return label if label is not None else f"{paper_method} (not run)"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "paper": self.paper,
            "notes": list(self.notes),
            "methods": dict(self.methods),
            "published": self.published,
            "rankings": self.rankings,
        }


def parse_protocol(raw, where: str, method_labels: list[str]) -> ProtocolConfig | None:
    """Validate a suite's ``protocol:`` section (None when the suite has none)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BenchmarkError(f"{where}: expected a mapping with a name, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(PROTOCOL_KEYS))
    if unknown:
        raise BenchmarkError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(PROTOCOL_KEYS)}")
    if not isinstance(raw.get("name"), str) or not raw["name"].strip():
        raise BenchmarkError(f"{where}: missing its name (e.g. name: Park et al. 2023)")
    notes = raw.get("notes") or []
    notes = tuple(str(n).strip() for n in ([notes] if isinstance(notes, str) else notes))

    methods = _mapping(raw.get("methods"), f"{where}: methods")
    for paper_name, label in methods.items():
        if label is not None and label not in method_labels:
            raise BenchmarkError(
                f"{where}: methods maps {paper_name!r} to {label!r}, which is not a method of the suite "
                f"({', '.join(method_labels)}); use null for a method the suite does not run"
            )
    metrics = {m.name for m in all_metrics() if not m.diagnostic}

    def check(target: str, metric: str, names, what: str) -> None:
        if metric not in metrics:
            valid = ", ".join(sorted(metrics))
            raise BenchmarkError(f"{where}: {what}.{target}: unknown metric {metric!r}; valid: {valid}")
        for name in names:
            if name not in methods:
                raise BenchmarkError(
                    f"{where}: {what}.{target}.{metric} names {name!r}, which protocol.methods does not list"
                )

    published: dict = {}
    for target, by_metric in _mapping(raw.get("published"), f"{where}: published").items():
        for metric, values in _mapping(by_metric, f"{where}: published.{target}").items():
            values = _mapping(values, f"{where}: published.{target}.{metric}")
            check(target, metric, values, "published")
            published.setdefault(str(target), {})[metric] = {
                str(name): _as_printed(value, f"{where}: published.{target}.{metric}.{name}")
                for name, value in values.items()
            }

    rankings: dict = {}
    for target, by_metric in _mapping(raw.get("rankings"), f"{where}: rankings").items():
        for metric, ranks in _mapping(by_metric, f"{where}: rankings.{target}").items():
            ranks = _mapping(ranks, f"{where}: rankings.{target}.{metric}")
            bad = sorted(set(ranks) - set(RANKS))
            if bad:
                raise BenchmarkError(f"{where}: rankings.{target}.{metric}: unknown key(s) {bad}; valid: best, worst")
            ranks = {k: [v] if isinstance(v, str) else list(v or []) for k, v in ranks.items()}
            check(target, metric, [n for names in ranks.values() for n in names], "rankings")
            rankings.setdefault(str(target), {})[metric] = ranks
    return ProtocolConfig(
        raw["name"].strip(), raw.get("paper"), notes, {str(k): v for k, v in methods.items()}, published, rankings
    )


def _as_printed(value, where: str) -> str:
    """A published number as the paper prints it: a quoted "57.30" keeps its trailing zero."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BenchmarkError(f"{where} must be a number, got {value!r}")
    text = str(value).strip()
    try:
        float(text)
    except ValueError:
        raise BenchmarkError(f"{where} must be a number, got {value!r}") from None
    return text


def _mapping(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BenchmarkError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


# --------------------------------------------------------------------------------------------
# In the results store: written by a run, read by the report.


def protocol_path(store: ResultsStore, suite_name: str) -> Path:
    return store.out / "runs" / suite_name / "protocol.yaml"


def save_protocol(store: ResultsStore, suite_name: str, protocol: ProtocolConfig | None) -> Path | None:
    """Record a suite's protocol beside its run folders (the newest run's section stands)."""
    if protocol is None:
        return None
    from benchmark.io import write_yaml

    return write_yaml(protocol.to_dict(), protocol_path(store, suite_name))


def load_protocol(store: ResultsStore, suite_name: str) -> ProtocolConfig | None:
    """The protocol a run of ``suite_name`` recorded in ``store``, or None."""
    path = protocol_path(store, suite_name)
    if not path.is_file():
        return None
    raw = yaml.safe_load(path.read_text()) or {}
    labels = [label for label in (raw.get("methods") or {}).values() if label is not None]
    return parse_protocol(raw, str(path), labels)

"""Prometheus metrics (prometheus-client): what this process did, and the due backlog, counted when
/metrics is scraped. Recording is cheap and always on; serving is a setting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric, StateSetMetricFamily
from prometheus_client.registry import Collector

from digest.model.source import STATES

disable_created_metrics()  # the *_created series only restate the process start time
REGISTRY = CollectorRegistry(auto_describe=True)
FETCHES = Counter(
    "digest_fetches", "Fetches of sources, by source and outcome.", ["source", "status"], registry=REGISTRY
)
PAPERS = Counter("digest_papers_ingested", "New papers stored.", ["source"], registry=REGISTRY)
MAILS = Counter(
    "digest_mails",
    "Mails handed to the transport, by kind (digest, confirm, manage) and outcome (sent, failed).",
    ["kind", "status"],
    registry=REGISTRY,
)
SEND_SECONDS = Histogram(
    "digest_send_seconds",
    "Seconds from handing a digest to the transport to its outcome.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)


def mail(kind: str, ok: bool) -> None:
    MAILS.labels(kind, "sent" if ok else "failed").inc()


class Backlog(Collector):
    """``digest_due_backlog``: digests due now and not yet sent (pending, or failed and due for retry)."""

    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "digest_due_backlog",
            "Digests due and not yet sent (pending or due for a retry).",
            value=self.count(),
        )


class SourceStates(Collector):
    """``digest_source_state`` (one series per source and state, 1 for the current one) and
    ``digest_source_last_new_paper_age_seconds``, from ``found``: rows as
    digest.usecases.sources.list_sources gives them, at ``now``."""

    def __init__(self, found: Callable[[], tuple[list[dict[str, Any]], datetime]]) -> None:
        self.found = found

    def collect(self) -> Iterator[Metric]:
        rows, now = self.found()
        states = StateSetMetricFamily(
            "digest_source_state",
            "Each source's state: fresh, resting, late, stale or failing (see digest sources list).",
            labels=["source"],
        )
        age = GaugeMetricFamily(
            "digest_source_last_new_paper_age_seconds",
            "Seconds since each source last brought an item it had never listed.",
            labels=["source"],
        )
        for row in rows:
            states.add_metric([row["name"]], {state: row["state"] == state for state in STATES})
            if row["last_new_at"]:
                seconds = (now - datetime.fromisoformat(row["last_new_at"])).total_seconds()
                age.add_metric([row["name"]], max(0.0, seconds))
        yield states
        yield age


def exposition(
    backlog: Callable[[], int], sources: Callable[[], tuple[list[dict[str, Any]], datetime]]
) -> bytes:
    """The metrics in the Prometheus text format, the backlog counted now by ``backlog`` and the
    sources' states read now by ``sources``."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(Backlog(backlog))
    registry.register(SourceStates(sources))
    return generate_latest(REGISTRY) + generate_latest(registry)

"""Health, readiness, metrics, and the JSON bodies of 404 and 405."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Server, StartServer
from .helpers import assert_error, http_client, publish, unique_channel, wait_for_metric

METRIC_TYPES = {
    "realtime_connections": "gauge",
    "realtime_subscribers": "gauge",
    "realtime_events_published": "counter",
    "realtime_events_delivered": "counter",
    "realtime_slow_consumer_disconnects": "counter",
    "realtime_broker_up": "gauge",
}
PROTOCOLS = {"sse", "ndjson", "websocket"}


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with http_client(server) as client:
        yield client


def test_healthz(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz(client: httpx.Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_metrics_are_prometheus_text_with_every_metric_of_the_contract(
    client: httpx.Client,
) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    for name, kind in METRIC_TYPES.items():
        assert name in families, f"{name} missing from /metrics"
        assert families[name].type == kind, f"{name} is a {families[name].type}, not a {kind}"
    samples = {
        sample.name: sample.value
        for family in families.values()
        for sample in family.samples
        if not sample.labels
    }
    for name in (
        "realtime_subscribers",
        "realtime_events_published_total",
        "realtime_slow_consumer_disconnects_total",
        "realtime_broker_up",
    ):
        assert name in samples, f"no sample {name}"
    assert samples["realtime_broker_up"] == 1


def test_metrics_have_no_per_channel_labels(client: httpx.Client) -> None:
    channel = unique_channel()
    publish(client, channel, 1)
    text = client.get("/metrics").text
    assert channel not in text
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("realtime_"):
            continue
        for sample in family.samples:
            assert set(sample.labels) <= {"protocol"}, sample
            if sample.labels:
                assert sample.labels["protocol"] in PROTOCOLS, sample


def test_published_counter_counts_every_publish(start_server: StartServer) -> None:
    server = start_server()
    before = server.metric("realtime_events_published_total")
    with http_client(server) as client:
        for number in range(7):
            publish(client, unique_channel(), number)
        response = client.post(f"/channels/{unique_channel()}/events", content=b"{")
        assert response.status_code in (400, 415)
    wait_for_metric(server, "realtime_events_published_total", "", before + 7)


@pytest.mark.parametrize(
    "path", ["/nope", "/channels", "/channels/c", "/channels/c/events/extra", "/static/nope.js"]
)
def test_unknown_paths_are_json_404(client: httpx.Client, path: str) -> None:
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/healthz"),
        ("DELETE", "/readyz"),
        ("PUT", "/metrics"),
        ("DELETE", "/channels/c/events"),
        ("PUT", "/channels/c/events"),
    ],
)
def test_other_methods_are_json_405(client: httpx.Client, method: str, path: str) -> None:
    assert_error(client.request(method, path), 405, "method_not_allowed")

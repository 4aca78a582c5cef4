"""/metrics, read by the Prometheus client library's own parsers in both formats."""

from __future__ import annotations

import random
import string

import httpx
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_classic

from .conftest import CUSTOMER_KEY, fixture_articles


def scrape(server, accept: str | None) -> tuple[str, str]:
    headers = {"Accept": accept} if accept else {}
    r = httpx.get(f"{server.url}/metrics", headers=headers, timeout=30)
    assert r.status_code == 200
    return r.headers["content-type"], r.text


def families(parse, text: str) -> dict:
    return {f.name: f for f in parse(text)}


def live_articles() -> int:
    """Fixture articles that are not archived and have a published translation."""
    n = 0
    for f in fixture_articles():
        if f.get("archived"):
            continue
        published = [t for t in f["translations"] if not t.get("draft")]
        if published or not f["article"].get("draft"):
            n += 1
    return n


def test_classic_text_parses_with_counters_whole(server):
    # Some traffic first, so the request histogram has series.
    with server.client(CUSTOMER_KEY) as c:
        assert c.get("/v1/search", params={"q": "refund"}).status_code == 200
    ctype, text = scrape(server, None)
    assert ctype.startswith("text/plain; version=0.0.4")
    fams = families(parse_classic, text)
    runs = fams["helpdex_sync_runs"]
    assert runs.type == "counter"
    assert {s.name for s in runs.samples} == {"helpdex_sync_runs_total"}
    assert any(s.labels["result"] == "ok" and s.value >= 1 for s in runs.samples)
    assert fams["helpdex_build_info"].type == "gauge"
    build = fams["helpdex_build_info"].samples[0]
    assert build.value == 1 and build.labels["version"] and build.labels["commit"]
    for name in [
        "helpdex_articles",
        "helpdex_translations",
        "helpdex_index_passages",
        "helpdex_index_bytes",
        "helpdex_store_bytes",
        "helpdex_index_generation",
        "helpdex_search_duration_seconds",
        "helpdex_http_request_duration_seconds",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds",
    ]:
        assert name in fams, name
    assert fams["helpdex_index_bytes"].samples[0].value > 0
    search = [s for s in fams["helpdex_search_duration_seconds"].samples if s.name.endswith("_count")]
    assert any(s.labels == {"kind": "search", "surface": "http"} and s.value >= 1 for s in search)


def test_articles_are_articles_not_translations(server):
    _, text = scrape(server, None)
    fams = families(parse_classic, text)
    articles = sum(s.value for s in fams["helpdex_articles"].samples)
    translations = sum(s.value for s in fams["helpdex_translations"].samples)
    assert articles == live_articles(), (articles, live_articles())
    assert translations > articles


def test_openmetrics_is_negotiated_and_parses(server):
    ctype, text = scrape(server, "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
    assert ctype.startswith("application/openmetrics-text; version=1.0.0")
    assert text.endswith("# EOF\n")
    fams = families(parse_openmetrics, text)
    assert fams["helpdex_sync_runs"].type == "counter"
    assert fams["helpdex_build_info"].type == "gauge"
    assert fams["process_cpu_seconds"].type == "counter"


def test_made_up_methods_do_not_grow_the_label_set(server):
    def series() -> int:
        _, text = scrape(server, None)
        return sum(
            1
            for s in families(parse_classic, text)["helpdex_http_request_duration_seconds"].samples
            if s.name.endswith("_count")
        )

    with httpx.Client(base_url=server.url, timeout=10) as c:
        c.request("BREW", "/v1/search")
        before = series()
        for _ in range(100):
            method = "X" + "".join(random.choices(string.ascii_uppercase, k=8))
            c.request(method, "/v1/search")
    assert series() == before

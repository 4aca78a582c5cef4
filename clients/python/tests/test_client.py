"""The Python client and its LangChain retriever against the real server."""

from __future__ import annotations

import re

import pytest
from langchain_core.documents import Document

from helpdex import HelpdexClient, HelpdexError, HelpdexRetriever

from .conftest import AGENT_KEY, CUSTOMER_KEY


@pytest.fixture
def customer(server):
    with HelpdexClient(server.url, api_key=CUSTOMER_KEY) as c:
        yield c


@pytest.fixture
def agent(server):
    with HelpdexClient(server.url, api_key=AGENT_KEY) as c:
        yield c


def test_search_and_context_are_cited(customer):
    hits = customer.search("export invoices to CSV", limit=5)["hits"]
    assert hits, "the fixture help center covers invoice exports"
    for h in hits:
        assert h["url"].startswith("http") and h["text"] and h["content_hash"]
        assert h["visibility"] == "public"
    ctx = customer.context("export invoices to CSV", max_chars=2000)
    assert ctx["found"] is True
    assert ctx["context"].startswith("[1] ")
    assert [c["n"] for c in ctx["citations"]] == list(range(1, len(ctx["citations"]) + 1))
    assert len(ctx["context"]) <= 2000


def test_a_customer_key_never_gets_internal_content(customer, agent):
    internal = [
        h
        for h in agent.search("fraud review escalation", audience="agent", limit=20)["hits"]
        if h["visibility"] == "internal"
    ]
    assert internal, "the fixture has internal articles about fraud review"
    with pytest.raises(HelpdexError) as e:
        customer.search("fraud review", audience="agent")
    assert e.value.status == 403 and e.value.code == "forbidden"
    seen = {h["article_id"] for h in customer.search("fraud review escalation", limit=50)["hits"]}
    assert not seen & {h["article_id"] for h in internal}
    with pytest.raises(HelpdexError) as e:
        customer.article(internal[0]["article_id"])
    assert e.value.status == 404


def test_errors_say_what_to_fix(customer, server):
    with pytest.raises(HelpdexError) as e:
        customer.search("x" * 4001)
    assert e.value.code == "bad_request" and "at most 4000 characters" in e.value.message
    with pytest.raises(HelpdexError) as e:
        customer.context("refund", limit=0)
    assert "limit: must be between 1 and 50" in e.value.message
    with pytest.raises(HelpdexError) as e:
        HelpdexClient(server.url, api_key="wrong-key-0123456789").search("x")
    assert e.value.status == 401 and e.value.code == "unauthorized"


def test_verify_answers_for_each_citation(customer):
    hits = customer.search("export invoices to CSV", limit=3)["hits"]
    checked = customer.verify(hits)
    assert checked["all_current"] is True
    assert [r["status"] for r in checked["results"]] == ["current"] * len(hits)
    missing = re.sub(r"/articles/\d+", "/articles/1", hits[0]["url"])
    gone = customer.verify([{"url": missing, "content_hash": "0" * 64}])
    assert gone["results"][0]["status"] == "gone"
    changed = customer.verify([{"url": hits[0]["url"], "content_hash": "0" * 64}])
    assert changed["results"][0]["status"] == "changed"
    assert changed["results"][0]["current_hash"] == hits[0]["content_hash"]


def test_the_retriever_gives_cited_documents(customer, openapi):
    retriever = HelpdexRetriever(client=customer, k=4, max_chars=3000)
    docs = retriever.invoke("how do I get a refund?")
    assert docs and all(isinstance(d, Document) for d in docs)
    ctx = customer.context("how do I get a refund?", limit=4, max_chars=3000)
    assert [d.page_content for d in docs] == [h["text"] for h in ctx["hits"]]
    hit_fields = openapi["components"]["schemas"]["Hit"]["properties"]
    for d, h in zip(docs, ctx["hits"]):
        m = d.metadata
        assert m["url"] == h["url"] and m["title"] == h["title"]
        assert m["visibility"] == "public" and m["locale"] == h["locale"]
        assert m["article_id"] == h["article_id"] and m["content_hash"] == h["content_hash"]
        if "passage_id" in hit_fields:
            assert m["passage_id"] == h["passage_id"]


def test_the_retriever_runs_inside_a_langchain_chain(customer):
    from langchain_core.runnables import RunnableLambda

    retriever = HelpdexRetriever(client=customer, k=3)
    chain = retriever | RunnableLambda(lambda docs: [d.metadata["url"] for d in docs])
    urls = chain.invoke("reset my password")
    assert urls and all(u.startswith("http") for u in urls)
    batch = retriever.batch(["refund", "invoice"])
    assert len(batch) == 2 and all(batch)

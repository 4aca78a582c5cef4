"""MCP over Streamable HTTP at /mcp, driven by the official MCP Python SDK: initialize with a
key, list the tools with their output schemas, call each tool. The SDK itself validates every
successful result's structuredContent against the tool's outputSchema."""

from __future__ import annotations

import asyncio

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from .conftest import AGENT_KEY, CUSTOMER_KEY

TOOLS = {"search_help_center", "get_context", "get_article", "verify_citations"}


async def session_run(server, key, body):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http:
        async with streamable_http_client(f"{server.url}/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                return await body(session, init)


def run(server, key, body):
    return asyncio.run(session_run(server, key, body))


def test_a_session_lists_and_calls_every_tool_with_output_schemas(server):
    async def body(session, init):
        assert init.server_info.name == "helpdex"
        assert init.capabilities.tools is not None
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == TOOLS
        for t in tools.values():
            assert t.output_schema and t.output_schema["type"] == "object", t.name
            assert t.input_schema["properties"]["audience"]["enum"] == ["customer"], t.name
        search = await session.call_tool("search_help_center", {"query": "refund", "limit": 3})
        assert not search.is_error, search
        hits = search.structured_content["hits"]
        assert hits and all(h["visibility"] == "public" for h in hits)
        assert hits[0]["url"] in search.content[0].text
        ctx = await session.call_tool("get_context", {"query": "refund", "max_chars": 1500})
        assert not ctx.is_error and ctx.structured_content["found"] is True
        art = await session.call_tool("get_article", {"article_id": hits[0]["article_id"]})
        assert not art.is_error
        assert art.structured_content["article_id"] == hits[0]["article_id"]
        ver = await session.call_tool("verify_citations", {"citations": hits})
        assert not ver.is_error
        assert [r["status"] for r in ver.structured_content["results"]] == ["current"] * len(hits)
        return True

    assert run(server, CUSTOMER_KEY, body)


def test_the_key_bounds_the_audience(server):
    async def customer(session, _):
        r = await session.call_tool("search_help_center", {"query": "fraud review", "audience": "agent"})
        assert r.is_error
        assert "audience 'agent' is not allowed" in r.content[0].text
        return True

    async def agent(session, _):
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert tools["search_help_center"].input_schema["properties"]["audience"]["enum"] == ["customer", "agent"]
        r = await session.call_tool("search_help_center", {"query": "fraud review", "audience": "agent", "limit": 20})
        assert not r.is_error
        assert any(h["visibility"] == "internal" for h in r.structured_content["hits"])
        return True

    assert run(server, CUSTOMER_KEY, customer)
    assert run(server, AGENT_KEY, agent)


def test_no_key_no_session(server):
    r = httpx2.post(
        f"{server.url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Accept": "application/json, text/event-stream"},
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"

"""A small synchronous client for the helpdex HTTP API (`helpdex serve`)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import httpx


class HelpdexError(Exception):
    """An error answer of the API: ``{"error": {"code", "message"}}``.

    ``code`` is one of ``bad_request``, ``unauthorized``, ``forbidden``, ``not_found``,
    ``busy``, ``unavailable``, ``internal``; ``message`` says what to do.
    """

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class HelpdexClient:
    """Calls one helpdex server with one API key.

    >>> client = HelpdexClient("http://127.0.0.1:7700", api_key="...")
    >>> client.context("how do I export invoices?")["context"]
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ):
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = http or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self._headers = headers

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "HelpdexClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kw: Any) -> Any:
        resp = self._http.request(method, path, headers=self._headers, **kw)
        if resp.status_code >= 400:
            try:
                err = resp.json()["error"]
                raise HelpdexError(resp.status_code, err["code"], err["message"])
            except (ValueError, KeyError, TypeError):
                raise HelpdexError(resp.status_code, "unknown", resp.text[:200]) from None
        return resp.json()

    @staticmethod
    def _access(
        audience: str | None, signed_in: bool | None, segments: Iterable[int] | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if audience is not None:
            out["audience"] = audience
        if signed_in is not None:
            out["signed_in"] = signed_in
        if segments:
            out["segments"] = list(segments)
        return out

    def search(
        self,
        query: str,
        *,
        audience: str | None = None,
        locale: str | None = None,
        limit: int | None = None,
        signed_in: bool | None = None,
        segments: Iterable[int] | None = None,
    ) -> dict[str, Any]:
        """``GET /v1/search``: cited passages (``{"query", "audience", "hits"}``)."""
        params: dict[str, Any] = {"q": query}
        access = self._access(audience, signed_in, segments)
        if "segments" in access:
            access["segments"] = ",".join(str(s) for s in access["segments"])
        if "signed_in" in access:
            access["signed_in"] = "true" if access["signed_in"] else "false"
        params.update(access)
        if locale is not None:
            params["locale"] = locale
        if limit is not None:
            params["limit"] = limit
        return self._send("GET", "/v1/search", params=params)

    def context(
        self,
        query: str,
        *,
        audience: str | None = None,
        locale: str | None = None,
        limit: int | None = None,
        max_chars: int | None = None,
        signed_in: bool | None = None,
        segments: Iterable[int] | None = None,
    ) -> dict[str, Any]:
        """``POST /v1/context``: a grounding context, its citations and the hits it holds."""
        body: dict[str, Any] = {"query": query, **self._access(audience, signed_in, segments)}
        if locale is not None:
            body["locale"] = locale
        if limit is not None:
            body["limit"] = limit
        if max_chars is not None:
            body["max_chars"] = max_chars
        return self._send("POST", "/v1/context", json=body)

    def article(
        self,
        article_id: int,
        *,
        locale: str | None = None,
        audience: str | None = None,
        signed_in: bool | None = None,
        segments: Iterable[int] | None = None,
    ) -> dict[str, Any]:
        """``GET /v1/articles/{id}``: every readable translation of an article."""
        params: dict[str, Any] = {}
        access = self._access(audience, signed_in, segments)
        if "segments" in access:
            access["segments"] = ",".join(str(s) for s in access["segments"])
        if "signed_in" in access:
            access["signed_in"] = "true" if access["signed_in"] else "false"
        params.update(access)
        if locale is not None:
            params["locale"] = locale
        return self._send("GET", f"/v1/articles/{int(article_id)}", params=params)

    def verify(
        self,
        citations: Sequence[Mapping[str, Any]],
        *,
        audience: str | None = None,
        signed_in: bool | None = None,
        segments: Iterable[int] | None = None,
    ) -> dict[str, Any]:
        """``POST /v1/verify``: is each citation (a hit as returned, or ``{"passage_id"}``, or
        ``{"url", "content_hash"}``) ``current``, ``changed`` or ``gone``?"""
        body = {
            "citations": [dict(c) for c in citations],
            **self._access(audience, signed_in, segments),
        }
        return self._send("POST", "/v1/verify", json=body)

"""A LangChain retriever over ``POST /v1/context`` (needs ``langchain-core``)."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from .client import HelpdexClient


class HelpdexRetriever(BaseRetriever):
    """Retrieves the passages of a helpdex grounding context as LangChain documents.

    Each ``Document.page_content`` is a passage's text; its metadata carries what a citation
    needs: ``title``, ``heading``, ``url``, ``passage_id``, ``content_hash``, ``visibility``,
    ``locale``, ``article_id``, ``source`` and ``score``. The passages are those the context
    holds within ``max_chars``, best first. Audience rules are the server's: a customer key
    never gets internal content, whatever ``audience`` says.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: HelpdexClient
    audience: str | None = None
    signed_in: bool | None = None
    segments: list[int] | None = None
    locale: str | None = None
    k: int = 8
    max_chars: int | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        resp = self.client.context(
            query,
            audience=self.audience,
            signed_in=self.signed_in,
            segments=self.segments,
            locale=self.locale,
            limit=self.k,
            max_chars=self.max_chars,
        )
        return [to_document(hit) for hit in resp["hits"]]


def to_document(hit: dict[str, Any]) -> Document:
    """One hit as a LangChain document."""
    keys = (
        "title",
        "heading",
        "url",
        "passage_id",
        "content_hash",
        "visibility",
        "locale",
        "article_id",
        "source",
        "score",
        "updated_at",
    )
    return Document(
        page_content=hit["text"],
        metadata={k: hit[k] for k in keys if hit.get(k) is not None},
    )

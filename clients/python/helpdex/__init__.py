"""Python client for helpdex: cited, visibility-aware search over a Zendesk Help Center.

``HelpdexClient`` calls the HTTP API of ``helpdex serve``; ``HelpdexRetriever`` (with
``langchain-core`` installed) is a LangChain retriever over ``/v1/context``.
"""

from .client import HelpdexClient, HelpdexError

__all__ = ["HelpdexClient", "HelpdexError", "HelpdexRetriever"]


def __getattr__(name: str):
    # The retriever needs langchain-core; import it only when asked for.
    if name == "HelpdexRetriever":
        from .retriever import HelpdexRetriever

        return HelpdexRetriever
    raise AttributeError(name)

"""Multi-corpus search: the same vector against every corpus at once, one merged top k by score."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from services.matrixd.schemas import SearchMatch, SearchRequest
from services.vectord.client import VectordClient, VectordError
from services.vectord.schemas import IndexInfo, QueryRequest, QueryResult
from shared.errors import LakehouseError


@dataclass(frozen=True, slots=True)
class CorpusAnswer:
    corpus: str
    info: IndexInfo | None = None
    result: QueryResult | None = None
    error: str | None = None


async def ask(vectord: VectordClient, corpus: str, query: QueryRequest) -> CorpusAnswer:
    info, result = await asyncio.gather(vectord.index(corpus), vectord.query(corpus, query), return_exceptions=True)
    for outcome in (info, result):
        if isinstance(outcome, VectordError):
            return CorpusAnswer(corpus, error=f"{outcome.status} {outcome.code}: {outcome.message}")
        if isinstance(outcome, BaseException):
            raise outcome
    assert isinstance(info, IndexInfo)
    assert isinstance(result, QueryResult)
    return CorpusAnswer(corpus, info=info, result=result)


def merge(answers: list[CorpusAnswer], k: int) -> tuple[list[SearchMatch], dict[str, str]]:
    """The overall top k, best first; 400 when the corpora that answered do not share a metric."""
    answered = [a for a in answers if a.info is not None and a.result is not None]
    errors = {a.corpus: a.error for a in answers if a.error is not None}
    if not answered:
        shown = "; ".join(f"{corpus}: {message}" for corpus, message in errors.items())
        raise LakehouseError("upstream_error", f"no corpus answered: {shown}")
    metrics = {a.corpus: a.info.metric for a in answered if a.info is not None}
    if len(set(metrics.values())) > 1:
        shown = ", ".join(f'{corpus} is "{metric}"' for corpus, metric in metrics.items())
        raise LakehouseError("invalid_request", f"corpora must share a metric for their scores to compare: {shown}")
    matches = [
        SearchMatch(corpus=a.corpus, id=m.id, score=m.score, metadata=m.metadata)
        for a in answered
        if a.result is not None
        for m in a.result.matches
    ]
    matches.sort(key=lambda m: m.score, reverse=True)
    return matches[:k], errors


async def search(
    vectord: VectordClient, request: SearchRequest, vector: list[float]
) -> tuple[list[SearchMatch], dict[str, str]]:
    query = QueryRequest(vector=vector, k=request.k, filter=request.filter)
    answers = await asyncio.gather(*(ask(vectord, corpus, query) for corpus in request.corpora))
    return merge(list(answers), request.k)

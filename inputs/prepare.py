"""What an import does to each chunk of a file before it is stored, once for every brand.

A chunk is parsed once (inputs.mentions.parse_chunk); each mention is matched against
every brand's query with the language it came with; only a mention some brand wants,
and whose language is unknown, goes through language detection (once per distinct text
of the chunk, all at once: analysis.language.detect_languages), and is checked again
with the detected language (a query's language filter applies to detected languages
too). Matching first matters: most rows of a large export name no tracked brand.

VADER's scores of the relevant texts it covers, and their near-duplicate fingerprints,
are computed here too, so that with ``--workers N`` all of this runs in worker processes
(analysis.parallel_scoring's pool) while the writer stores the previous chunk; the
writer's scoring chain then finds them ready (listener.ingest.ReadyVader), and its
duplicate check the fingerprints (listener.pipeline.Pipeline.store_relevant).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from analysis.duplicates import fingerprint
from analysis.language import detect_languages
from analysis.parallel_scoring import worker_vader
from analysis.sentiment import Score, VaderScorer, covers
from connectors.base import BrandQuery, Mention
from connectors.query import is_mention_of, with_own_mark
from inputs.mentions import Chunk, FileFormat, parse_chunk


@dataclass(frozen=True, slots=True)
class Prepared:
    """One chunk, ready for the writer: each brand's relevant mentions in file order,
    VADER's score of each of their texts it covers, each text's near-duplicate
    fingerprint (analysis.duplicates), and the chunk's bad lines."""

    fetched: int
    relevant: dict[str, tuple[Mention, ...]]
    vader: dict[str, Score]
    fingerprints: dict[str, int | None]
    bad: tuple[tuple[int, str], ...]
    bytes_read: int


def relevant_mentions(mentions: Sequence[Mention], queries: Sequence[BrandQuery]) -> dict[str, list[Mention]]:
    """Each query's brand -> the mentions it wants, as that brand's mentions (marked as its
    own where one of its accounts wrote them), in order. Languages are detected for the
    wanted mentions only, once per distinct text, all in one batch (detect_languages)."""
    wanted: dict[str, list[Mention]] = {query.brand: [] for query in queries}
    matched = []
    for mention in mentions:
        # Whether a post is the brand's own depends on the brand: marked per query.
        hits = [(query, marked) for query in queries
                if is_mention_of(query, marked := with_own_mark(query, mention))]
        if hits:
            matched.append((mention, hits))
    unknown = list(dict.fromkeys(mention.text for mention, _ in matched if mention.lang is None))
    detected = dict(zip(unknown, detect_languages(unknown)))
    for mention, hits in matched:
        lang = mention.lang
        if lang is None and (lang := detected[mention.text]) is not None:
            # Checked again with the language: only a query with a language filter can
            # change its mind (the rest of the check does not read it).
            hits = [(query, marked) for query, marked in hits
                    if not query.languages or is_mention_of(query, marked.replace(lang=lang))]
        for query, marked in hits:
            # One copy per brand, carrying its brand and the language at once.
            wanted[query.brand].append(marked if marked.brand == query.brand and marked.lang == lang
                                       else marked.replace(brand=query.brand, lang=lang))
    return wanted


def prepare_chunk(chunk: Chunk, how: FileFormat, fetched_at: datetime, queries: Sequence[BrandQuery],
                  vader: VaderScorer | None = None) -> Prepared:
    """Parse, match, detect and VADER-score one chunk (in this process, or a worker's)."""
    parsed = parse_chunk(chunk, how, fetched_at)
    relevant = relevant_mentions(parsed.mentions, queries)
    vader = vader or worker_vader()
    texts = list(dict.fromkeys(m.text for found in relevant.values() for m in found
                               if covers(vader.languages, m.lang)))
    return Prepared(
        fetched=len(parsed.mentions),
        relevant={brand: tuple(found) for brand, found in relevant.items()},
        vader=dict(zip(texts, vader.score(texts))),
        fingerprints={text: fingerprint(text) for text in dict.fromkeys(m.text for found in relevant.values()
                                                                          for m in found)},
        bad=parsed.bad,
        bytes_read=chunk.bytes_read,
    )

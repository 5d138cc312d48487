# fmt: off
"""The scorer's inner loop, compiled with Numba: match lines, keep the best line, top N per profile.

Works on flat arrays prepared by ``digest.scoring``. A line's matching papers are found with
bitsets (one bit per paper per feature): AND over its words and phrases, AND NOT over excluded
ones, and any-of over its authors and over its categories. Relevance is then the weighted sum of
its words' BM25 values, read from a dense table of the words some line requires. Profiles run in
parallel blocks, each with its own scratch.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

REQUIRE, FORBID, AUTHOR_IN, AUTHOR_OUT, CAT_IN, CAT_OUT = range(6)
BLOCK = 256


@njit(cache=True, parallel=True)
def rank_profiles(
    line_ptr, slot_ptr, position, slot_feature, slot_role, slot_weight, slot_row, values, word_bits,
    author_bits, cat_bits, trending, id_rank, relevance_weight, trending_weight, filter_only, limits,
    minimums, out_doc, out_score, out_relevance, out_line
):
    """Fill out_* (profiles x max limit; doc -1 where empty) with each profile's best papers."""
    n_profiles = line_ptr.size - 1
    n_docs = trending.size
    words = word_bits.shape[1]
    full = np.zeros(words, dtype=np.uint64)
    for doc in range(n_docs):
        full[doc // 64] |= np.uint64(1) << np.uint64(doc % 64)
    for block in prange((n_profiles + BLOCK - 1) // BLOCK):
        matched = np.empty(words, dtype=np.uint64)
        any_author = np.empty(words, dtype=np.uint64)
        any_cat = np.empty(words, dtype=np.uint64)
        best = np.zeros(n_docs)
        best_line = np.zeros(n_docs, dtype=np.int64)
        touched = np.empty(n_docs, dtype=np.int64)
        for profile in range(block * BLOCK, min(n_profiles, (block + 1) * BLOCK)):
            seen = 0
            for line in range(line_ptr[profile], line_ptr[profile + 1]):
                if not _match(
                    line, slot_ptr, slot_feature, slot_role, word_bits, author_bits, cat_bits, full,
                    matched, any_author, any_cat
                ):
                    continue
                seen = _score_line(
                    line, slot_ptr, slot_role, slot_weight, slot_row, values, matched, filter_only,
                    best, best_line, touched, seen
                )
            _keep_top(
                profile, touched[:seen], best, best_line, position, trending, id_rank,
                relevance_weight, trending_weight, limits, minimums, out_doc, out_score, out_relevance,
                out_line
            )
            for k in range(seen):
                best[touched[k]] = 0.0


@njit(cache=True)
def _match(
    line, slot_ptr, slot_feature, slot_role, word_bits, author_bits, cat_bits, full, matched,
    any_author, any_cat
):
    """Set ``matched`` to the papers the line's conditions allow; False when none (or a word is absent)."""
    words = matched.size
    matched[:] = full
    wants_author = False
    wants_cat = False
    any_author[:] = 0
    any_cat[:] = 0
    for slot in range(slot_ptr[line], slot_ptr[line + 1]):
        feature = slot_feature[slot]
        role = slot_role[slot]
        if role == REQUIRE:
            if feature < 0:
                return False
            for w in range(words):
                matched[w] &= word_bits[feature, w]
        elif role == FORBID:
            if feature >= 0:
                for w in range(words):
                    matched[w] &= ~word_bits[feature, w]
        elif role == AUTHOR_IN:
            wants_author = True
            for w in range(words):
                any_author[w] |= author_bits[feature, w]
        elif role == AUTHOR_OUT:
            for w in range(words):
                matched[w] &= ~author_bits[feature, w]
        elif role == CAT_IN:
            wants_cat = True
            for w in range(words):
                any_cat[w] |= cat_bits[feature, w]
        else:
            for w in range(words):
                matched[w] &= ~cat_bits[feature, w]
    found = np.uint64(0)
    for w in range(words):
        if wants_author:
            matched[w] &= any_author[w]
        if wants_cat:
            matched[w] &= any_cat[w]
        found |= matched[w]
    return found != 0


@njit(cache=True)
def _score_line(
    line, slot_ptr, slot_role, slot_weight, slot_row, values, matched, filter_only, best, best_line,
    touched, seen
):
    """Put the line's relevance for each matched paper into ``best`` (max over lines); returns ``seen``."""
    for w in range(matched.size):
        bits = matched[w]
        base = w * 64
        while bits:
            low = bits & (~bits + np.uint64(1))
            doc = base + _bit_index(low)
            bits ^= low
            relevance = 0.0
            for slot in range(slot_ptr[line], slot_ptr[line + 1]):
                if slot_role[slot] == REQUIRE:
                    relevance += slot_weight[slot] * values[slot_row[slot], doc]
            if relevance == 0.0:
                relevance = filter_only
            if best[doc] == 0.0:
                touched[seen] = doc
                seen += 1
            if relevance > best[doc]:
                best[doc] = relevance
                best_line[doc] = line
    return seen


_DEBRUIJN = 0x03F79D71B4CB0A89
_DEBRUIJN_INDEX = np.zeros(64, dtype=np.int64)
for _bit in range(64):
    _DEBRUIJN_INDEX[((_DEBRUIJN << _bit) & 0xFFFFFFFFFFFFFFFF) >> 58] = _bit
_DEBRUIJN = np.uint64(_DEBRUIJN)


@njit(cache=True, inline="always")
def _bit_index(single):
    """Index of the only set bit of ``single`` (a De Bruijn multiplication, no loop)."""
    return _DEBRUIJN_INDEX[(single * _DEBRUIJN) >> np.uint64(58)]


@njit(cache=True)
def _keep_top(
    profile, docs, best, best_line, position, trending, id_rank, relevance_weight, trending_weight,
    limits, minimums, out_doc, out_score, out_relevance, out_line
):
    """Write the profile's best papers (final score, then paper id) to its out_* row, by insertion:
    the row is kept sorted, so each candidate costs a comparison with the row's last entry."""
    limit = limits[profile]
    filled = 0
    for doc in docs:
        final = relevance_weight * best[doc] + trending_weight * trending[doc]
        if final < minimums[profile]:
            continue
        if filled == limit and not _before(
            final, doc, out_score[profile, filled - 1], out_doc[profile, filled - 1], id_rank
        ):
            continue
        at = min(filled, limit - 1)
        while at > 0 and _before(final, doc, out_score[profile, at - 1], out_doc[profile, at - 1], id_rank):
            out_doc[profile, at] = out_doc[profile, at - 1]
            out_score[profile, at] = out_score[profile, at - 1]
            out_relevance[profile, at] = out_relevance[profile, at - 1]
            out_line[profile, at] = out_line[profile, at - 1]
            at -= 1
        out_doc[profile, at] = doc
        out_score[profile, at] = final
        out_relevance[profile, at] = best[doc]
        out_line[profile, at] = position[best_line[doc]]
        filled = min(filled + 1, limit)


@njit(cache=True, inline="always")
def _before(score, doc, other_score, other_doc, id_rank):
    """Does (score, doc) rank before (other_score, other_doc): higher score, then lower paper id."""
    return score > other_score or (score == other_score and id_rank[doc] < id_rank[other_doc])

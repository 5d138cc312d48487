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
MIN_FACTOR = 0.25  # how far dislikes can sink a paper a line matched: it stays, lower


@njit(cache=True, parallel=True)
def rank_profiles(
    line_ptr, slot_ptr, position, slot_feature, slot_role, slot_weight, slot_row, values, word_bits,
    author_bits, cat_bits, trending, id_rank, relevance_weight, trending_weight, filter_only, limits,
    minimums, out_doc, out_score, out_relevance, out_line, fb_ptr, fb_row, fb_sign, near_ptr, near_doc,
    near_value, lift, sink, related_scale, related_limits, out_near, rel_doc, rel_score, rel_relevance,
    rel_near
):
    """Fill out_* (profiles x max limit; doc -1 where empty) with each profile's best papers that a
    line matches, and rel_* with its best related ones (near a paper it liked, matched by no line).

    Feedback entry e of a profile (fb_ptr) is a paper (row fb_row[e] of the near_* matrix: the day's
    papers near it, with a nearness in (0, 1]) liked (fb_sign +1) or disliked (-1). A matched
    paper's relevance is multiplied by 1 + lift * liked - sink * disliked (at least MIN_FACTOR), its
    nearest liked and disliked nearness; a related one's is related_scale * (liked - sink * disliked).
    out_near and rel_near give the entry of the nearest liked paper (-1 for none).
    """
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
        liked = np.zeros(n_docs)
        liked_from = np.full(n_docs, -1, dtype=np.int64)
        disliked = np.zeros(n_docs)
        nearby = np.empty(n_docs, dtype=np.int64)
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
            near = _nearness(
                profile, fb_ptr, fb_row, fb_sign, near_ptr, near_doc, near_value, liked, liked_from,
                disliked, nearby
            )
            if near:
                for k in range(seen):
                    doc = touched[k]
                    best[doc] *= max(MIN_FACTOR, 1.0 + lift * liked[doc] - sink * disliked[doc])
            _keep_top(
                profile, touched[:seen], best, best_line, position, trending, id_rank,
                relevance_weight, trending_weight, limits, minimums, out_doc, out_score, out_relevance,
                out_line, liked_from, out_near
            )
            if near:
                _keep_related(
                    profile, nearby[:near], best, liked, liked_from, disliked, sink, related_scale,
                    trending, id_rank, relevance_weight, trending_weight, related_limits, minimums,
                    rel_doc, rel_score, rel_relevance, rel_near
                )
            for k in range(seen):
                best[touched[k]] = 0.0
            for k in range(near):
                doc = nearby[k]
                liked[doc] = 0.0
                disliked[doc] = 0.0
                liked_from[doc] = -1



@njit(cache=True)
def _nearness(
    profile, fb_ptr, fb_row, fb_sign, near_ptr, near_doc, near_value, liked, liked_from, disliked, nearby
):
    """Set liked/disliked to each paper's nearness to the profile's nearest liked and disliked
    paper (liked_from: which entry); returns how many papers it put in ``nearby``."""
    count = 0
    for entry in range(fb_ptr[profile], fb_ptr[profile + 1]):
        row = fb_row[entry]
        for k in range(near_ptr[row], near_ptr[row + 1]):
            doc = near_doc[k]
            value = near_value[k]
            if liked[doc] == 0.0 and disliked[doc] == 0.0:
                nearby[count] = doc
                count += 1
            if fb_sign[entry] > 0:
                if value > liked[doc]:
                    liked[doc] = value
                    liked_from[doc] = entry - fb_ptr[profile]
            elif value > disliked[doc]:
                disliked[doc] = value
    return count


@njit(cache=True)
def _keep_related(
    profile, docs, best, liked, liked_from, disliked, sink, related_scale, trending, id_rank,
    relevance_weight, trending_weight, related_limits, minimums, rel_doc, rel_score, rel_relevance,
    rel_near
):
    """Write the profile's best related papers (near a liked one, matched by no line) to its rel_* row."""
    limit = related_limits[profile]
    if limit == 0:
        return
    filled = 0
    for doc in docs:
        if best[doc] != 0.0 or liked[doc] == 0.0:
            continue
        relevance = related_scale * (liked[doc] - sink * disliked[doc])
        if relevance <= 0.0:
            continue
        final = relevance_weight * relevance + trending_weight * trending[doc]
        if final < minimums[profile]:
            continue
        if filled == limit and not _before(
            final, doc, rel_score[profile, filled - 1], rel_doc[profile, filled - 1], id_rank
        ):
            continue
        at = min(filled, limit - 1)
        while at > 0 and _before(final, doc, rel_score[profile, at - 1], rel_doc[profile, at - 1], id_rank):
            rel_doc[profile, at] = rel_doc[profile, at - 1]
            rel_score[profile, at] = rel_score[profile, at - 1]
            rel_relevance[profile, at] = rel_relevance[profile, at - 1]
            rel_near[profile, at] = rel_near[profile, at - 1]
            at -= 1
        rel_doc[profile, at] = doc
        rel_score[profile, at] = final
        rel_relevance[profile, at] = relevance
        rel_near[profile, at] = liked_from[doc]
        filled = min(filled + 1, limit)


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
    limits, minimums, out_doc, out_score, out_relevance, out_line, liked_from, out_near
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
            out_near[profile, at] = out_near[profile, at - 1]
            at -= 1
        out_doc[profile, at] = doc
        out_score[profile, at] = final
        out_relevance[profile, at] = best[doc]
        out_line[profile, at] = position[best_line[doc]]
        out_near[profile, at] = liked_from[doc]
        filled = min(filled + 1, limit)


@njit(cache=True, inline="always")
def _before(score, doc, other_score, other_doc, id_rank):
    """Does (score, doc) rank before (other_score, other_doc): higher score, then lower paper id."""
    return score > other_score or (score == other_score and id_rank[doc] < id_rank[other_doc])

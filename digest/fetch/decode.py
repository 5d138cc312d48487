"""Undo a response's Content-Encoding with the size cap applied while it inflates, not after.

One layer of gzip or deflate is accepted (that is all the fetcher asks for); stacked or unknown
encodings are refused, so a few kilobytes on the wire can never grow into gigabytes in memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from digest.errors import FetchError

_WINDOW = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def decoded(
    chunks: Iterable[bytes], content_encoding: str, limit: int, where: str, limit_name: str
) -> Iterator[bytes]:
    """Yield the decoded body of ``chunks``; never more than ``limit`` bytes in all.

    Raises FetchError when the body would pass ``limit`` once decoded, when the encoding is stacked
    or unknown, or when the compressed data is corrupt.
    """
    layers = [part.strip().lower() for part in content_encoding.split(",")]
    layers = [layer for layer in layers if layer and layer != "identity"]
    if not layers:
        yield from chunks
        return
    if len(layers) > 1:
        raise FetchError(
            f"{where} sent a body encoded {len(layers)} times over ({content_encoding}); refused "
            "(only one layer of gzip or deflate is accepted)."
        )
    if layers[0] not in _WINDOW:
        raise FetchError(f"{where} sent a body in an encoding digest did not ask for ({layers[0]}); refused.")
    yield from _inflate(chunks, layers[0], limit, where, limit_name)


def _inflate(
    chunks: Iterable[bytes], encoding: str, limit: int, where: str, limit_name: str
) -> Iterator[bytes]:
    too_big = f"{where} sent a body that inflates to over {limit:,} bytes ({limit_name}); refused."
    inflater = zlib.decompressobj(_WINDOW[encoding])
    first = True
    produced = 0
    for chunk in chunks:
        if first and encoding == "deflate" and chunk:
            first = False
            if chunk[0] & 0x0F != 8:  # not a zlib header: raw deflate, as some servers send it
                inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        pending = chunk
        while True:
            try:
                piece = inflater.decompress(pending, limit - produced + 1)
            except zlib.error as exc:
                raise FetchError(f"{where} sent a body that is not valid {encoding} ({exc}).") from None
            produced += len(piece)
            if produced > limit:
                raise FetchError(too_big)
            if piece:
                yield piece
            pending = inflater.unconsumed_tail
            if not pending:  # all input taken, and the output was not cut short by the limit
                break
    rest = inflater.flush()
    if produced + len(rest) > limit:
        raise FetchError(too_big)
    if rest:
        yield rest

"""Header safety: no header is built from unchecked text. Every value passes ``header_text``
(control and line separator characters become spaces) and is then encoded (RFC 2047 where not
ASCII) and folded."""

from __future__ import annotations

import base64
import re

# Characters that must never reach a header: C0/C1 controls, DEL, line and paragraph separators,
# and the invisible format characters (bidi overrides, zero-width) that disguise text.
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]"
)
HEADER_WIDTH = 76
MAX_LINE = 990  # SMTP allows 998 octets a line
ENCODED_WORD_BYTES = 45  # 60 base64 characters: an encoded word of at most 75


def header_text(value: str) -> str:
    """``value`` as one line of visible text: unsafe characters become spaces, runs of space one."""
    return " ".join(UNSAFE.sub(" ", value).split())


def encode_header(name: str, value: str) -> str:
    """A folded ``Name: value`` line (without the final CRLF): ASCII folded at spaces, anything else as
    RFC 2047 base64 encoded words, each whole characters of at most 45 bytes of UTF-8."""
    value = header_text(value)
    if value.isascii() and "=?" not in value:  # text shaped like an encoded word is encoded, not decoded
        return _fold(f"{name}: {value}")
    data, words = value.encode("utf-8"), []
    room = (HEADER_WIDTH - len(name) - 2 - len("=?utf-8?b??=")) // 4 * 3  # the first line has the name
    while data:
        cut = min(len(data), room if not words else ENCODED_WORD_BYTES)
        while cut < len(data) and data[cut] & 0xC0 == 0x80:  # not inside a character
            cut -= 1
        words.append(base64.b64encode(data[:cut]).decode("ascii"))
        data = data[cut:]
    encoded = (f"=?utf-8?b?{word}?=" for word in words)
    return f"{name}: " + "\r\n ".join(encoded)


def _fold(line: str) -> str:
    """Fold an ASCII header line at spaces so lines stay near HEADER_WIDTH."""
    if len(line) <= HEADER_WIDTH:
        return line
    lines, current = [], ""
    for word in line.split(" "):
        if current and len(current) + 1 + len(word) > HEADER_WIDTH:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return "\r\n ".join(lines)

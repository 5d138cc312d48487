"""The kinds of listing digest reads."""

KINDS = ("hf-daily", "hf-page", "arxiv-rss", "arxiv-api", "feed")

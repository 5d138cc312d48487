"""Where the captured fixtures and golden files are, and the moment most tests act at."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURES = DATA / "fixtures"
GOLDEN = DATA / "golden"
HF_PAGE = FIXTURES / "hf_papers_page_2024-08-01.html"
HF_JSON = FIXTURES / "hf_daily_papers_api_2026-06-12_raw.json"
RSS = FIXTURES / "arxiv_rss_new_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_trimmed.xml"
# The moment tests act at: passed to the code under test, never compared with the real clock.
NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
INTERESTS = '"language model"\ndiffusion video\nagents'

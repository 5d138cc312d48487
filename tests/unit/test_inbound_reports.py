"""Reading what comes back by mail: bounces in the formats MTAs send them, RFC 3464 reports, and
feedback-loop complaints (ARF), against a corpus of real messages (tests/data/inbound)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.inbound.reports import (
    BOUNCE,
    COMPLAINT,
    FEEDBACK,
    MALFORMED,
    NOT_A_REPORT,
    read_report,
    verp_token,
)
from tests.support.data import DATA
from tests.support.reports import dsn

CORPUS = DATA / "inbound"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
KINDS = (BOUNCE, COMPLAINT, FEEDBACK, NOT_A_REPORT, MALFORMED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_real_report_names_the_addresses_that_failed_or_complained(name: str) -> None:
    report = read_report((CORPUS / name).read_bytes())
    got = {
        "kind": report.kind,
        "permanent": sorted(report.permanent),
        "temporary": sorted(report.temporary),
        "complainants": sorted(report.complainants),
        "original_message_id": report.original_message_id,
    }
    assert got == EXPECTED[name]


def test_the_corpus_holds_every_kind_of_outcome() -> None:
    kinds = {entry["kind"] for entry in EXPECTED.values()}
    assert kinds == {BOUNCE, COMPLAINT, FEEDBACK, NOT_A_REPORT}
    assert any(entry["temporary"] for entry in EXPECTED.values())


@pytest.mark.parametrize(
    ("action", "status", "permanent", "temporary"),
    [("failed", "5.1.1", True, False), ("failed", "4.2.2", False, True), ("delayed", "4.4.7", False, True)],
)
def test_an_rfc_3464_report_is_permanent_only_when_it_failed_for_good(
    action: str, status: str, permanent: bool, temporary: bool
) -> None:
    report = read_report(dsn("ada@example.org", status, action, quoting="20260924.7.abc@digest.example"))
    assert report.kind == BOUNCE
    assert (bool(report.permanent), bool(report.temporary)) == (permanent, temporary)
    assert report.original_message_id == "20260924.7.abc@digest.example"


def test_a_delivered_notice_reports_no_failure() -> None:
    assert read_report(dsn("ada@example.org", "2.0.0", "delivered")).kind == NOT_A_REPORT


def test_an_ordinary_reply_is_not_a_report() -> None:
    reply = b"From: ada@example.org\r\nSubject: Re: Paper digest\r\n\r\nThanks, lovely digest.\r\n"
    assert read_report(reply).kind == NOT_A_REPORT


@pytest.mark.parametrize(
    ("recipient", "token"),
    [
        ("bounces+AbC123_-xyz9@digest.example.org", "AbC123_-xyz9"),
        ("<bounces+AbC123_-xyz9@digest.example.org>", "AbC123_-xyz9"),
        ("bounces@digest.example.org", None),
        ("bounces+short@digest.example.org", None),
        ("bounces+20260924.7.0a1b2c3d4e5f6789@digest.example.org", "20260924.7.0a1b2c3d4e5f6789"),
        ("bounces+bad token!@digest.example.org", None),
        ("bounces+AbC123_-xyz9@a@b", None),
    ],
)
def test_a_per_message_return_address_gives_its_token_and_nothing_else_does(recipient: str, token) -> None:
    assert verp_token(recipient) == token


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_any_bytes_are_read_without_raising(raw: bytes) -> None:
    assert read_report(raw).kind in KINDS


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(EXPECTED)), st.integers(0, 10_000), st.binary(min_size=1, max_size=40))
def test_a_damaged_real_report_is_read_without_raising(name: str, at: int, junk: bytes) -> None:
    raw = (CORPUS / name).read_bytes()
    at %= len(raw)
    assert read_report(raw[:at] + junk + raw[at:]).kind in KINDS

"""W3C traceparent and X-Cloud-Trace-Context: parsing, precedence between carriers, propagation."""

from __future__ import annotations

import re

import pytest

from eventkit.trace import (
    TRACE_ATTRIBUTES,
    TraceContext,
    parse_cloud_trace_context,
    parse_traceparent,
    trace_from_attributes,
    trace_from_headers,
)

pytestmark = pytest.mark.unit

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
VALID = f"00-{TRACE_ID}-{SPAN_ID}-01"
HEX16 = re.compile(r"^[0-9a-f]{16}$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")


# --------------------------------------------------------------------------------------------- parse_traceparent


def test_parse_traceparent_reads_trace_id_span_id_and_sampled_flag():
    assert parse_traceparent(VALID) == TraceContext(TRACE_ID, SPAN_ID, True)


def test_parse_traceparent_reads_unsampled_flag():
    parsed = parse_traceparent(f"00-{TRACE_ID}-{SPAN_ID}-00")

    assert parsed is not None
    assert parsed.sampled is False


def test_parse_traceparent_sampled_is_the_lowest_flag_bit_only():
    sampled = parse_traceparent(f"00-{TRACE_ID}-{SPAN_ID}-03")
    unsampled = parse_traceparent(f"00-{TRACE_ID}-{SPAN_ID}-02")

    assert sampled is not None and sampled.sampled is True
    assert unsampled is not None and unsampled.sampled is False


def test_parse_traceparent_ignores_surrounding_whitespace():
    assert parse_traceparent(f"  {VALID}\n") == TraceContext(TRACE_ID, SPAN_ID, True)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param(f"00-{'0' * 32}-{SPAN_ID}-01", id="all-zero-trace-id"),
        pytest.param(f"00-{TRACE_ID}-{'0' * 16}-01", id="all-zero-span-id"),
        pytest.param(f"ff-{TRACE_ID}-{SPAN_ID}-01", id="version-ff"),
        pytest.param(f"00-{TRACE_ID[:-1]}-{SPAN_ID}-01", id="trace-id-31-digits"),
        pytest.param(f"00-{TRACE_ID}0-{SPAN_ID}-01", id="trace-id-33-digits"),
        pytest.param(f"00-{TRACE_ID}-{SPAN_ID[:-1]}-01", id="span-id-15-digits"),
        pytest.param(f"00-{TRACE_ID}-{SPAN_ID}0-01", id="span-id-17-digits"),
        pytest.param(f"0-{TRACE_ID}-{SPAN_ID}-01", id="version-1-digit"),
        pytest.param(f"00-{TRACE_ID}-{SPAN_ID}-1", id="flags-1-digit"),
        pytest.param(f"00-{TRACE_ID}-{SPAN_ID}", id="no-flags"),
        pytest.param(f"00-{TRACE_ID[:-1]}g-{SPAN_ID}-01", id="non-hex"),
        pytest.param(f"00_{TRACE_ID}_{SPAN_ID}_01", id="wrong-separator"),
        pytest.param(f"{TRACE_ID}/123;o=1", id="cloud-trace-format"),
    ],
)
def test_parse_traceparent_returns_none_for_invalid_values(value):
    assert parse_traceparent(value) is None


# -------------------------------------------------------------------------------------------------- TraceContext


def test_trace_context_formats_back_to_the_traceparent_it_was_parsed_from():
    for value in (VALID, f"00-{TRACE_ID}-{SPAN_ID}-00"):
        parsed = parse_traceparent(value)
        assert parsed is not None
        assert parsed.traceparent == value


def test_child_span_keeps_trace_id_and_sampling_with_a_new_span_id():
    parent = TraceContext(TRACE_ID, SPAN_ID, False)

    child = parent.child()

    assert child.trace_id == TRACE_ID
    assert child.sampled is False
    assert child.span_id != SPAN_ID
    assert HEX16.match(child.span_id)


def test_new_trace_context_is_a_valid_sampled_traceparent():
    fresh = TraceContext.new()

    assert HEX32.match(fresh.trace_id)
    assert HEX16.match(fresh.span_id)
    assert parse_traceparent(fresh.traceparent) == fresh


# ------------------------------------------------------------------------------------ parse_cloud_trace_context


def test_cloud_trace_context_decimal_span_id_becomes_16_hex_digits():
    parsed = parse_cloud_trace_context(f"{TRACE_ID}/12345678901234567;o=1")

    assert parsed == TraceContext(TRACE_ID, "002bdc545d6b4b87", True)
    assert int(parsed.span_id, 16) == 12345678901234567


def test_cloud_trace_context_small_span_id_is_zero_padded():
    parsed = parse_cloud_trace_context(f"{TRACE_ID}/1;o=1")

    assert parsed is not None
    assert parsed.span_id == "0000000000000001"


def test_cloud_trace_context_largest_span_id_fits():
    parsed = parse_cloud_trace_context(f"{TRACE_ID}/{2**64 - 1}")

    assert parsed is not None
    assert parsed.span_id == "ffffffffffffffff"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(TRACE_ID, id="no-span"),
        pytest.param(f"{TRACE_ID};o=1", id="no-span-with-option"),
        pytest.param(f"{TRACE_ID}/0;o=1", id="span-zero"),
        pytest.param(f"{TRACE_ID}/{2**64}", id="span-over-64-bits"),
    ],
)
def test_cloud_trace_context_without_a_usable_span_gets_a_fresh_valid_span(value):
    parsed = parse_cloud_trace_context(value)

    assert parsed is not None
    assert parsed.trace_id == TRACE_ID
    assert HEX16.match(parsed.span_id)
    assert parsed.span_id != "0" * 16
    assert parse_traceparent(parsed.traceparent) == parsed


def test_cloud_trace_context_option_zero_is_not_sampled_and_absent_option_is_sampled():
    unsampled = parse_cloud_trace_context(f"{TRACE_ID}/5;o=0")
    default = parse_cloud_trace_context(f"{TRACE_ID}/5")

    assert unsampled is not None and unsampled.sampled is False
    assert default is not None and default.sampled is True


def test_cloud_trace_context_upper_case_trace_id_is_lowered():
    parsed = parse_cloud_trace_context(f"{TRACE_ID.upper()}/5;o=1")

    assert parsed is not None
    assert parsed.trace_id == TRACE_ID


@pytest.mark.parametrize(
    "value",
    [None, "", "abc/123;o=1", f"{TRACE_ID[:-1]}/1", f"{TRACE_ID}/12x", f"{TRACE_ID}/1;o=2", VALID],
)
def test_cloud_trace_context_returns_none_for_invalid_values(value):
    assert parse_cloud_trace_context(value) is None


# ----------------------------------------------------------------------------------------- carriers in order


def test_trace_from_headers_prefers_traceparent_over_cloud_trace_context():
    headers = {"traceparent": VALID, "X-Cloud-Trace-Context": "aaaabbbbccccddddeeeeffff00001111/7;o=1"}

    assert trace_from_headers(headers) == TraceContext(TRACE_ID, SPAN_ID, True)


def test_trace_from_headers_falls_back_to_cloud_trace_context_when_traceparent_is_invalid():
    headers = {"Traceparent": "garbage", "x-cloud-trace-context": "aaaabbbbccccddddeeeeffff00001111/7;o=1"}

    assert trace_from_headers(headers) == TraceContext("aaaabbbbccccddddeeeeffff00001111", "0000000000000007", True)


def test_trace_from_headers_matches_header_names_case_insensitively():
    assert trace_from_headers({"TRACEPARENT": VALID}) == TraceContext(TRACE_ID, SPAN_ID, True)
    assert trace_from_headers({}) is None


def test_trace_attribute_names_are_most_specific_first():
    assert TRACE_ATTRIBUTES == ("ce-traceparent", "traceparent", "googclient_traceparent")


def test_trace_from_attributes_prefers_ce_traceparent_then_traceparent_then_googclient_traceparent():
    ids = {name: f"{index + 1:032x}" for index, name in enumerate(TRACE_ATTRIBUTES)}
    attributes = {name: f"00-{trace_id}-{SPAN_ID}-01" for name, trace_id in ids.items()}

    for name in TRACE_ATTRIBUTES:
        found = trace_from_attributes(attributes)
        assert found is not None
        assert found.trace_id == ids[name]
        del attributes[name]
    assert trace_from_attributes(attributes) is None


def test_trace_from_attributes_skips_an_invalid_attribute_for_a_valid_later_one():
    attributes = {"ce-traceparent": f"ff-{TRACE_ID}-{SPAN_ID}-01", "googclient_traceparent": VALID}

    assert trace_from_attributes(attributes) == TraceContext(TRACE_ID, SPAN_ID, True)

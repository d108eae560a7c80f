"""Error codes, close codes and the W3C traceparent helper."""

from __future__ import annotations

import pytest

from eventwire.codes import CloseCode, ErrorCode, http_status, should_reconnect
from eventwire.server.http_api import trace_id_from_traceparent


@pytest.mark.parametrize("code", [4000, 4002, 4008, 4029, 4499])
def test_server_closes_below_4500_reconnect(code: int) -> None:
    assert should_reconnect(code) is True


@pytest.mark.parametrize("code", [4500, 4501, 4999])
def test_server_closes_from_4500_do_not_reconnect(code: int) -> None:
    assert should_reconnect(code) is False


@pytest.mark.parametrize("code", [1001, 1006, 1011, 1012, 1013, 1014])
def test_transient_rfc_codes_reconnect(code: int) -> None:
    assert should_reconnect(code) is True


@pytest.mark.parametrize("code", [1000, 1002, 1003, 1007, 1008, 1009, 1010, 3000, 5000])
def test_other_codes_do_not_reconnect(code: int) -> None:
    assert should_reconnect(code) is False


def test_close_code_members_follow_the_range_rule() -> None:
    assert should_reconnect(CloseCode.HEARTBEAT_TIMEOUT)
    assert should_reconnect(CloseCode.SLOW_CONSUMER)
    assert should_reconnect(CloseCode.FLOODING)
    assert should_reconnect(CloseCode.GOING_AWAY)
    assert should_reconnect(CloseCode.INTERNAL_ERROR)
    assert not should_reconnect(CloseCode.NORMAL)
    assert not should_reconnect(CloseCode.PROTOCOL_ERROR)
    assert not should_reconnect(CloseCode.MESSAGE_TOO_BIG)
    assert int(CloseCode.FLOODING) == 4029


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_error_code_has_an_http_status(code: ErrorCode) -> None:
    status = http_status(code)
    assert 400 <= status < 600


def test_selected_http_statuses() -> None:
    assert http_status(ErrorCode.VALIDATION_ERROR) == 422
    assert http_status(ErrorCode.RATE_LIMITED) == 429
    assert http_status(ErrorCode.INTERNAL_ERROR) == 500
    assert http_status(ErrorCode.INVALID_JSON) == 400


def test_error_code_values_are_their_names() -> None:
    for code in ErrorCode:
        assert code.value == code.name
        assert code == code.name


# --- traceparent -----------------------------------------------------------------

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_valid_traceparent() -> None:
    header = f"00-{TRACE}-00f067aa0ba902b7-01"
    assert trace_id_from_traceparent(header) == TRACE


def test_uppercase_traceparent_is_normalised() -> None:
    header = f"00-{TRACE.upper()}-00F067AA0BA902B7-01"
    assert trace_id_from_traceparent(header) == TRACE


def test_surrounding_whitespace_is_ignored() -> None:
    assert trace_id_from_traceparent(f"  00-{TRACE}-00f067aa0ba902b7-01 ") == TRACE


def test_all_zero_trace_id_is_none() -> None:
    assert trace_id_from_traceparent(f"00-{'0' * 32}-00f067aa0ba902b7-01") is None


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"00-{TRACE[:-1]}-00f067aa0ba902b7-01",  # trace id too short
        f"00-{TRACE}0-00f067aa0ba902b7-01",  # trace id too long
        f"00-{TRACE[:-1]}g-00f067aa0ba902b7-01",  # not hex
        f"00-{TRACE}-00f067aa0ba902b-01",  # parent id too short
        f"0-{TRACE}-00f067aa0ba902b7-01",  # version too short
        f"00-{TRACE}-00f067aa0ba902b7",  # no flags
        f"00_{TRACE}_00f067aa0ba902b7_01",
    ],
)
def test_malformed_traceparent_is_none(header: str | None) -> None:
    assert trace_id_from_traceparent(header) is None


# --- auth codes --------------------------------------------------------------------


def test_auth_codes_mirror_the_auth_core() -> None:
    from eventwire.auth import AuthClose, AuthCode
    from eventwire.auth.errors import auth_http_status

    for code in AuthCode:
        assert ErrorCode(code.value).value == code.value
        assert http_status(ErrorCode(code.value)) == auth_http_status(code)
    for close in AuthClose:
        assert int(CloseCode[close.name]) == int(close)


@pytest.mark.parametrize(
    ("code", "reconnect"),
    [
        (CloseCode.TOKEN_EXPIRED, True),
        (CloseCode.AUTH_TIMEOUT, True),
        (CloseCode.TOO_MANY_CONNECTIONS, True),
        (CloseCode.UNAUTHORIZED, False),
        (CloseCode.REVOKED, False),
    ],
)
def test_auth_close_codes_follow_the_range_rule(code: CloseCode, reconnect: bool) -> None:
    assert should_reconnect(code) is reconnect

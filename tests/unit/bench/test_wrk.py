"""wrk command line, Lua script and output parsing (bench/wrk.py)."""

from __future__ import annotations

import pytest

from bench.wrk import WrkOutputError, lua_script, parse_wrk_output, wrk_argv

TEXT = """Running 1s test @ http://127.0.0.1:18931/
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.88ms    0.97ms   8.25ms   84.84%
    Req/Sec    16.06k   330.15    16.37k    81.82%
  Latency Distribution
     50%  436.00us
     75%    1.48ms
     90%    2.19ms
     99%    1.20s
  17586 requests in 1.10s, 2.68MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:  15990.97
Transfer/sec:      2.44MB
"""
JSON_LINE = (
    'BENCH_JSON {"duration_us": 2000000.0, "requests": 5000.0, "bytes": 2813760.0, '
    '"errors": {"connect": 0.0, "read": 1.0, "write": 0.0, "timeout": 2.0, "status": 3.0}, '
    '"latency_us": {"min": 84.0, "mean": 879.1, "max": 8253.0, "stdev": 971.3, '
    '"p50": 436.0, "p90": 2192.0, "p95": 2688.0, "p99": 3935.0}}'
)


def test_json_line_gives_rps_errors_and_percentiles_in_ms() -> None:
    result = parse_wrk_output(TEXT + JSON_LINE + "\n")
    assert result.requests == 5000
    assert result.rps == pytest.approx(2500.0)
    assert result.errors == {"connect": 0, "read": 1, "write": 0, "timeout": 2, "status": 3}
    assert result.error_count == 6
    assert result.latency_ms["p95"] == pytest.approx(2.688)
    assert result.latency_ms["p99"] == pytest.approx(3.935)
    assert result.bytes_read == 2813760


def test_text_fallback_converts_units_and_counts_every_error_kind() -> None:
    result = parse_wrk_output(TEXT)
    assert result.requests == 17586
    assert result.duration_s == pytest.approx(1.10)
    assert result.latency_ms["p50"] == pytest.approx(0.436)
    assert result.latency_ms["p90"] == pytest.approx(2.19)
    assert result.latency_ms["p99"] == pytest.approx(1200.0)
    assert "p95" not in result.latency_ms
    assert result.errors == {"connect": 1, "read": 2, "write": 3, "timeout": 4, "status": 5}
    assert result.notes


def test_text_without_error_lines_means_zero_errors() -> None:
    result = parse_wrk_output("  10 requests in 500.00ms, 1KB read\n")
    assert result.error_count == 0
    assert result.rps == pytest.approx(20.0)


def test_output_of_a_failed_wrk_is_a_clear_error() -> None:
    with pytest.raises(WrkOutputError, match="unable to connect"):
        parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n")
    with pytest.raises(WrkOutputError, match="no output"):
        parse_wrk_output("")


def test_truncated_json_line_is_a_clear_error() -> None:
    with pytest.raises(WrkOutputError, match="BENCH_JSON"):
        parse_wrk_output('BENCH_JSON {"duration_us": 1\n')
    with pytest.raises(WrkOutputError, match="BENCH_JSON"):
        parse_wrk_output('BENCH_JSON {"duration_us": 1}\n')


def test_zero_duration_gives_zero_rps_not_a_crash() -> None:
    line = JSON_LINE.replace('"duration_us": 2000000.0', '"duration_us": 0.0')
    assert parse_wrk_output(line).rps == 0.0


def test_lua_script_sets_the_post_body_and_prints_every_percentile() -> None:
    script = lua_script("POST", 102400, "application/octet-stream")
    assert 'wrk.method = "POST"' in script
    assert 'string.rep("x", 102400)' in script
    assert 'wrk.headers["Content-Type"] = "application/octet-stream"' in script
    assert "{50, 90, 95, 99}" in script
    assert "BENCH_JSON " in script
    assert "wrk.body" not in lua_script()


def test_wrk_argv_is_bounded_and_uses_at_most_one_thread_per_connection() -> None:
    argv = wrk_argv("http://127.0.0.1:1/", 1, 5, "s.lua", threads=4)
    assert argv[:4] == ["wrk", "-t1", "-c1", "-d5s"]
    assert "--latency" in argv
    assert argv[-1] == "http://127.0.0.1:1/"
    with pytest.raises(ValueError, match="1 second"):
        wrk_argv("http://127.0.0.1:1/", 10, 0, "s.lua")
    with pytest.raises(ValueError, match="connection"):
        wrk_argv("http://127.0.0.1:1/", 0, 1, "s.lua")

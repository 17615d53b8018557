"""No input crashes mongrel2_conf: any text is a Config or a ConfigError with a position."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mongrel2_conf import Config, ConfigError, parse_config

DATA = Path(__file__).parents[2] / "data" / "mongrel2_conf" / "valid"
CORPUS = [path.read_text() for path in sorted(DATA.glob("*.conf"))]
WORDS = ["Server", "Host", "Handler", "Dir", "Proxy", "Filter", "servers", "settings", "port="]
ALPHABET = st.sampled_from([*"abcSHDP(){}[]=,:'\"#\\\n 0123456789._/-é", *WORDS])


def parses_or_explains(text: str) -> None:
    try:
        outcome: Config | ConfigError = parse_config(text, "fuzz.conf")
    except ConfigError as error:
        outcome = error
    if isinstance(outcome, Config):
        return
    assert outcome.problems
    for problem in outcome.problems:
        assert problem.message
        if problem.line is not None:
            assert problem.file == "fuzz.conf"
            assert 1 <= problem.line <= text.count("\n") + 1
            assert problem.column is not None
            assert problem.column >= 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ALPHABET, max_size=60).map("".join))
def test_random_text_never_crashes_the_loader(text):
    parses_or_explains(text)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(CORPUS),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 8), ALPHABET), min_size=1, max_size=4),
)
def test_mutated_valid_configs_never_crash_the_loader(text, edits):
    for where, cut, insert in edits:
        at = int(where * len(text))
        text = text[:at] + insert + text[at + cut :]
    parses_or_explains(text)

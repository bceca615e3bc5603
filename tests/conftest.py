"""Shared pytest options: `--fuzz-programs=N` sets how many random programs tests/test_fuzz.py runs."""

import pytest

FUZZ_PROGRAMS = 200  # the normal run: derandomized, a few seconds


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-programs",
        type=int,
        default=None,
        help=f"random programs to compare with torch (default {FUZZ_PROGRAMS}, derandomized); "
        "a larger number is a soak run with fresh random programs",
    )


@pytest.fixture
def fuzz_programs(request: pytest.FixtureRequest) -> int | None:
    """The --fuzz-programs count, or None for the normal run."""
    return request.config.getoption("--fuzz-programs")

"""Shared pytest options: `--fuzz-programs=N` runs N fresh random programs in tests/test_fuzz.py (a soak)."""

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-programs",
        type=int,
        default=None,
        help="random programs to compare with torch in tests/test_fuzz.py, fresh ones each run "
        "(default: its fixed, derandomized set)",
    )


@pytest.fixture
def fuzz_programs(request: pytest.FixtureRequest) -> int | None:
    """The --fuzz-programs count, or None for the normal run."""
    return request.config.getoption("--fuzz-programs")

"""Shared pytest options for soaks: `--fuzz-programs=N` runs N fresh random programs in
tests/test_fuzz.py, `--impure-cells=N` N fresh generated impure cells in tests/test_pure_steps.py."""

from collections.abc import Iterator

import pytest
from threadpoolctl import threadpool_limits


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-programs",
        type=int,
        default=None,
        help="random programs to compare with torch in tests/test_fuzz.py, fresh ones each run "
        "(default: its fixed, derandomized set)",
    )
    parser.addoption(
        "--impure-cells",
        type=int,
        default=None,
        help="generated impure cells to check in tests/test_pure_steps.py, fresh ones each run "
        "(default: its fixed, derandomized set of 50)",
    )


@pytest.fixture
def impure_cells(request: pytest.FixtureRequest) -> int | None:
    """The --impure-cells count (fresh generated cells in tests/test_pure_steps.py), None normally."""
    return request.config.getoption("--impure-cells")


@pytest.fixture
def fuzz_programs(request: pytest.FixtureRequest) -> int | None:
    """The --fuzz-programs count, or None for the normal run."""
    return request.config.getoption("--fuzz-programs")


@pytest.fixture(autouse=True, scope="session")
def one_blas_thread() -> Iterator[None]:
    """One BLAS thread for the whole run: the tests' matrices are small, as the commands choose
    (tinygrad_rnn/cli/threads.py); threads fighting for a busy core made the suite up to 10x slower."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary(config: pytest.Config) -> None:
    """Silence nbmake's closing advertisement, printed while its option is on: by now the
    notebooks, the one thing the option is for, have been collected and run."""
    if hasattr(config.option, "nbmake"):
        config.option.nbmake = False

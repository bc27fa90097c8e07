"""Shared pytest configuration: hypothesis profile sized for 2-core CI machines."""

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# `make test` runs one pytest worker per core (pytest-xdist): each worker then gets its share of
# the cores, and so do the subprocesses it starts (oversubscribed OpenMP threads spin and stall).
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_threads = max(1, min(torch.get_num_threads(), 2) // _workers)
torch.set_num_threads(_threads)
if _workers > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads))


@pytest.fixture
def one_thread():
    """torch on one thread for the test (a module opts in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``): bitwise-reproducible runs, and
    faster for many tiny ops on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

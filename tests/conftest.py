"""Shared pytest configuration: hypothesis profile sized for 2-core CI machines."""

import os

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

torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))


# --- a real browser for the report pages (pano360 report) -------------------------------------

import shutil  # noqa: E402

import pytest  # noqa: E402

#: Set (to 1) where a missing browser must fail the browser tests instead of skipping them (CI).
REQUIRE_BROWSER = "PANO360_REQUIRE_BROWSER"
# Debian's chromium, headless, with nothing that talks to the network; WebGL runs on SwiftShader.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session (Playwright driving the system's chromium)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if executable is None or sync_playwright is None:
        missing = "chromium (apt-get install chromium)" if executable is None else "playwright"
        message = f"browser tests skipped: no {missing}"
        if os.environ.get(REQUIRE_BROWSER) == "1":
            pytest.fail(f"{message}, and {REQUIRE_BROWSER}=1 requires them")
        pytest.skip(message)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()

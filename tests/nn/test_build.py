"""Building SphereConv2d's CPU kernel: once per key, never because another ninja is on PATH,
saying so every time, safe when processes race, and ahead of use with python -m pano360.nn.build.

The real build is `make`'s (it runs `python -m pano360.nn.build` before the tests); the module
fixture copies its result into a root of its own, and every other build here is a stand-in
compiler that copies that library. PANO360_TEST_KERNEL_BUILD=1 makes the fixture build for real
instead (about 35 s more), as does a machine where no kernel was built yet.
"""

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from pano360.nn import _fast, sphere_conv2d
from pano360.testing import exact_conv2d

D = torch.float64
BUILDING = "pano360: building the SphereConv2d CPU kernel (about"


def run(args, env=None, **extra):
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {}), **extra},
        timeout=600,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A kernel root holding this environment's kernel: a copy of the one `make` built, or (with
    PANO360_TEST_KERNEL_BUILD=1, or none built yet) `python -m pano360.nn.build` into it."""
    root = tmp_path_factory.mktemp("kernels")
    made = _fast.kernel_dir()
    if _fast.find_kernel(made) is not None and not os.environ.get("PANO360_TEST_KERNEL_BUILD"):
        shutil.copytree(made, root / made.name)
        return root, str(_fast.find_kernel(root / made.name))
    proc = run(["-m", "pano360.nn.build"], PANO360_KERNEL_DIR=str(root))
    if proc.returncode == 2 and not os.environ.get("PANO360_REQUIRE_EXTENSIONS"):
        pytest.skip(f"the kernel cannot be built here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    assert BUILDING in proc.stderr
    assert "pano360: SphereConv2d CPU kernel built in " in proc.stdout
    path = proc.stdout.strip().rsplit(": ", 1)[1]
    return root, path


@pytest.fixture
def fresh_root(tmp_path, monkeypatch):
    """An empty kernel root for this test; the process's own kernel is loaded again afterwards."""
    monkeypatch.setenv("PANO360_KERNEL_DIR", str(tmp_path / "kernels"))
    monkeypatch.delenv("PANO360_NO_EXTENSIONS", raising=False)
    _fast._extension.cache_clear()
    yield tmp_path / "kernels"
    _fast._extension.cache_clear()


def copying_compiler(library, calls, delay=0.0):
    """A stand-in for _fast._compile: "builds" by copying a library, counting its calls."""

    def compile_(build_dir, verbose):
        calls.append(build_dir)
        time.sleep(delay)
        target = build_dir / f"{_fast.NAME}.so"
        shutil.copyfile(library, target)
        return target

    return compile_


def fake_ninja(folder, version):
    """A `ninja` reporting another version, which records any other use (a build) in a file."""
    folder.mkdir()
    script = folder / "ninja"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then echo {version}; exit 0; fi\n'
        f'echo "$@" >> "{folder}/used"\n'
        "exit 1\n"
    )
    script.chmod(0o755)
    return folder


def test_key_changes_with_sources_torch_python_and_flags():
    parts = _fast.kernel_key_parts()
    assert set(parts) == {"sources", "torch", "python", "machine", "compiler", "cflags"}
    assert parts["torch"].startswith(torch.__version__)
    keys = {_fast.kernel_key({**parts, name: parts[name] + "x"}) for name in parts}
    assert len(keys | {_fast.kernel_key(parts)}) == len(parts) + 1


def test_key_follows_the_cpp_sources(tmp_path, monkeypatch):
    csrc = tmp_path / "csrc"
    shutil.copytree(_fast._CSRC, csrc)
    monkeypatch.setattr(_fast, "_CSRC", csrc)
    before = _fast.kernel_key()
    with open(csrc / "sphere_conv.cpp", "a") as source:
        source.write("\n// changed\n")
    assert _fast.kernel_key() != before


def test_key_does_not_depend_on_ninja(tmp_path, monkeypatch):
    before = _fast.kernel_key()
    monkeypatch.setenv(
        "PATH", f"{fake_ninja(tmp_path / 'bin', '1.99.0')}{os.pathsep}{os.environ['PATH']}"
    )
    assert _fast.kernel_key() == before
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no ninja at all
    assert _fast.kernel_key() == before


def test_key_follows_the_compiler(monkeypatch):
    before = _fast.kernel_key()
    monkeypatch.setenv("CXX", "clang++")
    assert _fast.kernel_key() != before


def test_kernel_root(monkeypatch, tmp_path):
    monkeypatch.setenv("PANO360_KERNEL_DIR", str(tmp_path / "k"))
    assert _fast.kernel_root() == tmp_path / "k"
    assert _fast.kernel_dir() == tmp_path / "k" / _fast.kernel_key()
    monkeypatch.delenv("PANO360_KERNEL_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert _fast.kernel_root() == tmp_path / "cache" / "pano360" / "kernels"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _fast.kernel_root() == tmp_path / "home" / ".cache" / "pano360" / "kernels"


def test_cli_builds_once_then_finds_it(built):
    root, path = built
    assert path == str(root / _fast.kernel_key() / f"{_fast.NAME}.so")
    assert sorted(p.name for p in (root / _fast.kernel_key()).iterdir()) == [
        ".lock",
        "key.json",
        f"{_fast.NAME}.so",
    ]  # the temporary build folder is gone
    proc = run(["-m", "pano360.nn.build"], PANO360_KERNEL_DIR=str(root))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"pano360: SphereConv2d CPU kernel found: {path}\n"


def test_another_ninja_on_path_does_not_rebuild(built, tmp_path):
    """Two environments in one run: the kernel was built with this PATH's ninja; a process that
    finds another ninja first (as an activated venv does) imports it and runs no ninja at all."""
    root, _ = built
    ninja_dir = fake_ninja(tmp_path / "bin", "1.99.0")
    first_use = (
        "import torch\n"
        "from pano360.nn import _fast, sphere_conv2d\n"
        "sphere_conv2d(torch.rand(1, 12, 8, 16), torch.rand(2, 12, 3, 3))\n"
        "print(_fast.extension_available(), _fast.find_kernel())\n"
    )
    proc = run(
        ["-c", first_use],
        PANO360_KERNEL_DIR=str(root),
        PATH=f"{ninja_dir}{os.pathsep}{os.environ['PATH']}",
    )
    assert proc.returncode == 0, proc.stderr
    assert "building" not in proc.stderr
    assert proc.stdout.split() == ["True", str(root / _fast.kernel_key() / f"{_fast.NAME}.so")]
    assert not (ninja_dir / "used").exists()


def test_a_build_at_first_use_says_so_every_time(built, fresh_root, capsys):
    _, library = built
    calls = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_fast, "_compile", copying_compiler(library, calls))
        assert _fast.extension_available()
        assert BUILDING in capsys.readouterr().err
        _fast._extension.cache_clear()  # a second process: the library is there
        assert _fast.extension_available()
        assert capsys.readouterr().err == ""
        path, was_built = _fast.build_kernel(force=True)  # a rebuild is announced too
        assert was_built and BUILDING in capsys.readouterr().err
    assert len(calls) == 2
    assert path == fresh_root / _fast.kernel_key() / f"{_fast.NAME}.so"
    x, w = (
        torch.rand(1, 12, 8, 16, dtype=torch.float64),
        torch.rand(2, 12, 3, 3, dtype=torch.float64),
    )
    torch.testing.assert_close(sphere_conv2d(x, w), exact_conv2d(x, w), atol=1e-5, rtol=0)


def test_racing_builds_compile_once(built, fresh_root, monkeypatch):
    _, library = built
    calls = []
    monkeypatch.setattr(_fast, "_compile", copying_compiler(library, calls, delay=0.5))
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(_fast.build_kernel())) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert sorted(built for _, built in results) == [False, True]
    assert results[0][0] == results[1][0]


def test_a_library_that_does_not_load_is_rebuilt(built, fresh_root, monkeypatch, capsys):
    _, library = built
    folder = _fast.kernel_dir()
    folder.mkdir(parents=True)
    (folder / f"{_fast.NAME}.so").write_bytes(b"not a library")
    calls = []
    monkeypatch.setattr(_fast, "_compile", copying_compiler(library, calls))
    _, path, was_built = _fast.load_kernel()
    assert was_built and len(calls) == 1
    assert path.read_bytes() == Path(library).read_bytes()
    assert "does not load" in capsys.readouterr().err


def test_a_failed_build_warns_once_and_falls_back_to_pure_torch(fresh_root, monkeypatch):
    def broken(build_dir, verbose):
        (build_dir / "half_written.o").write_bytes(b"")
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.setattr(_fast, "_compile", broken)
    with pytest.warns(RuntimeWarning, match="compiled SphereConv2d kernel is unavailable"):
        assert not _fast.extension_available()
    assert [p.name for p in _fast.kernel_dir().iterdir()] == [".lock"]  # no library, no build-*/
    x, w = (
        torch.rand(1, 12, 8, 16, dtype=torch.float64),
        torch.rand(2, 12, 3, 3, dtype=torch.float64),
    )
    torch.testing.assert_close(sphere_conv2d(x, w), exact_conv2d(x, w), atol=1e-5, rtol=0)


def test_cli_exits_2_with_one_line_when_the_build_fails(tmp_path):
    compiler = tmp_path / "no-such-compiler"
    proc = run(["-m", "pano360.nn.build"], PANO360_KERNEL_DIR=str(tmp_path), CXX=str(compiler))
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "pano360: error: could not build the SphereConv2d CPU kernel (FileNotFoundError: no C++ "
        f"compiler: '{compiler}' is not on PATH (set CXX)); SphereConv2d will use its pure-torch "
        "path (rerun with --verbose for details)\n"
    )


def test_cli_help_and_no_extensions(tmp_path):
    proc = run(["-m", "pano360.nn.build", "--help"])
    assert proc.returncode == 0
    assert "PANO360_KERNEL_DIR" in proc.stdout
    proc = run(
        ["-m", "pano360.nn.build"], PANO360_KERNEL_DIR=str(tmp_path), PANO360_NO_EXTENSIONS="1"
    )
    assert proc.returncode == 0
    assert "not building" in proc.stdout
    assert list(tmp_path.iterdir()) == []

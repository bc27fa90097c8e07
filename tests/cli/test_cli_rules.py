"""The rules every command follows, tried from the user's side (docs/cli.md, "Outputs",
"Errors and exit codes", "Feedback"):

- ``--out DIR`` (or OUT's folder) is created if missing; a file in the way or a folder that
  cannot be written is one line ``pano360: error: ...``, exit 2, nothing written; a command that
  fails removes the folders it created.
- ``-q`` silences progress bars and the line saying what was written; bars are shown only on a
  terminal.
- ``pano360 --help`` and ``import pano360`` do not import torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pano360.cli import _outputs
from pano360.io import write_image
from pano360.testing import file_listing, run_cli, smooth_erp


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """pano.png (a 128x64 ERP), wide.png (not 2:1), cube.png (a dice cube map), afile (a file),
    ro/ (a folder that os.access reports unwritable, as for a non-root user after chmod 555),
    gt/ and pred/ (saliency maps of two items), empty/ and imgs/ (one 64x32 ERP)."""
    monkeypatch.chdir(tmp_path)
    write_image("pano.png", smooth_erp((64, 128), seed=0))
    write_image("wide.png", torch.rand(1, 3, 64, 100))
    write_image("cube.png", torch.rand(1, 3, 24, 32))
    Path("afile").write_text("a file where a folder is needed")
    for folder in ("ro", "gt/maps", "pred", "empty", "imgs"):
        Path(folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        np.save(f"gt/maps/{name}.npy", rng.random((8, 16)).astype("f4"))
        np.save(f"pred/{name}.npy", rng.random((8, 16)).astype("f4"))
    write_image("imgs/x.png", smooth_erp((32, 64), seed=1))
    ro = (tmp_path / "ro").resolve()
    access = os.access

    def no_write_in_ro(path, mode, *args, **kwargs):
        if mode & os.W_OK and Path(path).resolve() == ro:
            return False
        return access(path, mode, *args, **kwargs)

    monkeypatch.setattr(_outputs.os, "access", no_write_in_ro)
    return tmp_path


# Commands that write files they name themselves into --out DIR: (arguments before --out, the
# same with an input that fails after DIR was created).
DIR_COMMANDS = {
    "faces": (["faces", "pano.png", "--strategy", "direct"], ["faces", "wide.png"]),
    "saliency": (["saliency", "pano.png"], ["saliency", "wide.png"]),
    "eval saliency": (
        ["eval", "saliency", "--pred", "pred", "--gt", "gt"],
        ["eval", "saliency", "--pred", "pred", "--gt", "empty"],
    ),
    "eval faces": (
        ["eval", "faces", "--scenes", "1", "--size", "64x32", "--strategies", "direct"],
        ["eval", "faces", "--scenes", "1", "--size", "64x32", "--students", "empty"],
    ),
    "distill": (
        ["distill", "--model", "mtcnn_pnet", "--images", "imgs", "--erp-size", "32x16"],
        ["distill", "--model", "mtcnn_pnet", "--images", "empty", "--erp-size", "32x16"],
    ),
    "distill backbone": (
        ["distill", "--model", "mobilenet_v2", "--synthetic", "1", "--erp-size", "64x32"],
        ["distill", "--model", "mobilenet_v2", "--images", "empty", "--erp-size", "64x32"],
    ),
    "report": (["report", "pano.png"], ["report", "wide.png"]),
}
# Commands that write files named by the user: OUT -> (arguments, the same with a bad input).
FILE_COMMANDS = {
    "project e2p": lambda out, src="pano.png": ["project", "e2p", src, out, "--size", "16x12"],
    "project p2e": lambda out, src="pano.png": [
        "project", "p2e", src, out, "--size", "32x16", "--mask", out.replace(".png", "_m.png")
    ],
    "project e2c": lambda out, src="pano.png": [
        "project", "e2c", src, out.replace(".png", "_{face}.png"), "--layout", "dict"
    ],
    "project c2e": lambda out, src="cube.png": ["project", "c2e", src, out, "--size", "32x16"],
    "project rotate": lambda out, src="pano.png": ["project", "rotate", src, out, "--yaw", "30"],
}  # fmt: skip
DIR_CASES = {
    "an existing file": ("afile", "--out 'afile' is not a folder"),
    "under a file": ("afile/sub", "--out 'afile/sub' cannot be created: 'afile' is not a folder"),
    "unwritable": ("ro", "--out 'ro' is not writable"),
    "in an unwritable folder": ("ro/sub", "--out 'ro/sub' cannot be created: 'ro' is not writable"),
}


def _fails_cleanly(workdir: Path, args: list[str], message: str) -> None:
    before = file_listing(workdir)
    code, out, err = run_cli(*args)
    assert (code, out) == (2, ""), err
    assert err == f"pano360: error: {message}\n"
    assert file_listing(workdir) == before  # no output, no temporary file, no new folder


@pytest.mark.parametrize("case", DIR_CASES)
@pytest.mark.parametrize("command", DIR_COMMANDS)
def test_out_dir_that_cannot_be_a_folder_is_one_line(workdir, command, case):
    out, message = DIR_CASES[case]
    _fails_cleanly(workdir, [*DIR_COMMANDS[command][0], "--out", out], message)


@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_out_file_under_a_file_or_in_an_unwritable_folder_is_one_line(workdir, command):
    # The name shown is the first output checked: OUT, or OUT's front face for e2c.
    shown = "OUT (face F)" if command == "project e2c" else "OUT"
    path = "afile/v_F.png" if command == "project e2c" else "afile/v.png"
    args = FILE_COMMANDS[command]("afile/v.png")
    _fails_cleanly(workdir, args, f"cannot write {shown} '{path}': 'afile' is not a folder")
    args = FILE_COMMANDS[command]("ro/new/v.png")
    path = path.replace("afile", "ro/new")
    _fails_cleanly(workdir, args, f"cannot write {shown} '{path}': 'ro' is not writable")


@pytest.mark.parametrize("command", ["faces", "saliency", "eval saliency", "report"])
def test_out_dir_is_created_with_its_parents(workdir, command):
    code, out, err = run_cli(*DIR_COMMANDS[command][0], "--out", "new/deep")
    assert (code, err) == (0, ""), err
    assert "wrote new/deep/" in out
    assert any(Path("new/deep").iterdir())


@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_out_folders_are_created_and_the_success_line_names_the_files(workdir, command):
    code, out, err = run_cli(*FILE_COMMANDS[command]("new/deep/v.png"))
    assert (code, err) == (0, ""), err
    written = sorted(str(p) for p in Path("new/deep").iterdir())
    assert written and out == f"wrote {', '.join(_in_order(out, written))}\n"
    assert run_cli(*FILE_COMMANDS[command]("new/deep/w.png"), "-q") == (0, "", "")


def _in_order(line: str, paths: list[str]) -> list[str]:
    """``paths`` in the order the line names them, each with the size it shows."""
    parts = line.removeprefix("wrote ").strip().split(", ")
    assert sorted(p.split(" (")[0] for p in parts) == paths
    return parts


def test_docs_example_e2c_into_a_new_folder(workdir):
    code, out, _ = run_cli(
        "project", "e2c", "pano.png", "faces/cube_{face}.jpg", "--layout", "dict"
    )
    assert code == 0
    assert sorted(p.name for p in Path("faces").iterdir()) == [f"cube_{f}.jpg" for f in "BDFLRU"]
    assert out.startswith("wrote faces/cube_F.jpg (32x32), faces/cube_R.jpg (32x32), ")


@pytest.mark.parametrize("command", DIR_COMMANDS)
def test_a_failing_command_removes_the_folders_it_created(workdir, command):
    code, _, err = run_cli(*DIR_COMMANDS[command][1], "--out", "new/deep")
    assert code == 2 and err.startswith("pano360: error: ") and err.count("\n") == 1
    assert not Path("new").exists()


@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_a_failing_projection_removes_the_folders_it_created(workdir, command):
    code, _, err = run_cli(*FILE_COMMANDS[command]("new/deep/v.png", "afile"))  # not an image
    assert code == 2 and err.startswith("pano360: error: ") and err.count("\n") == 1
    assert not Path("new").exists()


def test_folders_that_existed_or_were_filled_meanwhile_stay(workdir):
    Path("kept").mkdir()
    assert run_cli("faces", "wide.png", "--out", "kept/new")[0] == 2
    assert sorted(p.name for p in workdir.joinpath("kept").iterdir()) == []
    assert Path("kept").is_dir()


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere"
)
def test_a_real_read_only_folder(workdir, monkeypatch):
    monkeypatch.undo()  # the real os.access
    monkeypatch.chdir(workdir)
    Path("locked").mkdir(mode=0o555)
    _fails_cleanly(
        workdir, ["faces", "pano.png", "--out", "locked"], "--out 'locked' is not writable"
    )


# --- feedback ------------------------------------------------------------------------------------


def test_faces_progress_bar_on_a_terminal_only_and_quiet(workdir):
    code, out, err = run_cli(
        "faces", "pano.png", "--out", "a", "--strategy", "direct", terminal=True
    )
    assert code == 0 and "pano.png" in err and "detect (direct)" in err and "step" in err
    assert out.startswith("0 face(s); wrote a/pano_faces.jpg (128x64), a/pano_faces.json")
    code, out, err = run_cli(
        "faces", "pano.png", "--out", "b", "--strategy", "direct"
    )  # no terminal
    assert (code, err) == (0, "") and out.count("\n") == 1
    quiet = run_cli(
        "faces", "pano.png", "--out", "c", "--strategy", "direct", "--blur", "-q", terminal=True
    )
    assert quiet == (0, "", "")
    assert sorted(p.name for p in Path("c").iterdir()) == [
        "pano_blurred.jpg", "pano_faces.jpg", "pano_faces.json",
    ]  # fmt: skip


def test_quiet_keeps_the_results_a_command_prints(workdir):
    code, out, err = run_cli("eval", "saliency", "--pred", "pred", "--gt", "gt", "-q")
    assert (code, err) == (0, "")
    assert "| cc |" in out and "wrote" not in out
    assert run_cli("report", "pano.png", "--out", "rep", "-q") == (0, "", "")
    assert run_cli("saliency", "pano.png", "-q") == (0, "", "")  # default --out: the current folder
    assert Path("pano_saliency.npy").is_file()


def test_an_unknown_command_suggests_the_nearest(workdir):
    code, _, err = run_cli("facs", "pano.png")
    assert code == 2
    assert err.startswith("pano360: error: No such command 'facs'. Did you mean 'faces'?")
    code, _, err = run_cli("eval", "salency")
    assert code == 2 and "Did you mean 'saliency'?" in err


# --- real processes ------------------------------------------------------------------------------


def _python(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_help_and_import_pano360_do_not_import_torch():
    proc = _python("-X", "importtime", "-m", "pano360", "--help")
    assert proc.returncode == 0 and "Usage: pano360" in proc.stdout
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "pano360.cli" in imported
    assert not {m for m in imported if m.split(".")[0] in ("torch", "numpy")}
    script = (
        "import contextlib, io, sys\n"
        "import pano360\n"
        "assert 'torch' not in sys.modules\n"
        "assert 'saliency' in dir(pano360) and 'saliency' in pano360.__all__\n"
        "from pano360.cli import main\n"
        "for args in (['--help'], ['faces', '-h'], ['project', '-h'], ['project', 'e2c', '-h'],"
        " ['eval', '-h'], ['eval', 'faces', '-h'], ['report', '-h']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(args) == 0, args\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')))\n"
        "print(pano360.saliency.__name__, pano360.detect_faces.__module__)\n"
    )
    proc = _python("-c", script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "pano360.saliency pano360.detection._faces360"]


def test_faces_out_under_a_file_in_a_real_process(workdir):
    write_image("file.jpg", torch.rand(1, 3, 8, 8))
    proc = _python("-m", "pano360", "faces", "pano.png", "--out", "file.jpg/sub", cwd=workdir)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "pano360: error: --out 'file.jpg/sub' cannot be created: 'file.jpg' is not a folder\n"
    )


# --- the helpers' documented errors ---------------------------------------------------------------


def test_out_helpers_raise_what_they_document(workdir):
    from pano360._core import ImageIOError, OutputExistsError, ValueRangeError

    with pytest.raises(ImageIOError, match=r"^--out 'afile' is not a folder$"):
        _outputs.check_out_dir(Path("afile"))
    with pytest.raises(ImageIOError, match=r"^--x 'afile/a/b' cannot be created: 'afile' is not"):
        _outputs.prepare_out_dir(Path("afile/a/b"), "--x")
    with pytest.raises(ImageIOError, match=r"^--out 'ro/a' cannot be created: 'ro' is not writ"):
        _outputs.check_out_dir(Path("ro/a"))
    with pytest.raises(ValueRangeError, match=r"^OUT 'pano.png' is the same file as the input"):
        _outputs.prepare_outputs([("OUT", Path("pano.png"))], [Path("pano.png")], overwrite=True)
    with pytest.raises(ValueRangeError, match=r"^A and B are the same file 'x/../v.png'"):
        _outputs.prepare_outputs([("A", Path("v.png")), ("B", Path("x/../v.png"))], [], overwrite=0)
    with pytest.raises(ImageIOError, match=r"^cannot write OUT 'afile/v.png': 'afile' is not a"):
        _outputs.prepare_outputs([("OUT", Path("afile/v.png"))], [], overwrite=False)
    with pytest.raises(ImageIOError, match=r"unsupported extension '.bmp'"):
        _outputs.prepare_outputs([("OUT", Path("v.bmp"))], [], overwrite=False)
    with pytest.raises(OutputExistsError, match=r"^OUT 'afile' already exists; pass --overwrite"):
        _outputs.prepare_outputs([("OUT", Path("afile"), False)], [], overwrite=False)
    _outputs.prepare_outputs([("OUT", Path("new/a/v.png"))], [], overwrite=False)
    assert Path("new/a").is_dir() and not Path("new/a/v.png").exists()  # folders only

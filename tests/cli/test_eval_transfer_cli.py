"""``pano360 eval transfer``: a tiny run writes its tables; bad options exit 2 with one line."""

from __future__ import annotations

import json

import pytest

from pano360.testing import run_cli


def run(*args: str) -> tuple[int, str, str]:
    return run_cli("eval", "transfer", *args)


def test_eval_transfer_writes_the_tables_and_json(tmp_path):
    args = ["--scenes", "1", "--size", "64x32", "--stage", "features.3", "--max-patch", "33"]
    code, out, err = run(*args, "--rmse-scenes", "1", "--out", str(tmp_path), "-q")
    assert code == 0, err
    assert "| features.3 | 25 px" in out and "| spherical |" in out
    doc = json.loads((tmp_path / "transfer_eval.json").read_text())
    assert doc["model"] == "mobilenet_v2" and doc["scenes"] == {
        "n": 1,
        "seed": 2027,
        "size": [64, 32],
    }
    assert set(doc["rmse_over_exact_std"]) == {"direct", "cubemap", "multiview", "spherical"}
    assert doc["objects_per_band"] == [2, 2, 2]
    assert set(doc["seconds_per_image"]) == {"direct", "cubemap", "multiview", "spherical", "exact"}
    assert (tmp_path / "transfer_eval.md").read_text().strip() == out.strip()
    # The outputs exist now: without --overwrite the command refuses and changes nothing.
    before = (tmp_path / "transfer_eval.json").read_bytes()
    code, _, err = run(*args, "--out", str(tmp_path))
    assert code == 2 and err.startswith("pano360: error:") and err.count("\n") == 1
    assert (tmp_path / "transfer_eval.json").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "vgg16"], "ships no weights"),
        (["--model", "nope"], "--model must be one of"),
        (["--size", "100x50"], "multiple of 32"),
        (["--stage", "features.4"], "--stage must be one of"),
        (["--scenes", "2", "--rmse-scenes", "3"], "--rmse-scenes must be at most"),
        (["--scenes", "0"], "--scenes must be >= 1"),
    ],
)
def test_eval_transfer_errors(args, message, tmp_path):
    code, out, err = run(*args, "--out", str(tmp_path / "res"))
    assert code == 2 and out == ""
    assert err.startswith("pano360: error:") and message in err and err.count("\n") == 1
    assert not (tmp_path / "res" / "transfer_eval.json").exists()


def test_eval_transfer_adds_a_distilled_student(tmp_path):
    from pano360.models import create_model
    from pano360.transfer import BackboneStudent

    model = create_model("mobilenet_v2", pretrained=True).eval()
    path = tmp_path / "student.safetensors"
    BackboneStudent(model, (32, 64)).save(path, model)
    args = ["--scenes", "1", "--size", "64x32", "--stage", "features.3", "--max-patch", "33"]
    code, out, err = run(
        *args, "--rmse-scenes", "1", "--student", str(path), "--out", str(tmp_path / "a"), "-q"
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "a" / "transfer_eval.json").read_text())
    assert "distilled" in doc["rmse_over_exact_std"] and "distilled" in doc["top1_agreement_pct"]
    assert "| distilled |" in out
    # A student made for another size is refused, with one line.
    code, _, err = run(
        "--scenes", "1", "--rmse-scenes", "1", "--size", "128x64", "--student", str(path),
        "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert code == 2 and "distilled for 64x32" in err and err.count("\n") == 1

"""pano360.training: resume after SIGKILL (bitwise), DDP over 2 CPU processes, the data module,
the task's prior modes, export and loading of trained models, the learning curve and the
``pano360 train`` command (typos, refused overwrites, --help).

The three training runs that need processes of their own (the killed run, the two DDP ranks) are
started together by one fixture while the uninterrupted reference trains in this process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny import TinyClips, TinySaliency
from safetensors.torch import load_file

from pano360._core import (
    DatasetFormatError,
    OutputExistsError,
    ValueRangeError,
    WeightsError,
    read_model_card,
)
from pano360.cli import main
from pano360.models import create_model
from pano360.saliency import fit_latitude_profile, predict_saliency
from pano360.training import (
    SaliencyDataModule,
    SaliencyTask,
    export_model,
    plot_learning_curve,
    read_epoch_metrics,
    split_by_video,
)

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "_run_tiny.py"


def _start(out: Path, *args: str) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(out), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _in_process(out: Path, mode: str) -> dict[str, torch.Tensor]:
    """Run _run_tiny.train here, leaving torch's global settings as they were."""
    import _run_tiny

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    rng = torch.get_rng_state()
    try:
        out.mkdir(parents=True, exist_ok=True)
        _run_tiny.train(out, mode)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        torch.set_rng_state(rng)
    return load_file(str(out / f"final_{mode}.safetensors"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    # Step 5 is the 2nd batch of epoch 1; the last checkpoint (step 4) is mid-epoch.
    killed = _start(root / "killed", "kill", "5")
    ddp = _start(root / "ddp", "ddp")
    plain = _in_process(root / "plain", "plain")
    _, err = killed.communicate(timeout=600)
    assert killed.returncode == -signal.SIGKILL, err[-2000:]
    state = torch.load(root / "killed" / "checkpoints" / "last.ckpt", weights_only=True)
    resumed = _in_process(root / "killed", "resume")
    _, err = ddp.communicate(timeout=600)
    assert ddp.returncode == 0, err[-2000:]
    return {
        "plain": plain,
        "resumed": resumed,
        "killed_checkpoint": state,
        "ddp": load_file(str(root / "ddp" / "final_ddp.safetensors")),
    }


def test_resume_after_sigkill_is_bitwise_equal(runs):
    ckpt = runs["killed_checkpoint"]
    # The run was killed after the checkpoint of step 4, inside epoch 1 (3 batches an epoch).
    assert ckpt["global_step"] == 4 and ckpt["epoch"] == 1
    assert ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"epoch": 1, "batches": 1}
    ]
    plain, resumed = runs["plain"], runs["resumed"]
    assert plain.keys() == resumed.keys()
    for key in plain:
        assert torch.equal(plain[key], resumed[key]), key


def test_ddp_two_processes_equals_one_process(runs):
    plain, ddp = runs["plain"], runs["ddp"]
    assert plain.keys() == ddp.keys()
    for key in plain:
        torch.testing.assert_close(ddp[key], plain[key], rtol=1e-5, atol=1e-6)


# --- data ----------------------------------------------------------------------------------------


def test_split_by_video_holds_whole_videos_out():
    videos = [f"v{i // 3}" for i in range(30)]
    train, val = split_by_video(videos, 0.25, seed=3)
    assert sorted(train + val) == list(range(30))
    assert {videos[i] for i in train}.isdisjoint({videos[i] for i in val})
    assert len({videos[i] for i in val}) == 3  # ceil(0.25 x 10)
    assert split_by_video(videos, 0.25, seed=3) == (train, val)
    assert split_by_video(videos, 0.25, seed=4) != (train, val)
    assert split_by_video(videos, 0.0) == (list(range(30)), [])


def test_split_by_video_errors():
    with pytest.raises(ValueRangeError, match="val_fraction"):
        split_by_video(["a", "b"], 1.0)
    with pytest.raises(ValueRangeError, match="cannot hold out videos"):
        split_by_video(["a", "a"], 0.5)


def test_datamodule_arguments_and_setup_errors():
    with pytest.raises(ValueRangeError, match="batch_size"):
        SaliencyDataModule(batch_size=0)
    with pytest.raises(ValueRangeError, match="num_workers"):
        SaliencyDataModule(num_workers=-1)
    with pytest.raises(ValueRangeError, match="val_fraction"):
        SaliencyDataModule(val_fraction=1.5)
    with pytest.raises(ValueRangeError, match=r"data\.dataset is required"):
        SaliencyDataModule().setup("fit")
    with pytest.raises(ValueRangeError, match="cannot hold out videos"):
        SaliencyDataModule(TinyClips(videos=1)).setup("fit")


def test_datamodule_loader_resumes_inside_an_epoch():
    data = SaliencyDataModule(TinyClips(videos=4, frames=4), val_fraction=0.25, batch_size=2)
    data.setup("fit")
    loader = data.train_dataloader()
    loader.sampler.set_epoch(1)
    full = [[*b["frame_index"].tolist(), b["video"]] for b in loader]
    it = iter(loader)
    next(it), next(it)
    state = loader.state_dict()
    assert state == {"epoch": 1, "batches": 2}
    fresh = data.train_dataloader()
    fresh.load_state_dict(state)
    rest = [[*b["frame_index"].tolist(), b["video"]] for b in fresh]
    assert rest == full[2:]
    assert len(fresh) == len(full)  # Lightning counts the whole epoch


def test_validation_clips_of_synthetic_videos_carry_fixations():
    from pano360.data import SyntheticSaliencyVideos, VideoSaliencyClips

    source = SyntheticSaliencyVideos(3, 6, (16, 32), seed=0, n_viewers=4)
    clips = VideoSaliencyClips(source, clip_len=1, frame_step=3, size=(8, 16))
    data = SaliencyDataModule(clips, val_fraction=0.3, batch_size=2)
    data.setup("fit")
    item = data.val_set[0]
    assert item["fixations"].shape == (1, 1, 8, 16)
    assert 1 <= item["fixations"].sum() <= 4


# --- the task ------------------------------------------------------------------------------------


class _Recorder(TinySaliency):
    def __init__(self, prior):
        super().__init__(prior)
        self.priors = []

    def forward(self, frames, prior=None):
        self.priors.append(None if prior is None else prior.clone())
        out = super().forward(frames, prior)
        self.outputs = [*getattr(self, "outputs", []), out]
        return out


def _batch(clip_len=2, b=2):
    from torch.utils.data import default_collate

    ds = TinyClips(videos=2, frames=4, clip_len=clip_len)
    return default_collate([ds[i] for i in range(b)])


# The task's steps are called without a Trainer here, so self.log has nowhere to log.
no_trainer = pytest.mark.filterwarnings("ignore:You are trying to `self.log")


@no_trainer
def test_prior_gt_is_teacher_forcing():
    net = _Recorder("gt")
    task = SaliencyTask(net, target_scale=10.0)
    batch = _batch()
    out = task.training_step(batch, 0)
    assert set(out) == {"loss", "mse_first_frame", "mse_later_frames"}
    assert out["loss"].requires_grad
    for t, prior in enumerate(net.priors):
        torch.testing.assert_close(prior, batch["prior"][:, t])


@no_trainer
def test_prior_prediction_feeds_the_detached_previous_output():
    net = _Recorder("prediction")
    task = SaliencyTask(net)
    task.training_step(_batch(clip_len=3), 0)
    assert torch.equal(net.priors[0], torch.zeros_like(net.priors[0]))
    for t in (1, 2):
        assert not net.priors[t].requires_grad
        want = net.outputs[t - 1].detach().clamp_min(0) / 10
        torch.testing.assert_close(net.priors[t], want)
    with pytest.raises(ValueRangeError, match="at least 2 frames"):
        task.training_step(_batch(clip_len=1), 0)


@no_trainer
def test_prior_none_calls_the_model_on_frames_alone():
    net = _Recorder("none")
    SaliencyTask(net).training_step(_batch(), 0)
    assert net.priors == [None, None]


def test_task_arguments_are_checked():
    with pytest.raises(ValueRangeError, match="lr"):
        SaliencyTask(TinySaliency(), lr=0)
    with pytest.raises(ValueError, match="metrics_preset"):
        SaliencyTask(TinySaliency(), metrics_preset="nope")
    with pytest.raises(ValueError, match="model name"):
        SaliencyTask("no_such_model")


def test_validation_scores_cc_kld_and_nss():
    task = SaliencyTask(TinySaliency())
    batch = _batch()
    perfect = task.score(batch["saliency"] * 10, batch)
    assert set(perfect) == {"cc", "kld", "nss"}
    torch.testing.assert_close(perfect["cc"], torch.ones(4), rtol=0, atol=1e-5)
    assert perfect["kld"].abs().max() < 1e-4
    flat = task.score(torch.ones_like(batch["saliency"]), batch)
    assert flat["cc"].abs().max() < 1e-6 and (flat["kld"] > 0.1).all()
    del batch["fixations"]
    assert set(task.score(batch["saliency"], batch)) == {"cc", "kld"}
    # The readout's uniform share: all of it makes every prediction the uniform map.
    uniform = SaliencyTask(TinySaliency(), uniform_share=1.0).score(batch["saliency"] * 10, batch)
    torch.testing.assert_close(uniform["kld"], flat["kld"])
    with pytest.raises(ValueRangeError, match="uniform_share"):
        SaliencyTask(TinySaliency(), uniform_share=1.5)


# --- export --------------------------------------------------------------------------------------


def test_export_round_trip_without_unpickling(tmp_path):
    net = create_model("mtcnn_pnet")
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))
    weights, card = export_model(
        net, tmp_path / "pnet", architecture="mtcnn_pnet", metrics={"cc": 0.5}, metrics_preset="x"
    )
    assert (weights.name, card.name) == ("pnet.safetensors", "pnet.json")
    info = read_model_card(card)
    assert info["architecture"]["name"] == "mtcnn_pnet"
    assert info["metrics"] == {"preset": "x", "values": {"cc": 0.5}}
    for loaded in (
        create_model(str(card)),
        create_model(str(weights)),
        create_model(tmp_path),  # the folder of one card
        create_model("mtcnn_pnet", weights=weights),
    ):
        assert not loaded.training
        for k, v in net.state_dict().items():
            assert torch.equal(loaded.state_dict()[k], v), k
    with pytest.raises(OutputExistsError):
        export_model(net, tmp_path / "pnet", architecture="mtcnn_pnet")
    with pytest.raises(WeightsError, match="not 'mtcnn_rnet'"):
        create_model("mtcnn_rnet", weights=weights)
    with pytest.raises(ValueError, match="not both"):
        create_model("mtcnn_pnet", pretrained=True, weights=weights)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        create_model(str(card))


def test_read_model_card_errors(tmp_path):
    with pytest.raises(WeightsError, match="model card not found"):
        read_model_card(tmp_path / "missing.json")
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(WeightsError, match="as JSON"):
        read_model_card(tmp_path / "a.json")
    (tmp_path / "a.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(WeightsError, match="format"):
        read_model_card(tmp_path / "a.json")
    (tmp_path / "a.json").write_text(json.dumps({"format": "pano360-model-card/1"}))
    with pytest.raises(WeightsError, match=r"architecture\.name"):
        read_model_card(tmp_path / "a.json")
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(WeightsError, match="exactly one model card"):
        read_model_card(tmp_path)
    with pytest.raises(ValueRangeError, match="config must be JSON"):
        export_model(TinySaliency(), tmp_path / "c", architecture="equator", config={"x": object()})


def test_pano360_saliency_runs_an_exported_model(tmp_path):
    from pano360.io import write_image
    from pano360.saliency import EquatorBias, equator_bias

    profile = fit_latitude_profile(equator_bias((16, 32), sigma_deg=20.0))
    model = EquatorBias(profile=profile)
    config = {"profile": profile.tolist()}  # the builder's argument, as JSON
    export_model(model, tmp_path / "eq", architecture="equator", config=config)
    erp = torch.rand(1, 3, 16, 32)
    write_image(tmp_path / "pano.png", erp)
    assert main(["saliency", str(tmp_path / "pano.png"), "--model", str(tmp_path / "eq.json"),
                 "--out", str(tmp_path / "out")]) == 0  # fmt: skip
    got = np.load(tmp_path / "out" / "pano_saliency.npy")
    want = predict_saliency(erp, "equator", profile=profile)[0, 0].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8)
    # The card's readout (SaliencyTask's uniform_share) is applied: half uniform here.
    export_model(model, tmp_path / "mixed", architecture="equator", config=config,
                 input={"uniform_share": 0.5})  # fmt: skip
    assert main(["saliency", str(tmp_path / "pano.png"), "--model", str(tmp_path / "mixed.json"),
                 "--out", str(tmp_path / "mixed_out")]) == 0  # fmt: skip
    got = np.load(tmp_path / "mixed_out" / "pano_saliency.npy")
    np.testing.assert_allclose(got, 0.5 * want + 0.5 / want.size, rtol=1e-5, atol=1e-8)


# --- learning curve ------------------------------------------------------------------------------


def test_learning_curve_from_the_csv_log(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text(
        "epoch,step,train/loss_step,train/loss_epoch,val/loss,val/cc\n"
        "0,0,2.0,,,\n0,1,,1.5,1.2,0.1\n1,3,,1.0,0.9,0.4\n1,3,,0.8,0.7,0.5\n"
    )
    series = read_epoch_metrics(csv)
    assert series == {
        "train/loss": {0: 1.5, 1: 0.8},
        "val/loss": {0: 1.2, 1: 0.7},
        "val/cc": {0: 0.1, 1: 0.5},
    }
    png = plot_learning_curve(csv, tmp_path / "curve.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(DatasetFormatError, match="cannot read metrics log"):
        read_epoch_metrics(tmp_path / "none.csv")


# --- the command ---------------------------------------------------------------------------------


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pano360: error: "), err
    return err[0]


def test_train_config_typo_exits_2_and_keeps_the_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"checkpoint bytes")
    config = tmp_path / "train.yaml"
    config.write_text(f"trainer:\n  max_epoch: 3\n  default_root_dir: {tmp_path / 'run'}\n")
    assert main(["train", "saliency", "--config", str(config), "--resume"]) == 2
    assert "max_epoch" in _one_error_line(capsys)
    assert main(["train", "saliency", "--config", str(config).replace(".yaml", ".yml")]) == 2
    _one_error_line(capsys)
    config.write_text(f"trainer:\n  default_root_dir: {tmp_path / 'run'}\nmodel:\n  lr: fast\n")
    assert main(["train", "saliency", "--config", str(config)]) == 2
    assert "lr" in _one_error_line(capsys)
    assert ckpt.read_bytes() == b"checkpoint bytes"
    assert sorted(p.name for p in (tmp_path / "run").rglob("*")) == ["checkpoints", "last.ckpt"]


def test_train_refuses_to_start_over_a_checkpoint_and_to_resume_nothing(tmp_path, capsys):
    root = tmp_path / "run"
    args = ["train", "saliency", "--model.model", "equator", "--trainer.default_root_dir"]
    assert main([*args, str(root), "--resume"]) == 2
    assert "no checkpoint to resume from" in _one_error_line(capsys)
    (root / "checkpoints").mkdir(parents=True)
    (root / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert main([*args, str(root)]) == 2
    assert "pass --resume" in _one_error_line(capsys)
    assert (root / "checkpoints" / "last.ckpt").read_bytes() == b"x"


def test_train_help_lists_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "saliency", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for text in (
        "--model.lr LR",
        "default: 0.003",
        "default: 1e-05",
        "--trainer.max_epochs",
        "--data.batch_size",
        "--resume",
        "--checkpoint_every_n_steps",
        "--optimizer",
    ):
        assert text in out, text


def test_the_config_in_docs_parses(tmp_path, capsys):
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text()
    config = tmp_path / "train.yaml"
    config.write_text(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))
    with pytest.raises(SystemExit) as exit_:
        main(["train", "saliency", "--config", str(config), "--print_config"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "class_path: pano360.data.FolderVideos" in out and "clip_len: 2" in out


def test_train_command_end_to_end_resume_export_and_predict(tmp_path, capsys):
    """Train the (narrow) Spherical U-Net on synthetic videos for an epoch, resume for one more,
    then load the export without the training code and run it with ``pano360 saliency``."""
    from pano360.io import write_image

    root = tmp_path / "run"
    config = tmp_path / "train.yaml"
    config.write_text(
        f"trainer: {{max_epochs: 1, default_root_dir: {root}, accelerator: cpu,\n"
        "  enable_progress_bar: false, enable_model_summary: false, log_every_n_steps: 1}\n"
        "model: {model: spherical_unet, model_config: {prior: prediction, channels: 4}, "
        "lr: 0.01}\n"
        "data:\n  dataset:\n    source:\n      class_path: pano360.data.SyntheticSaliencyVideos\n"
        "      init_args: {n_videos: 3, n_frames: 6, size: [16, 32], supersample: 1, "
        "n_viewers: 3}\n    clip_len: 2\n    frame_step: 2\n    size: [16, 32]\n"
        "  val_fraction: 0.3\n  batch_size: 2\n"
    )
    assert main(["train", "saliency", "--config", str(config)]) == 0
    args = ["train", "saliency", "--config", str(config), "--trainer.max_epochs", "2"]
    assert main([*args, "--resume"]) == 0
    for name in ("checkpoints/last.ckpt", "logs/metrics.csv", "learning_curve.png"):
        assert (root / name).is_file(), name
    assert sorted(read_epoch_metrics(root / "logs" / "metrics.csv")["val/nss"]) == [0, 1]
    card = read_model_card(root / "model.json")
    assert card["architecture"]["config"] == {"prior": "prediction", "channels": 4}
    assert card["input"]["trained_hw"] == [16, 32] and card["training"]["epochs"] == 2
    assert set(card["metrics"]["values"]) == {"loss", "cc", "kld", "nss"}
    net = create_model(root / "model.json")
    ckpt = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for key, value in net.state_dict().items():
        assert torch.equal(ckpt[f"net.{key}"], value), key
    write_image(tmp_path / "pano.png", torch.rand(1, 3, 32, 64))
    out = tmp_path / "out"
    assert main(["saliency", str(tmp_path / "pano.png"), "--model", str(root / "model.json"),
                 "--out", str(out)]) == 0  # fmt: skip
    sal = np.load(out / "pano_saliency.npy")
    assert sal.shape == (32, 64) and abs(sal.sum() - 1) < 1e-4
    capsys.readouterr()

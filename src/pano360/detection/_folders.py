"""Finding and blurring the faces of every 360° photo under a folder: decoded in DataLoader
workers, resumable, one result per file.

:class:`FaceFolderJob` holds the settings and the file list (every image under ``src``,
recursively, by extension: :func:`list_images`) and does the work on one decoded image
(:meth:`FaceFolderJob.run`); :class:`FolderImages` is the dataset a DataLoader decodes in its
workers; :func:`blur_faces_in_folder` runs them in this process (Lightning's predict loop runs
them on many processes, GPUs and nodes: :func:`pano360.training.blur_faces_in_folder_ddp`).

Outputs, for ``src/a/b.jpg``: ``dst/a/b.jpg`` (blurred, the input's format, bit depth, EXIF, XMP
and ICC profile; only with ``blur``) and ``dst/a/b.jpg.json`` (the faces, as ``pano360 faces``
writes them for one image, with the settings and the blurred file's size).

Resuming: each output is written atomically (:func:`pano360.io.write_atomic`), the blurred
image first and the JSON last, so the JSON marks a finished file. A file is skipped when its
JSON was written by this module with the same settings and, with ``blur``, the image beside it
has the size the JSON records; otherwise it is done again (its outputs, being this module's,
are replaced). A file in the way that this module did not write (an output without its JSON,
a JSON of another program) is never replaced unless ``overwrite``: that file fails with
:class:`~pano360.errors.OutputExistsError` and the others go on.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from .._core import (
    ImageIOError,
    OutputExistsError,
    Pano360Error,
    ShapeError,
    ValueRangeError,
    check_bool,
    check_int,
    check_number,
)
from ..io import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, read_image, write_atomic, write_images
from ..viz import blur_regions_on_sphere
from ._faces360 import (
    _check_settings,
    detect_faces,
    detector_precision,
    face_detections,
    load_pnet_students,
)
from ._memory import check_face_memory

__all__ = [
    "FOLDER_SUMMARY_FIELDS",
    "FaceFolderJob",
    "FolderFaceResult",
    "FolderImages",
    "blur_faces_in_folder",
    "list_images",
]

#: Columns of the folder summary (``faces_summary.csv``), one row per file.
FOLDER_SUMMARY_FIELDS = ("file", "status", "faces", "seconds", "error", "rank")
# What the JSON files of this module say they are (how a resumed run knows its own files).
_WRITER = "pano360 faces (folder)"
_SUMMARY_WRITER = "pano360 faces (folder summary)"
_SUMMARY_NAME = "faces_summary"
# Formats that store 16 bits per sample: a 16-bit input stays 16-bit there.
_DEEP_SUFFIXES = (".png", ".tif", ".tiff")
_CONVENTION = (
    "degrees; bfov = [lon, lat, fov_x, fov_y]: a pinhole view aimed at the face centre (lon > 0 "
    "east/right, lat > 0 up); landmarks [lon, lat]: the eye on the image's left, the other eye, "
    "the nose, the mouth corners (see docs/conventions.md)"
)


def list_images(folder: str | os.PathLike[str]) -> list[str]:
    """Every image file under ``folder``, recursively: relative POSIX paths, sorted.

    Images are files whose extension (any case) is one of :data:`pano360.io.IMAGE_EXTENSIONS`.
    Hidden files and folders (names starting with ``.``, such as the temporary files of an
    atomic write) are left out; symbolic links to folders are not followed.

    Raises:
        ImageIOError: ``folder`` is not a folder.

    Example:
        >>> import tempfile
        >>> from pano360.io import write_image
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     write_image(f"{tmp}/b.png", torch.rand(3, 8, 16))
        ...     os.mkdir(f"{tmp}/a")
        ...     write_image(f"{tmp}/a/c.JPG", torch.rand(3, 8, 16))
        ...     _ = Path(f"{tmp}/notes.txt").write_text("not an image")
        ...     list_images(tmp)
        ['a/c.JPG', 'b.png']
    """
    root = Path(folder)
    if not root.is_dir():
        raise ImageIOError(f"'{root}' is not a folder")
    found = []
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(here).relative_to(root)
        found += [
            (rel / name).as_posix()
            for name in files
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS
        ]
    return sorted(found)


@dataclasses.dataclass(frozen=True)
class FolderFaceResult:
    """What happened to one file of a folder.

    Attributes:
        file: the path relative to the input folder (POSIX).
        status: "done" (processed now), "skipped" (already done by an earlier run) or "failed".
        faces: faces found (for "skipped", as recorded by the earlier run); None if failed.
        seconds: time spent on the file: decoding (in its DataLoader worker), detection,
            blurring and writing; 0 when skipped.
        error: the reason it failed, one line naming the file; None otherwise.
        rank: the process that handled it (Lightning's global rank; 0 in one process).
    """

    file: str
    status: str
    faces: int | None
    seconds: float
    error: str | None = None
    rank: int = 0

    def to_dict(self) -> dict:
        """The summary's row: :data:`FOLDER_SUMMARY_FIELDS`."""
        return dataclasses.asdict(self)


def _only(batch: list):
    # The DataLoader's collate_fn: one item per batch, passed through.
    return batch[0]


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)


class FolderImages(Dataset):
    """The images of a :class:`FaceFolderJob`, decoded one per item (for a DataLoader's workers).

    Item ``i`` is a dict: ``"index"`` (i), ``"file"`` (relative path), ``"image"`` ((1, C, H, W)
    float32 in [0, 1], C in 1, 3, 4; None if skipped or failed), ``"info"`` (its
    :class:`pano360.io.ImageInfo`), ``"skipped"`` (the faces an earlier run recorded, or None),
    ``"replace"`` (whether its outputs may be replaced), ``"error"`` (why it cannot be done, or
    None) and ``"seconds"`` (decoding time). A file already done is not decoded; a file that
    cannot be read or is not 2:1 gives an item with its error (reading never raises).
    """

    def __init__(self, job: FaceFolderJob):
        self.job = job

    def __len__(self) -> int:
        return len(self.job.files)

    def __getitem__(self, index: int) -> dict:
        start = time.perf_counter()
        rel = self.job.files[index]
        item = {"index": index, "file": rel, "image": None, "info": None, "skipped": None}
        item.update(replace=False, error=None, seconds=0.0)
        try:
            state, value = self.job.output_state(rel)
            if state == "done":
                item["skipped"] = value
                return item
            item["replace"] = value
            image, info = read_image(
                self.job.src / rel, max_pixels=self.job.max_pixels, with_info=True
            )
            h, w = image.shape[-2:]
            if w != 2 * h:
                raise ShapeError(
                    f"'{self.job.src / rel}' must be an equirectangular panorama with width = 2 "
                    f"x height, got {w}x{h}"
                )
            item.update(image=image, info=info)
        except Pano360Error as e:
            item["error"] = str(e)
        item["seconds"] = time.perf_counter() - start
        return item


class FaceFolderJob:
    """Find, and blur, the faces of every image under a folder: the settings, the file list and
    the work on one file (shared by :func:`blur_faces_in_folder` and Lightning's predict loop).

    Args:
        src: the input folder; its images (:func:`list_images`) are equirectangular
            (width = 2 x height).
        dst: the output folder, mirroring ``src``'s layout (module docstring); it may not be
            ``src`` or inside it.
        blur: also write each image blurred (else only the JSON of its faces).
        strategy, min_face_deg, max_face_deg, thresholds, students: as in
            :func:`~pano360.detection.detect_faces` (``students``: a folder of distill runs,
            loaded once).
        half: run the detector's networks in float16 (``torch.autocast``; meant for CUDA, where
            it is faster; the boxes and the blur stay float32).
        overwrite: replace existing outputs (every file is done again, none is skipped).
        max_pixels: largest image read (:func:`pano360.io.read_image`).
        max_memory_gb: a file whose search is estimated to need more memory than this (GB)
            fails, before detecting, with the estimate and the minimum face that fits
            (:func:`~pano360.detection.check_face_memory`); None: what the system has
            available when the file's turn comes.
        quality: JPEG and WebP quality of the blurred images.

    Raises:
        ImageIOError: ``src`` is not a folder or holds no image.
        ValueRangeError: ``dst`` is ``src`` or inside it, an output would be one of the inputs,
            a setting is out of range, or ``students`` holds no distill run.
        OutputExistsError: a summary file in ``dst`` was not written by this module and
            ``overwrite`` is False.
        ValueError: unknown strategy.

    Example:
        >>> import tempfile
        >>> from pano360.io import write_image
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     os.makedirs(f"{tmp}/in/street")
        ...     write_image(f"{tmp}/in/street/a.png", torch.rand(3, 32, 64))
        ...     job = FaceFolderJob(f"{tmp}/in", f"{tmp}/out", min_face_deg=24)
        ...     item = job.dataset()[0]
        ...     result = job.run(item)
        ...     job.files, result.status, sorted(os.listdir(f"{tmp}/out/street"))
        (['street/a.png'], 'done', ['a.png', 'a.png.json'])
    """

    def __init__(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        *,
        blur: bool = True,
        strategy: str = "spherical",
        min_face_deg: float = 8.0,
        max_face_deg: float = 60.0,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        students: str | os.PathLike[str] | None = None,
        half: bool = False,
        overwrite: bool = False,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        max_memory_gb: float | None = None,
        quality: int = 95,
    ):
        from .._core import check_choice
        from ._faces360 import FACE_STRATEGIES

        self.blur = check_bool(blur, "blur")
        self.half = check_bool(half, "half")
        self.overwrite = check_bool(overwrite, "overwrite")
        check_choice(strategy, "strategy", FACE_STRATEGIES)
        _check_settings(min_face_deg, max_face_deg, thresholds, 0.709)
        if (strategy == "distilled") != (students is not None):
            raise ValueError("students go with strategy 'distilled', and only with it")
        self.quality = check_int(quality, "quality", lo=1, hi=100)
        self.max_pixels = max_pixels
        self.max_memory_gb = check_number(
            max_memory_gb, "max_memory_gb", lo=0.0, lo_open=True, optional=True
        )
        self.src, self.dst = Path(src), Path(dst)
        self.strategy, self.min_face_deg, self.max_face_deg = strategy, min_face_deg, max_face_deg
        self.thresholds = tuple(float(t) for t in thresholds)
        self.files = list_images(self.src)
        if not self.files:
            raise ImageIOError(
                f"'{self.src}' holds no images ({', '.join(IMAGE_EXTENSIONS)}, in any case)"
            )
        src_abs, dst_abs = self.src.resolve(), self.dst.resolve()
        if dst_abs == src_abs or src_abs in dst_abs.parents:
            raise ValueRangeError(
                f"the output folder '{self.dst}' is the input folder '{self.src}' or inside it; "
                "choose a folder outside it (a later run would take the outputs for inputs)"
            )
        if src_abs != dst_abs and dst_abs in src_abs.parents:
            inputs = {src_abs / f for f in self.files}
            clash = next((f for f in self.files if dst_abs / f in inputs), None)
            if clash is not None:
                raise ValueRangeError(
                    f"the output of '{self.src / clash}' would be the input "
                    f"'{self.dst / clash}'; choose another output folder"
                )
        self.settings = {
            "blur": self.blur,
            "strategy": strategy,
            "min_face_deg": float(min_face_deg),
            "max_face_deg": float(max_face_deg),
            "thresholds": list(self.thresholds),
            "students": None if students is None else str(students),
        }
        self._students = None if students is None else load_pnet_students(students)
        self._students_on: dict[torch.device, dict] = {}
        for path in self.summary_paths():
            if path.exists() and not self.overwrite and not _is_our_summary(path):
                raise OutputExistsError(
                    f"'{path}' exists and is not a summary of pano360 faces; remove it or "
                    "overwrite it (--overwrite)"
                )

    def __repr__(self) -> str:
        return (
            f"FaceFolderJob(src='{self.src}', dst='{self.dst}', files={len(self.files)}, "
            f"blur={self.blur}, strategy={self.strategy!r}, min_face_deg={self.min_face_deg:g}, "
            f"max_face_deg={self.max_face_deg:g}, half={self.half}, overwrite={self.overwrite})"
        )

    def outputs(self, file: str) -> tuple[Path, Path]:
        """(blurred image, JSON) of the input ``file`` (a path relative to ``src``)."""
        image = self.dst / file
        return image, image.with_name(image.name + ".json")

    def summary_paths(self) -> tuple[Path, Path]:
        """The summary files: ``dst/faces_summary.csv`` and ``dst/faces_summary.json``."""
        return self.dst / f"{_SUMMARY_NAME}.csv", self.dst / f"{_SUMMARY_NAME}.json"

    def dataset(self) -> FolderImages:
        """The files as a dataset whose items are decoded images (:class:`FolderImages`)."""
        return FolderImages(self)

    def loader(self, jobs: int = 0, dataset: Dataset | None = None) -> DataLoader:
        """A DataLoader of ``dataset`` (default :meth:`dataset`) decoding in ``jobs`` worker
        processes (0: in this one), one item at a time (the images differ in size), each worker
        on one torch thread (more would only compete with the detector)."""
        return DataLoader(
            self.dataset() if dataset is None else dataset,
            batch_size=1,
            collate_fn=_only,
            num_workers=jobs,
            worker_init_fn=_one_thread if jobs else None,
            prefetch_factor=2 if jobs else None,
        )

    def output_state(self, file: str) -> tuple[str, object]:
        """Whether ``file`` is done: ("done", faces recorded) or ("todo", whether its outputs
        may be replaced).

        Raises:
            OutputExistsError: an output in the way was not written by this module (module
                docstring) and ``overwrite`` is False.
        """
        image, record = self.outputs(file)
        if self.overwrite:
            return "todo", True
        if os.path.lexists(record):
            doc = _read_record(record)
            if doc is None:
                raise OutputExistsError(
                    f"'{record}' exists and was not written by pano360 faces; remove it or "
                    "overwrite it (--overwrite)"
                )
            wrote = doc.get("blurred")
            ours = isinstance(wrote, dict) and wrote.get("file") == image.name
            intact = ours and image.is_file() and image.stat().st_size == wrote.get("bytes")
            if doc.get("settings") == self.settings and (not self.blur or intact):
                return "done", len(doc.get("faces", []))
            if self.blur and os.path.lexists(image) and not ours:
                raise OutputExistsError(
                    f"'{image}' exists and was not written by pano360 faces; remove it or "
                    "overwrite it (--overwrite)"
                )
            return "todo", True
        if self.blur and os.path.lexists(image):
            raise OutputExistsError(
                f"'{image}' exists without the '{record.name}' that pano360 faces writes last; "
                "remove it or overwrite it (--overwrite)"
            )
        return "todo", False

    def _students_for(self, device: torch.device):
        if self._students is None:
            return None
        if device not in self._students_on:
            self._students_on[device] = {k: m.to(device) for k, m in self._students.items()}
        return self._students_on[device]

    def run(
        self, item: dict, device: str | torch.device = "cpu", rank: int = 0
    ) -> FolderFaceResult:
        """Detect (and blur) the faces of one item of :meth:`dataset` and write its outputs.

        Args:
            item: an item of :class:`FolderImages`.
            device: where detection and blurring run.
            rank: recorded in the result (the process's global rank under Lightning).

        Returns:
            A :class:`FolderFaceResult`; a failure on this file (unreadable, not 2:1, an output
            in the way or not writable, out of memory) is its ``error``, not an exception.
        """
        file = item["file"]
        if item["skipped"] is not None:
            return FolderFaceResult(file, "skipped", item["skipped"], 0.0, rank=rank)
        start = time.perf_counter()
        error = item["error"]
        faces = None
        if error is None:
            try:
                faces = self._process(item, torch.device(device))
            except (Pano360Error, MemoryError, torch.OutOfMemoryError) as e:
                error = str(e) if isinstance(e, Pano360Error) else f"'{file}': out of memory"
        seconds = item["seconds"] + time.perf_counter() - start
        if error is not None:
            return FolderFaceResult(file, "failed", None, seconds, " ".join(error.split()), rank)
        return FolderFaceResult(file, "done", faces, seconds, rank=rank)

    def _process(self, item: dict, device: torch.device) -> int:
        file, info, replace = item["file"], item["info"], item["replace"]
        h, w = item["image"].shape[-2:]
        # Held after detecting: the blurred float copy and its encoding.
        outputs = (4 * 3 + 3) * h * w if self.blur else 0
        check_face_memory(
            (h, w),
            self.min_face_deg,
            self.max_face_deg,
            output_bytes=outputs,
            max_memory_gb=self.max_memory_gb,
        )
        erp = item["image"].to(device)
        channels = erp.shape[1]
        rgb = erp[:, :3] if channels >= 3 else erp.expand(-1, 3, -1, -1)
        with torch.inference_mode():
            with detector_precision(device, self.half):
                (found,) = detect_faces(
                    rgb,
                    self.strategy,
                    self.min_face_deg,
                    self.max_face_deg,
                    self.thresholds,
                    students=self._students_for(device),
                )
            found = {k: v.float().cpu() if v.is_floating_point() else v for k, v in found.items()}
            blurred = None
            if self.blur:
                out = blur_regions_on_sphere(rgb, found["boxes"].to(rgb))
                # The input's channels: grayscale stays grayscale, alpha is kept.
                out = out[:, :1] if channels == 1 else torch.cat([out, erp[:, 3:]], 1)
                blurred = out.float().cpu()
        faces = face_detections(found)
        image, record = self.outputs(file)
        h, w = item["image"].shape[-2:]
        doc = {
            "writer": _WRITER,
            "image": file,
            "image_size": [w, h],
            "strategy": self.strategy,
            "settings": self.settings,
            "convention": _CONVENTION,
            "faces": [f.to_dict() for f in faces],
            "blurred": None,
        }
        record.parent.mkdir(parents=True, exist_ok=True)
        if blurred is not None:
            deep = info.bit_depth == 16 and image.suffix.lower() in _DEEP_SUFFIXES
            write_images(
                {image: blurred},
                overwrite=replace,
                quality=self.quality,
                bit_depth=16 if deep else 8,
                metadata=info,
            )
            doc["blurred"] = {"file": image.name, "bytes": image.stat().st_size}
        text = (json.dumps(doc, indent=1) + "\n").encode()
        try:
            write_atomic(record, lambda f: f.write(text), overwrite=replace)
        except BaseException:
            if blurred is not None:
                image.unlink(missing_ok=True)  # no image without its record
            raise
        return len(faces)

    def write_summary(self, results: Iterable[FolderFaceResult]) -> tuple[Path, Path]:
        """Write the summary of a run, one row per file sorted by file, as CSV and JSON
        (:meth:`summary_paths`), atomically. The JSON also holds the settings and the counts.

        Returns:
            (CSV path, JSON path).

        Raises:
            ImageIOError: ``dst`` cannot be written.
        """
        rows = sorted(results, key=lambda r: r.file)
        counts = {s: sum(r.status == s for r in rows) for s in ("done", "skipped", "failed")}
        counts["faces"] = sum(r.faces or 0 for r in rows)
        table = io.StringIO()
        writer = csv.DictWriter(table, FOLDER_SUMMARY_FIELDS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r.to_dict(), "seconds": f"{r.seconds:.3f}"})
        doc = {
            "writer": _SUMMARY_WRITER,
            "src": str(self.src),
            "dst": str(self.dst),
            "settings": self.settings,
            "counts": counts,
            "files": [{**r.to_dict(), "seconds": round(r.seconds, 3)} for r in rows],
        }
        csv_path, json_path = self.summary_paths()
        self.dst.mkdir(parents=True, exist_ok=True)
        for path, text in ((csv_path, table.getvalue()), (json_path, json.dumps(doc, indent=1))):
            data = text.encode()
            write_atomic(path, lambda f, data=data: f.write(data), overwrite=True)
        return csv_path, json_path


def _read_record(path: Path) -> dict | None:
    """The JSON of one file if this module wrote it, else None."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("writer") == _WRITER else None


def _is_our_summary(path: Path) -> bool:
    try:
        text = path.read_text()
    except (OSError, ValueError):
        return False
    if path.suffix == ".csv":
        return text.split("\n", 1)[0] == ",".join(FOLDER_SUMMARY_FIELDS)
    try:
        doc = json.loads(text)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("writer") == _SUMMARY_WRITER


def blur_faces_in_folder(
    job: FaceFolderJob,
    *,
    jobs: int = 0,
    device: str | torch.device = "cpu",
    on_result: Callable[[FolderFaceResult], None] | None = None,
) -> list[FolderFaceResult]:
    """Run a :class:`FaceFolderJob` in this process, decoding in ``jobs`` DataLoader workers;
    write its summary.

    Args:
        job: the folder, the outputs and the settings.
        jobs: DataLoader worker processes that decode (and check which files are done) ahead of
            the detector; 0 decodes in this process.
        device: where detection and blurring run.
        on_result: called with each file's result as it comes (a progress bar, an error line).

    Returns:
        One :class:`FolderFaceResult` per file, in the order of ``job.files``. A file that
        fails does not stop the others; the summary (:meth:`FaceFolderJob.write_summary`)
        names it.

    Raises:
        ValueRangeError: ``jobs`` < 0.
        ImageIOError: the summary cannot be written.

    Example:
        >>> import tempfile
        >>> from pano360.io import write_image
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     os.mkdir(f"{tmp}/in")
        ...     write_image(f"{tmp}/in/a.png", torch.rand(3, 32, 64))
        ...     _ = Path(f"{tmp}/in/b.jpg").write_bytes(b"not a jpeg")
        ...     job = FaceFolderJob(f"{tmp}/in", f"{tmp}/out", min_face_deg=24)
        ...     [r.status for r in blur_faces_in_folder(job)]
        ...     [r.status for r in blur_faces_in_folder(job)]  # again: a is done
        ['done', 'failed']
        ['skipped', 'failed']
    """
    jobs = check_int(jobs, "jobs", lo=0)
    device = torch.device(device)
    loader = job.loader(jobs)
    results = []
    for item in loader:
        result = job.run(item, device)
        results.append(result)
        if on_result is not None:
            on_result(result)
    job.write_summary(results)
    return results

"""The explorer's state: which runs it may show, each run's loaded model and test set, and the
background jobs (occlusion, activation maximisation) with their progress.

Run names are resolved only inside the runs folder (a plain folder name, no ``/``, no ``..``,
the resolved folder's parent must be the runs folder itself, so a symlink out is refused), or
among the model files the command was started with. Anything else is ``NotFound``.

Thread safety: each run's model is used under that run's lock (the explain functions switch
evaluation mode and frozen parameters on the model while they run); jobs run one at a time on
their own copy of the model, loaded again from its file, so a long occlusion map doesn't hold up
predictions.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from cnnlab import runs
from cnnlab.errors import CnnlabError
from cnnlab.explore import compute
from cnnlab.explore.compute import ExploreError

__all__ = ["RUN_NAME", "Catalog", "Jobs", "NotFound", "RunSession", "last_run"]

#: what a run name may be: a plain folder name (no separators, no leading dot)
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
#: entries of the runs folder looked at when listing runs
MAX_LISTED = 1000


class NotFound(CnnlabError, LookupError):
    """No such run, job or file: the server answers 404."""


def _has_model(folder: Path) -> bool:
    return any((folder / name).is_file() for name in (runs.MODEL_FILE, runs.CHECKPOINT_FILE))


def _run_folders(runs_dir: Path) -> list[Path]:
    if not runs_dir.is_dir():
        return []
    found = []
    for entry in itertools.islice(sorted(runs_dir.iterdir()), MAX_LISTED):
        if RUN_NAME.fullmatch(entry.name) and entry.is_dir() and _has_model(entry):
            found.append(entry)
    return found


def last_run(runs_dir) -> Path | None:
    """The run folder in ``runs_dir`` whose model file changed last, or None."""
    folders = _run_folders(Path(runs_dir))
    if not folders:
        return None
    return max(folders, key=lambda f: runs.find_model_file(f).stat().st_mtime)


class Catalog:
    """The runs the explorer may show: folders in ``runs_dir``, plus ``extra`` name -> model
    path (what the command was given). ``default`` names the run the page opens first."""

    def __init__(self, runs_dir=None, extra: dict | None = None, default: str | None = None):
        self.runs_dir = None if runs_dir is None else Path(runs_dir).resolve()
        self.extra = {name: Path(path) for name, path in (extra or {}).items()}
        self.default = default

    def resolve(self, name) -> Path:
        """The run folder or model file of run ``name``; NotFound unless it is one of ours."""
        if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or ".." in name:
            raise NotFound(f"no run {name!r}")
        if name in self.extra:
            return self.extra[name]
        if self.runs_dir is not None:
            folder = self.runs_dir / name
            if folder.is_dir() and folder.resolve().parent == self.runs_dir and _has_model(folder):
                return folder
        raise NotFound(f"no run {name!r} in the runs folder")

    def listing(self) -> list[dict]:
        entries = [(name, path) for name, path in self.extra.items()]
        if self.runs_dir is not None:
            entries += [(f.name, f) for f in _run_folders(self.runs_dir) if f.name not in self.extra]
        listed = []
        for name, path in entries:
            model = data = None
            folder = path if path.is_dir() else path.parent
            if (folder / runs.RUN_FILE).is_file():
                try:
                    info = runs.Run(folder).read_info()
                    model, data = info.model, info.data
                except CnnlabError:
                    pass
            listed.append({"name": name, "model": model, "data": data})
        return listed


class RunSession:
    """One run: its model (loaded once, read-only while serving), its test set, its lock."""

    def __init__(self, name: str, path: Path):
        self.name, self.path = name, path
        self.lock = threading.RLock()
        self.model = runs.load_any_model(path)
        compute.layers_of(self.model)  # refuse a model the page can't draw, now
        self.info = None
        folder = path if path.is_dir() else path.parent
        if (folder / runs.RUN_FILE).is_file():
            try:
                self.info = runs.Run(folder).read_info()
            except CnnlabError:
                self.info = None
        self._test = None
        self._test_problem = None
        self._job_model = None

    def describe(self) -> dict:
        test = self.test_set()
        described = compute.describe(self.model)
        described.update(name=self.name, model=getattr(self.info, "model", None),
                         data=getattr(self.info, "data", None), has_test_set=test is not None,
                         test_count=0 if test is None else len(test),
                         test_problem=self._test_problem)
        return described

    def test_set(self):
        """The run's test split at the model's size, or None (with the reason kept)."""
        with self.lock:
            if self._test is None and self._test_problem is None:
                self._test, self._test_problem = self._load_test()
            return self._test

    def _load_test(self):
        if self.info is None or not self.info.data:
            return None, "the run records no data set (no run.json)"
        from cnnlab.data import load_dataset

        shape = tuple(int(n) for n in self.model.input_shape)
        try:
            test = load_dataset(self.info.data, image_size=shape[1:], download=False).test
        except (CnnlabError, ValueError, TypeError, OSError) as error:
            return None, f"cannot load the test set of {self.info.data!r}: {error}"[:500]
        if tuple(test.image_shape) != shape:
            return None, (f"the test images have shape {list(test.image_shape)}, the model "
                          f"takes {list(shape)}")
        return test, None

    def test_image(self, index) -> tuple[np.ndarray, int]:
        """Test image ``index`` as (C, H, W) in [0, 1], and its label."""
        test = self.test_set()
        if test is None:
            raise NotFound(f"run {self.name!r} has no test set: {self._test_problem}")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(test):
            raise ExploreError(f"test image index must be an integer 0..{len(test) - 1}, "
                               f"received {index!r}")
        image = np.asarray(test.images[index])
        image = image / 255.0 if image.dtype == np.uint8 else image
        return image.astype(np.float32), int(test.labels[index])

    def job_model(self):
        """A private copy of the model for background jobs (loaded again from its file)."""
        if self._job_model is None:
            self._job_model = runs.load_any_model(self.path)
        return self._job_model


class Job:
    def __init__(self, job_id: str, kind: str):
        self.id, self.kind = job_id, kind
        self.state, self.progress, self.result, self.error = "running", 0.0, None, None

    def to_json(self) -> dict:
        return {"job": self.id, "kind": self.kind, "state": self.state,
                "progress": self.progress, "result": self.result, "error": self.error}


class Jobs:
    """Background computations, one at a time, with progress; the last ``keep`` are kept and at
    most ``pending`` may wait (more: ExploreError, 'busy')."""

    def __init__(self, keep: int = 32, pending: int = 4):
        self.keep, self.pending = keep, pending
        self.lock = threading.Lock()
        self.running = threading.Lock()
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.counter = itertools.count(1)

    def start(self, kind: str, work) -> Job:
        """Run ``work(progress)`` in a thread; ``progress(done, total)`` updates the job."""
        with self.lock:
            waiting = sum(job.state == "running" for job in self.jobs.values())
            if waiting >= self.pending:
                raise ExploreError(f"{waiting} jobs are already waiting; try again when one ends")
            job = Job(f"{next(self.counter)}-{np.random.default_rng().integers(1 << 30):x}", kind)
            self.jobs[job.id] = job
            while len(self.jobs) > self.keep:
                oldest = next(iter(self.jobs))
                if self.jobs[oldest].state == "running":
                    break
                self.jobs.pop(oldest)

        def progress(done, total):
            job.progress = float(done) / max(float(total), 1.0)

        def run():
            with self.running:
                try:
                    job.result = work(progress)
                    job.progress, job.state = 1.0, "done"
                except (CnnlabError, ValueError) as error:
                    job.error, job.state = str(error), "failed"
                except Exception as error:  # noqa: BLE001 (a bug: reported on the job)
                    job.error, job.state = f"internal error: {type(error).__name__}: {error}", \
                        "failed"

        threading.Thread(target=run, name=f"cnnlab-job-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job:
        with self.lock:
            if job_id not in self.jobs:
                raise NotFound(f"no job {job_id!r}")
            return self.jobs[job_id]

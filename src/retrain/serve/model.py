"""The served model as an immutable handle, and the rollout that replaces it.

A request reads `Rollout.state` once and scores with the handles it holds, so a swap never
changes the model under a request in flight: the old handle lives until its last request
ends. The swap itself is one attribute assignment (atomic in CPython).

`Rollout.poll` looks at the registry's git tags (one `git for-each-ref`, milliseconds); only
when they changed does it ask GTO which version is in prod (and in the canary stage) and
materialise a new one as the predict flow does (`registry.serving.load_version`: from the DVC
cache or remote, md5-checked against the version's dvc.lock).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from retrain.config import Params
from retrain.hashing import file_md5
from retrain.infra.git import git
from retrain.registry import versions
from retrain.registry.canary import share_of
from retrain.registry.serving import ServedModel, load_version
from retrain.scoring import ModelMismatch, Scores, model_input, scores_for
from retrain.serve.encode import RowEncoder
from retrain.task import Task, task_for

log = logging.getLogger("retrain.serve")


@dataclass(frozen=True)
class ModelHandle:
    """One registered version, loaded: ONNX session, preprocessor, and what its task needs to
    show a prediction (threshold, interval; `served`)."""

    served: ServedModel
    predictor: object  # retrain.models.predictor.Predictor (imported lazily: onnxruntime)
    md5: dict[str, str]
    loaded_at: str
    encoder: RowEncoder  # the preprocessor + fill values as numpy constants (the fast path)
    task: Task

    @property
    def version(self) -> str:
        return self.served.version.version

    @property
    def model_md5(self) -> str:
        return self.md5[self.served.onnx.name]

    def scores(self, prediction: np.ndarray) -> Scores:
        """A raw model output shown as the task shows it."""
        served = self.served
        return scores_for(
            self.task, prediction, threshold=served.threshold, interval=served.interval
        )

    def score(self, df: pd.DataFrame, params: Params) -> Scores:
        """The rows' predictions, with the predict flow's own input preparation."""
        pre = self.predictor.preprocessor  # type: ignore[attr-defined]
        x = pre.transform(model_input(df, params))
        return self.scores(self.predictor.predict_matrix(x))  # type: ignore[attr-defined]

    def score_columns(self, cols: Mapping[str, np.ndarray]) -> Scores:
        """`score` of the same rows given as column arrays, without pandas (bit-equal)."""
        x = self.encoder.encode(cols)
        return self.scores(self.predictor.predict_matrix(x))  # type: ignore[attr-defined]

    def describe(self) -> dict[str, object]:
        """What /ready shows of this version: a binary model's threshold, a regression
        model's interval, the task of the others."""
        out: dict[str, object] = {
            "model": self.served.label,
            "version": self.version,
            "commit": self.served.version.commit,
            "md5": self.md5,
        }
        if self.served.threshold is not None:
            out["threshold"] = self.served.threshold
        else:
            out["task"] = self.task.describe()
        if self.served.interval is not None:
            out["interval"] = asdict(self.served.interval)
        return {**out, "loaded_at": self.loaded_at}


def load_handle(root: Path, params: Params, version: versions.ModelVersion) -> ModelHandle:
    return handle_of(load_version(root, params, version), params)


def handle_of(served: ServedModel, params: Params) -> ModelHandle:
    """`served` (materialised files) loaded for scoring.

    Raises:
        ModelMismatch: its ONNX output is not as wide as the configured task's (e.g. a
            model of 4 classes where params.yaml pins 3): found at load, so the version
            serving now keeps serving and /ready says why.
    """
    from retrain.models.predictor import Predictor

    md5 = {p.name: file_md5(p) for p in served.files}
    predictor = Predictor(served.preprocessor, served.onnx)
    task = task_for(params.dataset)
    output = predictor.session.get_outputs()[0]
    width = output.shape[-1] if len(output.shape) == 2 else None
    if isinstance(width, int) and width != task.n_outputs:
        raise ModelMismatch(
            f"{served.label}: {served.onnx.name} outputs {width} value(s) per row "
            f"({output.name!r}); a {task.describe()} task needs {task.n_outputs}"
        )
    now = datetime.now(UTC).isoformat(timespec="seconds")
    encoder = RowEncoder(predictor.preprocessor, params.prepare.fill_values)
    return ModelHandle(served, predictor, md5, now, encoder, task)


@dataclass(frozen=True)
class ServingState:
    """What requests are scored with right now (never mutated: replaced as a whole)."""

    prod: ModelHandle | None
    canary: ModelHandle | None = None
    canary_share: float = 0.0
    error: str | None = None

    def pick(self, key: str | None) -> ModelHandle | None:
        """The canary for a stable `canary_share` of keys, prod otherwise (and without a key)."""
        if self.canary is None or key is None or self.canary_share <= 0:
            return self.prod
        bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") / 2**32
        return self.canary if bucket < self.canary_share else self.prod


@dataclass
class Rollout:
    """Follows GTO's prod (and canary) stage of the project at `root`."""

    root: Path
    params: Params
    state: ServingState = field(default_factory=lambda: ServingState(None))
    swaps: int = 0
    _tags: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def tags(self) -> str:
        name = self.params.registry.model_name
        return git(
            self.root,
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            f"refs/tags/{name}@*",
            f"refs/tags/{name}#*",
        )

    def poll(self) -> bool:
        """Load what the registry says is in prod (and canary) now; True if anything changed.

        A version that cannot be loaded leaves the current one serving; the error is kept in
        the state (shown by /ready) and the next poll tries again.
        """
        tags = self.tags()
        if tags == self._tags:
            return False
        reg, serve = self.params.registry, self.params.serve
        current = self.state
        try:
            prod_v = versions.in_stage(self.root, reg.model_name, reg.stage)
            prod = self._handle(prod_v, current.prod)
            canary, share = None, 0.0
            canary_v = versions.in_stage(self.root, reg.model_name, serve.canary_stage)
            if canary_v is not None and (prod_v is None or canary_v.version != prod_v.version):
                # `retrain canary start --share` puts the share in the stage's tag.
                said = share_of(self.root, reg.model_name, serve.canary_stage, canary_v.version)
                share = serve.canary_share if said is None else said
                canary = self._handle(canary_v, current.canary) if share > 0 else None
        except Exception as err:  # keep serving what we have; say why on /ready
            log.error("registry poll failed: %s", err)
            self.state = ServingState(
                current.prod, current.canary, current.canary_share, f"{type(err).__name__}: {err}"
            )
            return False
        error = None if prod is not None else f"no version of {reg.model_name} is in {reg.stage}"
        new = ServingState(prod, canary, share if canary else 0.0, error)
        changed = _label(new.prod) != _label(current.prod) or _label(new.canary) != _label(
            current.canary
        )
        self.state = new  # the swap: one assignment
        self._tags = tags
        if changed:
            self.swaps += 1
            log.info(
                "serving %s%s",
                _label(new.prod) or "nothing",
                f" (canary {_label(new.canary)} at {new.canary_share:.0%})" if new.canary else "",
            )
        return changed

    def _handle(
        self, version: versions.ModelVersion | None, have: ModelHandle | None
    ) -> ModelHandle | None:
        if version is None:
            return None
        if have is not None and have.served.version == version:
            return have
        return load_handle(self.root, self.params, version)

    def start(self) -> None:
        """Poll every serve.poll_s seconds in a daemon thread until `stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="registry-poll", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.params.serve.poll_s):
            started = time.perf_counter()
            try:
                self.poll()
            except Exception as err:  # git itself failed: try again next time
                log.error("registry poll failed: %s", err)
            log.debug("poll took %.3fs", time.perf_counter() - started)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def _label(handle: ModelHandle | None) -> str | None:
    return None if handle is None else handle.served.label

"""The one typed configuration, parsed from params.yaml.

Every section forbids unknown keys, so a typo in params.yaml is an error that names the key
instead of a silently ignored setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from retrain import PARAMS_FILE
from retrain.errors import RetrainError

DEFAULT_PARAMS = Path(PARAMS_FILE)


class ConfigError(RetrainError, ValueError):
    """params.yaml is missing, unreadable or does not match the schema.

    A RetrainError, so every command reports it in one line; still a ValueError for callers
    that caught it as one."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSchema(_Strict):
    """What the raw table looks like; another table needs only a new section here."""

    name: str
    suite: Path
    target: str
    # binary | multiclass | regression (retrain.task); `retrain init` chooses it from the target.
    task: Literal["binary", "multiclass", "regression"] = "binary"
    # binary only: the class predicted as 1.
    positive_class: str | int | bool | None = None
    # multiclass only: every class, in the fixed order of the network's outputs; a batch with
    # a class not listed is a validation error naming it.
    classes: list[str | int | bool] | None = None
    id_column: str | None = None
    numeric: list[str]
    categorical: list[str]
    # Feature columns a reviewer has allowed to hold values that look like personal data;
    # the PII guard (retrain.validation.pii) rejects every other such feature column.
    pii_allow: list[str] = Field(default_factory=list)
    # Categorical columns with too many levels to one-hot encode (a city, a product code):
    # each is target + frequency encoded instead (retrain.data.encoding), and a level unseen
    # in training is scored, not rejected. `retrain init` lists those with more than 50 levels.
    high_cardinality: list[str] = Field(default_factory=list)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def columns(self) -> list[str]:
        id_col = [self.id_column] if self.id_column else []
        return [*id_col, *self.features, self.target]

    @model_validator(mode="after")
    def _columns_are_distinct(self) -> DatasetSchema:
        if self.id_column and self.id_column in self.features:
            raise ValueError(
                f"id_column {self.id_column!r} is also listed as a feature: an id is never a "
                "model input; remove it from dataset.numeric/categorical"
            )
        seen: set[str] = set()
        for col in self.columns:
            if col in seen:
                raise ValueError(f"column {col!r} is declared twice in dataset")
            seen.add(col)
        if not self.features:
            raise ValueError("dataset declares no numeric or categorical feature")
        self._check_task()
        unknown = sorted(set(self.pii_allow) - set(self.features))
        if unknown:
            raise ValueError(f"pii_allow names column(s) {unknown} that are not features")
        unknown = [c for c in self.high_cardinality if c not in self.categorical]
        if unknown:
            raise ValueError(
                f"high_cardinality names {unknown}, which are not in dataset.categorical"
            )
        return self

    def _check_task(self) -> None:
        if self.task == "binary" and self.positive_class is None:
            raise ValueError(
                "a binary task needs dataset.positive_class (the class predicted as 1)"
            )
        if self.task != "binary" and self.positive_class is not None:
            raise ValueError(
                f"dataset.positive_class is for a binary task only; this one is {self.task}: "
                "remove it"
            )
        if self.task == "multiclass":
            names = [str(c) for c in self.classes or ()]
            if len(names) < 3 or len(set(names)) != len(names):
                raise ValueError(
                    "a multiclass task needs dataset.classes: 3 or more distinct classes, in "
                    f"the order of the model's outputs (got {self.classes!r})"
                )
        elif self.classes is not None:
            raise ValueError(
                f"dataset.classes is for a multiclass task only; this one is {self.task}"
            )


class Paths(_Strict):
    """Every file the pipeline reads or writes; dvc.yaml templates the same keys."""

    raw_data: Path
    data_pin: Path
    validation_summary: Path
    data_docs: Path
    prepared_dir: Path
    train: Path
    val: Path
    test: Path
    preprocessor: Path
    prepare_summary: Path
    best_params: Path
    tune_trials: Path
    checkpoint: Path
    onnx_model: Path
    model_card: Path
    metrics: Path
    predictions: Path
    roc_plot: Path
    pr_plot: Path
    confusion_plot: Path
    calibration_plot: Path
    # Regression's plots (evaluate): residual against predicted value, predicted against
    # actual; a seeded sample of the test split (retrain.models.plots).
    residuals_plot: Path = Path("plots/residuals.json")
    predicted_vs_actual_plot: Path = Path("plots/predicted_vs_actual.json")
    results_table: Path
    plots_html: Path
    landing: Path
    batches: Path
    quarantine: Path
    drift_report: Path
    drift_html: Path
    monitor_dir: Path
    predictions_dir: Path
    slice_metrics: Path
    calibration_metrics: Path
    # Regression: the prediction interval (level, half-width) fitted on validation by `train`;
    # part of the served model, beside model.onnx.
    intervals: Path = Path("models/model/intervals.json")
    # The validation rows' scores that calibrate the model (evaluate's F1 threshold, report's
    # temperature, train's interval): the served model's own, or with train.bag_folds each
    # val row scored by the member that did not train on it (out of fold). Not served.
    oof_val: Path = Path("models/model/oof_val.npy")
    attributions: Path
    attributions_plot: Path
    calibration_scaled_plot: Path
    model_card_md: Path
    model_card_html: Path
    warm_start: Path
    run_record: Path
    serving_dir: Path
    retrain_lock: Path
    # Every request `retrain serve` scores (Parquet, one file per flush, a folder per UTC day).
    predictions_log: Path = Path("predictions/online")
    # One folder per run (retrain, monitor, predict) of the reports it links in the Prefect
    # UI, served over loopback HTTP by the stack; a later run never overwrites it.
    run_reports: Path = Path("reports/runs")
    # `retrain check-pr`'s report.md, report.json, Data Docs and drift HTML.
    pr_reports: Path = Path("reports/pr")
    # Where tables to score are put for the predict flow: its `input_path` (set by anyone who
    # reaches the API) must resolve inside this folder, paths.landing or paths.raw_data.
    predict_input: Path = Path("data/predict")
    # The model history page (retrain.history): every retrain and the drift over time; a
    # file beside the run folders, so the stack's reports server serves it and pruning keeps it.
    model_history: Path = Path("reports/runs/history.html")
    # The pinned evaluation set (ingest.holdout_share of each labelled batch): one file per
    # batch, outside paths.raw_data so that no stage trains on it; pinned by its own .dvc file.
    holdout: Path = Path("data/holdout")
    holdout_pin: Path = Path("holdout.dvc")


class ValidateParams(_Strict):
    # GE stores example values per failure; more is slower on big tables.
    partial_unexpected_count: int = Field(default=5, ge=1, le=100)


class PrepareParams(_Strict):
    test_size: float = Field(gt=0, lt=1)
    val_size: float = Field(gt=0, lt=1)
    # Explicit fill values for known, documented gaps (e.g. a charge not yet billed);
    # other numeric gaps get the training median, categorical gaps a "__missing__" level.
    fill_values: dict[str, float | int | str] = Field(default_factory=dict)
    drop_duplicates: bool = True
    # dataset.high_cardinality's target encoding: the training rows' values are out of fold
    # over this many seeded folds; a level's mean is shrunk towards the prior by
    # `encoding_smoothing` rows' worth (retrain.data.encoding).
    encoding_folds: int = Field(default=5, ge=2)
    encoding_smoothing: float = Field(default=10.0, ge=0)


class ModelParams(_Strict):
    """Hyperparameters of the network and its optimiser; tuning overrides any of them.

    The network (retrain.models.network): numeric columns through piecewise-linear embeddings
    (`num_embeddings: ple`, bins fitted by `prepare`), then `k` MLPs that share their weights
    (TabM-mini), each with its own logit. The architecture keys default to the network before
    issue 14 (one MLP, no embeddings, no clipping), so an old champion's parameters still parse
    and are recognised as another architecture (see `architecture`).
    """

    hidden_dim: int = Field(ge=1)
    n_layers: int = Field(ge=1, le=8)
    dropout: float = Field(ge=0, lt=1)
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    batch_size: int = Field(ge=1)
    k: int = Field(default=1, ge=1)  # ensemble members; 1: a single MLP
    # How the k members differ: "tabm-mini" scales only their input, "tabm" (BatchEnsemble)
    # also each hidden layer's input and output. The default is what issue 14 measured first.
    arch: Literal["tabm", "tabm-mini"] = "tabm-mini"
    num_embeddings: Literal["none", "ple"] = "none"
    n_bins: int = Field(default=48, ge=2)  # read by `prepare`, which fits the bins
    d_embedding: int = Field(default=16, ge=1)
    grad_clip: float | None = Field(default=None, gt=0)  # max gradient norm per step

    def architecture(self) -> dict[str, str]:
        """The network family: what makes one's widths and dropout mean the same in another."""
        return {
            "network": self.arch if self.k > 1 else "mlp",
            "num_embeddings": self.num_embeddings,
        }


# Keys that shape the network: a champion of another architecture does not pass them on.
ARCHITECTURE_KEYS = (
    "hidden_dim",
    "n_layers",
    "dropout",
    "k",
    "arch",
    "num_embeddings",
    "d_embedding",
)


class FloatRange(_Strict):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False


class IntRange(_Strict):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False


class Categorical(_Strict):
    type: Literal["categorical"]
    choices: list[float | int | str]


SearchDim = Annotated[FloatRange | IntRange | Categorical, Field(discriminator="type")]


class PrunerParams(_Strict):
    n_startup_trials: int = Field(default=5, ge=0)
    n_warmup_steps: int = Field(default=5, ge=0)


class TuneParams(_Strict):
    # 0: no search; `train` fits the model section as it stands.
    n_trials: int = Field(ge=0)
    # A safety cap only: a study stopped by the clock is not reproducible, see README.
    timeout_s: float | None = Field(default=None, gt=0)
    max_epochs: int = Field(ge=1)
    patience: int = Field(ge=1)
    # Trials train and validate on a seeded sample of at most this many rows of each split
    # (None: all); the final fit in `train` sees every row. With folds above 1: of
    # train+validation together, before it is cut into folds.
    max_rows: int | None = Field(default=None, ge=100)
    # A trial's score is the mean held-out score over `folds` seeded, stratified folds of
    # train+validation (the same folds for every trial; pruned on the running mean after each
    # fold); 1: one fit on the train split scored on validation (retrain.tuning.folds).
    folds: int = Field(default=3, ge=1)
    # The best trial replaces the start (trial 0) only when its gain over the start, paired
    # fold by fold, exceeds this many standard errors of those differences: the best of a
    # few draws beats its start on ~1,000-row folds by chance (issue 27). 0: the best trial.
    min_gain_se: float = Field(default=1.0, ge=0)
    storage: str
    study_name: str
    pruner: PrunerParams = PrunerParams()
    search_space: dict[str, SearchDim]
    # Parallel tuning (retrain.tuning.parallel): above 1, a coordinator asks `batch` trials at
    # a time from the seeded sampler and `workers` processes evaluate them; the results are
    # told in trial order, so a seed and a batch size give the same study on any engine.
    workers: int = Field(default=1, ge=1)
    batch: int | None = Field(default=None, ge=1)  # None: `workers`
    # prefect: `prefect task serve` workers (started here when start_workers); dask: prefect-dask's
    # DaskTaskRunner on a LocalCluster of `workers` processes, or the cluster at dask_address.
    engine: Literal["prefect", "dask"] = "prefect"
    start_workers: bool = True
    dask_address: str | None = None
    # A worker silent for grace_s (default 2 heartbeats) has its trial failed and retried.
    heartbeat_s: int = Field(default=10, ge=1)
    grace_s: int | None = Field(default=None, ge=1)
    max_retry: int = Field(default=2, ge=0)

    @model_validator(mode="after")
    def _space_names_model_params(self) -> TuneParams:
        unknown = sorted(set(self.search_space) - set(ModelParams.model_fields))
        if unknown:
            raise ValueError(
                f"tune.search_space has unknown hyperparameter(s) {unknown}; "
                f"known: {sorted(ModelParams.model_fields)}"
            )
        if "n_bins" in self.search_space:
            raise ValueError(
                "tune.search_space cannot search n_bins: the bins are fitted once, by `prepare`"
            )
        return self


class TrainParams(_Strict):
    max_epochs: int = Field(ge=1)
    patience: int = Field(ge=1)
    # A budget in optimiser steps (rounded up to whole epochs): epochs suit a small table, but
    # one epoch of a 1M-row table is ~10k steps at batch 64. None: epochs alone.
    max_steps: int | None = Field(default=None, ge=1)
    accelerator: str = "auto"
    # Pinning CPU threads keeps float reductions in the same order on every machine.
    num_threads: int | None = Field(default=None, ge=1)
    # Lightning's Trainer precision: "16-mixed" (CUDA) or "bf16-mixed" train faster on a GPU;
    # "32-true" keeps CPU training bit-for-bit reproducible. Mixed only, never "16-true": the
    # weights stay float32, which the ONNX export and the CPU scorers expect.
    precision: Literal["32-true", "16-mixed", "bf16-mixed"] = "32-true"
    # Regression only: the split-conformal prediction interval's level, its half-width fitted
    # on validation residuals by `train` (paths.intervals); served with every prediction.
    interval_level: float = Field(default=0.9, gt=0, lt=1)
    # Bagging (issue 27): K >= 2 fits K members on K seeded, stratified folds of
    # train+validation (each early-stopped on its held-out fold) and serves the mean of their
    # predictions as one ONNX graph; 0: one model on the train split, early-stopped on val.
    bag_folds: int = Field(default=0, ge=0)
    # A bag's members fitted this many at a time, each in its own process with num_threads
    # torch threads; every output the same bytes as 1 (one at a time). No effect on one model.
    workers: int = Field(default=1, ge=1)

    @field_validator("bag_folds")
    @classmethod
    def _bag_folds(cls, value: int) -> int:
        if value == 1:
            raise ValueError("train.bag_folds 1 is no bag: 0 (one model) or 2 and more folds")
        return value


class LightGBMBudget(_Strict):
    n_trials: int = Field(ge=1)
    n_estimators: int = Field(ge=1)
    early_stopping_rounds: int = Field(ge=1)
    # As tune.max_rows: the search's trials see a sample, the final booster every row.
    max_rows: int | None = Field(default=None, ge=100)


class EvaluateParams(_Strict):
    threshold: Literal["f1_on_val"] | float = "f1_on_val"
    calibration_bins: int = Field(default=10, ge=2)
    lightgbm: LightGBMBudget


class DriftParams(_Strict):
    """Evidently stattest names and thresholds; the gate's limits."""

    num_method: str = "wasserstein"
    cat_method: str = "jensenshannon"
    per_column_method: dict[str, str] = Field(default_factory=dict)
    num_threshold: float = Field(default=0.1, gt=0)
    cat_threshold: float = Field(default=0.1, gt=0)
    prediction_method: str = "wasserstein"
    prediction_threshold: float = Field(default=0.15, gt=0)
    target_method: str = "jensenshannon"
    target_threshold: float = Field(default=0.1, gt=0)
    # The other kind of each (retrain.monitoring.drift): a multiclass model's predicted class
    # is categorical, a regression target numeric. Each method is paired with its own
    # threshold, since a p-value test and a distance read their thresholds the opposite way.
    prediction_cat_method: str = "jensenshannon"
    prediction_cat_threshold: float = Field(default=0.1, gt=0)
    target_num_method: str = "wasserstein"
    target_num_threshold: float = Field(default=0.1, gt=0)
    max_share_drifted: float = Field(default=0.1, ge=0, le=1)
    gate_on_prediction: bool = True
    gate_on_target: bool = True


class ReportParams(_Strict):
    """The model report: explanations, slice metrics, calibration and the model card."""

    # Evaluation metrics are reported per value of each of these feature columns (test split).
    slices: list[str] = Field(default_factory=list)
    # A slice with fewer rows, or fewer than min_slice_class_rows of either class, is small:
    # reported (counts must add up) but never judged, by the report nor by the promotion gate
    # (retrain.analysis.slices: an AUC on two positives is noise).
    min_slice_rows: int = Field(default=50, ge=1)
    min_slice_class_rows: int = Field(default=10, ge=1)
    # Test rows (a seeded sample) whose Integrated Gradients make the global attributions.
    explain_rows: int = Field(default=500, ge=1)
    ig_steps: int = Field(default=50, ge=2)
    # What an attribution is measured against: the average training row (train_mean) or an
    # all-zeros design row; see retrain.analysis.attributions for why train_mean is the default.
    baseline: Literal["train_mean", "zeros"] = "train_mean"
    top_features: int = Field(default=10, ge=1)
    # Temperature scaling is fitted on validation and applied only when it lowers validation
    # log loss by at least min_log_loss_gain; the ONNX model itself is never changed.
    temperature_scaling: bool = True
    min_log_loss_gain: float = Field(default=0.0005, ge=0)


class GateParams(_Strict):
    """When a challenger replaces the champion (both scored on the same current holdout)."""

    # Threshold-free metrics only: the two models have different decision thresholds. One of
    # the task's `gate_metrics` (retrain.task); unset: the task's default (binary roc_auc,
    # multiclass log_loss, regression rmse), filled in when params.yaml is read.
    metric: str = ""
    # Required improvement in `metric`; negative accepts a challenger up to that much worse.
    margin: float = Field(default=0.002, ge=-1, le=1)
    # Slices judged (small ones, as report.min_slice_rows defines them, are skipped) ...
    slices: list[str] = Field(default_factory=list)
    # ... and the largest drop of `metric` allowed on any of them.
    slice_tolerance: float = Field(default=0.02, ge=0)
    max_ece: float = Field(default=0.05, gt=0)
    # Regression: the test coverage of the train.interval_level interval may miss the level by
    # at most this much (0.9 +- 0.02: 88-92% of test rows inside their interval).
    coverage_tolerance: float = Field(default=0.02, gt=0, lt=1)
    # Score only test rows neither model trained or validated on (by id and by feature values;
    # repeated feature rows count once).
    unseen_only: bool = True
    # How sure the gate must be (retrain.registry.evidence): a paired bootstrap over holdout
    # rows gives the challenger - champion difference of `metric` an interval at this level;
    # promotion needs the difference >= margin AND the interval's lower bound > -tolerance.
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    tolerance: float = Field(default=0.0, ge=0, le=1)
    resamples: int = Field(default=1000, ge=100, le=100_000)
    # Below these the gate does not judge: decision "insufficient" (too little evidence).
    min_rows: int = Field(default=500, ge=0)
    min_class_rows: int = Field(default=50, ge=0)


class RegistryParams(_Strict):
    """Run records, the GTO model registry and the gate; read by the retrain flow, not DVC."""

    model_name: str = Field(default="model", pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    stage: str = Field(default="prod", pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    lock_timeout_s: float = Field(default=3600, ge=0)
    # The retrain flow's own overrides (dotted keys, as a run's): every run of it (schedule,
    # drift, manual) applies them, under the run's own overrides key by key, and records them.
    # What makes the scheduled retrain tune while `dvc repro` does not (tune.n_trials 0).
    retrain_overrides: dict[str, Any] = {}
    gate: GateParams = GateParams()

    @field_validator("retrain_overrides")
    @classmethod
    def _tunable_only(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_overrides(value)  # the keys a run may override, never the gate's rules
        return value


class ServeParams(_Strict):
    """`retrain serve`: the online service; read by the service and the monitor, not DVC."""

    # How often the service looks at the registry's git tags for a new prod version.
    poll_s: float = Field(default=2.0, gt=0)
    # The predictions log is written at most every flush_s seconds or flush_rows rows ...
    flush_s: float = Field(default=1.0, gt=0)
    flush_rows: int = Field(default=5000, ge=1)
    # ... and a day folder older than this many days is deleted (the rotation).
    keep_days: int = Field(default=30, ge=1)
    # A request of more rows is refused (413): split it, or use the batch predict flow.
    max_rows: int = Field(default=100_000, ge=1)
    # Canary: this share of request keys is scored by the version in canary_stage, if any.
    canary_stage: str = Field(default="candidate", pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    canary_share: float = Field(default=0.0, ge=0, le=1)
    # The monitor checks prediction drift on the logged traffic once this many new rows exist.
    monitor_min_rows: int = Field(default=200, ge=1)


class UiParams(_Strict):
    """What the Prefect UI links to; read by the flows and the stack, not by DVC."""

    keep_runs: int = Field(default=20, ge=1)  # per-run report folders kept (the newest)


class IngestParams(_Strict):
    """Limits of a landed batch (read by ingest, not by a DVC stage): a larger one is
    rejected and quarantined, never skipped on every run."""

    max_file_bytes: int = Field(default=1 << 30, ge=1)  # a landed file (gzip: also unpacked)
    max_field_bytes: int = Field(default=1 << 16, ge=1)  # one CSV or Parquet value
    # The share of each labelled batch's rows put in the pinned evaluation set (paths.holdout)
    # instead of the training data (retrain.ingest.holdout); 0: every row trains, as before.
    holdout_share: float = Field(default=0.0, ge=0, lt=1)


class Params(_Strict):
    """The whole of params.yaml."""

    seed: int
    dataset: DatasetSchema
    paths: Paths
    validate_: ValidateParams = Field(alias="validate")
    prepare: PrepareParams
    model: ModelParams
    tune: TuneParams
    train: TrainParams
    evaluate: EvaluateParams
    drift: DriftParams = DriftParams()
    report: ReportParams
    registry: RegistryParams = RegistryParams()
    serve: ServeParams = ServeParams()
    ui: UiParams = UiParams()
    ingest: IngestParams = IngestParams()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _slices_are_features(self) -> Params:
        unknown = [c for c in self.report.slices if c not in self.dataset.features]
        if unknown:
            raise ValueError(
                f"report.slices names column(s) {unknown} that are not dataset features"
            )
        unknown = [c for c in self.registry.gate.slices if c not in self.dataset.features]
        if unknown:
            raise ValueError(
                f"registry.gate.slices names {unknown}, which are not dataset features"
            )
        unknown = [c for c in self.prepare.fill_values if c not in self.dataset.features]
        if unknown:
            raise ValueError(
                f"prepare.fill_values names column {unknown[0]!r}, which is not a dataset feature"
            )
        return self

    @model_validator(mode="after")
    def _holdout_outside_the_training_data(self) -> Params:
        # prepare reads every table under paths.raw_data: a holdout there would be trained on.
        holdout, raw = self.paths.holdout, self.paths.raw_data
        if holdout == raw or raw in holdout.parents or holdout in raw.parents:
            raise ValueError(
                f"paths.holdout {str(holdout)!r} overlaps paths.raw_data {str(raw)!r}: the "
                "pinned evaluation set must lie outside the data models train on"
            )
        return self

    @model_validator(mode="after")
    def _gate_metric_fits_the_task(self) -> Params:
        from retrain.task import task_for

        task = task_for(self.dataset)
        metric = self.registry.gate.metric
        if not metric:
            # Frozen model: the one place a default depends on another section.
            gate = self.registry.gate.model_copy(update={"metric": task.default_metric})
            object.__setattr__(self, "registry", self.registry.model_copy(update={"gate": gate}))
        elif metric not in task.gate_metrics:
            raise ValueError(
                f"registry.gate.metric {metric!r} does not score a {task.kind} task; one of "
                f"{', '.join(task.gate_metrics)}"
            )
        return self


def _format_error(err: ValidationError, source: Path) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        kind = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        if not key:  # a check across sections: its message starts with the key it names
            lines.append(f"{source}: {kind.removeprefix('Value error, ')}")
            continue
        lines.append(f"{source}: {key}: {kind}")
    return "; ".join(lines)


def parse_params(raw: dict[str, Any], source: Path = DEFAULT_PARAMS) -> Params:
    """Validate a params mapping; errors name the file and the offending key."""
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_error(err, source)) from None


def load_params(path: Path | str = DEFAULT_PARAMS) -> Params:
    """Read and validate params.yaml.

    Args:
        path: the YAML file; relative paths inside it are relative to the working directory,
            which is the repository root when run by DVC.

    Raises:
        ConfigError: the file is missing, is not a mapping, or has a bad key or value.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run from the repository root)") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return parse_params(raw, path)


# The keys a run's `overrides` may set (a flow parameter anyone who reaches the API can
# pass): hyperparameters, budgets, thresholds. Never where data, models and records live
# (paths.*, tune.storage), what the data is (dataset.*, prepare.*, validate.*), nor the
# registry's identity (registry.model_name, stage, lock_timeout_s). A key ending in "." allows
# everything under it. Documented in README, "Flow parameters".
TUNABLE_KEYS = (
    "seed",
    "model.",
    "tune.n_trials",
    "tune.timeout_s",
    "tune.max_epochs",
    "tune.patience",
    "tune.max_rows",
    "tune.folds",
    "tune.workers",
    "tune.pruner.",
    "tune.search_space.",
    "train.max_epochs",
    "train.patience",
    "train.max_steps",
    "train.bag_folds",  # a run may serve a bag of fold models (issue 27)
    "train.workers",  # and fit its members in parallel: the same bytes, sooner
    "train.accelerator",
    "train.num_threads",
    "train.precision",
    "evaluate.",
    "drift.",
    "report.",
)
# The gate's rules (registry.gate.*, and the slice sizes it shares with the report) change only
# by a committed params.yaml, what a pull request reviews: a run that could pass
# `registry.gate.margin: -1` could promote a worse model (issue 25.7).
GATE_KEYS = ("registry.gate.", "report.min_slice_rows", "report.min_slice_class_rows")


def _tunable(key: str) -> bool:
    return any(key == t or (t.endswith(".") and key.startswith(t)) for t in TUNABLE_KEYS)


def check_overrides(overrides: dict[str, Any]) -> None:
    """Refuse any override outside TUNABLE_KEYS, naming the first such key.

    Raises:
        ConfigError: a key is not tunable (e.g. paths.*, dataset.*), or is one of the gate's
            rules (GATE_KEYS).
    """
    if not isinstance(overrides, dict):
        raise ConfigError(f"overrides: expected a mapping of dotted keys, got {overrides!r}")
    for key in overrides:
        if isinstance(key, str) and any(key == g or key.startswith(g) for g in GATE_KEYS):
            raise ConfigError(
                f"overrides: {key!r} is a rule of the promotion gate: it changes only by a "
                "committed params.yaml (a reviewed change), never by a run's overrides"
            )
        if not isinstance(key, str) or not _tunable(key):
            allowed = ", ".join(t + "*" if t.endswith(".") else t for t in TUNABLE_KEYS)
            raise ConfigError(f"overrides: {key!r} is not a tunable key; allowed: {allowed}")


def apply_overrides(path: Path | str, overrides: dict[str, Any]) -> Params:
    """Set dotted keys (e.g. ``{"tune.n_trials": 4}``) in params.yaml, keeping its comments.

    Only TUNABLE_KEYS may be set. The result is validated before anything is written, so a
    bad override leaves the file as it was and raises a ConfigError naming the key. The retrain
    flow applies a run's overrides for that run only (retrain.registry.overrides): the run's
    record commit holds the file as it ran, the branch keeps the committed one.
    """
    from ruamel.yaml import YAML

    check_overrides(overrides)
    path = Path(path)
    rt = YAML()
    rt.preserve_quotes = True
    rt.indent(mapping=2, sequence=4, offset=2)  # the layout params.yaml is written in
    doc = rt.load(path.read_text())
    for dotted, value in overrides.items():
        node = doc
        *parents, leaf = dotted.split(".")
        for part in parents:
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"{path}: {dotted}: unknown key {part!r}")
            node = node[part]
        if not isinstance(node, dict) or leaf not in node:
            raise ConfigError(f"{path}: {dotted}: unknown key {leaf!r}")
        node[leaf] = value
    params = parse_params(yaml.safe_load(_dump(rt, doc)), path)
    path.write_text(_dump(rt, doc))
    return params


def _dump(rt: Any, doc: Any) -> str:
    import io

    buf = io.StringIO()
    rt.dump(doc, buf)
    return buf.getvalue()


def load_params_at(root: Path | str, params_file: Path | None = None) -> Params:
    """params.yaml of the checkout at `root` (or `params_file`), with every path made
    absolute under `root`. `retrain.project.Project` carries both.

    Flows run wherever their worker runs; absolute paths make them independent of the cwd.
    """
    root = Path(root).resolve()
    params = load_params(params_file or root / PARAMS_FILE)
    paths = {k: root / v for k, v in params.paths.model_dump().items()}
    dataset = params.dataset.model_copy(update={"suite": root / params.dataset.suite})
    return params.model_copy(update={"paths": Paths(**paths), "dataset": dataset})

"""The model registry: trained models with their artifacts, promotion decisions and the 6-hourly runs."""

from __future__ import annotations

from django.db import models

from apps.core.models import Job, owner_field
from apps.market.models import TIMEFRAME_CHOICES, Instrument
from apps.training.domain.labels import ModelType as DomainModelType

# Who may start training (it takes workers' CPU for minutes): the researchers group, staff
# (apps.core.ownership).
RUN_TRAINING = "training.run_training"

MODEL_TYPE_CHOICES = [(t.value, t.value) for t in DomainModelType]


class Stage(models.TextChoices):
    """Where a model is in its life: the ``status`` of the training API."""

    TRAINING = "training"
    CANDIDATE = "candidate"
    CHAMPION = "champion"
    RETIRED = "retired"
    FAILED = "failed"


class MLModel(Job):
    """One trained (or training) model and everything needed to use it again.

    Two states live side by side: the inherited job ``status`` (pending, running, completed,
    failed) is the training job's, claimed by a worker; ``stage`` is the registry's (training,
    candidate, champion, retired, failed) and is what the API calls ``status``. At most one
    champion exists per instrument, timeframe and model type.

    The artifact is the booster in xgboost's own UBJSON format; ``artifact_sha256`` is checked
    every time it is loaded. ``seen_until`` is the open time of the last bar any training or
    threshold-choice label read: honest evaluation windows start after it. ``degenerate`` marks a
    model useless on its test split (a constant prediction, no trees kept, no skill), for the
    ``degenerate_reasons`` listed: it is kept for inspection and never promoted. ``robustness`` holds
    the Sharpe tests of its holdout signal returns (``domain.signal_returns``), deflated by its
    model family's trials when it was trained (``trial_ledger``); empty for volatility models,
    which take no positions.
    """

    model_id = models.CharField(max_length=120, unique=True)
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="ml_models")
    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=4, choices=TIMEFRAME_CHOICES)
    model_type = models.CharField(max_length=32, choices=MODEL_TYPE_CHOICES)
    horizon = models.PositiveIntegerField(help_text="Bars ahead the model predicts")
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.TRAINING, db_index=True)
    owner = owner_field()
    feature_set = models.JSONField(help_text="Name, version and feature specs (FeatureSet.to_dict())")
    hyperparameters = models.JSONField(default=dict)
    lookback_period = models.PositiveIntegerField(help_text="Bars of history the model was trained on")
    train_start = models.DateTimeField(null=True, blank=True, help_text="Open time of the first training row")
    train_end = models.DateTimeField(null=True, blank=True, help_text="Open time of the last test row")
    seen_until = models.DateTimeField(null=True, blank=True)
    windows = models.JSONField(default=dict, blank=True, help_text="Train, validation and test windows")
    metrics = models.JSONField(
        default=dict, blank=True, help_text="Metrics by split: train, validation, test"
    )
    threshold = models.FloatField(null=True, blank=True, help_text="Trading threshold chosen on validation")
    feature_importances = models.JSONField(default=dict, blank=True)
    best_iteration = models.PositiveIntegerField(null=True, blank=True)
    artifact = models.FileField(upload_to="ml_models/", blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True, default="")
    promoted_at = models.DateTimeField(null=True, blank=True)
    degenerate = models.BooleanField(
        default=False, help_text="Useless on its test split (see degenerate_reasons): never promoted"
    )
    degenerate_reasons = models.JSONField(default=list, blank=True)
    robustness = models.JSONField(
        default=dict,
        blank=True,
        help_text="PSR, deflated Sharpe (by the model family's trials), MinTRL of the holdout signal returns",
    )

    # A failed training job (however it failed: an error, a lost worker, out of attempts) fails the model.
    failed_fields = {"stage": Stage.FAILED}

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = "ML model"
        permissions = [("run_training", "Can start model training")]
        constraints = [
            models.UniqueConstraint(
                fields=("instrument", "timeframe", "model_type"),
                condition=models.Q(stage=Stage.CHAMPION),
                name="one_champion_per_series_and_type",
            )
        ]
        indexes = [models.Index(fields=("instrument", "timeframe", "model_type", "stage"))]

    def __str__(self) -> str:
        return self.model_id

    @property
    def is_usable(self) -> bool:
        """Trained and stored: it can predict and be evaluated."""
        return bool(self.artifact_sha256) and self.stage in (Stage.CANDIDATE, Stage.CHAMPION, Stage.RETIRED)


class PromotionDecision(models.Model):
    """A candidate compared with the champion of its series on the same holdout, and the outcome.

    ``metric`` and the two values are the models' skill scores on the holdout, for the record; the
    decision rests on the paired test of their per-bar scores (``p_value``, ``mean_difference``: per
    bar, positive favours the candidate; none without a champion) and on the candidate's
    ``deflated_sharpe``. ``evidence`` keeps every number with the thresholds they were held to.
    """

    candidate = models.ForeignKey(MLModel, on_delete=models.CASCADE, related_name="promotion_decisions")
    champion = models.ForeignKey(
        MLModel, on_delete=models.SET_NULL, null=True, blank=True, related_name="defences"
    )
    metric = models.CharField(max_length=32)
    candidate_value = models.FloatField(null=True, blank=True)
    champion_value = models.FloatField(null=True, blank=True)
    holdout_start = models.DateTimeField(null=True, blank=True)
    holdout_end = models.DateTimeField(null=True, blank=True)
    holdout_rows = models.PositiveIntegerField(default=0)
    p_value = models.FloatField(
        null=True, blank=True, help_text="One-sided paired test: small when the candidate is better"
    )
    mean_difference = models.FloatField(
        null=True, blank=True, help_text="Per bar: candidate minus champion (of losses: the reverse)"
    )
    deflated_sharpe = models.FloatField(
        null=True, blank=True, help_text="The candidate's deflated Sharpe ratio on the holdout, by its family"
    )
    evidence = models.JSONField(
        default=dict, blank=True, help_text="The paired test, the Sharpe tests and the thresholds"
    )
    promoted = models.BooleanField(default=False)
    reason = models.TextField()
    actor = models.CharField(
        max_length=150,
        blank=True,
        default="",
        help_text="Who asked: a username (the API, the admin), scheduled training, or a command; empty: "
        "recorded before actors were kept",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        verdict = "promoted" if self.promoted else "kept"
        return f"{self.candidate.model_id}: {verdict} ({self.metric})"


class TrainingRun(Job):
    """One 6-hourly retraining job; unique per slot, so a repeated beat message adds nothing.

    ``report`` lists, for every instrument and timeframe, the candle fetch and each model type
    trained, with its promotion decision and the ml_signal parameter changes it implies.
    """

    slot = models.DateTimeField(unique=True, help_text="Start of the 6-hour slot (UTC)")
    report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-slot",)

    def __str__(self) -> str:
        return f"Training run {self.slot:%Y-%m-%d %H:%M} ({self.status})"

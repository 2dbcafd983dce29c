"""Train a model here and now: `train_model --symbol BTCUSDT --timeframe 1h --model-type ... --lookback N`."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.training.errors import TrainingInputError
from apps.training.models import MLModel, Stage
from apps.training.services.model_training import model_train, model_train_request, training_spec_build
from apps.training.services.promotion import model_promote_if_better

OPTION_OF_FIELD = {
    "symbol": "--symbol",
    "exchange": "--exchange",
    "timeframe": "--timeframe",
    "model_type": "--model-type",
    "lookback_period": "--lookback",
    "horizon": "--horizon",
    "hyperparameters": "--hyperparameters",
}
SUMMARY_METRICS = (
    "rows",
    "accuracy",
    "roc_auc",
    "baseline_accuracy",
    "rmse",
    "baseline_rmse",
    "trading_total_return",
)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"--hyperparameters is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise CommandError('--hyperparameters must be a JSON object, e.g. {"max_depth": 3}')
    return value


class Command(BaseCommand):
    help = "Train a model on stored candles synchronously, register it as a candidate and print its metrics."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--exchange", default=None, help="Needed when the symbol is on several exchanges")
        parser.add_argument("--timeframe", required=True)
        parser.add_argument("--model-type", required=True, dest="model_type")
        parser.add_argument("--lookback", required=True, type=int, help="Bars of history to train on")
        parser.add_argument(
            "--horizon", type=int, default=None, help="Bars ahead (default: TRAINING_HORIZON)"
        )
        parser.add_argument("--hyperparameters", type=_json_object, default=None, help="JSON object")
        parser.add_argument("--promote", action="store_true", help="Then promote it if it beats the champion")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            spec = training_spec_build(
                symbol=options["symbol"],
                exchange=options["exchange"],
                timeframe=options["timeframe"],
                model_type=options["model_type"],
                lookback_period=options["lookback"],
                horizon=options["horizon"],
                hyperparameters=options["hyperparameters"],
            )
        except TrainingInputError as error:
            problems = "; ".join(f"{OPTION_OF_FIELD.get(k, k)}: {v}" for k, v in error.fields.items())
            raise CommandError(f"{problems} (nothing was trained)") from None
        model = model_train_request(spec=spec)
        self.stdout.write(
            f"{model.model_id}: training on {spec.lookback_period} bars of {model.symbol} {model.timeframe}"
        )
        model = model_train(model_pk=model.pk, progress=self._progress)
        if model is None or model.stage != Stage.CANDIDATE:
            raise CommandError(
                f"training failed: {model.error if model else 'the job was taken by another worker'}"
            )
        self._summary(model)
        if options["promote"]:
            decision = model_promote_if_better(candidate=model, actor="train_model command")
            verdict = "promoted to champion" if decision.promoted else "not promoted"
            self.stdout.write(f"{verdict}: {decision.reason}")

    def _progress(self, fraction: float, message: str) -> None:
        self.stdout.write(f"[{fraction:4.0%}] {message}")

    def _summary(self, model: MLModel) -> None:
        self.stdout.write(self.style.SUCCESS(f"{model.model_id} is a candidate"))
        if model.degenerate:
            reasons = "; ".join(model.degenerate_reasons)
            self.stdout.write(self.style.WARNING(f"  degenerate, it will never be promoted: {reasons}"))
        self.stdout.write(f"  seen until {model.seen_until:%Y-%m-%d %H:%M}; threshold {model.threshold}")
        for split in ("validation", "test"):
            scores = model.metrics.get(split, {})
            shown = ", ".join(
                f"{name} {scores[name]:.4g}"
                for name in SUMMARY_METRICS
                if isinstance(scores.get(name), float)
            )
            self.stdout.write(f"  {split}: {shown}")
        self.stdout.write(f"  artifact {model.artifact.name} (sha256 {model.artifact_sha256})")

"""What ml_signal strategies on a series take from its new champion: the threshold it chose."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from apps.training.domain.labels import ModelType
from apps.training.models import MLModel


@dataclass(frozen=True)
class MLSignalUpdate:
    """The parameter changes an ``ml_signal`` strategy on this series should take from its new champion.

    ``parameters`` holds ``ml_proba_threshold`` (price models: the probability to act on) or
    ``ml_return_threshold`` (return models: the predicted log return), each the threshold the
    champion chose on its validation fold; it is empty for volatility models, which have none.
    """

    instrument_id: int
    symbol: str
    exchange: str
    timeframe: str
    model_type: str
    model_id: str
    parameters: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


THRESHOLD_PARAMETERS = {
    ModelType.PRICE_PREDICTION: "ml_proba_threshold",
    ModelType.RETURN_PREDICTION: "ml_return_threshold",
}


def ml_signal_parameters_update(*, champion: MLModel) -> MLSignalUpdate:
    """What ``ml_signal`` strategies on the champion's instrument and timeframe should change.

    The strategies app applies it (on ``champion_promoted``, or when it reads a champion): the
    training app never imports the strategies app. Writes nothing.
    """
    name = THRESHOLD_PARAMETERS.get(ModelType(champion.model_type))
    parameters = {name: champion.threshold} if name and champion.threshold is not None else {}
    return MLSignalUpdate(
        instrument_id=champion.instrument_id,
        symbol=champion.symbol,
        exchange=champion.instrument.exchange,
        timeframe=champion.timeframe,
        model_type=champion.model_type,
        model_id=champion.model_id,
        parameters=parameters,
    )

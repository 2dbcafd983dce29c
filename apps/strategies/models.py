"""Strategies and their versions, backtests, optimisation runs, the daily update's decisions, and
strategy generation runs with their candidates."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from apps.core.models import Job, owner_field
from apps.market.models import TIMEFRAME_CHOICES, Instrument

# Who may start generation (LLM calls cost money): the researchers group, staff (apps.core.ownership).
RUN_GENERATION = "strategies.run_generation"


class StrategyType(models.TextChoices):
    MEAN_REVERSION = "mean_reversion"
    TREND_FOLLOWING = "trend_following"
    MOMENTUM = "momentum"
    BREAKOUT = "breakout"
    ML_SIGNAL = "ml_signal"
    CUSTOM = "custom"


class StrategyStatus(models.TextChoices):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    RETIRED = "retired"


class StrategySource(models.TextChoices):
    USER = "user"
    OPTIMIZER = "optimizer"
    LLM = "llm", "Proposed by an LLM"
    TEMPLATE = "template", "Proposed by an offline rule template (no LLM)"


class JobTrigger(models.TextChoices):
    API = "api", "Requested through the API"
    ADMIN = "admin", "Requested in the admin"
    COMMAND = "command", "Run from the command line"
    DAILY_UPDATE = "daily_update", "The daily strategy update"


class Strategy(models.Model):
    """A rule strategy on one instrument and timeframe; its rules and parameters live in versions."""

    strategy_id = models.CharField(
        max_length=200, unique=True, help_text="strategy_<Name_With_Underscores>_<SYMBOL>_<YYYYmmddHHMMSS>"
    )
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=16, choices=StrategyType.choices)
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="strategies")
    timeframe = models.CharField(max_length=4, choices=TIMEFRAME_CHOICES)
    status = models.CharField(
        max_length=8, choices=StrategyStatus.choices, default=StrategyStatus.DRAFT, db_index=True
    )
    source = models.CharField(max_length=10, choices=StrategySource.choices, default=StrategySource.USER)
    owner = owner_field()
    # Set right after the first version is created; null only inside that transaction.
    current_version = models.ForeignKey(
        "StrategyVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        verbose_name_plural = "strategies"

    def __str__(self) -> str:
        return self.strategy_id

    @property
    def symbol(self) -> str:
        return self.instrument.symbol


class StrategyVersion(models.Model):
    """The rules, parameters and indicators of a strategy at one point; a change makes a new one."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    parameters = models.JSONField(default=dict, blank=True)
    indicators = models.JSONField(default=list, blank=True)
    rules = models.JSONField(default=list, help_text='[{"condition", "action", "priority"}]')
    source = models.CharField(max_length=10, choices=StrategySource.choices, default=StrategySource.USER)
    reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("strategy", "-number")
        constraints = [
            models.UniqueConstraint(fields=("strategy", "number"), name="strategy_version_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.strategy.strategy_id} v{self.number}"


class Backtest(Job):
    """One backtest of one strategy version over a window of stored candles."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="backtests")
    version = models.ForeignKey(StrategyVersion, on_delete=models.RESTRICT, related_name="backtests")
    trigger = models.CharField(max_length=12, choices=JobTrigger.choices, default=JobTrigger.API)
    owner = owner_field()
    start = models.DateTimeField(help_text="First candle open time of the window (UTC, inclusive)")
    end = models.DateTimeField(help_text="Last candle open time of the window (UTC, inclusive)")
    initial_capital = models.DecimalField(max_digits=20, decimal_places=2)
    commission = models.FloatField(default=0.001, help_text="Fraction of each fill's notional")
    slippage = models.FloatField(default=0.0, help_text="Fraction of each fill's price, against the trader")
    bars = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    trades = models.JSONField(default=list, blank=True)
    equity_curve = models.JSONField(default=dict, blank=True, help_text='{"times": [...], "equity": [...]}')
    benchmark = models.JSONField(
        default=dict, blank=True, help_text="Buy and hold over the same bars: return, CAGR and equity curve"
    )
    robustness = models.JSONField(
        default=dict,
        blank=True,
        help_text="PSR, deflated Sharpe (by the family's trials), Monte Carlo, costs, delay",
    )

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"Backtest {self.pk} of {self.strategy.strategy_id} v{self.version.number}"


class OptimizationMethod(models.TextChoices):
    GRID = "grid"
    RANDOM = "random"


class OptimizationRun(Job):
    """A walk-forward parameter search, computed in chunks that any number of workers share."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="optimizations")
    version = models.ForeignKey(StrategyVersion, on_delete=models.RESTRICT, related_name="optimizations")
    trigger = models.CharField(max_length=12, choices=JobTrigger.choices, default=JobTrigger.API)
    owner = owner_field()
    start = models.DateTimeField()
    end = models.DateTimeField()
    bars = models.PositiveIntegerField(help_text="Candles in the window (warm-up bars excluded)")
    warmup_bars = models.PositiveIntegerField(help_text="Earlier candles loaded to warm indicators up")
    initial_capital = models.DecimalField(max_digits=20, decimal_places=2)
    commission = models.FloatField(default=0.001)
    slippage = models.FloatField(default=0.0)
    space = models.JSONField(help_text='{"param": [values]} or {"param": {"min", "max", "step"}}')
    method = models.CharField(max_length=8, choices=OptimizationMethod.choices)
    n_trials = models.PositiveIntegerField(help_text="Trials evaluated (the grid's size, or as asked)")
    seed = models.IntegerField(default=0)
    objective = models.CharField(max_length=32)
    folds = models.PositiveSmallIntegerField(help_text="Walk-forward folds; 0: in-sample only")
    anchored = models.BooleanField(default=False)
    fold_layout = models.JSONField(default=list, help_text="Train/test bar windows of each fold")
    chunks_total = models.PositiveIntegerField()
    chunks_done = models.PositiveIntegerField(default=0)
    # Claimed by the one step that summarises; a stale claim (its worker died) can be taken over.
    finish_claimed_at = models.DateTimeField(null=True, blank=True)
    trials = models.JSONField(default=list, blank=True, help_text="Every trial with its objectives")
    best_params = models.JSONField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    robustness = models.JSONField(
        default=dict,
        blank=True,
        help_text="PBO, the best trial's deflated Sharpe, the stitched out-of-sample curve",
    )

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"Optimisation {self.pk} of {self.strategy.strategy_id} ({self.method}, {self.objective})"


class OptimizationChunk(Job):
    """A slice of an optimisation's trials; claimed like any job, so a redelivery counts once."""

    run = models.ForeignKey(OptimizationRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    trials = models.JSONField(help_text='[{"index", "params"}]')
    results = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ("run", "index")
        constraints = [models.UniqueConstraint(fields=("run", "index"), name="optimization_chunk_unique")]

    def __str__(self) -> str:
        return f"Chunk {self.index} of optimisation {self.run_id}"


class UpdatePhase(models.TextChoices):
    STRATEGIES = "strategies", "Updating strategies"
    GENERATION = "generation", "Generating candidates"
    DONE = "done", "Done"


class StrategyUpdateRun(Job):
    """One run of the daily strategy update; unique per date, so a repeated message does nothing.

    It fans out: one :class:`StrategyUpdateItem` job per active strategy (backtest, retirement
    check, re-optimisation), then one generation run per market that needs strategies; the run
    row aggregates them and completes when the last of them finishes.
    """

    date = models.DateField(unique=True)
    as_of = models.DateTimeField(null=True, blank=True, help_text="The moment the update evaluates at")
    phase = models.CharField(max_length=12, choices=UpdatePhase.choices, default=UpdatePhase.STRATEGIES)
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-date",)

    def __str__(self) -> str:
        return f"Strategy update of {self.date}"


class StrategyUpdateItem(Job):
    """The daily update of one strategy: its own job, so a hundred strategies share the workers."""

    run = models.ForeignKey(StrategyUpdateRun, on_delete=models.CASCADE, related_name="items")
    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="update_items")
    outcome = models.CharField(
        max_length=16, blank=True, default="", help_text="The deciding decision's kind"
    )

    class Meta:
        ordering = ("run", "id")
        constraints = [
            models.UniqueConstraint(fields=("run", "strategy"), name="update_item_once_per_strategy")
        ]

    def __str__(self) -> str:
        return f"{self.strategy.strategy_id} in the update of {self.run.date}"


class DecisionKind(models.TextChoices):
    EVALUATED = "evaluated"
    PARAMS_ADOPTED = "params_adopted"
    PARAMS_REJECTED = "params_rejected"
    RETIRED = "retired"
    ACTIVATED = "activated"
    PAUSED = "paused"
    EDITED = "edited"
    SKIPPED = "skipped"
    GENERATED = "generated"
    ALLOCATED = "allocated"
    WOUND_DOWN = "wound_down"
    REFUSED = "refused", "Activation refused (the deflated Sharpe ratio)"


class StrategyDecision(models.Model):
    """Something decided about a strategy, by a user or a job, with its numbers and reason."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="decisions")
    kind = models.CharField(max_length=16, choices=DecisionKind.choices)
    actor = models.CharField(
        max_length=150,
        blank=True,
        default="",
        help_text="Who decided: a username, or the job (daily update, lifecycle policy, orchestrator, "
        "strategy generation); empty: recorded before actors were kept",
    )
    reason = models.TextField()
    numbers = models.JSONField(default=dict, blank=True)
    update_run = models.ForeignKey(
        StrategyUpdateRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="decisions"
    )
    backtest = models.ForeignKey(Backtest, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    optimization = models.ForeignKey(
        OptimizationRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Not auto_now_add: the daily update dates its decisions by the moment it was run for.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.strategy.strategy_id}: {self.kind}"


class GenerationRun(Job):
    """One request for new strategies on a market: the context sent, who answered, what was kept."""

    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="generation_runs")
    timeframe = models.CharField(max_length=4, choices=TIMEFRAME_CHOICES)
    count = models.PositiveSmallIntegerField(help_text="Candidates asked for")
    trigger = models.CharField(max_length=12, choices=JobTrigger.choices, default=JobTrigger.API)
    owner = owner_field()
    update_run = models.ForeignKey(
        StrategyUpdateRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="generation_runs"
    )
    provider_requested = models.CharField(
        max_length=16, blank=True, default="", help_text="Empty: the LLM_PROVIDERS order"
    )
    provider_used = models.CharField(max_length=16, blank=True, default="", help_text="offline: no LLM")
    model = models.CharField(max_length=100, blank=True, default="")
    llm_status = models.CharField(max_length=16, blank=True, default="", help_text="ok, repaired or cached")
    llm_calls = models.JSONField(default=list, blank=True, help_text="Ids of the LLM call rows it wrote")
    llm_failures = models.JSONField(default=list, blank=True, help_text="Providers passed over, and why")
    context = models.JSONField(default=dict, blank=True, help_text="The market data sent with the request")
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-created_at",)
        permissions = [("run_generation", "Can start strategy generation (LLM calls)")]

    def __str__(self) -> str:
        return f"Generation {self.pk} for {self.instrument.symbol} {self.timeframe}"


class CandidateOutcome(models.TextChoices):
    KEPT = "kept"
    REJECTED = "rejected"


class GenerationCandidate(models.Model):
    """One proposed strategy with the evidence for keeping or rejecting it."""

    run = models.ForeignKey(GenerationRun, on_delete=models.CASCADE, related_name="candidates")
    index = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    document = models.JSONField(help_text="type, rationale, parameters, indicators, rules as proposed")
    outcome = models.CharField(max_length=8, choices=CandidateOutcome.choices)
    reason = models.TextField()
    train_metrics = models.JSONField(null=True, blank=True)
    holdout_metrics = models.JSONField(null=True, blank=True)
    holdout_buy_and_hold_pct = models.FloatField(null=True, blank=True)
    robustness = models.JSONField(
        null=True, blank=True, help_text="The holdout's Sharpe tests, deflated by the family's trials"
    )
    strategy = models.ForeignKey(
        Strategy, on_delete=models.SET_NULL, null=True, blank=True, related_name="generation_candidates"
    )

    class Meta:
        ordering = ("run", "index")
        constraints = [models.UniqueConstraint(fields=("run", "index"), name="generation_candidate_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.outcome}) of generation {self.run_id}"


class TrialSource(models.TextChoices):
    BACKTEST = "backtest", "A backtest job"
    OPTIMIZATION = "optimization", "A trial of an optimisation (the daily update's re-optimisation too)"
    CANDIDATE = "candidate", "A generation candidate, on its holdout"
    MODEL = "model", "A trained model, on its holdout signal returns"


class Trial(models.Model):
    """One evaluated configuration in the trial ledger, recorded once (``key``), in its research family.

    The family is (instrument, timeframe, lineage): ``lineage`` is ``strategy:<strategy_id>`` for the
    trials of a strategy written by a user (all its versions, backtests and optimisations), and
    ``generation`` for generation candidates and every strategy they became (so a kept candidate is
    deflated by every candidate proposed on its market), and ``model:<model_type>`` for every model
    trained on the market (``apps.strategies.services.model_trials``). Only the moments the deflated
    Sharpe ratio needs are kept, not the return series: observations, per-bar Sharpe ratio,
    skewness, kurtosis.
    """

    key = models.CharField(
        max_length=120,
        unique=True,
        help_text=(
            "backtest:<id>, optimization:<run id>:<trial>, candidate:<run id>:<index>, model:<model id>"
        ),
    )
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="trials")
    timeframe = models.CharField(max_length=4, choices=TIMEFRAME_CHOICES)
    lineage = models.CharField(max_length=220)
    source = models.CharField(max_length=12, choices=TrialSource.choices)
    strategy = models.ForeignKey(Strategy, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    owner = owner_field()
    parameters = models.JSONField(default=dict, blank=True)
    observations = models.PositiveIntegerField(help_text="Bar returns the moments are of")
    sharpe = models.FloatField(null=True, blank=True, help_text="Per bar (mean / std, ddof=1); null: flat")
    skewness = models.FloatField(null=True, blank=True)
    kurtosis = models.FloatField(null=True, blank=True, help_text="Not in excess: 3 for normal returns")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("instrument", "timeframe", "lineage"), name="trial_family")]

    def __str__(self) -> str:
        return self.key

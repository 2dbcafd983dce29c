"""Django settings, read from the environment; with nothing set it runs on embedded defaults.

Embedded defaults need no server: SQLite in WAL mode, kombu's filesystem broker and a local-memory
cache, all under ``var/``. ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis.
``ENVIRONMENT=production`` refuses to start without its secrets.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from tradingsite import env_values

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
APP_VERSION = "0.1.0"
ENVIRONMENT = env.str("ENVIRONMENT", default="development")
# Where `make run` serves the web process (the Makefile and the Procfile read it too): the URL the
# commands' banners print.
WEB_BIND = env.str("WEB_BIND", default="127.0.0.1:8000")
if ENVIRONMENT not in {"development", "test", "production"}:
    raise ImproperlyConfigured(f"ENVIRONMENT must be development, test or production, not {ENVIRONMENT!r}")
IS_PRODUCTION = ENVIRONMENT == "production"
IS_TEST = ENVIRONMENT == "test"
# Names what one test run owns (its test database, its broker keys), so concurrent runs on one
# machine never touch each other's; processes a test run starts inherit it.
TEST_RUN_ID = env.str("TEST_RUN_ID", default=str(os.getpid()))
# Runtime files (SQLite, the embedded broker, media); tests keep theirs apart from a running system.
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var" / ("test" if IS_TEST else ""))))


def _required_in_production(name: str, development_default: str) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if IS_PRODUCTION:
        raise ImproperlyConfigured(f"{name} must be set when ENVIRONMENT=production")
    return development_default


SECRET_KEY = _required_in_production("SECRET_KEY", "insecure-development-key-do-not-use-in-production")
DEBUG = env.bool("DEBUG", default=not IS_PRODUCTION)
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if IS_PRODUCTION else ["127.0.0.1", "localhost", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
if IS_PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when ENVIRONMENT=production")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "apps.core",
    "apps.market",
    "apps.training",
    "apps.strategies",
    "apps.trading",
    "apps.llm",
    "apps.health",
]

MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    "apps.core.middleware.InputGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.middleware.ApiErrorMiddleware",
    # Last: turns an admin login refused during a lockout into its 429 page.
    "axes.middleware.AxesMiddleware",
]

# Failed logins (the API's and the admin's) lock the username, and separately the client address,
# out for AXES_COOLOFF_MINUTES after AXES_FAILURE_LIMIT failures (django-axes). Staff unlock in the
# admin (delete the access attempts) or with `manage.py axes_reset_username NAME`. The address
# counted is REMOTE_ADDR (behind a reverse proxy, the proxy's: the username limit still holds).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429

ROOT_URLCONF = "tradingsite.urls"
WSGI_APPLICATION = "tradingsite.wsgi.application"
ASGI_APPLICATION = "tradingsite.asgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASE_URL = env.str("DATABASE_URL", default="")
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN", default=1),
            "max_size": env.int("DATABASE_POOL_MAX", default=10),
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
        }
        DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
    # One test database per test run, so two runs on one server never drop each other's.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{TEST_RUN_ID}"}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(VAR_DIR / "db.sqlite3")),
            # WAL lets the web process and the worker write at once; IMMEDIATE transactions take the
            # write lock up front so concurrent writers wait (timeout) instead of failing to upgrade.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # A file (not :memory:) so a worker process in the tests can share it; one per test run.
            "TEST": {"NAME": str(VAR_DIR / f"test-db-{TEST_RUN_ID}.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and broker -----------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str(
                "CACHE_KEY_PREFIX", default=f"trading-test-{TEST_RUN_ID}" if IS_TEST else "trading"
            ),
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 2,
                # Redis down is degraded, not broken: a cache miss instead of an error, so throttling,
                # health and every read keep answering from the database.
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
    # Not logged per request (an ERROR with a trace on every throttled call): the health document's
    # cache and broker components say that Redis is down.
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "trading"}}

BROKER_DIR = VAR_DIR / "broker" / (TEST_RUN_ID if IS_TEST else "")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://localhost/")

# --- Auth and API ---------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.core.tokens.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        # Last: a request none of the above recognised is anonymous, and is rate-limited here, before
        # a permission check refuses it (DRF's own throttles only run after that).
        "apps.core.throttling.AnonymousRateLimit",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
        "user": env.str("API_THROTTLE_USER", default="600/min"),
    },
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": ["apps.core.input.StrictJSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# Hostile input: a body above this many bytes is a 413; JSON nested deeper than this is a 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)
CSRF_FAILURE_VIEW = "apps.core.api.csrf_failure"
# Jobs (backtests, optimisations, generations, trainings) one user may have pending or running at
# once; the next request is a 429 (apps.core.ownership).
API_MAX_QUEUED_JOBS_PER_USER = env.int("API_MAX_QUEUED_JOBS_PER_USER", default=20)
# A job's detail GET may wait up to this long for it to end (?wait=, apps.core.job_wait), at most
# this many at once per web process: each holds a thread (keep it under gunicorn's 30 s timeout).
API_JOB_WAIT_MAX_SECONDS = env.float("API_JOB_WAIT_MAX_SECONDS", default=20.0)
API_JOB_WAITERS = env.int("API_JOB_WAITERS", default=2)

API_TOKEN_TTL_HOURS = env.int("API_TOKEN_TTL_HOURS", default=24 * 30)
# knox stores only a hash of each token; 0 hours means tokens never expire.
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=API_TOKEN_TTL_HOURS) if API_TOKEN_TTL_HOURS > 0 else None,
    "AUTO_REFRESH": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "AI Trading Backend API",
    "DESCRIPTION": (
        "Market data, strategies, models, trading and health. Token auth: `Authorization: Token <token>`."
    ),
    "VERSION": APP_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.schema.error_responses",
    ],
    # The ways to authenticate (the anonymous rate limit is an authenticator too, but no scheme).
    "AUTHENTICATION_WHITELIST": [
        "apps.core.tokens.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "apps.core.throttling.LockoutBasicAuthentication",
    ],
}

# --- Static and media -----------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "static"))
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # whitenoise warns on every start without it
MEDIA_URL = "media/"
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if IS_PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not IS_PRODUCTION

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security (production) ------------------------------------------------------------------
if IS_PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^api/health$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# --- External services (secrets only ever from the environment) -----------------------------
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
ANTHROPIC_API_KEY = env.str("ANTHROPIC_API_KEY", default="")
GEMINI_API_KEY = env.str("GEMINI_API_KEY", default="")
BINANCE_API_KEY = env.str("BINANCE_API_KEY", default="")
BINANCE_SECRET_KEY = env.str("BINANCE_SECRET_KEY", default="")
ALPHA_VANTAGE_API_KEY = env.str("ALPHA_VANTAGE_API_KEY", default="")
COINGECKO_API_KEY = env.str("COINGECKO_API_KEY", default="")
LIVE_TRADING_ENABLED = env.bool("LIVE_TRADING_ENABLED", default=False)

# --- Health ---------------------------------------------------------------------------------
HEALTH_EXTERNAL_APIS = {
    "Binance": env.str("HEALTH_BINANCE_URL", default="https://api.binance.com/api/v3/ping"),
    "CoinGecko": env.str("HEALTH_COINGECKO_URL", default="https://api.coingecko.com/api/v3/ping"),
}
HEALTH_EXTERNAL_TIMEOUT_SECONDS = env.float("HEALTH_EXTERNAL_TIMEOUT_SECONDS", default=3.0)
HEALTH_WORKER_PING_TIMEOUT_SECONDS = env.float("HEALTH_WORKER_PING_TIMEOUT_SECONDS", default=0.5)
HEALTH_WORKER_PING_CACHE_SECONDS = env.int("HEALTH_WORKER_PING_CACHE_SECONDS", default=15)
HEALTH_SCHEDULER_MAX_AGE_SECONDS = env.int("HEALTH_SCHEDULER_MAX_AGE_SECONDS", default=150)
HEALTH_SNAPSHOT_RETENTION_DAYS = env.int("HEALTH_SNAPSHOT_RETENTION_DAYS", default=7)

# --- Celery ---------------------------------------------------------------------------------
# Per-queue (soft, hard) time limits in seconds; applied to every task routed to the queue.
CELERY_QUEUE_TIME_LIMITS = {
    "default": (240, 300),
    "backtests": (1700, 1800),
    "training": (3300, 3600),
    "llm": (270, 300),
    "orders": (50, 60),
}
_longest_task_seconds = max(hard for _, hard in CELERY_QUEUE_TIME_LIMITS.values())
CELERY_TASK_MAX_ATTEMPTS = env.int("CELERY_TASK_MAX_ATTEMPTS", default=3)
# A running job's claim is a lease renewed by a heartbeat every third of it: a job whose worker died
# is free again this long after its last renewal.
JOB_LEASE_SECONDS = env.int("JOB_LEASE_SECONDS", default=60)
# How long recording a job's outcome keeps retrying on a fresh connection while the database is away.
JOB_DATABASE_RETRY_SECONDS = env.float("JOB_DATABASE_RETRY_SECONDS", default=30.0)
# The sweeper (its own beat job) re-sends PENDING rows whose message was sent this long ago and never
# claimed (waiting twice as long after each further send, up to the maximum), and RUNNING rows whose
# lease expired; at most JOB_SWEEP_BATCH rows of each kind per pass.
JOB_SWEEP_INTERVAL_SECONDS = env.int("JOB_SWEEP_INTERVAL_SECONDS", default=60)
JOB_RESEND_AFTER_SECONDS = env.int("JOB_RESEND_AFTER_SECONDS", default=90)
JOB_RESEND_MAX_SECONDS = env.int("JOB_RESEND_MAX_SECONDS", default=3600)
JOB_SWEEP_BATCH = env.int("JOB_SWEEP_BATCH", default=500)
# Only the beat holding this lease sends; a standby takes over this long after the leader's last renewal.
BEAT_LEADER_LEASE_SECONDS = env.int("BEAT_LEADER_LEASE_SECONDS", default=60)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        # Redelivery of unacknowledged messages must not start while a task may still be running.
        "visibility_timeout": _longest_task_seconds * 2,
        "socket_connect_timeout": 2,
        # Tests share the machine's Redis with anything else running there: keep their queues apart.
        **({"global_keyprefix": f"trading-test-{TEST_RUN_ID}:"} if IS_TEST else {}),
    }
    if CELERY_BROKER_URL.startswith("redis")
    else {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
)
if not CELERY_BROKER_URL.startswith("redis"):
    for _folder in ("queue", "control", "processed"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if IS_PRODUCTION else "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "apps.core.logging.RequestIdFilter"},
        "redact": {"()": "apps.core.logging.RedactSecretsFilter"},
    },
    "formatters": {
        "json": {"()": "apps.core.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "redact"],
        },
        "recent_errors": {
            "class": "apps.core.logging.RecentErrorsHandler",
            "level": "ERROR",
            "filters": ["request_id", "redact"],
        },
    },
    "root": {"handlers": ["console", "recent_errors"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own default handlers would print every record a second time.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
    },
}

# --- Market data ----------------------------------------------------------------------------
# Exchange id -> base URL replacing the exchange's API hosts (a proxy, or a local fake in tests).
CCXT_URLS_OVERRIDE = env.dict("CCXT_URLS_OVERRIDE", default={})
CCXT_TIMEOUT_MS = env.int("CCXT_TIMEOUT_MS", default=10_000)
CCXT_MAX_RETRIES = env.int("CCXT_MAX_RETRIES", default=3)

# --- Demo data ------------------------------------------------------------------------------
# `load_demo_data` (run by `make setup`) also fetches BTC/USDT and ETH/USDT 1h candles from Binance's
# public API from this day (UTC) on, the windows of the brief's examples; empty: the shipped history
# only. Tests start with none: they never reach the internet.
DEMO_DATA_FETCH_SINCE = env_values.utc_day(
    "DEMO_DATA_FETCH_SINCE", env.str("DEMO_DATA_FETCH_SINCE", default="" if IS_TEST else "2023-01-01")
)

# --- Training -------------------------------------------------------------------------------
# What the 6-hourly job trains: these timeframes of every active instrument, these model types.
TRAINING_TIMEFRAMES = env.list("TRAINING_TIMEFRAMES", default=["1h"])
TRAINING_MODEL_TYPES = env.list("TRAINING_MODEL_TYPES", default=["price_prediction"])
TRAINING_LOOKBACK_BARS = env.int("TRAINING_LOOKBACK_BARS", default=5000)
TRAINING_HORIZON = env.int("TRAINING_HORIZON", default=1)
TRAINING_FEATURE_SET = env.str("TRAINING_FEATURE_SET", default="core_v1")
TRAINING_NTHREAD = env.int("TRAINING_NTHREAD", default=2)
# The skill score of each model type, e.g. "price_prediction=roc_auc,return_prediction=rmse": a model no
# better than no skill on it is degenerate, and a first champion must beat no skill on it.
TRAINING_PROMOTION_METRIC = env.dict(
    "TRAINING_PROMOTION_METRIC",
    default={"price_prediction": "roc_auc", "return_prediction": "rmse", "volatility_prediction": "rmse"},
)
# A candidate replaces the champion only when a paired test of their per-bar scores on the same
# holdout (Diebold-Mariano with a HAC variance, one-sided) gives at most this p-value; price and
# return models also need a deflated Sharpe ratio of at least STRATEGY_MIN_DEFLATED_SHARPE.
TRAINING_PROMOTION_MAX_P_VALUE = env.float("TRAINING_PROMOTION_MAX_P_VALUE", default=0.05)
if not 0 < TRAINING_PROMOTION_MAX_P_VALUE <= 1:
    raise ImproperlyConfigured("TRAINING_PROMOTION_MAX_P_VALUE must be a probability above 0 and at most 1")
# A shared holdout smaller than this is no evidence: the candidate is not promoted.
TRAINING_PROMOTION_MIN_HOLDOUT_BARS = env.int("TRAINING_PROMOTION_MIN_HOLDOUT_BARS", default=100)
# A candidate whose series' newest candle closed more than this many bars ago is never promoted.
TRAINING_PROMOTION_MAX_DATA_AGE_BARS = env.int("TRAINING_PROMOTION_MAX_DATA_AGE_BARS", default=24)
# Backtest series ML_PROBA/ML_RETURN: a walk-forward model is refitted every this many bars.
TRAINING_WALK_FORWARD_STEP = env.int("TRAINING_WALK_FORWARD_STEP", default=500)
TRAINING_WALK_FORWARD_CACHE_SECONDS = env.int("TRAINING_WALK_FORWARD_CACHE_SECONDS", default=7 * 24 * 3600)
# The health document's live accuracy of champions covers at most these last days.
TRAINING_LIVE_ACCURACY_DAYS = env.int("TRAINING_LIVE_ACCURACY_DAYS", default=7)

# --- Strategies -----------------------------------------------------------------------------
# Trials per optimisation chunk: each chunk is one task, so smaller chunks spread over more workers.
STRATEGY_OPTIMIZE_CHUNK_TRIALS = env.int("STRATEGY_OPTIMIZE_CHUNK_TRIALS", default=25)
# The daily update (02:00 UTC) backtests each active strategy on its newest bars (2160 = 90 days of 1h).
STRATEGY_UPDATE_WINDOW_BARS = env.int("STRATEGY_UPDATE_WINDOW_BARS", default=2160)
# ...and retires it when that backtest breaks any of these limits.
STRATEGY_RETIRE_MAX_DRAWDOWN_PCT = env.float("STRATEGY_RETIRE_MAX_DRAWDOWN_PCT", default=25.0)
STRATEGY_RETIRE_MIN_SHARPE = env.float("STRATEGY_RETIRE_MIN_SHARPE", default=-1.0)
# Percentage points the strategy's return may trail buy-and-hold by over the window.
STRATEGY_RETIRE_MAX_UNDERPERFORMANCE_PCT = env.float("STRATEGY_RETIRE_MAX_UNDERPERFORMANCE_PCT", default=30.0)
# Otherwise it re-optimises walk-forward on the current values times these multipliers, and adopts the
# best in-sample values only when their out-of-sample objective beats the current one by the margin.
STRATEGY_REOPTIMIZE_MULTIPLIERS = env.list("STRATEGY_REOPTIMIZE_MULTIPLIERS", cast=float, default=[0.8, 1.25])
STRATEGY_REOPTIMIZE_FOLDS = env.int("STRATEGY_REOPTIMIZE_FOLDS", default=3)
STRATEGY_REOPTIMIZE_OBJECTIVE = env.str("STRATEGY_REOPTIMIZE_OBJECTIVE", default="sharpe_ratio")
STRATEGY_REOPTIMIZE_MARGIN = env.float("STRATEGY_REOPTIMIZE_MARGIN", default=0.2)
# Research honesty (every trial is counted in its family, apps.strategies.models.Trial): generation
# candidates, the daily update's re-optimised parameters and activation pass only with a deflated
# Sharpe ratio of at least this, and parameters an optimisation chose only with a probability of
# backtest overfitting of at most STRATEGY_MAX_PBO. Users may still backtest and optimise anything.
STRATEGY_MIN_DEFLATED_SHARPE = env.float("STRATEGY_MIN_DEFLATED_SHARPE", default=0.95)
STRATEGY_MAX_PBO = env.float("STRATEGY_MAX_PBO", default=0.5)
# Monte Carlo paths of a backtest's robustness block (0: none), and the largest bars x trials
# matrix an optimisation keeps in memory for its PBO (beyond it the PBO is left out, saying why).
STRATEGY_MONTE_CARLO_PATHS = env.int("STRATEGY_MONTE_CARLO_PATHS", default=1000)
# Markets with fewer active strategies than this are listed for strategy generation.
STRATEGY_MIN_ACTIVE = env.int("STRATEGY_MIN_ACTIVE", default=2)

# --- LLM providers ---------------------------------------------------------------------------
# Tried in this order; a provider without an API key is left out, and "offline" (rule templates
# chosen by the caller, no LLM) always comes last. Tests start with none: they configure their own.
_LLM_KEYS = {"openai": OPENAI_API_KEY, "anthropic": ANTHROPIC_API_KEY, "gemini": GEMINI_API_KEY}
_llm_wanted = env.list("LLM_PROVIDERS", default=[] if IS_TEST else ["openai", "anthropic", "gemini"])
if _llm_unknown := set(_llm_wanted) - {*_LLM_KEYS, "offline"}:
    raise ImproperlyConfigured(f"LLM_PROVIDERS names unknown providers: {', '.join(sorted(_llm_unknown))}")
LLM_PROVIDERS = [name for name in _llm_wanted if _LLM_KEYS.get(name)] + ["offline"]
LLM_OPENAI_MODEL = env.str("LLM_OPENAI_MODEL", default="gpt-4.1-mini")
LLM_ANTHROPIC_MODEL = env.str("LLM_ANTHROPIC_MODEL", default="claude-haiku-4-5")
LLM_GEMINI_MODEL = env.str("LLM_GEMINI_MODEL", default="gemini-2.5-flash")
# Empty means the vendor's endpoint; OPENAI_BASE_URL may point at any OpenAI-compatible server.
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
ANTHROPIC_BASE_URL = env.str("ANTHROPIC_BASE_URL", default="")
GEMINI_BASE_URL = env.str("GEMINI_BASE_URL", default="")
LLM_OPENAI_TIMEOUT_SECONDS = env.float("LLM_OPENAI_TIMEOUT_SECONDS", default=60.0)
LLM_ANTHROPIC_TIMEOUT_SECONDS = env.float("LLM_ANTHROPIC_TIMEOUT_SECONDS", default=60.0)
LLM_GEMINI_TIMEOUT_SECONDS = env.float("LLM_GEMINI_TIMEOUT_SECONDS", default=60.0)
LLM_MAX_TOKENS = env.int("LLM_MAX_TOKENS", default=4096)
LLM_TEMPERATURE = env.float("LLM_TEMPERATURE", default=0.2)
# Retries of temporary errors (timeouts, 429, 5xx) per request, waiting backoff * 2^n (or the
# provider's Retry-After) up to the cap. One llm_complete_json call stops asking LLMs after the
# deadline (the offline fallback still runs), inside the llm queue's 270 s soft time limit.
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=2)
LLM_RETRY_BACKOFF_SECONDS = env.float("LLM_RETRY_BACKOFF_SECONDS", default=1.0)
LLM_RETRY_MAX_WAIT_SECONDS = env.float("LLM_RETRY_MAX_WAIT_SECONDS", default=20.0)
LLM_DEADLINE_SECONDS = env.float("LLM_DEADLINE_SECONDS", default=200.0)
# An identical request (same input hash, provider and model) this recent is answered from the record.
LLM_CACHE_SECONDS = env.int("LLM_CACHE_SECONDS", default=3600)
# Once today's (UTC) calls used either budget, LLM calls are refused (status budget_exceeded).
LLM_DAILY_TOKEN_BUDGET = env.int("LLM_DAILY_TOKEN_BUDGET", default=1_000_000)
LLM_DAILY_COST_BUDGET_USD = env.float("LLM_DAILY_COST_BUDGET_USD", default=5.0)
# USD per million input and output tokens, by model; LLM_PRICE_TABLE (JSON) adds or replaces entries.
# A model without a price counts as free (a local model), with a warning in the log.
LLM_PRICE_TABLE = env_values.price_table(
    "LLM_PRICE_TABLE",
    {
        "gpt-4.1-mini": {"input": 0.40, "output": 1.60},
        "gpt-4.1": {"input": 2.00, "output": 8.00},
        "claude-haiku-4-5": {"input": 1.00, "output": 5.00},
        "claude-sonnet-4-5": {"input": 3.00, "output": 15.00},
        "gemini-2.5-flash": {"input": 0.30, "output": 2.50},
        "gemini-2.5-pro": {"input": 1.25, "output": 10.00},
        **env.json("LLM_PRICE_TABLE", default={}),
    },
)

# --- Trading --------------------------------------------------------------------------------
# Fernet key(s) encrypting exchange API keys at rest, comma-separated: the first encrypts, all
# decrypt (rotate by putting a new key first). Outside production an unset key is derived from
# SECRET_KEY; production never derives one, and with live trading on it refuses to start without it.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")
if IS_PRODUCTION and LIVE_TRADING_ENABLED and not FIELD_ENCRYPTION_KEY:
    raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be set when LIVE_TRADING_ENABLED in production")


# The user's paper wallet: one paper account per quote currency, opened by the first order in that
# currency (apps/trading/services/wallet.py) with the balance named for the currency, or the default.
TRADING_PAPER_STARTING_CASH = env_values.paper_balance(
    "TRADING_PAPER_STARTING_CASH", env.str("TRADING_PAPER_STARTING_CASH", default="10000")
)
TRADING_PAPER_STARTING_BALANCES = env_values.paper_balances(
    "TRADING_PAPER_STARTING_BALANCES", env.str("TRADING_PAPER_STARTING_BALANCES", default="")
)
# The currency of an account created without one (the admin's form, commands).
TRADING_DEFAULT_QUOTE_CURRENCY = env.str("TRADING_DEFAULT_QUOTE_CURRENCY", default="USDT")
# Paper fills of new accounts: commission and slippage as fractions (editable per account).
TRADING_PAPER_FEE_RATE = env.str("TRADING_PAPER_FEE_RATE", default="0.001")
TRADING_PAPER_SLIPPAGE = env.str("TRADING_PAPER_SLIPPAGE", default="0.0005")
# A live order of unknown outcome that the exchange still does not know this long after it was
# sent was never placed: it is rejected, never resent.
TRADING_UNKNOWN_ORDER_GRACE_SECONDS = env.int("TRADING_UNKNOWN_ORDER_GRACE_SECONDS", default=120)
# A live order SUBMITTING (or still NEW) for longer than this lost its worker or its message:
# reconciliation asks the exchange about it (or submits it).
TRADING_SUBMIT_STALE_SECONDS = env.int("TRADING_SUBMIT_STALE_SECONDS", default=60)
# The lifecycle policy (apps/trading/services/lifecycle.py): accounts whose owner turns on
# auto_allocate give each active strategy that can trade there this share of their equity, and wind
# down retired ones. False forbids it on every account.
TRADING_AUTO_ALLOCATE = env.bool("TRADING_AUTO_ALLOCATE", default=True)
TRADING_AUTO_ALLOCATE_CAPITAL_PCT = env.str("TRADING_AUTO_ALLOCATE_CAPITAL_PCT", default="0.25")
if not 0 < float(TRADING_AUTO_ALLOCATE_CAPITAL_PCT) <= 1:
    raise ImproperlyConfigured("TRADING_AUTO_ALLOCATE_CAPITAL_PCT must be a fraction above 0 and at most 1")
# How long an Idempotency-Key sent to the order API is remembered.
TRADING_IDEMPOTENCY_KEY_TTL_HOURS = env.int("TRADING_IDEMPOTENCY_KEY_TTL_HOURS", default=24)

# --- Market answers ---------------------------------------------------------------------------
# Candle, indicator and pattern answers are kept in the cache, rendered, until their series is
# written again (apps/market/api/answers.py); this bounds how long one may outlive an upgrade.
MARKET_ANSWER_CACHE_SECONDS = env.int("MARKET_ANSWER_CACHE_SECONDS", default=300)
if MARKET_ANSWER_CACHE_SECONDS < 0:
    raise ImproperlyConfigured("MARKET_ANSWER_CACHE_SECONDS must be 0 (no cache) or more")

# --- Market commentary ----------------------------------------------------------------------
# The 30-minute analysis asks the configured LLM providers for a summary (never the offline one).
MARKET_COMMENTARY_ENABLED = env.bool("MARKET_COMMENTARY_ENABLED", default=True)

# --- Strategy generation ----------------------------------------------------------------------
# Candidates are backtested on the newest GENERATION_WINDOW_BARS candles, split by time: the
# earlier part trains, the later GENERATION_HOLDOUT_FRACTION is the holdout. Only a candidate whose
# holdout return beats buy-and-hold with a holdout Sharpe of at least GENERATION_MIN_SHARPE is kept,
# as a draft (active with GENERATION_AUTO_DEPLOY). The daily update asks for GENERATION_DAILY_COUNT
# candidates for each market with fewer than STRATEGY_MIN_ACTIVE active strategies.
GENERATION_WINDOW_BARS = env.int("GENERATION_WINDOW_BARS", default=4320)
GENERATION_HOLDOUT_FRACTION = env.float("GENERATION_HOLDOUT_FRACTION", default=0.3)
if not 0 < GENERATION_HOLDOUT_FRACTION < 1:
    raise ImproperlyConfigured("GENERATION_HOLDOUT_FRACTION must be between 0 and 1")
GENERATION_MIN_SHARPE = env.float("GENERATION_MIN_SHARPE", default=0.5)
GENERATION_AUTO_DEPLOY = env.bool("GENERATION_AUTO_DEPLOY", default=False)
GENERATION_DAILY_COUNT = env.int("GENERATION_DAILY_COUNT", default=3)

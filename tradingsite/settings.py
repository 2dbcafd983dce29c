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

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
APP_VERSION = "0.1.0"
ENVIRONMENT = env.str("ENVIRONMENT", default="development")
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
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.middleware.ApiErrorMiddleware",
]

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
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str(
                "CACHE_KEY_PREFIX", default=f"trading-test-{TEST_RUN_ID}" if IS_TEST else "trading"
            ),
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
        }
    }
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
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
        "user": env.str("API_THROTTLE_USER", default="600/min"),
    },
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

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
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        # Redelivery of unacknowledged messages must not start while a task may still be running.
        "visibility_timeout": _longest_task_seconds * 2,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
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

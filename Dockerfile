# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 ENVIRONMENT=production \
    NUMBA_CACHE_DIR=/app/var/numba
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN useradd --create-home --uid 1000 app && mkdir -p /app/var && chown -R app /app/var
USER app
# Compile the numba kernels into the image: tens of seconds here instead of on first requests.
RUN python -m apps.market.domain.compiled
EXPOSE 8000
CMD ["gunicorn", "tradingsite.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4"]

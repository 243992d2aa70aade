# One image for every Orders process (api, projector, migrate; see docker-compose.yml).

# GraphiQL's browser assets, from the npm lock file, in a stage of their own: the final
# image has no Node.js.
FROM node:20-bookworm-slim AS graphiql-assets
WORKDIR /build/app/graphiql_assets
COPY app/graphiql_assets/package.json app/graphiql_assets/package-lock.json app/graphiql_assets/build ./
RUN ORDERS_CACHE_DIR=/tmp/cache ./build /build/dist

FROM python:3.11-slim
WORKDIR /srv/orders
# The locked dependencies (uv.lock) into /opt/orders, the image's environment; no Python is
# downloaded: uv uses the image's own.
ENV UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/orders UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy PATH=/opt/orders/bin:$PATH
RUN pip install --no-cache-dir uv==0.13.8
COPY pyproject.toml uv.lock README.md ./
# Dependencies first, in a layer of their own that code changes do not invalidate.
RUN uv sync --frozen --no-install-project --no-editable --no-cache
COPY app app
COPY schema schema
COPY write_model write_model
COPY log_follower log_follower
COPY read_model read_model
COPY sagas sagas
COPY --from=graphiql-assets /build/dist app/graphiql_assets/dist
RUN uv sync --frozen --no-editable --no-cache \
    && useradd --system --uid 10001 --home-dir /srv/orders orders \
    && mkdir -p /srv/orders/.orders && chown orders /srv/orders/.orders
USER orders
EXPOSE 8000
ENV HOST=0.0.0.0 PORT=8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz\", timeout=2)"]
CMD ["orders", "api"]

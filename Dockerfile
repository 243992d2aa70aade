# One image for every Orders process (api, projector, saga, migrate; see docker-compose.yml).
# It runs the same wheel a `pip install` user gets, installed without extras.

# GraphiQL's browser assets, from the npm lock file, in a stage of their own: the final
# image has no Node.js.
FROM node:20-bookworm-slim AS graphiql-assets
WORKDIR /build/app/graphiql_assets
COPY app/graphiql_assets/package.json app/graphiql_assets/package-lock.json app/graphiql_assets/build ./
RUN ORDERS_CACHE_DIR=/tmp/cache ./build /build/dist

# The wheel (GraphiQL's assets inside: the build backend finds them current for the lock
# and needs no npm) and the runtime dependencies pinned by uv.lock, without the dev extra.
FROM python:3.11-slim AS wheel
WORKDIR /src
ENV UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.8
COPY pyproject.toml uv.lock README.md LICENSE MANIFEST.in ./
COPY build_backend build_backend
COPY app app
COPY schema schema
COPY write_model write_model
COPY log_follower log_follower
COPY read_model read_model
COPY sagas sagas
COPY messaging messaging
COPY --from=graphiql-assets /build/dist app/graphiql_assets/dist
RUN uv build --wheel --out-dir /wheels \
    && uv export --frozen --no-emit-project --no-hashes --output-file /wheels/requirements.txt

FROM python:3.11-slim
WORKDIR /srv/orders
ENV PATH=/opt/orders/bin:$PATH PYTHONDONTWRITEBYTECODE=1
# Dependencies first, in a layer of their own that code changes do not invalidate.
COPY --from=wheel /wheels/requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/orders \
    && pip install --no-cache-dir --no-deps -r /tmp/requirements.txt
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-deps /tmp/wheels/orders-*.whl \
    && rm -rf /tmp/wheels /tmp/requirements.txt \
    && useradd --system --uid 10001 --home-dir /srv/orders orders \
    && mkdir -p /srv/orders/.orders && chown orders /srv/orders/.orders
USER orders
EXPOSE 8000
ENV HOST=0.0.0.0 PORT=8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz\", timeout=2)"]
CMD ["orders", "api"]

# One image for every Orders process (api, projector, migrate; see docker-compose.yml).

# GraphiQL's browser assets, from the npm lock file, in a stage of their own: the final
# image has no Node.js.
FROM node:20-bookworm-slim AS graphiql-assets
WORKDIR /build/app/graphiql_assets
COPY app/graphiql_assets/package.json app/graphiql_assets/package-lock.json app/graphiql_assets/build ./
RUN ORDERS_CACHE_DIR=/tmp/cache ./build /build/dist

FROM python:3.11-slim
WORKDIR /srv/orders
COPY pyproject.toml README.md ./
COPY app app
COPY schema schema
COPY write_model write_model
COPY read_model read_model
COPY --from=graphiql-assets /build/dist app/graphiql_assets/dist
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /srv/orders orders \
    && mkdir -p /srv/orders/.orders && chown orders /srv/orders/.orders
USER orders
EXPOSE 8000
ENV HOST=0.0.0.0 PORT=8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz\", timeout=2)"]
CMD ["orders", "api"]

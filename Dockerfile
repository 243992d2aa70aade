FROM python:3.11-slim
WORKDIR /srv/orders
COPY pyproject.toml README.md ./
COPY app app
COPY schema schema
COPY write_model write_model
COPY read_model read_model
RUN pip install --no-cache-dir .
USER nobody

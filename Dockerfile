# streamrec application image: the worker, the API and the one-shot topic creator run from it.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# torch first and pinned: an unpinned resolve would pull a different (larger) build.
RUN pip install --no-cache-dir "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY streams ./streams
COPY serving ./serving
COPY offline ./offline
COPY streamrec ./streamrec
COPY bench ./bench
RUN pip install --no-cache-dir . && pip install --no-cache-dir --no-deps "recbole==1.2.1"
RUN useradd --create-home --uid 10001 streamrec && mkdir -p /data && chown streamrec /data
USER streamrec
ENV STREAMREC_STATE_DIR=/data
ENTRYPOINT ["streamrec"]
CMD ["--help"]

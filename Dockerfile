# keydesk server image: slim, non-root, runtime dependencies only.
# Build: docker build -t keydesk .   Run: docker run --env-file keydesk.env -p 3000:3000 keydesk
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY agent ./agent
RUN pip install --no-cache-dir --upgrade pip \
 && pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    KEYDESK_HTTP_HOST=0.0.0.0 KEYDESK_HTTP_PORT=3000 KEYDESK_LOG_FORMAT=json \
    KEYDESK_DATABASE_URL=sqlite+aiosqlite:////data/keydesk.db
RUN useradd --system --uid 10001 --home-dir /data --create-home keydesk
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels keydesk[postgres] && rm -rf /wheels
USER keydesk
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os,urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('KEYDESK_HTTP_PORT','3000'), timeout=2); sys.exit(0)"
ENTRYPOINT ["keydesk"]
CMD ["run"]

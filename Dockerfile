# The serving app (no training: TensorFlow is not installed), for Heroku's container stack or
# any container host:
#   docker build -t cvplay . && docker run --rm -p 8501:8501 cvplay     # then http://localhost:8501
#   heroku stack:set container && git push heroku main                  # with heroku.yml
# The server listens on $PORT (default 8501); tests/test_docker.py builds and starts it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Two glibc malloc arenas instead of eight per core: a server with many threads otherwise
    # keeps freed memory in per-thread arenas (README, "Memory on a small dyno").
    MALLOC_ARENA_MAX=2 \
    PORT=8501

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin cvplay
WORKDIR /app

COPY requirements.txt .
RUN pip install --no-compile -r requirements.txt

COPY --chown=cvplay:cvplay . .
USER cvplay

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_stcore/health' % os.environ.get('PORT', '8501'), timeout=4)"

# Shell form so that $PORT (set by Heroku at run time) is expanded; exec hands signals to Streamlit.
CMD exec streamlit run app.py --server.port="$PORT" --server.address=0.0.0.0 --server.maxUploadSize=20

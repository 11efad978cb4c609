# The meshfleet image: the worker by default; the compose stack also runs the simulator from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Only what the package needs (see .dockerignore): no tests, no virtualenv, no env files, so no
# credential can end up in a layer. Credentials come at run time through the environment.
COPY . .
# compileall: the workflow sandbox re-imports workflows/*.py for every workflow run, and without
# a .pyc (PYTHONDONTWRITEBYTECODE) each import compiles the source again (docs/performance.md).
# Dependencies from the lock (exact versions, hashes checked), so a release's image is rebuilt as
# it was; the project itself on top without resolving anything again. The runtime lock holds no
# extra: no Temporal dev server (devstack), no test server or test oracle (dev).
RUN pip install --require-hashes -r requirements.lock \
    && pip install --no-deps . \
    && python -m compileall -q /app \
    && useradd --system --uid 10001 --no-create-home meshfleet

USER meshfleet
# SIGTERM lets the worker drain its in-flight tasks (MESHFLEET_GRACEFUL_SHUTDOWN, 30 s default);
# give it that long before SIGKILL (compose: stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["python", "worker.py"]

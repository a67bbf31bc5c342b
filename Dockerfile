# One image for every plantpulse role (central, edge, simulators and the `secrets` one-shot);
# docker-compose.yml picks the command. docs/deployment.md explains it.
#
# Small: the first stage installs the project into a virtual environment; the final stage is the
# slim Python image plus that environment, nothing else (no compiler, no sources, no pip cache).
# Non-root: every role runs as `plantpulse` (uid/gid 10001, fixed so that the secrets service can
# hand the services' secret folders to it). Configuration comes from files mounted at
# /etc/plantpulse and from the environment; secrets from files mounted at /run/secrets/plantpulse.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY plantpulse ./plantpulse
COPY simulators ./simulators
COPY edge ./edge
COPY central ./central
RUN python -m venv /opt/plantpulse \
    && /opt/plantpulse/bin/pip install --no-cache-dir --no-compile . \
    && /opt/plantpulse/bin/python -m compileall -q /opt/plantpulse/lib

FROM python:3.11-slim
ENV PATH=/opt/plantpulse/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --from=build /opt/plantpulse /opt/plantpulse
RUN groupadd --system --gid 10001 plantpulse \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/plantpulse --shell /usr/sbin/nologin plantpulse \
    && install -d -o plantpulse -g plantpulse -m 0750 /var/lib/plantpulse /etc/plantpulse
USER plantpulse
WORKDIR /var/lib/plantpulse
# What "healthy" means depends on the role: each compose service sets PLANTPULSE_HEALTH (central: its
# /healthz URL; the gateway: file:<data_dir>/alive); see python -m plantpulse.healthcheck --help.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "plantpulse.healthcheck"]
CMD ["python", "-m", "central", "run", "--config", "/etc/plantpulse/central.yaml"]

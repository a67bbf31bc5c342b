# One image for every plantpulse role; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY plantpulse ./plantpulse
COPY simulators ./simulators
COPY edge ./edge
COPY central ./central
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/plantpulse plantpulse \
    && mkdir -p /var/lib/plantpulse && chown plantpulse /var/lib/plantpulse
USER plantpulse
WORKDIR /var/lib/plantpulse

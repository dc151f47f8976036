# syntax=docker/dockerfile:1
# Turnout: build with the dev toolchain, ship only the runtime dependencies and dist/.
#   docker build -t turnout .
#   docker run -p 8080:8080 -p 9901:9901 -v $PWD/turnout.yaml:/etc/turnout/turnout.yaml:ro turnout
# The mounted config must listen on 0.0.0.0 and, because the admin port is then not loopback,
# set admin.token (e.g. token: ${TURNOUT_ADMIN_TOKEN} with -e TURNOUT_ADMIN_TOKEN=...).
# Linted by `npm test` (dockerfile-utils lint); not built there: the CI machine has no Docker engine.

# The base image, pinned by digest so a rebuild gets the same bytes: node:24-slim's multi-platform
# index digest as of 2026-08. To move it: docker buildx imagetools inspect node:24-slim, then
# docker build --build-arg NODE_IMAGE=node:24-slim@sha256:NEW . (and update the default here).
ARG NODE_IMAGE=node:24-slim@sha256:a9f5f7c91a432850b2a8a7797adf5eadb6c733ceed61167806cee7ea7fbc29df

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (the build) needs the sources, copied next.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
# tini as PID 1: forwards signals to Turnout and reaps orphaned children (cluster workers included).
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    TURNOUT_CONFIG=/etc/turnout/turnout.yaml
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY config ./config
# The image's `node` user (uid 1000) runs Turnout; the config is mounted read-only.
RUN mkdir -p /etc/turnout /var/lib/turnout && chown node:node /var/lib/turnout
USER node
EXPOSE 8080 9901
# `turnout health` reads the same config (TURNOUT_CONFIG): it asks admin.listen's /healthz, on
# loopback for a wildcard bind, with admin.token when admin.protectHealth is on.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "bin/turnout.js", "health", "--timeout", "2000"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "node", "bin/turnout.js"]
CMD ["--config", "/etc/turnout/turnout.yaml"]

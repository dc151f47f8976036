# syntax=docker/dockerfile:1
# Turnout: build with the dev toolchain, ship only the runtime dependencies and dist/.
#   docker build -t turnout .
#   docker run -p 8080:8080 -p 9901:9901 -v $PWD/turnout.yaml:/etc/turnout/turnout.yaml:ro turnout
# The mounted config must listen on 0.0.0.0 and, because the admin port is then not loopback,
# set admin.token (e.g. token: ${TURNOUT_ADMIN_TOKEN} with -e TURNOUT_ADMIN_TOKEN=...).

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (the build) needs the sources, copied next.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-slim AS runtime
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
# Admin health endpoint; the admin port is assumed to be 9901 (admin.listen: 0.0.0.0:9901).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/turnout.js"]
CMD ["--config", "/etc/turnout/turnout.yaml"]

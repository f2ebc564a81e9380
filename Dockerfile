# aigate container image (SPEC §10). Multi-stage: compile with dev dependencies, run with
# production dependencies only, as a non-root user. No certificates, keys or secrets are baked in:
# mount config at /app/config and certificates at /app/certs; the audit log goes to /app/logs.
#   docker build -t aigate .
#   docker run -p 8443:8443 -p 3128:3128 -p 127.0.0.1:9090:9090 \
#     -v $PWD/config/aigate.container.yaml:/app/config/aigate.yaml:ro \
#     -v $PWD/config/users.htpasswd:/app/config/users.htpasswd:ro -v $PWD/certs:/app/certs:ro \
#     -v aigate-logs:/app/logs -e AIGATE_FINGERPRINT_KEY -e REDIS_URL aigate
# (config/aigate.container.yaml binds its listeners on 0.0.0.0, as published ports need; the
# development config/aigate.yaml keeps the forward and admin listeners on 127.0.0.1.)
# The current Node.js LTS line. CI runs the test suite on this major as well as on the machines'
# Node 20 (.ci/run reads this line).
ARG NODE_VERSION=26

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY scripts/container-build.sh scripts/
COPY src src
COPY config config
RUN sh scripts/container-build.sh /src /app

FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=root:root /app /app
# The node image's unprivileged user; it may write only the audit log directory.
RUN mkdir -p /app/logs && chown node:node /app/logs
USER node
EXPOSE 8443 3128 9090
VOLUME ["/app/logs"]
# Drains on SIGTERM within timeouts.drain; give `docker stop -t` / terminationGracePeriodSeconds more.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "--enable-source-maps", "/app/dist/cli.js"]
CMD ["start", "--config", "/app/config/aigate.yaml", "--pid-file", "/app/logs/aigate.pid"]

# Production image of the worker (services/worker). Build from the repository root:
#   docker build -f infra/docker/worker.Dockerfile -t cqrs-blog/worker .
# (docker-compose.yml does it for you). Classic builder and BuildKit alike: no BuildKit-only syntax.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: compile TypeScript, then stage what the final image holds (infra/docker/stage.sh) ----
FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Manifests first: the dependency layers are rebuilt only when a manifest or the lockfile changes.
COPY package.json package-lock.json tsconfig.base.json ./
COPY shared/package.json shared/
COPY services/worker/package.json services/worker/
COPY infra/docker/stage.sh infra/docker/healthcheck.cjs infra/docker/
# Production dependencies of @blog/worker and @blog/shared, into /prod.
RUN sh infra/docker/stage.sh worker /prod deps
# Everything, dev dependencies included, to compile. --ignore-scripts: the root devDependency
# `node` (the Node binary from npm) stays an inert stub; this image's own Node 24 compiles.
RUN npm install --ignore-scripts --no-audit --no-fund --loglevel=error
COPY shared/tsconfig.json shared/tsconfig.build.json shared/
COPY shared/src shared/src
COPY services/worker/tsconfig.json services/worker/tsconfig.build.json services/worker/
COPY services/worker/src services/worker/src
COPY migrations migrations
# tsc directly (not `npm run compile`, which would put the stub `node` first on PATH).
RUN node node_modules/typescript/bin/tsc -b services/worker/tsconfig.build.json \
 && sh infra/docker/stage.sh worker /prod app

# ---- final: Node 24, production dependencies, compiled code, non-root ----
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# Owned by root, readable by all: the service cannot modify its own code (and runs with a
# read-only root filesystem in infra/k8s).
COPY --from=build /prod /app
USER node
EXPOSE 8001
# Exec form: node is PID 1 and receives SIGTERM itself; the service handles SIGTERM and SIGINT
# (graceful stop, then exit), and it starts no child processes, so no init process is needed.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["node", "/app/healthcheck.cjs", "worker"]
CMD ["node", "services/worker/dist/main.js"]

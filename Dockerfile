# The Lambda container image of the lake processor (deployed by infra/, tested by `make image-test`).
# BASE_IMAGE: an image with the AWS Lambda Python layout (python3 with pip on PATH, LAMBDA_TASK_ROOT,
# the runtime interface client behind its ENTRYPOINT). The default is the Amazon Linux 2023 base
# (glibc 2.34); pin it by digest with --build-arg BASE_IMAGE=...@sha256:<digest>.
# `make image-test` passes a locally built stand-in with the same Python minor version.
ARG BASE_IMAGE=public.ecr.aws/lambda/python:3.13
FROM ${BASE_IMAGE}

# amd64 or arm64 (x86_64 and aarch64 are accepted too). Docker, Podman and Buildah set it from
# --platform (which CDK passes for the function's architecture); empty means the base's own.
ARG TARGETARCH
# The newest wheel platform the Lambda base can load: its glibc is 2.34. pip picks wheels for this
# tag and every older one (pip does not expand manylinux_2_N itself, so the RUN lists them),
# whatever the glibc of the machine that builds the image.
ARG MANYLINUX=manylinux_2_34

# Exactly the locked runtime dependencies (no dev, cli or infra groups), wheels only, no pip cache,
# each checked against the hashes in uv.lock. Regenerate with `make requirements` (tests/infra
# checks the file matches uv.lock).
COPY infra/lambda-requirements.txt /tmp/requirements.txt
# The packages' own test suites (about a fifth of the size) are never imported at run time; they are
# removed with Python: the real base is Amazon Linux 2023 minimal, without findutils (no find, no
# xargs). RUN steps call only bash, coreutils, python3 and what else that base ships
# (tests/infra/image/al2023.py; tests/infra/test_lambda_image.py checks every step).
# /var/task is read-only in Lambda, so bytecode not compiled here is compiled again on every cold
# start; unchecked-hash .pyc files are used without a stat of their source.
RUN set -eu; \
    machine="$(uname -m)"; \
    case "${TARGETARCH:-$machine}" in \
        amd64|x86_64) arch=x86_64 ;; \
        arm64|aarch64) arch=aarch64 ;; \
        *) echo "TARGETARCH=${TARGETARCH} is not a Lambda architecture: use amd64 or arm64" >&2; exit 1 ;; \
    esac; \
    if [ "$arch" != "$machine" ]; then \
        echo "TARGETARCH=${TARGETARCH} but the base image runs on $machine: build with --platform linux/${TARGETARCH}" >&2; \
        exit 1; \
    fi; \
    platforms=""; minor="${MANYLINUX#manylinux_2_}"; \
    while [ "$minor" -ge 5 ]; do platforms="$platforms --platform manylinux_2_${minor}_${arch}"; minor=$((minor - 1)); done; \
    platforms="$platforms --platform manylinux2014_${arch} --platform manylinux2010_${arch} --platform manylinux1_${arch}"; \
    python3 -m pip install --no-cache-dir --disable-pip-version-check --no-compile --only-binary=:all: --require-hashes \
        $platforms --target "${LAMBDA_TASK_ROOT}" -r /tmp/requirements.txt; \
    rm /tmp/requirements.txt; \
    python3 -c 'import pathlib, shutil, sys; [shutil.rmtree(d) for d in sorted(pathlib.Path(sys.argv[1]).rglob("tests"), reverse=True) if d.is_dir() and not d.is_symlink()]' "${LAMBDA_TASK_ROOT}"; \
    python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash "${LAMBDA_TASK_ROOT}"

# Code last: it changes most often, so the dependency layer above stays cached.
COPY topology/ ${LAMBDA_TASK_ROOT}/topology/
COPY analytics/ ${LAMBDA_TASK_ROOT}/analytics/
COPY query/ ${LAMBDA_TASK_ROOT}/query/
COPY handlers/ ${LAMBDA_TASK_ROOT}/handlers/
COPY reports/ ${LAMBDA_TASK_ROOT}/reports/
RUN python3 -m compileall -q --invalidation-mode unchecked-hash \
        "${LAMBDA_TASK_ROOT}/topology" "${LAMBDA_TASK_ROOT}/analytics" "${LAMBDA_TASK_ROOT}/query" \
        "${LAMBDA_TASK_ROOT}/handlers" "${LAMBDA_TASK_ROOT}/reports"

# Lambda's file system is read-only but for /tmp, and its sandbox user's home does not exist:
# matplotlib (the refresh's reports) would try there, make a throwaway directory instead and log a
# warning saying to set this. (/tmp starts empty, so the font list is still built once per cold start.)
ENV MPLCONFIGDIR=/tmp/matplotlib

CMD ["handlers.process.lambda_handler"]

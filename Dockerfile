# The Lambda container image of the lake processor (deployed by infra/, tested by `make image-test`).
# BASE_IMAGE can point at any image with the AWS Lambda Python layout: python3.11 and pip on PATH,
# LAMBDA_TASK_ROOT=/var/task. `make image-test` passes a locally built stand-in.
ARG BASE_IMAGE=public.ecr.aws/lambda/python:3.11
FROM ${BASE_IMAGE}

# Exactly the locked runtime dependencies (no dev or infra groups), wheels only, no pip cache.
# Regenerate with: uv export --frozen --no-default-groups --no-emit-project --no-hashes \
#   -o infra/lambda-requirements.txt   (tests/infra checks it matches uv.lock)
COPY infra/lambda-requirements.txt /tmp/requirements.txt
# The packages' own test suites (about a fifth of the size) are never imported at run time.
RUN python3.11 -m pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: \
        --target "${LAMBDA_TASK_ROOT}" -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt \
    && find "${LAMBDA_TASK_ROOT}" -depth -type d -name tests -exec rm -rf {} +

# Code last: it changes most often, so the dependency layer above stays cached.
COPY topology/ ${LAMBDA_TASK_ROOT}/topology/
COPY analytics/ ${LAMBDA_TASK_ROOT}/analytics/
COPY handlers/ ${LAMBDA_TASK_ROOT}/handlers/

CMD ["handlers.process.lambda_handler"]

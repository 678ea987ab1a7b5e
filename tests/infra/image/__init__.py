"""`make image-test` (`python -m tests.infra.image`): build the Lambda image with buildah and run its handler."""

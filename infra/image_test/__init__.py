"""``make image-test``: build the Lambda image with buildah on a local base and run its handler."""

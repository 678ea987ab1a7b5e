"""Errors the handler acts on. Whether a failure is retried is decided by type, never by message."""

from __future__ import annotations


class ProcessorError(Exception):
    """Base of every error the processor raises on purpose."""


class PermanentError(ProcessorError):
    """Retrying cannot help: publish a failure event and acknowledge the message."""

    code = "PermanentError"


class TransientError(ProcessorError):
    """Worth retrying: report a batch item failure so SQS redelivers (and dead-letters in the end)."""

    code = "TransientError"


class InvalidMessageError(PermanentError):
    """The SQS message body is neither an S3 event nor a process request."""

    code = "InvalidMessage"


class ForeignObjectError(PermanentError):
    """The event names another bucket, or a key outside ``raw/``."""

    code = "ForeignObject"


class UnsupportedObjectError(PermanentError):
    """The key's extension or place under ``raw/`` is not one the processor reads."""

    code = "UnsupportedObject"


class ObjectNotFoundError(PermanentError):
    """The object (or its version) no longer exists."""

    code = "ObjectNotFound"


class ProcessingInProgressError(TransientError):
    """Another invocation is processing the same object right now; retry after it finished."""

    code = "ProcessingInProgress"


class CommitConflictError(TransientError):
    """Other writers kept committing to the table past the commit retry budget."""

    code = "CommitConflict"


class TableChangedError(CommitConflictError):
    """The file was checked against a table that has changed since: a column another file widened
    meanwhile, or the table dropped (and created again). Staged again against the table as it is now,
    it fits."""


class SourceBusyError(TransientError):
    """Another version of the same raw key is being committed right now; retried after it finished."""

    code = "SourceBusy"


class NotAnSqsBatchError(ProcessorError):
    """The function was invoked with something other than an SQS batch (a console test event, a wrong trigger)."""

    code = "NotAnSqsBatch"


class PseudonymKeyError(TransientError):
    """The key personal data is pseudonymised with cannot be read; nothing is written without it."""

    code = "PseudonymKeyUnavailable"

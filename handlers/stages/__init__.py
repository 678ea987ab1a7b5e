"""The stages: what happens to one raw object (:mod:`.file`, :mod:`.object_processor`) and to one
dataset's history (:mod:`.refresh_service`, :mod:`.refresh_queries`).

:mod:`.file` is storage-free (read → pipeline → quarantine → tolerance). The processors around the
stages hold the lease, idempotency, staging and publishing; they reach storage through the adapters
(:mod:`handlers.adapters`) and the query engine (:mod:`query`) the composition root
(:mod:`handlers.bootstrap`) hands them.
"""

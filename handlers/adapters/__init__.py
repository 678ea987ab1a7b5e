"""The adapters: AWS storage, records and messaging (S3, DynamoDB, SQS, EventBridge, Secrets Manager,
Glue and Iceberg), and the readers and staging sink that turn raw objects into Arrow and local Parquet.

Reading raw objects (:mod:`.reader`, :mod:`.export_layout`, :mod:`.export_shapes`), staging and
storing curated tables (:mod:`.staging`, :mod:`.store`, :mod:`.iceberg`, :mod:`.table_properties`,
:mod:`.views`, :mod:`.committer`), records in the idempotency table (:mod:`.source_records`,
:mod:`.failure_records`), announcing (:mod:`.publisher`, :mod:`.refresh_requests`), the processing
ledger (:mod:`.ledger`) and the pseudonym key (:mod:`.pseudonym_key`). Adapters never import the
stages or the entry points.
"""

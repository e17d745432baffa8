"""The lake (issue 17 item 3, docs/cluster.md "The lake"): the cluster's mentions,
scores and hourly rows in Parquet files partitioned by brand and day under
``database.lake``, with the manifest of committed files in PostgreSQL; a single
publisher writes them (publisher), analysts read them through the usual views (reader)."""

import storage.cluster  # noqa: F401  (first: says what is missing on an install without psycopg)
from storage.lake.publisher import JOB, LakeChunk, LakeFile, LakePublisher, PublishResult, committed_files
from storage.lake.reader import LakeCatalog, lake_catalog

__all__ = ["JOB", "LakeCatalog", "LakeChunk", "LakeFile", "LakePublisher", "PublishResult", "committed_files",
           "lake_catalog"]

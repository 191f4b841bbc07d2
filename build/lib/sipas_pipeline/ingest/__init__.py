"""Ingest: raw exports -> bronze Parquet."""

from sipas_pipeline.ingest.bronze import LINEAGE, IngestReport, ingest_source, to_bronze
from sipas_pipeline.ingest.readers import UnreadableFile, read_export

__all__ = ["LINEAGE", "IngestReport", "UnreadableFile", "ingest_source", "read_export", "to_bronze"]

"""Ingest landed batches: check each against the data contract, then version it with DVC or
keep it aside. One module per concern:

- `landing`: the landing protocol (a file is complete when its `NAME.done` marker exists),
  claims, and the recovery of a killed run;
- `staging`: a private real copy of a regular file's bytes (links, FIFOs, devices and sockets
  refused without being opened), gunzip within the size limit, row counts;
- retrain.validation.fields (and its `csvtext`): the file's bytes (CSV: UTF-8, no control
  bytes, comma-separated, complete lines; CSV and Parquet: values within the size limit),
  shared with the `validate` stage and `check-pr`;
- `pinned` and `order`: the config checked against the pinned data, the reference of the data
  contract (retrain.validation.contract), columns put in the pinned order;
- `entry`: one entry accepted, rejected, refused or skipped; `folder`: one pass over them all;
- `quarantine`: atomic placement, rejected bytes kept beside their report;
- `versioning`: data.dvc and the quarantine's pin committed and pushed.

README "New data" and docs/operations.md ("Ingest", "The data contract") describe the rules.
"""

from retrain.ingest.entry import check_batch, ingest_file
from retrain.ingest.folder import ingest_landing
from retrain.ingest.landing import JOURNAL, MARKER, STAGING, landed_files, mark_landed, marker_of
from retrain.ingest.results import IngestResult, IngestRun, Status
from retrain.ingest.versioning import pin_raw_data, quarantine_pin

__all__ = [
    "JOURNAL",
    "MARKER",
    "STAGING",
    "IngestResult",
    "IngestRun",
    "Status",
    "check_batch",
    "ingest_file",
    "ingest_landing",
    "landed_files",
    "mark_landed",
    "marker_of",
    "pin_raw_data",
    "quarantine_pin",
]

"""``python -m benchmarks [--quick] [--only caller,e2e,...]``: run the suite (``make bench``)."""

from __future__ import annotations

import sys

from benchmarks import (
    case_artifacts,
    case_caller_cost,
    case_chunks,
    case_end_to_end,
    case_faces,
    case_many_writers,
    case_memory,
    case_mlflow_server,
    case_peers,
    case_read,
    case_replay,
    case_size,
    case_ui,
    case_ui_browser,
)
from benchmarks._harness import main

# The order they run in: the peers first, so that case 1 can compare with trackio, and case 5
# right after case 2, whose database it measures.
CASES = (
    case_peers.CASE,
    case_caller_cost.CASE,
    case_end_to_end.CASE,
    case_size.CASE,
    case_read.CASE,
    case_replay.CASE,
    case_memory.CASE,
    case_many_writers.CASE,
    case_faces.CASE,
    case_ui.CASE,
    case_ui_browser.CASE,
    case_artifacts.CASE,
    case_chunks.CASE,
    case_mlflow_server.CASE,
)

if __name__ == "__main__":
    sys.exit(main(CASES))

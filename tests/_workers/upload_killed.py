"""Log a file artifact, but stop inside its transaction after N chunks and wait to be killed.

Usage: upload_killed.py DB FILE N

The run is committed first; then the upload's transaction holds N chunks
(uncommitted) when this prints "inside" and sleeps; the test kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator

from runjournal import Tracker
from runjournal.uploads import StreamedContent


def main(db: str, file: str, stop_after: int) -> None:
    chunks = StreamedContent.__iter__

    def chunks_then_wait(self: StreamedContent) -> Iterator[tuple[bytes, bytes]]:
        for count, chunk in enumerate(chunks(self)):
            if count == stop_after:  # the writer has stored stop_after chunks by now
                print("inside", flush=True)
                time.sleep(60)
            yield chunk

    StreamedContent.__iter__ = chunks_then_wait  # type: ignore[method-assign]

    async def run() -> None:
        async with Tracker.open(db) as tracker:
            run_id = await tracker.create_run(await tracker.create_experiment("killed"))
            await tracker.flush()
            await tracker.log_artifact(run_id, "big.bin", file)

    asyncio.run(run())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))

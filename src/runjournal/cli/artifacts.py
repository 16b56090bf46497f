"""The ``artifacts`` command: list a run's artifacts, or write one's content out.

An artifact is named by its SHA-256 (or a unique prefix of at least six hex
digits) or by its name within the run; a name logged more than once means the
newest artifact of that name.
"""

from __future__ import annotations

import argparse

from runjournal.cli.database import open_tracker, require_absent
from runjournal.cli.output import Output, format_time, table
from runjournal.cli.resolve import MIN_PREFIX, resolve_run
from runjournal.errors import ArtifactNotFound
from runjournal.model import ArtifactRef

__all__ = ["artifacts_get", "artifacts_list", "pick_artifact"]


async def artifacts_list(args: argparse.Namespace, out: Output) -> int:
    """``runjournal artifacts RUN_ID``: name, size, SHA-256 and time of each artifact."""
    async with open_tracker(args.db) as tracker:
        run = await resolve_run(tracker, args.run_id)
        found = await tracker.list_artifacts(run.id)
    if args.format == "json":
        out.json(found)
        return 0
    rows = [(a.name, f"{a.size_bytes:,}", a.sha256, format_time(a.created_at)) for a in found]
    out.print(
        table(f"Artifacts of {run.id}", ["name", "bytes", "sha256", "logged"], rows, ids=["sha256"])
    )
    return 0


def pick_artifact(found: list[ArtifactRef], given: str, run_id: str) -> ArtifactRef:
    """The artifact ``given`` names among ``found``: by SHA-256 (or a prefix of it), else by name."""
    lowered = given.lower()
    by_digest = [a for a in found if a.sha256 == lowered]
    if not by_digest and len(given) >= MIN_PREFIX:
        by_digest = [a for a in found if a.sha256.startswith(lowered)]
    if len({a.sha256 for a in by_digest}) > 1:
        shown = ", ".join(sorted({a.sha256[:16] for a in by_digest}))
        raise ValueError(f"sha256 prefix {given!r} is ambiguous: {shown}")
    if by_digest:
        return by_digest[-1]
    by_name = [a for a in found if a.name == given]
    if by_name:
        return max(by_name, key=lambda a: a.created_at)
    raise ArtifactNotFound(f"{given} (run {run_id} has no artifact of that name or sha256)")


async def artifacts_get(args: argparse.Namespace, out: Output) -> int:
    """``runjournal artifacts get SHA256|NAME --run RUN_ID -o PATH|-``.

    The content is streamed chunk by chunk (to the file, or to stdout), never
    held whole in memory; a file appears only once complete and its hash checked.
    """
    if args.output != "-" and not args.force:
        require_absent(args.output, "give --force to replace it")
    async with open_tracker(args.db) as tracker:
        run = await resolve_run(tracker, args.run)
        artifact = pick_artifact(await tracker.list_artifacts(run.id), args.artifact, run.id)
        if args.output == "-":
            async for piece in tracker.open_artifact(artifact.sha256):
                out.raw(piece)
            return 0
        written = await tracker.download_artifact(artifact.sha256, args.output)
    out.note(f"wrote {artifact.name} ({artifact.size_bytes:,} bytes) to {written}")
    return 0

"""``kdseg fetch`` and ``kdseg prepare``: argument parsing and one-line error reporting.

Exit status: 0 done; 1 refused or failed (verification, unsafe or corrupt archive, layout,
network); 3 licence-gated (the steps to obtain the data go to stdout). Every refusal prints one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kdseg.errors import KdsegError

from .catalog import CATALOG, get_dataset
from .errors import FetchError, LicenceGated
from .model import Checksum

EXIT_FAILED, EXIT_GATED = 1, 3


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _checksums(values: list[str] | None) -> dict[str, Checksum]:
    out = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise FetchError(item, "write --checksum FILE=ALGO:HEX, e.g. list.zip=sha256:0a1b...")
        out[name] = Checksum.parse(value, source="--checksum on the command line")
    return out


def fetch_command(args: argparse.Namespace) -> int:
    from .fetcher import FetchOptions, fetch

    try:
        ds = get_dataset(args.dataset)
        opts = FetchOptions(
            downloads=Path(args.downloads) if args.downloads else None,
            checksums=_checksums(args.checksum),
            remove_archives=args.remove_archives,
            retries=args.retries,
            timeout_s=args.timeout,
        )
        fetch(ds, args.root, opts)
    except LicenceGated as exc:
        print(exc.steps, flush=True)
        print(f"kdseg fetch: {_one_line(exc)}", file=sys.stderr)
        return EXIT_GATED
    except KdsegError as exc:
        print(f"kdseg fetch: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def prepare_command(args: argparse.Namespace) -> int:
    from .prepare import prepare

    try:
        prepare(get_dataset(args.dataset), args.root, args.out)
    except KdsegError as exc:
        print(f"kdseg prepare: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def add_fetch_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``fetch`` and ``prepare`` to the ``kdseg`` sub-command parser."""
    names = ", ".join(sorted(CATALOG))
    f = sub.add_parser(
        "fetch",
        help="download (or take from the downloads folder), verify, extract and check a real "
        "dataset; writes <root>/<dataset>/.kdseg-fetched.json",
        description=f"Datasets: {names}. Exit 3: licence-gated, the steps are printed.",
    )
    f.add_argument("dataset", help=f"catalog name: {names}")
    f.add_argument("--root", required=True, help="data root (the workflow's data_root)")
    f.add_argument("--downloads", help="archive folder (default: ROOT/downloads)")
    f.add_argument(
        "--checksum",
        action="append",
        metavar="FILE=ALGO:HEX",
        help="expected checksum of FILE, replacing (or supplying) the catalog's",
    )
    f.add_argument("--remove-archives", action="store_true", help="delete archives once extracted")
    f.add_argument("--retries", type=int, default=5, help="download retries (resume each time)")
    f.add_argument("--timeout", type=float, default=60.0, help="network timeout, seconds")
    f.set_defaults(func=fetch_command)

    p = sub.add_parser(
        "prepare", help="check a real dataset's layout with the readers (no network access)"
    )
    p.add_argument("dataset", help=f"catalog name: {names}")
    p.add_argument("--root", required=True, help="data root (the workflow's data_root)")
    p.add_argument("--out", help="also write the summary here (JSON)")
    p.set_defaults(func=prepare_command)

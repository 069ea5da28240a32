"""The ``kubernaut-audit`` command: audit trails from the shell, waits in scripts, a local server.

Exit codes: 0 success; 1 a wait failed (timeout or unexpected events); 2 usage or
configuration error (a bad argument or setting, found before any request, or a missing extra);
3 Data Storage answered with an error; 4 Data Storage could not be reached or answered with
something unreadable; 5 ``verify-chain`` could not decide (keyed rows checked without the key);
70 (``EX_SOFTWARE``) an unexpected exception, a bug in kubernaut-audit, printed with its
traceback; 130 interrupted. ``verify-chain`` exits 1 when the chain is broken.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO, TypeVar

import anyio

from . import _config
from ._chain import ChainVerification, verify_event_chain
from ._client import AsyncAuditClient
from ._exceptions import (
    AuditError,
    AuditWaitError,
    ConfigurationError,
    DataStorageError,
)
from ._expectation import Expectation
from ._polling import PollRecord
from ._query import check_page_bounds, make_filters
from ._sync import AuditClient
from ._trail_ops import (
    ExportProgress,
    check_export_bounds,
    export_query,
    place_legal_hold,
    reconstruct,
    release_legal_hold,
    verify_chain,
)
from .emitters import AsyncBufferedEmitter
from .models import AuditEvent

EXIT_OK, EXIT_WAIT_FAILED, EXIT_USAGE, EXIT_SERVER, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
EXIT_UNDETERMINED = 5  # verify-chain: neither intact nor broken could be shown
EXIT_CRASH = 70  # EX_SOFTWARE in BSD's sysexits.h: an internal error
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a tool whose reader went away
_EMULATOR_EXTRA = frozenset({"cryptography", "starlette", "uvicorn"})
T = TypeVar("T")

_EXAMPLES = """\
examples:
  kubernaut-audit events --correlation-id rr-2025-001
  kubernaut-audit events --correlation-id rr-2025-001 --all --format jsonl | jq .event_type
  kubernaut-audit wait --correlation-id rr-2025-001 --event-type gateway.signal.received
  kubernaut-audit wait --correlation-id rr-2025-001 --count 3 --settle --timeout 20
  kubernaut-audit serve --port 18090          # a local Data Storage emulator
  kubernaut-audit demo                        # see a wait replace time.sleep(5)
  kubernaut-audit codegen --spec data-storage-v1.yaml --output myproj/ds_payloads.py
  kubernaut-audit export --correlation-id rr-2025-001 --format jsonl --output trail.jsonl
  kubernaut-audit verify-chain rr-2025-001            # the service's verdict
  kubernaut-audit verify-chain rr-2025-001 --offline  # recomputed here from a query
  kubernaut-audit legal-hold place rr-2025-001 --reason "SEC case 42"
  kubernaut-audit reconstruct rr-2025-001 > rr.yaml

configuration: flags first, then the environment: DATA_STORAGE_URL, DATA_STORAGE_TOKEN,
DATA_STORAGE_TOKEN_FILE, DATA_STORAGE_USER, KUBERNAUT_AUDIT_FLUSH_INTERVAL,
KUBERNAUT_AUDIT_WRITER.

exit codes: 0 ok, 1 wait failed or chain broken, 2 usage or configuration, 3 server error,
4 unreachable, 5 chain undetermined (keyed rows, no key), 70 internal error (a bug: the
traceback is printed), 130 interrupted, 141 the reader of the output went away (`| head`).
"""


class _UsageError(Exception):
    """An argument the SDK refused while the command checked its arguments, before any request."""


class _MissingExtra(Exception):
    """A command needs an optional dependency that is not installed."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(f"{module} is not installed: install kubernaut-audit[{extra}]")


def _checked(build: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a pure validator or constructor; what it refuses is the user's usage error.

    Only this phase turns ``ValueError``/``TypeError`` into exit 2: once requests are under way,
    such an exception is a bug and must surface as one.
    """
    try:
        return build(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        raise _UsageError(str(exc)) from exc


@contextmanager
def _extra(extra: str, modules: frozenset[str]) -> Iterator[None]:
    """Turn a missing ``modules`` (and nothing else) into :class:`_MissingExtra`."""
    try:
        yield
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing.partition(".")[0] in modules:
            raise _MissingExtra(extra, missing) from exc
        raise


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's default prints usage and exits 2 too
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"kubernaut-audit: error: {message}\n")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kubernaut-audit",
        description="Query Kubernaut's Data Storage audit trail and wait for audit events.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def server_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", help=f"Data Storage address (default: ${_config.ENV_URL})")
        p.add_argument("--token-file", help=f"bearer token file (${_config.ENV_TOKEN_FILE})")
        p.add_argument("--user", help=f"X-Auth-Request-User value (${_config.ENV_USER})")
        p.add_argument("--correlation-id", required=True, help="the correlation id (required)")
        p.add_argument("--event-type", help="only events of this type")
        p.add_argument("--event-category", help="only events of this category")
        p.add_argument("--outcome", help="only events with this outcome")

    events = sub.add_parser(
        "events",
        help="list the audit events of a correlation id",
        description="List audit events, newest first.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    server_options(events)
    events.add_argument("--since", help="lower time bound: 90m, 24h, 7d, RFC 3339, YYYY-MM-DD")
    events.add_argument("--until", help="upper time bound, same forms as --since")
    events.add_argument(
        "--limit", type=int, help="page size (default 100; with --all the largest allowed)"
    )
    events.add_argument("--all", action="store_true", help="every page, not only the first")
    events.add_argument("--format", choices=["table", "json", "jsonl"], default="table")

    wait = sub.add_parser(
        "wait",
        help="wait until expected audit events are stored",
        description="Wait for audit events; exit 0 when met, 1 with a diagnostic otherwise.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    server_options(wait)
    wait.add_argument("--min-count", type=_count, default=1, help="at least N events")
    wait.add_argument("--count", type=_count, help="exactly N events")
    wait.add_argument("--timeout", type=_positive, help="seconds (default 3 × flush + 5)")
    wait.add_argument("--flush-interval", type=_positive, help="writer flush interval (2.0)")
    wait.add_argument(
        "--writer",
        choices=["ticker", "since-last-write", "auto"],
        help="how the writer writes (default auto: worked out from what the polls see)",
    )
    wait.add_argument("--settle", action="store_true", help="then watch one more interval")
    wait.add_argument("--format", choices=["table", "json", "jsonl"], default="table")

    serve = sub.add_parser(
        "serve",
        help="run a local Data Storage emulator",
        description="Serve the Data Storage emulator until interrupted; prints the URL.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    serve.add_argument("--db", default=":memory:", help="SQLite file (default: in memory)")
    serve.add_argument("--admin", action="store_true", help="enable /_emulator/ control routes")
    serve.add_argument(
        "--spec", help="Data Storage OpenAPI spec: hold writes to its event_data union"
    )
    serve.add_argument(
        "--hash-key-file",
        help="chain rows with HMAC-SHA256 under the key in this file (raw bytes), as production "
        "does; without it, unkeyed SHA-256",
    )
    serve.add_argument(
        "--token",
        action="append",
        metavar="USER=TOKEN",
        help="turn on the auth middleware: TOKEN authenticates as USER (repeatable)",
    )

    demo = sub.add_parser(
        "demo",
        help="watch a wait replace time.sleep(5), against a built-in Data Storage",
        description="Emit audit events through a buffered writer into an in-process emulator "
        "and wait for them with the SDK; prints a timeline.",
    )
    demo.add_argument("--flush-interval", type=_positive, default=2.0, help="writer flush (2.0)")
    demo.add_argument("--rounds", type=int, default=5, help="test-like rounds to run (5)")

    codegen = sub.add_parser(
        "codegen",
        help="generate typed event_data models from the spec of your Data Storage",
        description="Write pydantic models for every event_data payload of a Data Storage "
        "OpenAPI spec, and REGISTRY, a PayloadRegistry for AuditClient(payloads=REGISTRY). "
        "Needs the codegen extra: pip install 'kubernaut-audit[codegen]'.",
    )
    codegen.add_argument("--spec", required=True, help="the Data Storage OpenAPI file")
    codegen.add_argument("--output", required=True, help="the Python module to write")
    _trail_parsers(sub)
    return parser


def _connection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help=f"Data Storage address (default: ${_config.ENV_URL})")
    p.add_argument("--token-file", help=f"bearer token file (${_config.ENV_TOKEN_FILE})")
    p.add_argument("--user", help=f"X-Auth-Request-User value (${_config.ENV_USER})")


def _trail_parsers(sub: Any) -> None:
    export = sub.add_parser(
        "export",
        help="export audit events, every page, signed by the service",
        description="Write every page of a signed export (oldest first), as JSON (the pages as "
        "the service sends them) or JSON lines (one event per line). Each page's "
        "hash_chain_valid flags are computed on that page alone; use verify-chain for a "
        "verdict on a chain.",
    )
    _connection_options(export)
    export.add_argument("--correlation-id", help="only events of this correlation id")
    export.add_argument("--event-category", help="only events of this category")
    export.add_argument("--start-time", help="from this RFC 3339 time (inclusive)")
    export.add_argument("--end-time", help="up to this RFC 3339 time (inclusive)")
    export.add_argument("--redact-pii", action="store_true", help="the service's PII masking")
    export.add_argument(
        "--detached-signature", action="store_true", help="add each page's detached signature"
    )
    export.add_argument("--page-size", type=int, default=1000, help="events per request (1000)")
    export.add_argument("--format", choices=["json", "jsonl"], default="json")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")

    verify = sub.add_parser(
        "verify-chain",
        help="verify the hash chain of a correlation id (exit 0 intact, 1 broken)",
        description="Ask the service to verify a correlation id's hash chain, or with "
        "--offline recompute every hash here from a query. Exit 0 intact, 1 broken, 5 "
        "undetermined (keyed rows checked offline without the key).",
    )
    _connection_options(verify)
    verify.add_argument("correlation_id", help="the correlation id")
    verify.add_argument("--offline", action="store_true", help="recompute here, from a query")
    verify.add_argument(
        "--key-file", help="with --offline: a file holding the service's hash key (raw bytes)"
    )
    verify.add_argument(
        "--algorithm",
        choices=["auto", "sha256-unkeyed", "hmac-sha256"],
        default="auto",
        help="with --offline: what the rows are known to use (auto)",
    )
    verify.add_argument("--format", choices=["text", "json"], default="text")

    hold = sub.add_parser(
        "legal-hold",
        help="place, list or release legal holds",
        description="Legal holds on the audit events of a correlation id. The holder is the "
        "user of your token.",
    )
    actions = hold.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    place = actions.add_parser("place", help="hold every stored event of a correlation id")
    release = actions.add_parser("release", help="release the hold on a correlation id")
    listing = actions.add_parser("list", help="the holds in force, newest first")
    for p in (place, release):
        _connection_options(p)
        p.add_argument("correlation_id", help="the correlation id")
        p.add_argument("--reason", required=True, help="why (required)")
        p.add_argument("--format", choices=["text", "json"], default="text")
    _connection_options(listing)
    listing.add_argument("--format", choices=["text", "json"], default="text")

    reconstruct = sub.add_parser(
        "reconstruct",
        help="rebuild a RemediationRequest from the audit trail (YAML to stdout)",
        description="Have the service rebuild the RemediationRequest of a correlation id: the "
        "YAML goes to standard output, the validation summary to standard error.",
    )
    _connection_options(reconstruct)
    reconstruct.add_argument("correlation_id", help="the correlation id")


def _client(args: argparse.Namespace) -> AuditClient:
    return _checked(
        AuditClient,
        base_url=args.url,
        token_file=args.token_file,
        user=args.user,
        flush_interval=getattr(args, "flush_interval", None),
        writer=getattr(args, "writer", None),
    )


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    filters = {
        "event_type": args.event_type,
        "event_category": args.event_category,
        "event_outcome": args.outcome,
    }
    return {k: v for k, v in filters.items() if v is not None}


def _event_json(event: AuditEvent) -> dict[str, Any]:
    data: dict[str, Any] = event.model_dump(mode="json", exclude_none=True)
    return data


def _print_events(events: Sequence[AuditEvent], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        json.dump([_event_json(e) for e in events], out, indent=2)
        out.write("\n")
    elif fmt == "jsonl":
        for e in events:
            out.write(json.dumps(_event_json(e), separators=(",", ":")) + "\n")
    else:
        out.write(_table(events, shutil.get_terminal_size((120, 24)).columns) + "\n")


def _table(events: Sequence[AuditEvent], width: int) -> str:
    if not events:
        return "(no events)"
    rows = [
        (
            e.event_timestamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            str(e.event_outcome),
            e.event_type,
            str(e.event_category),
            str(e.event_id or ""),
        )
        for e in events
    ]
    heads = ("TIMESTAMP (UTC)", "OUTCOME", "EVENT TYPE", "CATEGORY", "EVENT ID")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    # Shrink the event id first (its prefix is enough to find it), then category, then type.
    for i in (4, 3, 2):
        excess = sum(widths) + 2 * (len(widths) - 1) - width
        if excess <= 0:
            break
        widths[i] = max(len(heads[i]) if i != 4 else 8, widths[i] - excess)

    def fit(text: str, n: int) -> str:
        return text if len(text) <= n else text[: max(n - 1, 0)] + "…"

    lines = ["  ".join(fit(h, w).ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(fit(c, w).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


_FIRST_PAGE = 100


def _cmd_events(args: argparse.Namespace) -> int:
    bounds = {k: v for k, v in (("since", args.since), ("until", args.until)) if v is not None}
    filters = {"correlation_id": args.correlation_id, **bounds, **_filters(args)}
    _checked(make_filters, **filters)
    if args.limit is not None:
        _checked(check_page_bounds, args.limit, 0)
    with _client(args) as client:
        if args.all:
            page_size = args.limit or _config.MAX_PAGE_LIMIT
            events = client.list_audit_events(page_size=page_size, **filters)
        else:
            events = client.query_audit_events(limit=args.limit or _FIRST_PAGE, **filters).events
    _print_events(events, args.format, sys.stdout)
    return EXIT_OK


def _progress(stream: TextIO) -> Callable[[PollRecord], None]:
    def show(record: PollRecord) -> None:
        types = ", ".join(f"{t} ×{n}" for t, n in record.by_type) or "none yet"
        line = f"\rpoll {record.number} at {record.at:5.1f}s: {record.matched} matching ({types})"
        stream.write(line[: shutil.get_terminal_size((120, 24)).columns - 1].ljust(60))
        stream.flush()

    return show


def _cmd_wait(args: argparse.Namespace) -> int:
    criteria: dict[str, Any] = {**_filters(args), "min_count": args.min_count}
    if args.count is not None:
        criteria["count"] = args.count
    _checked(Expectation.build, args.correlation_id, **criteria)
    options: dict[str, Any] = dict(criteria)
    for name in ("timeout", "flush_interval"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.settle:
        options["settle"] = True
    live = sys.stderr.isatty()
    if live:
        options["on_poll"] = _progress(sys.stderr)
    with _client(args) as client:
        try:
            events = client.wait_for_audit_events(args.correlation_id, **options)
        finally:
            if live:
                sys.stderr.write("\n")
    _print_events(events, args.format, sys.stdout)
    stats = events.stats
    print(
        f"{len(events)} event(s) after {stats.elapsed:.2f}s and {stats.polls} poll(s)",
        file=sys.stderr,
    )
    return EXIT_OK


def _token_users(pairs: Sequence[str]) -> dict[str, str]:
    """``USER=TOKEN`` pairs (the token may hold ``=``) as a token → user mapping."""
    tokens: dict[str, str] = {}
    for pair in pairs:
        user, _, token = pair.partition("=")
        if not user or not token:
            raise ValueError(f"--token wants USER=TOKEN, got {pair.split('=', 1)[0]!r}=...")
        tokens[token] = user
    return tokens


def _read_key_file(path: str | None) -> bytes | None:
    """The bytes of a key file named on the command line (None: none named)."""
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc.strerror}") from exc


def _cmd_serve(args: argparse.Namespace) -> int:
    with _extra("emulator", _EMULATOR_EXTRA):
        from .emulator import Emulator

    hash_key = _read_key_file(args.hash_key_file)
    tokens = _checked(_token_users, args.token) if args.token else None
    emulator = _checked(
        Emulator, db=args.db, admin=args.admin, spec=args.spec, hash_key=hash_key, tokens=tokens
    )

    async def run() -> None:
        async with emulator.serve(host=args.host, port=args.port) as url:
            print(f"Data Storage emulator listening on {url}", flush=True)
            print(f"  export {_config.ENV_URL}={url}", flush=True)
            await anyio.sleep_forever()

    try:
        anyio.run(run)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        emulator.close()
    return EXIT_OK


_PIPELINE = (
    "gateway.signal.received",
    "signalprocessing.signal.processed",
    "aianalysis.phase.transition",
    "workflowexecution.workflow.started",
    "orchestrator.lifecycle.completed",
    "notification.message.sent",
)


def _cmd_demo(args: argparse.Namespace) -> int:
    with _extra("emulator", _EMULATOR_EXTRA):
        from .emulator import Emulator, make_event

    interval: float = args.flush_interval
    sleep_cost = 5.0

    async def run() -> None:
        emulator = Emulator()
        transport = emulator.transport()
        out = sys.stdout
        out.write(
            f"kubernaut-audit demo: an in-process Data Storage and a service-like buffered\n"
            f"writer flushing every {interval:g}s (ADR-038). Each round triggers the 'service',\n"
            f"which emits {len(_PIPELINE)} audit events, then waits for them.\n\n"
        )
        async with (
            AsyncAuditClient(transport=transport, flush_interval=interval) as client,
            AsyncBufferedEmitter(transport=transport, flush_interval=interval) as emitter,
        ):
            total_wait = 0.0
            for n in range(1, args.rounds + 1):
                cid = f"demo-{n}-{uuid.uuid4().hex[:8]}"
                t0 = time.monotonic()
                for event_type in _PIPELINE:
                    emitter.emit(make_event(cid, event_type))
                events = await client.wait_for_audit_events(
                    cid, event_types=list(_PIPELINE), timeout=3 * interval + 5
                )
                noticed = time.monotonic()
                total_wait += noticed - t0
                mine = [r for r in emitter.records if r.correlation_id == cid]
                visible = max(r.visible_at or noticed for r in mine)
                out.write(f"round {n}  correlation_id={cid}\n")
                out.write(f"  emitted at      +{0:6.3f}s  ({len(mine)} events)\n")
                out.write(
                    f"  visible at      +{visible - t0:6.3f}s  (the writer's flush stored them)\n"
                )
                out.write(
                    f"  noticed at      +{noticed - t0:6.3f}s  "
                    f"({(noticed - visible) * 1000:.0f} ms after they became visible, "
                    f"{events.stats.polls} polls)\n"
                )
                types = Counter(e.event_type for e in events)
                out.write(f"  got             {len(events)} events, {len(types)} types\n")
                out.write(
                    f"  time.sleep({sleep_cost:g})   would have taken {sleep_cost:.3f}s "
                    f"({sleep_cost - (noticed - t0):+.3f}s more)\n\n"
                )
            saved = args.rounds * sleep_cost - total_wait
            out.write(
                f"{args.rounds} rounds waited {total_wait:.2f}s in all; "
                f"time.sleep({sleep_cost:g}) would have taken {args.rounds * sleep_cost:.2f}s "
                f"({saved:.2f}s saved),\nand could still fail when a flush is late. Later rounds "
                "need fewer polls: the SDK learns the writer's flush cadence.\n"
            )
        emulator.close()

    anyio.run(run)
    return EXIT_OK


def _cmd_codegen(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import _codegen

    spec = Path(args.spec)
    if not spec.is_file():
        print(f"kubernaut-audit: error: no spec file at {spec}", file=sys.stderr)
        return EXIT_USAGE
    try:
        _codegen.require_generator()
    except ImportError as exc:
        print(f"kubernaut-audit: {exc.name}: install kubernaut-audit[codegen]", file=sys.stderr)
        return EXIT_USAGE
    try:
        covered = _codegen.generate(spec, Path(args.output))
    except (_codegen.CodegenError, OSError) as exc:
        print(f"kubernaut-audit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    models = len(set(covered.mapping.values()))
    print(f"wrote {args.output}: {models} payload models for {len(covered.mapping)} event types")
    return EXIT_OK


def _plain_client(args: argparse.Namespace) -> AuditClient:
    return _checked(AuditClient, base_url=args.url, token_file=args.token_file, user=args.user)


def _export_progress(stream: TextIO) -> Callable[[ExportProgress], None]:
    def show(progress: ExportProgress) -> None:
        stream.write(f"\rexporting: page {progress.pages}, {progress.events} events")
        stream.flush()

    return show


def _cmd_export(args: argparse.Namespace) -> int:
    filters: dict[str, Any] = {
        k: v
        for k, v in (
            ("correlation_id", args.correlation_id),
            ("event_category", args.event_category),
            ("start_time", args.start_time),
            ("end_time", args.end_time),
        )
        if v is not None
    }
    filters["redact_pii"] = args.redact_pii
    filters["include_detached_signature"] = args.detached_signature
    _checked(export_query, **filters)
    _checked(check_export_bounds, args.page_size, 0)
    live = sys.stderr.isatty()
    pages = events = flagged = 0
    with _client_output(args.output) as out, _plain_client(args) as client:
        walk = client.iter_export(
            page_size=args.page_size,
            on_page=_export_progress(sys.stderr) if live else None,
            **filters,
        )
        if args.format == "json":
            out.write("[")
        try:
            for page in walk:
                if args.format == "json":
                    out.write(",\n" if pages else "\n")
                    json.dump(page.model_dump(mode="json", exclude_unset=True), out)
                else:
                    for event in page.events:
                        out.write(json.dumps(event.model_dump(mode="json", exclude_unset=True)))
                        out.write("\n")
                pages += 1
                events += len(page.events)
                flagged += sum(1 for e in page.events if e.hash_chain_valid is False)
        finally:
            if live:
                sys.stderr.write("\n")
        if args.format == "json":
            out.write("\n]\n" if pages else "]\n")
    where = args.output or "standard output"
    print(f"exported {events} event(s) in {pages} page(s) to {where}", file=sys.stderr)
    if flagged:
        print(
            f"{flagged} event(s) flagged by the per-page checks (a page, time window or category "
            "cut also flags events; run verify-chain for a verdict)",
            file=sys.stderr,
        )
    return EXIT_OK


@contextmanager
def _client_output(path: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    try:
        handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise _UsageError(f"cannot write {path}: {exc.strerror}") from exc
    with handle:
        yield handle


def _cmd_verify_chain(args: argparse.Namespace) -> int:
    if args.offline:
        return _verify_offline(args)
    if args.key_file is not None or args.algorithm != "auto":
        raise _UsageError("--key-file and --algorithm apply to --offline only")
    _checked(verify_chain, args.correlation_id)
    with _plain_client(args) as client:
        result = client.verify_audit_chain(args.correlation_id)
    if args.format == "json":
        print(json.dumps(result.model_dump(mode="json", exclude_unset=True), indent=2))
    else:
        print(f"{result.correlation_id}: {result.message}")
        print(
            f"  {result.verified_events} of {result.total_events} hashed event(s) verified"
            + (f", {result.skipped_null_hash} without a hash" if result.skipped_null_hash else "")
        )
        for entry in result.tampered_events or []:
            print(f"  {entry.event_id}  {entry.message}")
    return EXIT_OK if result.is_valid else EXIT_WAIT_FAILED


def _verify_offline(args: argparse.Namespace) -> int:
    key = _read_key_file(args.key_file)
    _checked(make_filters, correlation_id=args.correlation_id)
    _checked(verify_event_chain, [], key=key, algorithm=args.algorithm)
    with _plain_client(args) as client:
        result = client.verify_audit_chain_offline(
            args.correlation_id, key=key, algorithm=args.algorithm
        )
    if args.format == "json":
        print(json.dumps(_verification_json(result), indent=2))
    else:
        print(f"{args.correlation_id}: {result}")
        for item in result.breaks:
            mark = " (reordered)" if item.reordered else ""
            print(f"  {item.event_id}  {item.kind}{mark}: {item.message}")
        for event_id in result.undecided_event_ids:
            print(f"  {event_id}  undecided: keyed, or tampered")
    if result.verdict == "intact":
        return EXIT_OK
    return EXIT_WAIT_FAILED if result.verdict == "broken" else EXIT_UNDETERMINED


def _verification_json(result: ChainVerification) -> dict[str, Any]:
    return {
        "verdict": result.verdict,
        "correlation_ids": list(result.correlation_ids),
        "total_events": result.total_events,
        "verified_events": result.verified_events,
        "skipped_events": result.skipped_events,
        "breaks": [
            {
                "event_id": str(b.event_id),
                "kind": b.kind,
                "reordered": b.reordered,
                "expected_hash": b.expected_hash,
                "actual_hash": b.actual_hash,
                "previous_hash": b.previous_hash,
                "message": b.message,
            }
            for b in result.breaks
        ],
        "undecided_event_ids": [str(i) for i in result.undecided_event_ids],
        "algorithms": dict(result.algorithms),
        "notes": list(result.notes),
    }


def _cmd_legal_hold(args: argparse.Namespace) -> int:
    if args.action == "list":
        with _plain_client(args) as client:
            holds = client.list_legal_holds()
        if args.format == "json":
            print(json.dumps(holds.model_dump(mode="json", exclude_unset=True), indent=2))
            return EXIT_OK
        if not holds.holds:
            print("(no legal holds)")
        for hold in holds.holds or []:
            when = hold.placed_at.isoformat() if hold.placed_at else "?"
            print(
                f"{hold.correlation_id}  {hold.events_affected} event(s)  by {hold.placed_by}  "
                f"at {when}  reason: {hold.reason}"
            )
        return EXIT_OK
    if args.action == "place":
        _checked(place_legal_hold, args.correlation_id, args.reason)
        with _plain_client(args) as client:
            placed = client.place_legal_hold(args.correlation_id, args.reason)
        data = placed.model_dump(mode="json", exclude_unset=True)
        text = (
            f"held {placed.events_affected} event(s) of {placed.correlation_id} "
            f"for {placed.placed_by}"
        )
    else:
        _checked(release_legal_hold, args.correlation_id, args.reason)
        with _plain_client(args) as client:
            released = client.release_legal_hold(args.correlation_id, args.reason)
        data = released.model_dump(mode="json", exclude_unset=True)
        text = f"released {released.events_released} event(s) of {released.correlation_id}"
    print(json.dumps(data, indent=2) if args.format == "json" else text)
    return EXIT_OK


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    _checked(reconstruct, args.correlation_id)
    with _plain_client(args) as client:
        result = client.reconstruct_remediation_request(args.correlation_id)
    sys.stdout.write(result.remediation_request_yaml)
    validation = result.validation
    print(
        f"completeness {validation.completeness}%, "
        f"{'valid' if validation.is_valid else 'NOT valid'}",
        file=sys.stderr,
    )
    for error in validation.errors:
        print(f"  error: {error}", file=sys.stderr)
    for warning in validation.warnings:
        print(f"  warning: {warning}", file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kubernaut-audit`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(version("kubernaut-audit"))
        return EXIT_OK
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "events": _cmd_events,
        "wait": _cmd_wait,
        "serve": _cmd_serve,
        "demo": _cmd_demo,
        "codegen": _cmd_codegen,
        "export": _cmd_export,
        "verify-chain": _cmd_verify_chain,
        "legal-hold": _cmd_legal_hold,
        "reconstruct": _cmd_reconstruct,
    }
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return commands[args.command](args)
    except AuditWaitError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_WAIT_FAILED
    except (_UsageError, ConfigurationError) as exc:
        print(f"kubernaut-audit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _MissingExtra as exc:
        print(f"kubernaut-audit: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DataStorageError as exc:
        print(f"kubernaut-audit: {exc}", file=sys.stderr)
        return EXIT_SERVER
    except AuditError as exc:
        print(f"kubernaut-audit: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly. Point stdout at /dev/null so the
        # interpreter's last flush of the buffered rest cannot fail again on the way out.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # stdout is no file descriptor (run in-process)
            pass
        return EXIT_BROKEN_PIPE
    except Exception:
        traceback.print_exc()
        print(
            "kubernaut-audit: internal error (a bug in kubernaut-audit, not in your arguments); "
            "please report it with the traceback above",
            file=sys.stderr,
        )
        return EXIT_CRASH


if __name__ == "__main__":
    sys.exit(main())

"""The `salesflow` command: `serve`, `worker`, `migrate`, `check-alerts`, `seed-demo`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from salesflow.config import ConfigurationError, Settings, StoreSettings, get_settings, load
from salesflow.observability import configure_logging

logger = logging.getLogger("salesflow.cli")

OPEN_FILES_WHEN_UNLIMITED = 1_048_576  # the kernel's usual nr_open


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="salesflow", description="SalesFlow analytics service")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", help="listen address (default: HOST)")
    serve.add_argument("--port", type=int, help="listen port (default: PORT)")
    commands.add_parser("worker", help="run jobs from the Redis broker (JOB_BACKEND=redis)")
    commands.add_parser("migrate", help="bring the state database to the newest schema")
    commands.add_parser("check-alerts", help="evaluate the alert rules once; print what changed (JSON)")
    seed = commands.add_parser("seed-demo", help="replace the embedded store with a demo history")
    seed.add_argument("--products", type=int, help="number of products (default: DEMO_PRODUCTS)")
    seed.add_argument("--days", type=int, help="days of history ending today (default: DEMO_DAYS)")
    seed.add_argument("--lines", type=int, help="approximate number of sale lines (scales demand)")
    seed.add_argument("--seed", type=int, help="random seed (default: DEMO_SEED)")
    args = parser.parse_args(argv)

    try:
        # seed-demo needs the store's settings only: no Java credentials or JWT secret.
        settings = load(StoreSettings) if args.command == "seed-demo" else get_settings()
    except ConfigurationError as exc:
        sys.stderr.write(f"salesflow: configuration error: {exc}\n")
        return 2
    configure_logging(settings.log_level)
    if not isinstance(settings, Settings):
        return _seed_demo(settings, products=args.products, days=args.days, lines=args.lines, seed=args.seed)
    if args.command == "worker":
        if not settings.uses_java:  # the embedded store is one process's file: its server runs the jobs
            sys.stderr.write(
                "salesflow: a worker needs the Java data source (DATA_SOURCE=java, JOB_BACKEND=redis);"
                " with the embedded store (DEV mode) `salesflow serve` runs the jobs itself\n"
            )
            return 2
        from salesflow.worker import run_worker

        return asyncio.run(run_worker(settings))
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "check-alerts":
        return asyncio.run(_check_alerts(settings))
    return _serve(settings, host=args.host, port=args.port)


async def _migrate(settings: Settings) -> int:
    from salesflow.state.database import StateDatabase, default_url

    async with StateDatabase.open(
        settings.storage.state_database_url or default_url(settings.source.data_dir)
    ) as state:
        await state.migrate()
    logger.info("state database migrated")
    return 0


async def _check_alerts(settings: Settings) -> int:
    """One evaluation (its digest is queued in the outbox; a serving process sends it)."""
    import json

    from salesflow.resources import open_resources

    async with open_resources(settings) as resources:
        changes = await resources.alerts.check_now()
    summary = {
        name: sorted((a.kind, a.subject) for a in getattr(changes, name))
        for name in ("opened", "updated", "resolved")
    }
    sys.stdout.write(json.dumps({**summary, "digest_mail_id": changes.digest_mail_id}) + "\n")
    return 0


def _serve(settings: Settings, *, host: str | None, port: int | None) -> int:
    import uvicorn

    from salesflow.api.main import create_app
    from salesflow.api.protocol import with_header_deadline

    raise_descriptor_limit()

    uvicorn.run(
        create_app(settings),
        host=host or settings.http.host,
        port=port or settings.http.port,
        http=with_header_deadline(settings.http.header_timeout_seconds),
        log_config=None,  # keep our JSON logging
        proxy_headers=False,
    )
    return 0


def raise_descriptor_limit() -> int:
    """Lift the open-file limit to its hard ceiling: at a common default of 1,024, a thousand idle or slow
    connections left no descriptor for `/health`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = hard if hard != resource.RLIM_INFINITY else OPEN_FILES_WHEN_UNLIMITED
    if soft == resource.RLIM_INFINITY or soft >= ceiling:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
    except (ValueError, OSError):
        logger.warning("open-file limit could not be raised", extra={"soft": soft, "hard": hard})
        return soft
    logger.info("open-file limit raised", extra={"from": soft, "to": ceiling})
    return ceiling


def _seed_demo(
    settings: StoreSettings, *, products: int | None, days: int | None, lines: int | None, seed: int | None
) -> int:
    from salesflow.data.sources.embedded import EmbeddedStore, StoreLocked

    try:
        store = EmbeddedStore(settings.source.embedded_db_path)
    except StoreLocked as exc:
        sys.stderr.write(f"salesflow: {exc}\n")
        return 1
    try:
        result = store.seed_demo(
            today=datetime.now(ZoneInfo(settings.source.timezone)).date(),
            n_products=products or settings.source.demo_products,
            days=days or settings.source.demo_days,
            seed=settings.source.demo_seed if seed is None else seed,
            target_lines=lines,
        )
    finally:
        store.close()
    logger.info(
        "demo data seeded",
        extra={
            "path": str(settings.source.embedded_db_path),
            "sales": result.sales_written,
            "lines": result.lines_written,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

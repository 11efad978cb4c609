"""``python -m meshfleet.simulator`` (or ``meshfleet simulator``): run the ASM simulator from the
command line until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from aiohttp import web

from meshfleet.asm.signer import AccessKey
from meshfleet.simulator.app import build_app
from meshfleet.simulator.config import (
    DEFAULT_CREATE_SECONDS,
    DEFAULT_DELETE_SECONDS,
    DEFAULT_TOKEN_TTL_SECONDS,
    DEFAULT_UPDATE_SECONDS,
    DEFAULT_UPGRADE_STEP_SECONDS,
    FaultAction,
    FaultConfig,
    LeaveRule,
    NameRule,
    SimulatorConfig,
)
from meshfleet.simulator.state import SimulatorState

DEFAULT_PORT = 18080
PROG = "python -m meshfleet.simulator"
"""How the usage line names the command when run as a module; ``meshfleet simulator`` passes its
own name."""
ENV_AK = "HUAWEICLOUD_SDK_AK"
ENV_SK = "HUAWEICLOUD_SDK_SK"
ENV_TOKEN = "ASM_AUTH_TOKEN"  # noqa: S105 - the variable's name, not a token


def _probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a probability between 0 and 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a non-negative number of seconds")
    return value


def _rule(text: str) -> NameRule:
    try:
        return NameRule.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _leave_rule(text: str) -> LeaveRule:
    try:
        return LeaveRule.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _iam_user(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        # The value holds a password: name the expected shape, never echo it.
        raise argparse.ArgumentTypeError("expected USER:PASSWORD")
    return user, password


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The simulator's command line, its usage and errors naming it ``prog``.

    Args:
        prog: How it was run: ``python -m meshfleet.simulator``, or ``meshfleet simulator``.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "A faithful Huawei Cloud ASM mesh API for development, tests, demos and benchmarks. "
            "It is a dev tool: its /_sim/* admin endpoints need no auth, so keep it on loopback."
        ),
    )
    net = parser.add_argument_group("listening")
    net.add_argument(
        "--host", default="127.0.0.1", metavar="ADDRESS", help="address to bind (default 127.0.0.1)"
    )
    net.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    net.add_argument("--access-log", action="store_true", help="log every request to stderr")

    timing = parser.add_argument_group("phases")
    timing.add_argument(
        "--create-seconds",
        type=_seconds,
        default=DEFAULT_CREATE_SECONDS,
        metavar="SECONDS",
        help=f"seconds in Creating (default {DEFAULT_CREATE_SECONDS:g})",
    )
    timing.add_argument(
        "--delete-seconds",
        type=_seconds,
        default=DEFAULT_DELETE_SECONDS,
        metavar="SECONDS",
        help=f"seconds in Deleting (default {DEFAULT_DELETE_SECONDS:g})",
    )
    timing.add_argument(
        "--update-seconds",
        type=_seconds,
        default=DEFAULT_UPDATE_SECONDS,
        metavar="SECONDS",
        help="seconds before an accepted configuration change is echoed "
        f"(default {DEFAULT_UPDATE_SECONDS:g})",
    )
    timing.add_argument(
        "--upgrade-step-seconds",
        type=_seconds,
        default=DEFAULT_UPGRADE_STEP_SECONDS,
        metavar="SECONDS",
        help="seconds each step of an upgrade task runs, finish and rollback included "
        f"(default {DEFAULT_UPGRADE_STEP_SECONDS:g})",
    )

    auth = parser.add_argument_group("authentication")
    auth.add_argument("--no-auth", action="store_true", help="accept unauthenticated requests")
    auth.add_argument(
        "--token",
        action="append",
        default=[],
        help=f"a static X-Auth-Token to accept (repeatable; default ${ENV_TOKEN} if set)",
    )
    auth.add_argument(
        "--ak", action="append", default=[], help=f"access key (repeatable; default ${ENV_AK})"
    )
    auth.add_argument(
        "--sk", action="append", default=[], help=f"secret key, one per --ak (default ${ENV_SK})"
    )
    auth.add_argument(
        "--iam-user",
        action="append",
        type=_iam_user,
        default=[],
        metavar="USER:PASSWORD",
        help="an IAM user for POST /v3/auth/tokens (repeatable)",
    )
    auth.add_argument(
        "--iam-domain", metavar="DOMAIN", help="account (domain) name IAM token requests must name"
    )
    auth.add_argument(
        "--token-ttl",
        type=_seconds,
        default=DEFAULT_TOKEN_TTL_SECONDS,
        metavar="SECONDS",
        help=f"lifetime of issued IAM tokens in seconds (default {DEFAULT_TOKEN_TTL_SECONDS:g})",
    )

    chaos = parser.add_argument_group("fault injection (changeable at runtime: PATCH /_sim/faults)")
    chaos.add_argument(
        "--fail-500-before",
        type=_probability,
        default=0.0,
        metavar="P",
        help="P(500 on create, nothing created)",
    )
    chaos.add_argument(
        "--fail-500-after",
        type=_probability,
        default=0.0,
        metavar="P",
        help="P(500 on create although the mesh was created)",
    )
    chaos.add_argument(
        "--fail-429",
        type=_probability,
        default=0.0,
        metavar="P",
        help="P(429 ASM.01429001 on create or delete)",
    )
    chaos.add_argument(
        "--retry-after",
        type=_seconds,
        default=None,
        metavar="S",
        help="send Retry-After: S with injected 429s",
    )
    chaos.add_argument(
        "--create-failed",
        type=_probability,
        default=0.0,
        metavar="P",
        help="P(a created mesh ends CreateFailed)",
    )
    chaos.add_argument(
        "--latency",
        type=_seconds,
        default=0.0,
        metavar="S",
        help="seconds added to every mesh API call",
    )
    chaos.add_argument(
        "--latency-jitter",
        type=_seconds,
        default=0.0,
        metavar="S",
        help="up to S more seconds, uniformly drawn",
    )
    chaos.add_argument(
        "--rule",
        type=_rule,
        action="append",
        default=[],
        metavar="GLOB=ACTION[:N]",
        # Listed from the enum, so the help names every action there is.
        help="per-name fault, e.g. 'fail-*=create-failed', 'flaky-*=500-before:2'; "
        f"actions: {', '.join(action.value for action in FaultAction)}",
    )
    chaos.add_argument(
        "--leave",
        type=_leave_rule,
        action="append",
        default=[],
        metavar="GLOB=PHASE[@S]",
        help="a created mesh leaves Running S seconds after reaching it, e.g. "
        "'canary-*=Unknown@2'; PHASE 'gone' makes it disappear",
    )
    chaos.add_argument("--seed", type=int, default=None, metavar="N", help="seed of the fault RNG")
    return parser


def config_from_args(
    args: argparse.Namespace, environ: Mapping[str, str], parser: argparse.ArgumentParser
) -> SimulatorConfig:
    """The ``SimulatorConfig`` the parsed arguments (and ``HUAWEICLOUD_SDK_AK/SK``,
    ``ASM_AUTH_TOKEN``) describe."""
    # The environment fallbacks keep secrets off the command line, where ``ps`` shows them
    # and a random token that starts with "-" would be read as an option.
    tokens: list[str] = args.token
    if not tokens and environ.get(ENV_TOKEN, "").strip():
        tokens = [environ[ENV_TOKEN].strip()]
    aks: list[str] = args.ak
    sks: list[str] = args.sk
    if not aks and not sks and environ.get(ENV_AK) and environ.get(ENV_SK):
        aks, sks = [environ[ENV_AK].strip()], [environ[ENV_SK].strip()]
    if len(aks) != len(sks):
        parser.error("give one --sk for every --ak")
    try:
        keys = tuple(AccessKey(ak, sk) for ak, sk in zip(aks, sks, strict=True))
        return SimulatorConfig(
            create_seconds=args.create_seconds,
            delete_seconds=args.delete_seconds,
            update_seconds=args.update_seconds,
            upgrade_step_seconds=args.upgrade_step_seconds,
            auth_enabled=not args.no_auth,
            tokens=tuple(tokens),
            access_keys=keys,
            iam_users=dict(args.iam_user),
            iam_domain=args.iam_domain,
            token_ttl_seconds=args.token_ttl,
            faults=FaultConfig(
                fail_500_before=args.fail_500_before,
                fail_500_after=args.fail_500_after,
                fail_429=args.fail_429,
                retry_after=args.retry_after,
                create_failed=args.create_failed,
                latency=args.latency,
                latency_jitter=args.latency_jitter,
                rules=args.rule,
                leave=args.leave,
            ),
            seed=args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))


async def run(config: SimulatorConfig, host: str, port: int, *, access_log: bool = False) -> None:
    """Serve until SIGINT or SIGTERM, then close the listener and return.

    Raises:
        OSError: the address cannot be bound.
    """
    state = SimulatorState(config)
    runner = web.AppRunner(
        build_app(state), access_log=logging.getLogger("aiohttp.access") if access_log else None
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        print(
            f"ASM simulator listening on http://{shown}:{bound_port} "
            f"({config.auth_summary()}; create {config.create_seconds:g}s)",
            flush=True,
        )
        if config.auth_enabled and not config.has_credentials:
            print(
                "warning: auth is on but no --token, --ak/--sk or --iam-user is configured: "
                "every mesh API call will answer 401",
                file=sys.stderr,
                flush=True,
            )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """Parse ``argv`` (``sys.argv[1:]`` by default), serve until stopped; return the exit code.

    Args:
        argv: The arguments, without the program's name.
        prog: The program's name in the usage line and errors (``build_parser``).
    """
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
        config = config_from_args(args, os.environ, parser)
    except SystemExit as exc:  # --help, or a usage error already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    if args.access_log:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    try:
        asyncio.run(run(config, args.host, args.port, access_log=args.access_log))
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    # stdout carries only the listening line, for scripts that wait for it.
    print("ASM simulator stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

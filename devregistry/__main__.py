"""`python -m devregistry serve|adduser|token|revoke|recovery-codes|owner|seed` (README.md)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from devregistry import accounts, packages, seed
from devregistry.routing import Compat
from devregistry.server import Config, make_server
from devregistry.store import Store, default_data_dir


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ValueError as exc:
        print(f"devregistry: {exc}", file=sys.stderr)
        return 1
    return code


def serve(args: argparse.Namespace) -> int:
    config = Config(
        data_dir=args.data,
        public_url=args.public_url,
        faults_file=args.faults,
        refuse_otp_reuse=args.refuse_otp_reuse,
        compat=Compat(args.compat),
    )
    server = make_server(config, args.host, args.port)
    print(f"devregistry listening on {server.url}", flush=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def adduser(args: argparse.Namespace) -> int:
    with Store(args.data).write() as state:
        accounts.add_user(state, args.name, args.password, args.email, args.otp_secret)
    print(f"created user {args.name}" + (" (TOTP 2FA)" if args.otp_secret else ""))
    return 0


def token(args: argparse.Namespace) -> int:
    with Store(args.data).write() as state:
        value = accounts.create_token(
            state, args.name, read_only=args.read_only, automation=args.automation
        )
    print(value)
    return 0


def revoke(args: argparse.Namespace) -> int:
    with Store(args.data).write() as state:
        known = accounts.revoke_token(state, args.token)
    print("revoked" if known else "no such token", file=sys.stdout if known else sys.stderr)
    return 0 if known else 1


def recovery_codes(args: argparse.Namespace) -> int:
    with Store(args.data).write() as state:
        if args.name not in state.users:
            print(f"no user {args.name!r}", file=sys.stderr)
            return 1
        codes = accounts.new_recovery_codes(state, args.name)
    print("\n".join(codes))
    return 0


def owner_add(args: argparse.Namespace) -> int:
    with Store(args.data).write() as state:
        packages.add_maintainer(state, args.package, args.user)
    print(f"{args.user} now maintains {args.package}")
    return 0


def run_seed(args: argparse.Namespace) -> int:
    store = Store(args.data)
    if not store.is_empty() and not args.force:
        print(
            f"devregistry: {args.data} already holds registry data; "
            "seed refuses to mix demo data into it (use --force to wipe it and seed again).",
            file=sys.stderr,
        )
        return 2
    if args.stages < 0:
        raise ValueError("--stages must be 0 or more")
    print(seed.seed(args.data, wipe=args.force, extra_stages=args.stages).describe())
    return 0


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data",
        type=Path,
        default=default_data_dir(),
        help="data directory (default: $DEVREGISTRY_DATA or ./var/devregistry)",
    )
    parser = argparse.ArgumentParser(
        prog="python -m devregistry", description="A local npm registry with staged publishing."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    p = commands.add_parser("serve", parents=[common], help="run the registry")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4873)
    p.add_argument("--public-url", help="base URL for tarball links (default: from Host)")
    p.add_argument("--faults", type=Path, help="fault rules file (default: DATA/faults.json)")
    p.add_argument("--refuse-otp-reuse", action="store_true", help="refuse a TOTP code twice")
    p.add_argument(
        "--compat",
        choices=[c.value for c in Compat],
        default=Compat.NPM.value,
        help="answer as npm's registry does (default) or as another implementation (README)",
    )
    p.set_defaults(run=serve)

    p = commands.add_parser("adduser", parents=[common], help="create a user")
    p.add_argument("name")
    p.add_argument("--password", required=True)
    p.add_argument("--email")
    p.add_argument("--otp-secret", help="base32 TOTP secret: turns on 2FA for this user")
    p.set_defaults(run=adduser)

    p = commands.add_parser("token", parents=[common], help="print a new token for a user")
    p.add_argument("name")
    p.add_argument("--read-only", action="store_true")
    p.add_argument(
        "--automation", action="store_true", help='stages made with it say "trusted automation"'
    )
    p.set_defaults(run=token)

    p = commands.add_parser("revoke", parents=[common], help="revoke a token")
    p.add_argument("token")
    p.set_defaults(run=revoke)

    p = commands.add_parser(
        "recovery-codes", parents=[common], help="print 5 new recovery codes (--compat other)"
    )
    p.add_argument("name")
    p.set_defaults(run=recovery_codes)

    p = commands.add_parser("owner", help="manage package maintainers")
    owner_commands = p.add_subparsers(required=True, metavar="ACTION")
    p = owner_commands.add_parser("add", parents=[common], help="make USER a maintainer of PKG")
    p.add_argument("package")
    p.add_argument("user")
    p.set_defaults(run=owner_add)

    p = commands.add_parser("seed", parents=[common], help="fill DATA with the demo")
    p.add_argument("--force", action="store_true", help="wipe existing data first")
    p.add_argument(
        "--stages",
        type=int,
        default=0,
        metavar="N",
        help="also stage N versions of bulk-* packages (for benchmarks)",
    )
    p.set_defaults(run=run_seed)
    return parser


if __name__ == "__main__":
    sys.exit(main())

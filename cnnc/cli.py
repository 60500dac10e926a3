"""The `cnnc` command: a thin dispatcher over one module per subcommand in cnnc/commands/.

Each command module defines HELP, add_arguments(parser) and run(args) -> exit status. A CnncError
anywhere becomes one rendered message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from cnnc.errors import CnncError

# Subcommands in the order `cnnc --help` lists them; each is cnnc/commands/<name>.py.
COMMANDS = ("run", "summary", "show", "compile", "verify", "devices", "eval", "predict",
            "bench", "export")


def _available() -> list[str]:
    return [n for n in COMMANDS if importlib.util.find_spec(f"cnnc.commands.{n}") is not None]


def build_parser() -> argparse.ArgumentParser:
    from cnnc import __version__

    parser = argparse.ArgumentParser(
        prog="cnnc", description="A declarative CNN graph compiler for OpenCL devices.")
    parser.add_argument("--version", action="version", version=f"cnnc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _available():
        module = importlib.import_module(f"cnnc.commands.{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except CnncError as err:
        # A located error starts with its place in the user's text; any other names the program.
        located = err.span or err.path or err.file
        print(err.render() if located else f"cnnc: error: {err.render()}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        print("cnnc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The `cnnc` command: a thin dispatcher over one module per subcommand in cnnc/commands/.

Each command module defines HELP, add_arguments(parser) and run(args) -> exit status. A CnncError
anywhere becomes one rendered message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import os
import signal
import sys

# Ctrl-C while modules load is only noted, and acted on once they have loaded: raised inside an
# import, KeyboardInterrupt can come out as another error (NumPy's C extensions turn it into an
# ImportError), with a traceback.
_interrupt_noted = False


def _note_interrupt(signum: int, frame: object) -> None:
    global _interrupt_noted
    _interrupt_noted = True


# The `cnnc` command notes Ctrl-C from here on (main() acts on it); a program that imports
# cnnc.cli keeps its own Ctrl-C handling.
_IS_COMMAND = os.path.basename(sys.argv[0] if sys.argv else "") in ("cnnc", "cnnc.exe")
if _IS_COMMAND:
    signal.signal(signal.SIGINT, _note_interrupt)

import argparse  # after the handler above, which must come first
import importlib
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

from cnnc.errors import CnncError

# Subcommands in the order `cnnc --help` lists them; each is cnnc/commands/<name>.py.
COMMANDS = ("run", "summary", "show", "compile", "verify", "devices", "doctor", "eval",
            "predict", "bench", "tune", "export")


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
        # ALIASES: other names a user reaches for (Keras' `evaluate` for eval)
        p = sub.add_parser(name, aliases=getattr(module, "ALIASES", ()), help=module.HELP,
                           description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    finally:
        if _IS_COMMAND:
            # The command's work and its exit status are settled: a Ctrl-C while the interpreter
            # shuts down would otherwise kill it by the signal once Python has put the default
            # action back (status -2, no message). A program that imports cnnc.cli is left alone.
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _main(argv: list[str] | None) -> int:
    # Everything, argument parsing and the imports it triggers included, is inside the try:
    # Ctrl-C at any moment is one line, never a traceback.
    try:
        with _loading():
            parser = build_parser()
            args = parser.parse_args(argv)
        if not getattr(args, "_run", None):
            parser.print_help()
            return 2
        return int(args._run(args) or 0)
    except CnncError as err:
        # A located error starts with its place in the user's text; any other names the program.
        located = err.span or err.path or err.file
        print(err.render() if located else f"cnnc: error: {err.render()}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        print("cnnc: interrupted", file=sys.stderr)
        return 130
    except ImportError as err:
        if not _caused_by_interrupt(err):
            raise
        # NumPy turns a Ctrl-C during its own import into an ImportError.
        print("cnnc: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        # The checks before allocations (cnnc.input_limits) make this rare; never a traceback.
        print("cnnc: error: out of memory", file=sys.stderr)
        return CnncError.exit_status
    except BrokenPipeError:
        # The reader of our output went away (`cnnc ... | head`): stop quietly.
        _silence_stdout()
        return 141


@contextmanager
def _loading() -> Iterator[None]:
    """While the commands' modules load, Ctrl-C is noted; KeyboardInterrupt is raised after."""
    global _interrupt_noted
    try:
        previous = signal.signal(signal.SIGINT, _note_interrupt)
    except ValueError:  # not the main thread: signals are not ours to handle
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            restore = signal.default_int_handler if previous is _note_interrupt else previous
            signal.signal(signal.SIGINT, restore)
    if _interrupt_noted:
        _interrupt_noted = False
        raise KeyboardInterrupt


def _caused_by_interrupt(err: BaseException) -> bool:
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _silence_stdout() -> None:
    # Python would report the broken pipe again when flushing stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())

"""The ``signanon`` command line: one sub-command per job, each driving the same pipeline objects
that the Python API exposes.

Errors the user can fix print one line (``signanon: error: ...``) and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import signal
import sys

# Ctrl-C or SIGTERM while the command starts (its imports, building the parser) would surface as a
# traceback from inside Python's import machinery. When this module is the command being run,
# both signals are only recorded from here on; main() acts on them once it can exit cleanly.
_EARLY_SIGNALS: list[int] = []


def _record_early(signum, frame) -> None:
    _EARLY_SIGNALS.append(signum)


def _launched_as_command() -> bool:
    """True in the ``signanon`` or ``python -m signanon.cli.main`` process itself (not in a program
    importing this module, nor in a worker process started from the command)."""
    if __name__ == "__main__":
        return True
    argv = getattr(sys, "orig_argv", [])
    return len(argv) > 1 and argv[1].rsplit("/", 1)[-1] == "signanon"


if _launched_as_command() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _record_early)
    signal.signal(signal.SIGTERM, _record_early)

import argparse
import errno
import os
import threading
from contextlib import contextmanager
from pathlib import Path

from .. import __version__
from ..errors import OutputError, SignanonError
from .options import add_command, add_settings, config_from_args

EPILOG_POSE = """examples:
  signanon pose examples/asl_webcam.mp4 -o asl_webcam.pose
  signanon pose clip.webm -o clip.pose --raw      # no smoothing, no gap filling
"""


# A write that fails for one of these reasons is the user's to fix (free space, quota, file-size
# limit): one line, not an internal error.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


HELP_POSE = 'extract MediaPipe Holistic landmarks to a .pose file'
DESCRIPTION_POSE = """\
Write the body (33), face (478 with irises) and hand (2x21) landmarks of every frame as a pose-
format .pose file, missing points masked.
"""


def _add_pose_parser(sub) -> argparse.ArgumentParser:
    from ..landmarks.extract import PoseExtractionConfig

    pose = add_command(sub, "pose", HELP_POSE, DESCRIPTION_POSE, EPILOG_POSE)
    pose.add_argument("input", type=Path, help="video to read")
    pose.add_argument("-o", "--output", type=Path, required=True, help="output .pose file")
    add_settings(pose, PoseExtractionConfig)
    return pose


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors in one line, like every other error (exit status 2, as argparse):
    ``signanon: error: <problem> (see 'signanon anonymize --help')``, not the whole usage block.
    The sub-command parsers are of this class too (``add_subparsers`` uses the parent's class)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"signanon: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="signanon",
        description="Anonymize sign-language videos: the signer can no longer be recognised, "
        "the signing (handshapes, movement, facial grammar) survives.",
        epilog="Run 'signanon COMMAND --help' for the options and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"signanon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    from ..batch.cli import add_batch_parser
    from ..diffusion.cli import add_doctor_parser
    from ..evaluation.cli import add_evaluate_parser
    from ..reenactment.cli import add_reenact_parser
    from ..reenactment.train_cli import add_extract_faces_parser, add_train_face_parser
    from ..web.cli import add_serve_parser
    from .anonymize import add_anonymize_parser

    for register in (
        add_anonymize_parser, _add_pose_parser, add_evaluate_parser, add_reenact_parser,
        add_extract_faces_parser, add_train_face_parser, add_doctor_parser, add_serve_parser,
        add_batch_parser,
    ):  # fmt: skip
        register(sub)
    return parser


def _cmd_anonymize(args: argparse.Namespace) -> None:
    from .anonymize import run_anonymize

    run_anonymize(args)


def _cmd_extract_faces(args: argparse.Namespace) -> None:
    from ..reenactment.train_cli import run_extract_faces

    run_extract_faces(args)


def _cmd_train_face(args: argparse.Namespace) -> None:
    from ..reenactment.train_cli import run_train_face

    run_train_face(args)


def _cmd_doctor(args: argparse.Namespace) -> int:
    """Exit status 1 while a required weight is missing, so scripts can check readiness."""
    from ..diffusion.cli import run_doctor

    return 1 if run_doctor(args) else 0


def _cmd_pose(args: argparse.Namespace) -> None:
    from ..landmarks.extract import PoseExtractionConfig, extract_pose

    stats = extract_pose(args.input, args.output, config_from_args(PoseExtractionConfig, args), progress=not args.quiet)
    if not args.quiet:
        print(f"wrote {args.output}: {stats.describe()}", file=sys.stderr)


def _silence_native_logs() -> None:
    """Send C++ log lines (MediaPipe, TFLite, absl) to /dev/null while Python's stderr still shows.

    MediaPipe's native code writes warnings straight to file descriptor 2; they mean nothing to a
    user. Python's ``sys.stderr`` is moved to a duplicate of the real descriptor first, so progress
    bars and error messages still reach the terminal. Set SIGNANON_DEBUG=1 to see everything.
    """
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        sys.stderr.flush()
        real = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        sys.stderr = os.fdopen(real, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8", errors="replace")
    except OSError:  # no real descriptors (embedded interpreters): keep the noise
        pass


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.cli import run_evaluate

    return run_evaluate(args)


def _cmd_reenact(args: argparse.Namespace) -> None:
    from ..reenactment.cli import run_reenact

    run_reenact(args)


COMMANDS = {
    "anonymize": _cmd_anonymize,
    "pose": _cmd_pose,
    "evaluate": _cmd_evaluate,
    "reenact": _cmd_reenact,
    "extract-faces": _cmd_extract_faces,
    "train-face": _cmd_train_face,
    "doctor": _cmd_doctor,
    "serve": lambda args: args.run_serve(args),  # set by signanon.web.cli.add_serve_parser
    "batch": lambda args: args.run_batch(args),  # set by signanon.batch.cli.add_batch_parser
}


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler, a container stop) raised as an interrupt: every
    ``finally`` and ``except BaseException`` on the way out runs, exactly as for Ctrl-C, so
    temporary files are deleted and no partial output appears."""


# Two places lose an exception raised in them, and with it the interrupt: an import interrupted
# half-way can be reported by the importing library (protobuf's C extension prints the traceback
# and carries on), and a finalizer (``__del__``, run whenever the garbage collector frees an
# object) has its exception printed as "Exception ignored" by Python itself (measured: ``serve``
# interrupted 0.05-0.2 s after it printed its address ran on, the KeyboardInterrupt lost in an
# asyncio event loop's ``__del__``). A signal that lands in either is delivered again a moment
# later, once that code is done (5 s at most).
_IMPORT_CODE = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
_REDELIVER_S = 0.05
_REDELIVER_MAX = 100


def _would_lose_interrupt(frame) -> bool:
    """True when an exception raised in ``frame`` would not reach the command (see above)."""
    while frame is not None:
        if frame.f_code.co_filename in _IMPORT_CODE or frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


class _Interrupt:
    """The SIGINT/SIGTERM handler while a command runs: :class:`KeyboardInterrupt` (Ctrl-C) or
    :class:`Terminated`, raised outside any import or finalizer."""

    def __init__(self) -> None:
        self.redelivered = 0

    def __call__(self, signum, frame) -> None:
        if _would_lose_interrupt(frame) and self.redelivered < _REDELIVER_MAX:
            self.redelivered += 1
            timer = threading.Timer(_REDELIVER_S, os.kill, (os.getpid(), signum))
            timer.daemon = True
            timer.start()
            return
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _restored(previous, default):
    """The handler to put back: ``default`` where start-up recording was installed."""
    return default if previous is _record_early else previous


@contextmanager
def _signals_as_interrupts():
    """Ctrl-C and SIGTERM raise :class:`KeyboardInterrupt` / :class:`Terminated` while a command
    runs, never inside an import or a finalizer (main thread only; the previous handlers are
    restored afterwards, so embedding programs keep theirs)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = _Interrupt()
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, _restored(previous[signal.SIGINT], signal.default_int_handler))
        signal.signal(signal.SIGTERM, _restored(previous[signal.SIGTERM], signal.SIG_DFL))


@contextmanager
def _signals_recorded():
    """Record SIGINT and SIGTERM instead of acting on them while the command starts (imports and
    argument parsing); yields the list of signals received, those that came while this module was
    imported included. The previous handlers are put back afterwards."""
    received = _EARLY_SIGNALS
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {sig: signal.signal(sig, _record_early) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupted(err: KeyboardInterrupt, hard_exit: bool = False) -> int:
    """The one line and exit status of an interrupted command: 130 for Ctrl-C, 143 for SIGTERM.
    What the command leaves is "no output written" unless it says otherwise on the interrupt
    (``err.left``: batch keeps the clips it finished, and a re-run resumes).

    ``hard_exit`` (a real command-line process): once the interrupted work is finalised (its
    ``finally`` blocks removed temporaries and stopped worker processes), leave without the
    interpreter's shutdown, during which MediaPipe's native threads can abort the process
    (SIGABRT instead of the documented status)."""
    if sys.stderr.isatty():  # a progress bar the interrupt caught half-drawn: clear its line
        sys.stderr.write("\r\x1b[K")
    left = getattr(err, "left", None) or "no output written"
    if isinstance(err, Terminated):
        print(f"signanon: terminated; {left}", file=sys.stderr)
        status = 128 + signal.SIGTERM
    else:
        print(f"signanon: interrupted; {left}", file=sys.stderr)
        status = 128 + signal.SIGINT
    if hard_exit:
        import gc

        err.__traceback__ = None  # frees the interrupted frames: their generators' cleanup runs now
        gc.collect()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def interrupt_inside(err: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt an exception was raised from, if any: Python wraps one that arrives
    inside ``__set_name__`` or an import hook in RuntimeError/ImportError (its cause or context)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    debug = os.environ.get("SIGNANON_DEBUG") == "1"
    try:
        with _signals_as_interrupts():
            with _signals_recorded() as received:  # start-up: an interrupt waits for the try above
                args = build_parser().parse_args(argv)
                if not debug and argv is None:
                    _silence_native_logs()
            if received:
                first = received[0]
                received.clear()
                raise Terminated() if first == signal.SIGTERM else KeyboardInterrupt()
            try:
                status = COMMANDS[args.command](args)
            except OSError as err:
                if err.errno not in _WRITE_ERRNOS:
                    raise
                raise OutputError(f"cannot write ({os.strerror(err.errno)}): {err.filename or 'output'}") from None
    except SignanonError as err:
        from .anonymize import UsageError

        interrupt = interrupt_inside(err.__context__)
        if interrupt is not None:  # Ctrl-C arriving inside a library's setup, reported as failing
            return _interrupted(interrupt, hard_exit=argv is None)

        print(f"signanon: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, UsageError) else 1
    except KeyboardInterrupt as err:
        return _interrupted(err, hard_exit=argv is None)
    except Exception as err:  # a bug, not bad input: still one line unless debugging
        interrupt = interrupt_inside(err)
        if interrupt is not None:  # Ctrl-C that Python wrapped (e.g. during a class definition)
            return _interrupted(interrupt, hard_exit=argv is None)
        if debug:
            raise
        print(
            f"signanon: internal error: {type(err).__name__}: {err} (rerun with SIGNANON_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return 1
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

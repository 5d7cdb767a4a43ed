"""The ``signanon serve`` sub-command: start the web page on this computer."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from ..cli.options import add_command
from ..errors import SignanonError

EPILOG = """examples:
  signanon serve                       # then open http://127.0.0.1:7860 in a browser
  signanon serve --port 8080 --max-upload-mb 200 --max-minutes 5
  signanon serve --host 0.0.0.0        # other computers of the network can reach it: no login!
"""


HELP = 'start the web page: upload or record a video, anonymize it, check the result'
DESCRIPTION = """\
Serve the web app (Gradio) on this computer. It listens on 127.0.0.1 only unless --host says
otherwise, never makes a public share link, runs one job at a time and deletes each session's files
when its page closes or after --keep-minutes.
"""


def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``serve`` to the sub-command parsers of the ``signanon`` command."""
    p = add_command(subparsers, "serve", HELP, DESCRIPTION, EPILOG, quiet=False)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this computer only)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default: 7860)")
    p.add_argument("--max-upload-mb", type=float, default=500, metavar="MB", help="largest upload (default: 500)")
    p.add_argument("--max-minutes", type=float, default=10, metavar="MIN", help="longest video (default: 10)")
    p.add_argument(
        "--keep-minutes", type=float, default=60, metavar="MIN",
        help="delete a session's files after this long unused (default: 60)",
    )  # fmt: skip
    p.set_defaults(run_serve=run_serve)
    return p


def check_address(host: str, port: int) -> None:
    """Refuse a port out of range, a host that does not resolve, or an address already in use, in
    one line and before Gradio loads (the server itself binds it again a moment later)."""
    import socket

    if not 0 < port < 65536:
        raise SignanonError(f"--port must be 1-65535, got {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError) as err:
        raise SignanonError(f"--host {host!r} cannot be resolved ({err})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            probe.bind(address)
        except OSError as err:
            raise SignanonError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None


def _stop_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt  # Gradio's serving loop stops on it and returns


def run_serve(args: argparse.Namespace) -> None:
    """Serve until interrupted; the private workspace is deleted on the way out."""
    from .session import Sweeper, WebLimits, Workspace

    limits = WebLimits(args.max_upload_mb, args.max_minutes, args.keep_minutes)
    check_address(args.host, args.port)
    workspace = Workspace()
    # Gradio keeps uploads in its cache folder: put it in the private workspace (before import).
    os.environ["GRADIO_TEMP_DIR"] = str(workspace.gradio_cache)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)  # so the workspace below is deleted
    sweeper = Sweeper(workspace, limits.keep_minutes * 60, every_s=min(60.0, limits.keep_minutes * 15))
    try:
        from .app import build_app
        from .jobs import WebJobs

        demo = build_app(WebJobs(workspace, limits), limits)
        sweeper.start()
        print(f"signanon: serving on http://{args.host}:{args.port} (Ctrl+C stops)", file=sys.stderr, flush=True)
        try:
            demo.launch(
                server_name=args.host, server_port=args.port, share=False, inbrowser=False, quiet=True,
                max_file_size=int(limits.max_upload_mb * 1e6), allowed_paths=[str(workspace.sessions)],
                ssr_mode=False, show_error=False, footer_links=["api"],
            )  # fmt: skip
        except OSError as err:
            raise SignanonError(f"cannot listen on {args.host}:{args.port}: {err}") from None
        except KeyboardInterrupt:
            pass  # Ctrl-C or SIGTERM: the normal way to stop a server
    finally:
        sweeper.stop()
        workspace.close()
    # launch() returns only when the server stops (Gradio catches Ctrl-C itself and returns)
    print("signanon: stopped; all session files deleted", file=sys.stderr)

"""The web page (``signanon serve``): a Gradio app that runs the same :class:`~signanon.job.AnonymizeJob`
as the command line, for people who will not use a terminal.

* :mod:`.session` - the server's private workspace: one folder per browser session (mode 0700,
  deleted when the session ends or after a time limit) and the checks of an upload (size, length).
* :mod:`.jobs` - what the buttons do, without Gradio: build the method's config from the page's
  values, run the job with progress, run the evaluation and word its verdict.
* :mod:`.app` - the page itself (:func:`~signanon.web.app.build_app`).
* :mod:`.cli` - the ``serve`` sub-command.

Gradio is an optional dependency (the ``web`` extra); it is imported only when a page is built.
"""

from __future__ import annotations

from ..errors import SignanonError

INSTALL_HINT = 'the web app needs Gradio: pip install -e ".[web]"'


def import_gradio():
    """The ``gradio`` module, or a one-line :class:`SignanonError` with the install hint."""
    try:
        import gradio
    except ImportError:
        raise SignanonError(INSTALL_HINT) from None
    return gradio

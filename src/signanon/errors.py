"""Errors that reach the user as one line of text.

Every problem the user can fix (a missing file, a file that is not a video, an output folder that
cannot be written) is raised as a :class:`SignanonError` with a message that names the problem and
the path. The command-line interface prints the message alone, without a traceback, and exits with
a non-zero status.
"""


class SignanonError(Exception):
    """A problem the user can act on; ``str(err)`` is the whole one-line message."""


class InputError(SignanonError):
    """The input (a video, a .pose file, an option value) is missing, unreadable or unusable."""


class OutputError(SignanonError):
    """The output path cannot be written (missing folder, no permission, same as the input)."""


class NoPersonError(SignanonError):
    """No person was found anywhere in the video, so there is nothing to anonymize."""


class ReidentifiedError(SignanonError):
    """The privacy gate refused an output: a face-recogniser matched the original signer in some
    frames. The output was not written at the requested path. ``summary``: the run summary, with
    its ``verification`` record (per-frame distances), when the run got that far."""

    def __init__(self, message: str, summary=None):
        super().__init__(message)
        self.summary = summary

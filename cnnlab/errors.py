"""cnnlab's own exception types: the only ones a loader lets out.

Every error about a file names the file and what was wrong with it. Each type
also derives from the built-in exception that callers already catch
(``ValueError`` for bad content, ``FileNotFoundError`` for missing data), so
existing ``except ValueError`` code keeps working.
"""

from __future__ import annotations

__all__ = ["CnnlabError", "FileFormatError", "LimitExceededError"]


class CnnlabError(Exception):
    """Base class of every error cnnlab raises on purpose."""


class FileFormatError(CnnlabError, ValueError):
    """A file is truncated, corrupt, hostile or not what it claims; the message names the file.

    ``FileFormatError(path, problem)`` reads ``"{path}: {problem}"``; a single
    argument is taken as the whole message (for errors about data without a path).
    """

    def __init__(self, path, problem: str | None = None):
        if problem is None:
            self.path = None
            super().__init__(str(path))
        else:
            self.path = str(path)
            super().__init__(f"{self.path}: {problem}")


class LimitExceededError(FileFormatError):
    """A file declares more than a named limit allows (see ``cnnlab.limits``).

    The message names the limit and how to raise it for a user who really has
    a model or data set that large.
    """

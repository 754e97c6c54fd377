"""One base for every error a user can cause and fix: a bad file, a bad parameter, missing data, a limit, a full disk.

The CLI prints such an error as one line (exit status 2) and the UI as one ``st.error``; anything else is a bug and
keeps its traceback (the CLI's ``--debug`` shows a user error's too). Each kind also derives from the built-in
exception callers would catch for it (``ValueError`` for a bad value, ``OSError`` for a full disk), so code that
catches those keeps working.
"""
from __future__ import annotations


class NormScopeError(Exception):
    """A user-facing error; its message is one readable line saying what is wrong and what to do."""


class ParameterError(NormScopeError, ValueError):
    """A parameter, setting or input value that cannot be used."""


class CheckpointError(ParameterError):
    """A checkpoint cannot be used; the message says why and what to do."""

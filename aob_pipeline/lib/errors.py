"""The project's user-facing errors: mistakes a person can fix, as opposed to bugs.

``AobError`` is the common base of the errors raised for bad input — a malformed registry, scenario, import or
label file, an unknown agent or scenario, a warehouse that is missing or in use. Their messages already say what
is wrong and where (file, line, field); the `aob` command prints them in one or two lines with what to do next
and exits with code 2, instead of a traceback (see ``aob_pipeline.cli_errors``).

The concrete classes keep their old bases (``ValueError``, ``KeyError``, ...) so existing ``except`` clauses still
catch them.
"""

from __future__ import annotations


class AobError(Exception):
    """A mistake the user can fix. ``hint`` (optional) says what to do about it."""

    hint: str | None = None


class UnknownScenario(AobError, KeyError):
    """No scenario with this id (the message lists close ids)."""

    hint = "list the ids with `aob scenarios list`"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown scenario"


class UnknownAgent(AobError, ValueError):
    """No agent with this id (in the registry, or with runs in the warehouse)."""

    hint = "see the registered agents with `aob agents list` and the evaluated ones with `aob leaderboard`"

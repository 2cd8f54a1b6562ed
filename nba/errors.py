"""Errors meant for people: one sentence naming what is wrong and what to do."""


class NbaError(Exception):
    """Base class for every error the `nba` command reports as a one-line message (exit 2)."""


class DataError(NbaError):
    """A whole input is unusable: unreadable, empty, wrong delimiter, required column missing."""

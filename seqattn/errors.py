"""The one exception type the CLI turns into a one-line message instead of a traceback."""


class SeqattnError(Exception):
    """A problem with the user's input: the message names the file, line or option and says what to do."""

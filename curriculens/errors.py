"""The one exception type the CLI turns into a one-line message and exit code 2."""


class CurriculensError(Exception):
    """A user-facing error: bad input, a missing file, a config mismatch.

    The message must be one line and say what to do. The CLI prints
    ``curriculens: error: <message>`` and exits with status 2, never a traceback.
    """

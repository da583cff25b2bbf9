"""The base of errors a user can act on (bad paths, unreadable inputs, a node that did not
start): the `seg2track` command prints them as one line and exits with status 1."""


class UserFacingError(RuntimeError):
    """An error whose message tells the user what to fix.

    ``details`` (optional, several lines) is shown after the one-line message, e.g. the
    last lines of a node's log."""

    def __init__(self, message: str = "", details: str | None = None) -> None:
        super().__init__(message)
        self.details = details

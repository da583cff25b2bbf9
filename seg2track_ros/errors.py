"""The base of errors a user can act on (bad paths, unreadable inputs, a node that did not
start): the `seg2track` command prints them as one line and exits with status 1."""


class UserFacingError(RuntimeError):
    """An error whose message tells the user what to fix."""

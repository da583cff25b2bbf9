"""The base of errors a user can act on (bad paths, unreadable inputs, a node that did not
start): the `seg2track` command prints them as one line and exits with status 1."""


class UserFacingError(RuntimeError):
    """An error whose message tells the user what to fix.

    ``details`` (optional, several lines) is shown after the one-line message, e.g. the
    last lines of a node's log."""

    def __init__(self, message: str = "", details: str | None = None) -> None:
        super().__init__(message)
        self.details = details


class OutputPathError(UserFacingError):
    """An output's folder cannot be created (a file in the way, no permission)."""


def make_parent_folder(path, what: str = "output") -> None:
    """Create the folder `path` will be written into; OutputPathError says why not."""
    from pathlib import Path

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file" if blocker is not None else (error.strerror or str(error))
        raise OutputPathError(
            f"cannot create the folder {path.parent} for the {what} {path}: {why}"
        ) from None

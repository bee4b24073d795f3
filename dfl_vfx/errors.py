"""User-facing errors: one line that names the file, frame or option and says what to do."""


class DflError(Exception):
    """An error caused by the user's input; the CLI prints it as one line, never as a traceback."""


class ImageReadError(DflError):
    """An image file is missing, unreadable, truncated or lacks the channels we need."""

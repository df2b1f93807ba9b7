"""The one exception for problems a user can cause and fix (bad file, bad option)."""


class InputError(Exception):
    """A user-fixable problem; the message names the file and the problem in one line."""

"""User-facing errors.

A :class:`UserError` is a problem with what the user asked for (a missing path, an empty class folder, a
leaking split, a bad flag value), not a bug. Its message is one line that names the bad input and what would
have been accepted. ``bin/`` scripts print it without a traceback and exit with status 2 (see
:func:`keras_morsa.cli.run`).
"""


class UserError(ValueError):
    """An input problem the user can fix; the message is one line naming the input and what is expected."""


class DataError(UserError):
    """A dataset on disk is missing, empty, malformed or leaks test images into training."""


class PerformanceWarning(UserWarning):
    """A setting that works but is known to be much slower on this machine; the message says what to use."""


def check_variant(arg, accepted):
    """Refuses a config variant a ``get_config(arg)`` does not handle (as big_vision's ``parse_arg`` does).

    Args:
        arg: the text after ``:`` in ``--config=<file>:<arg>``, or ``None``/``""`` for the default.
        accepted: the variant names the config file handles.

    Returns:
        ``arg``, or ``None`` for the default.

    Raises:
        UserError: ``arg`` is not one of ``accepted`` (a typo like ``smok`` would otherwise run the full config).
    """
    if arg in (None, ""):
        return None
    if arg not in accepted:
        raise UserError(f"unknown config variant {arg!r}; accepted: {', '.join(accepted)}, or none for the default")
    return arg

"""Shared plumbing for the thin ``bin/`` scripts.

Each script defines its absl flags and a ``main(argv)`` that makes one library call, then ends with
``cli.run(main)``. ``run`` turns a :class:`~keras_morsa.errors.UserError` into one line on stderr and exit
status 2, so a bad path never shows a traceback; any other exception is a bug and keeps its traceback.
"""

import sys

from absl import app

from keras_morsa.errors import UserError


def _guard(main):
    def wrapped(argv):
        try:
            return main(argv)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    return wrapped


def run(main):
    """Runs ``main`` under ``absl.app.run`` with user errors reported as one line and exit status 2."""
    app.run(_guard(main))

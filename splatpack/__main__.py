"""``python -m splatpack``: the command line (:mod:`splatpack.apps.cli`)."""

from splatpack.apps.cli import entrypoint

if __name__ == "__main__":
    entrypoint()

"""``python -m splatpack``: the command line (:mod:`splatpack.apps.cli`)."""

if __name__ == "__main__":
    from splatpack.apps.launch import entrypoint

    entrypoint()

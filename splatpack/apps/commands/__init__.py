"""The ``splatpack`` commands, one module each: its docstring is the command's help, and it
defines ``add_arguments(parser)`` (the options, with their help and checks) and ``run(args)``
(call the library, print). A new command is one module and one line in :data:`COMMANDS`."""

from splatpack.apps.commands import (
    bench,
    completion,
    compress,
    decompress,
    export,
    generate,
    info,
    prior,
    process,
    render,
    train,
    view,
)

__all__ = ["COMMANDS"]

#: command name → its module, in the order ``splatpack --help`` lists them
COMMANDS = {
    "train": train,
    "process": process,
    "render": render,
    "info": info,
    "decompress": decompress,
    "export": export,
    "compress": compress,
    "bench": bench,
    "view": view,
    "completion": completion,
    "prior": prior,
    "generate": generate,
}

"""The ``splatpack`` command line: parse (:mod:`splatpack.apps.parser`), run the command
(:mod:`splatpack.apps.commands`), print.

Errors in the user's input are printed as one line, ``error: …``, with exit status 2;
``--debug`` (anywhere on the command line) shows the traceback instead. Ctrl-C exits with 130.
Python warnings raised while a command runs (numpy's ``RuntimeWarning`` on a forged file, say) are
held back: a failed command prints only its error line, a successful one prints each distinct
warning once as ``warning: …`` at the end.
"""

from __future__ import annotations

import shlex
import sys
import warnings

from splatpack.apps.commands import COMMANDS
from splatpack.apps.parser import build_parser, follow_output_link, parse_args
from splatpack.core import SplatpackError
from splatpack.core.limits import gaussian_limit
from splatpack.train.interrupt import TrainingInterrupted, noticed_interrupts

__all__ = ["EXAMPLES", "build_cli_parser", "entrypoint", "main"]

DESCRIPTION = "Train, compress, export and view compact 3D Gaussian Splatting scenes."

#: command name → command lines its ``--help`` ends with (each one parses: tests/apps/test_cli_guidance.py)
EXAMPLES: dict[str, tuple[str, ...]] = {
    "train": (
        "splatpack train default                  # the built-in synthetic scene → outputs/default",
        "splatpack train scenes/lego.yaml --compact --out outputs/lego",
        "splatpack train my_capture --steps 3000 --downscale 2",
    ),
    "process": (
        "splatpack process photos --out my_capture   # then: splatpack train my_capture",
        "splatpack process frames --out my_capture --matching sequential --max-size 1600",
        "splatpack process photos --out my_capture --poses transforms.json   # known cameras",
    ),
    "render": (
        "splatpack render outputs/default         # its test views → outputs/default/renders",
        "splatpack render outputs/default --orbit --frames 60",
    ),
    "info": (
        "splatpack info outputs/default/point_cloud.ply",
        "splatpack info scene.spk --json",
    ),
    "decompress": ("splatpack decompress scene.spk -o scene.ply",),
    "export": (
        "splatpack export scene.spk -o scene.spz",
        "splatpack export point_cloud.ply -o scene_sog --format sog   # a SOG folder",
    ),
    "compress": (
        "splatpack compress plant.splat -o plant.spk --quality high",
        "splatpack compress outputs/default/point_cloud.ply -o scene.spk --finetune default",
        "splatpack compress plant.splat -o plant.spk --target-size 1MB   # the best quality that fits",
    ),
    "bench": ("splatpack bench --inputs plant.splat --tools splatpack spz --qualities 4 8",),
    "view": (
        "splatpack view outputs/default             # a run folder: framed from its training cameras",
        "splatpack view plant.splat --no-browser --port 8000",
        "splatpack view plant.splat --desktop",
    ),
    "prior": ("splatpack prior train ../shared/splats/objects10k --out objects10k.pt   # the shipped model",),
    "generate": ("splatpack generate -n 16 -o samples   # the shipped model: samples/*.spk and samples/sheet.png",),
    "completion": (
        "splatpack completion bash > ~/.local/share/bash-completion/completions/splatpack",
        "splatpack completion zsh > ~/.zfunc/_splatpack    # with fpath+=(~/.zfunc) before compinit",
    ),
}

EPILOG = """getting started:
  splatpack train default                           # train the built-in scene (a few minutes)
  splatpack view outputs/default/point_cloud.ply    # look at it in the browser
  splatpack compress outputs/default/point_cloud.ply -o scene.spk
  splatpack info scene.spk

`splatpack COMMAND --help` lists a command's options, with examples. Tab completion of commands and options:
  source <(splatpack completion bash)               # or, for zsh: splatpack completion zsh > ~/.zfunc/_splatpack"""


def build_cli_parser():
    """The parser of the whole command line, with the examples and the getting-started epilog."""
    return build_parser(COMMANDS, DESCRIPTION, EXAMPLES, EPILOG)


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    held: list[warnings.WarningMessage] = []
    try:
        args = parse_args(build_cli_parser(), argv, list(COMMANDS))
        with (
            noticed_interrupts(),
            gaussian_limit(getattr(args, "max_gaussians", None)),
            warnings.catch_warnings(record=True) as held,
        ):
            warnings.simplefilter("default" if not debug else "always")
            follow_output_link(args)
            args.run(args)
    except TrainingInterrupted as e:
        print(f"interrupted at step {e.step} of {e.steps}; checkpoint written: {e.checkpoint}", file=sys.stderr)
        again = [a for a in argv if a not in ("--resume", "--overwrite", "--no-resume")]
        print(f"resume with: splatpack {shlex.join(again)} --resume", file=sys.stderr)
        return 130
    except SplatpackError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemError as e:  # a Ctrl-C raised inside a compiled kernel surfaces as this
        if not isinstance(e.__cause__ or e.__context__, KeyboardInterrupt):
            raise
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:  # argparse exits 0 after printing --help
        if e.code:
            raise
    for message in dict.fromkeys(f"warning: {w.category.__name__}: {w.message}" for w in held):
        print(message, file=sys.stderr)
    return 0


def entrypoint() -> None:
    """Kept for scripts that name it; the console script is :func:`splatpack.apps.launch.entrypoint`."""
    from splatpack.apps.launch import entrypoint as guarded

    guarded()

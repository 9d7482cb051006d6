"""A command line that guides a new user (issue 18): ``--version`` without loading torch,
examples in every command's help that parse, "did you mean" for mistyped commands and options,
``--debug`` in the help, shell completion scripts, ``info`` for every format splatpack reads, and
output names checked against the format before any work."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from format_scenes import gsply_data, random_set

import splatpack
from splatpack.apps.cli import EXAMPLES, build_cli_parser, main
from splatpack.apps.commands import COMMANDS
from splatpack.apps.commands.completion import bash_script, zsh_script
from splatpack.apps.parser import parse_args
from splatpack.formats import load_scene, path_size, save_scene


def one_error_line(args, capsys) -> str:
    """The one stderr line of a refused command line (exit status 2)."""
    rc = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


# --- --version ---------------------------------------------------------------------------------


def test_version_answers_without_importing_torch():
    code = (
        "import sys\n"
        "sys.argv = ['splatpack', '--version']\n"
        "from splatpack.apps.launch import entrypoint\n"
        "try:\n"
        "    entrypoint()\n"
        "except SystemExit as e:\n"
        "    print('exit', e.code, 'torch' in sys.modules, 'numba' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stderr == "", r.stderr
    expected = f"splatpack {splatpack.__version__} (torch {version('torch')}, numba {version('numba')})"
    assert r.stdout.splitlines() == [expected, "exit 0 False False"]


def test_version_through_the_parser(capsys):
    """``splatpack --version`` after other arguments (not the launcher's fast path) says the same."""
    assert main(["--debug", "--version"]) == 0
    assert capsys.readouterr().out.startswith(f"splatpack {splatpack.__version__} (torch ")


# --- examples in --help ------------------------------------------------------------------------


def help_text(args: list[str], capsys) -> str:
    assert main([*args, "--help"]) == 0
    return capsys.readouterr().out


def example_lines(text: str, heading: str) -> list[str]:
    """The indented command lines under ``heading`` in a help text."""
    block = text.split(f"\n{heading}\n", 1)[1]
    return [line.strip() for line in block.splitlines() if line.startswith("  splatpack ")]


def parse_example(line: str):
    """An example as the shell would pass it (its ``# comment`` and ``> redirect`` dropped), parsed
    by the real parser."""
    words = shlex.split(line.split(" > ")[0], comments=True)
    assert words[0] == "splatpack", line
    return parse_args(build_cli_parser(), words[1:], list(COMMANDS))


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_help_ends_with_examples_that_parse(command, capsys):
    lines = example_lines(help_text([command], capsys), "examples:")
    assert 1 <= len(lines) <= 3 and lines == list(EXAMPLES[command])
    for line in lines:
        args = parse_example(line)
        assert args.command == command, line


def test_top_level_help_lists_debug_version_and_a_first_session(capsys):
    text = help_text([], capsys)
    assert re.search(r"^  --debug +show the traceback of an error", text, re.M), text
    assert re.search(r"^  --version +print the versions", text, re.M), text
    lines = example_lines(text, "getting started:")
    assert [parse_example(line).command for line in lines] == ["train", "view", "compress", "info"]
    assert "splatpack completion bash" in text


def test_the_examples_run(tmp_path, capsys):
    """Three examples run as written, in a folder holding their input (a small .splat for plant.splat)."""
    save_scene(random_set(200, seed=3), tmp_path / "plant.splat")
    runnable = [
        EXAMPLES["compress"][0],  # plant.splat → plant.spk
        EXAMPLES["info"][1].replace("scene.spk", "plant.spk"),
        "splatpack export plant.spk -o scene.spz",
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        for line in runnable:
            assert main(shlex.split(line, comments=True)[1:]) == 0, (line, capsys.readouterr().err)
    assert len(load_scene(tmp_path / "scene.spz")) == 200


# --- did you mean ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, line",
    [
        (["trian"], "error: unknown command 'trian' (did you mean 'train'?)"),
        (["exprot", "a.spk", "-o", "b.ply"], "error: unknown command 'exprot' (did you mean 'export'?)"),
        (["train", "x", "--stpes", "5"], "error: splatpack train: unknown option '--stpes' (did you mean '--steps'?)"),
        (
            ["compress", "a.ply", "-o", "b.spk", "--qualty=high"],
            "error: splatpack compress: unknown option '--qualty' (did you mean '--quality'?)",
        ),
        (["--verison"], "error: splatpack: unknown option '--verison' (did you mean '--version'?)"),
        (["info", "a.spk", "b.spk"], "error: splatpack info: unexpected argument 'b.spk' (see splatpack info --help)"),
        (["train", "x", "--zzz"], "error: splatpack train: unknown option '--zzz' (see splatpack train --help)"),
    ],
)
def test_mistyped_names_get_a_suggestion(args, line, capsys):
    assert one_error_line(args, capsys) == line


def test_an_unknown_command_far_from_any_lists_the_commands(capsys):
    err = one_error_line(["frobnicate"], capsys)
    assert err == f"error: unknown command 'frobnicate' (the commands are {', '.join(COMMANDS)})"


# --- shell completion --------------------------------------------------------------------------


def bash_complete(script: Path, *words: str) -> list[str]:
    """What bash offers after ``words`` (the last one being completed)."""
    call = f"source {shlex.quote(str(script))}; COMP_WORDS=({shlex.join(words)}); COMP_CWORD={len(words) - 1}; "
    call += '_splatpack; printf "%s\\n" "${COMPREPLY[@]}"'
    r = subprocess.run(["bash", "-c", call], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return r.stdout.split()


def test_bash_completion_script(tmp_path, capsys):
    assert main(["completion", "bash"]) == 0
    text = capsys.readouterr().out
    assert text == bash_script(build_cli_parser())
    script = tmp_path / "splatpack.bash"
    script.write_text(text)
    r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert bash_complete(script, "splatpack", "") == [*COMMANDS, "-h", "--help", "--version", "--debug"]
    assert bash_complete(script, "splatpack", "tr") == ["train"]
    assert bash_complete(script, "splatpack", "train", "x", "--st") == ["--steps"]
    assert bash_complete(script, "splatpack", "--debug", "train", "--backend", "c") == ["cpu", "cuda"]
    assert bash_complete(script, "splatpack", "export", "a", "--format", "") == ["ply", "splat", "spz", "sog"]
    assert bash_complete(script, "splatpack", "completion", "") == ["bash", "zsh"]
    assert bash_complete(script, "splatpack", "compress", "pl") == []  # file names: complete -o default


def test_zsh_completion_script(tmp_path, capsys):
    assert main(["completion", "zsh"]) == 0
    text = capsys.readouterr().out
    assert text == zsh_script(build_cli_parser()) and text.startswith("#compdef splatpack\n")
    for name in COMMANDS:
        assert f"'{name}:" in text and f"        {name}) _arguments" in text, name
    assert (
        "'--backend[" in text and ":backend:(auto cpu cuda)'" in text and "'--steps[training iterations]:N: '" in text
    )
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed: the script's syntax is not checked")
    (tmp_path / "_splatpack").write_text(text)
    load = f"fpath=({tmp_path} $fpath); autoload -Uz compinit; compinit -u -d {tmp_path}/dump; print $_comps[splatpack]"
    r = subprocess.run(["zsh", "-n", str(tmp_path / "_splatpack")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["zsh", "-f", "-c", load], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "_splatpack", r.stderr


# --- info for every format ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory) -> dict[str, Path]:
    """One small file per format splatpack reads (SH degree 1 where the format has SH)."""
    d = tmp_path_factory.mktemp("info")
    gs = random_set(300, degree=1, seed=5)
    files = {name: save_scene(gs, d / f"s.{name}") for name in ("ply", "splat", "spz", "sog", "npz")}
    files["sog-folder"] = save_scene(gs, d / "sog_folder", "sog")
    files["spk"] = save_scene(gs, d / "s.spk", quality="sog")  # the fastest level
    gsply = pytest.importorskip("gsply")
    gsply.plywrite(d / "s.compressed.ply", gsply_data(gs), compressed=True)
    files["compressed-ply"] = d / "s.compressed.ply"
    return files


@pytest.mark.parametrize("kind", ["ply", "compressed-ply", "splat", "spz", "sog", "sog-folder", "npz"])
def test_info_describes_every_scene_format(scene_files, kind, capsys):
    path = scene_files[kind]
    gs = load_scene(path)
    assert main(["info", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    means = gs.means.double().numpy()
    assert d["format"] == kind.removesuffix("-folder") and d["num_gaussians"] == len(gs) == 300
    assert d["sh_degree"] == gs.sh_degree == (0 if kind == "splat" else 1)
    assert d["bbox_min"] == pytest.approx(means.min(0).tolist()) and d["bbox_max"] == pytest.approx(
        means.max(0).tolist()
    )
    assert d["total_bytes"] == path_size(path) and d["bytes_per_gaussian"] == pytest.approx(path_size(path) / 300)
    assert main(["info", str(path)]) == 0
    first, box = capsys.readouterr().out.splitlines()
    assert first == (
        f"{path}: {d['format']}, 300 Gaussians, SH degree {d['sh_degree']}, {d['total_bytes']:,} bytes "
        f"({d['total_bytes'] / 300:.2f} B/Gaussian)"
    )
    assert box.startswith("  bounding box: (") and box.count("..") == 1


def test_info_keeps_the_spk_sections(scene_files, capsys):
    assert main(["info", str(scene_files["spk"])]) == 0
    out = capsys.readouterr().out
    assert "300 Gaussians" in out and "equivalent PLY (SH 3)" in out and "section" in out and "by attribute:" in out
    assert main(["info", str(scene_files["spk"]), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["num_gaussians"] == 300 and d["sections"] and d["total_bytes"] == path_size(scene_files["spk"])


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("bad.ply", b"ply\nformat ascii 1.0\nelement vertex 3\nend_header\n", ""),
        ("bad.splat", b"\x00" * 31, ""),
        ("bad.spz", b"\x1f\x8b\x08\x00garbage", ""),
        ("bad.npz", b"PK\x03\x04truncated", ""),
        ("bad.spk", b"\x89SPK\x01\x00", ""),
        ("bad.bin", b"hello", "unrecognised splat file"),
        ("missing.sog", None, "does not exist"),
    ],
)
def test_info_on_a_bad_file_gives_one_line(tmp_path, name, content, problem, capsys):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    err = one_error_line(["info", path], capsys)
    assert err.startswith(f"error: {path}: ") and problem in err, err


# --- output names ------------------------------------------------------------------------------


@pytest.fixture
def small_ply(tmp_path) -> Path:
    return save_scene(random_set(50, seed=1), tmp_path / "in.ply")


@pytest.mark.parametrize(
    "command, out, extra, fragments",
    [
        ("export", "out", [], ["no extension", ".ply, .splat, .spz, .sog", "--format ply|splat|spz|sog"]),
        ("export", "out.txt", [], ["unexpected extension '.txt'", "--format"]),
        ("export", "out.ply", ["--format", "spz"], ["a .ply name for --format spz", "out.spz"]),
        ("compress", "x.txt", [], ["unexpected extension '.txt'", "compress writes a .spk", "x.spk"]),
        ("compress", "x", [], ["no extension", "x.spk"]),
        ("decompress", "x", [], ["no extension", "x.ply", "export --format"]),
    ],
)
def test_an_output_name_that_hides_its_format_is_refused(small_ply, command, out, extra, fragments, capsys):
    target = small_ply.parent / out
    err = one_error_line([command, small_ply, "-o", target, *extra], capsys)
    assert err.startswith(f"error: {target}: "), err
    for f in fragments:
        assert f in err, (f, err)
    assert not target.exists()


def test_format_names_an_output_without_extension(small_ply, capsys):
    """With ``--format``, no extension is needed (a SOG folder); ``export`` to ``.spk`` works by extension."""
    folder = small_ply.parent / "scene_sog"
    assert main(["export", str(small_ply), "-o", str(folder), "--format", "sog"]) == 0
    assert (folder / "meta.json").is_file() and len(load_scene(folder)) == 50
    assert main(["export", str(small_ply), "-o", str(small_ply.with_suffix(".npz"))]) == 0
    assert len(load_scene(small_ply.with_suffix(".npz"))) == 50

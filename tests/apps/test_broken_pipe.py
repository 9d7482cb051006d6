"""A reader that goes away (``splatpack info FILE | head -1``) ends the command quietly: exit 141
(128 + SIGPIPE), no traceback."""

from __future__ import annotations

import subprocess
import sys


def test_a_closed_stdout_gives_no_traceback(tmp_path):
    code = "import sys; sys.argv = ['splatpack', 'completion', 'bash']; from splatpack.apps.launch import entrypoint; entrypoint()"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the command has written anything (importing takes a while)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err

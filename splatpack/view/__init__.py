"""Viewing scenes: ``splatpack view`` (the web app in ``static/`` served by :mod:`.server`, or the
desktop window of :mod:`.desktop`) and the live view of a training run (:mod:`.live`, viser);
:mod:`.request` holds what the server checks in a request (loopback hosts, paths, byte ranges).

Only the standard-library server is imported here; the desktop viewer and the live view load
their own dependencies when used.
"""

from splatpack.view.server import STATIC_DIR, ViewServer, viewable_format

__all__ = ["STATIC_DIR", "ViewServer", "viewable_format"]

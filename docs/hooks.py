"""MkDocs hook: put the notebooks into the site.

The notebooks live in ``notebooks/`` with their outputs stripped. ``tests/test_notebooks.py``
executes them and writes the executed copies to ``build/notebooks/``; this hook copies those
(rendered with outputs) into ``docs/notebooks/`` before MkDocs collects its files, falling back to
the stripped sources when the tests have not run.

The docstrings use Sphinx roles (``:class:`X```); mkdocstrings renders the name as code and leaves
the role's name in front of it, which ``on_page_content`` removes.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def on_config(config, **kwargs):
    target = Path(config["docs_dir"]) / "notebooks"
    target.mkdir(exist_ok=True)
    for source in sorted((ROOT / "notebooks").glob("*.ipynb")):
        executed = ROOT / "build" / "notebooks" / source.name
        use = executed if executed.exists() and executed.stat().st_mtime >= source.stat().st_mtime else source
        shutil.copyfile(use, target / source.name)
    return config


SPHINX_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc):(?=<code>)")


def on_page_content(html, **kwargs):
    return SPHINX_ROLE.sub("", html)

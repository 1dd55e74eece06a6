"""Test set-up shared by every test module."""

from __future__ import annotations

import os
from pathlib import Path

import cgraph

# Python processes that tests start (the benchmarks, hostile inputs in their own process, ...)
# import the same cgraph as the tests do, installed or not.
_PACKAGE_PARENT = str(Path(cgraph.__file__).resolve().parent.parent)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_PARENT, os.environ.get("PYTHONPATH")]))

"""Only the optional native engine lives here; everything else is declared in setup.cfg.

`kubectl_whose/analysis/_engine.c` is the per-packet stream engine in C (issue 2's speed goal).
It is optional: without a compiler the install still succeeds and the pure-Python engine runs the
very same analysis, slower. It uses the limited API, so one build serves every CPython >= 3.9.
"""
from glob import glob

from setuptools import Extension, setup

setup(ext_modules=[Extension("kubectl_whose.analysis._engine", ["kubectl_whose/analysis/_engine.c"],
                             depends=sorted(glob("kubectl_whose/analysis/native/*.h")),
                             py_limited_api=True, optional=True, extra_compile_args=["-O2"])])

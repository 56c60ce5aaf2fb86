"""Only the optional native engine lives here; everything else is declared in setup.cfg.

`kubectl_whose/analysis/streams/native/_engine.c` is the per-packet stream engine in C (speed: ~10x the Python engine).
It is optional: without a compiler the install still succeeds and the pure-Python engine runs the
very same analysis, slower. It uses the limited API, so one build serves every CPython >= 3.9.
"""
from glob import glob

from setuptools import Extension, setup

NATIVE = "kubectl_whose/analysis/streams/native"
setup(ext_modules=[Extension("kubectl_whose.analysis.streams.native._engine", [f"{NATIVE}/_engine.c"],
                             depends=sorted(glob(f"{NATIVE}/*.h")),
                             py_limited_api=True, optional=True, extra_compile_args=["-O2"])])

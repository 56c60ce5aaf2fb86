import os
import platform
from typing import Optional, Tuple

import click

from kubectl_whose import __version__


def analysis_engine() -> Tuple[str, Optional[str]]:
    """The engine `analyze`/`capture` will use and, when it is the Python one, why.

    Raises the same WhoseError those commands would (a bad or unsatisfiable KUBECTL_WHOSE_ENGINE),
    so `version` never claims an engine the analysis would refuse to run.
    """
    from kubectl_whose.analysis.streams.engine import ENV, choose, native_engine

    engine = choose()
    if engine == "native":
        return engine, None
    built = native_engine() is not None
    if (os.environ.get(ENV) or "").strip().lower() == "python":
        return engine, f"forced by {ENV}=python; the native engine is {'' if built else 'not '}built"
    # an ImportError other than "no such module" (a foreign libc, a damaged file) lands here too
    return engine, "the native engine is not built in this install (a pure-Python archive, or no C compiler)"


@click.command(help="Print the version of kubectl-whose, of the Python running it and its analysis engine.",
               epilog="""\b
Examples:
  kubectl whose version
  kubectl whose version -o json
  KUBECTL_WHOSE_ENGINE=python kubectl whose version""")
@click.option("-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text", show_default=True)
def version(output):
    engine, reason = analysis_engine()
    if output in ("json", "yaml"):
        from kubectl_whose.render.output import dump_json, dump_yaml

        data = {"version": __version__, "python": platform.python_version(), "engine": engine,
                "engine_reason": reason}
        click.echo(dump_json(data) if output == "json" else dump_yaml(data), nl=False)
    else:
        click.echo(f"kubectl-whose {__version__} (Python {platform.python_version()})")
        click.echo(f"analysis engine: {engine}" + (f" ({reason})" if reason else ""))

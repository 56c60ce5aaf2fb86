"""`kubectl whose version`: the plugin's, Python's and the analysis engine's."""
import platform

import click

from kubectl_whose import __version__


@click.command(help="Print the version of kubectl-whose, of the Python running it and its analysis engine.",
               epilog="""\b
Examples:
  kubectl whose version
  kubectl whose version -o json
  KUBECTL_WHOSE_ENGINE=python kubectl whose version""")
@click.option("-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text", show_default=True)
def version(output):
    from kubectl_whose.analysis.streams.engine import analysis_engine

    engine, reason = analysis_engine()
    if output in ("json", "yaml"):
        from kubectl_whose.render.output import dump_json, dump_yaml

        data = {"version": __version__, "python": platform.python_version(), "engine": engine,
                "engine_reason": reason}
        click.echo(dump_json(data) if output == "json" else dump_yaml(data), nl=False)
    else:
        click.echo(f"kubectl-whose {__version__} (Python {platform.python_version()})")
        click.echo(f"analysis engine: {engine}" + (f" ({reason})" if reason else ""))

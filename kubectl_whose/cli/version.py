import platform

import click

from kubectl_whose import __version__


@click.command(help="Print the version of kubectl-whose and of the Python running it.", epilog="""\b
Examples:
  kubectl whose version
  kubectl whose version -o json""")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def version(output):
    if output == "json":
        import json

        click.echo(json.dumps({"version": __version__, "python": platform.python_version()}))
    else:
        click.echo(f"kubectl-whose {__version__} (Python {platform.python_version()})")

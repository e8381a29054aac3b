"""``teamaccess web-demo``: the customer-center pages in a demo panel, in the browser."""

from __future__ import annotations

import click

from .app import Integer, cli

__all__ = ["web_demo"]


@cli.command("web-demo")
@click.option("--port", type=Integer(0, 65535), default=8000, show_default=True,
              help="Port on 127.0.0.1 (0: any free one).")  # fmt: skip
@click.option("--dir", "directory", default="teamaccess-web-demo", show_default=True,
              help="Folder for the demo's SQLite file, mails and users.")  # fmt: skip
def web_demo(port: int, directory: str) -> None:
    """Serve the teamaccess.web pages in a demo panel on 127.0.0.1.

    A demo login and registration (no passwords), a SQLite file and the file mailer; the
    "Mails" page links every mail sent, so invite -> accept can be clicked through alone.
    Needs the web extra: pip install 'teamaccess[web]'.
    """
    try:
        from ..web.demo import main as run_demo
    except ImportError as exc:
        raise click.ClickException(
            f"the web demo needs the web extra ({exc.name} is missing): "
            "pip install 'teamaccess[web]'"
        ) from None
    run_demo(["--port", str(port), "--dir", directory])

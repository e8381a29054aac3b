"""``python -m teamaccess``: the same as the ``teamaccess`` command."""

from teamaccess._cli import cli

if __name__ == "__main__":
    cli.main(prog_name="teamaccess")

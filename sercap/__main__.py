"""``python -m sercap`` and the ``sercap`` script: the command line (:mod:`sercap.cli`)."""

from sercap._interrupt import install

install()  # a Ctrl-C while the command line loads ends in one line, exit 130

from sercap.cli import main as _main  # noqa: E402


def run() -> None:
    """The ``sercap`` console script."""
    _main(prog_name="sercap")


if __name__ == "__main__":
    run()

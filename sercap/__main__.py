"""``python -m sercap`` and the ``sercap`` script: the command line (:mod:`sercap.cli`)."""


def run() -> None:
    """The ``sercap`` console script.

    The early Ctrl-C handler is installed here, when a command runs, not when this module
    is imported: an import must not take over a process's SIGINT.
    """
    from sercap._interrupt import install

    install()  # a Ctrl-C while the command line loads ends in one line, exit 130
    from sercap.cli import main

    main(prog_name="sercap")


if __name__ == "__main__":
    run()

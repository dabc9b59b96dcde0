"""sercap's command line from a clone: ``python cli.py --help`` (the package is sercap.cli)."""

if __name__ == "__main__":  # when run, not imported: importers keep their own Ctrl-C handling
    from sercap._interrupt import install

    install()  # a Ctrl-C while the command line loads ends in one line, exit 130
from sercap.cli import main  # noqa: E402

if __name__ == "__main__":
    main()

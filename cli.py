"""sercap's command line from a clone: ``python cli.py --help`` (the package is sercap.cli)."""

from sercap.cli import main

if __name__ == "__main__":
    main()

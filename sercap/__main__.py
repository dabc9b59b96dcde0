"""``python -m sercap``: the command line (:mod:`sercap.cli`), as the ``sercap`` script runs it."""

from sercap.cli import main

if __name__ == "__main__":
    main(prog_name="sercap")

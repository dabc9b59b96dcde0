"""sercap: speech emotion recognition on a feature warehouse."""

__version__ = "0.1.0"

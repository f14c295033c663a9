"""Configuration a run cannot go on with: the run stops before building and says why."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config file that cannot be used as it is (a directory or a link where a file
    belongs, a contracts file with no usable row, contracts that overlap): the message names
    the file and rows, and nothing is published."""

"""CLI sub-commands, one module each; see :mod:`crmkit.cli`."""

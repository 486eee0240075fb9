"""The explanation commands, for the ``cnnlab`` parser: ``register(subparsers)`` adds them all.

- ``cnnlab filters``, ``features``, ``maximize``: ``cli_units``;
- ``cnnlab saliency``, ``occlusion``: ``cli_attribution``;
- ``cnnlab dream``, ``style``: ``cli_art``.
"""

from __future__ import annotations

from cnnlab.explain import cli_art, cli_attribution, cli_units

__all__ = ["register"]


def register(subparsers) -> None:
    """Add every explanation command to an argparse sub-parser group."""
    for module in (cli_units, cli_attribution, cli_art):
        module.register(subparsers)

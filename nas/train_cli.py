"""``nas-train``: ``nas-search train`` under its own name (see ``nas.commands.train``).

The same code, flags, help and error ladder as ``nas-search train``; messages
begin with ``nas-train:``. This module must not import Ray.
"""

from __future__ import annotations


def main(argv: list[str]) -> int:
    """Runs ``nas-train ARGS`` as ``nas-search train ARGS``; returns the exit status."""
    from nas import cli

    return cli.main([argv[0], "train", *argv[1:]], prog="nas-train")


def run() -> None:
    """Console-script entry point."""
    from nas.cli import run as run_cli

    run_cli(main)


if __name__ == "__main__":
    run()

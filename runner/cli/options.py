"""Options several commands share, declared once so they read and behave the same everywhere."""

from __future__ import annotations

import click

# Every command that reads provider files takes it (tests/cli/test_providers_dir_option.py holds them to it).
providers_dir_option = click.option(
    "--providers-dir", "providers_dirs", multiple=True, metavar="DIR",
    help="Extra provider folder, read last (repeatable; also HANZO_RUN_PROVIDERS_DIR).")

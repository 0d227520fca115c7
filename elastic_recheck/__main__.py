"""``python -m elastic_recheck`` runs the CLI."""

from elastic_recheck.cli import main

main()

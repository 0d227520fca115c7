"""``python -m elastic_recheck`` runs the CLI."""

from elastic_recheck.cli.main import main

main()

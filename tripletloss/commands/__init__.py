"""One module per `python -m tripletloss` subcommand; see tripletloss.cli."""

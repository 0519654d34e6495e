"""`python -m tripletloss <subcommand>`."""
from tripletloss.cli import main

if __name__ == "__main__":
    main()

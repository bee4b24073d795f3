"""Command-line interface: one module per subcommand, registered explicitly in `main.COMMANDS`."""

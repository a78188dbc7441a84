"""The ``samiam`` command line: one typer app, one small module per command group."""

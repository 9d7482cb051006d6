"""The command line: parse, call the library, print. Nothing imports this package."""

"""hpdirs' command-line interface (installed as `hpdirs_cli`): parses, prints, calls the library."""

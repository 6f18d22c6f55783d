"""One module per command: its options, its body and what it prints. main.py registers them."""

"""Learning directions: one step's draws and objective, fitting a step into memory, torchrun,
the loop (`learn`), and `hpdirs learn` from a request to a run folder."""

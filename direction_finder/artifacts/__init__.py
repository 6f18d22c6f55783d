"""What a run leaves on disk and other code reads: the directions file, its labels, latents, the
checkpoint, the run folder with its config.json and log, its card and loss curve."""

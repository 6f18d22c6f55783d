"""What a user looks at: rendered sweeps (`hpdirs render`), frames to GIF, MP4 and PNG, and the
gallery page."""

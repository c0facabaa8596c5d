"""The lock file brought up to date, what a lock changed, and its export as pylock.toml."""

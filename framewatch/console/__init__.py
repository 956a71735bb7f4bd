"""The review console: server-rendered pages on the admin listener for the people who review flagged frames."""

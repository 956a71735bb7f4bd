"""The contract between stages: provider events and pipeline messages. Imports nothing else of framewatch."""

"""The contract between stages: provider-neutral pipeline messages. Imports nothing else of the project."""

"""Alembic environment: framewatch hands in an open connection (see framewatch.config.store.migrate)."""

from alembic import context

from framewatch.config.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

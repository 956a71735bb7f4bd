"""Configuration: callback templates, domain rules and detect notify configs, in SQL (SQLite or PostgreSQL)."""

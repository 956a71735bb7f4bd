"""Worker stages (fetch, moderate, deliver) over one shared runtime."""

"""The ingress: authenticates provider callbacks and queues them durably before answering."""

"""The callback edge: one route per streaming cloud; authenticates callbacks and queues them durably before
answering."""

"""RabbitMQ: the topology every stage shares, and the confirmed publisher."""

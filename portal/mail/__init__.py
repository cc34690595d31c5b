"""Email: a transactional outbox, its delivery worker, and the transports."""

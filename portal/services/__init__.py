"""Business rules as plain async functions with plain arguments."""

"""Redis access: connection, key names, and the stores for users, clients and state."""

"""User accounts: ids, argon2id password hashing, and the account service."""

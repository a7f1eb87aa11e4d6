"""Cryptographic building blocks on `cryptography`'s primitives."""

"""Code version: part of every cache key, bump when a computation's result would change."""
CODE_VERSION = "0.2.0"

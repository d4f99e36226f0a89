"""Ordered SQL migration files (package data)."""

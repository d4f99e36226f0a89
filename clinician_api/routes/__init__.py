"""API routes grouped by resource."""

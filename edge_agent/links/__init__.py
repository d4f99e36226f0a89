"""Implementations of the link interface (`edge_agent.link`)."""

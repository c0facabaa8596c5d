"""HTTP for both halves: one pool setup, one proxy policy, one way of following redirects."""

"""Paid memberships: plans bought through a partner, renewed, cancelled, refunded, expired."""

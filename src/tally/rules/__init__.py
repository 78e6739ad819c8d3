"""Earning rules: the condition language and, on top of it, the rule engine."""

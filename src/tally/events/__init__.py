"""Events members earn from: stored with their outcomes, and the counters of caps and budgets."""

"""Growth value and the tier ladder: qualifying points, tier evaluation, tier history."""

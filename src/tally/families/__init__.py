"""Family accounts: groups that pool points or share them within monthly limits."""

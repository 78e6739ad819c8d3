"""The programme as code: one reviewable file, validated, planned, applied and versioned."""

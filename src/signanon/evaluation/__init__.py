"""Measurements that show an anonymized video still carries the signing (and, later, not the signer)."""

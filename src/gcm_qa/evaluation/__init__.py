"""The gold-set evaluation: metrics (pure), baselines, and the harness behind ``gcm-qa eval``."""

"""gcm-qa: cited answers from the GCM regional review of Latin America and the Caribbean."""

__version__ = "0.1.0"

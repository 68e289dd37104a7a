"""The tamper-evident audit trail: every change and every export, hash-chained per organisation."""

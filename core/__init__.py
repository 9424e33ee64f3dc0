"""The event log, keys, store, fold and plugin manager: no workflow lives here."""

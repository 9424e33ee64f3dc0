"""The web view of a node: its accounts, sessions and (later) its pages."""

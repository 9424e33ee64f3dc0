"""移民信访维稳台账: the dispute ledger of reservoir resettlement areas, as a plugin."""

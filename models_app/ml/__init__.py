"""Pure-Python ML: arrays and DataFrames in, arrays and metrics out. No Django here."""

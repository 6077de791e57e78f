"""The built-in chart kinds, one module each (the contract: generators/chart_kind.py)."""

"""The four DeltaPrompts stages over a run store: seed, mine, synthesize, screen; and rounds of them."""

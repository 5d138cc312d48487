"""Plain types and pure rules that several stages share: time, addresses, link tokens, subscribers
and their preferences, the ledger's statuses, windows and retry rules. No I/O."""

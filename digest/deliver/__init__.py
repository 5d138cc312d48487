"""The daily send: who is due (planner.py), what a send's outcome does to a row (outcome.py), the
one compose -> render -> message path (messages.py), and the send loop over the ledger and a
transport (sender.py)."""

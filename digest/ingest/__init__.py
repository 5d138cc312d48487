"""Papers in: the pure merge of a parsed batch into what is stored (merge.py), and the one scrape
path, fetch -> parse -> merge -> store, with its fetch log (scrape.py)."""

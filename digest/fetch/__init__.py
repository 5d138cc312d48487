"""Getting bytes from a source: the polite fetcher (http.py) and the URLs of date-addressed
listings (addresses.py)."""

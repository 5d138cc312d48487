"""The one path per job, called by every entry point (the CLI, the web front, the scheduler):
digests (score, preview, dry run, test send, send, run), subscribers (the one write path, sign-up
to unsubscription), sources (and scraping), papers, deliveries, and maintenance. Each function
takes a Context (settings, database, clock) and returns plain data."""

"""Mail that comes back: delivery reports, complaints, and (to come) commands by mail."""

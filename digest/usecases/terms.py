"""The terms the entry points speak in, light to import (a command line lists them in its help
before anything else is loaded): source kinds, statuses, and times as aware UTC."""

from digest.model.ledger import STATUSES as DELIVERY_STATUSES
from digest.model.source import KINDS
from digest.model.subscriber import STATUSES as SUBSCRIBER_STATUSES
from digest.model.time import utc

__all__ = ["DELIVERY_STATUSES", "KINDS", "SUBSCRIBER_STATUSES", "utc"]

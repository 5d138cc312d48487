"""What every use case works with: the settings, the database (opened on first use) and the clock,
and what is worth building once per process (renderers, the mail identity, the semantic space)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from functools import cached_property

from digest.config import Settings
from digest.deliver.messages import MailMaker
from digest.mail.message import Identity, identity_for
from digest.model.time import Clock, system_clock
from digest.render.mails import NoticeRenderer, Renderer
from digest.score.index import Weights
from digest.score.semantic import FIT_PAPERS, Space
from digest.score.warm import warm_ranking
from digest.store import papers, schema
from digest.store.engine import Database, Session

SPACE_SECONDS = 600.0  # how long a process reuses the semantic space between previews


class Context:
    """Settings, database and clocks for the use cases. ``clock`` gives the time jobs act at (what
    is due, what has expired); ``wall`` the real time, for leases that other processes read."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock = system_clock,
        database: Database | None = None,
        wall: Clock = system_clock,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.wall = wall
        self._database = database
        self._checked = False
        self._space: tuple[float, Space] | None = None
        self._lock = threading.Lock()
        self._warm = False

    def now(self) -> datetime:
        return self.clock()

    def warm_ranking(self, notify: Callable[[], None], after: float = 1.0) -> None:
        """Make the ranking kernel ready now (once per process); ``notify`` is called if that takes
        over ``after`` seconds, as the first run on a machine does while Numba compiles it."""
        if self._warm:
            return
        timer = threading.Timer(after, notify)
        timer.daemon = True
        timer.start()
        try:
            warm_ranking()
        finally:
            timer.cancel()
        self._warm = True

    @property
    def unchecked_database(self) -> Database:
        """The database, whatever its schema (for migrating it). Raises DatabaseError for a SQLite
        file whose folder is missing."""
        if self._database is None:
            self._database = Database.open(self.settings.db_url)
        return self._database

    @property
    def database(self) -> Database:
        """The database, once its schema is known to be current. Raises SchemaOutOfDate naming
        ``digest db upgrade``, or DatabaseError when it cannot be reached."""
        database = self.unchecked_database
        if not self._checked:
            schema.require_current_schema(database.engine)
            self._checked = True
        return database

    def session(self) -> Session:
        return self.database.session()

    @cached_property
    def weights(self) -> Weights:
        return Weights.of(self.settings)

    @cached_property
    def renderer(self) -> Renderer:
        return Renderer(self.settings.mail_from_name)

    @cached_property
    def notices(self) -> NoticeRenderer:
        return NoticeRenderer(self.settings.mail_from_name)

    @cached_property
    def identity(self) -> Identity:
        """Who mail comes from; reads the DKIM key. Raises ConfigError when it cannot be used."""
        return identity_for(self.settings)

    @cached_property
    def mails(self) -> MailMaker:
        """What makes digest mails (the one way: the send's own)."""
        return MailMaker(self.identity, self.renderer, self.settings.base_url)

    def space(self, session: Session) -> Space:
        """The semantic space of the newest stored papers (feedback finds near papers in it), fitted
        again at most every SPACE_SECONDS."""
        with self._lock:
            moment = time.monotonic()
            if self._space is None or moment - self._space[0] > SPACE_SECONDS:
                self._space = (moment, Space.fit(papers.newest_paper_texts(session, FIT_PAPERS)))
            return self._space[1]

    def close(self) -> None:
        if self._database is not None:
            self._database.dispose()
